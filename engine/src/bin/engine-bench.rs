//! engine-bench: the raw disk baseline and the engine, measured in interleaved rounds on the
//! same disk, so that each ratio compares two runs taken seconds apart.
//!
//! ```text
//! cargo run -p ringmq-engine --release --bin engine-bench -- --dir /tmp/rb [--seconds 3]
//!     [--rounds 3] [--record-size 1024] [--recovery-gib 4] [--recovery-full-scan] [--smoke]
//! ```
//! This VM's disk changes speed by up to 10× within a minute, so a ratio of two runs taken a
//! minute apart says little. Each round runs, back to back (1 KiB bodies by default):
//! 1. raw buffered `pwrite` in 1 MiB chunks for the run time (informational);
//! 2. engine async flush, `--many-queues` queues; 3. engine async flush, 8 queues;
//! 4. raw buffered `pwrite` in chunks of the size the engine's writes had in run 3, on the
//!    kind of file the engine wrote (see [`FileKind`]), first exactly the bytes run 3 wrote
//!    (4a: same page-cache load), then for the run time (4b: what the page cache gives in
//!    that time: past ~2 GB dirty, writeback throttling decides it);
//! 5. engine sync flush, `--sync-appenders` concurrent appenders;
//! 6. raw `pwrite` + `fdatasync(2)` of the bytes one engine group commit covered in run 5,
//!    on the kind of file the engine wrote (6a), then the same as one io_uring durable write
//!    (6b: `RWF_DSYNC`, the operation the engine's group commit uses).
//!
//! Ratios come from adjacent runs: async 3/4 (and 3/1), many queues 2/3, sync 5/6. The
//! report gives each ratio's median, min and max over the rounds, and the medians of the
//! absolute figures. With `--recovery-gib N` a child then fills N GiB, is killed with
//! SIGKILL, and `open` is timed. With `--sustained` (about a minute or more: it writes past
//! the kernel's dirty limit twice), raw buffered `pwrite` and the async engine then each
//! write the same amount, 1.5× the dirty limit, so that both end up paced by writeback
//! rather than by copying into the page cache. The last line is `RESULT {json}`; its
//! `baselines` object names the raw run behind each ratio. Run it under the shared
//! benchmark lock (`flock /tmp/ringmq-bench.lock ...`).
//!
//! Targets, and the raw baseline each one is a ratio to (engine ÷ raw of the same round):
//! - `async_vs_raw_same_chunk` ≥ 0.9: run 4b, buffered `pwrite` in the engine's write size
//!   on the same kind of file, for `--seconds`;
//! - `async_vs_raw_same_bytes` ≥ 0.9: run 4a, the same for exactly the bytes the engine
//!   wrote;
//! - `sync_throughput_vs_raw` ≥ 0.8: run 6a, `pwrite` + `fdatasync(2)` syscalls of one engine
//!   group commit's bytes, rounds/s × appends per group commit;
//! - `sync_p99_vs_raw_p99` ≤ 2: run 6a's p99 round latency;
//! - `many_queues_vs_8` ≥ 0.9: no raw baseline (engine, `--many-queues` ÷ 8 queues);
//! - `recovery_seconds` ≤ 5: no baseline.
//!
//! `engine_*_cpu_us_per_append` is the CPU time of the shard thread per append (the engine and
//! the bench's producer loop, which is kept to building a property string), and
//! `engine_*_user_us_per_append` its user-mode part: the kernel's part (io_uring submission,
//! waits and wake-ups) moves with the disk and the VM, so A/B comparisons of engine code are
//! steadier on the user part. Async runs do not time each append (no figure uses their
//! latency); sync runs do, for p50/p99.
//!
//! Informational ratios: `async_vs_raw_1mib` (run 1, 1 MiB writes), `sync_throughput_vs_raw_uring`
//! (run 6b, the io_uring `RWF_DSYNC` write the engine uses), `async_vs_raw_sustained` (the
//! `--sustained` pair, engine write size; no target).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq_engine::disk::{Disk, DiskFile, SyncMethod, UringDisk};
use ringmq_engine::{
    AppendRequest, Durability, FlushMode, Prealloc, Store, StoreConfig, StoreStats, SystemClock,
};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
struct Args {
    dir: PathBuf,
    seconds: f64,
    rounds: usize,
    record_size: usize,
    async_appenders: usize,
    sync_appenders: usize,
    many_queues: i32,
    recovery_gib: f64,
    /// Bytes of the sustained async comparison (`--sustained`); 0: off.
    sustained_bytes: Option<u64>,
    recovery_full_scan: bool,
    smoke: bool,
    prealloc: Option<Prealloc>,
    sync_method: SyncMethod,
    sync_segment: SyncSegment,
    writes_in_flight: Option<usize>,
    event_interval: Option<usize>,
    write_chunk: Option<u64>,
    write_behind: Option<u64>,
    durable_writes: Option<bool>,
}

/// The segment the sync-flush engine runs write into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncSegment {
    /// A segment zero-filled ahead of time, as every segment after a fresh log's first one
    /// is under `Prealloc::Fill` (the default under sync flush): a running broker's state.
    Filled,
    /// The first segment of a fresh log, which the engine only extends (the first append
    /// must not wait for a 1 GiB fill).
    Fresh,
}

const HELP: &str =
    "engine-bench: raw disk baseline vs the ringmq engine, interleaved rounds, one RESULT line

options:
  --dir DIR              scratch directory on the disk to measure (default /tmp/ringmq-engine-bench)
  --seconds S            duration of each timed run (default 3)
  --rounds N             interleaved rounds (default 3); ratios are medians over rounds
  --record-size N        message body bytes (default 1024)
  --async-appenders N    concurrent appenders in async-flush runs (default 512)
  --sync-appenders N     concurrent appenders in sync-flush runs (default 64)
  --many-queues N        queue count of the many-queues run (default 10000)
  --sync-method M        uring or thread: how the engine's sync runs fdatasync (default: the
                         engine's default)
  --sync-segment K       filled (default: a segment pre-filled as Prealloc::Fill leaves it, the
                         steady state) or fresh (the first segment of a new log, only extended)
  --recovery-gib G       also fill G GiB in a child, kill -9 it, time recovery (default off)
  --recovery-full-scan   the child never checkpoints, so recovery scans the whole log
  --sustained            also compare raw buffered pwrite and the async engine over 1.5x the
                         kernel's dirty limit each (writeback-bound; takes a minute or more)
  --sustained-gib G      the same with G GiB each
  --smoke                tiny parameters (used by the test suite)
  --prealloc P           engine segment preparation: create, extend or fill (default: the
                         engine's default, StoreConfig::new)
  --durable-writes X     on or off: group commits as one write+sync operation (default:
                         FlushConfig's)
  --write-chunk B        engine write_chunk_bytes (default: FlushConfig's)
  --write-behind B       engine write_behind_bytes, 0 = off (default: StoreConfig's)
  --event-interval N     compio task polls between I/O polls of the engine runs (default:
                         compio's, as the broker runs)
  --writes-in-flight N   engine writes in flight at once (default: FlushConfig's)
  --only-async DIR       profiling: only one async-flush engine run (8 queues; then
                         --queues N for another count)
  --only-sync DIR        profiling: only one sync-flush engine run
  --only-recovery DIR    only the kill -9 recovery scenario (with --recovery-gib G)
  --time-open DIR        only time Store::open (recovery) of an existing store directory;
                         RINGMQ_CHUNK=<bytes> overrides the recovery read size
";

/// What the command line asked for: a benchmark, or one of the single-purpose modes.
enum Mode {
    Bench,
    /// One async run in the directory, with this many queues.
    OnlyAsync(PathBuf, i32),
    OnlySync(PathBuf),
    TimeOpen(PathBuf),
    OnlyRecovery(PathBuf),
    ChildFill(PathBuf, u64, bool),
}

fn parse_args() -> Option<(Args, Mode)> {
    let mut a = Args {
        dir: PathBuf::from("/tmp/ringmq-engine-bench"),
        seconds: 3.0,
        rounds: 3,
        record_size: 1024,
        async_appenders: 512,
        sync_appenders: 64,
        many_queues: 10_000,
        recovery_gib: 0.0,
        sustained_bytes: None,
        recovery_full_scan: false,
        smoke: false,
        prealloc: None,
        sync_method: SyncMethod::default(),
        sync_segment: SyncSegment::Filled,
        writes_in_flight: None,
        event_interval: None,
        write_chunk: None,
        write_behind: None,
        durable_writes: None,
    };
    let mut mode = Mode::Bench;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{HELP}");
                return None;
            }
            "--dir" => a.dir = PathBuf::from(val()),
            "--seconds" => a.seconds = val().parse().unwrap(),
            "--rounds" => a.rounds = val().parse::<usize>().unwrap().max(1),
            "--record-size" => a.record_size = val().parse().unwrap(),
            "--async-appenders" => a.async_appenders = val().parse().unwrap(),
            "--sync-appenders" => a.sync_appenders = val().parse().unwrap(),
            "--many-queues" => a.many_queues = val().parse().unwrap(),
            "--recovery-gib" => a.recovery_gib = val().parse().unwrap(),
            "--recovery-full-scan" => a.recovery_full_scan = true,
            "--sustained" => a.sustained_bytes = Some(sustained_default_bytes()),
            "--sustained-gib" => {
                let g: f64 = val().parse().unwrap();
                a.sustained_bytes = Some((g * (1u64 << 30) as f64) as u64);
            }
            "--smoke" => a.smoke = true,
            "--sync-method" => {
                a.sync_method = match val().as_str() {
                    "uring" => SyncMethod::Uring,
                    "thread" => SyncMethod::Thread,
                    other => panic!("--sync-method {other}: uring or thread"),
                }
            }
            "--sync-segment" => {
                a.sync_segment = match val().as_str() {
                    "filled" => SyncSegment::Filled,
                    "fresh" => SyncSegment::Fresh,
                    other => panic!("--sync-segment {other}: filled or fresh"),
                }
            }
            "--prealloc" => {
                a.prealloc = Some(match val().as_str() {
                    "create" => Prealloc::Create,
                    "extend" => Prealloc::Extend,
                    "fill" => Prealloc::Fill,
                    other => panic!("--prealloc {other}: create, extend or fill"),
                })
            }
            "--durable-writes" => {
                a.durable_writes = Some(match val().as_str() {
                    "on" => true,
                    "off" => false,
                    other => panic!("--durable-writes {other}: on or off"),
                })
            }
            "--write-chunk" => a.write_chunk = Some(val().parse().unwrap()),
            "--write-behind" => a.write_behind = Some(val().parse().unwrap()),
            "--event-interval" => a.event_interval = Some(val().parse().unwrap()),
            "--writes-in-flight" => a.writes_in_flight = Some(val().parse().unwrap()),
            "--only-async" => mode = Mode::OnlyAsync(PathBuf::from(val()), 8),
            "--queues" => match &mut mode {
                Mode::OnlyAsync(_, q) => *q = val().parse().unwrap(),
                _ => panic!("--queues follows --only-async"),
            },
            "--only-sync" => mode = Mode::OnlySync(PathBuf::from(val())),
            "--time-open" => mode = Mode::TimeOpen(PathBuf::from(val())),
            "--only-recovery" => mode = Mode::OnlyRecovery(PathBuf::from(val())),
            "--child-fill" => {
                let dir = PathBuf::from(val());
                let bytes = val().parse().unwrap();
                let full = val() == "full";
                mode = Mode::ChildFill(dir, bytes, full);
            }
            other => panic!("unknown option {other}; see --help"),
        }
    }
    if a.smoke {
        a.seconds = 0.2;
        a.rounds = a.rounds.min(2);
        a.async_appenders = 16;
        a.sync_appenders = 8;
        a.many_queues = 200;
        a.recovery_gib = a.recovery_gib.min(0.01);
    }
    Some((a, mode))
}

/// Flushes what earlier runs left dirty, so their writeback does not run during the next
/// measurement.
fn settle() {
    // SAFETY: sync(2) has no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(100));
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    settle();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An empty file `f` in a fresh directory `dir/name`, open for writing.
fn fresh_file(dir: &Path, name: &str) -> (std::fs::File, PathBuf) {
    let path = fresh(dir, name).join("f");
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    (f, path)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// The kind of file a write lands in. ext4's `fdatasync` cost depends on it: overwriting
/// allocated, written blocks commits no metadata; filling a hole or growing the file commits
/// the block allocation (and the size) to the journal first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    /// A fresh empty file; writes grow it (`Prealloc::Create`).
    Append,
    /// A fresh file with its length set ahead (a hole; `Prealloc::Extend`).
    Sparse,
    /// A file whose blocks were all written with zeros and synced (`Prealloc::Fill`).
    Filled,
}

impl FileKind {
    fn name(self) -> &'static str {
        match self {
            FileKind::Append => "appended (fresh file, writes grow it)",
            FileKind::Sparse => "sparse (length set ahead, writes fill the hole)",
            FileKind::Filled => "pre-filled (zeros written and synced, writes overwrite)",
        }
    }

    /// The kind of the first segment of a fresh log prepared as `prealloc` says: the driver
    /// never fills that one, so `Fill` leaves it sparse.
    fn of_fresh_log(prealloc: Prealloc, mode: FlushMode) -> FileKind {
        match prealloc.resolve(mode) {
            Prealloc::Create => FileKind::Append,
            _ => FileKind::Sparse,
        }
    }
}

/// The pre-filled file of the raw `Filled` runs, created once per bench run and overwritten
/// from its start, wrapping at its end.
struct Filled {
    path: PathBuf,
    len: u64,
}

/// Writes zeros over `[from, to)` of `f` and syncs them: what `Prealloc::Fill` does.
fn zero_fill(f: &std::fs::File, from: u64, to: u64) {
    let zeros = vec![0u8; 1 << 20];
    let mut off = from;
    while off < to {
        let n = (to - off).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], off).unwrap();
        off += n as u64;
    }
    f.sync_all().unwrap();
}

impl Filled {
    fn create(dir: &Path, len: u64) -> Filled {
        let (f, path) = fresh_file(dir, "raw-filled");
        zero_fill(&f, 0, len);
        Filled { path, len }
    }

    /// The file a raw run of `kind` writes, the offset at which it wraps to 0, and its path.
    fn open(&self, dir: &Path, kind: FileKind) -> (std::fs::File, u64, PathBuf) {
        let fresh_file = || fresh_file(dir, "raw-run");
        match kind {
            FileKind::Append => {
                let (f, path) = fresh_file();
                (f, u64::MAX, path)
            }
            FileKind::Sparse => {
                // Far more than a run writes, so the run never wraps into written blocks.
                let (f, path) = fresh_file();
                f.set_len(1 << 40).unwrap();
                (f, 1 << 40, path)
            }
            FileKind::Filled => {
                settle();
                let f = OpenOptions::new().write(true).open(&self.path).unwrap();
                (f, self.len, self.path.clone())
            }
        }
    }
}

/// How much a raw buffered run writes.
#[derive(Debug, Clone, Copy)]
enum Amount {
    /// For this long, like an engine run: what the disk and the page cache give in that time.
    Seconds(f64),
    /// Exactly the bytes an engine run wrote: the same load on the page cache (dirty pages
    /// and writeback start past thresholds), so only the cost of the write path differs.
    Bytes(u64),
}

/// Plain buffered pwrite of `chunk`-byte writes: bytes/s.
fn raw_buffered(dir: &Path, chunk: usize, amount: Amount, filled: &Filled, kind: FileKind) -> f64 {
    let (f, limit, _) = filled.open(dir, kind);
    let buf = vec![0x5Au8; chunk.max(1)];
    let start = Instant::now();
    let mut off = 0u64;
    let mut written = 0u64;
    let more = |written: u64| match amount {
        Amount::Seconds(s) => start.elapsed().as_secs_f64() < s,
        Amount::Bytes(b) => written < b,
    };
    while more(written) {
        for _ in 0..16 {
            if off + buf.len() as u64 > limit {
                off = 0;
            }
            f.write_all_at(&buf, off).unwrap();
            off += buf.len() as u64;
            written += buf.len() as u64;
        }
    }
    let rate = written as f64 / secs(start.elapsed());
    drop(f);
    let _ = std::fs::remove_dir_all(dir.join("raw-run"));
    rate
}

/// A raw write+sync run: rounds/s and the latency of a round.
#[derive(Debug, Clone, Copy)]
struct RawSync {
    rounds_per_s: f64,
    p50_us: u64,
    p99_us: u64,
}

/// `pwrite` + `fdatasync(2)` of `batch` bytes per round, one after the other, for `seconds`.
fn raw_write_sync(
    dir: &Path,
    batch: usize,
    seconds: f64,
    filled: &Filled,
    kind: FileKind,
) -> RawSync {
    let (f, limit, _) = filled.open(dir, kind);
    let buf = vec![0xA5u8; batch.max(1)];
    let mut hist = Histogram::<u64>::new(3).unwrap();
    let start = Instant::now();
    let mut off = 0u64;
    let mut rounds = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        if off + buf.len() as u64 > limit {
            off = 0;
        }
        let t = Instant::now();
        f.write_all_at(&buf, off).unwrap();
        f.sync_data().unwrap();
        hist.record(t.elapsed().as_micros() as u64).unwrap();
        off += buf.len() as u64;
        rounds += 1;
    }
    let rounds_per_s = rounds as f64 / secs(start.elapsed());
    drop(f);
    let _ = std::fs::remove_dir_all(dir.join("raw-run"));
    RawSync {
        rounds_per_s,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    }
}

/// [`raw_write_sync`] as the engine's group commit does it on io_uring: one durable write
/// per round ([`DiskFile::write_durable_at`], `IORING_OP_WRITE` with `RWF_DSYNC`), through
/// the engine's own disk backend but without the engine.
fn raw_uring_durable_write(
    dir: &Path,
    batch: usize,
    seconds: f64,
    filled: &Filled,
    kind: FileKind,
) -> RawSync {
    let (std_file, limit, path) = filled.open(dir, kind);
    drop(std_file);
    let rt = compio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(async {
        let disk = UringDisk::new(SyncMethod::Uring).unwrap();
        let f = disk.open(&path).await.unwrap();
        let mut buf = vec![0xA5u8; batch.max(1)];
        let mut hist = Histogram::<u64>::new(3).unwrap();
        let start = Instant::now();
        let mut off = 0u64;
        let mut rounds = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            if off + buf.len() as u64 > limit {
                off = 0;
            }
            let t = Instant::now();
            let n = buf.len();
            let (r, b) = f.write_durable_at(buf, 0..n, off).await;
            r.unwrap();
            buf = b;
            hist.record(t.elapsed().as_micros() as u64).unwrap();
            off += buf.len() as u64;
            rounds += 1;
        }
        RawSync {
            rounds_per_s: rounds as f64 / secs(start.elapsed()),
            p50_us: hist.value_at_quantile(0.5),
            p99_us: hist.value_at_quantile(0.99),
        }
    });
    let _ = std::fs::remove_dir_all(dir.join("raw-run"));
    r
}

fn engine_config(root: &Path, mode: FlushMode, args: &Args) -> StoreConfig {
    let mut cfg = StoreConfig::new(root);
    cfg.flush_mode = mode;
    if let Some(p) = args.prealloc {
        cfg.prealloc = p;
    }
    if args.smoke {
        cfg.segment_size = 16 << 20;
    }
    if let Some(n) = args.writes_in_flight {
        cfg.flush.writes_in_flight_max = n;
    }
    if let Some(n) = args.write_behind {
        cfg.write_behind_bytes = n;
    }
    if let Some(n) = args.write_chunk {
        cfg.flush.write_chunk_bytes = n;
    }
    if let Some(d) = args.durable_writes {
        cfg.flush.durable_writes = d;
    }
    cfg
}

/// What one engine run does.
#[derive(Debug, Clone, Copy)]
struct Spec {
    mode: FlushMode,
    durability: Durability,
    sync: SyncMethod,
    appenders: usize,
    queues: i32,
    /// Stop once the log holds this many bytes instead of after `--seconds`.
    bytes: Option<u64>,
}

impl Spec {
    fn async_flush(args: &Args, queues: i32) -> Spec {
        Spec {
            mode: FlushMode::Async,
            durability: Durability::Written,
            sync: SyncMethod::default(),
            appenders: args.async_appenders,
            queues,
            bytes: None,
        }
    }

    fn sync_flush(args: &Args) -> Spec {
        Spec {
            mode: FlushMode::Sync,
            durability: Durability::Synced,
            sync: args.sync_method,
            appenders: args.sync_appenders,
            queues: 8,
            bytes: None,
        }
    }
}

/// Figures of one engine run; `stats` counts only the timed part.
struct EngineRun {
    appends: u64,
    seconds: f64,
    stats: StoreStats,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    /// The slowest append: a stall (a segment being prepared, the disk) shows here first.
    max_us: u64,
    /// CPU time of the shard thread (the runtime's) per append, µs: the engine's cost per
    /// append plus the appenders' own work, far less noisy than throughput on a shared host.
    cpu_us_per_append: f64,
    /// The user-mode part of `cpu_us_per_append` (`RUSAGE_THREAD`): the engine's own code,
    /// without the kernel's share (submitting, waiting, waking), which moves with the disk.
    user_us_per_append: f64,
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User-mode CPU time of the calling thread.
fn thread_user_cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid out-pointer; RUSAGE_THREAD exists on Linux ≥ 2.6.26.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    Duration::new(ru.ru_utime.tv_sec as u64, ru.ru_utime.tv_usec as u32 * 1000)
}

impl EngineRun {
    fn appends_per_s(&self) -> f64 {
        self.appends as f64 / self.seconds
    }
    fn log_bytes_per_s(&self) -> f64 {
        self.stats.write_bytes as f64 / self.seconds
    }
    fn bytes_per_write(&self) -> f64 {
        self.stats.write_bytes as f64 / self.stats.writes.max(1) as f64
    }
    fn bytes_per_sync(&self) -> f64 {
        self.stats.write_bytes as f64 / self.stats.syncs.max(1) as f64
    }
    fn appends_per_sync(&self) -> f64 {
        self.appends as f64 / self.stats.syncs.max(1) as f64
    }
    fn syncs_per_s(&self) -> f64 {
        self.stats.syncs as f64 / self.seconds
    }
}

fn bench_request<'a>(
    body: &'a [u8],
    props: &'a str,
    queue_id: i32,
    durability: Durability,
) -> AppendRequest<'a> {
    AppendRequest {
        topic: "BenchTopic",
        queue_id,
        body,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
        properties: props,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        tag_code: 2598919,
        durability,
    }
}

/// An async-flush engine run with `queues` queues in a fresh directory `name`.
fn async_run(args: &Args, name: &str, queues: i32) -> EngineRun {
    engine_run(
        &fresh(&args.dir, name),
        Spec::async_flush(args, queues),
        args,
    )
}

/// The store directory of a sync-flush run, as `--sync-segment` says, and the kind of file
/// the run writes.
fn sync_store(args: &Args, name: &str) -> (PathBuf, FileKind) {
    let root = fresh(&args.dir, name);
    let kind = match args.sync_segment {
        SyncSegment::Fresh => {
            let prealloc = args.prealloc.unwrap_or(Prealloc::Auto);
            FileKind::of_fresh_log(prealloc, FlushMode::Sync)
        }
        SyncSegment::Filled => {
            prefill_store(&root, args);
            FileKind::Filled
        }
    };
    (root, kind)
}

/// Leaves a store at `root` as a running broker's log looks once it has rolled into a
/// segment prepared by `Prealloc::Fill`: one record, a clean checkpoint, and the rest of the
/// current segment zero-filled and synced. (A clean open trusts the checkpoint and keeps
/// the file as it is.)
fn prefill_store(root: &Path, args: &Args) {
    let cfg = engine_config(root, FlushMode::Sync, args);
    let seg_len = cfg.segment_size;
    let rt = compio::runtime::Runtime::new().unwrap();
    let end = rt.block_on(async {
        let disk = UringDisk::new(SyncMethod::default()).unwrap();
        let store = Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap();
        let body = vec![0x42u8; args.record_size];
        store
            .append(bench_request(&body, "", 0, Durability::Synced))
            .await
            .unwrap();
        let end = store.appended_offset();
        store.close().await.unwrap();
        end
    });
    let seg = root.join("commitlog").join(format!("{:020}", 0));
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    zero_fill(&f, end, seg_len);
}

/// `spec.appenders` tasks append for `args.seconds`, spread over `spec.queues` queues.
fn engine_run(root: &Path, spec: Spec, args: &Args) -> EngineRun {
    let mut builder = compio::runtime::RuntimeBuilder::new();
    if let Some(n) = args.event_interval {
        builder.event_interval(n);
    }
    let rt = builder.build().unwrap();
    rt.block_on(async {
        let disk = UringDisk::new(spec.sync).unwrap();
        let cfg = engine_config(root, spec.mode, args);
        let store = Rc::new(Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap());
        let body = Rc::new(vec![0x42u8; args.record_size]);
        // One append before the clock starts: it waits for the first segment to be prepared,
        // which is start-up work, not append work.
        store
            .append(bench_request(&body, "", 0, Durability::Synced))
            .await
            .unwrap();
        let stats_before = store.stats();
        // The appenders look at a flag that a timer sets, not at the clock: a clock read per
        // append is producer-side work that counted as engine CPU.
        let stop = Rc::new(Cell::new(false));
        if spec.bytes.is_none() {
            let (stop, run_for) = (stop.clone(), Duration::from_secs_f64(args.seconds));
            compio::runtime::spawn(async move {
                compio::time::sleep(run_for).await;
                stop.set(true);
            })
            .detach();
        }
        // Latency is recorded where a figure uses it (sync runs' p50/p99); async runs skip
        // the two clock reads and the histogram per append.
        let timed = spec.durability == Durability::Synced;
        let count = Rc::new(Cell::new(0u64));
        let hist = Rc::new(std::cell::RefCell::new(Histogram::<u64>::new(3).unwrap()));
        let started = Instant::now();
        let cpu_before = thread_cpu();
        let user_before = thread_user_cpu();
        let mut handles = Vec::new();
        for a in 0..spec.appenders {
            let (store, body, count, hist, stop) = (
                store.clone(),
                body.clone(),
                count.clone(),
                hist.clone(),
                stop.clone(),
            );
            handles.push(compio::runtime::spawn(async move {
                let mut props = String::with_capacity(96);
                let mut i = 0u64;
                let more = || match spec.bytes {
                    Some(b) => store.appended_offset() < b,
                    None => !stop.get(),
                };
                while more() {
                    // The producer's side of the work (a unique key per message), kept
                    // cheap so the figure is the engine's: no formatting machinery.
                    props.clear();
                    props.push_str("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}");
                    push_hex(&mut props, a as u64);
                    push_hex(&mut props, i);
                    props.push_str("\u{2}WAIT\u{1}true\u{2}");
                    let n = spec.appenders as u64;
                    let q = ((a as u64 + i * n) % spec.queues as u64) as i32;
                    let t = timed.then(Instant::now);
                    store
                        .append(bench_request(&body, &props, q, spec.durability))
                        .await
                        .unwrap();
                    if let Some(t) = t {
                        let _ = hist.borrow_mut().record(t.elapsed().as_micros() as u64);
                    }
                    count.set(count.get() + 1);
                    i += 1;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let seconds = secs(started.elapsed());
        let cpu = secs(thread_cpu() - cpu_before);
        let user = secs(thread_user_cpu() - user_before);
        let after = store.stats();
        let h = hist.borrow();
        EngineRun {
            appends: count.get(),
            seconds,
            stats: StoreStats {
                writes: after.writes - stats_before.writes,
                write_bytes: after.write_bytes - stats_before.write_bytes,
                syncs: after.syncs - stats_before.syncs,
            },
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            cpu_us_per_append: cpu * 1e6 / count.get().max(1) as f64,
            user_us_per_append: user * 1e6 / count.get().max(1) as f64,
        }
    })
}

/// Appends `v` as 16 upper-case hex digits.
fn push_hex(dst: &mut String, v: u64) {
    for shift in (0..16).rev() {
        let d = ((v >> (shift * 4)) & 0xF) as u8;
        dst.push(char::from(if d < 10 { b'0' + d } else { b'A' + d - 10 }));
    }
}

/// The child of the recovery scenario: fill `bytes` of log, say so, wait to be killed.
fn child_fill(dir: &Path, bytes: u64, full_scan: bool, args: &Args) {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = engine_config(dir, FlushMode::Async, args);
        if full_scan {
            cfg.checkpoint_interval_ms = u64::MAX / 4000;
        }
        let disk = UringDisk::new(SyncMethod::default()).unwrap();
        let store = Rc::new(Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap());
        let body = Rc::new(vec![0x42u8; 1024]);
        let mut handles = Vec::new();
        for a in 0..256u64 {
            let (store, body) = (store.clone(), body.clone());
            handles.push(compio::runtime::spawn(async move {
                let mut i = 0u64;
                while store.appended_offset() < bytes {
                    let props = format!("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}{a:016X}{i:016X}\u{2}");
                    let q = (a % 8) as i32;
                    let req = bench_request(&body, &props, q, Durability::Written);
                    store.append(req).await.unwrap();
                    i += 1;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        println!("FILLED {}", store.written_offset());
        std::io::stdout().flush().unwrap();
        loop {
            compio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// Fills a log in a child, kills it with SIGKILL, times `open`: (seconds, log bytes, queues).
fn recovery(args: &Args) -> (f64, u64, usize) {
    let dir = fresh(&args.dir, "recovery");
    let bytes = (args.recovery_gib * (1u64 << 30) as f64) as u64;
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    if args.smoke {
        cmd.arg("--smoke");
    }
    let full = if args.recovery_full_scan {
        "full"
    } else {
        "normal"
    };
    let mut child = cmd
        .args([
            "--child-fill",
            dir.to_str().unwrap(),
            &bytes.to_string(),
            full,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("FILLED"), "child said {line:?}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let rt = compio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(async {
        let start = Instant::now();
        let disk = UringDisk::new(SyncMethod::default()).unwrap();
        let cfg = engine_config(&dir, FlushMode::Async, args);
        let store = Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap();
        let t = secs(start.elapsed());
        (t, store.appended_offset(), store.queue_count())
    });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// One figure over the rounds.
#[derive(Debug, Default, Clone)]
struct Series(Vec<f64>);

impl Series {
    fn sorted(&self) -> Vec<f64> {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        v
    }
    fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }
    fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }
    fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }
    fn json(&self) -> Value {
        json!({"median": self.median(), "min": self.min(), "max": self.max(), "rounds": self.0})
    }
}

/// Every figure of the rounds, by name.
#[derive(Default)]
struct Figures(BTreeMap<&'static str, Series>);

impl Figures {
    fn push(&mut self, name: &'static str, v: f64) {
        self.0.entry(name).or_default().0.push(v);
    }
    fn median(&self, name: &str) -> f64 {
        self.0.get(name).map_or(f64::NAN, Series::median)
    }
    fn json(&self, names: &[&str]) -> Value {
        let mut m = Map::new();
        for n in names {
            if let Some(s) = self.0.get(n) {
                m.insert((*n).to_owned(), s.json());
            }
        }
        Value::Object(m)
    }
}

/// Async rounds' part: runs 1–4 of the module doc.
fn async_round(args: &Args, filled: &Filled, kind: FileKind, f: &mut Figures) {
    let s = args.seconds;
    let raw_1m = raw_buffered(&args.dir, 1 << 20, Amount::Seconds(s), filled, kind);
    let many = async_run(args, "asyncmany", args.many_queues);
    let run8 = async_run(args, "async8", 8);
    let chunk = run8.bytes_per_write().round() as usize;
    let same_bytes = Amount::Bytes(run8.stats.write_bytes);
    let raw_bytes = raw_buffered(&args.dir, chunk, same_bytes, filled, kind);
    let raw_batch = raw_buffered(&args.dir, chunk, Amount::Seconds(s), filled, kind);
    println!(
        "  async: raw 1 MiB pwrite {:.0} MB/s | engine {} queues {:.0} appends/s | engine 8 queues {:.0} appends/s, {:.0} MB/s, {:.0} B per write | raw pwrite of {chunk} B {:.0} MB/s | ratios {:.2} (same chunk), {:.2} (1 MiB), many/8 {:.2}",
        raw_1m / 1e6,
        args.many_queues,
        many.appends_per_s(),
        run8.appends_per_s(),
        run8.log_bytes_per_s() / 1e6,
        run8.bytes_per_write(),
        raw_batch / 1e6,
        run8.log_bytes_per_s() / raw_batch,
        run8.log_bytes_per_s() / raw_1m,
        many.appends_per_s() / run8.appends_per_s(),
    );
    println!(
        "         raw pwrite of the engine's {:.0} MB in {chunk} B chunks {:.0} MB/s: ratio {:.2}",
        run8.stats.write_bytes as f64 / 1e6,
        raw_bytes / 1e6,
        run8.log_bytes_per_s() / raw_bytes,
    );
    f.push("raw_buffered_1mib_bytes_per_s", raw_1m);
    f.push("raw_buffered_engine_chunk_bytes_per_s", raw_batch);
    f.push("raw_buffered_engine_bytes_bytes_per_s", raw_bytes);
    f.push(
        "async_vs_raw_same_bytes",
        run8.log_bytes_per_s() / raw_bytes,
    );
    f.push("engine_async_8q_appends_per_s", run8.appends_per_s());
    f.push("engine_async_8q_log_bytes_per_s", run8.log_bytes_per_s());
    f.push("engine_async_8q_bytes_per_write", run8.bytes_per_write());
    f.push("engine_async_8q_cpu_us_per_append", run8.cpu_us_per_append);
    f.push(
        "engine_async_8q_user_us_per_append",
        run8.user_us_per_append,
    );
    f.push(
        "engine_async_many_q_cpu_us_per_append",
        many.cpu_us_per_append,
    );
    f.push("engine_async_many_q_appends_per_s", many.appends_per_s());
    f.push(
        "async_vs_raw_same_chunk",
        run8.log_bytes_per_s() / raw_batch,
    );
    f.push("async_vs_raw_1mib", run8.log_bytes_per_s() / raw_1m);
    f.push(
        "many_queues_vs_8",
        many.appends_per_s() / run8.appends_per_s(),
    );
}

/// Sync rounds' part: runs 5–6 of the module doc. Returns the kind of file written.
fn sync_round(args: &Args, filled: &Filled, f: &mut Figures) -> FileKind {
    let (root, kind) = sync_store(args, "sync");
    let run = engine_run(&root, Spec::sync_flush(args), args);
    let _ = std::fs::remove_dir_all(&root);
    let batch = run.bytes_per_sync().round() as usize;
    let raw = raw_write_sync(&args.dir, batch, args.seconds, filled, kind);
    let uring = raw_uring_durable_write(&args.dir, batch, args.seconds, filled, kind);
    // The raw run's records/s: its rounds/s times the records one engine sync covered.
    let raw_records = raw.rounds_per_s * run.appends_per_sync();
    let uring_records = uring.rounds_per_s * run.appends_per_sync();
    println!(
        "  sync: engine {:.0} appends/s, {:.0} fdatasync/s, {:.1} appends and {batch} B per fdatasync, p50 {} µs, p99 {} µs, max {} µs | raw pwrite+fdatasync of {batch} B {:.0} rounds/s (= {raw_records:.0} records/s), p50 {} µs, p99 {} µs | ratios {:.2} throughput, {:.2} p99",
        run.appends_per_s(),
        run.syncs_per_s(),
        run.appends_per_sync(),
        run.p50_us,
        run.p99_us,
        run.max_us,
        raw.rounds_per_s,
        raw.p50_us,
        raw.p99_us,
        run.appends_per_s() / raw_records,
        run.p99_us as f64 / raw.p99_us.max(1) as f64,
    );
    println!(
        "        raw io_uring durable write (RWF_DSYNC) of {batch} B {:.0} rounds/s, p50 {} µs, p99 {} µs ({:.2} of the syscalls); engine vs it {:.2}",
        uring.rounds_per_s,
        uring.p50_us,
        uring.p99_us,
        uring.rounds_per_s / raw.rounds_per_s,
        run.appends_per_s() / uring_records,
    );
    f.push("engine_sync_appends_per_s", run.appends_per_s());
    f.push("engine_sync_fdatasyncs_per_s", run.syncs_per_s());
    f.push("engine_sync_appends_per_fdatasync", run.appends_per_sync());
    f.push("engine_sync_bytes_per_fdatasync", run.bytes_per_sync());
    f.push("engine_sync_p50_us", run.p50_us as f64);
    f.push("engine_sync_p99_us", run.p99_us as f64);
    f.push("engine_sync_p999_us", run.p999_us as f64);
    f.push("engine_sync_max_us", run.max_us as f64);
    f.push("engine_sync_cpu_us_per_append", run.cpu_us_per_append);
    f.push("engine_sync_user_us_per_append", run.user_us_per_append);
    f.push("raw_sync_rounds_per_s", raw.rounds_per_s);
    f.push("raw_sync_records_per_s", raw_records);
    f.push("raw_sync_p50_us", raw.p50_us as f64);
    f.push("raw_sync_p99_us", raw.p99_us as f64);
    f.push("raw_uring_sync_rounds_per_s", uring.rounds_per_s);
    f.push("raw_uring_sync_p50_us", uring.p50_us as f64);
    f.push("raw_uring_sync_p99_us", uring.p99_us as f64);
    f.push(
        "raw_uring_vs_syscall_sync",
        uring.rounds_per_s / raw.rounds_per_s,
    );
    f.push(
        "sync_throughput_vs_raw_uring",
        run.appends_per_s() / uring_records,
    );
    f.push("sync_throughput_vs_raw", run.appends_per_s() / raw_records);
    f.push(
        "sync_p99_vs_raw_p99",
        run.p99_us as f64 / raw.p99_us.max(1) as f64,
    );
    kind
}

/// The kernel's dirty limit in bytes: `vm.dirty_bytes`, or else `vm.dirty_ratio` percent of
/// the memory the kernel counts as dirtyable, approximated by `MemAvailable`.
fn dirty_limit_bytes() -> u64 {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let dirty_bytes: u64 = read("/proc/sys/vm/dirty_bytes").trim().parse().unwrap_or(0);
    if dirty_bytes > 0 {
        return dirty_bytes;
    }
    let ratio: u64 = read("/proc/sys/vm/dirty_ratio")
        .trim()
        .parse()
        .unwrap_or(20);
    let available_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(4 << 20);
    available_kib * 1024 * ratio / 100
}

/// What `--sustained` writes: 1.5× the dirty limit, so most of it is paced by writeback.
fn sustained_default_bytes() -> u64 {
    dirty_limit_bytes() * 3 / 2
}

/// Bytes free for unprivileged writes on the file system holding `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: an all-zero `statvfs` is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.f_bavail as u64 * st.f_frsize as u64
}

/// The sustained pair: raw buffered `pwrite` of `bytes` in the engine's write size, then the
/// async engine (8 queues) until its log holds `bytes`, each from a settled page cache. Each
/// file is deleted before the next run; skipped when the disk would be left with less than
/// 15 GiB free (a shared machine).
fn sustained(args: &Args, bytes: u64, chunk: usize, kind: FileKind, f: &mut Figures) {
    let free = free_bytes(&args.dir);
    if free < bytes + (15 << 30) {
        println!(
            "sustained async skipped: {:.1} GB free, {:.1} GB to write would leave less than 15 GiB",
            free as f64 / 1e9,
            bytes as f64 / 1e9
        );
        return;
    }
    settle();
    let filled = Filled {
        path: PathBuf::new(),
        len: 0,
    };
    assert!(
        kind != FileKind::Filled,
        "the async log is never pre-filled"
    );
    let raw = raw_buffered(&args.dir, chunk, Amount::Bytes(bytes), &filled, kind);
    let raw_s = bytes as f64 / raw;
    settle();
    let mut spec = Spec::async_flush(args, 8);
    spec.bytes = Some(bytes);
    let run = engine_run(&fresh(&args.dir, "sustained"), spec, args);
    let _ = std::fs::remove_dir_all(args.dir.join("sustained"));
    settle();
    let ratio = run.log_bytes_per_s() / raw;
    println!(
        "sustained async ({:.2} GB each, dirty limit {:.2} GB): raw pwrite of {chunk} B {:.0} MB/s ({raw_s:.1} s) | engine {:.0} MB/s ({:.1} s, {:.0} B per write, {:.2} µs CPU per append) | ratio {ratio:.2}",
        bytes as f64 / 1e9,
        dirty_limit_bytes() as f64 / 1e9,
        raw / 1e6,
        run.log_bytes_per_s() / 1e6,
        run.seconds,
        run.bytes_per_write(),
        run.cpu_us_per_append,
    );
    f.push("raw_buffered_sustained_bytes_per_s", raw);
    f.push(
        "engine_async_sustained_log_bytes_per_s",
        run.log_bytes_per_s(),
    );
    f.push("sustained_bytes", bytes as f64);
    f.push("async_vs_raw_sustained", ratio);
}

fn target(ratio: f64, goal: f64, at_least: bool) -> Value {
    let pass = if at_least {
        ratio >= goal
    } else {
        ratio <= goal
    };
    json!({"median": ratio, "target": goal, "at_least": at_least, "pass": pass})
}

fn main() {
    let Some((args, mode)) = parse_args() else {
        return;
    };
    match mode {
        Mode::Bench => bench(&args),
        Mode::OnlyAsync(dir, queues) => {
            let r = engine_run(
                &fresh(&dir, "async"),
                Spec::async_flush(&args, queues),
                &args,
            );
            println!(
                "{:.0} appends/s, {:.2} µs CPU per append ({:.2} µs user)",
                r.appends_per_s(),
                r.cpu_us_per_append,
                r.user_us_per_append
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        Mode::OnlySync(dir) => {
            let args = Args { dir, ..args };
            let (root, kind) = sync_store(&args, "sync");
            let r = engine_run(&root, Spec::sync_flush(&args), &args);
            println!(
                "{:.0} appends/s, {:.2} µs CPU per append ({:.2} µs user), {:.1} appends per fdatasync, p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs ({})",
                r.appends_per_s(),
                r.cpu_us_per_append,
                r.user_us_per_append,
                r.appends_per_sync(),
                r.p50_us,
                r.p99_us,
                r.p999_us,
                r.max_us,
                kind.name()
            );
            let _ = std::fs::remove_dir_all(&args.dir);
        }
        Mode::TimeOpen(dir) => time_open(&dir, &args),
        Mode::OnlyRecovery(dir) => {
            let args = Args { dir, ..args };
            std::fs::create_dir_all(&args.dir).unwrap();
            let (t, bytes, queues) = recovery(&args);
            println!(
                "recovery after kill -9 of a {:.2} GiB log ({queues} queues): {t:.3} s{}",
                bytes as f64 / (1u64 << 30) as f64,
                if args.recovery_full_scan {
                    " (full scan)"
                } else {
                    ""
                }
            );
            let _ = std::fs::remove_dir_all(&args.dir);
        }
        Mode::ChildFill(dir, bytes, full) => child_fill(&dir, bytes, full, &args),
    }
}

fn time_open(dir: &Path, args: &Args) {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let mut cfg = engine_config(dir, FlushMode::Async, args);
        if let Some(c) = std::env::var("RINGMQ_CHUNK")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            cfg.recovery_chunk_bytes = c;
        }
        let disk = UringDisk::new(SyncMethod::default()).unwrap();
        let store = Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap();
        let t = secs(start.elapsed());
        println!("open of {} bytes took {t:.3} s", store.appended_offset());
        // Leave the checkpoint as it was found: drop without closing.
    });
}

fn bench(args: &Args) {
    std::fs::create_dir_all(&args.dir).unwrap();
    let s = args.seconds;
    println!(
        "engine-bench: dir {}, {} rounds of {s} s runs, {} B bodies, sync method {:?}",
        args.dir.display(),
        args.rounds,
        args.record_size,
        args.sync_method
    );
    let filled = Filled::create(&args.dir, if args.smoke { 8 << 20 } else { 1 << 30 });
    let async_kind =
        FileKind::of_fresh_log(args.prealloc.unwrap_or(Prealloc::Auto), FlushMode::Async);
    let mut f = Figures::default();
    let mut sync_kind = FileKind::Filled;
    for round in 0..args.rounds {
        println!("round {}/{}", round + 1, args.rounds);
        async_round(args, &filled, async_kind, &mut f);
        sync_kind = sync_round(args, &filled, &mut f);
    }
    if let Some(bytes) = args.sustained_bytes {
        // The rounds are over: the pre-filled file gives its space back to the big writes.
        let _ = std::fs::remove_dir_all(args.dir.join("raw-filled"));
        let chunk = f.median("engine_async_8q_bytes_per_write").round().max(1.0) as usize;
        sustained(args, bytes, chunk, async_kind, &mut f);
    }
    let mut recovery_json = Value::Null;
    if args.recovery_gib > 0.0 {
        let (t, bytes, queues) = recovery(args);
        println!(
            "recovery after kill -9 of a {:.2} GiB log ({queues} queues): {t:.3} s{}",
            bytes as f64 / (1u64 << 30) as f64,
            if args.recovery_full_scan {
                " (full scan)"
            } else {
                ""
            }
        );
        recovery_json =
            json!({"log_bytes": bytes, "seconds": t, "full_scan": args.recovery_full_scan});
    }
    for d in [
        "async8",
        "asyncmany",
        "sync",
        "raw-filled",
        "raw-run",
        "sustained",
    ] {
        let _ = std::fs::remove_dir_all(args.dir.join(d));
    }

    let ratio_names = [
        "async_vs_raw_same_chunk",
        "async_vs_raw_same_bytes",
        "async_vs_raw_1mib",
        "many_queues_vs_8",
        "sync_throughput_vs_raw",
        "sync_p99_vs_raw_p99",
        "sync_throughput_vs_raw_uring",
        "raw_uring_vs_syscall_sync",
        "async_vs_raw_sustained",
    ];
    let mut ratios = Map::new();
    for n in ratio_names {
        if f.0.contains_key(n) {
            ratios.insert(n.to_owned(), json!(f.median(n)));
        }
    }
    let baselines = json!({
        "async_vs_raw_same_chunk": "raw buffered pwrite, engine's bytes per write, same file kind, for --seconds (run 4b)",
        "async_vs_raw_same_bytes": "raw buffered pwrite, engine's bytes per write, same file kind, exactly the bytes the engine wrote (run 4a)",
        "async_vs_raw_1mib": "raw buffered pwrite in 1 MiB writes for --seconds (run 1)",
        "async_vs_raw_sustained": "raw buffered pwrite, engine's bytes per write, 1.5x the kernel dirty limit (or --sustained-gib), both writeback-bound (--sustained)",
        "sync_throughput_vs_raw": "raw pwrite + fdatasync(2) syscalls of one engine group commit's bytes, rounds/s x appends per group commit (run 6a)",
        "sync_p99_vs_raw_p99": "p99 latency of one raw pwrite + fdatasync(2) round (run 6a)",
        "sync_throughput_vs_raw_uring": "raw io_uring RWF_DSYNC write of one engine group commit's bytes (run 6b)",
        "many_queues_vs_8": "none: engine with --many-queues queues / engine with 8 queues",
    });
    let figures: Vec<&str> = f.0.keys().copied().collect();
    let mut targets = Map::new();
    // (ratio, issue 3's bound, whether the ratio must be at least the bound)
    for (name, bound, at_least) in [
        ("async_vs_raw_same_chunk", 0.9, true),
        ("async_vs_raw_same_bytes", 0.9, true),
        ("sync_throughput_vs_raw", 0.8, true),
        ("sync_p99_vs_raw_p99", 2.0, false),
        ("many_queues_vs_8", 0.9, true),
    ] {
        targets.insert(name.into(), target(f.median(name), bound, at_least));
    }
    if let Some(t) = recovery_json.get("seconds").and_then(Value::as_f64) {
        targets.insert("recovery_seconds".into(), target(t, 5.0, false));
    }
    println!("medians over {} rounds:", args.rounds);
    for n in ratio_names {
        let Some(series) = f.0.get(n) else {
            continue;
        };
        println!(
            "  {n}: {:.3} (min {:.3}, max {:.3})",
            series.median(),
            series.min(),
            series.max()
        );
    }
    let out = json!({
        "record_body_bytes": args.record_size,
        "seconds_per_run": s,
        "rounds": args.rounds,
        "sync_method": format!("{:?}", args.sync_method),
        "async_file": async_kind.name(),
        "sync_file": sync_kind.name(),
        "ratios": ratios,
        "baselines": baselines,
        "targets": targets,
        "figures": f.json(&figures),
        "recovery": recovery_json,
    });
    println!("RESULT {out}");
}
