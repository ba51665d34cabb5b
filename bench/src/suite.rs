//! `ringmq-bench suite`: every figure of issue 7's performance table in one run, each against
//! a baseline measured in the same run (bench/README.md, "Suite").
//!
//! The suite starts its own ringmq namesrv and broker (binaries from `--bin-dir`, stores and
//! logs under `--work`), because some rows need a broker restarted in another flush mode, its
//! pid (RSS) and its `/metrics` (group-commit batch size). Every broker row is the normal
//! scenario code ([`crate::run::execute`]) with a command line built here; the raw baselines
//! are [`crate::baseline`]. Each row runs `--runs` times and reports the median.
//!
//! ```text
//!  raw fdatasync p99, sendfile ─ ASYNC broker: self-test, async produce, buffered pwrite,
//!  e2e @50%, pull, 8 vs 10 000 queues, RSS + 1000 connections, cold catch-up ─ SYNC broker:
//!  sync produce (+ /metrics batch), raw write+fdatasync at that batch, sync p99 @50% ─ peer
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::baseline::{self, SyncTarget};
use crate::cli::{self, Command};
use crate::procs::{self, Proc, RingmqSetup};
use crate::report::{Host, Report};
use crate::table::{self, Row, Target};

const MIB: f64 = 1024.0 * 1024.0;
/// Requests in flight in the closed-loop produce rows, over all connections (issue 7).
const INFLIGHT_TOTAL: usize = 64;
/// Queues (over all shards) of the open-loop rows. An open-loop stream has one send in
/// flight per queue, so the queue count caps the concurrency: with 16 queues a 40 000 msgs/s
/// target needs a 0.4 ms round trip and the generator, not the broker, falls behind.
const OPEN_LOOP_QUEUES: usize = 128;
/// Size of each prepared file the overwrite baseline of write + fdatasync cycles through.
const PREWRITTEN_BYTES: u64 = 64 << 20;
/// Shortest measured window of a row that reports latency (e2e p99, sync p99, catch-up p99).
/// The engine checkpoints every 5 s (`checkpoint_interval_ms`), and the checkpoint is one of
/// the stalls these rows exist to show: any window of at least 5 s holds one, whatever its
/// phase, so even `--quick` runs these rows this long (a 2 s window missed it ~60 % of the
/// time and flattered the p99).
const LATENCY_WINDOW_MIN_MS: u64 = 6_000;

/// `maxMsgNums` of the pull row: a throughput consumer's batch. The suite's broker runs with
/// `maxTransferCountOnMessageInMemory=1024` (Java's default of 32 would cap it), so the
/// broker's 256 KiB cap per response ends each pull (~218 messages of 1 KiB); at the push consumers' default of
/// 32, each pull carries ~38 KiB and its fixed costs (request, headers, a wakeup on both
/// sides) took ~15 % of the row's CPU.
const PULL_BATCH: u32 = 256;

/// The rows `--rows` can pick, with their names on the command line (the table ids where
/// they match). A row that needs another's figures pulls it in: see [`Rows::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rows {
    pub self_test: bool,
    pub async_produce: bool,
    pub e2e: bool,
    pub pull: bool,
    pub queues: bool,
    pub rss: bool,
    pub catchup: bool,
    pub sync_produce: bool,
    pub sync_p99: bool,
    pub peer: bool,
}

impl Rows {
    /// Every row (the default).
    pub const ALL: Rows = Rows {
        self_test: true,
        async_produce: true,
        e2e: true,
        pull: true,
        queues: true,
        rss: true,
        catchup: true,
        sync_produce: true,
        sync_p99: true,
        peer: true,
    };
    const NONE: Rows = Rows {
        self_test: false,
        async_produce: false,
        e2e: false,
        pull: false,
        queues: false,
        rss: false,
        catchup: false,
        sync_produce: false,
        sync_p99: false,
        peer: false,
    };

    /// `--rows a,b,...`. Dependencies are added, because a row's figure is meaningless
    /// without them: self-test compares with the best broker rate (async produce, and the
    /// queue rows when they run), catch-up produces at a quarter of the async maximum
    /// (unless `--catchup-rate` fixes it), RSS is read after the many-queue rows, sync p99
    /// runs at half the sync closed-loop rate, and the peer row compares with async produce.
    pub fn parse(list: &str, catchup_rate_given: bool) -> Result<Rows, String> {
        let mut r = Rows::NONE;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => r = Rows::ALL,
                "self-test" | "selftest" => r.self_test = true,
                "async" | "async-produce" => r.async_produce = true,
                "e2e" | "e2e-p99" => r.e2e = true,
                "pull" => r.pull = true,
                "queues" | "queues-rate" | "queues-p99" => r.queues = true,
                "rss" => r.rss = true,
                "catchup" => r.catchup = true,
                "sync" | "sync-produce" => r.sync_produce = true,
                "sync-p99" => r.sync_p99 = true,
                "peer" => r.peer = true,
                other => {
                    return Err(format!(
                        "--rows: unknown row `{other}` (rows: {})",
                        ROW_NAMES
                    ));
                }
            }
        }
        if r == Rows::NONE {
            return Err(format!("--rows: no row named (rows: {ROW_NAMES})"));
        }
        r.queues |= r.rss;
        r.async_produce |= r.self_test || r.peer || (r.catchup && !catchup_rate_given);
        r.sync_produce |= r.sync_p99;
        Ok(r)
    }

    fn any_async(&self) -> bool {
        self.self_test
            || self.async_produce
            || self.e2e
            || self.pull
            || self.queues
            || self.rss
            || self.catchup
    }

    fn any_sync(&self) -> bool {
        self.sync_produce || self.sync_p99
    }
}

/// The names `--rows` takes.
pub const ROW_NAMES: &str =
    "self-test, async, e2e, pull, queues, rss, catchup, sync, sync-p99, peer, all";

/// The suite's command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuiteOpts {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    pub namesrv_port: u16,
    pub broker_port: u16,
    pub shards: usize,
    pub runs: usize,
    pub quick: bool,
    pub duration_ms: u64,
    pub warmup_ms: u64,
    /// Cold backlog of the catch-up row.
    pub backlog_bytes: u64,
    /// Backlog the pull row reads from the page cache; also the sendfile file size.
    pub pull_bytes: u64,
    /// Produce rate of the catch-up row; `None`: a quarter of the async closed-loop rate.
    pub catchup_rate: Option<f64>,
    pub connections: usize,
    pub queues_many: usize,
    pub peer_bin: Option<PathBuf>,
    pub json: Option<String>,
    pub size: usize,
    /// Which rows to measure (`--rows`; every row by default).
    pub rows: Rows,
    /// `maxMsgNums` of the pull row's consumer.
    pub pull_batch: u32,
}

pub const USAGE: &str = "\
ringmq-bench suite: issue 7's performance table in one run (see bench/README.md, Suite).
Starts its own ringmq namesrv + broker; bench/run-suite builds and calls it.

  --bin-dir DIR        ringmq-namesrv and ringmq-broker       [directory of this binary]
  --work DIR           stores, logs, reports (wiped first)   [/tmp/ringmq-suite]
  --namesrv-port P                                            [19876]
  --broker-port P      shard k listens on P + 4k; /metrics on P-1  [20911]
  --shards N                                                  [cores]
  --runs N             runs per row; the median is reported   [3]
  --quick              small sizes and 2 s runs (a smoke run of every row); latency
                       rows still run 6 s, so each window holds a 5 s checkpoint
  --rows LIST          only these rows, plus what they need  [all]
                       (self-test, async, e2e, pull, queues, rss, catchup, sync,
                       sync-p99, peer; e.g. --rows pull or --rows e2e,sync-p99)
  --duration D         length of each broker run (latency rows: at least 6s)
                                                              [10s; quick 2s]
  --backlog SIZE       cold backlog of the catch-up row       [4GiB; quick 256MiB]
  --pull-backlog SIZE  hot backlog of the pull row, and the sendfile file [1GiB; quick 128MiB]
  --pull-batch N       maxMsgNums of the pull row's consumer  [256]
  --catchup-rate R     produce rate (msgs/s) during catch-up  [25% of the async max]
  --connections N      heartbeat connections in the RSS row   [1000]
  --queues N           queues of the many-queues row (100 topics) [10000]
  --peer-bin DIR       also run rocketmq-rust (DIR/rocketmq-{namesrv,broker}-rust)
  --json FILE          the table as JSON                      [WORK/suite.json]
";

fn size_arg(flag: &str, v: &str) -> Result<u64, String> {
    let lower = v.trim().to_ascii_lowercase();
    let t = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = [("k", 1u64 << 10), ("m", 1 << 20), ("g", 1 << 30)]
        .iter()
        .find_map(|(s, m)| t.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((t, 1));
    match num.trim().parse::<f64>() {
        Ok(x) if x > 0.0 => Ok((x * mult as f64) as u64),
        _ => Err(format!("{flag} {v}: expected a size such as 4GiB")),
    }
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{flag} {v}: not a number"))
}

pub fn parse_opts(args: &[String], cores: usize) -> Result<SuiteOpts, String> {
    let quick = args.iter().any(|a| a == "--quick");
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/release"));
    let mut o = SuiteOpts {
        bin_dir,
        work: PathBuf::from("/tmp/ringmq-suite"),
        namesrv_port: 19876,
        broker_port: 20911,
        shards: cores.max(1),
        runs: 3,
        quick,
        duration_ms: if quick { 2_000 } else { 10_000 },
        warmup_ms: if quick { 300 } else { 1_000 },
        backlog_bytes: if quick { 256 << 20 } else { 4 << 30 },
        pull_bytes: if quick { 128 << 20 } else { 1 << 30 },
        catchup_rate: None,
        connections: 1000,
        queues_many: 10_000,
        peer_bin: None,
        json: None,
        size: 1024,
        rows: Rows::ALL,
        pull_batch: PULL_BATCH,
    };
    let mut rows_arg = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--quick" => {}
            "--bin-dir" => o.bin_dir = PathBuf::from(value()?),
            "--work" => o.work = PathBuf::from(value()?),
            "--namesrv-port" => o.namesrv_port = num(flag, &value()?)?,
            "--broker-port" => o.broker_port = num(flag, &value()?)?,
            "--shards" => o.shards = num::<usize>(flag, &value()?)?.max(1),
            "--runs" => o.runs = num::<usize>(flag, &value()?)?.max(1),
            "--duration" => {
                o.duration_ms = crate::timers::parse_ms(flag, &value()?)?.max(100) as u64
            }
            "--backlog" => o.backlog_bytes = size_arg(flag, &value()?)?,
            "--pull-backlog" => o.pull_bytes = size_arg(flag, &value()?)?,
            "--catchup-rate" => o.catchup_rate = Some(num(flag, &value()?)?),
            "--connections" => o.connections = num(flag, &value()?)?,
            "--queues" => o.queues_many = num::<usize>(flag, &value()?)?.max(100),
            "--peer-bin" => o.peer_bin = Some(PathBuf::from(value()?)),
            "--json" => o.json = Some(value()?),
            "--rows" => rows_arg = Some(value()?),
            "--pull-batch" => o.pull_batch = num::<u32>(flag, &value()?)?.max(1),
            other => {
                return Err(format!(
                    "unknown flag `{other}` (see ringmq-bench suite --help)"
                ));
            }
        }
    }
    if let Some(list) = rows_arg {
        o.rows = Rows::parse(&list, o.catchup_rate.is_some())?;
    }
    if o.peer_bin.is_none() {
        o.rows.peer = false;
    }
    Ok(o)
}

/// Closed-loop shape shared by the produce rows: (queues per topic per broker, in flight per
/// connection) so that producers × brokers × in-flight = [`INFLIGHT_TOTAL`].
pub fn closed_loop_shape(producers: usize, brokers: usize) -> (usize, usize) {
    let conns = (producers * brokers).max(1);
    let inflight = INFLIGHT_TOTAL.div_ceil(conns).max(1);
    (inflight, inflight)
}

/// The JSON the suite writes.
#[derive(Debug, Serialize)]
pub struct SuiteReport {
    pub host: Host,
    pub opts: SuiteOpts,
    pub git_sha: String,
    /// Whether the suite ran under a real-time policy (`chrt -f N bench/run-suite ...`): the
    /// suite never raises its own priority, but the broker, the name server and the
    /// generator it starts inherit the policy it was started with.
    pub realtime_priority: bool,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// What one broker run gave the rows.
#[derive(Debug, Clone, Copy, Default)]
struct Fig {
    msgs_per_s: f64,
    mb_per_s: f64,
    send_p99_us: f64,
    e2e_p99_us: f64,
    recv_mb_per_s: f64,
    acked: u64,
}

fn fig(r: &Report) -> Fig {
    let p = r.results.produce.clone().unwrap_or_default();
    let c = r.results.consume.clone().unwrap_or_default();
    Fig {
        msgs_per_s: p.msgs_per_s,
        mb_per_s: p.mb_per_s,
        send_p99_us: p.send_latency_us.p99,
        e2e_p99_us: c.e2e_latency_us.p99,
        recv_mb_per_s: c.mb_per_s,
        acked: p.acked,
    }
}

struct Suite {
    o: SuiteOpts,
    setup: RingmqSetup,
    producers: usize,
    rows: Vec<Row>,
    notes: Vec<String>,
    seq: usize,
}

/// Runs the suite; prints the table and writes the JSON.
pub fn main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let o = parse_opts(args, cores)?;
    let _ = std::fs::remove_dir_all(&o.work);
    std::fs::create_dir_all(o.work.join("reports"))
        .map_err(|e| format!("cannot create {}: {e}", o.work.display()))?;
    let setup = RingmqSetup {
        bin_dir: o.bin_dir.clone(),
        work: o.work.clone(),
        namesrv_port: o.namesrv_port,
        broker_port: o.broker_port,
        shards: o.shards,
    };
    let mut s = Suite {
        o,
        setup,
        producers: cores,
        rows: Vec::new(),
        notes: Vec::new(),
        seq: 0,
    };
    s.run_all()?;
    let text = table::render(&s.rows);
    println!(
        "\n== ringmq performance suite ({} runs per row, medians)",
        s.o.runs
    );
    let host = Host::detect();
    let realtime = realtime_policy();
    println!(
        "host {} | {} cores | {} | {}",
        host.cpu_model,
        host.cores,
        host.kernel,
        match realtime {
            Some(prio) => format!("SCHED_FIFO priority {prio} (started under chrt -f)"),
            None => "no chrt (normal priority)".to_owned(),
        }
    );
    print!("{text}");
    for n in &s.notes {
        println!("note: {n}");
    }
    let json_path =
        s.o.json
            .clone()
            .unwrap_or_else(|| s.o.work.join("suite.json").display().to_string());
    let report = SuiteReport {
        host,
        opts: s.o.clone(),
        git_sha: env!("RINGMQ_GIT_SHA").into(),
        realtime_priority: realtime.is_some(),
        rows: s.rows,
        notes: s.notes,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json).map_err(|e| format!("cannot write {json_path}: {e}"))?;
    println!(
        "table written to {json_path}; per-run reports in {}",
        report.opts.work.join("reports").display()
    );
    Ok(())
}

impl Suite {
    fn d(&self) -> Duration {
        Duration::from_millis(self.o.duration_ms)
    }

    /// Length (ms) of a run whose row reports latency: [`LATENCY_WINDOW_MIN_MS`] at least.
    fn latency_ms(&self) -> u64 {
        self.o.duration_ms.max(LATENCY_WINDOW_MIN_MS)
    }

    /// `writers` × (`batch`-byte write + fdatasync), appending and overwriting a prepared
    /// file: the better MB/s and the lower per-sync p99 (µs) of the two, so the broker is
    /// compared with the best a plain program gets from this disk.
    fn raw_sync(&self, batch: usize, writers: usize) -> Result<(f64, f64), String> {
        let mut best = (0.0f64, f64::INFINITY);
        for target in [SyncTarget::Append, SyncTarget::Prewritten(PREWRITTEN_BYTES)] {
            let s = baseline::write_fdatasync(&self.o.work, batch, writers, self.raw_d(), target)
                .map_err(|e| e.to_string())?;
            let p99 = s.sync_latency.value_at_quantile_ns(0.99) as f64 / 1e3;
            best = (
                best.0.max(s.throughput.bytes_per_s() / 1e6),
                best.1.min(p99),
            );
        }
        Ok(best)
    }

    /// Raw baselines run shorter than broker rows: they are steady from the first second.
    fn raw_d(&self) -> Duration {
        self.d().min(Duration::from_secs(5))
    }

    fn queues_per_broker(&self, total: usize) -> usize {
        (total / self.o.shards).max(1)
    }

    /// Runs `ringmq-bench <line>` against `ns`; keeps its JSON report under reports/.
    fn bench(&mut self, ns: &str, line: &str) -> Result<Report, String> {
        let mut args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let scenario = args.first().cloned().unwrap_or_default();
        if scenario != "self-test" {
            args.extend(["--namesrv".into(), ns.to_owned()]);
        }
        let ceiling = self.o.work.join("ceiling.json").display().to_string();
        args.extend(["--ceiling-file".into(), ceiling]);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let p = match cli::parse(&args, cores).map_err(|e| e.to_string())? {
            Command::Run(p) => *p,
            _ => return Err(format!("`{line}` is not a run")),
        };
        self.seq += 1;
        eprintln!("  [{:>3}] ringmq-bench {}", self.seq, args.join(" "));
        let r = crate::run::execute(p.clone())?;
        if scenario == "self-test" {
            crate::run::save_ceiling(&p, &r)?;
        }
        let path = self
            .o
            .work
            .join("reports")
            .join(format!("{:03}-{scenario}.json", self.seq));
        if let Ok(j) = serde_json::to_vec_pretty(&r) {
            let _ = std::fs::write(path, j);
        }
        for w in &r.results.warnings {
            eprintln!("        warning: {w}");
        }
        Ok(r)
    }

    fn push(&mut self, row: Result<Row, String>, id: &str, figure: &str) {
        let row = row.unwrap_or_else(|e| Row::failed(id, figure, &e));
        eprintln!(
            "  => {}: {} {} ({})",
            row.figure,
            row.value.map_or("-".into(), table::short),
            row.unit,
            row.verdict
        );
        self.rows.push(row);
    }

    fn run_all(&mut self) -> Result<(), String> {
        let runs = self.o.runs;
        let rows = self.o.rows;
        let dir = self.o.work.clone();
        eprintln!("== raw baselines: fdatasync latency, sendfile to loopback");
        let mut fsync_p99 = Vec::new();
        let mut sendfile = Vec::new();
        for _ in 0..runs {
            // The lower p99 of appending and of overwriting a prepared file: the stricter bar.
            if rows.sync_p99 {
                fsync_p99.push(self.raw_sync(4096, 1)?.1);
            }
            if rows.pull {
                let f = baseline::sendfile_loopback(&dir, self.o.pull_bytes)
                    .map_err(|e| e.to_string())?;
                sendfile.push(f.bytes_per_s() / 1e6);
            }
        }
        if rows.sync_p99 {
            self.rows.push(Row::new(
                "raw-fdatasync-p99",
                "raw fdatasync p99 (4 KiB write, 1 thread)",
                "us",
                fsync_p99.clone(),
                "",
                Vec::new(),
                Target::Info,
            ));
        }

        let ns_proc = self.setup.start_namesrv()?;
        let ns = self.setup.namesrv_addr();
        let mut async_figs = Vec::new();
        if rows.any_async() {
            eprintln!("== ringmq, ASYNC_FLUSH");
            let broker = self.setup.start_broker("store-async", "ASYNC_FLUSH")?;
            async_figs = self.async_rows(&ns, &broker, &sendfile)?;
            broker.stop(Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(dir.join("store-async"));
        }

        if rows.any_sync() {
            eprintln!("== ringmq, SYNC_FLUSH");
            let broker = self.setup.start_broker("store-sync", "SYNC_FLUSH")?;
            self.sync_rows(&ns, &fsync_p99)?;
            broker.stop(Duration::from_secs(10));
            let _ = std::fs::remove_dir_all(dir.join("store-sync"));
        }
        ns_proc.stop(Duration::from_secs(5));

        if let Some(bin) = self.o.peer_bin.clone()
            && rows.peer
        {
            eprintln!("== rocketmq-rust peer, ASYNC_FLUSH");
            let r = self.peer_rows(&bin, &async_figs);
            self.push(
                r,
                "peer-async-produce",
                "ringmq vs rocketmq-rust, async produce",
            );
        }
        Ok(())
    }

    /// Every selected ASYNC_FLUSH row. Returns the async closed-loop runs (for the peer row).
    fn async_rows(
        &mut self,
        ns: &str,
        broker: &Proc,
        sendfile: &[f64],
    ) -> Result<Vec<Fig>, String> {
        let runs = self.o.runs;
        let rows = self.o.rows;
        let (d, w) = (self.o.duration_ms, self.o.warmup_ms);
        let (q, inflight) = closed_loop_shape(self.producers, self.o.shards);
        let common = format!("--size {} --flush-label ASYNC_FLUSH", self.o.size);
        let closed = format!(
            "produce {common} --send async --queues {q} --inflight {inflight} --duration {d}ms \
             --warmup {w}ms --topic-prefix async-closed"
        );

        let mut ceiling = Vec::new();
        for _ in 0..if rows.self_test { runs } else { 0 } {
            let line = format!(
                "self-test --size {} --send async --queues {q} --inflight {inflight} \
                 --brokers {} --duration {d}ms --warmup {w}ms",
                self.o.size, self.o.shards
            );
            ceiling.push(self.bench(ns, &line)?.manifest.achieved_rate_msgs_per_s);
        }

        let mut figs = Vec::new();
        let mut best = 0.0;
        let mut max_async = 0.0;
        if rows.async_produce {
            for _ in 0..runs {
                figs.push(fig(&self.bench(ns, &closed)?));
            }
            let acked = table::median(&figs.iter().map(|f| f.acked as f64).collect::<Vec<_>>())
                .unwrap_or(0.0) as u64;
            let bytes = (acked * self.o.size as u64).clamp(64 << 20, 8 << 30);
            let mut raw = Vec::new();
            for _ in 0..runs {
                let t = baseline::buffered_write(&self.o.work, bytes, self.o.size)
                    .map_err(|e| e.to_string())?;
                raw.push(t.bytes_per_s() / 1e6);
            }
            let async_mb: Vec<f64> = figs.iter().map(|f| f.mb_per_s).collect();
            let async_msgs: Vec<f64> = figs.iter().map(|f| f.msgs_per_s).collect();
            best = async_msgs.iter().copied().fold(0.0, f64::max);
            max_async = table::median(&async_msgs).unwrap_or(0.0);
            self.push(
                Ok(Row::new(
                    "async-produce",
                    "async produce, closed loop, 64 in flight",
                    "MB/s",
                    async_mb,
                    "buffered pwrite 1 KiB MB/s",
                    raw,
                    Target::RatioAtLeast { bound: 0.9 },
                )
                .with_note(format!(
                    "{} msgs/s median; baseline writes the same bytes ({} MiB) as 1 KiB pwrites",
                    table::short(max_async),
                    bytes >> 20
                ))),
                "async-produce",
                "",
            );
        }

        if rows.e2e {
            let r = self.e2e_row(ns, &common, max_async);
            self.push(r, "e2e-p99", "end-to-end p99 @50% max (async)");
        }
        if rows.pull {
            let r = self.pull_row(ns, &common, sendfile);
            self.push(r, "pull", "pull throughput (hot backlog)");
        }
        if rows.queues {
            best = self.queue_rows(ns, &common, best)?;
        }
        if rows.rss {
            let r = self.rss_row(broker);
            self.push(r, "rss", "broker RSS, 10k queues + connections");
        }
        if rows.catchup {
            let r = self.catchup_row(ns, &common, max_async);
            self.push(r, "catchup", "produce p99 during cold catch-up");
        }
        if rows.self_test {
            self.rows.push(
                Row::new(
                    "self-test",
                    "bench self-test ceiling vs best broker rate",
                    "msgs/s",
                    ceiling,
                    "best broker msgs/s",
                    vec![best],
                    Target::RatioAtLeast { bound: 2.0 },
                )
                .with_note(format!(
                    "self-test: async, {} responders standing in for the shards, same \
                     queues/in-flight",
                    self.o.shards
                )),
            );
        }
        Ok(figs)
    }

    /// End-to-end p99 in open loop at half the highest rate a closed-loop produce-consume run
    /// reaches (producers and consumers both on this host: the produce-only maximum would
    /// overload the two cores and measure a backlog, not latency).
    fn e2e_row(&mut self, ns: &str, common: &str, max_async: f64) -> Result<Row, String> {
        let (d, w) = (self.o.duration_ms, self.o.warmup_ms);
        let (cq, inflight) = closed_loop_shape(self.producers, self.o.shards);
        let mut closed = Vec::new();
        for k in 0..self.o.runs {
            let line = format!(
                "produce-consume {common} --send async --queues {cq} --inflight {inflight} \
                 --duration {d}ms --warmup {w}ms --drain 5s --topic-prefix pc-closed-{k}"
            );
            closed.push(fig(&self.bench(ns, &line)?).msgs_per_s);
        }
        let max_pc = table::median(&closed).unwrap_or(max_async);
        let rate = (max_pc / 2.0).max(100.0);
        let q = self.queues_per_broker(OPEN_LOOP_QUEUES);
        let (mut p99, mut achieved) = (Vec::new(), Vec::new());
        let ld = self.latency_ms();
        for k in 0..self.o.runs {
            let line = format!(
                "produce-consume {common} --rate {rate:.0} --queues {q} --duration {ld}ms \
                 --warmup {w}ms --drain 5s --topic-prefix e2e-{k}"
            );
            let f = fig(&self.bench(ns, &line)?);
            p99.push(f.e2e_p99_us);
            achieved.push(f.msgs_per_s);
        }
        Ok(Row::new(
            "e2e-p99",
            "end-to-end p99 @50% of max (async, open loop)",
            "us",
            p99,
            "",
            Vec::new(),
            Target::ValueAtMost { bound: 1000.0 },
        )
        .with_note(format!(
            "born -> received; open loop at {rate:.0} msgs/s (achieved {} median) = half the \
             closed-loop produce-consume max {} (produce-only max {})",
            table::short(table::median(&achieved).unwrap_or(0.0)),
            table::short(max_pc),
            if max_async > 0.0 {
                table::short(max_async)
            } else {
                "not measured".to_owned()
            }
        )))
    }

    fn pull_row(&mut self, ns: &str, common: &str, sendfile: &[f64]) -> Result<Row, String> {
        let q = self.queues_per_broker(16).max(4);
        let msgs = self.o.pull_bytes / self.o.size as u64;
        let fill = format!(
            "produce {common} --send batch --queues {q} --messages {msgs} --topic-prefix pull-backlog"
        );
        self.bench(ns, &fill)?;
        let mut mb = Vec::new();
        for _ in 0..self.o.runs {
            let line = format!(
                "consume {common} --from start --no-create --queues {q} --duration 600s \
                 --pull-batch {} --topic-prefix pull-backlog",
                self.o.pull_batch
            );
            mb.push(fig(&self.bench(ns, &line)?).recv_mb_per_s);
        }
        Ok(Row::new(
            "pull",
            "pull throughput, hot backlog (page cache)",
            "MB/s",
            mb,
            "sendfile->loopback MB/s",
            sendfile.to_vec(),
            Target::RatioAtLeast { bound: 0.8 },
        )
        .with_note(format!(
            "consume --from start over a {} MiB backlog written just before (body bytes; \
             pull batch {}, broker maxTransferCountOnMessageInMemory=1024); sendfile of a \
             {} MiB file",
            self.o.pull_bytes >> 20,
            self.o.pull_batch,
            self.o.pull_bytes >> 20
        )))
    }

    /// 8 queues vs many queues (100 topics); returns the best msgs/s seen so far.
    fn queue_rows(&mut self, ns: &str, common: &str, mut best: f64) -> Result<f64, String> {
        let (d, w) = (self.o.duration_ms, self.o.warmup_ms);
        let few = self.queues_per_broker(8);
        let many = self.queues_per_broker(self.o.queues_many / 100);
        let inflight = few;
        let (mut few_f, mut many_f) = (Vec::new(), Vec::new());
        for _ in 0..self.o.runs {
            let a = format!(
                "produce {common} --send async --queues {few} --inflight {inflight} \
                 --duration {d}ms --warmup {w}ms --topic-prefix q8"
            );
            few_f.push(fig(&self.bench(ns, &a)?));
            let b = format!(
                "produce {common} --send async --topics 100 --queues {many} --inflight {inflight} \
                 --duration {d}ms --warmup {w}ms --topic-prefix q10k"
            );
            many_f.push(fig(&self.bench(ns, &b)?));
        }
        for f in few_f.iter().chain(&many_f) {
            best = best.max(f.msgs_per_s);
        }
        let rate = |v: &[Fig]| v.iter().map(|f| f.msgs_per_s).collect::<Vec<_>>();
        let p99 = |v: &[Fig]| v.iter().map(|f| f.send_p99_us).collect::<Vec<_>>();
        let total = many * self.o.shards * 100;
        let note = format!(
            "{total} queues ({many}/topic/shard x 100 topics x {} shards) vs {} queues, {inflight} in \
             flight per connection in both",
            self.o.shards,
            few * self.o.shards
        );
        self.rows.push(
            Row::new(
                "queues-rate",
                "many queues vs 8 queues: throughput",
                "msgs/s",
                rate(&many_f),
                "8 queues msgs/s",
                rate(&few_f),
                Target::RatioAtLeast { bound: 0.9 },
            )
            .with_note(note),
        );
        self.rows.push(Row::new(
            "queues-p99",
            "many queues vs 8 queues: send p99",
            "us",
            p99(&many_f),
            "8 queues p99 us",
            p99(&few_f),
            Target::RatioAtMost { bound: 2.0 },
        ));
        Ok(best)
    }

    fn rss_row(&mut self, broker: &Proc) -> Result<Row, String> {
        let pid = broker.pid();
        let idle = procs::rss_anon_shmem(pid)? as f64 / MIB;
        let conns = procs::heartbeat_connections(
            &self.setup.shard_addrs(),
            self.o.connections,
            "rss-group",
        )?;
        std::thread::sleep(Duration::from_secs(1));
        let with = procs::rss_anon_shmem(pid)? as f64 / MIB;
        drop(conns);
        Ok(Row::new(
            "rss",
            "broker RSS, many queues + connections",
            "MiB",
            vec![with],
            "",
            Vec::new(),
            Target::ValueAtMost { bound: 256.0 },
        )
        .with_note(format!(
            "RssAnon+RssShmem after the queue rows ({} queues written) with {} open connections, \
             each after one HEART_BEAT; {idle:.1} MiB before opening them; measured once",
            self.o.queues_many, self.o.connections
        )))
    }

    fn catchup_row(&mut self, ns: &str, common: &str, max_async: f64) -> Result<Row, String> {
        let rate = self.o.catchup_rate.unwrap_or((max_async / 4.0).max(100.0));
        let (d, w) = (self.latency_ms(), self.o.warmup_ms);
        let q = self.queues_per_broker(16).max(4);
        let msgs = self.o.backlog_bytes / self.o.size as u64;
        let fill = format!(
            "produce {common} --send batch --queues {q} --messages {msgs} --topic-prefix backlog"
        );
        self.bench(ns, &fill)?;
        let live_q = self.queues_per_broker(OPEN_LOOP_QUEUES);
        let live = format!(
            "produce {common} --rate {rate:.0} --queues {live_q} --duration {d}ms --warmup {w}ms \
             --topic-prefix live"
        );
        let read = format!(
            "consume {common} --from start --no-create --queues {q} --duration {d}ms \
             --topic-prefix backlog"
        );
        let (mut base, mut loaded, mut read_mb) = (Vec::new(), Vec::new(), Vec::new());
        let mut achieved = Vec::new();
        for _ in 0..self.o.runs {
            // Both runs start with nothing dirty: right after the fill (or a loaded run) the
            // kernel is still writing back gigabytes, and a baseline taken during that
            // writeback measured the writeback, not the absence of a reader.
            sync_disks();
            base.push(fig(&self.bench(ns, &live)?).send_p99_us);
            drop_caches()?;
            let (p, c) = self.concurrently(ns, &live, &read)?;
            loaded.push(fig(&p).send_p99_us);
            achieved.push(fig(&p).msgs_per_s);
            read_mb.push(fig(&c).recv_mb_per_s);
        }
        Ok(Row::new(
            "catchup",
            "produce p99 during cold catch-up read",
            "us",
            loaded,
            "same rate, no backlog p99 us",
            base,
            Target::RatioAtMost { bound: 2.0 },
        )
        .with_note(format!(
            "{} MiB backlog; every run starts with nothing dirty, the page cache dropped \
             before each loaded run; producing {rate:.0} msgs/s \
             (open loop, achieved {} median) while reading it from the start at {} MB/s (median)",
            self.o.backlog_bytes >> 20,
            table::short(table::median(&achieved).unwrap_or(0.0)),
            table::short(table::median(&read_mb).unwrap_or(0.0))
        )))
    }

    /// Runs a producer line and a consumer line at the same time; (producer, consumer).
    fn concurrently(
        &mut self,
        ns: &str,
        produce: &str,
        consume: &str,
    ) -> Result<(Report, Report), String> {
        let mut other = Suite {
            o: self.o.clone(),
            setup: self.setup.clone(),
            producers: self.producers,
            rows: Vec::new(),
            notes: Vec::new(),
            seq: self.seq + 500,
        };
        let (ns2, consume) = (ns.to_owned(), consume.to_owned());
        let reader = std::thread::spawn(move || other.bench(&ns2, &consume));
        // Let the reader's setup finish so its pulls overlap the whole produce window.
        std::thread::sleep(Duration::from_millis(300));
        let p = self.bench(ns, produce);
        let c = reader
            .join()
            .map_err(|_| "the catch-up reader thread panicked".to_owned())?;
        Ok((p?, c?))
    }

    fn sync_rows(&mut self, ns: &str, fsync_p99: &[f64]) -> Result<(), String> {
        let (d, w) = (self.o.duration_ms, self.o.warmup_ms);
        let (q, inflight) = closed_loop_shape(self.producers, self.o.shards);
        let common = format!("--size {} --flush-label SYNC_FLUSH", self.o.size);
        let line = format!(
            "produce {common} --send async --queues {q} --inflight {inflight} --duration {d}ms \
             --warmup {w}ms --topic-prefix sync-closed"
        );
        let metrics = self.setup.metrics_addr();
        let (mut figs, mut batch_bytes, mut batch_msgs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.o.runs {
            let before = procs::scrape(metrics);
            figs.push(fig(&self.bench(ns, &line)?));
            if let (Ok(a), Ok(b)) = (before, procs::scrape(metrics)) {
                let delta = |n| Some(procs::metric_sum(&b, n)? - procs::metric_sum(&a, n)?);
                if let (Some(bytes), Some(msgs), Some(syncs)) = (
                    delta("ringmq_send_bytes_total"),
                    delta("ringmq_send_messages_total"),
                    delta("ringmq_fsync_seconds_count"),
                ) && syncs > 0.0
                {
                    batch_bytes.push(bytes / syncs);
                    batch_msgs.push(msgs / syncs);
                }
            }
        }
        let mb: Vec<f64> = figs.iter().map(|f| f.mb_per_s).collect();
        let max_sync =
            table::median(&figs.iter().map(|f| f.msgs_per_s).collect::<Vec<_>>()).unwrap_or(0.0);
        let measured_batch = table::median(&batch_bytes);
        // Raw writes are whole 4 KiB pages, as a log append of that size would dirty.
        let batch =
            measured_batch.map_or(64 << 10, |b| ((b as usize).div_ceil(4096) * 4096).max(4096));
        let mut raw = Vec::new();
        for _ in 0..self.o.runs {
            raw.push(self.raw_sync(batch, self.o.shards)?.0);
        }
        let batch_note = match measured_batch {
            Some(b) => format!(
                "group commit reached {:.1} KiB ({:.1} messages) per fdatasync (from /metrics: \
                 body bytes / fsync count); raw: {} writer(s), {} KiB write + fdatasync, \
                 best of append and overwrite",
                b / 1024.0,
                table::median(&batch_msgs).unwrap_or(0.0),
                self.o.shards,
                batch >> 10
            ),
            None => format!(
                "no /metrics batch size: compared with 64 KiB write + fdatasync ({} writer(s))",
                self.o.shards
            ),
        };
        self.rows.push(
            Row::new(
                "sync-produce",
                "sync produce, 64 in flight",
                "MB/s",
                mb,
                "raw write+fdatasync MB/s",
                raw,
                Target::RatioAtLeast { bound: 0.8 },
            )
            .with_note(format!(
                "{} msgs/s median; {batch_note}",
                table::short(max_sync)
            )),
        );
        for kib in [16usize, 64, 256] {
            let mut v = Vec::new();
            for _ in 0..self.o.runs {
                v.push(self.raw_sync(kib << 10, self.o.shards)?.0);
            }
            self.rows.push(Row::new(
                &format!("raw-sync-{kib}k"),
                &format!(
                    "raw write+fdatasync {kib} KiB x {} writer(s)",
                    self.o.shards
                ),
                "MB/s",
                v,
                "",
                Vec::new(),
                Target::Info,
            ));
        }
        if !self.o.rows.sync_p99 {
            return Ok(());
        }
        let rate = (max_sync / 2.0).max(10.0);
        let open_q = self.queues_per_broker(OPEN_LOOP_QUEUES);
        let (mut p99, mut achieved) = (Vec::new(), Vec::new());
        let ld = self.latency_ms();
        for k in 0..self.o.runs {
            let l = format!(
                "produce {common} --rate {rate:.0} --queues {open_q} --duration {ld}ms --warmup {w}ms \
                 --topic-prefix sync-open-{k}"
            );
            let f = fig(&self.bench(ns, &l)?);
            p99.push(f.send_p99_us);
            achieved.push(f.msgs_per_s);
        }
        self.push(
            Ok(Row::new(
                "sync-p99",
                "sync send p99 @50% of max (open loop)",
                "us",
                p99,
                "raw fdatasync p99 us",
                fsync_p99.to_vec(),
                Target::RatioAtMost { bound: 2.0 },
            )
            .with_note(format!(
                "open loop at {rate:.0} msgs/s (achieved {} median), {} queues",
                table::short(table::median(&achieved).unwrap_or(0.0)),
                open_q * self.o.shards
            ))),
            "sync-p99",
            "",
        );
        Ok(())
    }

    fn peer_rows(&mut self, bin: &std::path::Path, ours: &[Fig]) -> Result<Row, String> {
        let ns_port = self.o.namesrv_port + 10_000;
        let broker_port = self.o.broker_port + 10_000;
        let (n, b, ns) = procs::start_peer(bin, &self.o.work, ns_port, broker_port, "ASYNC_FLUSH")?;
        std::thread::sleep(Duration::from_secs(2));
        let (q, inflight) = closed_loop_shape(self.producers, 1);
        let (d, w) = (self.o.duration_ms, self.o.warmup_ms);
        let line = format!(
            "produce --size {} --flush-label ASYNC_FLUSH --send async --queues {q} \
             --inflight {inflight} --duration {d}ms --warmup {w}ms --topic-prefix peer-closed",
            self.o.size
        );
        let mut peer = Vec::new();
        for _ in 0..self.o.runs {
            peer.push(fig(&self.bench(&ns, &line)?).msgs_per_s);
        }
        b.stop(Duration::from_secs(10));
        n.stop(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(self.o.work.join("peer").join("store"));
        Ok(Row::new(
            "peer-async-produce",
            "async produce: ringmq vs rocketmq-rust",
            "msgs/s",
            ours.iter().map(|f| f.msgs_per_s).collect(),
            "rocketmq-rust msgs/s",
            peer,
            Target::Info,
        )
        .with_note(
            "rocketmq-rust 1.0.0 (crates.io), one broker, same bench command line, 64 in flight",
        ))
    }
}

/// Writes dirty pages back and drops the page cache, so the next read comes from the disk.
/// Waits until every dirty page is on disk (`sync(2)`).
fn sync_disks() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn drop_caches() -> Result<(), String> {
    sync_disks();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").map_err(|e| {
        format!(
            "cannot drop the page cache ({e}): the cold catch-up row needs root \
             (echo 3 > /proc/sys/vm/drop_caches)"
        )
    })
}

/// The SCHED_FIFO priority this process runs at, if it does (children inherit it).
fn realtime_policy() -> Option<i32> {
    // SAFETY: plain syscalls on the calling process; `param` is a valid out-pointer.
    unsafe {
        if libc::sched_getscheduler(0) != libc::SCHED_FIFO {
            return None;
        }
        let mut param = libc::sched_param { sched_priority: 0 };
        (libc::sched_getparam(0, &mut param) == 0).then_some(param.sched_priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loop_keeps_64_in_flight() {
        assert_eq!(closed_loop_shape(2, 2), (16, 16));
        assert_eq!(closed_loop_shape(1, 1), (64, 64));
        assert_eq!(closed_loop_shape(3, 2), (11, 11));
    }

    #[test]
    fn options() {
        let args: Vec<String> =
            "--quick --runs 5 --backlog 1GiB --peer-bin /tmp/peer/bin --shards 1"
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        let o = parse_opts(&args, 2).unwrap();
        assert!(o.quick);
        assert_eq!((o.runs, o.backlog_bytes, o.shards), (5, 1 << 30, 1));
        assert_eq!(o.duration_ms, 2000);
        assert_eq!(o.peer_bin, Some(PathBuf::from("/tmp/peer/bin")));
        let full = parse_opts(&[], 2).unwrap();
        assert_eq!(
            (full.runs, full.backlog_bytes, full.duration_ms),
            (3, 4 << 30, 10_000)
        );
        assert!(parse_opts(&["--bogus".into()], 2).is_err());
        assert_eq!(size_arg("x", "256MiB"), Ok(256 << 20));
        // Without --peer-bin there is no peer row to run.
        assert_eq!(
            full.rows,
            Rows {
                peer: false,
                ..Rows::ALL
            }
        );
    }

    #[test]
    fn row_filter_adds_what_rows_need() {
        let pull = Rows::parse("pull", false).unwrap();
        assert_eq!(
            pull,
            Rows {
                pull: true,
                ..Rows::NONE
            }
        );
        assert!(pull.any_async() && !pull.any_sync());
        // self-test compares with the best broker rate; RSS is read after the queue rows.
        let r = Rows::parse("self-test,rss", false).unwrap();
        assert!(r.self_test && r.async_produce && r.rss && r.queues && !r.e2e);
        // Catch-up needs the async maximum only when no rate is given.
        assert!(Rows::parse("catchup", false).unwrap().async_produce);
        assert!(!Rows::parse("catchup", true).unwrap().async_produce);
        let s = Rows::parse("sync-p99", false).unwrap();
        assert!(s.sync_p99 && s.sync_produce && !s.any_async());
        assert_eq!(Rows::parse(" e2e , all", false).unwrap(), Rows::ALL);
        assert!(Rows::parse("pulls", false).is_err());
        assert!(Rows::parse(",", false).is_err());
        let args: Vec<String> = ["--quick", "--rows", "pull,e2e"].map(str::to_owned).into();
        let o = parse_opts(&args, 2).unwrap();
        assert!(o.rows.pull && o.rows.e2e && !o.rows.async_produce && !o.rows.sync_produce);
    }
}
