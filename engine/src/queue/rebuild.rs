//! Bulk rebuild of consume-queue tails during recovery.
//!
//! The recovery scan sees millions of records; looking each one's queue up in the store's
//! `topic → queue id → queue` maps costs three string-keyed hash lookups per record. Instead
//! the scan appends entries to per-queue `Vec`s found through a one-entry cache (records of
//! one queue often come in runs) and a map keyed by a 64-bit hash of (topic, queue id);
//! [`Rebuilder::merge`] then hands each `Vec` to its queue once.
//!
//! Queue offsets are applied exactly as record-by-record recovery would: a record whose
//! queue offset is below the queue's next offset cuts the queue there, one above it (a gap:
//! files and log disagree) restarts the queue at the record, which is the truth from there on.

use std::collections::HashMap;

use super::{ConsumeQueue, CqEntry, QueueIds, Topics};

/// One queue's rebuilt run: entries for offsets `first..first + entries.len()`.
#[derive(Debug)]
struct Run {
    topic: Box<str>,
    queue_id: i32,
    first: u64,
    entries: Vec<CqEntry>,
    /// A gap was seen: the queue restarts at `first`.
    restart: bool,
}

/// Collects recovered entries per queue.
#[derive(Debug, Default)]
pub(crate) struct Rebuilder {
    runs: Vec<Run>,
    by_hash: HashMap<u64, Vec<usize>>,
    last: Option<usize>,
}

fn queue_hash(topic: &str, queue_id: i32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes().chain(queue_id.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Rebuilder {
    fn run_of(&mut self, topic: &str, queue_id: i32, qo: u64) -> usize {
        if let Some(i) = self.last
            && let Some(r) = self.runs.get(i)
            && r.queue_id == queue_id
            && &*r.topic == topic
        {
            return i;
        }
        let list = self.by_hash.entry(queue_hash(topic, queue_id)).or_default();
        let runs = &self.runs;
        let found = list.iter().copied().find(|i| {
            runs.get(*i)
                .is_some_and(|r| r.queue_id == queue_id && &*r.topic == topic)
        });
        let i = match found {
            Some(i) => i,
            None => {
                let i = self.runs.len();
                list.push(i);
                self.runs.push(Run {
                    topic: topic.into(),
                    queue_id,
                    first: qo,
                    entries: Vec::new(),
                    restart: false,
                });
                i
            }
        };
        self.last = Some(i);
        i
    }

    /// Adds the entry of a recovered record with queue offset `qo`, in log order.
    pub(crate) fn push(&mut self, topic: &str, queue_id: i32, qo: u64, e: CqEntry) {
        let i = self.run_of(topic, queue_id, qo);
        let Some(r) = self.runs.get_mut(i) else {
            return;
        };
        let next = r.first + r.entries.len() as u64;
        if qo != next && !r.entries.is_empty() {
            if qo > next {
                r.restart = true;
                r.entries.clear();
                r.first = qo;
            } else if qo >= r.first {
                r.entries.truncate((qo - r.first) as usize);
            } else {
                r.entries.clear();
                r.first = qo;
            }
        }
        r.entries.push(e);
    }

    /// Number of entries collected.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.runs.iter().map(|r| r.entries.len()).sum()
    }

    /// Hands every run to its queue (created when new) in `topics`.
    pub(crate) fn merge<F>(self, topics: &mut Topics<F>) {
        for r in self.runs {
            if !topics.contains_key(&*r.topic) {
                topics.insert(r.topic.to_string(), QueueIds::default());
            }
            let Some(queues) = topics.get_mut(&*r.topic) else {
                continue;
            };
            let q = queues.get_or_insert_with(r.queue_id, &r.topic, |name| {
                ConsumeQueue::new(name, r.queue_id)
            });
            if r.restart {
                q.restart_at(r.first);
            } else if r.first < q.next_offset() {
                q.truncate_from(r.first);
            }
            if r.first != q.next_offset() {
                q.restart_at(r.first);
            }
            q.extend_tail(r.entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::SimFile;

    fn e(phys: u64) -> CqEntry {
        CqEntry {
            phys,
            size: 1,
            tag_code: 0,
        }
    }

    /// The bulk rebuild ends in the same queue as pushing record by record with the cut and
    /// restart rules (runs, a cut inside the run, a cut below it, a gap).
    #[test]
    fn matches_record_by_record_rules() {
        let mut topics: Topics<SimFile> = Topics::default();
        let mut q = ConsumeQueue::new("A".into(), 0);
        for p in 0..5 {
            q.push(e(p));
        }
        topics.entry("A".into()).or_default().insert(0, q);
        let mut r = Rebuilder::default();
        r.push("A", 0, 5, e(10));
        r.push("B", 1, 0, e(11));
        r.push("A", 0, 6, e(12));
        r.push("A", 0, 6, e(13)); // cut inside the run
        r.push("B", 1, 7, e(14)); // gap: B restarts at 7
        r.push("A", 0, 3, e(15)); // cut below the run, into the old entries
        assert_eq!(r.len(), 2);
        r.merge(&mut topics);
        let a = topics["A"].get(&0).unwrap();
        assert_eq!((a.min_offset(), a.next_offset()), (0, 4));
        assert_eq!(a.get(3).map(|x| x.phys), Some(15));
        assert_eq!(a.get(2).map(|x| x.phys), Some(2));
        let b = topics["B"].get(&1).unwrap();
        assert_eq!((b.min_offset(), b.next_offset()), (7, 8));
        assert_eq!(b.get(7).map(|x| x.phys), Some(14));
    }
}
