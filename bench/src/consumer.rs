//! A consumer on a worker thread: assigned queues, pulled like a lite-pull consumer (spec §3.4,
//! §7.6): PULL_MESSAGE with SUBSCRIPTION|SUSPEND and expression `*`, so no heartbeat or
//! rebalance is needed, one pull loop per queue, long-polling at the tail.
//!
//! Every record is parsed in place (no copy), the broker's BODYCRC and the bench's own CRC are
//! checked, the record's queue offset must follow the previous one, and the body's
//! (run, producer, sequence) goes into that stream's [`StreamCheck`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ringmq_codec::Header;
use ringmq_codec::codes::{request, response};
use ringmq_codec::headers::pull::{PullMessageRequestHeader, PullMessageResponseHeader, sys_flag};
use ringmq_codec::message::RecordView;
use ringmq_net::remoting::{CallError, Connection};

use crate::body::{self, BodyCheck};
use crate::local::{Either, Stop, first};
use crate::sched::{Clock, Nanos};
use crate::setup::{QueueRef, open, queue_offset, request_with};
use crate::stats::{ClientError, Errors, Latency};
use crate::verify::{Arrival, Oddities, QueueKey, StreamCheck, StreamKey};
use crate::worker::Shared;

/// Pause after a pull error before trying again (Java waits 1 s; the bench is impatient).
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// What a worker's consumers recorded; one per worker thread.
#[derive(Debug, Default)]
pub struct ConsumeRec {
    pub e2e: Latency,
    pub tick_e2e: Latency,
    /// Messages received in the measured window, duplicates included.
    pub received: u64,
    pub received_bytes: u64,
    pub last_recv_ns: Nanos,
    pub tick_received: u64,
    pub errors: Errors,
    pub oddities: Oddities,
    /// Records whose QUEUEOFFSET did not follow the previous record's.
    pub offset_jumps: u64,
    /// Pull responses received in the measured window, and those that carried messages.
    pub pulls: u64,
    pub pulls_found: u64,
    pub warnings: Vec<String>,
    /// Timer runs: how late each message was delivered.
    pub timer: crate::timers::SkewRec,
}

/// What one queue's pull loop found.
#[derive(Debug)]
pub struct QueueOutcome {
    pub key: QueueKey,
    pub checks: Vec<(StreamKey, StreamCheck)>,
    /// The consumer reached the queue's end (max offset, or the catch-up end) before stopping.
    pub read_to_end: bool,
    pub start_offset: i64,
    /// The next offset the consumer would have pulled.
    pub end_offset: i64,
}

/// One assigned queue: where to start and, for a catch-up read, where to stop.
#[derive(Debug, Clone, Copy)]
pub struct Assignment {
    pub queue: QueueRef,
    pub start: i64,
    pub end: Option<i64>,
}

pub struct Consumer {
    sh: Arc<Shared>,
    conns: Vec<Connection>,
    rec: Rc<RefCell<ConsumeRec>>,
    stop: Rc<Stop>,
}

impl Consumer {
    pub async fn connect(
        sh: Arc<Shared>,
        rec: Rc<RefCell<ConsumeRec>>,
        stop: Rc<Stop>,
    ) -> Result<Rc<Consumer>, String> {
        let timeout = Duration::from_millis(sh.params.timeout_ms);
        let mut conns = Vec::new();
        for b in &sh.plan.brokers {
            conns.push(open(b.addr, timeout).await.map_err(|e| e.to_string())?);
        }
        Ok(Rc::new(Consumer {
            sh,
            conns,
            rec,
            stop,
        }))
    }

    pub fn close(&self) {
        for c in &self.conns {
            c.close();
        }
    }

    fn pull_request(&self, q: &QueueRef, offset: i64) -> ringmq_codec::Command {
        let p = &self.sh.params;
        let h = PullMessageRequestHeader {
            consumer_group: p.consumer_group.clone(),
            topic: self
                .sh
                .plan
                .topics
                .get(q.topic)
                .cloned()
                .unwrap_or_default(),
            queue_id: q.queue_id,
            queue_offset: offset,
            max_msg_nums: p.pull_batch as i32,
            sys_flag: sys_flag::SUBSCRIPTION | sys_flag::SUSPEND,
            commit_offset: 0,
            suspend_timeout_ms: p.suspend_ms as i64,
            subscription: Some("*".into()),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            max_msg_bytes: None,
            request_source: None,
            proxy_forward_client_id: None,
        };
        request_with(p, request::PULL_MESSAGE, &h)
    }

    /// Pulls one queue until stopped or, for a catch-up read, until its end offset.
    pub async fn pull_queue(self: Rc<Self>, a: Assignment) -> QueueOutcome {
        let mut streams: HashMap<(u32, u32), StreamCheck> = HashMap::new();
        let mut offset = a.start;
        let mut expect_offset = a.start;
        let p = &self.sh.params;
        let timeout = Duration::from_millis(p.suspend_ms + p.timeout_ms);
        let key = self.sh.plan.queue_key(&a.queue);
        let Some(conn) = self.conns.get(a.queue.broker) else {
            return QueueOutcome {
                checks: Vec::new(),
                read_to_end: false,
                key,
                start_offset: a.start,
                end_offset: a.start,
            };
        };
        while !self.stop.is_set() && a.end.is_none_or(|e| offset < e) {
            let call = conn.call(self.pull_request(&a.queue, offset), timeout);
            let resp = match first(call, self.stop.wait()).await {
                Either::Left(r) => r,
                Either::Right(()) => break,
            };
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    let closed = e == CallError::Closed;
                    self.rec.borrow_mut().errors.client(match e {
                        CallError::Closed => ClientError::ConnectionClosed,
                        CallError::Timeout => ClientError::Timeout,
                        CallError::TooLarge => ClientError::TooLarge,
                    });
                    if closed {
                        self.rec.borrow_mut().warnings.push(format!(
                            "the connection to {} closed; stopped pulling queue {}",
                            conn.peer(),
                            a.queue.queue_id
                        ));
                        break;
                    }
                    continue;
                }
            };
            let recv_ns = self.sh.clock.now_ns();
            if recv_ns >= self.sh.measure_start_ns() {
                let mut rec = self.rec.borrow_mut();
                rec.pulls += 1;
                rec.pulls_found += u64::from(resp.code == response::SUCCESS);
            }
            let header = PullMessageResponseHeader::decode(&resp.ext);
            match (resp.code, header) {
                (response::SUCCESS, Ok(h)) => {
                    self.take_records(&resp.body, recv_ns, &mut streams, &mut expect_offset);
                    offset = h.next_begin_offset;
                }
                (response::PULL_NOT_FOUND | response::PULL_RETRY_IMMEDIATELY, Ok(h)) => {
                    offset = h.next_begin_offset;
                }
                (response::PULL_OFFSET_MOVED, Ok(h)) => {
                    self.rec.borrow_mut().errors.code(resp.code);
                    offset = h.next_begin_offset;
                    expect_offset = offset;
                }
                (code, Err(_)) if is_pull_status(code) => {
                    // Every pull status must carry the header (Java clients NPE without it).
                    self.rec
                        .borrow_mut()
                        .errors
                        .client(ClientError::BadResponse);
                    compio::time::sleep(ERROR_BACKOFF).await;
                }
                (code, _) => {
                    self.rec.borrow_mut().errors.code(code);
                    compio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
        let read_to_end = match a.end {
            Some(end) => offset >= end,
            None => self.read_to_end(conn, &key, offset).await,
        };
        let checks = streams
            .into_iter()
            .map(|((run, producer), check)| {
                (
                    StreamKey {
                        run,
                        producer,
                        queue: key.clone(),
                    },
                    check,
                )
            })
            .collect();
        QueueOutcome {
            checks,
            read_to_end,
            key,
            start_offset: a.start,
            end_offset: offset,
        }
    }

    /// Whether `offset` (where this queue's reading stopped) is the queue's end now.
    async fn read_to_end(&self, conn: &Connection, key: &QueueKey, offset: i64) -> bool {
        let max = queue_offset(
            &self.sh.params,
            conn,
            request::GET_MAX_OFFSET,
            &key.topic,
            key.queue_id,
        )
        .await;
        match max {
            Ok((max, _)) => offset >= max,
            Err(e) => {
                self.rec.borrow_mut().warnings.push(format!(
                    "cannot tell whether {} was read to its end: {e}",
                    key.topic
                ));
                false
            }
        }
    }

    /// Checks every record of a pull body.
    fn take_records(
        &self,
        mut buf: &[u8],
        recv_ns: Nanos,
        streams: &mut HashMap<(u32, u32), StreamCheck>,
        expect_offset: &mut i64,
    ) {
        let in_window = recv_ns >= self.sh.measure_start_ns();
        let mut rec = self.rec.borrow_mut();
        let mut distinct = 0u64;
        while !buf.is_empty() {
            let view = match RecordView::parse(buf) {
                Ok(v) => v,
                Err(_) => {
                    // The rest of the body is unreadable; a Java client drops it silently.
                    rec.oddities.undecodable += 1;
                    break;
                }
            };
            buf = buf.get(view.total_size..).unwrap_or_default();
            if view.queue_offset != *expect_offset {
                rec.offset_jumps += 1;
            }
            *expect_offset = view.queue_offset + 1;
            // Both CRCs in one pass over the body (body.rs says how).
            let (verdict, broker_crc_ok) = body::check_with_broker_crc(view.body, view.body_crc);
            if !broker_crc_ok {
                rec.oddities.broker_crc_mismatch += 1;
            }
            if in_window {
                rec.received += 1;
                rec.tick_received += 1;
                rec.received_bytes += view.body.len() as u64;
                rec.last_recv_ns = rec.last_recv_ns.max(recv_ns);
            }
            match verdict {
                BodyCheck::Valid(h) if h.run == self.sh.run => {
                    let arrival = streams
                        .entry((h.run, h.producer))
                        .or_default()
                        .observe(h.seq);
                    if matches!(arrival, Arrival::InOrder | Arrival::Reordered) {
                        distinct += 1;
                        if self.sh.params.timer.is_some() {
                            rec.timer
                                .observe(view.properties, view.store_timestamp, recv_ns);
                        }
                        if h.born_ns >= self.sh.measure_start_ns() {
                            let e2e = recv_ns.saturating_sub(h.born_ns);
                            rec.e2e.record_ns(e2e);
                            rec.tick_e2e.record_ns(e2e);
                        }
                    }
                }
                BodyCheck::Valid(_) if self.sh.params.scenario.produces() => {
                    rec.oddities.other_runs += 1;
                }
                BodyCheck::Valid(h) => {
                    // A consume-only run verifies every bench run it finds in the queue.
                    streams
                        .entry((h.run, h.producer))
                        .or_default()
                        .observe(h.seq);
                    distinct += 1;
                    if h.born_ns >= self.sh.measure_start_ns() {
                        rec.e2e.record_ns(recv_ns.saturating_sub(h.born_ns));
                        rec.tick_e2e.record_ns(recv_ns.saturating_sub(h.born_ns));
                    }
                }
                BodyCheck::Foreign => rec.oddities.foreign += 1,
                BodyCheck::Corrupt => rec.oddities.corrupt += 1,
            }
        }
        self.sh
            .received_total
            .fetch_add(distinct, Ordering::Relaxed);
    }
}

fn is_pull_status(code: i32) -> bool {
    matches!(
        code,
        response::SUCCESS
            | response::PULL_NOT_FOUND
            | response::PULL_RETRY_IMMEDIATELY
            | response::PULL_OFFSET_MOVED
    )
}
