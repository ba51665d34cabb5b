//! Reads: consume-queue reads as commit-log byte ranges (for sendfile/splice), lookups by
//! physical offset, offset math of spec §3.7, and queries by key.

use ringmq_codec::filter::TagFilter;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::{RecordView, peek_header, peek_store_timestamp};

use super::{State, Store};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::index::{self, INDEX_ENTRY_SIZE, key_hash, sorted};
use crate::log::segment::segment_start;
use crate::queue::{ConsumeQueue, CqEntry};
use crate::types::{
    FileRange, FoundRecord, PhysOffset, QueueOffset, ReadResult, ReadStatus, TimeBoundary,
};

/// Index entries read per chunk by a key query (1.5 MiB).
const INDEX_READ_ENTRIES: u64 = 1 << 16;

/// Bytes read to find a record's store time (the fixed fields with two IPv6 hosts).
const RECORD_HEAD_LEN: usize = 100;

/// Longest span [`Store::records_of`] reads at once, and the gap bytes it tolerates.
const RUN_SPAN_MAX: u64 = 4 << 20;
const RUN_SLACK: u64 = 64 << 10;

fn queue<'a, F>(st: &'a State<F>, topic: &str, queue_id: i32) -> Option<&'a ConsumeQueue<F>> {
    st.topics.get(topic)?.get(&queue_id)
}

impl<D: Disk> Store<D> {
    /// Up to `max_msgs` messages / `max_bytes` bytes (at least one message) of
    /// (`topic`, `queue_id`) from `from`, matching `filter`, as commit-log ranges. Adjacent
    /// records in one segment merge into one range. Only visible data is returned (written,
    /// or durable under `FlushMode::Sync`).
    pub fn read(
        &self,
        topic: &str,
        queue_id: i32,
        from: QueueOffset,
        max_msgs: usize,
        max_bytes: u64,
        filter: &TagFilter,
    ) -> ReadResult<D::File> {
        let st = self.inner.st.borrow();
        let mut out = ReadResult {
            status: ReadStatus::NoMessageInQueue,
            ranges: Vec::new(),
            message_count: 0,
            total_bytes: 0,
            next_offset: QueueOffset(0),
            min_offset: QueueOffset(0),
            max_offset: QueueOffset(0),
        };
        let Some(q) = queue(&st, topic, queue_id) else {
            return out;
        };
        let min = q.min_offset();
        let max = q.visible_max(st.visible);
        out.min_offset = QueueOffset(min);
        out.max_offset = QueueOffset(max);
        let from = from.0;
        if max == 0 {
            return out;
        }
        if from < min {
            out.status = ReadStatus::OffsetTooSmall;
            out.next_offset = QueueOffset(min);
            return out;
        }
        if from == max {
            out.status = ReadStatus::OffsetOverflowOne;
            out.next_offset = QueueOffset(from);
            return out;
        }
        if from > max {
            out.status = ReadStatus::OffsetOverflowBadly;
            out.next_offset = QueueOffset(max);
            return out;
        }
        let sel = q.select(from, max, max_msgs.max(1), max_bytes, filter);
        out.next_offset = QueueOffset(sel.next_offset);
        out.message_count = sel.entries.len();
        out.total_bytes = sel.total_bytes;
        out.status = if sel.entries.is_empty() {
            ReadStatus::NoMatchedMessage
        } else {
            ReadStatus::Found
        };
        out.ranges = ranges(&st, &sel.entries, self.inner.cfg.segment_size);
        out
    }

    /// Min and (visible) max offset of a queue; (0, 0) for an unknown queue.
    pub fn queue_offsets(&self, topic: &str, queue_id: i32) -> (QueueOffset, QueueOffset) {
        let st = self.inner.st.borrow();
        queue(&st, topic, queue_id).map_or((QueueOffset(0), QueueOffset(0)), |q| {
            (
                QueueOffset(q.min_offset()),
                QueueOffset(q.visible_max(st.visible)),
            )
        })
    }

    /// The consume-queue entry at `offset`, if it exists and is visible.
    pub fn queue_entry(&self, topic: &str, queue_id: i32, offset: QueueOffset) -> Option<CqEntry> {
        let st = self.inner.st.borrow();
        let q = queue(&st, topic, queue_id)?;
        (offset.0 < q.visible_max(st.visible))
            .then(|| q.get(offset.0))
            .flatten()
    }

    /// Reads the bytes of a range returned by [`Store::read`] (the copying path).
    pub async fn read_range(&self, range: &FileRange<D::File>) -> Result<Vec<u8>, StorageError> {
        let (r, buf) = range
            .file
            .read_exact_at(vec![0; range.len as usize], range.file_offset)
            .await;
        r.map_err(|e| StorageError::io("read", range.file.path(), range.file_offset, e))?;
        Ok(buf)
    }

    /// Reads `len` visible bytes of the log at `phys`.
    async fn read_log(&self, phys: u64, len: usize) -> Result<Option<Vec<u8>>, StorageError> {
        let file = {
            let st = self.inner.st.borrow();
            if phys < st.log.min || phys + len as u64 > st.visible {
                return Ok(None);
            }
            let seg = segment_start(phys, self.inner.cfg.segment_size);
            match st.log.segments.get(&seg) {
                Some(f) => f.clone(),
                None => return Ok(None),
            }
        };
        let off = phys % self.inner.cfg.segment_size;
        let (r, buf) = file.read_exact_at(vec![0; len], off).await;
        r.map_err(|e| StorageError::io("read", file.path(), off, e))?;
        Ok(Some(buf))
    }

    /// The whole stored record at physical offset `phys` (VIEW_MESSAGE_BY_ID, send-back,
    /// END_TRANSACTION), if a visible record starts there.
    pub async fn record_at(&self, phys: PhysOffset) -> Result<Option<Vec<u8>>, StorageError> {
        let Some(head) = self.read_log(phys.0, 8).await? else {
            return Ok(None);
        };
        let Some((total, _)) = peek_header(&head) else {
            return Ok(None);
        };
        if total <= 0 {
            return Ok(None);
        }
        let Some(bytes) = self.read_log(phys.0, total as usize).await? else {
            return Ok(None);
        };
        match crate::log::record::verify(&bytes, phys.0) {
            Ok(_) => Ok(Some(bytes)),
            Err(_) => Ok(None),
        }
    }

    /// The records of consume-queue `entries` (in their order; `None` where no valid record
    /// is at an entry's place any more), read with one read per run of records that lie
    /// close together in one segment instead of two reads per record as [`Store::record_at`]
    /// needs. The delay and timer lanes re-put thousands of records per batch; their records
    /// sit near each other in the log, interleaved with other lanes' copies.
    pub async fn records_of(
        &self,
        entries: &[CqEntry],
    ) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut out: Vec<Option<Vec<u8>>> = vec![None; entries.len()];
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_unstable_by_key(|&i| entries.get(i).map_or(0, |e| e.phys));
        let seg_size = self.inner.cfg.segment_size;
        let mut rest = order.as_slice();
        while let Some((&first, _)) = rest.split_first() {
            let Some(head) = entries.get(first) else {
                break;
            };
            let (start, seg) = (head.phys, segment_start(head.phys, seg_size));
            // A run: records of one segment whose span stays within RUN_SPAN_MAX and is at
            // most twice their own bytes (so sparse entries are not read with the gaps).
            let (mut end, mut bytes, mut n) = (head.end(), u64::from(head.size), 1);
            for &i in rest.iter().skip(1) {
                let Some(e) = entries.get(i) else { break };
                let new_end = end.max(e.end());
                let new_bytes = bytes + u64::from(e.size);
                if segment_start(e.phys, seg_size) != seg
                    || new_end - start > RUN_SPAN_MAX
                    || new_end - start > 2 * new_bytes + RUN_SLACK
                {
                    break;
                }
                (end, bytes, n) = (new_end, new_bytes, n + 1);
            }
            let (run, tail) = rest.split_at(n.min(rest.len()));
            rest = tail;
            let whole = self.read_log(start, (end - start) as usize).await?;
            for &i in run {
                let Some(e) = entries.get(i) else { continue };
                let from = (e.phys - start) as usize;
                let rec = match &whole {
                    Some(buf) => buf.get(from..from + e.size as usize).map(<[u8]>::to_vec),
                    // Part of the run is not readable (an entry past the visible end or
                    // below the oldest segment): read its records one by one.
                    None => self.read_log(e.phys, e.size as usize).await?,
                };
                if let Some(rec) = rec
                    && crate::log::record::verify(&rec, e.phys).is_ok()
                    && let Some(slot) = out.get_mut(i)
                {
                    *slot = Some(rec);
                }
            }
        }
        Ok(out)
    }

    async fn store_time_of(&self, e: &CqEntry) -> Result<i64, StorageError> {
        let len = RECORD_HEAD_LEN.min(e.size as usize);
        let head = self.read_log(e.phys, len).await?;
        Ok(head
            .as_deref()
            .and_then(peek_store_timestamp)
            .unwrap_or(i64::MIN))
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (spec §3.7) by binary search over store times.
    pub async fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
        boundary: TimeBoundary,
    ) -> Result<QueueOffset, StorageError> {
        let (min, max) = self.queue_offsets(topic, queue_id);
        let (min, max) = (min.0, max.0);
        if min == max {
            return Ok(QueueOffset(0));
        }
        // First offset whose store time is ≥ ts (lower) or > ts (upper).
        let first_at_least = |strict: bool| async move {
            let (mut lo, mut hi) = (min, max);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let Some(e) = self.queue_entry(topic, queue_id, QueueOffset(mid)) else {
                    break;
                };
                let t = self.store_time_of(&e).await?;
                let before = if strict {
                    t <= timestamp_ms
                } else {
                    t < timestamp_ms
                };
                if before { lo = mid + 1 } else { hi = mid }
            }
            Ok::<u64, StorageError>(lo)
        };
        match boundary {
            TimeBoundary::Lower => Ok(QueueOffset(first_at_least(false).await?)),
            TimeBoundary::Upper => {
                let after = first_at_least(true).await?;
                Ok(QueueOffset(if after == min { min } else { after - 1 }))
            }
            TimeBoundary::Closest => {
                let i = first_at_least(false).await?;
                if i >= max {
                    return Ok(QueueOffset(max - 1));
                }
                if i == min {
                    return Ok(QueueOffset(min));
                }
                let later = self.queue_entry(topic, queue_id, QueueOffset(i));
                let earlier = self.queue_entry(topic, queue_id, QueueOffset(i - 1));
                let (Some(l), Some(e)) = (later, earlier) else {
                    return Ok(QueueOffset(i));
                };
                let (tl, te) = (self.store_time_of(&l).await?, self.store_time_of(&e).await?);
                Ok(QueueOffset(if timestamp_ms - te <= tl - timestamp_ms {
                    i - 1
                } else {
                    i
                }))
            }
        }
    }

    /// Store time of the message at the queue's min offset (GET_EARLIEST_MSG_STORETIME);
    /// `None` for an empty queue.
    pub async fn earliest_store_time(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<Option<i64>, StorageError> {
        let (min, _) = self.queue_offsets(topic, queue_id);
        let Some(e) = self.queue_entry(topic, queue_id, min) else {
            return Ok(None);
        };
        Ok(Some(self.store_time_of(&e).await?))
    }

    /// Stored time of the message at `offset` of a queue, if visible.
    pub async fn store_time_at(
        &self,
        topic: &str,
        queue_id: i32,
        offset: QueueOffset,
    ) -> Result<Option<i64>, StorageError> {
        let Some(e) = self.queue_entry(topic, queue_id, offset) else {
            return Ok(None);
        };
        Ok(Some(self.store_time_of(&e).await?))
    }

    /// QUERY_MESSAGE (spec §3.9): records of `topic` whose KEYS contain `key` or whose
    /// UNIQ_KEY is `key`, stored in `[begin_ms, end_ms]`, newest first, at most `max`.
    pub async fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Result<Vec<FoundRecord>, StorageError> {
        // Collisions are filtered below, so ask for a few more candidates than needed.
        let want = max.saturating_mul(2).max(8);
        let (mut candidates, files) = {
            let st = self.inner.st.borrow();
            let files: Vec<(D::File, u64)> = st
                .index_files
                .values()
                .rev()
                .filter_map(|m| Some((m.file.clone()?, m.count)))
                .collect();
            (
                st.index.candidates(topic, key, begin_ms, end_ms, want),
                files,
            )
        };
        // Older entries are in the files (memory keeps only the unpersisted tail): newest
        // file first, each read backwards in chunks.
        let hash = key_hash(topic, key);
        for (file, count) in files {
            if candidates.len() >= want {
                break;
            }
            if sorted::is_sorted_path(file.path()) {
                sorted::lookup(&file, count, hash, begin_ms, end_ms, &mut candidates)
                    .await
                    .map_err(|e| StorageError::io("read", file.path(), 0, e))?;
                continue;
            }
            let mut hi = count;
            while hi > 0 && candidates.len() < want {
                let lo = hi.saturating_sub(INDEX_READ_ENTRIES);
                let buf = vec![0; ((hi - lo) as usize) * INDEX_ENTRY_SIZE];
                let (r, buf) = file.read_exact_at(buf, lo * INDEX_ENTRY_SIZE as u64).await;
                r.map_err(|e| StorageError::io("read", file.path(), lo, e))?;
                index::matches_in(&buf, hash, begin_ms, end_ms, &mut candidates);
                hi = lo;
            }
        }
        // An entry being persisted is in memory and in its file at once.
        let mut seen = std::collections::HashSet::new();
        candidates.retain(|p| seen.insert(*p));
        let mut out = Vec::new();
        for phys in candidates {
            if out.len() >= max {
                break;
            }
            let Some(bytes) = self.record_at(PhysOffset(phys)).await? else {
                continue;
            };
            let Ok(view) = RecordView::parse(&bytes) else {
                continue;
            };
            let matches = view.topic == topic
                && (properties::find(view.properties, keys::UNIQ_KEY) == Some(key)
                    || properties::business_keys(view.properties).any(|k| k == key));
            if matches {
                let store_timestamp = view.store_timestamp;
                out.push(FoundRecord {
                    phys_offset: PhysOffset(phys),
                    store_timestamp,
                    bytes,
                });
            }
        }
        Ok(out)
    }
}

/// Merges selected entries into per-segment contiguous ranges.
fn ranges<F: Clone>(st: &State<F>, entries: &[CqEntry], segment_size: u64) -> Vec<FileRange<F>> {
    let mut out: Vec<FileRange<F>> = Vec::new();
    for e in entries {
        let seg = segment_start(e.phys, segment_size);
        if let Some(last) = out.last_mut() {
            let last_end = last.phys_offset.0 + u64::from(last.len);
            if last_end == e.phys && segment_start(last.phys_offset.0, segment_size) == seg {
                last.len += e.size;
                continue;
            }
        }
        let Some(file) = st.log.segments.get(&seg) else {
            continue;
        };
        out.push(FileRange {
            file: file.clone(),
            file_offset: e.phys - seg,
            len: e.size,
            phys_offset: PhysOffset(e.phys),
        });
    }
    out
}
