//! Consumer offsets of one shard: (group, topic, queue id) → next offset to consume.
//!
//! Persisted as `consumerOffset.json` in Java's shape with standard JSON keys:
//! `{"offsetTable":{"<topic>@<group>":{"0":12,"1":7}}}`, written by [`write_atomically`]
//! every few seconds and at shutdown, so an operator reading the file sees what mqadmin shows.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    topic: String,
    group: String,
}

#[derive(Debug, Default)]
pub struct OffsetTable {
    table: HashMap<Key, BTreeMap<i32, i64>>,
    dirty: bool,
}

impl OffsetTable {
    /// Stores `offset` as the group's committed offset for the queue.
    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let key = Key {
            topic: topic.to_owned(),
            group: group.to_owned(),
        };
        let queues = self.table.entry(key).or_default();
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        let key = Key {
            topic: topic.to_owned(),
            group: group.to_owned(),
        };
        self.table.get(&key)?.get(&queue_id).copied()
    }

    /// Offsets of a group on a topic (for admin resets and consume stats).
    pub fn queues(&self, group: &str, topic: &str) -> Vec<(i32, i64)> {
        let key = Key {
            topic: topic.to_owned(),
            group: group.to_owned(),
        };
        self.table
            .get(&key)
            .map(|q| q.iter().map(|(&q, &o)| (q, o)).collect())
            .unwrap_or_default()
    }

    /// Groups that committed offsets on `topic`.
    pub fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .table
            .keys()
            .filter(|k| k.topic == topic)
            .map(|k| k.group.clone())
            .collect();
        groups.sort();
        groups
    }

    /// Forgets every offset of a deleted topic.
    pub fn remove_topic(&mut self, topic: &str) {
        let before = self.table.len();
        self.table.retain(|k, _| k.topic != topic);
        self.dirty |= self.table.len() != before;
    }

    /// Whether anything changed since the last [`OffsetTable::take_snapshot`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Serializes the table and clears the dirty mark.
    pub fn take_snapshot(&mut self) -> Vec<u8> {
        self.dirty = false;
        self.encode()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut sorted: Vec<(&Key, &BTreeMap<i32, i64>)> = self.table.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let mut table = serde_json::Map::new();
        for (key, queues) in sorted {
            let inner: serde_json::Map<String, serde_json::Value> = queues
                .iter()
                .map(|(q, o)| (q.to_string(), (*o).into()))
                .collect();
            table.insert(format!("{}@{}", key.topic, key.group), inner.into());
        }
        let root = serde_json::json!({ "offsetTable": table });
        serde_json::to_vec_pretty(&root).unwrap_or_default()
    }

    /// Parses a file written by [`OffsetTable::encode`]. Keys are split at the last `@`
    /// because topics cannot contain `@` but namespaced groups can contain `%`.
    pub fn decode(bytes: &[u8]) -> Result<OffsetTable, String> {
        let root: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("consumer offsets: {e}"))?;
        let mut out = OffsetTable::default();
        let Some(table) = root.get("offsetTable").and_then(|t| t.as_object()) else {
            return Ok(out);
        };
        for (key, queues) in table {
            let (topic, group) = key
                .split_once('@')
                .ok_or_else(|| format!("consumer offsets: key {key:?} is not topic@group"))?;
            let Some(queues) = queues.as_object() else {
                continue;
            };
            for (queue, offset) in queues {
                let queue_id: i32 = queue
                    .parse()
                    .map_err(|_| format!("consumer offsets: queue id {queue:?}"))?;
                let offset = offset
                    .as_i64()
                    .ok_or_else(|| format!("consumer offsets: offset of {key} {queue}"))?;
                out.commit(group, topic, queue_id, offset);
            }
        }
        out.dirty = false;
        Ok(out)
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file: write a
/// temporary sibling, optionally `fsync` it, then rename over the target.
pub fn write_atomically(path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_data()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if sync && let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_query_and_round_trip() {
        let mut t = OffsetTable::default();
        assert!(!t.is_dirty());
        t.commit("g", "T", 0, 12);
        t.commit("g", "T", 3, 7);
        t.commit("ns%g", "%RETRY%ns%g", 0, 1);
        assert!(t.is_dirty());
        assert_eq!(t.query("g", "T", 3), Some(7));
        assert_eq!(t.query("g", "T", 1), None);
        let bytes = t.take_snapshot();
        assert!(!t.is_dirty());
        t.commit("g", "T", 3, 7);
        assert!(!t.is_dirty(), "same value is not a change");
        let back = OffsetTable::decode(&bytes).unwrap();
        assert_eq!(back.query("g", "T", 0), Some(12));
        assert_eq!(back.query("ns%g", "%RETRY%ns%g", 0), Some(1));
        assert_eq!(back.queues("g", "T"), vec![(0, 12), (3, 7)]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("\"T@g\""), "{text}");
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("ringmq-offsets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("consumerOffset.json");
        write_atomically(&path, b"one", true).unwrap();
        write_atomically(&path, b"two", false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
