//! One run from start to report: setup, worker threads, live progress, merge, report, files.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, RandomState};
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringmq_codec::codes::request;

use crate::cli::{Params, Scenario, StartFrom};
use crate::consumer::Assignment;
use crate::report::{
    self, Ceiling, Ceilings, ConsumeResults, Host, Manifest, OpenLoopResults, ProduceResults,
    Report, Results, Target,
};
use crate::sched::{AnchoredClock, Clock, LagStats, Nanos};
use crate::selftest::Responders;
use crate::setup::{self, Broker, Plan, QueueRef};
use crate::stats::{Errors, Latency};
use crate::verify::{self, Oddities, QueueKey, SentLog, StreamCheck, StreamKey};
use crate::worker::{Msg, Shared, WorkerResult, WorkerSpec, run_worker};

/// Open-loop runs that reach less than this share of the target rate draw a warning.
const OPEN_LOOP_SHORTFALL: f64 = 0.95;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A random run id (std's per-process hash keys are random).
fn run_id() -> u32 {
    let h = RandomState::new().hash_one(unix_ms() ^ u64::from(std::process::id()));
    (h ^ (h >> 32)) as u32
}

/// Runs a scenario and returns its report; prints progress on a terminal.
pub fn execute(p: Params) -> Result<Report, String> {
    let clock = AnchoredClock::new();
    let started_unix_ms = unix_ms();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut responders = Vec::new();
    let main_rt = compio::runtime::Runtime::new()
        .map_err(|e| format!("cannot start an io_uring runtime: {e}"))?;
    let plan = if p.scenario == Scenario::SelfTest {
        for _ in 0..p.brokers.max(1) {
            responders.push(Responders::start(p.workers, cores)?);
        }
        let addrs: Vec<_> = responders.iter().map(|r| r.addr).collect();
        self_test_plan(&p, &addrs)
    } else {
        main_rt
            .block_on(setup::setup(&p))
            .map_err(|e| e.to_string())?
    };
    let assignments = if p.scenario.consumes() {
        main_rt.block_on(assign(&p, &plan))?
    } else {
        Vec::new()
    };
    drop(main_rt);
    let specs = worker_specs(&p, &assignments, cores);
    let sh = Arc::new(Shared::new(p.clone(), plan, clock, run_id()));
    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = specs
        .into_iter()
        .map(|spec| {
            let (sh, tx) = (sh.clone(), tx.clone());
            std::thread::Builder::new()
                .name(format!("bench-worker-{}", spec.index))
                .spawn(move || run_worker(spec, sh, tx))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot start a worker thread: {e}"))?;
    drop(tx);
    sh.barrier.wait();
    // A little head room so every worker is past the second barrier before the first send.
    sh.start_ns
        .store(clock.now_ns() + 5_000_000, Ordering::Release);
    sh.barrier.wait();
    watch_progress(&sh, &rx, threads.len());
    let mut results = Vec::new();
    for t in threads {
        results.push(
            t.join()
                .map_err(|_| "a worker thread panicked".to_owned())?,
        );
    }
    for r in responders {
        r.stop();
    }
    if let Some(e) = results.iter().find_map(|r| r.error.clone()) {
        return Err(e);
    }
    Ok(build_report(&p, &sh, results, started_unix_ms))
}

fn self_test_plan(p: &Params, addrs: &[std::net::SocketAddr]) -> Plan {
    let topics = p.topic_names();
    let brokers: Vec<Broker> = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| Broker {
            name: format!("self-test-{i}"),
            addr: *addr,
        })
        .collect();
    let mut write_queues = Vec::new();
    for topic in 0..topics.len() {
        for broker in 0..brokers.len() {
            for queue_id in 0..p.queues as i32 {
                write_queues.push(QueueRef {
                    topic,
                    broker,
                    queue_id,
                });
            }
        }
    }
    let ordinal = ringmq_codec::command::RINGMQ_VERSION_ORDINAL;
    Plan {
        topics,
        target: Target {
            namesrv: "none (built-in responder)".into(),
            brokers: brokers
                .iter()
                .map(|b| format!("{}@{}", b.name, b.addr))
                .collect(),
            version: Some(ordinal),
            version_name: Some(report::version_name(ordinal)),
            language: Some("RUST".into()),
        },
        brokers,
        write_queues,
        read_queues: Vec::new(),
    }
}

/// Start (and, for catch-up, end) offsets of every readable queue, split among consumers.
async fn assign(p: &Params, plan: &Plan) -> Result<Vec<Vec<Assignment>>, String> {
    let timeout = Duration::from_millis(p.timeout_ms);
    let mut conns = Vec::new();
    for b in &plan.brokers {
        conns.push(
            setup::open(b.addr, timeout)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let mut out = vec![Vec::new(); p.consumers.max(1)];
    for (i, q) in plan.read_queues.iter().enumerate() {
        let conn = conns
            .get(q.broker)
            .ok_or("a queue names an unknown broker")?;
        let topic = plan.topics.get(q.topic).cloned().unwrap_or_default();
        let max = setup::queue_offset(p, conn, request::GET_MAX_OFFSET, &topic, q.queue_id)
            .await
            .map_err(|e| e.to_string())?
            .0;
        let a = match p.from {
            StartFrom::Tail => Assignment {
                queue: *q,
                start: max,
                end: None,
            },
            StartFrom::Start => {
                let min = setup::queue_offset(p, conn, request::GET_MIN_OFFSET, &topic, q.queue_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .0;
                // A produce-consume run keeps reading past the backlog.
                let end = (p.scenario == Scenario::Consume).then_some(max);
                Assignment {
                    queue: *q,
                    start: min,
                    end,
                }
            }
        };
        if let Some(slot) = out.get_mut(i % p.consumers.max(1)) {
            slot.push(a);
        }
    }
    for c in conns {
        c.close();
    }
    Ok(out)
}

/// Producers and consumers dealt round-robin to the workers; worker k pinned to core k.
fn worker_specs(p: &Params, consumers: &[Vec<Assignment>], cores: usize) -> Vec<WorkerSpec> {
    let w = p.workers.max(1);
    let mut specs: Vec<WorkerSpec> = (0..w)
        .map(|index| WorkerSpec {
            index,
            cpu: index % cores.max(1),
            ..WorkerSpec::default()
        })
        .collect();
    if p.scenario.produces() {
        let n = p.producers.max(1) as u64;
        for id in 0..n {
            let quota = p.messages.map(|m| m / n + u64::from(id < m % n));
            if let Some(s) = specs.get_mut((id % w as u64) as usize) {
                s.producers.push((id as u32, quota));
            }
        }
    }
    for (i, c) in consumers.iter().enumerate() {
        if let Some(s) = specs.get_mut(i % w) {
            s.consumers.push(c.clone());
        }
    }
    specs
}

/// What the progress line shows, summed over workers for one second.
#[derive(Debug, Default)]
struct Window {
    sent: u64,
    received: u64,
    errors: u64,
}

/// The live line: elapsed time, rates, p99 so far, errors so far.
pub fn progress_line(
    elapsed_s: f64,
    send_rate: f64,
    send_p99_us: Option<f64>,
    recv_rate: Option<f64>,
    e2e_p99_us: Option<f64>,
    errors: u64,
) -> String {
    let mut s = format!("[{elapsed_s:5.0}s] send {send_rate:>9.0} msg/s");
    if let Some(p) = send_p99_us {
        s.push_str(&format!(" p99 {:>9}", report::us(p)));
    }
    if let Some(r) = recv_rate {
        s.push_str(&format!(" | recv {r:>9.0} msg/s"));
    }
    if let Some(p) = e2e_p99_us {
        s.push_str(&format!(" e2e p99 {:>9}", report::us(p)));
    }
    s.push_str(&format!(" | errors {errors}"));
    s
}

/// Prints progress every second (to a terminal only) and runs the produce-consume stop rule's
/// main-thread half: once all workers' producers are done, publish the acknowledged total.
fn watch_progress(sh: &Shared, rx: &mpsc::Receiver<Msg>, workers: usize) {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_print = Instant::now();
    let mut window = Window::default();
    let (mut send_all, mut e2e_all) = (Latency::new(), Latency::new());
    let mut errors_all = 0u64;
    let (mut done, mut acked) = (0usize, 0u64);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Msg::Tick(t)) => {
                window.sent += t.sent;
                window.received += t.received;
                window.errors += t.errors;
                send_all.merge(&t.send);
                e2e_all.merge(&t.e2e);
            }
            Ok(Msg::ProducersDone { acked: a }) => {
                done += 1;
                acked += a;
                if done == workers {
                    sh.acked_total.store(acked, Ordering::Release);
                    sh.producers_done_ns
                        .store(sh.clock.now_ns().max(1), Ordering::Release);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let since = last_print.elapsed();
        if tty && since >= Duration::from_secs(1) {
            errors_all += window.errors;
            let secs = since.as_secs_f64();
            let p = &sh.params;
            let q99 =
                |h: &Latency| (h.count() > 0).then(|| h.value_at_quantile_ns(0.99) as f64 / 1e3);
            let line = progress_line(
                started.elapsed().as_secs_f64(),
                window.sent as f64 / secs,
                q99(&send_all),
                p.scenario
                    .consumes()
                    .then_some(window.received as f64 / secs),
                q99(&e2e_all),
                errors_all,
            );
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            window = Window::default();
            last_print = Instant::now();
        }
    }
    if tty {
        eprintln!();
    }
}

fn rate(n: u64, elapsed_ns: Nanos) -> f64 {
    if elapsed_ns == 0 {
        0.0
    } else {
        n as f64 * 1e9 / elapsed_ns as f64
    }
}

/// Merges the workers' results into the report.
fn build_report(
    p: &Params,
    sh: &Shared,
    results: Vec<WorkerResult>,
    started_unix_ms: u64,
) -> Report {
    let measure_start = sh.measure_start_ns();
    let mut send = Latency::new();
    let mut e2e = Latency::new();
    let (mut send_errors, mut pull_errors, mut problems) =
        (Errors::default(), Errors::default(), Errors::default());
    let mut lag = LagStats::default();
    let mut oddities = Oddities::default();
    let mut warnings = BTreeSet::new();
    let mut sent_logs: BTreeMap<StreamKey, SentLog> = BTreeMap::new();
    let mut checks: BTreeMap<StreamKey, StreamCheck> = BTreeMap::new();
    let mut unread: BTreeSet<QueueKey> = BTreeSet::new();
    let mut offsets: BTreeMap<QueueKey, (i64, i64)> = BTreeMap::new();
    let (mut sent, mut acked, mut failed, mut acked_bytes, mut last_done) = (0, 0, 0, 0, 0);
    let (mut received, mut received_bytes, mut last_recv) = (0, 0, 0);
    let (mut abandoned, mut offset_jumps) = (0, 0);
    let (mut pulls, mut pulls_found) = (0u64, 0u64);
    let mut skew = crate::timers::SkewRec::default();
    for r in results {
        let (pr, cr) = (&r.produce, &r.consume);
        send.merge(&pr.latency);
        e2e.merge(&cr.e2e);
        send_errors.merge(&pr.errors);
        pull_errors.merge(&cr.errors);
        problems.merge(&pr.response_problems);
        lag.merge(&pr.lag);
        sent += pr.sent;
        acked += pr.acked;
        failed += pr.failed;
        acked_bytes += pr.acked_bytes;
        last_done = last_done.max(pr.last_done_ns);
        abandoned += pr.abandoned;
        received += cr.received;
        received_bytes += cr.received_bytes;
        last_recv = last_recv.max(cr.last_recv_ns);
        offset_jumps += cr.offset_jumps;
        pulls += cr.pulls;
        pulls_found += cr.pulls_found;
        skew.merge(&cr.timer);
        let o = &cr.oddities;
        oddities.corrupt += o.corrupt;
        oddities.foreign += o.foreign;
        oddities.other_runs += o.other_runs;
        oddities.undecodable += o.undecodable;
        oddities.broker_crc_mismatch += o.broker_crc_mismatch;
        warnings.extend(pr.warnings.iter().cloned());
        warnings.extend(cr.warnings.iter().cloned());
        sent_logs.extend(r.sent_logs);
        checks.extend(r.checks);
        unread.extend(r.unread);
        offsets.extend(r.offsets.into_iter().map(|(k, a, b)| (k, (a, b))));
    }
    let produce_ns = last_done.saturating_sub(measure_start);
    let consume_ns = last_recv.saturating_sub(measure_start);
    let produce = p.scenario.produces().then(|| ProduceResults {
        sent,
        acked,
        failed,
        msgs_per_s: rate(acked, produce_ns),
        mb_per_s: rate(acked_bytes, produce_ns) / 1e6,
        send_latency_us: send.summary(),
        errors: send_errors,
        open_loop: p.rate.map(|target| OpenLoopResults {
            target_msgs_per_s: target,
            max_lag_us: lag.max_ns as f64 / 1e3,
            late_sends: lag.late,
            scheduled_sends: lag.issued,
        }),
    });
    let consume = p.scenario.consumes().then(|| {
        let with_log = p.scenario == Scenario::ProduceConsume;
        let mut per_queue = verify::per_queue(&checks, with_log.then_some(&sent_logs), &unread);
        for v in &mut per_queue {
            let k = QueueKey {
                topic: v.topic.clone(),
                broker: v.broker.clone(),
                queue_id: v.queue_id,
            };
            if let Some((a, b)) = offsets.get(&k) {
                (v.start_offset, v.end_offset) = (Some(*a), Some(*b));
            }
        }
        // Queues that delivered nothing still get their (empty) row.
        for q in &sh.plan.read_queues {
            let k = sh.plan.queue_key(q);
            let known = per_queue
                .iter()
                .any(|v| (&v.topic, &v.broker, v.queue_id) == (&k.topic, &k.broker, k.queue_id));
            if !known {
                let range = offsets.get(&k).copied();
                per_queue.push(verify::QueueVerdict {
                    topic: k.topic,
                    broker: k.broker,
                    queue_id: k.queue_id,
                    start_offset: range.map(|r| r.0),
                    end_offset: range.map(|r| r.1),
                    ..verify::QueueVerdict::default()
                });
            }
        }
        ConsumeResults {
            received,
            msgs_per_s: rate(received, consume_ns),
            mb_per_s: rate(received_bytes, consume_ns) / 1e6,
            e2e_latency_us: e2e.summary(),
            lost: per_queue.iter().map(|q| q.lost).sum(),
            duplicated: per_queue.iter().map(|q| q.duplicated).sum(),
            reordered: per_queue.iter().map(|q| q.reordered).sum(),
            delivered_after_error: per_queue.iter().map(|q| q.delivered_after_error).sum(),
            not_consumed: per_queue.iter().map(|q| q.not_consumed).sum(),
            pull_requests: pulls,
            queues_not_read_to_end: unread.len(),
            msgs_per_found_pull: if pulls_found == 0 {
                0.0
            } else {
                received as f64 / pulls_found as f64
            },
            loss_basis: if with_log {
                "acknowledged-sends".into()
            } else {
                "sequence-gaps".into()
            },
            oddities,
            errors: pull_errors,
            per_queue,
            timer_skew: p.timer.is_some().then(|| skew.summary()),
        }
    });
    let achieved = produce
        .as_ref()
        .map(|r| r.msgs_per_s)
        .or(consume.as_ref().map(|c| c.msgs_per_s))
        .unwrap_or(0.0);
    if let (Some(target), Some(pr)) = (p.rate, &produce)
        && pr.msgs_per_s < target * OPEN_LOOP_SHORTFALL
    {
        warnings.insert(format!(
            "open loop reached {:.0} of the {target:.0} msgs/s asked ({:.0}%): the broker or the \
             generator did not keep up; latencies include the backlog",
            pr.msgs_per_s,
            pr.msgs_per_s / target * 100.0
        ));
    }
    if let Some(c) = &consume
        && c.not_consumed > 0
    {
        warnings.insert(format!(
            "consumers had not caught up when the run stopped: {} acknowledged messages in {} \
             queues were not read (not verified, not counted as lost); raise --drain or lower \
             the load",
            c.not_consumed,
            c.per_queue.iter().filter(|q| q.not_consumed > 0).count()
        ));
    }
    if p.scenario == Scenario::Consume && p.from == StartFrom::Start && !unread.is_empty() {
        warnings.insert(format!(
            "the catch-up read ended (--duration) before {} queues were read to the end offset \
             seen at the start; raise --duration to read the whole backlog",
            unread.len()
        ));
    }
    if abandoned > 0 {
        warnings.insert(format!(
            "{abandoned} scheduled sends were still queued in the generator at the end and were \
             not sent"
        ));
    }
    if offset_jumps > 0 {
        warnings.insert(format!(
            "{offset_jumps} pulled records did not follow the previous record's queue offset"
        ));
    }
    for (what, n) in &problems.0 {
        warnings.insert(format!("{n} SUCCESS send responses had a problem: {what}"));
    }
    let mut generator = report::GeneratorCheck::default();
    if p.scenario.produces() && p.scenario != Scenario::SelfTest {
        let ceilings = load_ceilings(p);
        let (g, w) = report::judge_ceiling(achieved, ceilings.lookup(p, sh.plan.brokers.len()));
        generator = g;
        warnings.extend(w);
    }
    let duration_ns = if p.scenario.produces() {
        produce_ns
    } else {
        consume_ns
    };
    Report {
        manifest: Manifest {
            tool: "ringmq-bench".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            git_sha: env!("RINGMQ_GIT_SHA").into(),
            scenario: p.scenario.name().into(),
            mode: p.mode_name().into(),
            started_unix_ms,
            target: sh.plan.target.clone(),
            host: Host::detect(),
            flush_label: p.flush_label.clone(),
            params: p.clone(),
            target_rate_msgs_per_s: p.rate,
            achieved_rate_msgs_per_s: achieved,
        },
        results: Results {
            duration_s: duration_ns as f64 / 1e9,
            produce,
            consume,
            generator,
            warnings: warnings.into_iter().collect(),
        },
        hgrm: [("send.hgrm", &send), ("e2e.hgrm", &e2e)]
            .into_iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(name, h)| (name.to_owned(), h.hgrm()))
            .collect(),
    }
}

/// Where self-test ceilings are kept.
pub fn ceiling_path(p: &Params) -> PathBuf {
    if let Some(f) = &p.ceiling_file {
        return PathBuf::from(f);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ringmq-bench").join("ceiling.json")
}

pub fn load_ceilings(p: &Params) -> Ceilings {
    std::fs::read(ceiling_path(p))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Records a self-test result as the ceiling for its options.
pub fn save_ceiling(p: &Params, r: &Report) -> Result<PathBuf, String> {
    let path = ceiling_path(p);
    let mut c = load_ceilings(p);
    c.entries.insert(
        report::ceiling_key(p, p.brokers),
        Ceiling {
            msgs_per_s: r.manifest.achieved_rate_msgs_per_s,
            measured_unix_ms: r.manifest.started_unix_ms,
            workers: p.workers,
            git_sha: r.manifest.git_sha.clone(),
        },
    );
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let json = serde_json::to_vec_pretty(&c).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{self, Command};

    fn params(line: &str) -> Params {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        match cli::parse(&args, 2).unwrap() {
            Command::Run(p) => *p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn producers_and_consumers_are_dealt_round_robin_with_quotas() {
        let p = params("produce-consume --workers 2 --producers 3 --messages 10");
        let q = |i| Assignment {
            queue: QueueRef {
                topic: 0,
                broker: 0,
                queue_id: i,
            },
            start: 0,
            end: None,
        };
        let consumers = vec![vec![q(0), q(2)], vec![q(1)], vec![q(3)]];
        let specs = worker_specs(&p, &consumers, 2);
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].producers, [(0, Some(4)), (2, Some(3))]);
        assert_eq!(specs[1].producers, [(1, Some(3))]);
        assert_eq!(specs[0].consumers.len(), 2);
        assert_eq!(specs[1].consumers.len(), 1);
        assert_eq!((specs[0].cpu, specs[1].cpu), (0, 1));
    }

    #[test]
    fn progress_line_shows_what_the_scenario_measures() {
        let l = progress_line(3.0, 12_345.0, Some(1500.0), Some(12_000.0), Some(3000.0), 2);
        assert_eq!(
            l,
            "[    3s] send     12345 msg/s p99    1.50ms | recv     12000 msg/s e2e p99    3.00ms | errors 2"
        );
        let l = progress_line(1.0, 10.0, None, None, None, 0);
        assert_eq!(l, "[    1s] send        10 msg/s | errors 0");
    }

    /// The whole producer path against the built-in responder over loopback: every message
    /// acknowledged, no errors, latencies recorded. Asserts counts only, never timings.
    #[test]
    fn self_test_runs_end_to_end_on_loopback() {
        let dir = std::env::temp_dir().join(format!("ringmq-bench-test-{}", std::process::id()));
        let ceiling = dir.join("ceiling.json");
        let line = format!(
            "self-test --workers 1 --messages 2000 --queues 4 --inflight 4 --size 100 \
             --ceiling-file {}",
            ceiling.display()
        );
        let p = params(&line);
        let r = execute(p.clone()).unwrap();
        let pr = r.results.produce.clone().unwrap();
        assert_eq!(pr.sent, 2000);
        assert_eq!(pr.acked, 2000);
        assert_eq!(pr.errors.total(), 0);
        assert_eq!(pr.send_latency_us.count, 2000);
        assert!(r.results.warnings.is_empty(), "{:?}", r.results.warnings);
        assert!(pr.msgs_per_s > 0.0);
        let path = save_ceiling(&p, &r).unwrap();
        let c = load_ceilings(&p);
        assert!(c.lookup(&p, 1).is_some());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());

        let p = params(
            "self-test --workers 1 --messages 1000 --send batch --batch 10 --size 64 --ceiling-file /nonexistent/x",
        );
        let pr = execute(p).unwrap().results.produce.unwrap();
        assert_eq!((pr.acked, pr.send_latency_us.count), (1000, 100));

        let p = params(
            "self-test --workers 1 --messages 500 --send oneway --size 64 --rate 50k --ceiling-file /nonexistent/x",
        );
        let r = execute(p).unwrap();
        let pr = r.results.produce.unwrap();
        assert_eq!(pr.acked, 500);
        assert_eq!(r.manifest.mode, "open");
        assert_eq!(pr.open_loop.unwrap().scheduled_sends, 500);
    }
}
