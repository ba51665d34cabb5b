//! Topic administration (spec §3.11): UPDATE_AND_CREATE_TOPIC, GET_ALL_TOPIC_CONFIG,
//! DELETE_TOPIC_IN_BROKER. Every change is persisted and registered with the name servers
//! before the answer, as a Java broker does: when the tool hears SUCCESS, the route has
//! changed.

use std::collections::BTreeMap;
use std::rc::Rc;

use ringmq_codec::body::lenient;
use ringmq_codec::body::topic_config::{TopicConfig, TopicFilterType};
use ringmq_codec::headers::admin::{CreateTopicRequestHeader, DeleteTopicRequestHeader};
use ringmq_codec::{Command, Header};

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::shard::Shard;
use crate::broker::{register, topics};

/// 5.x topic attributes: `+key=value,+key2=value2` (a leading `-` deletes, which for a new
/// config means nothing to add).
fn parse_attributes(text: &str) -> Result<BTreeMap<String, String>, BrokerError> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(kv) = part.strip_prefix('+') {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                BrokerError::InvalidParameter(format!("attribute {part:?} is not +key=value"))
            })?;
            out.insert(k.to_owned(), v.to_owned());
        } else if !part.starts_with('-') {
            return Err(BrokerError::InvalidParameter(format!(
                "attribute {part:?} must start with + or -"
            )));
        }
    }
    Ok(out)
}

pub async fn create(shard: Rc<Shard>, request: Command) -> Answer {
    let changed = create_now(&shard, &request)?;
    if changed {
        register::register_once(&shard).await;
    }
    Ok(ok(&request))
}

/// Validates and stores the topic; `true` when the table changed.
fn create_now(shard: &Shard, request: &Command) -> Result<bool, BrokerError> {
    let h = CreateTopicRequestHeader::decode(&request.ext)?;
    topics::validate_name(&h.topic).map_err(BrokerError::InvalidParameter)?;
    if topics::is_send_forbidden(&h.topic) {
        return Err(BrokerError::InvalidParameter(format!(
            "The topic[{}] is conflict with system topic.",
            h.topic
        )));
    }
    let filter = TopicFilterType::from_name(&h.topic_filter_type).ok_or_else(|| {
        BrokerError::InvalidParameter(format!(
            "topicFilterType {:?} is not SINGLE_TAG or MULTI_TAG",
            h.topic_filter_type
        ))
    })?;
    let cfg = TopicConfig {
        topic_name: h.topic.clone(),
        read_queue_nums: h.read_queue_nums,
        write_queue_nums: h.write_queue_nums,
        perm: h.perm,
        topic_filter_type: filter,
        topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
        order: h.order,
        attributes: parse_attributes(h.attributes.as_deref().unwrap_or(""))?,
    };
    let changed = shard
        .topics
        .borrow_mut()
        .upsert(cfg, shard.now_ms())
        .map_err(BrokerError::InvalidParameter)?;
    if changed {
        shard.topics_persist(&format!(
            "topic {} created or updated ({} read / {} write queues, perm {})",
            h.topic, h.read_queue_nums, h.write_queue_nums, h.perm
        ));
    }
    Ok(changed)
}

/// The whole topic table as `TopicConfigSerializeWrapper`.
pub fn all_topics(shard: &Shard, request: &Command) -> Answer {
    let wrapper = shard.topics.borrow().wrapper();
    Ok(ok(request).with_body(lenient::to_json(&wrapper)))
}

/// Forgets the topic's config and every consumer offset on it, and wakes its parked pulls.
///
/// The stored messages stay in the commit log and the consume queues until retention
/// deletes their segments (the engine has no per-topic delete: the log is shared by all
/// topics of the shard). A topic re-created under the same name therefore finds its old
/// messages at their old offsets, as with a Java broker until its files expire.
pub async fn delete(shard: Rc<Shard>, request: Command) -> Answer {
    if delete_now(&shard, &request)? {
        register::register_once(&shard).await;
    }
    Ok(ok(&request))
}

/// Forgets the topic; `true` when it existed.
fn delete_now(shard: &Shard, request: &Command) -> Result<bool, BrokerError> {
    let h = DeleteTopicRequestHeader::decode(&request.ext)?;
    topics::validate_name(&h.topic).map_err(BrokerError::InvalidParameter)?;
    let existed = shard.topics.borrow_mut().remove(&h.topic, shard.now_ms());
    if !existed && shard.topics.borrow().get(&h.topic).is_some() {
        return Err(BrokerError::InvalidParameter(format!(
            "The topic[{}] is conflict with system topic.",
            h.topic
        )));
    }
    shard.offsets.borrow_mut().remove_topic(&h.topic);
    let parked = shard.waiters.borrow_mut().drain(Some(&h.topic));
    shard
        .metrics
        .long_poll_waiters
        .fetch_sub(parked.len() as u64, std::sync::atomic::Ordering::Relaxed);
    for s in parked {
        s.fire();
    }
    if existed {
        shard.topics_persist(&format!("topic {} deleted", h.topic));
    }
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes() {
        let a = parse_attributes("+message.type=NORMAL, +queue.type=BatchCQ").unwrap();
        assert_eq!(a.get("message.type").map(String::as_str), Some("NORMAL"));
        assert_eq!(a.len(), 2);
        assert!(parse_attributes("").unwrap().is_empty());
        assert!(parse_attributes("-x").unwrap().is_empty());
        assert!(parse_attributes("x=y").is_err());
        assert!(parse_attributes("+x").is_err());
    }
}
