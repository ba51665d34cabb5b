//! Orderly-consumption queue locks (spec §3.12): per consumer group, each queue is held by at
//! most one client id at a time, until that client unlocks it or stops refreshing it for
//! [`LOCK_EXPIRY_MS`].
//!
//! Pure state with time as an input. Locks are cooperative (pulls are not checked against
//! them), exactly as in Java; they only make a well-behaved orderly client stop consuming a
//! queue that another client now owns.

use std::collections::HashMap;

/// Java's `rebalanceLockMaxLiveTime`: longer than the client's own 30 s lock validity, so a
/// healthy client (which re-locks every 20 s) never loses a lock.
pub const LOCK_EXPIRY_MS: u64 = 60_000;

/// A queue as the lock bodies name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueKey {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

#[derive(Debug, Clone)]
struct Holder {
    client_id: String,
    last_locked_ms: u64,
}

#[derive(Debug, Default)]
pub struct LockTable {
    /// group → queue → holder.
    groups: HashMap<String, HashMap<QueueKey, Holder>>,
}

impl LockTable {
    /// LOCK_BATCH_MQ: locks (or refreshes) every queue of `queues` that is free, expired or
    /// already held by `client_id`, and returns those; queues held by a live other client are
    /// left out.
    pub fn lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &[QueueKey],
        now_ms: u64,
    ) -> Vec<QueueKey> {
        let table = self.groups.entry(group.to_owned()).or_default();
        let mut granted = Vec::with_capacity(queues.len());
        for q in queues {
            let free = match table.get(q) {
                None => true,
                Some(h) => h.client_id == client_id || expired(h, now_ms),
            };
            if free {
                let holder = Holder {
                    client_id: client_id.to_owned(),
                    last_locked_ms: now_ms,
                };
                table.insert(q.clone(), holder);
                granted.push(q.clone());
            }
        }
        granted
    }

    /// UNLOCK_BATCH_MQ: releases the queues of `queues` that `client_id` holds.
    pub fn unlock(&mut self, group: &str, client_id: &str, queues: &[QueueKey]) {
        let Some(table) = self.groups.get_mut(group) else {
            return;
        };
        for q in queues {
            if table.get(q).is_some_and(|h| h.client_id == client_id) {
                table.remove(q);
            }
        }
        if table.is_empty() {
            self.groups.remove(group);
        }
    }

    /// Whether the group holds any live lock (the send path routes a `%RETRY%` message of
    /// such a group to the DLQ when it exceeds its retries, spec §3.3 step 5).
    pub fn group_holds_locks(&self, group: &str, now_ms: u64) -> bool {
        self.groups
            .get(group)
            .is_some_and(|t| t.values().any(|h| !expired(h, now_ms)))
    }

    /// Drops expired locks; call now and then so the table cannot grow without bound.
    pub fn expire(&mut self, now_ms: u64) {
        self.groups.retain(|_, table| {
            table.retain(|_, h| !expired(h, now_ms));
            !table.is_empty()
        });
    }
}

fn expired(h: &Holder, now_ms: u64) -> bool {
    now_ms.saturating_sub(h.last_locked_ms) > LOCK_EXPIRY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: i32) -> QueueKey {
        QueueKey {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    #[test]
    fn one_owner_per_queue_until_unlock_or_expiry() {
        let mut t = LockTable::default();
        assert_eq!(t.lock("g", "c1", &[q(0), q(1)], 0), vec![q(0), q(1)]);
        assert_eq!(t.lock("g", "c2", &[q(1), q(2)], 1_000), vec![q(2)]);
        // Same client refreshes; another group is independent.
        assert_eq!(t.lock("g", "c1", &[q(1)], 20_000), vec![q(1)]);
        assert_eq!(t.lock("other", "c2", &[q(1)], 20_000), vec![q(1)]);
        // c1's q(0) was last locked at 0: free for c2 after 60 s, q(1) (refreshed) is not.
        assert_eq!(t.lock("g", "c2", &[q(0), q(1)], 60_001), vec![q(0)]);
        t.unlock("g", "c2", &[q(1)]); // not c2's: no effect
        assert_eq!(t.lock("g", "c3", &[q(1)], 60_002), Vec::<QueueKey>::new());
        t.unlock("g", "c1", &[q(1)]);
        assert_eq!(t.lock("g", "c3", &[q(1)], 60_003), vec![q(1)]);
        assert!(t.group_holds_locks("g", 60_003));
        t.expire(200_000);
        assert!(!t.group_holds_locks("g", 200_000));
    }
}
