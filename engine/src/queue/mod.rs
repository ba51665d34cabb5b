//! Consume queues: one per (topic, queue id), mapping queue offsets to commit-log records in
//! O(1) (an index into a deque), plus the offset math of reads.
//!
//! All entries of a queue live in memory (20 bytes of disk, 24 of memory per message, what
//! RocketMQ keeps mapped) and in files of `entries_per_file` entries under
//! `consumequeue/<topic>/<queueId>/<20-digit start index>`, written behind the log by the
//! checkpoint. The files are derived data: recovery rebuilds their tail from the log.

pub mod entry;

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use ringmq_codec::filter::TagFilter;

pub use entry::{CQ_ENTRY_SIZE, CqEntry};

/// Most entries one read examines, so a filter that matches nothing cannot stall a shard.
pub const READ_SCAN_ENTRIES_MAX: usize = 16 * 1024;

/// One consume queue.
#[derive(Debug)]
pub struct ConsumeQueue<F> {
    pub topic: Rc<str>,
    pub queue_id: i32,
    /// Queue offset of `entries[0]`.
    min: u64,
    entries: VecDeque<CqEntry>,
    /// Entries below this queue offset are in the files.
    pub(crate) persisted: u64,
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
            entries: VecDeque::new(),
            persisted: 0,
            files: BTreeMap::new(),
        }
    }

    /// A queue loaded from files: `min` is the offset of the first entry kept.
    pub fn with_entries(
        topic: Rc<str>,
        queue_id: i32,
        min: u64,
        entries: VecDeque<CqEntry>,
    ) -> Self {
        let persisted = min + entries.len() as u64;
        ConsumeQueue {
            topic,
            queue_id,
            min,
            entries,
            persisted,
            files: BTreeMap::new(),
        }
    }

    /// Offset the next message gets (also the queue's max offset once everything is visible).
    pub fn next_offset(&self) -> u64 {
        self.min + self.entries.len() as u64
    }

    pub fn min_offset(&self) -> u64 {
        self.min
    }

    pub fn push(&mut self, e: CqEntry) -> u64 {
        self.entries.push_back(e);
        self.next_offset() - 1
    }

    pub fn get(&self, offset: u64) -> Option<CqEntry> {
        let i = usize::try_from(offset.checked_sub(self.min)?).ok()?;
        self.entries.get(i).copied()
    }

    pub fn last(&self) -> Option<CqEntry> {
        self.entries.back().copied()
    }

    /// Max offset readers may see: entries whose record ends at or before `visible` (the
    /// log's written or durable end). Records are in log order within a queue, so the
    /// visible entries are a prefix.
    pub fn visible_max(&self, visible: u64) -> u64 {
        match self.entries.back() {
            None => self.min,
            Some(last) if last.end() <= visible => self.next_offset(),
            Some(_) => self.min + self.entries.partition_point(|e| e.end() <= visible) as u64,
        }
    }

    /// Drops entries at and after `offset` (recovery cut the log below them).
    pub fn truncate_from(&mut self, offset: u64) {
        let keep = offset
            .saturating_sub(self.min)
            .min(self.entries.len() as u64) as usize;
        self.entries.truncate(keep);
        if offset < self.min {
            self.min = offset;
        }
        self.persisted = self.persisted.min(self.next_offset());
    }

    /// Drops entries whose records start below `min_phys` (retention deleted them). The queue
    /// keeps its max offset.
    pub fn drop_below(&mut self, min_phys: u64) {
        while self.entries.front().is_some_and(|e| e.phys < min_phys) {
            self.entries.pop_front();
            self.min += 1;
        }
    }

    /// Drops every entry whose record ends after `end` (recovery cut the log at `end`).
    pub fn truncate_after_phys(&mut self, end: u64) {
        let keep = self.entries.partition_point(|e| e.end() <= end);
        self.truncate_from(self.min + keep as u64);
    }

    /// Entries not yet in the files whose records end at or before `upto`, with the offset
    /// of the first.
    pub fn unpersisted(&self, upto: u64) -> (u64, impl Iterator<Item = &CqEntry>) {
        let from = self.persisted.max(self.min);
        let skip = (from - self.min) as usize;
        (
            from,
            self.entries
                .iter()
                .skip(skip)
                .take_while(move |e| e.end() <= upto),
        )
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
        while offset < visible_max
            && sel.entries.len() < max_msgs
            && (sel.examined as usize) < READ_SCAN_ENTRIES_MAX
        {
            let Some(e) = self.get(offset) else { break };
            if filter.matches_code(e.tag_code) {
                if !sel.entries.is_empty() && sel.total_bytes + u64::from(e.size) > max_bytes {
                    break;
                }
                sel.total_bytes += u64::from(e.size);
                sel.entries.push(e);
            }
            sel.examined += 1;
            offset += 1;
            sel.next_offset = offset;
        }
        sel
    }

    /// Index of the first entry for which `pred` is false, over `[min, visible_max)`
    /// (binary search on a monotone predicate).
    pub fn partition_point(&self, visible_max: u64, pred: impl FnMut(&CqEntry) -> bool) -> u64 {
        let n = visible_max
            .saturating_sub(self.min)
            .min(self.entries.len() as u64) as usize;
        let (a, b) = self.entries.as_slices();
        let mut pred = pred;
        if a.len() >= n {
            self.min + a.get(..n).unwrap_or_default().partition_point(&mut pred) as u64
        } else {
            let pa = a.partition_point(&mut pred);
            if pa < a.len() {
                return self.min + pa as u64;
            }
            let pb = b
                .get(..n - a.len())
                .unwrap_or_default()
                .partition_point(&mut pred);
            self.min + (a.len() + pb) as u64
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(n: u64) -> ConsumeQueue<()> {
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

    #[test]
    fn offsets_visibility_and_truncation() {
        let mut q = queue(10);
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
        assert_eq!(q.visible_max(550), 5);
        assert_eq!(q.visible_max(0), 0);
        q.drop_below(250);
        assert_eq!(q.min_offset(), 3);
        assert_eq!(q.get(2), None);
        assert_eq!(q.next_offset(), 10);
        q.truncate_after_phys(700);
        assert_eq!(q.next_offset(), 7);
        q.truncate_from(5);
        assert_eq!(q.next_offset(), 5);
        assert_eq!(q.partition_point(5, |e| e.phys < 400), 4);
    }

    #[test]
    fn select_filters_and_bounds() {
        let q = queue(10);
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
