//! Offset reset to a timestamp (spec §3.13, §3.2 broker → client, §3.4 step 4 last row):
//! INVOKE_BROKER_TO_RESET_OFFSET (222) from an admin tool, RESET_CONSUMER_CLIENT_OFFSET (220)
//! to the group's online clients, and the PULL_OFFSET_MOVED answer for clients that missed it.
//!
//! ```text
//!  admin ── 222 {topic, group, timestamp, isForce} ──► shard
//!            per queue: target = first offset stored at/after timestamp (−1: max offset)
//!            isForce=false: a queue only moves backwards (target < committed)
//!            moved queues: committed := target, reset pending (offsets.rs)
//!  shard ── 220 oneway, same header + ResetOffsetBody ──► every connection of the group
//!  shard ◄── 222 answer: SUCCESS + ResetOffsetBody {"offsetTable":{MQ:offset}}
//!  next PULL of (group, topic, queue) ──► PULL_OFFSET_MOVED, nextBeginOffset = target
//! ```
//!
//! Each shard is its own logical broker: the admin tool sends 222 to every broker of the
//! topic's route, so a shard resets only its own queues and names them with its own broker
//! name.

use std::rc::Rc;

use ringmq_codec::body::misc::{MessageQueue, ResetOffsetBody};
use ringmq_codec::codes::{request as req, response as resp};
use ringmq_codec::headers::admin::ResetOffsetRequestHeader;
use ringmq_codec::headers::pull::{PullMessageRequestHeader, PullMessageResponseHeader};
use ringmq_codec::{Command, Header};
use ringmq_engine::TimeBoundary;

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::shard::Shard;
use crate::broker::topics::queue_count;

/// The `timestamp` that means "the queue's end" (Java: skip everything stored so far).
pub const TIMESTAMP_LATEST: i64 = -1;

/// One queue's outcome: where the group was and where it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueReset {
    pub queue_id: i32,
    pub committed: Option<i64>,
    pub target: i64,
}

impl QueueReset {
    /// The offset the group ends up at: the target, except that without `isForce` a queue
    /// never moves forwards (Java's rule: reset only when `target < committed`).
    pub fn new_offset(&self, force: bool) -> i64 {
        match self.committed {
            Some(c) if !force && self.target >= c => c,
            _ => self.target,
        }
    }

    /// Whether the broker must change anything for this queue.
    pub fn moves(&self, force: bool) -> bool {
        self.committed != Some(self.new_offset(force))
    }
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222).
///
/// Choices where the protocol is silent: a queue the group never committed on is reset to the
/// target (Java refuses the whole request; an operator resetting a group wants it positioned,
/// and with one logical broker per shard a shard that never saw the group must not fail the
/// admin tool's round over every broker); with the 5.x `queueId` and `offset` fields only that
/// queue is reset, to `offset` clamped into the queue's bounds.
pub async fn invoke(shard: Rc<Shard>, request: Command) -> Answer {
    let h = ResetOffsetRequestHeader::decode(&request.ext)?;
    let queues = shard
        .topics
        .borrow()
        .get(&h.topic)
        .map(queue_count)
        .ok_or_else(|| BrokerError::TopicNotExist(h.topic.clone()))?;
    let ids: Vec<i32> = match h.queue_id {
        Some(q) if q >= 0 => {
            if q >= queues {
                return Err(BrokerError::InvalidParameter(format!(
                    "queueId[{q}] is illegal for topic {} with {queues} queues",
                    h.topic
                )));
            }
            vec![q]
        }
        _ => (0..queues).collect(),
    };
    let mut plan = Vec::with_capacity(ids.len());
    for queue_id in ids {
        let target = target_offset(&shard, &h, queue_id).await?;
        let committed = shard.offsets.borrow().query(&h.group, &h.topic, queue_id);
        plan.push(QueueReset {
            queue_id,
            committed,
            target,
        });
    }
    let body = apply(&shard, &h, &plan);
    shard.persist_tables(false);
    tracing::info!(
        shard = shard.index,
        group = %h.group,
        topic = %h.topic,
        timestamp_ms = h.timestamp_ms,
        force = h.is_force,
        queues = plan.len(),
        "consumer offsets reset"
    );
    let encoded = body.to_fastjson();
    notify_clients(&shard, &h, &encoded);
    Ok(ok(&request).with_body(encoded))
}

/// Where a queue goes: the explicit 5.x offset, the queue's end for `timestamp = -1`, else
/// the first offset stored at or after the timestamp (the end when all are older); always
/// within the queue's `[min, max]`.
async fn target_offset(
    shard: &Shard,
    h: &ResetOffsetRequestHeader,
    queue_id: i32,
) -> Result<i64, BrokerError> {
    let (min, max) = shard.store.queue_offsets(&h.topic, queue_id);
    let (min, max) = (min.0 as i64, max.0 as i64);
    let raw = match (h.queue_id, h.offset) {
        (Some(q), Some(offset)) if q >= 0 => offset,
        _ if h.timestamp_ms == TIMESTAMP_LATEST => max,
        _ => {
            let o = shard
                .store
                .offset_by_time(&h.topic, queue_id, h.timestamp_ms, TimeBoundary::Lower)
                .await?;
            o.0 as i64
        }
    };
    Ok(raw.clamp(min, max.max(min)))
}

/// Moves the group's offsets as planned and returns the answer body: every queue with the
/// offset the group is now at.
fn apply(shard: &Shard, h: &ResetOffsetRequestHeader, plan: &[QueueReset]) -> ResetOffsetBody {
    let mut body = ResetOffsetBody::default();
    let mut offsets = shard.offsets.borrow_mut();
    for q in plan {
        let offset = q.new_offset(h.is_force);
        if q.moves(h.is_force) {
            offsets.reset(&h.group, &h.topic, q.queue_id, offset);
        }
        body.offset_table
            .insert(MessageQueue::new(&h.topic, &shard.name, q.queue_id), offset);
    }
    body
}

/// RESET_CONSUMER_CLIENT_OFFSET (220, oneway) to every connection of the group, over the
/// same path as NOTIFY_CONSUMER_IDS_CHANGED. Offline clients get the reset at their next
/// pull instead ([`pending_pull`]).
fn notify_clients(shard: &Shard, h: &ResetOffsetRequestHeader, body: &[u8]) {
    let conns = shard.clients.borrow().consumer_conns(&h.group);
    for id in conns {
        let Some(conn) = shard.connection(id) else {
            continue;
        };
        let mut cmd = Command::request(req::RESET_CONSUMER_CLIENT_OFFSET).with_body(body.to_vec());
        h.encode(&mut cmd.ext);
        if let Err(e) = conn.oneway(cmd) {
            tracing::debug!(peer = %conn.peer(), error = %e, "cannot send an offset reset");
        }
    }
}

/// The pull's answer when an admin reset of its queue is pending for its group:
/// PULL_OFFSET_MOVED with `nextBeginOffset` = the reset target (the client stores it,
/// persists it and restarts the queue from there). Consumes the pending reset, so the pull
/// after it is served normally. `None`: no reset pending, serve the pull.
pub fn pending_pull(
    shard: &Shard,
    request: &Command,
    h: &PullMessageRequestHeader,
) -> Option<Command> {
    let target = shard
        .offsets
        .borrow_mut()
        .take_reset(&h.consumer_group, &h.topic, h.queue_id)?;
    let (min, max) = shard.store.queue_offsets(&h.topic, h.queue_id);
    tracing::debug!(
        shard = shard.index,
        group = %h.consumer_group,
        topic = %h.topic,
        queue_id = h.queue_id,
        requested = h.queue_offset,
        target,
        "pull answered with a pending offset reset"
    );
    let mut response =
        Command::response_to(request, resp::PULL_OFFSET_MOVED).with_remark("OFFSET_RESET");
    PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: target,
        min_offset: min.0 as i64,
        max_offset: max.0 as i64,
        ..PullMessageResponseHeader::default()
    }
    .encode(&mut response.ext);
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(committed: Option<i64>, target: i64) -> QueueReset {
        QueueReset {
            queue_id: 0,
            committed,
            target,
        }
    }

    #[test]
    fn without_force_a_queue_only_moves_backwards() {
        assert_eq!(q(Some(10), 4).new_offset(false), 4);
        assert!(q(Some(10), 4).moves(false));
        assert_eq!(q(Some(10), 15).new_offset(false), 10);
        assert!(!q(Some(10), 15).moves(false));
        assert_eq!(q(Some(10), 10).new_offset(false), 10);
        assert!(!q(Some(10), 10).moves(false));
    }

    #[test]
    fn with_force_a_queue_goes_to_the_target() {
        assert_eq!(q(Some(10), 15).new_offset(true), 15);
        assert!(q(Some(10), 15).moves(true));
        assert!(!q(Some(10), 10).moves(true));
    }

    #[test]
    fn a_queue_never_committed_is_positioned() {
        assert_eq!(q(None, 7).new_offset(false), 7);
        assert!(q(None, 7).moves(false));
        assert!(q(None, 0).moves(true));
    }
}
