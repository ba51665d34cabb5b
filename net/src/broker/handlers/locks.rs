//! LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42), spec §3.12: orderly consumers lock the
//! queues they consume in order on the broker that hosts them.

use std::collections::BTreeSet;

use ringmq_codec::Command;
use ringmq_codec::body::misc::{
    LockBatchRequestBody, LockBatchResponseBody, MessageQueue, UnlockBatchRequestBody,
};

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::locks::QueueKey;
use crate::broker::shard::Shard;

fn body_error(what: &'static str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Body {
        what,
        reason: e.to_string(),
    }
}

fn keys(queues: BTreeSet<MessageQueue>) -> Vec<QueueKey> {
    queues
        .into_iter()
        .map(|mq| QueueKey {
            topic: mq.topic,
            broker_name: mq.broker_name,
            queue_id: mq.queue_id,
        })
        .collect()
}

/// Answers the subset of the requested queues now locked by the client.
pub fn lock(shard: &Shard, request: &Command) -> Answer {
    let body = LockBatchRequestBody::from_json(&request.body)
        .map_err(|e| body_error("LockBatchRequestBody", e))?;
    let granted = shard.locks.borrow_mut().lock(
        &body.consumer_group,
        &body.client_id,
        &keys(body.mq_set),
        shard.mono_ms(),
    );
    let response = LockBatchResponseBody {
        lock_ok_mq_set: granted
            .into_iter()
            .map(|k| MessageQueue::new(k.topic, k.broker_name, k.queue_id))
            .collect(),
    };
    Ok(ok(request).with_body(response.to_json()))
}

pub fn unlock(shard: &Shard, request: &Command) -> Answer {
    let body = UnlockBatchRequestBody::from_json(&request.body)
        .map_err(|e| body_error("UnlockBatchRequestBody", e))?;
    shard
        .locks
        .borrow_mut()
        .unlock(&body.consumer_group, &body.client_id, &keys(body.mq_set));
    Ok(ok(request))
}
