//! Consumer offsets (spec §3.6): QUERY_CONSUMER_OFFSET and UPDATE_CONSUMER_OFFSET (usually
//! oneway: the reply then sends nothing).

use ringmq_codec::codes::response as resp;
use ringmq_codec::headers::offset::{
    OffsetResponseHeader, QueryConsumerOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use ringmq_codec::{Command, Header};

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::shard::Shard;

/// The stored offset; else 0 while the queue was never truncated (min offset 0: a new group
/// on a young queue starts at its beginning, spec §3.6 and §10 item 13); else
/// QUERY_NOT_FOUND, and the client applies its ConsumeFromWhere.
pub fn query(shard: &Shard, request: &Command) -> Answer {
    let h = QueryConsumerOffsetRequestHeader::decode(&request.ext)?;
    let stored = shard
        .offsets
        .borrow()
        .query(&h.consumer_group, &h.topic, h.queue_id);
    let offset = match stored {
        Some(o) => Some(o),
        None if h.set_zero_if_not_found == Some(false) => None,
        None => {
            let (min, _) = shard.store.queue_offsets(&h.topic, h.queue_id);
            (min.0 == 0).then_some(0)
        }
    };
    Ok(match offset {
        Some(offset) => {
            let mut r = ok(request);
            OffsetResponseHeader { offset }.encode(&mut r.ext);
            r
        }
        None => Command::response_to(request, resp::QUERY_NOT_FOUND).with_remark(format!(
            "no offset stored for group {} on {} queue {}",
            h.consumer_group, h.topic, h.queue_id
        )),
    })
}

/// Stores the group's offset for the queue (unless an admin reset of it is pending);
/// persisted every few seconds and at stop.
/// Validated as 5.x does: the group must exist (or be creatable), the topic must exist and
/// the queue id be within it.
pub fn update(shard: &Shard, request: &Command) -> Answer {
    let h = UpdateConsumerOffsetRequestHeader::decode(&request.ext)?;
    let now = shard.now_ms();
    if shard
        .groups
        .borrow_mut()
        .find_or_create(&h.consumer_group, now)
        .is_none()
    {
        return Err(BrokerError::SubscriptionGroupNotExist(h.consumer_group));
    }
    let queues = shard
        .topics
        .borrow()
        .get(&h.topic)
        .map(crate::broker::topics::queue_count)
        .ok_or_else(|| BrokerError::TopicNotExist(h.topic.clone()))?;
    if h.queue_id < 0 || h.queue_id >= queues {
        return Err(BrokerError::InvalidParameter(format!(
            "queueId[{}] is illegal for topic {} with {queues} queues",
            h.queue_id, h.topic
        )));
    }
    let stored =
        shard
            .offsets
            .borrow_mut()
            .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    if !stored {
        // Answered SUCCESS all the same: the client did nothing wrong, its offset predates
        // an admin reset that its next pull will tell it about.
        tracing::debug!(
            group = %h.consumer_group,
            topic = %h.topic,
            queue_id = h.queue_id,
            offset = h.commit_offset,
            "commit dropped: an offset reset of this queue is pending"
        );
    }
    Ok(ok(request))
}
