//! The topic table of one shard (a logical broker): validation, the system topics it creates
//! at start, auto-creation from `TBW102` on send, `%RETRY%`/`%DLQ%` topics, admin updates,
//! permissions, the DataVersion the namesrv compares, and persistence as `topics.json`.
//!
//! Pure: time is an argument and persistence is bytes in, bytes out.

use std::collections::BTreeMap;

use ringmq_codec::body::lenient;
use ringmq_codec::body::topic_config::{
    DataVersion, TopicConfig, TopicConfigSerializeWrapper, perm,
};

/// The producer's auto-create template topic (spec §4.8).
pub const DEFAULT_TOPIC: &str = "TBW102";
pub const RETRY_PREFIX: &str = "%RETRY%";
pub const DLQ_PREFIX: &str = "%DLQ%";
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";

/// Longest topic name (Java `TopicValidator`), and the longer limit of retry/DLQ topics,
/// whose names embed a group name.
pub const TOPIC_LEN_MAX: usize = 127;
pub const RETRY_TOPIC_LEN_MAX: usize = 255;
/// Most queues a topic may have on one shard: every queue is a consume queue with files.
pub const QUEUES_PER_TOPIC_MAX: i32 = 4096;

/// Topics the broker reserves for itself: a client send to one is refused with
/// NO_PERMISSION (spec §3.3 step 1).
const SEND_FORBIDDEN: &[&str] = &[
    "SCHEDULE_TOPIC_XXXX",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Checks a topic name: `^[%|a-zA-Z0-9_-]+$`, at most 127 bytes (255 for `%RETRY%` and
/// `%DLQ%` topics). The error says what is wrong, for the response remark.
pub fn validate_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the topic name is empty".to_owned());
    }
    let max = if is_retry(topic) || is_dlq(topic) {
        RETRY_TOPIC_LEN_MAX
    } else {
        TOPIC_LEN_MAX
    };
    if topic.len() > max {
        return Err(format!(
            "the topic name is {} characters long, longer than {max}",
            topic.len()
        ));
    }
    let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-');
    if !topic.bytes().all(legal) {
        return Err(format!(
            "the topic [{}] contains illegal characters; allowed: ^[%|a-zA-Z0-9_-]+$",
            topic.escape_debug()
        ));
    }
    Ok(())
}

/// Whether clients may not send to `topic` (reserved for the broker).
pub fn is_send_forbidden(topic: &str) -> bool {
    SEND_FORBIDDEN.contains(&topic) || topic.starts_with("rmq_sys_")
}

pub fn is_retry(topic: &str) -> bool {
    topic.starts_with(RETRY_PREFIX)
}

pub fn is_dlq(topic: &str) -> bool {
    topic.starts_with(DLQ_PREFIX)
}

pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_PREFIX}{group}")
}

pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_PREFIX}{group}")
}

/// Queue count that bounds queue ids: Java checks `queueId ≥ max(read, write)` on send.
pub fn queue_count(cfg: &TopicConfig) -> i32 {
    cfg.read_queue_nums.max(cfg.write_queue_nums)
}

pub fn is_readable(perm_bits: i32) -> bool {
    perm_bits & perm::READ != 0
}

pub fn is_writable(perm_bits: i32) -> bool {
    perm_bits & perm::WRITE != 0
}

/// A topic the shard did not host and now does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created(pub TopicConfig);

/// Why a send cannot get a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendTopicError {
    /// Unknown, and the default topic does not allow auto-creation.
    NotExist,
}

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub cluster_name: String,
    pub broker_name: String,
    pub auto_create: bool,
    /// Queues of TBW102 (`defaultTopicQueueNums`).
    pub default_queue_nums: i32,
    /// `brokerPermission`, given to the cluster and broker-name topics.
    pub broker_permission: i32,
}

#[derive(Debug, Clone)]
pub struct TopicTable {
    topics: BTreeMap<String, TopicConfig>,
    version: DataVersion,
    /// Names of the topics made from the settings at start; not persisted.
    system: Vec<String>,
}

fn topic(name: &str, queues: i32, perm_bits: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm: perm_bits,
        ..TopicConfig::default()
    }
}

impl TopicTable {
    /// The table at start: the system topics from `settings`, then the topics of a
    /// `topics.json` written earlier (`None`: first start). System topics in the file are
    /// ignored: they follow the current settings (disabling auto-create removes TBW102).
    pub fn open(
        settings: &TopicSettings,
        saved: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<TopicTable, String> {
        let rw = perm::READ | perm::WRITE;
        let mut system = vec![
            topic(SELF_TEST_TOPIC, 1, rw),
            topic(OFFSET_MOVED_EVENT, 1, rw),
            topic(&settings.cluster_name, 16, settings.broker_permission),
            topic(&settings.broker_name, 1, settings.broker_permission),
        ];
        if settings.auto_create {
            system.push(topic(
                DEFAULT_TOPIC,
                settings.default_queue_nums,
                rw | perm::INHERIT,
            ));
        }
        let mut table = TopicTable {
            topics: BTreeMap::new(),
            version: DataVersion::default(),
            system: system.iter().map(|t| t.topic_name.clone()).collect(),
        };
        if let Some(bytes) = saved {
            let wrapper: TopicConfigSerializeWrapper =
                lenient::from_slice("topics.json", bytes).map_err(|e| e.to_string())?;
            table.version = wrapper.data_version;
            for (name, cfg) in wrapper.topic_config_table {
                if !table.system.contains(&name) && validate_name(&name).is_ok() {
                    table.topics.insert(name, cfg);
                }
            }
        }
        for t in system {
            table.topics.insert(t.topic_name.clone(), t);
        }
        // A restart is a change as far as the namesrv knows: it may hold an older table.
        table.version = table.version.next(now_ms);
        Ok(table)
    }

    pub fn get(&self, topic: &str) -> Option<&TopicConfig> {
        self.topics.get(topic)
    }

    pub fn len(&self) -> usize {
        self.topics.len()
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    pub fn data_version(&self) -> DataVersion {
        self.version
    }

    fn insert(&mut self, cfg: TopicConfig, now_ms: i64) -> Created {
        self.topics.insert(cfg.topic_name.clone(), cfg.clone());
        self.version = self.version.next(now_ms);
        Created(cfg)
    }

    /// The topic a send writes to, auto-creating it from `default_topic` as Java does
    /// (spec §3.3 step 2): the template must exist with the INHERIT bit; the new topic gets
    /// `min(queue_nums, template write queues)` queues and the template's perm without
    /// INHERIT. An unknown `%RETRY%` topic is created with one queue.
    pub fn for_send(
        &mut self,
        topic_name: &str,
        default_topic: &str,
        queue_nums: i32,
        now_ms: i64,
    ) -> Result<(TopicConfig, Option<Created>), SendTopicError> {
        if let Some(cfg) = self.topics.get(topic_name) {
            return Ok((cfg.clone(), None));
        }
        if is_retry(topic_name) {
            let created = self.insert(topic(topic_name, 1, perm::READ | perm::WRITE), now_ms);
            return Ok((created.0.clone(), Some(created)));
        }
        let template = self
            .topics
            .get(default_topic)
            .filter(|t| t.perm & perm::INHERIT != 0)
            .ok_or(SendTopicError::NotExist)?;
        let queues = queue_nums.clamp(1, template.write_queue_nums.max(1));
        let perm_bits = template.perm & !perm::INHERIT;
        let created = self.insert(topic(topic_name, queues, perm_bits), now_ms);
        Ok((created.0.clone(), Some(created)))
    }

    /// `%RETRY%<group>` with `queues` queues (group `retryQueueNums`, 1 by default), perm RW.
    pub fn ensure_retry(&mut self, group: &str, queues: i32, now_ms: i64) -> Option<Created> {
        self.ensure(&retry_topic(group), queues.max(1), now_ms)
    }

    /// `%DLQ%<group>`: one queue, perm RW (spec §4.8).
    pub fn ensure_dlq(&mut self, group: &str, now_ms: i64) -> Option<Created> {
        self.ensure(&dlq_topic(group), 1, now_ms)
    }

    fn ensure(&mut self, name: &str, queues: i32, now_ms: i64) -> Option<Created> {
        if self.topics.contains_key(name) {
            return None;
        }
        Some(self.insert(topic(name, queues, perm::READ | perm::WRITE), now_ms))
    }

    /// UPDATE_AND_CREATE_TOPIC: validates and stores `cfg`. Returns whether anything
    /// changed (an identical config is a success without a change).
    pub fn upsert(&mut self, cfg: TopicConfig, now_ms: i64) -> Result<bool, String> {
        validate_name(&cfg.topic_name)?;
        if self.system.contains(&cfg.topic_name) {
            return Err(format!(
                "the topic [{}] is a system topic of this broker",
                cfg.topic_name
            ));
        }
        for (what, n) in [
            ("readQueueNums", cfg.read_queue_nums),
            ("writeQueueNums", cfg.write_queue_nums),
        ] {
            if !(1..=QUEUES_PER_TOPIC_MAX).contains(&n) {
                return Err(format!(
                    "{what} {n} is not within 1..={QUEUES_PER_TOPIC_MAX}"
                ));
            }
        }
        if !(0..=7).contains(&cfg.perm) {
            return Err(format!("perm {} is not a PermName value (0–7)", cfg.perm));
        }
        if self.topics.get(&cfg.topic_name) == Some(&cfg) {
            return Ok(false);
        }
        self.insert(cfg, now_ms);
        Ok(true)
    }

    /// DELETE_TOPIC_IN_BROKER: forgets the topic's config. Returns whether it existed.
    /// System topics cannot be deleted.
    pub fn remove(&mut self, topic_name: &str, now_ms: i64) -> bool {
        if self.system.iter().any(|s| s == topic_name) {
            return false;
        }
        let existed = self.topics.remove(topic_name).is_some();
        if existed {
            self.version = self.version.next(now_ms);
        }
        existed
    }

    /// The whole table (GET_ALL_TOPIC_CONFIG body, registration body).
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        TopicConfigSerializeWrapper {
            topic_config_table: self.topics.clone(),
            data_version: self.version,
            ..TopicConfigSerializeWrapper::default()
        }
    }

    /// `topics.json`: the non-system topics and the DataVersion, standard JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut wrapper = self.wrapper();
        wrapper
            .topic_config_table
            .retain(|name, _| !self.system.contains(name));
        lenient::to_json(&wrapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auto_create: bool) -> TopicSettings {
        TopicSettings {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a-0".into(),
            auto_create,
            default_queue_nums: 8,
            broker_permission: 6,
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("TopicTest").is_ok());
        assert!(validate_name("ns%Topic|x_y-1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").unwrap_err().contains("illegal"));
        assert!(validate_name("中文").is_err());
        assert!(validate_name(&"a".repeat(128)).unwrap_err().contains("127"));
        assert!(validate_name(&format!("%RETRY%{}", "g".repeat(200))).is_ok());
        assert!(is_send_forbidden("SCHEDULE_TOPIC_XXXX"));
        assert!(is_send_forbidden("rmq_sys_wheel_timer"));
        assert!(!is_send_forbidden("TopicTest"));
    }

    #[test]
    fn system_topics_and_auto_create() {
        let mut t = TopicTable::open(&settings(true), None, 1).unwrap();
        let tbw = t.get(DEFAULT_TOPIC).unwrap();
        assert_eq!((tbw.read_queue_nums, tbw.perm), (8, 7));
        let v0 = t.data_version();
        let (cfg, created) = t.for_send("TopicTest", DEFAULT_TOPIC, 4, 5).unwrap();
        assert!(created.is_some());
        assert_eq!(
            (cfg.read_queue_nums, cfg.write_queue_nums, cfg.perm),
            (4, 4, 6)
        );
        assert!(t.data_version().counter > v0.counter);
        let (_, again) = t.for_send("TopicTest", DEFAULT_TOPIC, 4, 6).unwrap();
        assert!(again.is_none());
        let (big, _) = t.for_send("Big", DEFAULT_TOPIC, 64, 6).unwrap();
        assert_eq!(big.write_queue_nums, 8);
        let (retry, _) = t.for_send("%RETRY%g", DEFAULT_TOPIC, 4, 6).unwrap();
        assert_eq!(retry.write_queue_nums, 1);
        assert_eq!(t.for_send("X", "Nope", 4, 7), Err(SendTopicError::NotExist));

        let mut off = TopicTable::open(&settings(false), None, 1).unwrap();
        assert!(off.get(DEFAULT_TOPIC).is_none());
        assert_eq!(
            off.for_send("X", DEFAULT_TOPIC, 4, 2),
            Err(SendTopicError::NotExist)
        );
    }

    #[test]
    fn retry_dlq_upsert_remove() {
        let mut t = TopicTable::open(&settings(true), None, 1).unwrap();
        assert!(t.ensure_retry("g", 1, 2).is_some());
        assert!(t.ensure_retry("g", 1, 3).is_none());
        assert_eq!(t.get("%DLQ%g"), None);
        t.ensure_dlq("g", 4);
        assert_eq!(t.get("%DLQ%g").unwrap().perm, 6);
        let cfg = topic("Admin", 16, 6);
        assert_eq!(t.upsert(cfg.clone(), 5), Ok(true));
        assert_eq!(t.upsert(cfg.clone(), 6), Ok(false));
        assert!(t.upsert(topic("bad name", 1, 6), 6).is_err());
        assert!(t.upsert(topic("Q", 0, 6), 6).is_err());
        assert!(t.upsert(topic("P", 1, 9), 6).is_err());
        assert!(t.upsert(topic(DEFAULT_TOPIC, 1, 6), 6).is_err());
        assert!(t.remove("Admin", 7));
        assert!(!t.remove("Admin", 8));
        assert!(!t.remove(DEFAULT_TOPIC, 8));
    }

    #[test]
    fn persistence_keeps_user_topics_only() {
        let mut t = TopicTable::open(&settings(true), None, 1).unwrap();
        t.for_send("TopicTest", DEFAULT_TOPIC, 4, 2).unwrap();
        let bytes = t.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains("TopicTest") && !text.contains(DEFAULT_TOPIC),
            "{text}"
        );
        let back = TopicTable::open(&settings(false), Some(&bytes), 3).unwrap();
        assert_eq!(back.get("TopicTest").unwrap().write_queue_nums, 4);
        assert!(back.get(DEFAULT_TOPIC).is_none());
        assert!(back.data_version().counter > t.data_version().counter);
        assert!(TopicTable::open(&settings(true), Some(b"{oops"), 3).is_err());
    }
}
