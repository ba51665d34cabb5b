//! Consumer offsets of one shard: (group, topic, queue id) → next offset to consume.
//!
//! Persisted as `consumerOffset.json` in Java's shape with standard JSON keys:
//! `{"offsetTable":{"<topic>@<group>":{"0":12,"1":7}}}`, written by [`write_atomically`]
//! every few seconds and at shutdown, so an operator reading the file sees what mqadmin shows.
//!
//! It also holds the pending admin resets (INVOKE_BROKER_TO_RESET_OFFSET, spec §3.4 step 4
//! last row): a reset both moves the committed offset and stays pending until the group's
//! next pull of that queue, which is answered PULL_OFFSET_MOVED with the reset target. While a
//! reset is pending, client commits of that queue are dropped: they carry an offset from
//! before the reset and would undo it. Pending resets are saved in the same file under
//! `resetOffsetTable`, so a restart does not let a stale client overwrite the reset.

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
    /// Pending admin resets: (topic, group) → queue id → reset target.
    resets: HashMap<Key, BTreeMap<i32, i64>>,
    dirty: bool,
}

fn key(group: &str, topic: &str) -> Key {
    Key {
        topic: topic.to_owned(),
        group: group.to_owned(),
    }
}

impl OffsetTable {
    /// Stores `offset` as the group's committed offset for the queue, unless an admin reset
    /// of that queue is pending (see the module doc); returns whether it was stored.
    pub fn commit(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) -> bool {
        if self.pending_reset(group, topic, queue_id).is_some() {
            return false;
        }
        self.store(group, topic, queue_id, offset);
        true
    }

    fn store(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let queues = self.table.entry(key(group, topic)).or_default();
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    /// An admin reset: the committed offset becomes `offset` and the reset stays pending
    /// until [`OffsetTable::take_reset`] (the group's next pull of the queue).
    pub fn reset(&mut self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        self.store(group, topic, queue_id, offset);
        let queues = self.resets.entry(key(group, topic)).or_default();
        if queues.insert(queue_id, offset) != Some(offset) {
            self.dirty = true;
        }
    }

    pub fn pending_reset(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        // Every pull and commit asks; resets are rare, so skip building the key when none is.
        if self.resets.is_empty() {
            return None;
        }
        self.resets.get(&key(group, topic))?.get(&queue_id).copied()
    }

    /// Removes and returns the pending reset of the queue, if any.
    pub fn take_reset(&mut self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        if self.resets.is_empty() {
            return None;
        }
        let k = key(group, topic);
        let queues = self.resets.get_mut(&k)?;
        let target = queues.remove(&queue_id)?;
        if queues.is_empty() {
            self.resets.remove(&k);
        }
        self.dirty = true;
        Some(target)
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table.get(&key(group, topic))?.get(&queue_id).copied()
    }

    /// Offsets of a group on a topic (for admin resets and consume stats).
    pub fn queues(&self, group: &str, topic: &str) -> Vec<(i32, i64)> {
        self.table
            .get(&key(group, topic))
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
        let before = self.table.len() + self.resets.len();
        self.table.retain(|k, _| k.topic != topic);
        self.resets.retain(|k, _| k.topic != topic);
        self.dirty |= self.table.len() + self.resets.len() != before;
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
        let mut root = serde_json::Map::new();
        root.insert("offsetTable".to_owned(), encode_table(&self.table));
        if !self.resets.is_empty() {
            root.insert("resetOffsetTable".to_owned(), encode_table(&self.resets));
        }
        serde_json::to_vec_pretty(&serde_json::Value::Object(root)).unwrap_or_default()
    }

    /// Parses a file written by [`OffsetTable::encode`]. Keys are split at the last `@`
    /// because topics cannot contain `@` but namespaced groups can contain `%`.
    pub fn decode(bytes: &[u8]) -> Result<OffsetTable, String> {
        let root: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("consumer offsets: {e}"))?;
        let mut out = OffsetTable::default();
        if let Some(table) = root.get("offsetTable") {
            out.table = decode_table(table)?;
        }
        if let Some(resets) = root.get("resetOffsetTable") {
            out.resets = decode_table(resets)?;
        }
        Ok(out)
    }
}

/// `{"<topic>@<group>":{"<queue id>":offset}}`, keys sorted.
fn encode_table(table: &HashMap<Key, BTreeMap<i32, i64>>) -> serde_json::Value {
    let mut sorted: Vec<(&Key, &BTreeMap<i32, i64>)> = table.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = serde_json::Map::new();
    for (key, queues) in sorted {
        let inner: serde_json::Map<String, serde_json::Value> = queues
            .iter()
            .map(|(q, o)| (q.to_string(), (*o).into()))
            .collect();
        out.insert(format!("{}@{}", key.topic, key.group), inner.into());
    }
    out.into()
}

fn decode_table(value: &serde_json::Value) -> Result<HashMap<Key, BTreeMap<i32, i64>>, String> {
    let mut out: HashMap<Key, BTreeMap<i32, i64>> = HashMap::new();
    let Some(table) = value.as_object() else {
        return Ok(out);
    };
    for (k, queues) in table {
        let (topic, group) = k
            .split_once('@')
            .ok_or_else(|| format!("consumer offsets: key {k:?} is not topic@group"))?;
        let Some(queues) = queues.as_object() else {
            continue;
        };
        for (queue, offset) in queues {
            let queue_id: i32 = queue
                .parse()
                .map_err(|_| format!("consumer offsets: queue id {queue:?}"))?;
            let offset = offset
                .as_i64()
                .ok_or_else(|| format!("consumer offsets: offset of {k} {queue}"))?;
            out.entry(key(group, topic))
                .or_default()
                .insert(queue_id, offset);
        }
    }
    Ok(out)
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
    fn a_pending_reset_holds_off_stale_commits_and_survives_a_round_trip() {
        let mut t = OffsetTable::default();
        assert!(t.commit("g", "T", 0, 40));
        t.take_snapshot();
        t.reset("g", "T", 0, 10);
        assert!(t.is_dirty());
        assert_eq!(t.query("g", "T", 0), Some(10));
        assert!(
            !t.commit("g", "T", 0, 41),
            "a stale client commit is dropped"
        );
        assert_eq!(t.query("g", "T", 0), Some(10));
        assert!(t.commit("g", "T", 1, 5), "other queues are not held");

        let back = OffsetTable::decode(&t.encode()).unwrap();
        assert_eq!(back.pending_reset("g", "T", 0), Some(10));
        assert_eq!(back.query("g", "T", 0), Some(10));
        assert!(!back.is_dirty());

        assert_eq!(t.take_reset("g", "T", 0), Some(10));
        assert_eq!(t.take_reset("g", "T", 0), None, "a reset is answered once");
        assert!(t.commit("g", "T", 0, 12));
        assert_eq!(t.query("g", "T", 0), Some(12));
        let text = String::from_utf8(t.encode()).unwrap();
        assert!(!text.contains("resetOffsetTable"), "{text}");

        t.reset("g", "T", 2, 3);
        t.remove_topic("T");
        assert_eq!(t.pending_reset("g", "T", 2), None);
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
