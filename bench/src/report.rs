//! The run report: a manifest (what was measured, where, how) and the results, as JSON and as
//! the text printed at the end of a run; plus the generator-ceiling rule.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cli::Params;
use crate::stats::{Errors, Percentiles};
use crate::verify::{Oddities, QueueVerdict};

/// Achieved rate at or above this share of the generator's measured ceiling draws a warning:
/// past ~70 % a thread-per-core client starts to queue on its own cores, so the numbers may
/// describe the client as much as the broker.
pub const CEILING_WARN_SHARE: f64 = 0.70;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub manifest: Manifest,
    pub results: Results,
    /// HdrHistogram percentile files (`send.hgrm`, `e2e.hgrm`) for `--hgrm`; not in the JSON.
    #[serde(skip)]
    pub hgrm: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: String,
    pub version: String,
    pub git_sha: String,
    pub scenario: String,
    /// `open` (fixed target rate, latency from intended send times) or `closed` (N in flight).
    pub mode: String,
    pub started_unix_ms: u64,
    pub target: Target,
    pub host: Host,
    /// The broker's flush mode as the operator configured it (`--flush-label`); the protocol
    /// does not reveal it.
    pub flush_label: Option<String>,
    pub params: Params,
    pub target_rate_msgs_per_s: Option<f64>,
    pub achieved_rate_msgs_per_s: f64,
}

/// The broker(s) under test, as seen on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub namesrv: String,
    /// `name@ip:port` of every master used.
    pub brokers: Vec<String>,
    /// The `version` field of the broker's responses (RocketMQ `MQVersion` ordinal).
    pub version: Option<i32>,
    pub version_name: Option<String>,
    /// The `language` field of the broker's responses (JAVA, RUST, ...).
    pub language: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
}

impl Host {
    /// Reads /proc; fields it cannot read are "unknown".
    pub fn detect() -> Host {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into())
        };
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        Host {
            hostname: read("/proc/sys/kernel/hostname"),
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: format!(
                "{} {} {}",
                read("/proc/sys/kernel/ostype"),
                read("/proc/sys/kernel/osrelease"),
                read("/proc/sys/kernel/version")
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The measured window (after warm-up).
    pub duration_s: f64,
    pub produce: Option<ProduceResults>,
    pub consume: Option<ConsumeResults>,
    pub generator: GeneratorCheck,
    /// Anything that makes the numbers doubtful, in words.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProduceResults {
    /// Messages attempted (a batch counts its messages).
    pub sent: u64,
    /// Messages acknowledged with SUCCESS (oneway: sent without a connection error).
    pub acked: u64,
    pub failed: u64,
    pub msgs_per_s: f64,
    /// Body bytes acknowledged per second, 10^6 bytes per MB.
    pub mb_per_s: f64,
    /// Per request (a batch is one request), µs; from the intended time in open loop.
    pub send_latency_us: Percentiles,
    /// Requests that did not answer SUCCESS, by response code name.
    pub errors: Errors,
    pub open_loop: Option<OpenLoopResults>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenLoopResults {
    pub target_msgs_per_s: f64,
    /// Largest delay between a send's intended time and when the generator issued it.
    pub max_lag_us: f64,
    /// Sends issued more than 1 ms after their intended time.
    pub late_sends: u64,
    pub scheduled_sends: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsumeResults {
    /// Messages received inside the measured window (after warm-up, the basis of the rates),
    /// duplicates included. Per-queue counts in `per_queue` are totals over the whole run.
    pub received: u64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    /// Receive time − born time, µs (same host clock).
    pub e2e_latency_us: Percentiles,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub delivered_after_error: u64,
    /// Pull requests answered in the measured window.
    #[serde(default)]
    pub pull_requests: u64,
    /// Messages per pull that found messages (SUCCESS).
    #[serde(default)]
    pub msgs_per_found_pull: f64,
    /// Queues the consumers had not read to their end when they stopped (for a catch-up read:
    /// the end offset seen at the start).
    #[serde(default)]
    pub queues_not_read_to_end: usize,
    /// Acknowledged messages in queues not read to their end when consumers stopped.
    #[serde(default)]
    pub not_consumed: u64,
    /// `acknowledged-sends` (produce-consume) or `sequence-gaps` (consume only).
    pub loss_basis: String,
    pub oddities: Oddities,
    /// Pull responses other than SUCCESS / PULL_NOT_FOUND / PULL_RETRY_IMMEDIATELY.
    pub errors: Errors,
    pub per_queue: Vec<QueueVerdict>,
    /// Timer runs (`ringmq-bench timers`): delivery time − intended delivery time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer_skew: Option<crate::timers::TimerSkew>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorCheck {
    pub ceiling_msgs_per_s: Option<f64>,
    /// Which self-test the ceiling comes from.
    pub ceiling_key: Option<String>,
    /// Achieved send rate / ceiling.
    pub share_of_ceiling: Option<f64>,
}

/// `MQVersion` ordinal → name, for the ordinals the spec names (§1.6).
pub fn version_name(ordinal: i32) -> String {
    match ordinal {
        37 => "V3_0_11".into(),
        121 => "V3_4_9".into(),
        213 => "V4_0_0".into(),
        232 => "V4_1_0_SNAPSHOT".into(),
        401 => "V4_9_4".into(),
        409 => "V4_9_8".into(),
        413 => "V5_0_0".into(),
        433 => "V5_1_0".into(),
        475 => "V5_3_1".into(),
        479 => "V5_3_3".into(),
        n => n.to_string(),
    }
}

/// Self-test ceilings by key (send mode, batch, size), as stored in the ceiling file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ceilings {
    pub entries: BTreeMap<String, Ceiling>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    pub msgs_per_s: f64,
    pub measured_unix_ms: u64,
    pub workers: usize,
    pub git_sha: String,
}

/// The ceiling key of a parameter set against `brokers` brokers: what changes the
/// generator's own cost per message and its concurrency (connections per producer).
pub fn ceiling_key(p: &Params, brokers: usize) -> String {
    format!(
        "{:?}-batch{}-size{}-brokers{brokers}",
        p.send, p.batch, p.size
    )
    .to_ascii_lowercase()
}

impl Ceilings {
    /// The ceiling for `p` against `brokers` brokers: the same key, else the same send mode and
    /// batch, preferring the same broker count, then the nearest size.
    pub fn lookup(&self, p: &Params, brokers: usize) -> Option<(String, &Ceiling)> {
        let key = ceiling_key(p, brokers);
        if let Some(c) = self.entries.get(&key) {
            return Some((key, c));
        }
        let prefix = format!("{:?}-batch{}-size", p.send, p.batch).to_ascii_lowercase();
        self.entries
            .iter()
            .filter_map(|(k, c)| {
                let (size, n) = k.strip_prefix(&prefix)?.split_once("-brokers")?;
                let (size, n): (usize, usize) = (size.parse().ok()?, n.parse().ok()?);
                Some(((n != brokers, size.abs_diff(p.size)), k, c))
            })
            .min_by_key(|(d, _, _)| *d)
            .map(|(_, k, c)| (k.clone(), c))
    }
}

/// Fills the generator check and returns the warning, if the rule fires.
pub fn judge_ceiling(
    achieved: f64,
    found: Option<(String, &Ceiling)>,
) -> (GeneratorCheck, Option<String>) {
    let Some((key, c)) = found else {
        return (
            GeneratorCheck::default(),
            Some(
                "no self-test ceiling recorded for these options: run `ringmq-bench self-test` \
                 with the same --send/--batch/--size to know whether the generator limits this run"
                    .into(),
            ),
        );
    };
    let share = if c.msgs_per_s > 0.0 {
        achieved / c.msgs_per_s
    } else {
        0.0
    };
    let warning = (share >= CEILING_WARN_SHARE).then(|| {
        format!(
            "achieved {achieved:.0} msgs/s is {:.0}% of the generator's own ceiling ({:.0} msgs/s, \
             self-test `{key}`): the client may be the bottleneck; add cores or lower the load",
            share * 100.0,
            c.msgs_per_s
        )
    });
    (
        GeneratorCheck {
            ceiling_msgs_per_s: Some(c.msgs_per_s),
            ceiling_key: Some(key),
            share_of_ceiling: Some(share),
        },
        warning,
    )
}

fn pct_line(out: &mut String, label: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {label:<10} n={:<10} p50 {:>9} p90 {:>9} p99 {:>9} p99.9 {:>9} p99.99 {:>9} max {:>9}",
        p.count,
        us(p.p50),
        us(p.p90),
        us(p.p99),
        us(p.p999),
        us(p.p9999),
        us(p.max)
    );
}

/// A latency in µs, printed with a unit that keeps it short.
pub fn us(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.2}s", v / 1_000_000.0)
    } else if v >= 1000.0 {
        format!("{:.2}ms", v / 1000.0)
    } else {
        format!("{v:.1}us")
    }
}

/// The summary printed at the end of a run.
pub fn render(r: &Report) -> String {
    let m = &r.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ringmq-bench {} ({}) {} | {} loop | target {} {} ({}) | flush {}",
        m.version,
        m.git_sha,
        m.scenario,
        m.mode,
        m.target.language.as_deref().unwrap_or("?"),
        m.target.version_name.as_deref().unwrap_or("?"),
        m.target.brokers.join(", "),
        m.flush_label
            .as_deref()
            .unwrap_or("not stated (--flush-label)")
    );
    let _ = writeln!(
        out,
        "host {} | {} cores | {} | {:.1}s measured",
        m.host.cpu_model, m.host.cores, m.host.kernel, r.results.duration_s
    );
    if let Some(p) = &r.results.produce {
        let _ = writeln!(
            out,
            "produce: {:.0} msgs/s, {:.2} MB/s | sent {} acked {} failed {}",
            p.msgs_per_s, p.mb_per_s, p.sent, p.acked, p.failed
        );
        if p.send_latency_us.count > 0 {
            pct_line(&mut out, "send", &p.send_latency_us);
        } else if m.params.send == crate::cli::SendMode::Oneway {
            let _ = writeln!(
                out,
                "  send latency: none (oneway requests have no response)"
            );
        }
        if let Some(o) = &p.open_loop {
            let _ = writeln!(
                out,
                "  open loop: target {:.0} msgs/s, achieved {:.0}; max lag {}, {} of {} sends over 1 ms late",
                o.target_msgs_per_s,
                p.msgs_per_s,
                us(o.max_lag_us),
                o.late_sends,
                o.scheduled_sends
            );
        }
        if p.errors.total() > 0 {
            let _ = writeln!(out, "  errors: {}", errors_line(&p.errors));
        }
    }
    if let Some(c) = &r.results.consume {
        let _ = writeln!(
            out,
            "consume: {:.0} msgs/s, {:.2} MB/s | received {} in the measured window | lost {} duplicated {} reordered {} ({})",
            c.msgs_per_s, c.mb_per_s, c.received, c.lost, c.duplicated, c.reordered, c.loss_basis
        );
        let _ = writeln!(
            out,
            "  pulls: {} answered, {:.1} messages per pull that found any",
            c.pull_requests, c.msgs_per_found_pull
        );
        if c.not_consumed > 0 {
            let _ = writeln!(
                out,
                "  not consumed before the end (unverified): {}",
                c.not_consumed
            );
        }
        if c.e2e_latency_us.count > 0 {
            pct_line(&mut out, "end-to-end", &c.e2e_latency_us);
        }
        let o = &c.oddities;
        if o.corrupt + o.foreign + o.undecodable + o.broker_crc_mismatch + c.delivered_after_error
            > 0
        {
            let _ = writeln!(
                out,
                "  corrupt {} foreign {} undecodable {} broker-crc-mismatch {} delivered-after-error {}",
                o.corrupt, o.foreign, o.undecodable, o.broker_crc_mismatch, c.delivered_after_error
            );
        }
        let bad: Vec<&QueueVerdict> = c
            .per_queue
            .iter()
            .filter(|q| q.lost + q.duplicated + q.reordered + q.not_consumed > 0)
            .collect();
        let _ = writeln!(
            out,
            "  per queue: {} queues, {} with lost/duplicated/reordered/unconsumed messages",
            c.per_queue.len(),
            bad.len()
        );
        for q in bad {
            let _ = writeln!(
                out,
                "    {} {} q{}: received {} lost {} duplicated {} reordered {} not-consumed {}",
                q.topic,
                q.broker,
                q.queue_id,
                q.received,
                q.lost,
                q.duplicated,
                q.reordered,
                q.not_consumed
            );
        }
        if c.errors.total() > 0 {
            let _ = writeln!(out, "  pull errors: {}", errors_line(&c.errors));
        }
    }
    let g = &r.results.generator;
    if let (Some(ceil), Some(share)) = (g.ceiling_msgs_per_s, g.share_of_ceiling) {
        let _ = writeln!(
            out,
            "generator: ceiling {ceil:.0} msgs/s (self-test), this run used {:.0}% of it",
            share * 100.0
        );
    }
    for w in &r.results.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    out
}

fn errors_line(e: &Errors) -> String {
    e.0.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Params, Scenario};

    pub(crate) fn sample_report() -> Report {
        let params = Params::defaults(Scenario::ProduceConsume, 2);
        let mut errors = Errors::default();
        errors.code(2);
        Report {
            manifest: Manifest {
                tool: "ringmq-bench".into(),
                version: "0.1.0".into(),
                git_sha: "abc1234".into(),
                scenario: "produce-consume".into(),
                mode: "closed".into(),
                started_unix_ms: 1_700_000_000_000,
                target: Target {
                    namesrv: "127.0.0.1:9876".into(),
                    brokers: vec!["broker-a@127.0.0.1:10911".into()],
                    version: Some(479),
                    version_name: Some(version_name(479)),
                    language: Some("RUST".into()),
                },
                host: Host {
                    hostname: "h".into(),
                    cpu_model: "cpu".into(),
                    cores: 2,
                    kernel: "Linux 6".into(),
                },
                flush_label: Some("ASYNC_FLUSH".into()),
                params,
                target_rate_msgs_per_s: None,
                achieved_rate_msgs_per_s: 1000.0,
            },
            results: Results {
                duration_s: 10.0,
                produce: Some(ProduceResults {
                    sent: 10_001,
                    acked: 10_000,
                    failed: 1,
                    msgs_per_s: 1000.0,
                    mb_per_s: 1.024,
                    send_latency_us: Percentiles {
                        count: 10_001,
                        mean: 120.0,
                        p50: 100.0,
                        p90: 150.0,
                        p99: 300.0,
                        p999: 900.0,
                        p9999: 1500.0,
                        max: 2500.0,
                    },
                    errors,
                    open_loop: None,
                }),
                consume: Some(ConsumeResults {
                    received: 10_000,
                    msgs_per_s: 1000.0,
                    mb_per_s: 1.024,
                    e2e_latency_us: Percentiles {
                        count: 10_000,
                        p50: 200.0,
                        p99: 800.0,
                        max: 4000.0,
                        ..Percentiles::default()
                    },
                    loss_basis: "acknowledged-sends".into(),
                    per_queue: vec![QueueVerdict {
                        topic: "ringmq-bench-0".into(),
                        broker: "broker-a".into(),
                        queue_id: 0,
                        received: 10_000,
                        ..QueueVerdict::default()
                    }],
                    ..ConsumeResults::default()
                }),
                generator: GeneratorCheck::default(),
                warnings: vec![],
            },
            hgrm: Vec::new(),
        }
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let r = sample_report();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["manifest"]["mode"], "closed");
        assert_eq!(v["manifest"]["target"]["version_name"], "V5_3_3");
        assert_eq!(v["manifest"]["params"]["scenario"], "produce-consume");
        assert_eq!(v["manifest"]["params"]["send"], "async");
        assert_eq!(v["results"]["produce"]["errors"]["SYSTEM_BUSY"], 1);
        assert_eq!(v["results"]["produce"]["send_latency_us"]["p9999"], 1500.0);
        assert_eq!(v["results"]["consume"]["per_queue"][0]["lost"], 0);
    }

    #[test]
    fn render_names_mode_flush_percentiles_and_verdicts() {
        let text = render(&sample_report());
        assert!(text.contains("closed loop"), "{text}");
        assert!(text.contains("flush ASYNC_FLUSH"), "{text}");
        assert!(text.contains("RUST V5_3_3"), "{text}");
        assert!(text.contains("produce: 1000 msgs/s"), "{text}");
        assert!(text.contains("p99.99    1.50ms"), "{text}");
        assert!(text.contains("lost 0 duplicated 0 reordered 0"), "{text}");
        assert!(text.contains("errors: SYSTEM_BUSY=1"), "{text}");
        assert!(text.contains("1 queues, 0 with"), "{text}");
    }

    #[test]
    fn version_names() {
        assert_eq!(version_name(479), "V5_3_3");
        assert_eq!(version_name(401), "V4_9_4");
        assert_eq!(version_name(455), "455");
    }

    #[test]
    fn ceiling_rule() {
        let p = Params::defaults(Scenario::Produce, 2);
        let mut c = Ceilings::default();
        assert!(c.lookup(&p, 1).is_none());
        let (g, w) = judge_ceiling(100.0, None);
        assert!(g.ceiling_msgs_per_s.is_none());
        assert!(w.unwrap().contains("self-test"));
        let entry = |v| Ceiling {
            msgs_per_s: v,
            measured_unix_ms: 0,
            workers: 2,
            git_sha: "x".into(),
        };
        c.entries
            .insert("async-batch1-size100-brokers1".into(), entry(1000.0));
        c.entries
            .insert("async-batch1-size4096-brokers1".into(), entry(500.0));
        c.entries
            .insert("async-batch1-size4096-brokers2".into(), entry(700.0));
        c.entries
            .insert("sync-batch1-size1024-brokers1".into(), entry(9.0));
        // Same mode and batch: the same broker count first, then the nearest size.
        let (k, found) = c.lookup(&p, 1).unwrap();
        assert_eq!(
            (k.as_str(), found.msgs_per_s),
            ("async-batch1-size100-brokers1", 1000.0)
        );
        let (k, _) = c.lookup(&p, 2).unwrap();
        assert_eq!(k, "async-batch1-size4096-brokers2");
        c.entries.insert(ceiling_key(&p, 1), entry(200_000.0));
        let (g, w) = judge_ceiling(139_000.0, c.lookup(&p, 1));
        assert_eq!(
            g.ceiling_key.as_deref(),
            Some("async-batch1-size1024-brokers1")
        );
        assert!(w.is_none(), "69.5% is under the line");
        let (g, w) = judge_ceiling(140_000.0, c.lookup(&p, 1));
        assert!((g.share_of_ceiling.unwrap() - 0.7).abs() < 1e-9);
        assert!(w.unwrap().contains("70%"));
    }
}
