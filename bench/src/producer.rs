//! A producer on a worker thread: one connection per broker, one stream per writable queue,
//! sends in closed loop (N in flight per connection) or open loop (fixed rate).
//!
//! Requests look like a Java client's (spec §3.3, §7.1): SEND_MESSAGE_V2 (310) with V2 header
//! keys, or SEND_BATCH_MESSAGE (320) with the §4.6 body; every message carries UNIQ_KEY, WAIT
//! and, with `--tags`, TAGS. A stream never has two sends in flight, so its sequence numbers
//! reach the broker in order.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ringmq_codec::codes::{request, response};
use ringmq_codec::headers::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_codec::message::UniqKeyGenerator;
use ringmq_codec::message::batch::{BatchEntry, encode_entry};
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::template::{Hole, RequestTemplate};
use ringmq_codec::{Command, Header};
use ringmq_net::remoting::{CallError, Connection};

use crate::body::{self, BodyHeader};
use crate::cli::{ONEWAY_BARRIER, SendMode};
use crate::local::LocalQueue;
use crate::sched::{Clock, LagStats, Nanos, OpenLoop};
use crate::setup::{QueueRef, open};
use crate::stats::{ClientError, Errors, Latency};
use crate::verify::{SentLog, StreamKey};
use crate::worker::Shared;

/// What a worker's producers recorded; one per worker thread, never shared.
#[derive(Debug, Default)]
pub struct ProduceRec {
    /// Per request, within the measured window.
    pub latency: Latency,
    /// Since the last progress tick.
    pub tick_latency: Latency,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub acked_bytes: u64,
    /// Every message acknowledged, warm-up included (for the consumers' stop rule).
    pub acked_all: u64,
    pub last_done_ns: Nanos,
    pub errors: Errors,
    /// Responses that were SUCCESS but not what a client expects (bad header, wrong queue).
    pub response_problems: Errors,
    pub lag: LagStats,
    /// Open loop: sends still queued when the run's hard deadline passed.
    pub abandoned: u64,
    pub tick_sent: u64,
    pub tick_errors: u64,
    pub warnings: Vec<String>,
}

/// One (producer, queue) stream.
struct Stream {
    queue: QueueRef,
    next_seq: Cell<u64>,
    failed: RefCell<Vec<u64>>,
    /// Open loop: intended times of sends not yet issued.
    pending: LocalQueue<Nanos>,
    /// The stream's request with the birth time and properties left open, cut from its
    /// first request; `None` when the run's header encoding has no template (binary).
    template: OnceCell<Option<RequestTemplate>>,
}

pub struct Producer {
    id: u32,
    sh: Arc<Shared>,
    conns: Vec<Connection>,
    streams: Vec<Rc<Stream>>,
    payload: Vec<u8>,
    uniq: RefCell<UniqKeyGenerator>,
    tag_next: Cell<usize>,
    /// Messages left to send in a `--messages` run.
    quota: Cell<Option<u64>>,
    sends: Cell<u64>,
    rec: Rc<RefCell<ProduceRec>>,
}

impl Producer {
    /// Opens this producer's connections, one per broker of the plan.
    pub async fn connect(
        id: u32,
        sh: Arc<Shared>,
        quota: Option<u64>,
        rec: Rc<RefCell<ProduceRec>>,
    ) -> Result<Rc<Producer>, String> {
        let timeout = Duration::from_millis(sh.params.timeout_ms);
        let mut conns = Vec::new();
        for b in &sh.plan.brokers {
            conns.push(open(b.addr, timeout).await.map_err(|e| e.to_string())?);
        }
        let streams = sh
            .plan
            .write_queues
            .iter()
            .map(|q| {
                Rc::new(Stream {
                    queue: *q,
                    next_seq: Cell::new(0),
                    failed: RefCell::new(Vec::new()),
                    pending: LocalQueue::default(),
                    template: OnceCell::new(),
                })
            })
            .collect();
        let uniq = UniqKeyGenerator::new(
            std::net::Ipv4Addr::LOCALHOST.into(),
            std::process::id(),
            (sh.run ^ id.rotate_left(16)) as i32,
        );
        Ok(Rc::new(Producer {
            id,
            payload: body::payload(sh.params.size),
            sh,
            conns,
            streams,
            uniq: RefCell::new(uniq),
            tag_next: Cell::new(0),
            quota: Cell::new(quota),
            sends: Cell::new(0),
            rec,
        }))
    }

    /// Runs the producer to its end (duration or quota); returns its streams' logs.
    pub async fn run(self: Rc<Self>, start_ns: Nanos) -> Vec<(StreamKey, SentLog)> {
        compio::time::sleep_until(self.sh.clock.instant_at(start_ns)).await;
        let tasks: Vec<_> = if self.sh.params.open_loop() {
            self.open_loop_tasks(start_ns)
        } else {
            self.closed_loop_tasks()
        };
        for t in tasks {
            let _ = t.await;
        }
        for c in &self.conns {
            c.close();
        }
        self.streams
            .iter()
            .map(|s| {
                (
                    StreamKey {
                        run: self.sh.run,
                        producer: self.id,
                        queue: self.sh.plan.queue_key(&s.queue),
                    },
                    SentLog {
                        issued: s.next_seq.get(),
                        failed: s.failed.borrow().clone(),
                    },
                )
            })
            .collect()
    }

    fn end_ns(&self) -> Option<Nanos> {
        self.sh.end_ns()
    }

    /// Closed loop: `inflight` slots per connection, each owning every k-th queue of that
    /// broker, so no queue ever has two sends in flight.
    fn closed_loop_tasks(self: &Rc<Self>) -> Vec<compio::runtime::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for broker in 0..self.conns.len() {
            let mine: Vec<Rc<Stream>> = self
                .streams
                .iter()
                .filter(|s| s.queue.broker == broker)
                .cloned()
                .collect();
            let slots = self.sh.params.inflight.min(mine.len());
            for slot in 0..slots {
                let owned: Vec<Rc<Stream>> =
                    mine.iter().skip(slot).step_by(slots).cloned().collect();
                let me = self.clone();
                tasks.push(compio::runtime::spawn(me.slot(owned)));
            }
        }
        tasks
    }

    async fn slot(self: Rc<Self>, streams: Vec<Rc<Stream>>) {
        let clock = self.sh.clock;
        for s in streams.iter().cycle() {
            if self.end_ns().is_some_and(|e| clock.now_ns() >= e) {
                break;
            }
            let Some(n) = self.take_quota() else { break };
            if !self.send(s, n, None).await {
                break;
            }
        }
    }

    /// Messages for the next send: the batch size, or what is left of the quota.
    fn take_quota(&self) -> Option<u64> {
        let batch = self.sh.params.batch as u64;
        match self.quota.get() {
            None => Some(batch),
            Some(0) => None,
            Some(left) => {
                let n = left.min(batch);
                self.quota.set(Some(left - n));
                Some(n)
            }
        }
    }

    /// Open loop: one scheduler at this producer's share of the rate hands intended times to
    /// the streams round-robin; each stream sends its backlog one request at a time.
    fn open_loop_tasks(self: &Rc<Self>, start_ns: Nanos) -> Vec<compio::runtime::JoinHandle<()>> {
        let mut tasks: Vec<_> = self
            .streams
            .iter()
            .map(|s| compio::runtime::spawn(self.clone().stream_task(s.clone())))
            .collect();
        tasks.push(compio::runtime::spawn(self.clone().schedule(start_ns)));
        tasks
    }

    async fn schedule(self: Rc<Self>, start_ns: Nanos) {
        let p = &self.sh.params;
        let producers = p.producers.max(1) as f64;
        let sends_per_s = p.rate.unwrap_or(1.0) / producers / p.batch as f64;
        // Stagger producers across one interval so the total is evenly spaced.
        let offset = (1e9 / sends_per_s * f64::from(self.id) / producers) as u64;
        let Ok(mut sched) = OpenLoop::new(start_ns + offset, sends_per_s) else {
            self.rec.borrow_mut().warnings.push(format!(
                "rate {sends_per_s} sends/s per producer is too low"
            ));
            self.close_streams();
            return;
        };
        if let Some(q) = self.quota.get() {
            sched = sched.with_limit(q.div_ceil(p.batch as u64));
        }
        let clock = self.sh.clock;
        let end = self.end_ns();
        let tick_ns = p.tick_us * 1000;
        let mut next_stream = 0usize;
        'outer: loop {
            let now = clock.now_ns();
            while let Some(due) = sched.next_due(now) {
                if end.is_some_and(|e| due.intended_ns >= e) {
                    break 'outer;
                }
                if let Some(s) = self.streams.get(next_stream % self.streams.len().max(1)) {
                    s.pending.push(due.intended_ns);
                }
                next_stream += 1;
            }
            // Sends due within one tick go out together, each still measured from its own
            // intended time: a wake per send cost more CPU than the send itself.
            match (sched.next_at(), sched.wake_at(now, tick_ns)) {
                (Some(at), Some(wake)) if end.is_none_or(|e| at < e) => {
                    compio::time::sleep_until(clock.instant_at(wake)).await
                }
                _ => break,
            }
        }
        self.rec.borrow_mut().lag.merge(&sched.lag());
        self.close_streams();
    }

    fn close_streams(&self) {
        for s in &self.streams {
            s.pending.close();
        }
    }

    async fn stream_task(self: Rc<Self>, s: Rc<Stream>) {
        let hard_end = self.sh.hard_end_ns();
        while let Some(intended) = s.pending.pop().await {
            if hard_end.is_some_and(|e| self.sh.clock.now_ns() >= e) {
                let left = 1 + s.pending.clear() as u64;
                self.rec.borrow_mut().abandoned += left;
                break;
            }
            let n = self.sh.params.batch as u64;
            if !self.send(&s, n, Some(intended)).await {
                let left = s.pending.clear() as u64;
                self.rec.borrow_mut().abandoned += left;
                break;
            }
        }
    }

    /// The properties of a message (`key`: its stream and sequence number): UNIQ_KEY, WAIT,
    /// TAGS when asked, and a timer run's delivery time.
    fn properties(&self, now_ms: i64, key: u64) -> String {
        let id = self.uniq.borrow_mut().next_id(now_ms);
        let tags = &self.sh.params.tags;
        let tag = (!tags.is_empty()).then(|| {
            let i = self.tag_next.get();
            self.tag_next.set(i + 1);
            tags.get(i % tags.len()).map(String::as_str).unwrap_or("")
        });
        let mut out = String::with_capacity(64);
        let wait = if self.sh.params.wait_store {
            "true"
        } else {
            "false"
        };
        let mut pairs = vec![(keys::UNIQ_KEY, id.as_str()), (keys::WAIT, wait)];
        if let Some(t) = tag.filter(|t| !t.is_empty()) {
            pairs.push((keys::TAGS, t));
        }
        let timer = self
            .sh
            .params
            .timer
            .map(|t| t.properties(t.due_ms(self.id, key, now_ms)));
        if let Some(extra) = &timer {
            pairs.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        }
        properties::encode(pairs, &mut out);
        out
    }

    /// The body of the request for messages `seq0 .. seq0 + n` of a stream (one message, or a
    /// §4.6 batch of them) and the properties for its header.
    fn body(&self, s: &Stream, seq0: u64, n: u64, born_ns: Nanos) -> (Vec<u8>, String) {
        let p = &self.sh.params;
        let now_ms = (born_ns / 1_000_000) as i64;
        let header = |seq| BodyHeader {
            run: self.sh.run,
            producer: self.id,
            seq,
            born_ns,
        };
        // A timer run's due time hashes this key: distinct for every message of the producer.
        let q = &s.queue;
        let stream = (q.topic as u64) << 20 | (q.broker as u64) << 12 | (q.queue_id as u64 & 0xfff);
        let key = |seq: u64| seq ^ (stream << 36);
        let mut bytes = Vec::with_capacity((p.size + 64) * n as usize);
        if p.batch > 1 {
            let mut one = Vec::with_capacity(p.size);
            for seq in seq0..seq0 + n {
                one.clear();
                body::encode(&header(seq), &self.payload, &mut one);
                let props = self.properties(now_ms, key(seq));
                let entry = BatchEntry {
                    flag: 0,
                    body: &one,
                    properties: &props,
                };
                // Sizes were validated against the 4 MiB limit, far below what fails here.
                let _ = encode_entry(&entry, &mut bytes);
            }
        } else {
            body::encode(&header(seq0), &self.payload, &mut bytes);
        }
        (bytes, self.properties(now_ms, key(seq0)))
    }

    /// Builds the whole request for messages `seq0 .. seq0 + n` of a stream.
    fn build(&self, s: &Stream, seq0: u64, n: u64, born_ns: Nanos) -> Command {
        let p = &self.sh.params;
        let (bytes, props) = self.body(s, seq0, n, born_ns);
        let batched = p.batch > 1;
        let topic = self
            .sh
            .plan
            .topics
            .get(s.queue.topic)
            .cloned()
            .unwrap_or_default();
        let h = SendMessageRequestHeader {
            producer_group: p.producer_group.clone(),
            topic,
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: s.queue.queue_id,
            sys_flag: 0,
            born_timestamp_ms: (born_ns / 1_000_000) as i64,
            flag: 0,
            properties: Some(props),
            reconsume_times: Some(0),
            unit_mode: false,
            max_reconsume_times: None,
            batch: batched,
            broker_name: None,
        };
        let code = if batched {
            request::SEND_BATCH_MESSAGE
        } else {
            request::SEND_MESSAGE_V2
        };
        let mut cmd = crate::setup::request_with(p, code, &h);
        cmd.body = bytes.into();
        cmd
    }

    /// Sends one request and waits for its answer. A stream's first request is built in full
    /// and becomes its template; later ones only fill in the birth time, the properties and
    /// the body (the same bytes, without building and escaping the fixed header fields again:
    /// ~1 µs of the generator's CPU per send).
    async fn call(
        &self,
        conn: &Connection,
        s: &Stream,
        seq0: u64,
        n: u64,
        born_ns: Nanos,
    ) -> Result<Command, CallError> {
        let timeout = Duration::from_millis(self.sh.params.timeout_ms);
        let Some(Some(template)) = s.template.get() else {
            let cmd = self.build(s, seq0, n, born_ns);
            let template = RequestTemplate::new(&cmd, &SendMessageRequestHeader::PER_MESSAGE_KEYS);
            let _ = s.template.set(template);
            return conn.call(cmd, timeout).await;
        };
        let (bytes, props) = self.body(s, seq0, n, born_ns);
        let holes = [Hole::Int((born_ns / 1_000_000) as i64), Hole::Text(&props)];
        conn.call_framed(
            |opaque, dst| template.write_frame(&holes, opaque, &bytes, dst),
            timeout,
        )
        .await
    }

    /// Sends `n` messages of stream `s` in one request and records the outcome. Returns false
    /// when the connection is gone (the caller stops).
    async fn send(&self, s: &Stream, n: u64, intended: Option<Nanos>) -> bool {
        let clock = self.sh.clock;
        let t0 = intended.unwrap_or_else(|| clock.now_ns());
        let seq0 = s.next_seq.get();
        s.next_seq.set(seq0 + n);
        let conn = match self.conns.get(s.queue.broker) {
            Some(c) => c,
            None => return false,
        };
        let k = self.sends.get();
        self.sends.set(k + 1);
        let oneway = self.sh.params.send == SendMode::Oneway && !k.is_multiple_of(ONEWAY_BARRIER);
        let outcome = if oneway {
            conn.oneway(self.build(s, seq0, n, t0)).map(|()| None)
        } else {
            self.call(conn, s, seq0, n, t0).await.map(Some)
        };
        let done = clock.now_ns();
        let in_window = t0 >= self.sh.measure_start_ns();
        let mut rec = self.rec.borrow_mut();
        let bytes = n * self.sh.params.size as u64;
        if in_window {
            rec.sent += n;
            rec.tick_sent += n;
        }
        let ok = match &outcome {
            Ok(None) => true,
            Ok(Some(resp)) if resp.code == response::SUCCESS => {
                check_response(resp, s.queue.queue_id, &mut rec.response_problems);
                true
            }
            Ok(Some(resp)) => {
                rec.errors.code(resp.code);
                false
            }
            Err(e) => {
                rec.errors.client(client_error(*e));
                false
            }
        };
        if ok {
            rec.acked_all += n;
            if in_window {
                rec.acked += n;
                rec.acked_bytes += bytes;
                rec.last_done_ns = rec.last_done_ns.max(done);
                // Oneway runs have no send latency, barrier requests included.
                if self.sh.params.send != SendMode::Oneway {
                    rec.latency.record_ns(done.saturating_sub(t0));
                    rec.tick_latency.record_ns(done.saturating_sub(t0));
                }
            }
        } else {
            s.failed.borrow_mut().extend(seq0..seq0 + n);
            if in_window {
                rec.failed += n;
            }
            rec.tick_errors += 1;
        }
        match outcome {
            Err(CallError::Closed) => {
                let peer = conn.peer();
                rec.warnings.push(format!(
                    "producer {}: the connection to {peer} closed; it stopped sending there",
                    self.id
                ));
                false
            }
            _ => true,
        }
    }
}

fn client_error(e: CallError) -> ClientError {
    match e {
        CallError::Closed => ClientError::ConnectionClosed,
        CallError::Timeout => ClientError::Timeout,
        CallError::TooLarge => ClientError::TooLarge,
    }
}

/// What a Java client needs from a successful send response (spec §3.3): a decodable header
/// with MSG_REGION and TRACE_ON, for the queue that was asked for.
fn check_response(resp: &Command, queue_id: i32, problems: &mut Errors) {
    match SendMessageResponseHeader::decode(&resp.ext) {
        Ok(h) if h.queue_id != queue_id => {
            *problems
                .0
                .entry("queue id differs from the one sent to".into())
                .or_default() += 1
        }
        Ok(_) => {}
        Err(e) => *problems.0.entry(e.to_string()).or_default() += 1,
    }
}
