//! CONSUMER_SEND_MSG_BACK (36), spec §3.8: a consumer gives a message back for redelivery.
//!
//! The message is looked up by its physical offset and written again — to `%RETRY%<group>`
//! through its delay level (so it waits in `SCHEDULE_TOPIC_XXXX` first, [`schedule`]), or to
//! `%DLQ%<group>` once it was consumed `max` times or the client asked for the DLQ
//! (`delayLevel < 0`). The copy keeps body, flag, sysFlag, born time/host and properties, with
//! `RETRY_TOPIC` (the original topic, set once), `ORIGIN_MESSAGE_ID` (set once) and
//! `reconsumeTimes + 1`, so its history survives every round and the DLQ.

use std::rc::Rc;

use ringmq_codec::Command;
use ringmq_codec::filter::tag_code;
use ringmq_codec::message::offset_msg_id;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::RecordView;
use ringmq_codec::typed::Header;
use ringmq_engine::{AppendRequest, Durability, PhysOffset};

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::schedule;
use crate::broker::shard::Shard;
use crate::broker::topics::{self, is_writable};

ringmq_codec::ext_header! {
    /// CONSUMER_SEND_MSG_BACK (36) request header (spec §3.8).
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Physical offset of the message that failed.
        offset: req i64 = "offset",
        group: req String = "group",
        /// 0: the broker decides (`3 + reconsumeTimes`); > 0 explicit; < 0 straight to DLQ.
        delay_level: req i32 = "delayLevel",
        origin_msg_id: opt String = "originMsgId",
        origin_topic: opt String = "originTopic",
        unit_mode: opt bool = "unitMode",
        max_reconsume_times: opt i32 = "maxReconsumeTimes",
    }
}

/// Where a given-back message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `%RETRY%<group>` after this delay level (1-based, within the configured levels).
    Retry {
        level: usize,
    },
    Dlq,
}

/// The retry/DLQ decision of spec §3.8 step 5 for a message consumed `reconsume_times` times
/// before, with the group's (or client's) `max` and the requested `delay_level`, on a broker
/// with `levels` delay levels.
pub fn decide(reconsume_times: i32, max: i32, delay_level: i32, levels: usize) -> Target {
    if reconsume_times >= max || delay_level < 0 {
        return Target::Dlq;
    }
    let wanted = if delay_level == 0 {
        3i64 + i64::from(reconsume_times.max(0))
    } else {
        i64::from(delay_level)
    };
    let level = usize::try_from(wanted).unwrap_or(1).clamp(1, levels.max(1));
    Target::Retry { level }
}

/// The copy's properties: the record's, with the history keys set once, `WAIT=false`, and
/// without the delay/schedule keys of an earlier round.
pub fn given_back_properties(props: &str, topic: &str, origin_id: &str) -> String {
    const DROP: &[&str] = &[
        keys::DELAY,
        keys::WAIT,
        keys::REAL_TOPIC,
        keys::REAL_QID,
        schedule::DUE_KEY,
        schedule::SOURCE_KEY,
        keys::TIMER_DELIVER_MS,
        keys::TIMER_DELAY_SEC,
        keys::TIMER_DELAY_MS,
    ];
    let retry_topic = properties::find(props, keys::RETRY_TOPIC).unwrap_or(topic);
    let origin = properties::find(props, keys::ORIGIN_MESSAGE_ID).unwrap_or(origin_id);
    let mut out = String::with_capacity(props.len() + 96);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| {
                !DROP.contains(k) && *k != keys::RETRY_TOPIC && *k != keys::ORIGIN_MESSAGE_ID
            })
            .chain([
                (keys::RETRY_TOPIC, retry_topic),
                (keys::ORIGIN_MESSAGE_ID, origin),
                (keys::WAIT, "false"),
            ]),
        &mut out,
    );
    out
}

/// A dead letter's properties: the 5.x `DLQ_ORIGIN_TOPIC` / `DLQ_ORIGIN_MESSAGE_ID` beside
/// `RETRY_TOPIC` / `ORIGIN_MESSAGE_ID` (which [`given_back_properties`] has set), for tools.
pub fn dlq_properties(props: &str) -> String {
    let topic = properties::find(props, keys::RETRY_TOPIC)
        .unwrap_or("")
        .to_owned();
    let id = properties::find(props, keys::UNIQ_KEY)
        .or_else(|| properties::find(props, keys::ORIGIN_MESSAGE_ID))
        .unwrap_or("")
        .to_owned();
    let mut out = String::with_capacity(props.len() + 64);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| *k != keys::DLQ_ORIGIN_TOPIC && *k != keys::DLQ_ORIGIN_MESSAGE_ID)
            .chain([
                (keys::DLQ_ORIGIN_TOPIC, topic.as_str()),
                (keys::DLQ_ORIGIN_MESSAGE_ID, id.as_str()),
            ]),
        &mut out,
    );
    out
}

pub async fn handle(shard: Rc<Shard>, request: Command) -> Answer {
    let h = ConsumerSendMsgBackRequestHeader::decode(&request.ext)?;
    let now = shard.now_ms();
    let gcfg = shard
        .groups
        .borrow_mut()
        .find_or_create(&h.group, now)
        .cloned()
        .ok_or_else(|| BrokerError::SubscriptionGroupNotExist(h.group.clone()))?;
    if !is_writable(shard.cfg.broker_permission) {
        return Err(BrokerError::NoPermission(format!(
            "the broker[{}] sending message is forbidden",
            shard.name
        )));
    }
    if gcfg.retry_queue_nums <= 0 {
        return Ok(ok(&request));
    }
    let bytes = shard
        .store
        .record_at(PhysOffset(u64::try_from(h.offset).unwrap_or(u64::MAX)))
        .await
        .map_err(BrokerError::Storage)?
        .ok_or_else(|| {
            BrokerError::System(format!("look message by offset failed, {}", h.offset))
        })?;
    let v = RecordView::parse(&bytes)
        .map_err(|e| BrokerError::System(format!("the stored message does not decode: {e}")))?;
    let max = h.max_reconsume_times.unwrap_or(gcfg.retry_max_times);
    let target = decide(
        v.reconsume_times,
        max,
        h.delay_level,
        shard.cfg.delay_levels_ms.len(),
    );
    let origin = offset_msg_id(v.store_host, v.phys_offset);
    let props = given_back_properties(v.properties, v.topic, &origin);
    let (topic, queue_id, props, tag) = match target {
        Target::Dlq => {
            let created = shard.topics.borrow_mut().ensure_dlq(&h.group, now);
            shard.created(created);
            let dlq = topics::dlq_topic(&h.group);
            let perm = shard.topics.borrow().get(&dlq).map(|c| c.perm);
            if !perm.is_some_and(is_writable) {
                return Err(BrokerError::NoPermission(format!(
                    "the topic[{dlq}] sending message is forbidden"
                )));
            }
            let props = dlq_properties(&props);
            let tag = tag_code(properties::find(&props, keys::TAGS));
            (dlq, 0, props, tag)
        }
        Target::Retry { level } => {
            let created =
                shard
                    .topics
                    .borrow_mut()
                    .ensure_retry(&h.group, gcfg.retry_queue_nums, now);
            shard.created(created);
            let retry = topics::retry_topic(&h.group);
            let n = gcfg.retry_queue_nums.max(1) as u64;
            let qid = (shard.random() % n) as i32;
            let delay = shard
                .cfg
                .delay_levels_ms
                .get(level - 1)
                .copied()
                .unwrap_or(0);
            let due = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
            let props = schedule::schedule_properties(&props, &retry, qid, due);
            (
                schedule::SCHEDULE_TOPIC.to_owned(),
                level as i32 - 1,
                props,
                due,
            )
        }
    };
    let req = AppendRequest {
        topic: &topic,
        queue_id,
        body: v.body,
        flag: v.flag,
        sys_flag: v.sys_flag,
        born_timestamp: v.born_timestamp,
        born_host: v.born_host,
        properties: &props,
        reconsume_times: v.reconsume_times.saturating_add(1),
        prepared_transaction_offset: 0,
        tag_code: tag,
        durability: Durability::Written,
    };
    shard
        .store
        .append(req)
        .await
        .map_err(BrokerError::Storage)?;
    tracing::debug!(shard = shard.index, group = %h.group, ?target, "message given back");
    Ok(ok(&request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_level_grows_then_dlq() {
        assert_eq!(decide(0, 16, 0, 18), Target::Retry { level: 3 });
        assert_eq!(decide(1, 16, 0, 18), Target::Retry { level: 4 });
        assert_eq!(decide(15, 16, 0, 18), Target::Retry { level: 18 });
        assert_eq!(decide(16, 16, 0, 18), Target::Dlq);
        assert_eq!(decide(0, 0, 0, 18), Target::Dlq);
        assert_eq!(decide(0, 16, -1, 18), Target::Dlq);
        assert_eq!(decide(2, 16, 5, 18), Target::Retry { level: 5 });
        assert_eq!(decide(2, 16, 40, 18), Target::Retry { level: 18 });
        // Fewer configured levels: clamp to the last.
        assert_eq!(decide(2, 16, 0, 3), Target::Retry { level: 3 });
    }

    #[test]
    fn history_is_set_once() {
        let mut p = String::new();
        properties::encode([("TAGS", "A"), ("DELAY", "3"), ("UNIQ_KEY", "U")], &mut p);
        let first = given_back_properties(&p, "T", "ID1");
        assert_eq!(properties::find(&first, keys::RETRY_TOPIC), Some("T"));
        assert_eq!(
            properties::find(&first, keys::ORIGIN_MESSAGE_ID),
            Some("ID1")
        );
        assert_eq!(properties::find(&first, keys::DELAY), None);
        assert_eq!(properties::find(&first, keys::WAIT), Some("false"));
        assert_eq!(properties::find(&first, "UNIQ_KEY"), Some("U"));
        let second = given_back_properties(&first, "%RETRY%g", "ID2");
        assert_eq!(properties::find(&second, keys::RETRY_TOPIC), Some("T"));
        assert_eq!(
            properties::find(&second, keys::ORIGIN_MESSAGE_ID),
            Some("ID1")
        );
        assert_eq!(
            properties::iter(&second)
                .filter(|(k, _)| *k == keys::WAIT)
                .count(),
            1
        );
        let dead = dlq_properties(&dlq_properties(&second));
        assert_eq!(properties::find(&dead, keys::DLQ_ORIGIN_TOPIC), Some("T"));
        assert_eq!(
            properties::find(&dead, keys::DLQ_ORIGIN_MESSAGE_ID),
            Some("U")
        );
        assert_eq!(
            properties::iter(&dead)
                .filter(|(k, _)| *k == keys::DLQ_ORIGIN_TOPIC)
                .count(),
            1
        );
    }
}
