//! Sealed key-index files, sorted by key hash for binary search.
//!
//! A journal file `index/<start>` fills in log order; once it holds `index_entries_per_file`
//! entries the checkpoint rewrites it as `index/sorted/<start>`: the same 24-byte entries
//! ordered by (key hash, physical offset), after one header slot. A lookup is then a binary
//! search (about 20 reads of 24 bytes for a million entries) plus a read of the run of equal
//! hashes, instead of a scan of the whole file.
//!
//! ```text
//!  0      4        6       8       16       24                      24 + 24·count
//!  +------+--------+-------+-------+--------+-----------------------+
//!  |magic |version |zero   | count | zero   | entries, sorted by    |
//!  | u32  | u16 =1 | u16   | u64   | u64    | (key hash, phys)      |
//!  +------+--------+-------+-------+--------+-----------------------+
//!  magic "RMXS" (0x524D5853), big-endian. The header is written and synced only after the
//!  entries were synced, so a file with a valid header is complete.
//! ```

use std::io;
use std::path::Path;

use super::{INDEX_ENTRY_SIZE, IndexEntry};
use crate::disk::DiskFile;

/// "RMXS".
pub const SORTED_MAGIC: u32 = 0x524D_5853;
/// The header takes one entry slot, so entry `i` is at `24 · (i + 1)`.
pub const SORTED_HEADER_LEN: usize = INDEX_ENTRY_SIZE;
const _: () = assert!(SORTED_HEADER_LEN == 4 + 2 + 2 + 8 + 8);

/// Entries read per step while collecting a run of equal hashes.
const RUN_READ_ENTRIES: u64 = 64;

/// Directory of the sorted files under the index directory.
pub const SORTED_DIR: &str = "sorted";

/// Whether a key-index file is a sorted one (by its directory).
pub fn is_sorted_path(path: &Path) -> bool {
    path.parent()
        .and_then(|d| d.file_name())
        .is_some_and(|n| n == SORTED_DIR)
}

pub fn encode_header(count: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(SORTED_HEADER_LEN);
    b.extend_from_slice(&SORTED_MAGIC.to_be_bytes());
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&0u64.to_be_bytes());
    b
}

/// The entry count of a complete sorted file, `None` for anything else.
pub fn decode_header(b: &[u8]) -> Option<u64> {
    let magic = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    let version = u16::from_be_bytes(b.get(4..6)?.try_into().ok()?);
    if magic != SORTED_MAGIC || version != 1 {
        return None;
    }
    Some(u64::from_be_bytes(b.get(8..16)?.try_into().ok()?))
}

/// The sorted body of a journal file's bytes (entries up to the first unwritten one).
pub fn sort_journal(journal: &[u8]) -> (Vec<u8>, u64) {
    let mut entries: Vec<IndexEntry> = journal
        .chunks_exact(INDEX_ENTRY_SIZE)
        .map_while(IndexEntry::decode)
        .collect();
    entries.sort_unstable_by_key(|e| (e.key_hash, e.phys));
    let mut out = Vec::with_capacity(entries.len() * INDEX_ENTRY_SIZE);
    for e in &entries {
        e.encode(&mut out);
    }
    (out, entries.len() as u64)
}

async fn entry_at<F: DiskFile>(f: &F, i: u64) -> io::Result<Option<IndexEntry>> {
    let at = SORTED_HEADER_LEN as u64 + i * INDEX_ENTRY_SIZE as u64;
    let (r, b) = f.read_exact_at(vec![0; INDEX_ENTRY_SIZE], at).await;
    r?;
    Ok(IndexEntry::decode(&b))
}

/// Physical offsets in a sorted file of `count` entries with key hash `hash` and store time
/// in `[begin, end]`, newest first, appended to `out`.
pub async fn lookup<F: DiskFile>(
    f: &F,
    count: u64,
    hash: u64,
    begin_ms: i64,
    end_ms: i64,
    out: &mut Vec<u64>,
) -> io::Result<()> {
    let (mut lo, mut hi) = (0u64, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry_at(f, mid).await?.is_some_and(|e| e.key_hash < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let mut found = Vec::new();
    let mut at = lo;
    'run: while at < count {
        let n = RUN_READ_ENTRIES.min(count - at);
        let off = SORTED_HEADER_LEN as u64 + at * INDEX_ENTRY_SIZE as u64;
        let (r, b) = f
            .read_exact_at(vec![0; n as usize * INDEX_ENTRY_SIZE], off)
            .await;
        r?;
        for e in b.chunks_exact(INDEX_ENTRY_SIZE).map(IndexEntry::decode) {
            match e {
                Some(e) if e.key_hash == hash => {
                    if e.store_timestamp >= begin_ms && e.store_timestamp <= end_ms {
                        found.push(e.phys);
                    }
                }
                _ => break 'run,
            }
        }
        at += n;
    }
    out.extend(found.into_iter().rev());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{Disk, SimDisk};

    #[test]
    fn header_sort_and_lookup() {
        assert_eq!(decode_header(&encode_header(7)), Some(7));
        assert_eq!(&encode_header(7)[..4], b"RMXS");
        assert_eq!(decode_header(&[0; 24]), None);
        let mut journal = Vec::new();
        for i in 0..100u64 {
            IndexEntry {
                key_hash: (i * 7) % 10 + 1,
                phys: 1000 + i,
                store_timestamp: i as i64,
            }
            .encode(&mut journal);
        }
        journal.extend_from_slice(&[0; 48]);
        let (body, count) = sort_journal(&journal);
        assert_eq!(count, 100);
        let disk = SimDisk::new();
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            disk.create_dir_all(std::path::Path::new("/i"))
                .await
                .unwrap();
            let f = disk.open(std::path::Path::new("/i/s")).await.unwrap();
            let mut bytes = encode_header(count);
            bytes.extend_from_slice(&body);
            let n = bytes.len();
            f.write_all_at(bytes, 0..n, 0).await.0.unwrap();
            for hash in 0..12u64 {
                let mut got = Vec::new();
                lookup(&f, count, hash, 10, 60, &mut got).await.unwrap();
                let mut want: Vec<u64> = (0..100u64)
                    .filter(|i| (i * 7) % 10 + 1 == hash && (10..=60).contains(i))
                    .map(|i| 1000 + i)
                    .collect();
                want.reverse();
                assert_eq!(got, want, "hash {hash}");
            }
        });
    }
}
