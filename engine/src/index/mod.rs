//! Key index: message KEYS and UNIQ_KEY → physical offsets, queried by key and store-time
//! range (QUERY_MESSAGE, spec §3.9).
//!
//! The index key is `topic#key` hashed with 64-bit FNV-1a. Lookups return candidates: the
//! store reads each record and keeps the ones whose topic and key really match, so hash
//! collisions cost a read, never a wrong answer. Entries are appended to files under
//! `index/<20-digit first physical offset>` (FORMAT.md) behind the log, like consume queues,
//! and rebuilt from the log tail on recovery.
//!
//! ```text
//!  0              8                 16                 24
//!  +--------------+-----------------+------------------+
//!  | key hash u64 | phys offset i64 | store time i64   |   big-endian
//!  +--------------+-----------------+------------------+
//! ```

use std::collections::HashMap;

/// Bytes per index file entry.
pub const INDEX_ENTRY_SIZE: usize = 24;
const _: () = assert!(INDEX_ENTRY_SIZE == 8 + 8 + 8);

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub key_hash: u64,
    pub phys: u64,
    pub store_timestamp: i64,
}

impl IndexEntry {
    pub fn encode(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&self.key_hash.to_be_bytes());
        dst.extend_from_slice(&(self.phys as i64).to_be_bytes());
        dst.extend_from_slice(&self.store_timestamp.to_be_bytes());
    }

    /// `None` for a short slice or unwritten (all-zero) space.
    pub fn decode(b: &[u8]) -> Option<IndexEntry> {
        let key_hash = u64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
        let phys = i64::from_be_bytes(b.get(8..16)?.try_into().ok()?);
        let store_timestamp = i64::from_be_bytes(b.get(16..24)?.try_into().ok()?);
        if (key_hash == 0 && phys == 0 && store_timestamp == 0) || phys < 0 {
            return None;
        }
        Some(IndexEntry {
            key_hash,
            phys: phys as u64,
            store_timestamp,
        })
    }
}

/// FNV-1a 64 of `topic#key`, computed without building the string.
pub fn key_hash(topic: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic
        .bytes()
        .chain(std::iter::once(b'#'))
        .chain(key.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The offsets of one key hash: most keys (every UNIQ_KEY) have exactly one, kept inline so
/// an index of millions of unique keys costs no allocation per key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    One((u64, i64)),
    Many(Vec<(u64, i64)>),
}

impl Slot {
    fn as_slice(&self) -> &[(u64, i64)] {
        match self {
            Slot::One(pair) => std::slice::from_ref(pair),
            Slot::Many(v) => v,
        }
    }

    fn push(&mut self, pair: (u64, i64)) {
        match self {
            Slot::One(first) => *self = Slot::Many(vec![*first, pair]),
            Slot::Many(v) => v.push(pair),
        }
    }

    /// Keeps the entries whose offset satisfies `keep`; returns (removed, anything left).
    fn retain(&mut self, keep: impl Fn(u64) -> bool) -> (usize, bool) {
        match self {
            Slot::One((p, _)) => {
                if keep(*p) {
                    (0, true)
                } else {
                    (1, false)
                }
            }
            Slot::Many(v) => {
                let before = v.len();
                v.retain(|(p, _)| keep(*p));
                (before - v.len(), !v.is_empty())
            }
        }
    }
}

/// The in-memory key index.
#[derive(Debug, Default)]
pub struct KeyIndex {
    map: HashMap<u64, Slot>,
    /// Entries added since the last checkpoint, in log order.
    pub(crate) unpersisted: Vec<IndexEntry>,
    len: usize,
}

impl KeyIndex {
    pub fn new() -> Self {
        KeyIndex::default()
    }

    /// Makes room for `n` more keys (recovery knows how many entries it is about to load).
    pub fn reserve(&mut self, n: usize) {
        self.map.reserve(n);
    }

    /// Adds an entry (in log order).
    pub fn add(&mut self, e: IndexEntry, persist: bool) {
        let pair = (e.phys, e.store_timestamp);
        match self.map.entry(e.key_hash) {
            std::collections::hash_map::Entry::Occupied(mut o) => o.get_mut().push(pair),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Slot::One(pair));
            }
        }
        if persist {
            self.unpersisted.push(e);
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Candidate offsets for `topic#key` with store time in `[begin, end]`, newest first, at
    /// most `max`.
    pub fn candidates(
        &self,
        topic: &str,
        key: &str,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Vec<u64> {
        let Some(slot) = self.map.get(&key_hash(topic, key)) else {
            return Vec::new();
        };
        slot.as_slice()
            .iter()
            .rev()
            .filter(|(_, ts)| *ts >= begin_ms && *ts <= end_ms)
            .map(|(phys, _)| *phys)
            .take(max)
            .collect()
    }

    /// Drops entries for records below `min_phys` (retention).
    pub fn drop_below(&mut self, min_phys: u64) {
        let mut removed = 0;
        self.map.retain(|_, slot| {
            let (n, left) = slot.retain(|p| p >= min_phys);
            removed += n;
            left
        });
        self.unpersisted.retain(|e| e.phys >= min_phys);
        self.len -= removed;
    }

    /// Drops entries for records at or after `end` (recovery cut the log there).
    pub fn truncate_from(&mut self, end: u64) {
        let mut removed = 0;
        self.map.retain(|_, slot| {
            let (n, left) = slot.retain(|p| p < end);
            removed += n;
            left
        });
        self.unpersisted.retain(|e| e.phys < end);
        self.len -= removed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_key_and_time() {
        let mut ix = KeyIndex::new();
        for (i, key) in ["a", "b", "a", "a"].iter().enumerate() {
            ix.add(
                IndexEntry {
                    key_hash: key_hash("T", key),
                    phys: i as u64 * 10,
                    store_timestamp: i as i64,
                },
                true,
            );
        }
        assert_eq!(ix.candidates("T", "a", 0, 100, 10), [30, 20, 0]);
        assert_eq!(ix.candidates("T", "a", 1, 2, 10), [20]);
        assert_eq!(ix.candidates("T", "a", 0, 100, 1), [30]);
        assert!(ix.candidates("U", "a", 0, 100, 10).is_empty());
        ix.drop_below(5);
        assert_eq!(ix.candidates("T", "a", 0, 100, 10), [30, 20]);
        ix.truncate_from(30);
        assert_eq!(ix.candidates("T", "a", 0, 100, 10), [20]);
        assert_eq!(ix.len(), 2);
        let e = IndexEntry {
            key_hash: 7,
            phys: 8,
            store_timestamp: 9,
        };
        let mut b = Vec::new();
        e.encode(&mut b);
        assert_eq!(IndexEntry::decode(&b), Some(e));
        assert_eq!(IndexEntry::decode(&[0; 24]), None);
    }
}
