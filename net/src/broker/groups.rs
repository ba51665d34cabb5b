//! Subscription-group configs of one shard (Java `SubscriptionGroupConfig`, spec §5.7):
//! whether a consumer group exists, may consume, how many retry queues and attempts it has.
//! Groups are created on first use when `autoCreateSubscriptionGroup` is on (the default),
//! and persisted as `subscriptionGroup.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ringmq_codec::body::lenient;
use ringmq_codec::body::topic_config::DataVersion;

/// Java's defaults for a new group.
pub const RETRY_QUEUE_NUMS_DEFAULT: i32 = 1;
pub const RETRY_MAX_TIMES_DEFAULT: i32 = 16;
/// Longest group name (5.x validates ≤ 120).
pub const GROUP_LEN_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupConfig {
    pub group_name: String,
    pub consume_enable: bool,
    pub consume_from_min_enable: bool,
    pub consume_broadcast_enable: bool,
    pub retry_queue_nums: i32,
    pub retry_max_times: i32,
    pub broker_id: i64,
    pub which_broker_when_consume_slowly: i64,
    pub notify_consumer_ids_changed_enable: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            group_name: String::new(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: RETRY_QUEUE_NUMS_DEFAULT,
            retry_max_times: RETRY_MAX_TIMES_DEFAULT,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
        }
    }
}

/// The file: `{"subscriptionGroupTable":{group:{…}},"dataVersion":{…}}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GroupFile {
    #[serde(deserialize_with = "lenient::null_as_default")]
    subscription_group_table: BTreeMap<String, GroupConfig>,
    data_version: DataVersion,
}

/// Checks a group name as Java does for topics (the same characters), so it can be embedded
/// in `%RETRY%<group>`.
pub fn validate_group(group: &str) -> Result<(), String> {
    if group.is_empty() {
        return Err("the consumer group name is empty".to_owned());
    }
    if group.len() > GROUP_LEN_MAX {
        return Err(format!(
            "the consumer group name is longer than {GROUP_LEN_MAX}"
        ));
    }
    let legal = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-');
    if !group.bytes().all(legal) {
        return Err(format!(
            "the consumer group [{}] contains illegal characters; allowed: ^[%|a-zA-Z0-9_-]+$",
            group.escape_debug()
        ));
    }
    Ok(())
}

#[derive(Debug, Default)]
pub struct GroupTable {
    groups: BTreeMap<String, GroupConfig>,
    version: DataVersion,
    auto_create: bool,
    dirty: bool,
}

impl GroupTable {
    pub fn open(auto_create: bool, saved: Option<&[u8]>) -> Result<GroupTable, String> {
        let file: GroupFile = match saved {
            Some(bytes) => {
                lenient::from_slice("subscriptionGroup.json", bytes).map_err(|e| e.to_string())?
            }
            None => GroupFile::default(),
        };
        Ok(GroupTable {
            groups: file.subscription_group_table,
            version: file.data_version,
            auto_create,
            dirty: false,
        })
    }

    /// The group's config, creating it with defaults when auto-creation is on. `None`: the
    /// group does not exist and may not be created (SUBSCRIPTION_GROUP_NOT_EXIST).
    pub fn find_or_create(&mut self, group: &str, now_ms: i64) -> Option<&GroupConfig> {
        if !self.groups.contains_key(group) {
            if !self.auto_create || validate_group(group).is_err() {
                return None;
            }
            let cfg = GroupConfig {
                group_name: group.to_owned(),
                ..GroupConfig::default()
            };
            self.groups.insert(group.to_owned(), cfg);
            self.version = self.version.next(now_ms);
            self.dirty = true;
        }
        self.groups.get(group)
    }

    pub fn get(&self, group: &str) -> Option<&GroupConfig> {
        self.groups.get(group)
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn take_snapshot(&mut self) -> Vec<u8> {
        self.dirty = false;
        let file = GroupFile {
            subscription_group_table: self.groups.clone(),
            data_version: self.version,
        };
        lenient::to_json(&file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_create_and_persist() {
        let mut t = GroupTable::open(true, None).unwrap();
        assert_eq!(t.find_or_create("g", 1).unwrap().retry_max_times, 16);
        assert!(t.is_dirty());
        assert!(t.find_or_create("bad group", 1).is_none());
        let bytes = t.take_snapshot();
        assert!(!t.is_dirty());
        let mut back = GroupTable::open(false, Some(&bytes)).unwrap();
        assert!(back.find_or_create("g", 2).is_some());
        assert!(back.find_or_create("h", 2).is_none());
        assert!(GroupTable::open(false, Some(b"[1]")).is_err());
    }
}
