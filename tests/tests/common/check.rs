//! Assertions shared by the client tests: exactly once, order per queue, agreement with the
//! send results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Received, Sent};

/// Every body in `want` was received exactly once, and nothing else was received.
pub fn assert_exactly_once(received: &[Received], want: &BTreeSet<String>, who: &str) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in received {
        *counts.entry(r.body.as_str()).or_default() += 1;
    }
    let dups: Vec<(&str, usize)> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, n)| (*b, *n))
        .collect();
    let unexpected: Vec<&str> = counts
        .keys()
        .filter(|b| !want.contains(**b))
        .copied()
        .collect();
    let missing: Vec<&String> = want
        .iter()
        .filter(|b| !counts.contains_key(b.as_str()))
        .collect();
    assert!(
        dups.is_empty() && unexpected.is_empty() && missing.is_empty(),
        "{who}: expected each of {} messages exactly once; {} duplicated (first {:?}), {} \
         unexpected (first {:?}), {} missing (first {:?})",
        want.len(),
        dups.len(),
        dups.iter().take(5).collect::<Vec<_>>(),
        unexpected.len(),
        unexpected.iter().take(5).collect::<Vec<_>>(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>()
    );
}

/// Within each (broker, queue), deliveries arrived with strictly increasing queue offsets.
pub fn assert_queue_order(received: &[Received], who: &str) {
    let mut last: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for r in received {
        let key = (r.broker.as_str(), r.queue_id);
        if let Some(prev) = last.get(&key) {
            assert!(
                r.queue_offset > *prev,
                "{who}: queue {}/{} delivered offset {} after offset {} (body {:?})",
                r.broker,
                r.queue_id,
                r.queue_offset,
                prev,
                r.body
            );
        }
        last.insert(key, r.queue_offset);
    }
}

/// Each received message sits where its send said it was stored: same broker, queue,
/// queue offset and UNIQ_KEY.
pub fn assert_matches_sends(received: &[Received], sent: &[Sent], who: &str) {
    let by_body: HashMap<&str, &Sent> = sent.iter().map(|s| (s.body.as_str(), s)).collect();
    for r in received {
        let Some(s) = by_body.get(r.body.as_str()) else {
            continue;
        };
        assert_eq!(
            (r.broker.as_str(), r.queue_id, r.queue_offset),
            (s.broker.as_str(), s.queue_id, s.queue_offset),
            "{who}: {:?} was received from a different place than its send result said",
            r.body
        );
        assert_eq!(
            r.uniq_key.as_deref(),
            Some(s.msg_id.as_str()),
            "{who}: UNIQ_KEY of {:?} differs from the send result's msgId",
            r.body
        );
    }
}
