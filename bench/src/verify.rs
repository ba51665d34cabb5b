//! Delivery accounting: lost, duplicated and reordered messages, per stream and per queue.
//!
//! A *stream* is what one producer of one run sent to one queue: its sequence numbers run
//! 0, 1, 2, … in send order, and the bench never has two sends of one stream in flight at once,
//! so any correct broker stores and delivers a stream in sequence order.
//!
//! - The consumer side keeps a [`StreamCheck`] per stream: which sequence numbers arrived (a
//!   bitset), how many arrived again (duplicated) and how many arrived after a higher one
//!   (reordered).
//! - The producer side keeps a [`SentLog`] per stream: how many sequence numbers it issued and
//!   which of them were not acknowledged (error or timeout).
//! - [`reconcile`] compares the two: every acknowledged message that never arrived is lost. A
//!   message that arrived although its send failed (e.g. stored, then the response timed out)
//!   is counted apart, never as lost.
//! - Without the producer's log (a `consume` run), [`StreamCheck::gaps`] counts the sequence
//!   numbers missing between the lowest and highest seen, which is loss unless those sends
//!   failed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Sequence numbers beyond this are treated as corrupt rather than tracked (the bitset would
/// need 512 MiB).
pub const SEQ_TRACKED_MAX: u64 = 1 << 32;

/// Identifies a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    pub run: u32,
    pub producer: u32,
    pub queue: QueueKey,
}

/// One queue: topic, broker name, queue id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueKey {
    pub topic: String,
    pub broker: String,
    pub queue_id: i32,
}

/// What [`StreamCheck::observe`] made of one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    InOrder,
    /// First arrival of this number, but a higher one came before it.
    Reordered,
    Duplicate,
    /// The number is beyond [`SEQ_TRACKED_MAX`].
    Untrackable,
}

/// The consumer's view of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamCheck {
    seen: Vec<u64>,
    pub received: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub min_seq: Option<u64>,
    pub max_seq: Option<u64>,
}

impl StreamCheck {
    pub fn observe(&mut self, seq: u64) -> Arrival {
        if seq >= SEQ_TRACKED_MAX {
            return Arrival::Untrackable;
        }
        self.received += 1;
        let word = (seq / 64) as usize;
        let bit = 1u64 << (seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        let Some(slot) = self.seen.get_mut(word) else {
            return Arrival::Untrackable;
        };
        if *slot & bit != 0 {
            self.duplicated += 1;
            return Arrival::Duplicate;
        }
        *slot |= bit;
        self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
        let reordered = self.max_seq.is_some_and(|m| seq < m);
        self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        if reordered {
            self.reordered += 1;
            Arrival::Reordered
        } else {
            Arrival::InOrder
        }
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.seen
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }

    /// Distinct sequence numbers seen.
    pub fn distinct(&self) -> u64 {
        self.seen.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// Distinct sequence numbers seen below `end`.
    pub fn distinct_below(&self, end: u64) -> u64 {
        let full = (end / 64) as usize;
        let whole: u64 = self
            .seen
            .iter()
            .take(full)
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let rest = end % 64;
        let part = match self.seen.get(full) {
            Some(w) if rest > 0 => u64::from((w & ((1u64 << rest) - 1)).count_ones()),
            _ => 0,
        };
        whole + part
    }

    /// Numbers missing between the lowest and the highest seen.
    pub fn gaps(&self) -> u64 {
        match (self.min_seq, self.max_seq) {
            (Some(lo), Some(hi)) => hi - lo + 1 - self.distinct(),
            _ => 0,
        }
    }
}

/// The producer's record of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentLog {
    /// Sequence numbers `0..issued` were sent (or attempted).
    pub issued: u64,
    /// Numbers whose send was not acknowledged with SUCCESS.
    pub failed: Vec<u64>,
}

impl SentLog {
    pub fn acked(&self) -> u64 {
        self.issued - self.failed.len() as u64
    }
}

/// One stream's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOutcome {
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Arrived although the send was reported failed.
    pub delivered_after_error: u64,
    pub not_consumed: u64,
}

/// Compares what a producer had acknowledged with what a consumer received.
pub fn reconcile(sent: &SentLog, got: Option<&StreamCheck>) -> StreamOutcome {
    let empty = StreamCheck::default();
    let got = got.unwrap_or(&empty);
    let mut failed = sent.failed.clone();
    failed.sort_unstable();
    failed.dedup();
    let delivered_after_error = failed.iter().filter(|s| got.contains(**s)).count() as u64;
    let received_acked = got.distinct_below(sent.issued) - delivered_after_error;
    StreamOutcome {
        received: got.received,
        lost: sent.acked().saturating_sub(received_acked),
        duplicated: got.duplicated,
        reordered: got.reordered,
        delivered_after_error,
        not_consumed: 0,
    }
}

/// Per-queue totals, as the report shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueVerdict {
    pub topic: String,
    pub broker: String,
    pub queue_id: i32,
    pub received: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub delivered_after_error: u64,
    /// Acknowledged messages missing from a queue the consumer had not read to its end when
    /// the run stopped (consumers behind): not verified, so not counted as lost.
    #[serde(default)]
    pub not_consumed: u64,
    /// Queue offset the consumer started at, and the offset it had reached at the end.
    #[serde(default)]
    pub start_offset: Option<i64>,
    #[serde(default)]
    pub end_offset: Option<i64>,
}

/// Consumer-side counts that belong to no stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Oddities {
    /// Bench messages whose CRC did not match.
    pub corrupt: u64,
    /// Messages not written by the bench (another client shares the topic).
    pub foreign: u64,
    /// Bench messages of other runs (an earlier run's backlog).
    pub other_runs: u64,
    /// Records in pull bodies that did not parse.
    pub undecodable: u64,
    /// Broker BODYCRC field disagreeing with the body it carries.
    pub broker_crc_mismatch: u64,
}

/// Folds stream outcomes into per-queue verdicts. With `sent` (produce-consume) loss comes
/// from [`reconcile`]; without it (consume only) from gaps in what arrived. Missing messages of
/// a queue in `unread` (the consumer stopped before reaching the queue's end) are
/// `not_consumed`, not lost: nobody looked for them.
pub fn per_queue(
    checks: &BTreeMap<StreamKey, StreamCheck>,
    sent: Option<&BTreeMap<StreamKey, SentLog>>,
    unread: &BTreeSet<QueueKey>,
) -> Vec<QueueVerdict> {
    let mut by_queue: BTreeMap<QueueKey, QueueVerdict> = BTreeMap::new();
    let mut add = |q: &QueueKey, mut o: StreamOutcome| {
        let missing = std::mem::take(&mut o.lost);
        if unread.contains(q) {
            o.not_consumed = missing;
        } else {
            o.lost = missing;
        }
        let v = by_queue.entry(q.clone()).or_insert_with(|| QueueVerdict {
            topic: q.topic.clone(),
            broker: q.broker.clone(),
            queue_id: q.queue_id,
            ..QueueVerdict::default()
        });
        v.received += o.received;
        v.lost += o.lost;
        v.duplicated += o.duplicated;
        v.reordered += o.reordered;
        v.delivered_after_error += o.delivered_after_error;
        v.not_consumed += o.not_consumed;
    };
    match sent {
        Some(sent) => {
            for (key, log) in sent {
                add(&key.queue, reconcile(log, checks.get(key)));
            }
            // Streams that arrived but were never sent by this run's producers.
            for (key, check) in checks.iter().filter(|(k, _)| !sent.contains_key(*k)) {
                add(&key.queue, outcome_from_gaps(check));
            }
        }
        None => {
            for (key, check) in checks {
                add(&key.queue, outcome_from_gaps(check));
            }
        }
    }
    by_queue.into_values().collect()
}

fn outcome_from_gaps(check: &StreamCheck) -> StreamOutcome {
    StreamOutcome {
        received: check.received,
        lost: check.gaps(),
        duplicated: check.duplicated,
        reordered: check.reordered,
        delivered_after_error: 0,
        not_consumed: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(producer: u32, queue_id: i32) -> StreamKey {
        StreamKey {
            run: 1,
            producer,
            queue: QueueKey {
                topic: "T".into(),
                broker: "b".into(),
                queue_id,
            },
        }
    }

    #[test]
    fn in_order_stream_is_clean() {
        let mut c = StreamCheck::default();
        for s in 0..200 {
            assert_eq!(c.observe(s), Arrival::InOrder);
        }
        let log = SentLog {
            issued: 200,
            failed: vec![],
        };
        assert_eq!(
            reconcile(&log, Some(&c)),
            StreamOutcome {
                received: 200,
                ..StreamOutcome::default()
            }
        );
        assert_eq!(c.gaps(), 0);
    }

    #[test]
    fn duplicates_reorders_and_losses_are_told_apart() {
        let mut c = StreamCheck::default();
        let arrivals: Vec<Arrival> = [0, 1, 3, 2, 3, 5, 1]
            .iter()
            .map(|s| c.observe(*s))
            .collect();
        use Arrival::*;
        assert_eq!(
            arrivals,
            [
                InOrder, InOrder, InOrder, Reordered, Duplicate, InOrder, Duplicate
            ]
        );
        // Sent 0..=6; 4 and 6 never arrived.
        let log = SentLog {
            issued: 7,
            failed: vec![],
        };
        let o = reconcile(&log, Some(&c));
        assert_eq!(
            o,
            StreamOutcome {
                received: 7,
                lost: 2,
                duplicated: 2,
                reordered: 1,
                delivered_after_error: 0,
                not_consumed: 0,
            }
        );
        assert_eq!(c.gaps(), 1, "without the log only 4 is a visible gap");
    }

    #[test]
    fn failed_sends_are_not_lost_and_late_deliveries_are_counted() {
        let mut c = StreamCheck::default();
        for s in [0, 1, 2, 4] {
            c.observe(s);
        }
        // 3 failed and never arrived; 4 failed (timed out) but was stored after all.
        let log = SentLog {
            issued: 5,
            failed: vec![4, 3],
        };
        let o = reconcile(&log, Some(&c));
        assert_eq!(o.lost, 0);
        assert_eq!(o.delivered_after_error, 1);
        // A stream nobody received: every acknowledged message is lost.
        assert_eq!(reconcile(&log, None).lost, 3);
    }

    #[test]
    fn per_queue_sums_streams_and_keeps_unknown_streams() {
        let mut checks = BTreeMap::new();
        let mut sent = BTreeMap::new();
        for p in 0..2 {
            let mut c = StreamCheck::default();
            for s in 0..10 {
                if !(p == 1 && s == 9) {
                    c.observe(s);
                }
            }
            checks.insert(key(p, 0), c);
            sent.insert(
                key(p, 0),
                SentLog {
                    issued: 10,
                    failed: vec![],
                },
            );
        }
        let mut stray = StreamCheck::default();
        stray.observe(5);
        stray.observe(7);
        checks.insert(key(9, 1), stray);
        let none = BTreeSet::new();
        let v = per_queue(&checks, Some(&sent), &none);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].queue_id, v[0].received, v[0].lost), (0, 19, 1));
        assert_eq!((v[1].queue_id, v[1].received, v[1].lost), (1, 2, 1));
        let v = per_queue(&checks, None, &none);
        assert_eq!(v[0].lost, 0, "a missing tail is not a visible gap");
        // A queue the consumer never read to its end: its missing messages are unverified.
        let unread = BTreeSet::from([key(0, 0).queue]);
        let v = per_queue(&checks, Some(&sent), &unread);
        assert_eq!((v[0].lost, v[0].not_consumed), (0, 1));
    }

    #[test]
    fn huge_sequence_numbers_are_not_tracked() {
        let mut c = StreamCheck::default();
        assert_eq!(c.observe(SEQ_TRACKED_MAX), Arrival::Untrackable);
        assert_eq!(c.received, 0);
    }
}
