//! Consume queues: one per (topic, queue id), mapping queue offsets to commit-log records in
//! O(1), plus the offset math of reads.
//!
//! Memory is bounded, RocketMQ-style: only the tail of a queue that is not yet in its files
//! lives in memory (a deque of 24-byte entries, at most one checkpoint interval of appends).
//! Entries behind it are read back from the files
//! `consumequeue/<topic>/<queueId>/<20-digit start index>` (`entries_per_file` 20-byte
//! entries each) with a positional read through the page cache ([`file_read`]). The
//! checkpoint writes entries behind the log and only then lets them leave memory
//! ([`ConsumeQueue::mark_persisted`]), so an entry is always either in memory or in a file.
//! The files are derived data: recovery rebuilds their tail from the log.
//!
//! ```text
//!  queue offsets   min ........ tail_start ............ next_offset
//!                  |  in files   |  in memory (tail)    |
//! ```

pub mod entry;
pub(crate) mod file_read;
pub(crate) mod rebuild;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use ringmq_codec::filter::TagFilter;

pub use entry::{CQ_ENTRY_SIZE, CqEntry};

use crate::disk::DiskFile;

/// Queue ids below this may live in [`QueueIds`]'s dense vector.
const DENSE_IDS_MAX: i32 = 1 << 16;

/// Consume queues of one topic by queue id, and the topic name its queues share.
///
/// Queue ids are small and dense in practice (`0..writeQueueNums`), so queues live in a
/// vector indexed by id; an id far beyond the queues already there (negative, or more than
/// twice their count past the end) goes to a map instead, so a stray id cannot make the
/// vector huge. With 10 000 queues, a hash map here cost a cache miss on its control bytes
/// and one on the bucket per append (`queue_mut` was 10 % of the shard's samples in
/// `perf`), and each queue had its own copy of the topic name, whose reference count every
/// append touched: one more miss.
#[derive(Debug)]
pub(crate) struct QueueIds<F> {
    dense: Vec<Option<ConsumeQueue<F>>>,
    sparse: HashMap<i32, ConsumeQueue<F>>,
    count: usize,
    /// The topic name, shared by every queue of the topic (set with the first queue).
    name: Option<Rc<str>>,
}

impl<F> Default for QueueIds<F> {
    fn default() -> Self {
        QueueIds {
            dense: Vec::new(),
            sparse: HashMap::new(),
            count: 0,
            name: None,
        }
    }
}

impl<F> QueueIds<F> {
    fn dense_slot(&self, id: i32) -> Option<usize> {
        let i = usize::try_from(id).ok()?;
        (i < self.dense.len()).then_some(i)
    }

    pub fn get(&self, id: &i32) -> Option<&ConsumeQueue<F>> {
        match self.dense_slot(*id) {
            Some(i) => self.dense.get(i)?.as_ref(),
            None => self.sparse.get(id),
        }
    }

    pub fn get_mut(&mut self, id: &i32) -> Option<&mut ConsumeQueue<F>> {
        match self.dense_slot(*id) {
            Some(i) => self.dense.get_mut(i)?.as_mut(),
            None => self.sparse.get_mut(id),
        }
    }

    pub fn contains_key(&self, id: &i32) -> bool {
        self.get(id).is_some()
    }

    /// The topic name as an `Rc` shared by the topic's queues: the one already kept, or
    /// `topic` (the first queue of the topic sets it).
    pub fn shared_name(&mut self, topic: &str) -> Rc<str> {
        self.name.get_or_insert_with(|| Rc::from(topic)).clone()
    }

    /// Inserts `q` under `id`; returns the queue it replaced.
    pub fn insert(&mut self, id: i32, mut q: ConsumeQueue<F>) -> Option<ConsumeQueue<F>> {
        match &self.name {
            None => self.name = Some(q.topic.clone()),
            Some(name) if **name == *q.topic => q.topic = name.clone(),
            Some(_) => {}
        }
        let old = match usize::try_from(id) {
            Ok(i) if i < self.dense.len() => self.dense.get_mut(i).and_then(|s| s.replace(q)),
            Ok(i) if id < DENSE_IDS_MAX && i <= 2 * self.count + 64 => {
                // Ids already in the map that the vector now covers move into it.
                let new_len = i + 1;
                self.dense.resize_with(new_len, || None);
                let moved: Vec<i32> = self
                    .sparse
                    .keys()
                    .copied()
                    .filter(|k| usize::try_from(*k).is_ok_and(|k| k < new_len))
                    .collect();
                for k in moved {
                    if let (Some(v), Ok(at)) = (self.sparse.remove(&k), usize::try_from(k))
                        && let Some(slot) = self.dense.get_mut(at)
                    {
                        *slot = Some(v);
                    }
                }
                self.dense.get_mut(i).and_then(|s| s.replace(q))
            }
            _ => self.sparse.insert(id, q),
        };
        if old.is_none() {
            self.count += 1;
        }
        old
    }

    /// The queue `id`, created by `make` (given the shared topic name) when missing.
    pub fn get_or_insert_with(
        &mut self,
        id: i32,
        topic: &str,
        make: impl FnOnce(Rc<str>) -> ConsumeQueue<F>,
    ) -> &mut ConsumeQueue<F> {
        if !self.contains_key(&id) {
            let name = self.shared_name(topic);
            self.insert(id, make(name));
        }
        self.get_mut(&id)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Number of queues.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Every (queue id, queue): the dense ids in order, then the others.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &ConsumeQueue<F>)> {
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter_map(|(i, q)| Some((i32::try_from(i).ok()?, q.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(k, q)| (*k, q)))
    }

    pub fn keys(&self) -> impl Iterator<Item = i32> + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ConsumeQueue<F>> {
        self.dense
            .iter_mut()
            .filter_map(|q| q.as_mut())
            .chain(self.sparse.values_mut())
    }
}

/// Every consume queue, by topic name and queue id.
pub(crate) type Topics<F> = HashMap<String, QueueIds<F>>;

/// Most entries one read examines, so a filter that matches nothing cannot stall a shard.
pub const READ_SCAN_ENTRIES_MAX: usize = 16 * 1024;

/// Entries fetched from a file per read while selecting (20 KiB).
const FILE_READ_ENTRIES: u64 = 1024;

/// One consume queue.
#[derive(Debug)]
pub struct ConsumeQueue<F> {
    pub topic: Rc<str>,
    pub queue_id: i32,
    /// First offset served.
    min: u64,
    /// Queue offset of `tail[0]`; offsets in `[min, tail_start)` are read from `files`.
    tail_start: u64,
    /// Entries not yet known to be in the files.
    tail: VecDeque<CqEntry>,
    /// Open files by start index.
    pub(crate) files: BTreeMap<u64, F>,
}

/// What a read selected: matching entries and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub entries: Vec<CqEntry>,
    pub examined: u64,
    pub next_offset: u64,
    pub total_bytes: u64,
}

impl<F> ConsumeQueue<F> {
    pub fn new(topic: Rc<str>, queue_id: i32) -> Self {
        ConsumeQueue {
            topic,
            queue_id,
            min: 0,
            tail_start: 0,
            tail: VecDeque::new(),
            files: BTreeMap::new(),
        }
    }

    /// A queue loaded from its files: offsets `[min, files_end)` are in `files`.
    pub(crate) fn from_files(
        topic: Rc<str>,
        queue_id: i32,
        min: u64,
        files_end: u64,
        files: BTreeMap<u64, F>,
    ) -> Self {
        ConsumeQueue {
            topic,
            queue_id,
            min: min.min(files_end),
            tail_start: files_end,
            tail: VecDeque::new(),
            files,
        }
    }

    /// A queue that restarts at `offset` with nothing before it (recovery found a gap
    /// between the files and the log; the log is the truth). Its files stay open: new
    /// entries overwrite them at their offsets.
    pub(crate) fn restart_at(&mut self, offset: u64) {
        self.min = offset;
        self.tail_start = offset;
        self.tail.clear();
    }

    /// Offset the next message gets (also the queue's max offset once everything is visible).
    pub fn next_offset(&self) -> u64 {
        self.tail_start + self.tail.len() as u64
    }

    pub fn min_offset(&self) -> u64 {
        self.min
    }

    /// Entries held in memory (not yet persisted).
    pub fn tail_len(&self) -> usize {
        self.tail.len()
    }

    pub fn push(&mut self, e: CqEntry) -> u64 {
        self.tail.push_back(e);
        self.next_offset() - 1
    }

    /// Appends recovered entries in one step (recovery's bulk rebuild).
    pub(crate) fn extend_tail(&mut self, entries: Vec<CqEntry>) {
        if self.tail.is_empty() {
            self.tail = VecDeque::from(entries);
        } else {
            self.tail.extend(entries);
        }
    }

    /// Max offset readers may see: entries whose record ends at or before `visible` (the
    /// log's written or durable end). Records are in log order within a queue, so the
    /// visible entries are a prefix; entries in files are always visible (they are persisted
    /// only below the durable end).
    pub fn visible_max(&self, visible: u64) -> u64 {
        match self.tail.back() {
            None => self.next_offset(),
            Some(last) if last.end() <= visible => self.next_offset(),
            Some(_) => self.tail_start + self.tail.partition_point(|e| e.end() <= visible) as u64,
        }
    }

    /// Drops entries at and after `offset` (recovery cut the log below them). Entries in
    /// files above it are forgotten; the next checkpoint overwrites them.
    pub fn truncate_from(&mut self, offset: u64) {
        if offset >= self.tail_start {
            let keep = (offset - self.tail_start).min(self.tail.len() as u64) as usize;
            self.tail.truncate(keep);
        } else {
            self.tail.clear();
            self.tail_start = offset;
        }
        if offset < self.min {
            self.min = offset;
        }
    }

    /// Entries not yet in the files whose records end at or before `upto`, with the offset
    /// of the first.
    pub fn unpersisted(&self, upto: u64) -> (u64, impl Iterator<Item = &CqEntry>) {
        (
            self.tail_start,
            self.tail.iter().take_while(move |e| e.end() <= upto),
        )
    }

    /// The files now hold every entry below `offset`: those entries leave memory. Called
    /// only after the file writes completed (a later read finds them in the page cache).
    pub fn mark_persisted(&mut self, offset: u64) {
        let n = offset
            .saturating_sub(self.tail_start)
            .min(self.tail.len() as u64);
        self.tail.drain(..n as usize);
        self.tail_start += n;
        shrink_deque(&mut self.tail);
    }

    pub fn is_empty(&self) -> bool {
        self.next_offset() == self.min
    }
}

impl<F: DiskFile> ConsumeQueue<F> {
    /// The entry at `offset`: from memory, or one positional read of its file.
    pub fn get(&self, offset: u64) -> Option<CqEntry> {
        if offset < self.min || offset >= self.next_offset() {
            return None;
        }
        if offset >= self.tail_start {
            let i = usize::try_from(offset - self.tail_start).ok()?;
            return self.tail.get(i).copied();
        }
        let mut out = Vec::with_capacity(1);
        self.read_files(offset, 1, &mut out);
        out.first().copied()
    }

    pub fn last(&self) -> Option<CqEntry> {
        match self.tail.back() {
            Some(e) => Some(*e),
            None => self.get(self.next_offset().checked_sub(1)?),
        }
    }

    /// Up to `n` consecutive entries from `from` (clamped to `min`); fewer at the end of the
    /// queue or where a file cannot be read.
    pub fn entries(&self, from: u64, n: u64) -> Vec<CqEntry> {
        let from = from.max(self.min);
        let end = self.next_offset().min(from.saturating_add(n));
        let mut out = Vec::new();
        let mut at = from;
        while at < end && at < self.tail_start {
            let got = self.read_files(at, end.min(self.tail_start) - at, &mut out);
            if got == 0 {
                return out;
            }
            at += got;
        }
        if at < end {
            let skip = (at - self.tail_start) as usize;
            out.extend(self.tail.iter().skip(skip).take((end - at) as usize));
        }
        out
    }

    /// Reads up to `n` entries from `from` (below `tail_start`) out of the one file holding
    /// `from`, appending them to `out`; returns how many it read.
    fn read_files(&self, from: u64, n: u64, out: &mut Vec<CqEntry>) -> u64 {
        let Some((start, file)) = self.files.range(..=from).next_back() else {
            return 0;
        };
        let mut n = n.min(self.tail_start.saturating_sub(from));
        if let Some((next, _)) = self.files.range(from + 1..).next() {
            n = n.min(next - from);
        }
        let mut buf = vec![0u8; n as usize * CQ_ENTRY_SIZE];
        let at = (from - start) * CQ_ENTRY_SIZE as u64;
        if !file_read::read_exact_sync(file, &mut buf, at) {
            return 0;
        }
        let before = out.len();
        out.extend(buf.chunks_exact(CQ_ENTRY_SIZE).map_while(CqEntry::decode));
        (out.len() - before) as u64
    }

    /// Drops entries whose records start below `min_phys` (retention deleted them). The queue
    /// keeps its max offset. Entries in files are found by binary search (offsets grow with
    /// physical offsets within a queue).
    pub fn drop_below(&mut self, min_phys: u64) {
        if self.min < self.tail_start {
            let (mut lo, mut hi) = (self.min, self.tail_start);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.get(mid).is_none_or(|e| e.phys < min_phys) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            self.min = lo;
            if lo < self.tail_start {
                return;
            }
        }
        while self.tail.front().is_some_and(|e| e.phys < min_phys) {
            self.tail.pop_front();
            self.tail_start += 1;
        }
        self.min = self.min.max(self.tail_start);
    }

    /// Drops every entry whose record ends after `end` (recovery cut the log at `end`).
    pub fn truncate_after_phys(&mut self, end: u64) {
        let keep = self.tail.partition_point(|e| e.end() <= end);
        if keep > 0 || self.tail_start == self.min {
            self.truncate_from(self.tail_start + keep as u64);
            return;
        }
        if self.last_in_files().is_some_and(|e| e.end() <= end) {
            self.truncate_from(self.tail_start);
            return;
        }
        let cut = self.partition_point(self.tail_start, |e| e.end() <= end);
        self.truncate_from(cut);
    }

    fn last_in_files(&self) -> Option<CqEntry> {
        self.get(self.tail_start.checked_sub(1)?)
    }

    /// Selects up to `max_msgs` messages / `max_bytes` bytes (at least one message) from
    /// `from`, below `visible_max`, matching `filter`.
    pub fn select(
        &self,
        from: u64,
        visible_max: u64,
        max_msgs: usize,
        max_bytes: u64,
        filter: &TagFilter,
    ) -> Selection {
        let mut sel = Selection {
            entries: Vec::new(),
            examined: 0,
            next_offset: from,
            total_bytes: 0,
        };
        let mut offset = from.max(self.min);
        // Start with a read the size of the request, grow it while a filter skips entries.
        let mut batch = (max_msgs as u64).clamp(16, FILE_READ_ENTRIES);
        while offset < visible_max
            && sel.entries.len() < max_msgs
            && (sel.examined as usize) < READ_SCAN_ENTRIES_MAX
        {
            let budget = (READ_SCAN_ENTRIES_MAX as u64 - sel.examined).min(batch);
            let got = self.entries(offset, (visible_max - offset).min(budget));
            if got.is_empty() {
                break;
            }
            for e in got {
                if sel.entries.len() >= max_msgs {
                    return sel;
                }
                if filter.matches_code(e.tag_code) {
                    if !sel.entries.is_empty() && sel.total_bytes + u64::from(e.size) > max_bytes {
                        return sel;
                    }
                    sel.total_bytes += u64::from(e.size);
                    sel.entries.push(e);
                }
                sel.examined += 1;
                offset += 1;
                sel.next_offset = offset;
            }
            batch = (batch * 2).min(FILE_READ_ENTRIES);
        }
        sel
    }

    /// Index of the first entry for which `pred` is false, over `[min, visible_max)`
    /// (binary search on a monotone predicate; an unreadable entry counts as false).
    pub fn partition_point(&self, visible_max: u64, mut pred: impl FnMut(&CqEntry) -> bool) -> u64 {
        let (mut lo, mut hi) = (self.min, visible_max.min(self.next_offset()).max(self.min));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.get(mid).is_some_and(|e| pred(&e)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// Gives memory back after a burst: a deque drained by the checkpoint keeps its capacity, and
/// 10 000 queues that each once held a checkpoint interval of entries would keep all of it.
fn shrink_deque<T>(d: &mut VecDeque<T>) {
    if d.capacity() > 64 && d.capacity() > 4 * d.len() {
        d.shrink_to(2 * d.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::{Disk, SimDisk, SimFile};

    #[test]
    fn queue_ids_keep_every_id_and_share_the_topic_name() {
        let mut qs: QueueIds<SimFile> = QueueIds::default();
        // A far id first (map), then dense ids that grow the vector past it, a negative id,
        // and an id beyond the dense bound.
        let ids = [100, 0, 1, 2, 70, 99, -3, DENSE_IDS_MAX + 5, 101, 5];
        for id in ids {
            let q = qs.get_or_insert_with(id, "T", |name| ConsumeQueue::new(name, id));
            q.push(CqEntry {
                phys: u64::from(id.unsigned_abs()),
                size: 1,
                tag_code: 0,
            });
        }
        assert_eq!(qs.len(), ids.len());
        let name = qs.shared_name("T");
        for id in ids {
            let q = qs.get(&id).unwrap();
            assert_eq!(q.queue_id, id);
            assert_eq!(q.next_offset(), 1);
            assert!(Rc::ptr_eq(&q.topic, &name));
        }
        assert!(qs.get(&3).is_none() && qs.get(&-1).is_none() && !qs.contains_key(&1000));
        let mut keys: Vec<i32> = qs.keys().collect();
        keys.sort_unstable();
        let mut want = ids.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(qs.values_mut().count(), ids.len());
        // Inserting over an id replaces it without counting it twice; a queue loaded with
        // its own copy of the name is given the shared one.
        let old = qs.insert(2, ConsumeQueue::new("T".into(), 2));
        assert_eq!(old.map(|q| q.next_offset()), Some(1));
        assert_eq!(qs.len(), ids.len());
        assert!(Rc::ptr_eq(&qs.get(&2).unwrap().topic, &name));
    }

    fn queue(n: u64) -> ConsumeQueue<SimFile> {
        let mut q = ConsumeQueue::new("T".into(), 0);
        for i in 0..n {
            q.push(CqEntry {
                phys: i * 100,
                size: 100,
                tag_code: (i % 2) as i64,
            });
        }
        q
    }

    /// Moves every entry below `upto` into files of `per_file` entries, as the checkpoint
    /// does, so the reads below go through the files.
    fn persist(q: &mut ConsumeQueue<SimFile>, upto: u64, per_file: u64) {
        let disk = SimDisk::new();
        let rt = compio::runtime::Runtime::new().unwrap();
        rt.block_on(disk.create_dir_all(std::path::Path::new("/q")))
            .unwrap();
        let (from, entries) = q.unpersisted(u64::MAX);
        let entries: Vec<CqEntry> = entries.copied().collect();
        let mut files = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            let off = from + i as u64;
            if off >= upto {
                break;
            }
            let start = off - off % per_file;
            let f = files.entry(start).or_insert_with(|| {
                let path = std::path::PathBuf::from(format!("/q/{start}"));
                rt.block_on(disk.open(&path)).unwrap()
            });
            let mut b = Vec::new();
            e.encode(&mut b);
            let fut = f.write_all_at(b, 0..CQ_ENTRY_SIZE, (off - start) * CQ_ENTRY_SIZE as u64);
            rt.block_on(fut).0.unwrap();
        }
        q.files = files;
        q.mark_persisted(upto);
    }

    fn check_offsets_visibility_and_truncation(mut q: ConsumeQueue<SimFile>) {
        assert_eq!(q.next_offset(), 10);
        assert_eq!(
            q.get(3),
            Some(CqEntry {
                phys: 300,
                size: 100,
                tag_code: 1
            })
        );
        assert_eq!(q.visible_max(1000), 10);
        assert_eq!(q.last().map(|e| e.phys), Some(900));
        q.drop_below(250);
        assert_eq!(q.min_offset(), 3);
        assert_eq!(q.get(2), None);
        assert_eq!(q.next_offset(), 10);
        assert_eq!(q.partition_point(10, |e| e.phys < 400), 4);
        q.truncate_after_phys(700);
        assert_eq!(q.next_offset(), 7);
        q.truncate_from(5);
        assert_eq!(q.next_offset(), 5);
        assert_eq!(q.partition_point(5, |e| e.phys < 400), 4);
        assert_eq!(q.entries(0, 100).len(), 2);
    }

    #[test]
    fn offsets_visibility_and_truncation() {
        let q = queue(10);
        assert_eq!(q.visible_max(550), 5);
        assert_eq!(q.visible_max(0), 0);
        check_offsets_visibility_and_truncation(q);
        // The same answers when most entries live in files of 4 entries.
        for upto in [1, 4, 6, 10] {
            let mut q = queue(10);
            persist(&mut q, upto, 4);
            assert_eq!(q.tail_len() as u64, 10 - upto);
            check_offsets_visibility_and_truncation(q);
        }
    }

    #[test]
    fn select_filters_and_bounds() {
        for upto in [0, 3, 7, 10] {
            let mut q = queue(10);
            persist(&mut q, upto, 3);
            let all = TagFilter::All;
            let s = q.select(2, 10, 3, u64::MAX, &all);
            assert_eq!(s.entries.len(), 3);
            assert_eq!(s.next_offset, 5);
            let s = q.select(2, 10, 32, 250, &all);
            assert_eq!(s.entries.len(), 2);
            assert_eq!(s.next_offset, 4);
            // The first message is returned even when larger than max_bytes.
            let s = q.select(2, 10, 32, 10, &all);
            assert_eq!(s.entries.len(), 1);
            let odd = TagFilter::Tags {
                tags: vec!["x".into()],
                codes: vec![1],
            };
            let s = q.select(0, 6, 32, u64::MAX, &odd);
            assert_eq!(
                s.entries.iter().map(|e| e.phys).collect::<Vec<_>>(),
                [100, 300, 500]
            );
            assert_eq!(s.next_offset, 6);
            let none = TagFilter::Tags {
                tags: vec!["y".into()],
                codes: vec![7],
            };
            let s = q.select(0, 10, 32, u64::MAX, &none);
            assert!(s.entries.is_empty());
            assert_eq!((s.examined, s.next_offset), (10, 10));
        }
    }
}
