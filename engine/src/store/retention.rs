//! Retention executor: measures the disk, asks [`crate::retention::decide`], deletes the
//! chosen segments, and drops consume-queue and index entries below the new minimum.

use super::{Inner, Store};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::log::segment::segment_name;
use crate::retention::{SegmentAge, decide};

/// Hour of day (local time) of `now_ms`.
fn local_hour(now_ms: i64) -> u8 {
    let t: libc::time_t = (now_ms / 1000) as libc::time_t;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: `t` and `tm` are valid for the call; localtime_r is thread-safe.
    let ok = unsafe { !libc::localtime_r(&t, tm.as_mut_ptr()).is_null() };
    if !ok {
        return ((now_ms / 3_600_000) % 24) as u8;
    }
    // SAFETY: localtime_r succeeded and filled `tm`.
    let tm = unsafe { tm.assume_init() };
    tm.tm_hour.clamp(0, 23) as u8
}

/// Store time of the first record of a segment, read from its head when not known.
async fn first_store_time<D: Disk>(inner: &Inner<D>, seg: u64) -> Option<i64> {
    if let Some(ts) = inner.st.borrow().log.first_ts.get(&seg) {
        return Some(*ts);
    }
    let file = inner.st.borrow().log.segments.get(&seg).cloned()?;
    let (r, head) = file.read_exact_at(vec![0; 100], 0).await;
    r.ok()?;
    let ts = match ringmq_codec::message::record::peek_header(&head) {
        Some((_, magic)) if magic == ringmq_codec::message::record::MAGIC_BLANK => None,
        _ => ringmq_codec::message::record::peek_store_timestamp(&head),
    }?;
    inner.st.borrow_mut().log.first_ts.insert(seg, ts);
    Some(ts)
}

/// One retention pass. Returns the deleted segment starts.
pub(crate) async fn run_once<D: Disk>(inner: &Inner<D>) -> Result<Vec<u64>, StorageError> {
    let space = inner
        .disk
        .space(&inner.cfg.root)
        .map_err(|e| StorageError::io("statvfs", &inner.cfg.root, 0, e))?;
    let used = space.used_ratio();
    let now = inner.clock.now_ms();
    let size = inner.cfg.segment_size;
    let starts: Vec<u64> = inner.st.borrow().log.segments.keys().copied().collect();
    let active = segment_start_of_end(inner);
    // A closed segment's age is the store time of the next segment's first record.
    let mut closed = Vec::new();
    for pair in starts.windows(2) {
        let (seg, next) = match pair {
            [a, b] => (*a, *b),
            _ => continue,
        };
        if seg >= active || next > active {
            break;
        }
        let Some(last_store_ms) = first_store_time(inner, next).await else {
            break;
        };
        closed.push(SegmentAge {
            start: seg,
            size_bytes: size,
            last_store_ms,
        });
    }
    let d = decide(
        &closed,
        now,
        local_hour(now),
        used,
        space.total_bytes,
        &inner.cfg.retention,
    );
    inner.st.borrow_mut().disk_full = d
        .refuse_appends
        .then_some((used, inner.cfg.retention.disk_full_ratio));
    for seg in &d.delete {
        delete_segment(inner, *seg).await?;
    }
    if !d.delete.is_empty() {
        drop_derived_below(inner).await?;
        let derived = inner.st.borrow().derived_upto;
        super::persist::write_checkpoint(inner, derived, false).await?;
    }
    Ok(d.delete)
}

fn segment_start_of_end<D: Disk>(inner: &Inner<D>) -> u64 {
    let end = inner.st.borrow().log.appended();
    end - end % inner.cfg.segment_size
}

async fn delete_segment<D: Disk>(inner: &Inner<D>, seg: u64) -> Result<(), StorageError> {
    let path = inner.cfg.commitlog_dir().join(segment_name(seg));
    {
        let mut st = inner.st.borrow_mut();
        st.log.segments.remove(&seg);
        st.log.first_ts.remove(&seg);
        st.log.min = st
            .log
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(seg + inner.cfg.segment_size);
    }
    inner
        .disk
        .remove(&path)
        .await
        .map_err(|e| StorageError::io("remove segment", &path, 0, e))?;
    let dir = inner.cfg.commitlog_dir();
    inner
        .disk
        .sync_dir(&dir)
        .await
        .map_err(|e| StorageError::io("sync directory", &dir, 0, e))
}

/// Consume queues and the index follow the log: entries below the new minimum go, and files
/// that only held such entries are deleted (a queue keeps its last file, which carries its
/// max offset).
async fn drop_derived_below<D: Disk>(inner: &Inner<D>) -> Result<(), StorageError> {
    let per_file = inner.cfg.cq_entries_per_file;
    let mut doomed = Vec::new();
    {
        let mut st = inner.st.borrow_mut();
        let min = st.log.min;
        for queues in st.topics.values_mut() {
            for q in queues.values_mut() {
                q.drop_below(min);
                let first_live = q.min_offset() - q.min_offset() % per_file;
                let last_file = q.files.keys().next_back().copied();
                let old: Vec<u64> = q
                    .files
                    .range(..first_live)
                    .map(|(s, _)| *s)
                    .filter(|s| Some(*s) != last_file)
                    .collect();
                for s in old {
                    if let Some(f) = q.files.remove(&s) {
                        doomed.push(f.path().to_path_buf());
                    }
                }
            }
        }
        st.index.drop_below(min);
        let old: Vec<u64> = {
            let keys: Vec<u64> = st.index_files.keys().copied().collect();
            keys.windows(2)
                .filter_map(|w| match w {
                    [a, b] if *b <= min => Some(*a),
                    _ => None,
                })
                .collect()
        };
        for s in old {
            if let Some(meta) = st.index_files.remove(&s) {
                // The journal, or the sorted file that replaced it.
                doomed.push(inner.cfg.index_dir().join(segment_name(s)));
                if let Some(f) = meta.file {
                    doomed.push(f.path().to_path_buf());
                }
            }
        }
    }
    for p in doomed {
        inner
            .disk
            .remove(&p)
            .await
            .map_err(|e| StorageError::io("remove", &p, 0, e))?;
    }
    Ok(())
}

impl<D: Disk> Store<D> {
    /// Runs one retention pass now (the driver also runs one every `retention_interval_ms`).
    /// Returns the start offsets of the deleted segments.
    pub async fn run_retention(&self) -> Result<Vec<u64>, StorageError> {
        run_once(&self.inner).await
    }

    /// Whether appends are refused because the disk is above the hard limit.
    pub fn is_disk_full(&self) -> bool {
        self.inner.st.borrow().disk_full.is_some()
    }
}
