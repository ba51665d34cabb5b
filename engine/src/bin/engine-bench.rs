//! engine-bench: the raw disk baseline and the engine, measured in one run on the same disk.
//!
//! ```text
//! cargo run -p ringmq-engine --release --bin engine-bench -- --dir /tmp/rb [--seconds 3]
//!     [--record-size 1024] [--recovery-gib 4] [--recovery-full-scan] [--smoke]
//! ```
//! Scenarios (1 KiB bodies by default):
//! 1. raw buffered `pwrite` in 1 MiB chunks and in record-size chunks (page cache);
//! 2. engine async flush, 8 queues and 10 000 queues (many concurrent appenders);
//! 3. engine sync flush, 64 concurrent appenders, fdatasync on a sync thread and as an
//!    io_uring op;
//! 4. raw `pwrite` + `fdatasync` at the batch size group commit reached, appending to a new
//!    file and overwriting a pre-filled one (DESIGN.md's pre-created segment claim);
//! 5. with `--recovery-gib N`: a child fills N GiB, is killed with SIGKILL, and `open` is timed.
//!
//! The last line is `RESULT {json}` with every figure and the ratios of the issue's targets.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::Cell;
use std::fs::OpenOptions;
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq_engine::disk::{SyncMethod, UringDisk};
use ringmq_engine::{
    AppendRequest, Durability, FlushMode, Prealloc, Store, StoreConfig, SystemClock,
};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
struct Args {
    dir: PathBuf,
    seconds: f64,
    record_size: usize,
    async_appenders: usize,
    sync_appenders: usize,
    many_queues: i32,
    recovery_gib: f64,
    recovery_full_scan: bool,
    smoke: bool,
    prealloc: Option<Prealloc>,
}

const HELP: &str = "engine-bench: raw disk baseline vs the ringmq engine, one run, one RESULT line

options:
  --dir DIR              scratch directory on the disk to measure (default /tmp/ringmq-engine-bench)
  --seconds S            duration of each timed scenario (default 3)
  --record-size N        message body bytes (default 1024)
  --async-appenders N    concurrent appenders in async-flush runs (default 512)
  --sync-appenders N     concurrent appenders in sync-flush runs (default 64)
  --many-queues N        queue count of the many-queues run (default 10000)
  --recovery-gib G       also fill G GiB in a child, kill -9 it, time recovery (default off)
  --recovery-full-scan   the child never checkpoints, so recovery scans the whole log
  --smoke                tiny parameters (used by the test suite)
  --prealloc P           engine segment preparation: create, extend or fill (default: the
                         engine's default, StoreConfig::new)
  --time-open DIR        only time Store::open (recovery) of an existing store directory;
                         RINGMQ_CHUNK=<bytes> overrides the recovery read size
";

fn parse_args() -> Option<Args> {
    let mut a = Args {
        dir: PathBuf::from("/tmp/ringmq-engine-bench"),
        seconds: 3.0,
        record_size: 1024,
        async_appenders: 512,
        sync_appenders: 64,
        many_queues: 10_000,
        recovery_gib: 0.0,
        recovery_full_scan: false,
        smoke: false,
        prealloc: None,
    };
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
            "--record-size" => a.record_size = val().parse().unwrap(),
            "--async-appenders" => a.async_appenders = val().parse().unwrap(),
            "--sync-appenders" => a.sync_appenders = val().parse().unwrap(),
            "--many-queues" => a.many_queues = val().parse().unwrap(),
            "--recovery-gib" => a.recovery_gib = val().parse().unwrap(),
            "--recovery-full-scan" => a.recovery_full_scan = true,
            "--smoke" => a.smoke = true,
            "--prealloc" => {
                a.prealloc = Some(match val().as_str() {
                    "create" => Prealloc::Create,
                    "extend" => Prealloc::Extend,
                    "fill" => Prealloc::Fill,
                    other => panic!("--prealloc {other}: create, extend or fill"),
                })
            }
            "--only-async" => {
                // For profiling: only the async-flush engine run (perf record -- engine-bench
                // --only-async DIR).
                let dir = PathBuf::from(val());
                let r = engine_run(
                    &fresh(&dir, "async8"),
                    FlushMode::Async,
                    Durability::Written,
                    SyncMethod::default(),
                    a.async_appenders,
                    8,
                    &a,
                );
                println!("{:.0} appends/s", r.appends as f64 / r.seconds);
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            }
            "--only-sync" => {
                // For profiling and A/B runs: only the sync-flush engine run (io_uring sync).
                let dir = PathBuf::from(val());
                let r = engine_run(
                    &fresh(&dir, "sync"),
                    FlushMode::Sync,
                    Durability::Synced,
                    SyncMethod::default(),
                    a.sync_appenders,
                    8,
                    &a,
                );
                println!(
                    "{:.0} appends/s, p50 {} µs, p99 {} µs",
                    r.appends as f64 / r.seconds,
                    r.p50_us,
                    r.p99_us
                );
                let _ = std::fs::remove_dir_all(&dir);
                return None;
            }
            "--time-open" => {
                let dir = PathBuf::from(val());
                let rt = compio::runtime::Runtime::new().unwrap();
                rt.block_on(async {
                    let start = Instant::now();
                    let mut cfg = engine_config(&dir, FlushMode::Async);
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
                return None;
            }
            "--child-fill" => {
                let dir = PathBuf::from(val());
                let bytes: u64 = val().parse().unwrap();
                let full = val() == "full";
                child_fill(&dir, bytes, full);
                return None;
            }
            other => panic!("unknown option {other}; see --help"),
        }
    }
    if a.smoke {
        a.seconds = 0.2;
        a.async_appenders = 16;
        a.sync_appenders = 8;
        a.many_queues = 200;
        a.recovery_gib = a.recovery_gib.min(0.01);
    }
    Some(a)
}

/// Flushes what earlier scenarios left dirty, so their writeback does not run during the
/// next measurement.
fn settle() {
    // SAFETY: sync(2) has no arguments and cannot fail.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_millis(100));
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    settle();
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-9)
}

/// Where a raw run writes: a fresh file it extends (`Append`), or a file already filled with
/// zeros and synced, overwritten from its start and wrapping at its end (`Overwrite`: the
/// state of a segment the engine pre-filled with `Prealloc::Fill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    Append,
    Overwrite,
}

/// The pre-filled file of the `Overwrite` runs, created once per bench run.
struct Filled {
    path: PathBuf,
    len: u64,
}

impl Filled {
    fn create(dir: &Path, len: u64) -> Filled {
        let path = fresh(dir, "raw-filled").join("f");
        let f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut off = 0;
        while off < len {
            f.write_all_at(&zeros, off).unwrap();
            off += zeros.len() as u64;
        }
        f.sync_all().unwrap();
        Filled { path, len }
    }

    /// The file to write and the offset limit (wrap-around point); fresh for `Append`.
    fn open(&self, dir: &Path, state: FileState) -> (std::fs::File, u64) {
        match state {
            FileState::Append => {
                let path = fresh(dir, "raw-sync").join("f");
                let f = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .open(path)
                    .unwrap();
                (f, u64::MAX)
            }
            FileState::Overwrite => {
                settle();
                let f = OpenOptions::new().write(true).open(&self.path).unwrap();
                (f, self.len)
            }
        }
    }
}

/// Plain buffered pwrite of `chunk`-byte writes for `seconds`: bytes/s.
fn raw_buffered(dir: &Path, chunk: usize, seconds: f64, filled: &Filled, state: FileState) -> f64 {
    let (f, limit) = filled.open(dir, state);
    let buf = vec![0x5Au8; chunk];
    let start = Instant::now();
    let mut off = 0u64;
    let mut written = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..64 {
            if off + chunk as u64 > limit {
                off = 0;
            }
            f.write_all_at(&buf, off).unwrap();
            off += chunk as u64;
            written += chunk as u64;
        }
    }
    let rate = written as f64 / secs(start.elapsed());
    drop(f);
    let _ = std::fs::remove_dir_all(dir.join("raw-sync"));
    rate
}

/// `pwrite` + `fdatasync` of `batch` bytes per round: (rounds/s, p50 µs, p99 µs).
fn raw_write_sync(
    dir: &Path,
    batch: usize,
    seconds: f64,
    filled: &Filled,
    state: FileState,
) -> (f64, u64, u64) {
    let (f, limit) = filled.open(dir, state);
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
    let rate = rounds as f64 / secs(start.elapsed());
    drop(f);
    let _ = std::fs::remove_dir_all(dir.join("raw-sync"));
    (
        rate,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
    )
}

/// [`raw_write_sync`] with the write and `fsync(DATASYNC)` as io_uring operations (what the
/// engine does with `SyncMethod::Uring`), one after the other: (rounds/s, p50 µs, p99 µs).
fn raw_uring_write_sync(
    dir: &Path,
    batch: usize,
    seconds: f64,
    filled: &Filled,
    state: FileState,
) -> (f64, u64, u64) {
    let (path, limit) = match state {
        FileState::Append => (fresh(dir, "raw-sync").join("f"), u64::MAX),
        FileState::Overwrite => {
            settle();
            (filled.path.clone(), filled.len)
        }
    };
    let rt = compio::runtime::Runtime::new().unwrap();
    let r = rt.block_on(async {
        let f = compio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();
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
            let mut w = &f;
            let compio::BufResult(r, b) =
                compio::io::AsyncWriteAtExt::write_all_at(&mut w, buf, off).await;
            r.unwrap();
            buf = b;
            f.sync_data().await.unwrap();
            hist.record(t.elapsed().as_micros() as u64).unwrap();
            off += buf.len() as u64;
            rounds += 1;
        }
        (
            rounds as f64 / secs(start.elapsed()),
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
        )
    });
    let _ = std::fs::remove_dir_all(dir.join("raw-sync"));
    r
}

/// io_uring `fsync(DATASYNC)` vs the syscall on the same file, after 4 KiB writes: rounds/s.
fn raw_uring_vs_syscall(dir: &Path, seconds: f64, filled: &Filled) -> (f64, f64) {
    let path = fresh(dir, "raw-uring").join("f");
    let rt = compio::runtime::Runtime::new().unwrap();
    let uring = rt.block_on(async {
        let f = compio::fs::File::create(&path).await.unwrap();
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            let mut w = &f;
            let compio::BufResult(r, _) =
                compio::io::AsyncWriteAtExt::write_all_at(&mut w, vec![1u8; 4096], n * 4096).await;
            r.unwrap();
            f.sync_data().await.unwrap();
            n += 1;
        }
        n as f64 / secs(start.elapsed())
    });
    let (syscall, _, _) = raw_write_sync(dir, 4096, seconds, filled, FileState::Append);
    (uring, syscall)
}

fn engine_config(root: &Path, mode: FlushMode) -> StoreConfig {
    let mut cfg = StoreConfig::new(root);
    cfg.flush_mode = mode;
    cfg
}

/// Raw write+fdatasync figures around one engine run, per method and file state: (rounds/s,
/// p50 µs, p99 µs), rounds averaged and latencies the worse of before and after.
struct RawSync {
    append: (f64, u64, u64),
    overwrite: (f64, u64, u64),
    uring_append: (f64, u64, u64),
    uring_overwrite: (f64, u64, u64),
}

type Raw = (f64, u64, u64);

impl RawSync {
    /// `before` and `after` in [`RawSync`]'s field order, `after` reversed.
    fn around(before: [Raw; 4], after: [Raw; 4]) -> RawSync {
        let merge = |a: Raw, b: Raw| ((a.0 + b.0) / 2.0, a.1.max(b.1), a.2.max(b.2));
        RawSync {
            append: merge(before[0], after[3]),
            overwrite: merge(before[1], after[2]),
            uring_append: merge(before[2], after[1]),
            uring_overwrite: merge(before[3], after[0]),
        }
    }

    /// The fastest method and file state's rounds/s and its p99: the baseline the targets
    /// use.
    fn best(&self) -> (f64, u64) {
        let all = [
            self.append,
            self.overwrite,
            self.uring_append,
            self.uring_overwrite,
        ];
        let b = all
            .into_iter()
            .fold(all[0], |b, r| if r.0 > b.0 { r } else { b });
        (b.0, b.2)
    }
}

struct EngineRun {
    appends: u64,
    seconds: f64,
    stats: ringmq_engine::StoreStats,
    p50_us: u64,
    p99_us: u64,
}

/// An async-flush engine run with `queues` queues in a fresh directory `name` (the shape
/// every async scenario uses).
fn async_run(args: &Args, name: &str, queues: i32) -> EngineRun {
    engine_run(
        &fresh(&args.dir, name),
        FlushMode::Async,
        Durability::Written,
        SyncMethod::default(),
        args.async_appenders,
        queues,
        args,
    )
}

/// `appenders` tasks append for `seconds`, spread over `queues` queues.
fn engine_run(
    root: &Path,
    mode: FlushMode,
    durability: Durability,
    sync: SyncMethod,
    appenders: usize,
    queues: i32,
    args: &Args,
) -> EngineRun {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let disk = UringDisk::new(sync).unwrap();
        let mut cfg = engine_config(root, mode);
        if let Some(p) = args.prealloc {
            cfg.prealloc = p;
        }
        if args.smoke {
            cfg.segment_size = 16 << 20; // a pre-filled segment is written whole
        }
        let store = Rc::new(Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap());
        let body = Rc::new(vec![0x42u8; args.record_size]);
        // One append before the clock starts: it waits for the first segment to be prepared
        // (zero-filled under `Prealloc::Fill`), which is start-up work, not append work.
        store
            .append(AppendRequest {
                topic: "BenchTopic",
                queue_id: 0,
                body: &body,
                flag: 0,
                sys_flag: 0,
                born_timestamp: 1_700_000_000_000,
                born_host: "127.0.0.1:40000".parse().unwrap(),
                properties: "",
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                tag_code: 0,
                durability: Durability::Synced,
            })
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let count = Rc::new(Cell::new(0u64));
        let hist = Rc::new(std::cell::RefCell::new(Histogram::<u64>::new(3).unwrap()));
        let started = Instant::now();
        let mut handles = Vec::new();
        for a in 0..appenders {
            let (store, body, count, hist) =
                (store.clone(), body.clone(), count.clone(), hist.clone());
            handles.push(compio::runtime::spawn(async move {
                let mut props = String::with_capacity(96);
                let born_host = "127.0.0.1:40000".parse().unwrap();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    // The producer's side of the work (a unique key per message), kept
                    // cheap so the figure is the engine's: no formatting machinery.
                    props.clear();
                    props.push_str("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}");
                    push_hex(&mut props, a as u64);
                    push_hex(&mut props, i);
                    props.push_str("\u{2}WAIT\u{1}true\u{2}");
                    let q = ((a as u64 + i * appenders as u64) % queues as u64) as i32;
                    let req = AppendRequest {
                        topic: "BenchTopic",
                        queue_id: q,
                        body: &body,
                        flag: 0,
                        sys_flag: 0,
                        born_timestamp: 1_700_000_000_000,
                        born_host,
                        properties: &props,
                        reconsume_times: 0,
                        prepared_transaction_offset: 0,
                        tag_code: 2598919,
                        durability,
                    };
                    let t = Instant::now();
                    store.append(req).await.unwrap();
                    let _ = hist.borrow_mut().record(t.elapsed().as_micros() as u64);
                    count.set(count.get() + 1);
                    i += 1;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let elapsed = secs(started.elapsed());
        let stats = store.stats();
        let h = hist.borrow();
        let run = EngineRun {
            appends: count.get(),
            seconds: elapsed,
            stats,
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
        };
        drop(h);
        run
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
fn child_fill(dir: &Path, bytes: u64, full_scan: bool) {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cfg = engine_config(dir, FlushMode::Async);
        if full_scan {
            cfg.checkpoint_interval_ms = u64::MAX / 4000;
        }
        let store = Rc::new(
            Store::open(
                UringDisk::new(SyncMethod::default()).unwrap(),
                cfg,
                Rc::new(SystemClock),
            )
            .await
            .unwrap(),
        );
        let body = Rc::new(vec![0x42u8; 1024]);
        let mut handles = Vec::new();
        for a in 0..256u64 {
            let (store, body) = (store.clone(), body.clone());
            handles.push(compio::runtime::spawn(async move {
                let mut i = 0u64;
                while store.appended_offset() < bytes {
                    let props = format!("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}{a:016X}{i:016X}\u{2}");
                    let req = AppendRequest {
                        topic: "BenchTopic",
                        queue_id: (a % 8) as i32,
                        body: &body,
                        flag: 0,
                        sys_flag: 0,
                        born_timestamp: 0,
                        born_host: "127.0.0.1:40000".parse().unwrap(),
                        properties: &props,
                        reconsume_times: 0,
                        prepared_transaction_offset: 0,
                        tag_code: 0,
                        durability: Durability::Written,
                    };
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

/// Fills a log in a child, kills it with SIGKILL, times `open`: (seconds, log bytes).
fn recovery(args: &Args) -> (f64, u64, usize) {
    let dir = fresh(&args.dir, "recovery");
    let bytes = (args.recovery_gib * (1u64 << 30) as f64) as u64;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--child-fill",
            dir.to_str().unwrap(),
            &bytes.to_string(),
            if args.recovery_full_scan {
                "full"
            } else {
                "normal"
            },
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
    rt.block_on(async {
        let start = Instant::now();
        let store = Store::open(
            UringDisk::new(SyncMethod::default()).unwrap(),
            engine_config(&dir, FlushMode::Async),
            Rc::new(SystemClock),
        )
        .await
        .unwrap();
        let t = secs(start.elapsed());
        (t, store.appended_offset(), store.queue_count())
    })
}

fn main() {
    let Some(args) = parse_args() else { return };
    std::fs::create_dir_all(&args.dir).unwrap();
    let mut out = Map::new();
    let rec_len = (args.record_size + 91 + 10 + 80) as f64; // body + fixed fields + topic + properties
    let s = args.seconds;
    println!(
        "engine-bench: dir {} ({} s per scenario, {} B bodies)",
        args.dir.display(),
        s,
        args.record_size
    );

    // One pre-filled file serves every `Overwrite` run (the engine's segments are pre-filled
    // too, `Prealloc::Fill`); each target ratio is taken against the faster file state.
    let filled = Filled::create(&args.dir, if args.smoke { 8 << 20 } else { 512 << 20 });
    let raw_1m = raw_buffered(&args.dir, 1 << 20, s, &filled, FileState::Append);
    let raw_rec = raw_buffered(&args.dir, args.record_size, s, &filled, FileState::Append);
    println!(
        "raw buffered pwrite: 1 MiB chunks {:.0} MB/s, {} B chunks {:.0} MB/s",
        raw_1m / 1e6,
        args.record_size,
        raw_rec / 1e6
    );

    let run8 = async_run(&args, "async8", 8);
    let bps8 = run8.stats.write_bytes as f64 / run8.seconds;
    let batch8 = run8.stats.write_bytes as f64 / run8.stats.writes.max(1) as f64;
    let batch8_len = batch8.max(4096.0) as usize;
    let raw_batch_append = raw_buffered(&args.dir, batch8_len, s, &filled, FileState::Append);
    let raw_batch_over = raw_buffered(&args.dir, batch8_len, s, &filled, FileState::Overwrite);
    let raw_batch = raw_batch_append.max(raw_batch_over);
    println!(
        "engine async, 8 queues: {:.0} appends/s, {:.0} MB/s, {:.0} B per write; raw pwrite at that size {:.0} MB/s appending, {:.0} MB/s overwriting a filled file",
        run8.appends as f64 / run8.seconds,
        bps8 / 1e6,
        batch8,
        raw_batch_append / 1e6,
        raw_batch_over / 1e6
    );
    // Queue counts alternate (8, many, 8, many) so a change of the disk's mood between runs
    // hits both sides of the ratio.
    let mut rate8 = run8.appends as f64 / run8.seconds;
    let mut rate_many = 0.0;
    for round in 0..2 {
        if round == 1 {
            let again = async_run(&args, "async8", 8);
            rate8 = (rate8 + again.appends as f64 / again.seconds) / 2.0;
        }
        let many = async_run(&args, "asyncmany", args.many_queues);
        rate_many += many.appends as f64 / many.seconds / 2.0;
    }
    println!(
        "engine async, {} queues: {:.0} appends/s ({:.2} of 8 queues, mean of two alternating runs each)",
        args.many_queues,
        rate_many,
        rate_many / rate8
    );

    // Each engine sync run is bracketed by raw pwrite+fdatasync runs at the batch size group
    // commit reaches (one record per appender), in both file states: this disk's fdatasync
    // latency changes by 10× from minute to minute, and the ratio must compare like with like.
    let batch_bytes = (args.sync_appenders as f64 * rec_len) as usize;
    let raw_around = |state, uring: bool| {
        if uring {
            raw_uring_write_sync(&args.dir, batch_bytes, s / 8.0, &filled, state)
        } else {
            raw_write_sync(&args.dir, batch_bytes, s / 8.0, &filled, state)
        }
    };
    let mut sync_runs = Map::new();
    let mut best: Option<(SyncMethod, EngineRun, RawSync)> = None;
    for method in [SyncMethod::Thread, SyncMethod::Uring] {
        let before = [
            raw_around(FileState::Append, false),
            raw_around(FileState::Overwrite, false),
            raw_around(FileState::Append, true),
            raw_around(FileState::Overwrite, true),
        ];
        let r = engine_run(
            &fresh(&args.dir, "sync"),
            FlushMode::Sync,
            Durability::Synced,
            method,
            args.sync_appenders,
            8,
            &args,
        );
        let after = [
            raw_around(FileState::Overwrite, true),
            raw_around(FileState::Append, true),
            raw_around(FileState::Overwrite, false),
            raw_around(FileState::Append, false),
        ];
        let raw = RawSync::around(before, after);
        let rate = r.appends as f64 / r.seconds;
        let per_sync = r.appends as f64 / r.stats.syncs.max(1) as f64;
        let (raw_rounds, raw_p99) = raw.best();
        let raw_rate = raw_rounds * args.sync_appenders as f64;
        println!(
            "engine sync ({method:?}), {} appenders: {rate:.0} appends/s, {per_sync:.1} appends per fdatasync, p50 {} µs, p99 {} µs; raw write+fdatasync of {batch_bytes} B around it: appending {:.0} rounds/s (p99 {} µs), overwriting a filled file {:.0} rounds/s (p99 {} µs), io_uring appending {:.0} (p99 {} µs), io_uring overwriting {:.0} (p99 {} µs); best = {raw_rate:.0} records/s",
            args.sync_appenders,
            r.p50_us,
            r.p99_us,
            raw.append.0,
            raw.append.2,
            raw.overwrite.0,
            raw.overwrite.2,
            raw.uring_append.0,
            raw.uring_append.2,
            raw.uring_overwrite.0,
            raw.uring_overwrite.2
        );
        sync_runs.insert(
            format!("{method:?}"),
            json!({"appends_per_s": rate, "appends_per_sync": per_sync, "p50_us": r.p50_us, "p99_us": r.p99_us,
                   "raw_append_rounds_per_s": raw.append.0, "raw_append_p99_us": raw.append.2,
                   "raw_overwrite_rounds_per_s": raw.overwrite.0, "raw_overwrite_p99_us": raw.overwrite.2,
                   "raw_uring_append_rounds_per_s": raw.uring_append.0, "raw_uring_append_p99_us": raw.uring_append.2,
                   "raw_uring_overwrite_rounds_per_s": raw.uring_overwrite.0, "raw_uring_overwrite_p99_us": raw.uring_overwrite.2,
                   "raw_best_records_per_s": raw_rate, "raw_best_p99_us": raw_p99,
                   "throughput_vs_raw": rate / raw_rate, "p99_vs_raw_p99": r.p99_us as f64 / raw_p99.max(1) as f64,
                   "throughput_vs_raw_append": rate / (raw.append.0 * args.sync_appenders as f64)}),
        );
        if best
            .as_ref()
            .is_none_or(|(_, b, _)| rate > b.appends as f64 / b.seconds)
        {
            best = Some((method, r, raw));
        }
    }
    let (best_method, sync_run, raw_sync) = best.unwrap();
    let (raw_rounds, raw_p99) = raw_sync.best();
    let raw_sync_rate = raw_rounds * args.sync_appenders as f64;
    let (app4k, _, _) = raw_write_sync(&args.dir, 4096, s / 2.0, &filled, FileState::Append);
    let (over4k, _, _) = raw_write_sync(&args.dir, 4096, s / 2.0, &filled, FileState::Overwrite);
    let (uring_fsync, syscall_fsync) = raw_uring_vs_syscall(&args.dir, s / 2.0, &filled);
    let sync_rate = sync_run.appends as f64 / sync_run.seconds;
    println!(
        "raw 4 KiB write+fdatasync: append {app4k:.0}/s, overwrite filled {over4k:.0}/s; io_uring fsync {uring_fsync:.0}/s vs syscall {syscall_fsync:.0}/s"
    );
    let mut recovery_json = Value::Null;
    if args.recovery_gib > 0.0 {
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
        recovery_json =
            json!({"log_bytes": bytes, "seconds": t, "full_scan": args.recovery_full_scan});
    }
    let _ = std::fs::remove_dir_all(args.dir.join("async8"));
    let _ = std::fs::remove_dir_all(args.dir.join("asyncmany"));
    let _ = std::fs::remove_dir_all(args.dir.join("sync"));
    let _ = std::fs::remove_dir_all(args.dir.join("raw-filled"));

    out.insert("record_body_bytes".into(), json!(args.record_size));
    out.insert("seconds_per_scenario".into(), json!(s));
    out.insert("raw_buffered_1mib_bytes_per_s".into(), json!(raw_1m));
    out.insert(
        "raw_buffered_record_chunk_bytes_per_s".into(),
        json!(raw_rec),
    );
    out.insert(
        "raw_buffered_engine_batch_bytes_per_s".into(),
        json!({"append": raw_batch_append, "overwrite_filled": raw_batch_over}),
    );
    out.insert(
        "engine_async_8q".into(),
        json!({"appends_per_s": rate8, "log_bytes_per_s": bps8, "bytes_per_write": batch8}),
    );
    out.insert(
        "engine_async_many_q".into(),
        json!({"queues": args.many_queues, "appends_per_s": rate_many}),
    );
    out.insert("engine_sync".into(), Value::Object(sync_runs));
    out.insert(
        "sync_method_faster".into(),
        json!(format!("{best_method:?}")),
    );
    out.insert("raw_write_fdatasync".into(), json!({"batch_bytes": batch_bytes, "append_rounds_per_s": raw_sync.append.0, "append_p50_us": raw_sync.append.1, "append_p99_us": raw_sync.append.2, "overwrite_filled_rounds_per_s": raw_sync.overwrite.0, "overwrite_filled_p50_us": raw_sync.overwrite.1, "overwrite_filled_p99_us": raw_sync.overwrite.2, "uring_append_rounds_per_s": raw_sync.uring_append.0, "uring_overwrite_filled_rounds_per_s": raw_sync.uring_overwrite.0, "uring_overwrite_filled_p50_us": raw_sync.uring_overwrite.1, "best_records_per_s": raw_sync_rate}));
    out.insert("raw_4k_fdatasync".into(), json!({"append_per_s": app4k, "overwrite_filled_per_s": over4k, "io_uring_fsync_per_s": uring_fsync, "syscall_fdatasync_per_s": syscall_fsync}));
    out.insert("recovery".into(), recovery_json);
    out.insert(
        "ratios".into(),
        json!({
            "async_vs_raw_1mib": bps8 / raw_1m,
            "async_vs_raw_record_chunks": bps8 / raw_rec,
            "async_vs_raw_same_batch": bps8 / raw_batch,
            "sync_throughput_vs_raw": sync_rate / raw_sync_rate,
            "sync_p99_vs_raw_p99": sync_run.p99_us as f64 / raw_p99.max(1) as f64,
            "many_queues_vs_8": rate_many / rate8,
            "overwrite_vs_append_4k_sync": over4k / app4k,
            "uring_fsync_vs_syscall": uring_fsync / syscall_fsync,
        }),
    );
    println!("RESULT {}", Value::Object(out));
}
