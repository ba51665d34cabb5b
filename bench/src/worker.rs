//! Worker threads: one pinned thread per core, each with its own compio (io_uring) runtime,
//! its own connections and its own recorders. Threads share only [`Shared`]: read-only
//! parameters, the start time, and three counters the consumers' stop rule reads (touched once
//! per pull response, never per message).
//!
//! ```text
//!  main:   setup ─ spawn ─ barrier ─ set start ─ barrier ─ progress / stop rule ─ join ─ report
//!  worker:         connect ─ barrier ─────────── barrier ─ consumers, producers, ticker ─ result
//! ```

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::cli::{Params, Scenario};
use crate::consumer::{Assignment, ConsumeRec, Consumer};
use crate::local::Stop;
use crate::producer::{ProduceRec, Producer};
use crate::sched::{AnchoredClock, Clock, Nanos};
use crate::setup::Plan;
use crate::stats::Latency;
use crate::verify::{QueueKey, SentLog, StreamCheck, StreamKey};

/// How often a worker reports progress to the main thread.
const TICK: Duration = Duration::from_secs(1);
/// How often a worker checks the consumers' stop rule.
const WATCH: Duration = Duration::from_millis(20);

/// What every worker reads; written only by the main thread, through atomics.
pub struct Shared {
    pub params: Params,
    pub plan: Plan,
    pub clock: AnchoredClock,
    /// Random per process; marks this run's messages.
    pub run: u32,
    pub barrier: Barrier,
    pub start_ns: AtomicU64,
    /// When every producer finished (0 = not yet).
    pub producers_done_ns: AtomicU64,
    /// Messages acknowledged by all producers; valid once `producers_done_ns` is set.
    pub acked_total: AtomicU64,
    /// Distinct messages of this run received by all consumers.
    pub received_total: AtomicU64,
    /// Stop everything now (setup failure on another worker).
    pub abort: AtomicBool,
}

impl Shared {
    pub fn new(params: Params, plan: Plan, clock: AnchoredClock, run: u32) -> Shared {
        let workers = params.workers;
        Shared {
            params,
            plan,
            clock,
            run,
            barrier: Barrier::new(workers + 1),
            start_ns: AtomicU64::new(0),
            producers_done_ns: AtomicU64::new(0),
            acked_total: AtomicU64::new(0),
            received_total: AtomicU64::new(0),
            abort: AtomicBool::new(false),
        }
    }

    pub fn start_ns(&self) -> Nanos {
        self.start_ns.load(Ordering::Acquire)
    }

    /// Recording starts here (after warm-up).
    pub fn measure_start_ns(&self) -> Nanos {
        self.start_ns() + self.params.warmup_ms * 1_000_000
    }

    /// Producers stop issuing here (duration runs).
    pub fn end_ns(&self) -> Option<Nanos> {
        self.params
            .duration_ms
            .map(|d| self.measure_start_ns() + d * 1_000_000)
    }

    /// Open-loop backlog left after this is abandoned (and reported).
    pub fn hard_end_ns(&self) -> Option<Nanos> {
        self.end_ns().map(|e| e + self.params.drain_ms * 1_000_000)
    }
}

/// Progress since the last tick, from one worker.
#[derive(Debug)]
pub struct Tick {
    pub sent: u64,
    pub errors: u64,
    pub received: u64,
    pub send: Latency,
    pub e2e: Latency,
}

pub enum Msg {
    Tick(Box<Tick>),
    /// This worker's producers are finished; `acked` messages were acknowledged in total.
    ProducersDone {
        acked: u64,
    },
}

/// One worker's share of the run.
#[derive(Debug, Clone, Default)]
pub struct WorkerSpec {
    pub index: usize,
    pub cpu: usize,
    /// Producer ids and their message quotas (`--messages` runs).
    pub producers: Vec<(u32, Option<u64>)>,
    /// One entry per consumer: its assigned queues.
    pub consumers: Vec<Vec<Assignment>>,
}

/// Everything a worker measured.
#[derive(Debug, Default)]
pub struct WorkerResult {
    pub produce: ProduceRec,
    pub consume: ConsumeRec,
    pub sent_logs: Vec<(StreamKey, SentLog)>,
    pub checks: Vec<(StreamKey, StreamCheck)>,
    /// Queues the consumers had not read to their end when they stopped.
    pub unread: Vec<QueueKey>,
    /// Per queue: the offset reading started at and the one it reached.
    pub offsets: Vec<(QueueKey, i64, i64)>,
    pub error: Option<String>,
}

/// Runs one worker thread to completion.
pub fn run_worker(spec: WorkerSpec, sh: Arc<Shared>, tx: Sender<Msg>) -> WorkerResult {
    let mut builder = compio::runtime::RuntimeBuilder::new();
    builder.thread_affinity(HashSet::from([spec.cpu]));
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            sh.abort.store(true, Ordering::Release);
            sh.barrier.wait();
            sh.barrier.wait();
            return WorkerResult {
                error: Some(format!(
                    "cannot start an io_uring runtime: {e} (check kernel.io_uring_disabled and \
                     RLIMIT_MEMLOCK)"
                )),
                ..WorkerResult::default()
            };
        }
    };
    rt.block_on(work(spec, sh, tx))
}

async fn work(spec: WorkerSpec, sh: Arc<Shared>, tx: Sender<Msg>) -> WorkerResult {
    let prec = Rc::new(RefCell::new(ProduceRec::default()));
    let crec = Rc::new(RefCell::new(ConsumeRec::default()));
    let stop = Stop::new();
    let connected = connect_all(&spec, &sh, &prec, &crec, &stop).await;
    if connected.is_err() {
        sh.abort.store(true, Ordering::Release);
    }
    // Everyone connected (or failed); then the main thread sets the start time.
    sh.barrier.wait();
    sh.barrier.wait();
    let (producers, consumers) = match connected {
        Ok(pc) if !sh.abort.load(Ordering::Acquire) => pc,
        Ok(_) => {
            return WorkerResult {
                error: Some("another worker failed to connect".into()),
                ..WorkerResult::default()
            };
        }
        Err(e) => {
            return WorkerResult {
                error: Some(e),
                ..WorkerResult::default()
            };
        }
    };
    let start_ns = sh.start_ns();
    let finished = Stop::new();
    let ticker = compio::runtime::spawn(ticker(
        prec.clone(),
        crec.clone(),
        tx.clone(),
        finished.clone(),
    ));
    let watcher = compio::runtime::spawn(watch(sh.clone(), stop.clone(), finished.clone()));
    let mut pulls = Vec::new();
    for (consumer, assignments) in consumers.iter().zip(&spec.consumers) {
        for a in assignments {
            pulls.push(compio::runtime::spawn(consumer.clone().pull_queue(*a)));
        }
    }
    let sends: Vec<_> = producers
        .into_iter()
        .map(|p| compio::runtime::spawn(p.run(start_ns)))
        .collect();
    let mut sent_logs = Vec::new();
    for s in sends {
        if let Ok(logs) = s.await {
            sent_logs.extend(logs);
        }
    }
    let acked = prec.borrow().acked_all;
    let _ = tx.send(Msg::ProducersDone { acked });
    let (mut checks, mut unread, mut offsets) = (Vec::new(), Vec::new(), Vec::new());
    for p in pulls {
        if let Ok(q) = p.await {
            offsets.push((q.key.clone(), q.start_offset, q.end_offset));
            checks.extend(q.checks);
            if !q.read_to_end {
                unread.push(q.key);
            }
        }
    }
    for c in &consumers {
        c.close();
    }
    finished.set();
    let _ = ticker.await;
    let _ = watcher.await;
    let produce = std::mem::take(&mut *prec.borrow_mut());
    let consume = std::mem::take(&mut *crec.borrow_mut());
    WorkerResult {
        produce,
        consume,
        sent_logs,
        checks,
        unread,
        offsets,
        error: None,
    }
}

type Connected = (Vec<Rc<Producer>>, Vec<Rc<Consumer>>);

async fn connect_all(
    spec: &WorkerSpec,
    sh: &Arc<Shared>,
    prec: &Rc<RefCell<ProduceRec>>,
    crec: &Rc<RefCell<ConsumeRec>>,
    stop: &Rc<Stop>,
) -> Result<Connected, String> {
    let mut producers = Vec::new();
    for (id, quota) in &spec.producers {
        producers.push(Producer::connect(*id, sh.clone(), *quota, prec.clone()).await?);
    }
    let mut consumers = Vec::new();
    for _ in &spec.consumers {
        consumers.push(Consumer::connect(sh.clone(), crec.clone(), stop.clone()).await?);
    }
    Ok((producers, consumers))
}

/// Sends this worker's progress every [`TICK`] until `finished`.
async fn ticker(
    prec: Rc<RefCell<ProduceRec>>,
    crec: Rc<RefCell<ConsumeRec>>,
    tx: Sender<Msg>,
    finished: Rc<Stop>,
) {
    while !finished.is_set() {
        if let crate::local::Either::Right(()) =
            crate::local::first(compio::time::sleep(TICK), finished.wait()).await
        {
            break;
        }
        let tick = {
            let mut p = prec.borrow_mut();
            let mut c = crec.borrow_mut();
            let t = Tick {
                sent: std::mem::take(&mut p.tick_sent),
                errors: std::mem::take(&mut p.tick_errors),
                received: std::mem::take(&mut c.tick_received),
                send: p.tick_latency.clone(),
                e2e: c.tick_e2e.clone(),
            };
            p.tick_latency.clear();
            c.tick_e2e.clear();
            t
        };
        let _ = tx.send(Msg::Tick(Box::new(tick)));
    }
}

/// The consumers' stop rule, checked every [`WATCH`]:
/// - a consume run stops at the end of its duration;
/// - a produce-consume run stops once every producer finished and every acknowledged message
///   arrived, or when, after the producers finished, `--drain` passes without any message
///   arriving (consumers still catching up keep going; a stuck broker ends the run).
async fn watch(sh: Arc<Shared>, stop: Rc<Stop>, finished: Rc<Stop>) {
    let (mut seen, mut progress_ns) = (0u64, sh.clock.now_ns());
    while !finished.is_set() && !stop.is_set() {
        let now = sh.clock.now_ns();
        let received = sh.received_total.load(Ordering::Relaxed);
        if received != seen {
            (seen, progress_ns) = (received, now);
        }
        let stop_now = match sh.params.scenario {
            Scenario::ProduceConsume => {
                let done_at = sh.producers_done_ns.load(Ordering::Acquire);
                let idle_since = progress_ns.max(done_at);
                done_at != 0
                    && (received >= sh.acked_total.load(Ordering::Acquire)
                        || now >= idle_since + sh.params.drain_ms * 1_000_000)
            }
            _ => sh.end_ns().is_some_and(|e| now >= e),
        };
        if stop_now || sh.abort.load(Ordering::Acquire) {
            stop.set();
            break;
        }
        compio::time::sleep(WATCH).await;
    }
}
