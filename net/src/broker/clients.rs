//! Client registry of one shard: producer and consumer groups, their connections and the
//! consumer subscriptions that pulls rely on (spec §3.2, §3.5, §10 items 5 and 15).
//!
//! Pure state: connections are opaque [`ConnId`]s and time is an input, so expiry and the
//! subscription update rules are unit-tested without sockets.

use std::collections::{BTreeMap, HashMap, HashSet};

use ringmq_codec::filter::TagFilter;

/// A connection as the transport names it.
pub type ConnId = u64;

/// Java's `channelExpiredTimeout`: a client silent this long is dropped.
pub const CHANNEL_EXPIRED_TIMEOUT_MS: u64 = 120_000;

/// One topic subscription of a consumer group, as the last accepted heartbeat gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    pub expression: String,
    /// `TAG` or `SQL92`.
    pub expression_type: String,
    pub sub_version: i64,
    pub filter: TagFilter,
}

impl Subscription {
    pub fn new(topic: &str, expression: &str, expression_type: &str, sub_version: i64) -> Self {
        Subscription {
            topic: topic.to_owned(),
            expression: expression.to_owned(),
            expression_type: expression_type.to_owned(),
            sub_version,
            filter: TagFilter::parse(Some(expression)),
        }
    }
}

/// The consumer part of a heartbeat, reduced to what the broker keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerHeartbeat {
    pub group: String,
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    pub subscriptions: Vec<Subscription>,
    /// Heartbeat V2 with an unchanged fingerprint: keep the stored subscriptions.
    pub without_sub: bool,
}

/// One live client connection within a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub conn: ConnId,
    pub last_heartbeat_ms: u64,
    pub language: u8,
    pub version: i32,
}

#[derive(Debug, Default)]
pub struct ConsumerGroup {
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    /// client id → member; sorted so listings are stable.
    pub members: BTreeMap<String, Member>,
    pub subscriptions: HashMap<String, Subscription>,
}

impl ConsumerGroup {
    pub fn is_broadcasting(&self) -> bool {
        self.message_model == "BROADCASTING"
    }
}

#[derive(Debug, Default)]
pub struct ClientRegistry {
    consumers: HashMap<String, ConsumerGroup>,
    /// producer group → client id → member.
    producers: HashMap<String, BTreeMap<String, Member>>,
}

/// Identity of the sender of a heartbeat.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub client_id: &'a str,
    pub conn: ConnId,
    pub language: u8,
    pub version: i32,
    pub now_ms: u64,
}

impl ClientRegistry {
    /// Records a heartbeat. Returns the consumer groups whose membership changed, which are
    /// to be told NOTIFY_CONSUMER_IDS_CHANGED.
    pub fn heartbeat(
        &mut self,
        sender: Sender<'_>,
        producer_groups: &[String],
        consumers: Vec<ConsumerHeartbeat>,
    ) -> Vec<String> {
        let member = Member {
            conn: sender.conn,
            last_heartbeat_ms: sender.now_ms,
            language: sender.language,
            version: sender.version,
        };
        for group in producer_groups {
            let members = self.producers.entry(group.clone()).or_default();
            members.insert(sender.client_id.to_owned(), member.clone());
        }
        let mut changed = Vec::new();
        for hb in consumers {
            let group = self.consumers.entry(hb.group.clone()).or_default();
            group.consume_type = hb.consume_type;
            group.message_model = hb.message_model;
            group.consume_from_where = hb.consume_from_where;
            let previous = group
                .members
                .insert(sender.client_id.to_owned(), member.clone());
            if previous.is_none_or(|p| p.conn != sender.conn) {
                changed.push(hb.group.clone());
            }
            if !hb.without_sub {
                update_subscriptions(&mut group.subscriptions, hb.subscriptions);
            }
        }
        changed
    }

    /// UNREGISTER_CLIENT: removes the client from the named groups. Returns changed consumer
    /// groups.
    pub fn unregister(
        &mut self,
        client_id: &str,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Vec<String> {
        if let Some(group) = producer_group
            && let Some(members) = self.producers.get_mut(group)
        {
            members.remove(client_id);
            if members.is_empty() {
                self.producers.remove(group);
            }
        }
        let mut changed = Vec::new();
        if let Some(group) = consumer_group
            && self.remove_consumer(group, |id, _| id == client_id)
        {
            changed.push(group.to_owned());
        }
        changed
    }

    /// A connection closed: every client registered over it leaves every group at once.
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<String> {
        self.retain_members(|m| m.conn != conn)
    }

    /// Drops members silent for longer than `timeout_ms`. Returns changed consumer groups.
    pub fn expire(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<String> {
        self.retain_members(|m| now_ms.saturating_sub(m.last_heartbeat_ms) <= timeout_ms)
    }

    fn retain_members(&mut self, keep: impl Fn(&Member) -> bool) -> Vec<String> {
        self.producers.retain(|_, members| {
            members.retain(|_, m| keep(m));
            !members.is_empty()
        });
        let groups: Vec<String> = self.consumers.keys().cloned().collect();
        groups
            .into_iter()
            .filter(|g| self.remove_consumer(g, |_, m| !keep(m)))
            .collect()
    }

    /// Removes matching members of a consumer group; returns whether any left. A group with no
    /// member left is forgotten, subscriptions included (Java does the same).
    fn remove_consumer(&mut self, group: &str, remove: impl Fn(&str, &Member) -> bool) -> bool {
        let Some(g) = self.consumers.get_mut(group) else {
            return false;
        };
        let before = g.members.len();
        g.members.retain(|id, m| !remove(id, m));
        let changed = g.members.len() != before;
        if g.members.is_empty() {
            self.consumers.remove(group);
        }
        changed
    }

    pub fn consumer_group(&self, group: &str) -> Option<&ConsumerGroup> {
        self.consumers.get(group)
    }

    /// Client ids of the live members of a consumer group (GET_CONSUMER_LIST_BY_GROUP).
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        self.consumers
            .get(group)
            .map(|g| g.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Connections of a consumer group, for NOTIFY_CONSUMER_IDS_CHANGED.
    pub fn consumer_conns(&self, group: &str) -> Vec<ConnId> {
        let Some(g) = self.consumers.get(group) else {
            return Vec::new();
        };
        let set: HashSet<ConnId> = g.members.values().map(|m| m.conn).collect();
        let mut conns: Vec<ConnId> = set.into_iter().collect();
        conns.sort_unstable();
        conns
    }

    /// Any live connection of a producer group (transaction check-back goes to one).
    pub fn producer_conns(&self, group: &str) -> Vec<ConnId> {
        self.producers
            .get(group)
            .map(|m| m.values().map(|m| m.conn).collect())
            .unwrap_or_default()
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<&Subscription> {
        self.consumers.get(group)?.subscriptions.get(topic)
    }

    pub fn consumer_groups(&self) -> impl Iterator<Item = (&str, &ConsumerGroup)> {
        self.consumers.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Java's rule: add unknown topics, replace a topic only with a greater `subVersion`, drop
/// topics absent from the new set.
fn update_subscriptions(stored: &mut HashMap<String, Subscription>, new: Vec<Subscription>) {
    let topics: HashSet<String> = new.iter().map(|s| s.topic.clone()).collect();
    for sub in new {
        match stored.get(&sub.topic) {
            Some(old) if old.sub_version >= sub.sub_version => {}
            _ => {
                stored.insert(sub.topic.clone(), sub);
            }
        }
    }
    stored.retain(|topic, _| topics.contains(topic));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(client_id: &str, conn: ConnId, now_ms: u64) -> Sender<'_> {
        Sender {
            client_id,
            conn,
            language: 12,
            version: 479,
            now_ms,
        }
    }

    fn consumer(group: &str, subs: &[(&str, &str, i64)]) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            group: group.into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscriptions: subs
                .iter()
                .map(|(t, e, v)| Subscription::new(t, e, "TAG", *v))
                .collect(),
            without_sub: false,
        }
    }

    #[test]
    fn membership_changes_are_reported_once() {
        let mut reg = ClientRegistry::default();
        let c = consumer("g", &[("T", "*", 1)]);
        assert_eq!(
            reg.heartbeat(sender("c1", 1, 0), &[], vec![c.clone()]),
            vec!["g"]
        );
        assert!(
            reg.heartbeat(sender("c1", 1, 10), &[], vec![c.clone()])
                .is_empty()
        );
        assert_eq!(reg.heartbeat(sender("c2", 2, 10), &[], vec![c]), vec!["g"]);
        assert_eq!(reg.consumer_ids("g"), vec!["c1", "c2"]);
        assert_eq!(reg.consumer_conns("g"), vec![1, 2]);
        assert_eq!(reg.connection_closed(1), vec!["g"]);
        assert_eq!(reg.consumer_ids("g"), vec!["c2"]);
        assert_eq!(reg.unregister("c2", None, Some("g")), vec!["g"]);
        assert!(reg.consumer_group("g").is_none());
    }

    #[test]
    fn subscriptions_follow_java_rules() {
        let mut reg = ClientRegistry::default();
        reg.heartbeat(
            sender("c", 1, 0),
            &[],
            vec![consumer("g", &[("A", "TagA", 5), ("B", "*", 5)])],
        );
        // Older version does not replace; a topic missing from the new set goes away.
        reg.heartbeat(
            sender("c", 1, 1),
            &[],
            vec![consumer("g", &[("A", "TagB", 4)])],
        );
        assert_eq!(reg.subscription("g", "A").unwrap().expression, "TagA");
        assert!(reg.subscription("g", "B").is_none());
        reg.heartbeat(
            sender("c", 1, 2),
            &[],
            vec![consumer("g", &[("A", "TagB || TagC", 6)])],
        );
        let sub = reg.subscription("g", "A").unwrap();
        assert_eq!(sub.sub_version, 6);
        assert!(
            sub.filter
                .matches_code(i64::from(ringmq_codec::filter::java_string_hash("TagC")))
        );
        let mut keep = consumer("g", &[]);
        keep.without_sub = true;
        reg.heartbeat(sender("c", 1, 3), &[], vec![keep]);
        assert!(reg.subscription("g", "A").is_some());
    }

    #[test]
    fn silent_members_expire() {
        let mut reg = ClientRegistry::default();
        reg.heartbeat(
            sender("c1", 1, 0),
            &["pg".to_owned()],
            vec![consumer("g", &[])],
        );
        reg.heartbeat(sender("c2", 2, 100_000), &[], vec![consumer("g", &[])]);
        assert!(reg.expire(120_000, CHANNEL_EXPIRED_TIMEOUT_MS).is_empty());
        assert_eq!(reg.producer_conns("pg"), vec![1]);
        assert_eq!(reg.expire(120_001, CHANNEL_EXPIRED_TIMEOUT_MS), vec!["g"]);
        assert_eq!(reg.consumer_ids("g"), vec!["c2"]);
        assert!(reg.producer_conns("pg").is_empty());
    }
}
