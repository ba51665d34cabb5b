//! Client registration (spec §3.2, §3.5): HEART_BEAT, UNREGISTER_CLIENT,
//! GET_CONSUMER_LIST_BY_GROUP, CHECK_CLIENT_CONFIG, and the NOTIFY_CONSUMER_IDS_CHANGED
//! requests the broker sends to a group's members when its membership changes.

use std::rc::Rc;

use ringmq_codec::body::heartbeat::{ExpressionType, HeartbeatData, JavaEnum};
use ringmq_codec::body::misc::{CheckClientConfigBody, GetConsumerListByGroupResponseBody};
use ringmq_codec::codes::request;
use ringmq_codec::headers::client::{
    GetConsumerListByGroupRequestHeader, NotifyConsumerIdsChangedRequestHeader,
    UnregisterClientRequestHeader,
};
use ringmq_codec::{Command, Header};

use super::{Answer, ok};
use crate::broker::clients::{ConsumerHeartbeat, Sender, Subscription};
use crate::broker::errors::BrokerError;
use crate::broker::shard::Shard;
use crate::remoting::Connection;

/// HEART_BEAT: registers the client's producer and consumer groups. A consumer group that
/// does not exist and may not be created is skipped silently, as Java does; each consumer
/// group gets its `%RETRY%` topic, registered with the namesrv at once when new.
pub fn heart_beat(shard: &Rc<Shard>, conn: &Connection, request: &Command) -> Answer {
    let data = HeartbeatData::from_json(&request.body).map_err(|e| BrokerError::Body {
        what: "HeartbeatData",
        reason: e.to_string(),
    })?;
    let now = shard.now_ms();
    let mut consumers = Vec::with_capacity(data.consumer_data_set.len());
    for c in data.consumer_data_set {
        let group = shard
            .groups
            .borrow_mut()
            .find_or_create(&c.group_name, now)
            .cloned();
        let Some(group) = group else {
            tracing::debug!(group = %c.group_name, "heartbeat for an unknown group skipped");
            continue;
        };
        let created =
            shard
                .topics
                .borrow_mut()
                .ensure_retry(&c.group_name, group.retry_queue_nums, now);
        shard.created(created);
        let subscriptions = c
            .subscription_data_set
            .iter()
            .map(|s| {
                Subscription::new(
                    &s.topic,
                    &s.sub_string,
                    s.expression_type.name(),
                    s.sub_version.unwrap_or(now),
                )
            })
            .collect();
        consumers.push(ConsumerHeartbeat {
            group: c.group_name,
            consume_type: c.consume_type.map_or("", |t| t.name()).to_owned(),
            message_model: c
                .message_model
                .map_or("CLUSTERING", |m| m.name())
                .to_owned(),
            consume_from_where: c.consume_from_where.map_or("", |w| w.name()).to_owned(),
            subscriptions,
            without_sub: data.without_sub,
        });
    }
    let producers: Vec<String> = data
        .producer_data_set
        .into_iter()
        .map(|p| p.group_name)
        .collect();
    let sender = Sender {
        client_id: &data.client_id,
        conn: conn.id().0,
        language: request.language.0,
        version: request.version,
        now_ms: shard.mono_ms(),
    };
    let changed = shard
        .clients
        .borrow_mut()
        .heartbeat(sender, &producers, consumers);
    notify_changed(shard, &changed);
    Ok(ok(request))
}

/// UNREGISTER_CLIENT: the client leaves the named groups.
pub fn unregister_client(shard: &Rc<Shard>, request: &Command) -> Answer {
    let h = UnregisterClientRequestHeader::decode(&request.ext)?;
    let changed = shard.clients.borrow_mut().unregister(
        &h.client_id,
        h.producer_group.as_deref(),
        h.consumer_group.as_deref(),
    );
    notify_changed(shard, &changed);
    Ok(ok(request))
}

/// GET_CONSUMER_LIST_BY_GROUP: client ids of the group's live members on this shard.
pub fn consumer_list(shard: &Shard, request: &Command) -> Answer {
    let h = GetConsumerListByGroupRequestHeader::decode(&request.ext)?;
    let ids = shard.clients.borrow().consumer_ids(&h.consumer_group);
    if ids.is_empty() {
        return Err(BrokerError::System(format!(
            "no consumer for this group, {}",
            h.consumer_group
        )));
    }
    let body = GetConsumerListByGroupResponseBody {
        consumer_id_list: ids,
    };
    Ok(ok(request).with_body(body.to_json()))
}

/// CHECK_CLIENT_CONFIG: TAG subscriptions are fine; SQL92 is refused, so such a client
/// fails at start rather than at its first pull.
pub fn check_client_config(request: &Command) -> Answer {
    if request.body.is_empty() {
        return Ok(ok(request));
    }
    let body = CheckClientConfigBody::from_json(&request.body).map_err(|e| BrokerError::Body {
        what: "CheckClientConfigBody",
        reason: e.to_string(),
    })?;
    match body.subscription_data.map(|s| s.expression_type) {
        Some(ExpressionType::Sql92) => Err(BrokerError::Unsupported(
            "The broker does not support consumer to filter message by SQL92".to_owned(),
        )),
        _ => Ok(ok(request)),
    }
}

/// Sends NOTIFY_CONSUMER_IDS_CHANGED (oneway) to every member connection of each group
/// whose membership changed, if the group wants it.
pub fn notify_changed(shard: &Shard, groups: &[String]) {
    for group in groups {
        let wanted = shard
            .groups
            .borrow()
            .get(group)
            .is_none_or(|g| g.notify_consumer_ids_changed_enable);
        if !wanted {
            continue;
        }
        let conns = shard.clients.borrow().consumer_conns(group);
        for id in conns {
            let Some(conn) = shard.connection(id) else {
                continue;
            };
            let mut cmd = Command::request(request::NOTIFY_CONSUMER_IDS_CHANGED);
            NotifyConsumerIdsChangedRequestHeader {
                consumer_group: group.clone(),
            }
            .encode(&mut cmd.ext);
            if let Err(e) = conn.oneway(cmd) {
                tracing::debug!(peer = %conn.peer(), error = %e, "cannot notify a consumer");
            }
        }
    }
}
