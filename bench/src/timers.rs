//! `ringmq-bench timers`: many pending timers, then how late they fire (issue 6).
//!
//! One produce-consume run of the normal producer and consumer: every message asks for
//! delivery at its own time (`TIMER_DELIVER_MS`, spread pseudo-randomly over a window that
//! starts well after scheduling ends; or a `DELAY` level), and carries that intended time in a
//! bench property the broker passes through untouched ([`DUE_PROPERTY`]; the broker drops the
//! TIMER_* keys from the delivered copy, spec §4.9). Consumers long-poll the real topic from
//! its tail before anything is due, so a message is seen within one pull round trip of its
//! re-put. For each delivered message the skew is
//!
//! ```text
//!  store skew   = STORETIMESTAMP of the delivered copy − intended time   (broker's clock, ms)
//!  arrival skew = consumer receive time − intended time                    (bench clock, ns)
//! ```
//!
//! A negative skew (delivered early) is a broker bug and is counted, not folded into the
//! percentiles. The broker's RSS (RssAnon + RssShmem) is read before scheduling and again just
//! before the first timer is due, with every timer pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ringmq_codec::message::properties::{self, keys};
use serde::{Deserialize, Serialize};

use crate::cli::{self, Command, Params};
use crate::procs;
use crate::report::{self, Report};
use crate::stats::{Latency, Percentiles};

/// User property carrying the intended delivery time (ms since the epoch) of a timer message.
pub const DUE_PROPERTY: &str = "RINGMQ_BENCH_DUE_MS";

/// RocketMQ's default `messageDelayLevel`, in ms (level 1 first).
pub const DEFAULT_DELAY_LEVELS_MS: [i64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

/// When each message of a timer run asks to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum TimerLoad {
    /// `TIMER_DELIVER_MS` = a pseudo-random point of `[window_start_ms, + window_ms)`.
    DeliverAt {
        window_start_ms: i64,
        window_ms: i64,
    },
    /// `DELAY = level`; due `delay_ms` after the send.
    DelayLevel { level: u32, delay_ms: i64 },
}

/// A well-mixed 64-bit hash (splitmix64's finaliser): spreads due times over the window
/// independently of send order.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl TimerLoad {
    /// The intended delivery time of message `seq` of `producer`, sent at `born_ms`.
    pub fn due_ms(&self, producer: u32, seq: u64, born_ms: i64) -> i64 {
        match *self {
            TimerLoad::DeliverAt {
                window_start_ms,
                window_ms,
            } => {
                let h = mix(seq ^ (u64::from(producer) << 40));
                window_start_ms + (h % window_ms.max(1) as u64) as i64
            }
            TimerLoad::DelayLevel { delay_ms, .. } => born_ms + delay_ms,
        }
    }

    /// The properties a message due at `due_ms` carries besides the usual ones.
    pub fn properties(&self, due_ms: i64) -> [(&'static str, String); 2] {
        let ask = match *self {
            TimerLoad::DeliverAt { .. } => (keys::TIMER_DELIVER_MS, due_ms.to_string()),
            TimerLoad::DelayLevel { level, .. } => (keys::DELAY, level.to_string()),
        };
        [ask, (DUE_PROPERTY, due_ms.to_string())]
    }
}

/// Skew of delivered timer messages, recorded by one worker's consumers.
#[derive(Debug, Clone, Default)]
pub struct SkewRec {
    pub store: Latency,
    pub arrival: Latency,
    pub early_by_store: u64,
    pub early_by_arrival: u64,
    /// Most negative store skew seen, ms (0 when none was early).
    pub max_early_ms: i64,
    /// Delivered messages of this run without the due property (should be none).
    pub missing_due: u64,
}

impl SkewRec {
    /// Records one delivered message: its properties, store timestamp (ms) and receive time
    /// (ns since the epoch on the bench clock).
    pub fn observe(&mut self, props: &str, store_ms: i64, recv_ns: u64) {
        let Some(due) = properties::find(props, DUE_PROPERTY).and_then(|v| v.parse::<i64>().ok())
        else {
            self.missing_due += 1;
            return;
        };
        let store = store_ms - due;
        if store < 0 {
            self.early_by_store += 1;
            self.max_early_ms = self.max_early_ms.min(store);
        } else {
            self.store.record_ns(store as u64 * 1_000_000);
        }
        let arrival = recv_ns as i128 - i128::from(due) * 1_000_000;
        if arrival < 0 {
            self.early_by_arrival += 1;
        } else {
            self.arrival
                .record_ns(u64::try_from(arrival).unwrap_or(u64::MAX));
        }
    }

    pub fn merge(&mut self, o: &SkewRec) {
        self.store.merge(&o.store);
        self.arrival.merge(&o.arrival);
        self.early_by_store += o.early_by_store;
        self.early_by_arrival += o.early_by_arrival;
        self.max_early_ms = self.max_early_ms.min(o.max_early_ms);
        self.missing_due += o.missing_due;
    }

    pub fn summary(&self) -> TimerSkew {
        TimerSkew {
            store_skew_us: self.store.summary(),
            arrival_skew_us: self.arrival.summary(),
            early_by_store_time: self.early_by_store,
            early_by_arrival: self.early_by_arrival,
            max_early_ms: self.max_early_ms,
            missing_due: self.missing_due,
        }
    }
}

/// Firing skew in the report (µs; only deliveries at or after the intended time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimerSkew {
    /// Store time of the delivered copy − intended time.
    pub store_skew_us: Percentiles,
    /// Consumer receive time − intended time.
    pub arrival_skew_us: Percentiles,
    pub early_by_store_time: u64,
    pub early_by_arrival: u64,
    pub max_early_ms: i64,
    pub missing_due: u64,
}

/// The `timers` command line.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerOpts {
    pub namesrv: String,
    pub count: u64,
    /// Due window start, from the moment the command starts.
    pub start_after_ms: i64,
    pub window_ms: i64,
    pub delay_level: Option<u32>,
    pub broker_pid: Option<u32>,
    pub producers: Option<usize>,
    pub size: usize,
    pub json: Option<String>,
}

pub const USAGE: &str = "\
ringmq-bench timers: schedule many timer messages, measure the broker's added RSS with all of
them pending, then consume them and measure the firing skew.

  --namesrv ADDR       name server                                   [127.0.0.1:9876]
  --count N            messages to schedule (k, m suffixes)          [1m]
  --start D            first due time, after the command starts      [60s]
  --window D           due times spread over this window              [60s]
  --delay-level N      DELAY level N (RocketMQ default table) instead of TIMER_DELIVER_MS
  --broker-pid PID     read the broker's RssAnon+RssShmem from /proc/PID/status
  --producers N        producer connections                           [cores]
  --size BYTES         message body size                              [1024]
  --json FILE          write the full produce-consume report
Prints one `RESULT {json}` line.
";

fn parse_count(flag: &str, v: &str) -> Result<u64, String> {
    let lower = v.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower.strip_suffix('m') {
        (n.to_owned(), 1_000_000.0)
    } else if let Some(n) = lower.strip_suffix('k') {
        (n.to_owned(), 1_000.0)
    } else {
        (lower.clone(), 1.0)
    };
    match num.parse::<f64>() {
        Ok(x) if x > 0.0 && (x * mult).fract() == 0.0 => Ok((x * mult) as u64),
        _ => Err(format!("{flag} {v}: expected a positive whole number")),
    }
}

/// A duration flag in ms (`60s`, `500ms`, `2m`; bare numbers are seconds), read the way
/// every other ringmq-bench duration flag is.
pub fn parse_ms(flag: &str, v: &str) -> Result<i64, String> {
    let ms = crate::cli::duration_ms(v).map_err(|e| format!("{flag}: {e}"))?;
    i64::try_from(ms).map_err(|_| format!("{flag} {v}: too long"))
}

pub fn parse_opts(args: &[String]) -> Result<TimerOpts, String> {
    let mut o = TimerOpts {
        namesrv: "127.0.0.1:9876".into(),
        count: 1_000_000,
        start_after_ms: 60_000,
        window_ms: 60_000,
        delay_level: None,
        broker_pid: None,
        producers: None,
        size: 1024,
        json: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--namesrv" => o.namesrv = value()?,
            "--count" => o.count = parse_count(flag, &value()?)?,
            "--start" => o.start_after_ms = parse_ms(flag, &value()?)?,
            "--window" => o.window_ms = parse_ms(flag, &value()?)?.max(1),
            "--delay-level" => {
                let v = value()?;
                let n: u32 = v.parse().map_err(|_| format!("--delay-level {v}"))?;
                if !(1..=18).contains(&n) {
                    return Err(format!("--delay-level {n}: levels are 1 to 18"));
                }
                o.delay_level = Some(n);
            }
            "--broker-pid" => {
                let v = value()?;
                o.broker_pid = Some(v.parse().map_err(|_| format!("--broker-pid {v}"))?);
            }
            "--producers" => o.producers = Some(parse_count(flag, &value()?)? as usize),
            "--json" => o.json = Some(value()?),
            "--size" => o.size = parse_count(flag, &value()?)? as usize,
            other => {
                return Err(format!(
                    "unknown flag `{other}` (see ringmq-bench timers --help)"
                ));
            }
        }
    }
    Ok(o)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The produce-consume parameters of a timer run started at `now_ms`.
pub fn params(o: &TimerOpts, now_ms: i64, cores: usize) -> Result<Params, String> {
    let load = match o.delay_level {
        Some(level) => TimerLoad::DelayLevel {
            level,
            delay_ms: DEFAULT_DELAY_LEVELS_MS
                .get(level as usize - 1)
                .copied()
                .unwrap_or(1000),
        },
        None => TimerLoad::DeliverAt {
            window_start_ms: now_ms + o.start_after_ms,
            window_ms: o.window_ms,
        },
    };
    let last_due_after = match load {
        TimerLoad::DeliverAt { .. } => o.start_after_ms + o.window_ms,
        TimerLoad::DelayLevel { delay_ms, .. } => delay_ms,
    };
    // Consumers stop once every acknowledged message arrived; the drain only ends a run whose
    // broker never fires (it must outlast the wait for the first due time).
    let drain = last_due_after + 60_000;
    let mut line: Vec<String> = [
        "produce-consume",
        "--namesrv",
        &o.namesrv,
        "--messages",
        &o.count.to_string(),
        "--topic-prefix",
        &format!("timers-{now_ms}"),
        "--drain",
        &format!("{drain}ms"),
        "--timeout",
        "10s",
        "--size",
        &o.size.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(n) = o.producers {
        line.extend(["--producers".into(), n.to_string()]);
    }
    let mut p = match cli::parse(&line, cores).map_err(|e| e.to_string())? {
        Command::Run(p) => *p,
        _ => return Err("internal: the timer run is not a run".into()),
    };
    p.timer = Some(load);
    Ok(p)
}

/// What `timers` prints as `RESULT`.
#[derive(Debug, Clone, Serialize)]
pub struct TimerResult {
    pub count: u64,
    pub load: TimerLoad,
    pub scheduling_msgs_per_s: f64,
    pub acked: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub rss_before_bytes: Option<u64>,
    /// Sampled just before the first timer was due.
    pub rss_pending_bytes: Option<u64>,
    pub rss_peak_bytes: Option<u64>,
    pub added_rss_per_million_mib: Option<f64>,
    pub skew: Option<TimerSkew>,
    /// Whether every send was acknowledged before the RSS sample (else the sample saw fewer
    /// pending timers).
    pub scheduled_before_sample: bool,
    pub warnings: Vec<String>,
}

/// Runs the timer benchmark; prints the report and a `RESULT` line.
pub fn main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return Ok(());
    }
    let o = parse_opts(args)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let now = unix_ms();
    let p = params(&o, now, cores)?;
    let first_due = match p.timer {
        Some(TimerLoad::DeliverAt {
            window_start_ms, ..
        }) => window_start_ms,
        Some(TimerLoad::DelayLevel { delay_ms, .. }) => now + delay_ms,
        None => now,
    };
    let rss_before = o.broker_pid.map(procs::rss_anon_shmem).transpose()?;
    let sampler = o
        .broker_pid
        .map(|pid| Sampler::start(pid, first_due - 1000));
    let report = crate::run::execute(p.clone())?;
    let samples = sampler.map(Sampler::stop);
    let result = summarize(&o, &p, &report, rss_before, samples);
    print!("{}", report::render(&report));
    if let Some(path) = &o.json {
        let json = serde_json::to_vec_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("cannot write {path}: {e}"))?;
    }
    print_result(&result);
    Ok(())
}

fn print_result(r: &TimerResult) {
    let mib =
        |b: Option<u64>| b.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    println!(
        "timers: {} scheduled at {:.0} msgs/s; RSS before {}, with all pending {}, peak {}; \
         added per 1M pending: {}",
        r.count,
        r.scheduling_msgs_per_s,
        mib(r.rss_before_bytes),
        mib(r.rss_pending_bytes),
        mib(r.rss_peak_bytes),
        r.added_rss_per_million_mib
            .map_or("n/a".into(), |m| format!("{m:.1} MiB (target <= 64 MiB)"))
    );
    if let Some(s) = &r.skew {
        let ms = |us: f64| us / 1000.0;
        println!(
            "firing skew (store time - intended): p50 {:.1} ms p99 {:.1} ms max {:.1} ms; \
             (arrival - intended): p50 {:.1} ms p99 {:.1} ms max {:.1} ms (target p99 <= 100 ms); \
             early: {} by store time, {} by arrival",
            ms(s.store_skew_us.p50),
            ms(s.store_skew_us.p99),
            ms(s.store_skew_us.max),
            ms(s.arrival_skew_us.p50),
            ms(s.arrival_skew_us.p99),
            ms(s.arrival_skew_us.max),
            s.early_by_store_time,
            s.early_by_arrival
        );
    }
    for w in &r.warnings {
        println!("WARNING: {w}");
    }
    match serde_json::to_string(r) {
        Ok(j) => println!("RESULT {j}"),
        Err(e) => eprintln!("ringmq-bench: cannot encode the result: {e}"),
    }
}

fn summarize(
    o: &TimerOpts,
    p: &Params,
    r: &Report,
    rss_before: Option<u64>,
    samples: Option<Samples>,
) -> TimerResult {
    let produce = r.results.produce.clone().unwrap_or_default();
    let consume = r.results.consume.clone().unwrap_or_default();
    let mut warnings = r.results.warnings.clone();
    let scheduled_at_ms = r.manifest.started_unix_ms as f64 + r.results.duration_s * 1000.0;
    let (pending, peak, sampled_at) = match &samples {
        Some(s) => (s.at_due, Some(s.peak), s.at_due_ms),
        None => (None, None, None),
    };
    let scheduled_before_sample = sampled_at.is_some_and(|t| scheduled_at_ms <= t as f64);
    if samples.is_some() && !scheduled_before_sample {
        warnings.push(
            "scheduling had not finished when the RSS was sampled before the first due time: \
             raise --start"
                .into(),
        );
    }
    if consume.reordered > 0 {
        warnings.push(format!(
            "{} messages counted as reordered: expected here, timers fire in due-time order, \
             not in send order",
            consume.reordered
        ));
    }
    if o.broker_pid.is_none() {
        warnings.push("no --broker-pid: RSS not measured".into());
    }
    let added = match (rss_before, pending) {
        (Some(b), Some(a)) if produce.acked > 0 => {
            Some((a as f64 - b as f64) / 1048576.0 * 1e6 / produce.acked as f64)
        }
        _ => None,
    };
    TimerResult {
        count: o.count,
        load: p.timer.unwrap_or(TimerLoad::DelayLevel {
            level: 0,
            delay_ms: 0,
        }),
        scheduling_msgs_per_s: produce.msgs_per_s,
        acked: produce.acked,
        delivered: consume.received,
        lost: consume.lost,
        duplicated: consume.duplicated,
        rss_before_bytes: rss_before,
        rss_pending_bytes: pending,
        rss_peak_bytes: peak,
        added_rss_per_million_mib: added,
        skew: consume.timer_skew.clone(),
        scheduled_before_sample,
        warnings,
    }
}

/// RSS samples taken on a side thread during the run.
#[derive(Debug, Clone, Default)]
struct Samples {
    at_due: Option<u64>,
    at_due_ms: Option<i64>,
    peak: u64,
}

struct Sampler {
    stop: Arc<AtomicBool>,
    at_due: Arc<AtomicU64>,
    at_due_ms: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    /// Samples `pid` every 250 ms (for the peak) and once at `sample_at_ms`.
    fn start(pid: u32, sample_at_ms: i64) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (at_due, at_due_ms, peak) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let thread = {
            let (stop, at_due, at_due_ms, peak) = (
                stop.clone(),
                at_due.clone(),
                at_due_ms.clone(),
                peak.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if let Ok(rss) = procs::rss_anon_shmem(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                        let now = unix_ms();
                        if now >= sample_at_ms && at_due_ms.load(Ordering::Relaxed) == 0 {
                            at_due.store(rss, Ordering::Relaxed);
                            at_due_ms.store(now as u64, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            })
        };
        Sampler {
            stop,
            at_due,
            at_due_ms,
            peak,
            thread,
        }
    }

    fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        let t = self.at_due_ms.load(Ordering::Relaxed);
        Samples {
            at_due: (t != 0).then(|| self.at_due.load(Ordering::Relaxed)),
            at_due_ms: (t != 0).then_some(t as i64),
            peak: self.peak.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_cover_the_window_and_carry_the_asked_property() {
        let load = TimerLoad::DeliverAt {
            window_start_ms: 1_000_000,
            window_ms: 60_000,
        };
        let dues: Vec<i64> = (0..10_000).map(|s| load.due_ms(1, s, 0)).collect();
        assert!(dues.iter().all(|d| (1_000_000..1_060_000).contains(d)));
        let (lo, hi) = (dues.iter().min().unwrap(), dues.iter().max().unwrap());
        assert!(*lo < 1_001_000 && *hi > 1_059_000, "spread: {lo}..{hi}");
        assert_ne!(load.due_ms(1, 7, 0), load.due_ms(2, 7, 0));
        let props = load.properties(1_000_123);
        assert_eq!(props[0], (keys::TIMER_DELIVER_MS, "1000123".to_owned()));
        assert_eq!(props[1], (DUE_PROPERTY, "1000123".to_owned()));
        let level = TimerLoad::DelayLevel {
            level: 3,
            delay_ms: 10_000,
        };
        assert_eq!(level.due_ms(0, 0, 5_000), 15_000);
        assert_eq!(level.properties(15_000)[0], (keys::DELAY, "3".to_owned()));
    }

    #[test]
    fn skew_separates_early_deliveries() {
        let mut r = SkewRec::default();
        let mut props = String::new();
        properties::encode([(DUE_PROPERTY, "10000")], &mut props);
        r.observe(&props, 10_040, 10_050 * 1_000_000);
        r.observe(&props, 9_990, 9_995 * 1_000_000);
        r.observe("", 1, 1);
        let s = r.summary();
        assert_eq!((s.store_skew_us.count, s.arrival_skew_us.count), (1, 1));
        assert!((s.store_skew_us.p50 - 40_000.0).abs() < 100.0);
        assert!((s.arrival_skew_us.p50 - 50_000.0).abs() < 100.0);
        assert_eq!((s.early_by_store_time, s.early_by_arrival), (1, 1));
        assert_eq!((s.max_early_ms, s.missing_due), (-10, 1));
    }

    #[test]
    fn timer_runs_are_unbatched_produce_consume_with_a_long_drain() {
        let o =
            parse_opts(&["--count".into(), "2k".into(), "--start".into(), "5s".into()]).unwrap();
        let p = params(&o, 1_000, 2).unwrap();
        assert_eq!(p.scenario, crate::cli::Scenario::ProduceConsume);
        assert_eq!((p.messages, p.batch), (Some(2000), 1));
        assert_eq!(
            p.timer,
            Some(TimerLoad::DeliverAt {
                window_start_ms: 6_000,
                window_ms: 60_000
            })
        );
        assert!(p.drain_ms >= 65_000);
        assert!(parse_opts(&["--delay-level".into(), "19".into()]).is_err());
    }
}
