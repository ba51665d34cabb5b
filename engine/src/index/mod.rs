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

pub mod sorted;

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

/// The key index's memory: only the entries not yet in the index files (at most one
/// checkpoint interval of keys, in log order). Older entries are answered from the files by
/// the store (`Store::query_by_key`), so memory does not grow with the log.
///
/// A lookup in the tail is a linear scan: QUERY_MESSAGE is an operator's request, rare next
/// to appends, and a scan of a few hundred thousand 24-byte entries takes well under a
/// millisecond, while a hash map per key costs a heap slot on every append and dominated
/// recovery (24 % of a 4 GiB full scan in `perf`, before this change).
#[derive(Debug, Default)]
pub struct KeyIndex {
    /// Entries added since the last checkpoint, in log order.
    pub(crate) unpersisted: Vec<IndexEntry>,
}

impl KeyIndex {
    pub fn new() -> Self {
        KeyIndex::default()
    }

    /// Makes room for `n` more entries (recovery knows roughly how many it will add).
    pub fn reserve(&mut self, n: usize) {
        self.unpersisted.reserve(n);
    }

    /// Adds an entry (in log order) that is not yet in the files. `persist == false` means
    /// the entry is already in a file: files answer for it, so memory keeps nothing.
    pub fn add(&mut self, e: IndexEntry, persist: bool) {
        if persist {
            self.unpersisted.push(e);
        }
    }

    /// Entries held in memory.
    pub fn len(&self) -> usize {
        self.unpersisted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unpersisted.is_empty()
    }

    /// Candidate offsets in memory for `topic#key` with store time in `[begin, end]`, newest
    /// first, at most `max`.
    pub fn candidates(
        &self,
        topic: &str,
        key: &str,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Vec<u64> {
        let h = key_hash(topic, key);
        self.unpersisted
            .iter()
            .rev()
            .filter(|e| {
                e.key_hash == h && e.store_timestamp >= begin_ms && e.store_timestamp <= end_ms
            })
            .map(|e| e.phys)
            .take(max)
            .collect()
    }

    /// Drops entries for records below `min_phys` (retention).
    pub fn drop_below(&mut self, min_phys: u64) {
        self.unpersisted.retain(|e| e.phys >= min_phys);
    }

    /// Drops entries for records at or after `end` (recovery cut the log there).
    pub fn truncate_from(&mut self, end: u64) {
        self.unpersisted.retain(|e| e.phys < end);
    }

    /// The files now hold every entry for records below `upto` (a record boundary): they
    /// leave memory. By offset, not by count, so two overlapping checkpoints cannot drop
    /// entries that neither wrote.
    pub fn mark_persisted(&mut self, upto: u64) {
        let n = self.unpersisted.partition_point(|e| e.phys < upto);
        self.unpersisted.drain(..n);
        // Give a burst's memory back (the drained capacity would otherwise stay).
        if self.unpersisted.capacity() > 1024
            && self.unpersisted.capacity() > 4 * self.unpersisted.len()
        {
            self.unpersisted.shrink_to(2 * self.unpersisted.len());
        }
    }
}

/// Physical offsets of the entries of an index-file chunk (`INDEX_ENTRY_SIZE`-aligned bytes,
/// log order) matching `hash` with store time in `[begin, end]`, newest first, appended to
/// `out`. Unwritten space ends the chunk.
pub fn matches_in(bytes: &[u8], hash: u64, begin_ms: i64, end_ms: i64, out: &mut Vec<u64>) {
    let found: Vec<u64> = bytes
        .chunks_exact(INDEX_ENTRY_SIZE)
        .map_while(IndexEntry::decode)
        .filter(|e| {
            e.key_hash == hash && e.store_timestamp >= begin_ms && e.store_timestamp <= end_ms
        })
        .map(|e| e.phys)
        .collect();
    out.extend(found.into_iter().rev());
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
        ix.mark_persisted(15);
        assert_eq!(ix.candidates("T", "a", 0, 100, 10), [20]);
        ix.mark_persisted(25);
        assert!(ix.candidates("T", "a", 0, 100, 10).is_empty());
        let mut bytes = Vec::new();
        for (i, key) in ["a", "b", "a"].iter().enumerate() {
            IndexEntry {
                key_hash: key_hash("T", key),
                phys: 100 + i as u64,
                store_timestamp: i as i64,
            }
            .encode(&mut bytes);
        }
        bytes.extend_from_slice(&[0; INDEX_ENTRY_SIZE]);
        let mut out = Vec::new();
        matches_in(&bytes, key_hash("T", "a"), 0, 100, &mut out);
        assert_eq!(out, [102, 100]);
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
