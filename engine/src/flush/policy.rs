//! Group commit as a pure state machine: events in, actions out, no I/O and no clock of its
//! own (time arrives in the events).
//!
//! The log is a line of bytes: `durable ≤ written ≤ appended`. Up to `writes_in_flight_max`
//! writes are in flight, each covering the bytes after the previous one; `written` advances
//! over the completed prefix, so a write that completes early waits for the ones before it.
//! At most one sync is in flight; a sync may run while later writes are in flight, so
//! durability of batch N overlaps the write of batch N+1.
//!
//! - A write covers everything appended and not yet submitted: all appends of a reactor turn
//!   become one write. It is submitted at the end of the turn ([`Event::Tick`]) once the
//!   oldest pending byte has waited `batch_delay_us` (0: at once), or as soon as
//!   `batch_bytes_max` bytes are pending.
//! - Mid-turn, when fewer than `writes_in_flight_max` writes are in flight and
//!   `write_chunk_bytes` are pending, a write is submitted at once (on [`Event::Appended`], or
//!   on [`Event::WriteDone`]): the kernel copies the first part of a big turn while the rest
//!   is still being encoded, instead of the two taking turns.
//! - A sync is submitted when a sync-durability append's bytes are written and not yet
//!   durable, or every `flush_interval_ms` for async-flush data.
//! - With `durable_writes`, a write that holds sync-durability appends and starts where the
//!   durable bytes end, with nothing else in flight, is one durable write
//!   ([`Action::WriteDurable`]: the write and the sync of its range in one operation) instead
//!   of a write followed by a sync. While it is in flight, further sync-durability appends
//!   gather into the next one.
//! - A failed write or sync fails exactly the appends it covered or that wait behind it, and
//!   the policy stops: the log refuses appends until it is recovered. A write that fails
//!   while an earlier one is still in flight waits for it, so the appends of the earlier
//!   write get the earlier write's outcome.

use std::collections::VecDeque;

/// Group-commit bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushConfig {
    /// A write is submitted as soon as this many bytes are pending; it also bounds the write
    /// buffer (appenders wait above twice this).
    pub batch_bytes_max: u64,
    /// How long pending bytes may wait for more appends before a write (time bound).
    pub batch_delay_us: u64,
    /// Periodic sync of written data for async-flush appends (RocketMQ
    /// `flushIntervalCommitLog`, 500 ms).
    pub flush_interval_ms: u64,
    /// Pending bytes that start a write mid-turn when a write slot is free (`u64::MAX`: only
    /// at the end of a turn). Sized so a write is big enough to be cheap per byte, and small
    /// enough that a turn of hundreds of appenders splits into a few overlapping writes.
    pub write_chunk_bytes: u64,
    /// Writes in flight at once (at least 1). With one, the kernel idles from the end of a
    /// write until the shard has seen its completion and submitted the next; with two, the
    /// next is already queued (io_uring runs buffered writes to one file in order).
    /// Async flush, 512 appenders, alternating runs of `engine-bench --only-async DIR
    /// --writes-in-flight N` (2-core VM, 2026-11): 1 → 542k / 502k / 575k / 639k appends/s,
    /// 2 → 602k / 603k / 614k / 707k.
    pub writes_in_flight_max: usize,
    /// Whether a batch of sync-durability appends may be written and made durable in one
    /// operation ([`Action::WriteDurable`]; `RWF_DSYNC` on io_uring) when nothing else is
    /// unsynced. That saves a round trip through the shard per group commit: the sync no
    /// longer waits for the shard to see the write complete. Sync flush, 64 appenders,
    /// alternating runs of `engine-bench --only-sync DIR --durable-writes off|on`: off →
    /// 156k / 159k / 157k / 158k appends/s (p50 362 / 346 / 336 / 377 µs), on → 184k / 192k
    /// / 179k / 183k (p50 290 / 270 / 279 / 275 µs).
    pub durable_writes: bool,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            batch_bytes_max: 4 << 20,
            batch_delay_us: 0,
            flush_interval_ms: 500,
            write_chunk_bytes: 128 << 10,
            writes_in_flight_max: 2,
            durable_writes: true,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Bytes up to `end` were appended; `wants_sync` if the appender waits for durability.
    Appended {
        end: u64,
        wants_sync: bool,
        now_us: u64,
    },
    /// The write ending at `to` completed (`to` names the write: no two share it).
    WriteDone { to: u64, ok: bool },
    /// The sync covering everything below `upto` completed.
    SyncDone { upto: u64, ok: bool },
    /// End of a reactor turn, or a timer.
    Tick { now_us: u64 },
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Write {
        from: u64,
        to: u64,
    },
    /// Write `[from, to)` and make exactly that range durable before completing; its
    /// [`Event::WriteDone`] acknowledges both.
    WriteDurable {
        from: u64,
        to: u64,
    },
    Sync {
        upto: u64,
    },
    /// Appends ending at or below `upto` are written (ack async-durability appends).
    AckWritten {
        upto: u64,
    },
    /// Appends ending at or below `upto` are durable (ack sync-durability appends).
    AckDurable {
        upto: u64,
    },
    /// Fail sync-durability appends ending above `durable` and async ones ending above
    /// `written`; the log is broken from here on.
    Fail {
        written: u64,
        durable: u64,
    },
}

/// Where an in-flight write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteState {
    InFlight,
    Done,
    Failed,
}

/// A submitted write, in log order.
#[derive(Debug, Clone, Copy)]
struct Write {
    to: u64,
    /// End of the last sync-durability append the write covers, if any.
    sync_end: Option<u64>,
    /// A [`Action::WriteDurable`]: its completion makes `to` durable.
    durable: bool,
    state: WriteState,
}

/// The group-commit state.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    cfg: FlushConfig,
    appended: u64,
    written: u64,
    durable: u64,
    /// Submitted writes not yet folded into `written`, oldest first.
    writes: VecDeque<Write>,
    sync_upto: Option<u64>,
    /// End of the last sync-durability append.
    sync_wanted: u64,
    /// End of the last sync-durability append whose bytes are written.
    sync_wanted_written: u64,
    first_pending_us: Option<u64>,
    /// The byte bound was reached: write at the next tick, whatever the delay.
    write_due: bool,
    last_sync_us: u64,
    broken: bool,
}

impl FlushPolicy {
    /// A policy for a log whose bytes below `end` are already durable.
    pub fn new(cfg: FlushConfig, end: u64, now_us: u64) -> Self {
        let slots = cfg.writes_in_flight_max.max(1);
        FlushPolicy {
            cfg: FlushConfig {
                writes_in_flight_max: slots,
                ..cfg
            },
            appended: end,
            written: end,
            durable: end,
            writes: VecDeque::with_capacity(slots),
            sync_upto: None,
            sync_wanted: end,
            sync_wanted_written: end,
            first_pending_us: None,
            write_due: false,
            last_sync_us: now_us,
            broken: false,
        }
    }

    /// A policy for a recovered log: bytes below `written` are in the files, bytes below
    /// `durable` are known durable; the rest is synced by the first sync.
    pub fn recovered(cfg: FlushConfig, written: u64, durable: u64, now_us: u64) -> Self {
        let mut p = FlushPolicy::new(cfg, written, now_us);
        p.durable = durable.min(written);
        p
    }

    pub fn written(&self) -> u64 {
        self.written
    }
    pub fn durable(&self) -> u64 {
        self.durable
    }
    pub fn appended(&self) -> u64 {
        self.appended
    }
    pub fn is_broken(&self) -> bool {
        self.broken
    }
    /// Nothing pending, nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.writes.is_empty() && self.sync_upto.is_none() && self.appended == self.written
    }
    /// Whether a write or sync is in flight.
    pub fn in_flight(&self) -> bool {
        !self.writes.is_empty() || self.sync_upto.is_some()
    }

    /// Appended bytes no write has taken yet.
    pub fn unsubmitted(&self) -> u64 {
        self.appended - self.submitted()
    }

    /// End of the submitted bytes: where the next write starts.
    fn submitted(&self) -> u64 {
        self.writes.back().map_or(self.written, |w| w.to)
    }

    /// Whether another write may be submitted: a slot is free, no write has failed, and no
    /// durable write is in flight while sync-durability appends wait (those gather for the
    /// next durable write: group commit).
    fn can_write(&self) -> bool {
        let gathering = self.sync_wanted > self.submitted()
            && self
                .writes
                .iter()
                .any(|w| w.durable && w.state == WriteState::InFlight);
        self.writes.len() < self.cfg.writes_in_flight_max
            && !gathering
            && !self.writes.iter().any(|w| w.state == WriteState::Failed)
    }

    /// When the policy next wants a [`Event::Tick`] although nothing else happens.
    pub fn deadline_us(&self) -> Option<u64> {
        if self.broken {
            return None;
        }
        let batch = self
            .first_pending_us
            .filter(|_| self.can_write())
            .map(|t| t + self.cfg.batch_delay_us);
        let flush = (self.written > self.durable && self.sync_upto.is_none())
            .then(|| self.last_sync_us + self.cfg.flush_interval_ms * 1000);
        match (batch, flush) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Feeds one event; pushes the resulting actions to `out` (a reused vector).
    pub fn handle(&mut self, event: Event, out: &mut Vec<Action>) {
        if self.broken {
            return;
        }
        match event {
            Event::Appended {
                end,
                wants_sync,
                now_us,
            } => {
                debug_assert!(end >= self.appended);
                self.appended = self.appended.max(end);
                if wants_sync {
                    self.sync_wanted = self.sync_wanted.max(end);
                }
                self.first_pending_us.get_or_insert(now_us);
                // Submitted at the tick that ends this batch of events, so the write covers
                // every append of the turn (the driver ticks right after draining events).
                if self.appended - self.submitted() >= self.cfg.batch_bytes_max {
                    self.write_due = true;
                }
                self.maybe_write_chunk(out);
            }
            Event::WriteDone { to, ok } => self.write_done(to, ok, out),
            Event::SyncDone { upto, ok } => {
                self.sync_upto = None;
                if !ok {
                    return self.fail(out);
                }
                self.durable = self.durable.max(upto);
                out.push(Action::AckDurable { upto: self.durable });
                self.maybe_sync(None, out);
            }
            Event::Tick { now_us } => {
                let due = self.write_due
                    || self
                        .first_pending_us
                        .is_some_and(|t| now_us >= t + self.cfg.batch_delay_us);
                if due {
                    self.submit_write(out);
                }
                self.maybe_sync(Some(now_us), out);
            }
        }
    }

    /// Records the outcome of the write ending at `to` and folds the completed prefix of
    /// the in-flight writes into `written`. A failed write fails the log once every write
    /// before it has completed.
    fn write_done(&mut self, to: u64, ok: bool, out: &mut Vec<Action>) {
        let Some(w) = self.writes.iter_mut().find(|w| w.to == to) else {
            debug_assert!(false, "completion of a write not in flight: {to}");
            return;
        };
        w.state = if ok {
            WriteState::Done
        } else {
            WriteState::Failed
        };
        let before = self.written;
        let durable_before = self.durable;
        while let Some(front) = self.writes.front().copied() {
            match front.state {
                WriteState::InFlight => break,
                WriteState::Done => {
                    self.written = front.to;
                    if let Some(s) = front.sync_end {
                        self.sync_wanted_written = self.sync_wanted_written.max(s);
                    }
                    if front.durable {
                        // Submitted only where the durable bytes ended, with nothing else
                        // unsynced: durable is contiguous up to its end now.
                        self.durable = self.durable.max(front.to);
                    }
                    self.writes.pop_front();
                }
                WriteState::Failed => {
                    if self.written > before {
                        out.push(Action::AckWritten { upto: self.written });
                    }
                    return self.fail(out);
                }
            }
        }
        if self.written > before {
            out.push(Action::AckWritten { upto: self.written });
        }
        if self.durable > durable_before {
            out.push(Action::AckDurable { upto: self.durable });
        }
        self.maybe_sync(None, out);
        self.maybe_write_chunk(out);
    }

    fn submit_write(&mut self, out: &mut Vec<Action>) {
        let from = self.submitted();
        if !self.can_write() || self.appended == from {
            return;
        }
        let to = self.appended;
        let has_waiter = self.sync_wanted > from;
        let durable = self.cfg.durable_writes
            && has_waiter
            && self.writes.is_empty()
            && self.sync_upto.is_none()
            && self.durable == from;
        self.writes.push_back(Write {
            to,
            sync_end: has_waiter.then_some(self.sync_wanted),
            durable,
            state: WriteState::InFlight,
        });
        self.first_pending_us = None;
        self.write_due = false;
        out.push(if durable {
            Action::WriteDurable { from, to }
        } else {
            Action::Write { from, to }
        });
    }

    /// Submits a write mid-turn when a chunk is pending and a write slot is free.
    fn maybe_write_chunk(&mut self, out: &mut Vec<Action>) {
        if self.appended - self.submitted() >= self.cfg.write_chunk_bytes {
            self.submit_write(out);
        }
    }

    fn maybe_sync(&mut self, now_us: Option<u64>, out: &mut Vec<Action>) {
        if self.sync_upto.is_some() || self.written <= self.durable {
            return;
        }
        if self.writes.iter().any(|w| w.state == WriteState::Failed) {
            return; // the log fails once the writes before the failed one complete
        }
        // A sync waiter whose bytes are all written.
        let waiter_ready = self.sync_wanted_written > self.durable;
        let periodic =
            now_us.is_some_and(|now| now >= self.last_sync_us + self.cfg.flush_interval_ms * 1000);
        if waiter_ready || periodic {
            if let Some(now) = now_us {
                self.last_sync_us = now;
            }
            self.sync_upto = Some(self.written);
            out.push(Action::Sync { upto: self.written });
        }
    }

    /// Marks the time of a sync submitted outside a tick (for the periodic interval).
    pub fn note_sync_time(&mut self, now_us: u64) {
        self.last_sync_us = now_us;
    }

    fn fail(&mut self, out: &mut Vec<Action>) {
        self.broken = true;
        out.push(Action::Fail {
            written: self.written,
            durable: self.durable,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> FlushPolicy {
        FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 1000,
                batch_delay_us: 0,
                flush_interval_ms: 10,
                write_chunk_bytes: u64::MAX,
                writes_in_flight_max: 1,
                durable_writes: false,
            },
            0,
            0,
        )
    }

    fn run(p: &mut FlushPolicy, e: Event) -> Vec<Action> {
        let mut out = Vec::new();
        p.handle(e, &mut out);
        out
    }

    #[test]
    fn one_write_and_one_sync_for_many_sync_appenders() {
        let mut p = policy();
        for end in [100, 200, 300] {
            assert!(
                run(
                    &mut p,
                    Event::Appended {
                        end,
                        wants_sync: true,
                        now_us: 1
                    }
                )
                .is_empty()
            );
        }
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 1 }),
            [Action::Write { from: 0, to: 300 }]
        );
        // More appends while the write is in flight wait for the next write.
        run(
            &mut p,
            Event::Appended {
                end: 400,
                wants_sync: true,
                now_us: 2,
            },
        );
        assert!(run(&mut p, Event::Tick { now_us: 2 }).is_empty());
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 300, ok: true }),
            // The waiter at 400 is behind no in-flight write once the write is done, so the sync
            // covers what is written; the next tick writes 300..400.
            [Action::AckWritten { upto: 300 }, Action::Sync { upto: 300 }]
        );
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 3 }),
            [Action::Write { from: 300, to: 400 }]
        );
        assert_eq!(
            run(
                &mut p,
                Event::SyncDone {
                    upto: 300,
                    ok: true
                }
            ),
            [Action::AckDurable { upto: 300 }]
        );
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 400, ok: true }),
            [Action::AckWritten { upto: 400 }, Action::Sync { upto: 400 }]
        );
        assert_eq!(
            run(
                &mut p,
                Event::SyncDone {
                    upto: 400,
                    ok: true
                }
            ),
            [Action::AckDurable { upto: 400 }]
        );
        assert!(p.is_idle());
    }

    #[test]
    fn byte_bound_overrides_the_delay() {
        let mut p = FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 1000,
                batch_delay_us: 500,
                flush_interval_ms: 10,
                write_chunk_bytes: u64::MAX,
                writes_in_flight_max: 1,
                durable_writes: false,
            },
            0,
            0,
        );
        run(
            &mut p,
            Event::Appended {
                end: 999,
                wants_sync: false,
                now_us: 0,
            },
        );
        assert!(run(&mut p, Event::Tick { now_us: 1 }).is_empty());
        run(
            &mut p,
            Event::Appended {
                end: 1000,
                wants_sync: false,
                now_us: 1,
            },
        );
        run(
            &mut p,
            Event::Appended {
                end: 1200,
                wants_sync: false,
                now_us: 1,
            },
        );
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 2 }),
            [Action::Write { from: 0, to: 1200 }]
        );
    }

    #[test]
    fn time_bound_holds_a_batch_until_due() {
        let mut p = FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 1000,
                batch_delay_us: 50,
                flush_interval_ms: 10,
                write_chunk_bytes: u64::MAX,
                writes_in_flight_max: 1,
                durable_writes: false,
            },
            0,
            0,
        );
        run(
            &mut p,
            Event::Appended {
                end: 10,
                wants_sync: false,
                now_us: 100,
            },
        );
        assert!(run(&mut p, Event::Tick { now_us: 120 }).is_empty());
        assert_eq!(p.deadline_us(), Some(150));
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 150 }),
            [Action::Write { from: 0, to: 10 }]
        );
    }

    #[test]
    fn async_data_is_synced_periodically() {
        let mut p = policy();
        run(
            &mut p,
            Event::Appended {
                end: 10,
                wants_sync: false,
                now_us: 0,
            },
        );
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 0 }),
            [Action::Write { from: 0, to: 10 }]
        );
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 10, ok: true }),
            [Action::AckWritten { upto: 10 }]
        );
        assert_eq!(p.deadline_us(), Some(10_000));
        assert!(run(&mut p, Event::Tick { now_us: 5_000 }).is_empty());
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 10_000 }),
            [Action::Sync { upto: 10 }]
        );
    }

    #[test]
    fn failures_fail_exactly_the_affected_appends_and_stop() {
        let mut p = policy();
        run(
            &mut p,
            Event::Appended {
                end: 10,
                wants_sync: true,
                now_us: 0,
            },
        );
        run(&mut p, Event::Tick { now_us: 0 });
        run(&mut p, Event::WriteDone { to: 10, ok: true });
        run(&mut p, Event::SyncDone { upto: 10, ok: true });
        run(
            &mut p,
            Event::Appended {
                end: 20,
                wants_sync: true,
                now_us: 1,
            },
        );
        run(&mut p, Event::Tick { now_us: 1 });
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 20, ok: false }),
            [Action::Fail {
                written: 10,
                durable: 10
            }]
        );
        assert!(p.is_broken());
        run(
            &mut p,
            Event::Appended {
                end: 30,
                wants_sync: true,
                now_us: 2,
            },
        );
        assert!(run(&mut p, Event::Tick { now_us: 2 }).is_empty());

        let mut p = policy();
        run(
            &mut p,
            Event::Appended {
                end: 10,
                wants_sync: true,
                now_us: 0,
            },
        );
        run(&mut p, Event::Tick { now_us: 0 });
        run(&mut p, Event::WriteDone { to: 10, ok: true });
        assert_eq!(
            run(
                &mut p,
                Event::SyncDone {
                    upto: 10,
                    ok: false
                }
            ),
            [Action::Fail {
                written: 10,
                durable: 0
            }]
        );
    }

    #[test]
    fn a_pending_chunk_is_written_mid_turn_when_nothing_is_in_flight() {
        let mut p = FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 10_000,
                batch_delay_us: 0,
                flush_interval_ms: 10,
                write_chunk_bytes: 100,
                writes_in_flight_max: 1,
                durable_writes: false,
            },
            0,
            0,
        );
        let appended = |p: &mut FlushPolicy, end| {
            run(
                p,
                Event::Appended {
                    end,
                    wants_sync: false,
                    now_us: 0,
                },
            )
        };
        assert!(appended(&mut p, 99).is_empty());
        assert_eq!(appended(&mut p, 150), [Action::Write { from: 0, to: 150 }]);
        // While that write is in flight, more chunks accumulate into one pending range ...
        assert!(appended(&mut p, 300).is_empty());
        assert!(appended(&mut p, 420).is_empty());
        // ... written as soon as the previous write is done, without waiting for a tick.
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 150, ok: true }),
            [
                Action::AckWritten { upto: 150 },
                Action::Write { from: 150, to: 420 }
            ]
        );
        // A remainder below a chunk waits for the end of the turn.
        assert!(appended(&mut p, 450).is_empty());
        assert!(run(&mut p, Event::WriteDone { to: 420, ok: true }).len() == 1);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 1 }),
            [Action::Write { from: 420, to: 450 }]
        );
    }

    fn two_slots() -> FlushPolicy {
        FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 10_000,
                batch_delay_us: 0,
                flush_interval_ms: 10,
                write_chunk_bytes: 100,
                writes_in_flight_max: 2,
                durable_writes: false,
            },
            0,
            0,
        )
    }

    fn append(p: &mut FlushPolicy, end: u64, wants_sync: bool) -> Vec<Action> {
        run(
            p,
            Event::Appended {
                end,
                wants_sync,
                now_us: 0,
            },
        )
    }

    #[test]
    fn a_second_write_is_queued_while_the_first_is_in_flight() {
        let mut p = two_slots();
        assert_eq!(
            append(&mut p, 100, false),
            [Action::Write { from: 0, to: 100 }]
        );
        assert_eq!(
            append(&mut p, 200, false),
            [Action::Write { from: 100, to: 200 }]
        );
        // Both slots busy: the next chunk waits for a completion.
        assert!(append(&mut p, 300, false).is_empty());
        assert!(run(&mut p, Event::Tick { now_us: 0 }).is_empty());
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: true }),
            [
                Action::AckWritten { upto: 100 },
                Action::Write { from: 200, to: 300 }
            ]
        );
    }

    #[test]
    fn written_advances_only_over_the_completed_prefix() {
        let mut p = two_slots();
        append(&mut p, 100, false);
        append(&mut p, 200, false);
        // The later write completes first: nothing is acknowledged yet.
        assert!(run(&mut p, Event::WriteDone { to: 200, ok: true }).is_empty());
        assert_eq!(p.written(), 0);
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: true }),
            [Action::AckWritten { upto: 200 }]
        );
        assert!(p.is_idle());
    }

    #[test]
    fn a_sync_starts_once_a_waiters_bytes_are_written_even_with_writes_in_flight() {
        let mut p = two_slots();
        append(&mut p, 100, true);
        append(&mut p, 200, true);
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: true }),
            [Action::AckWritten { upto: 100 }, Action::Sync { upto: 100 }]
        );
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 200, ok: true }),
            [Action::AckWritten { upto: 200 }]
        );
        assert_eq!(
            run(
                &mut p,
                Event::SyncDone {
                    upto: 100,
                    ok: true
                }
            ),
            [Action::AckDurable { upto: 100 }, Action::Sync { upto: 200 }]
        );
    }

    #[test]
    fn an_async_write_does_not_start_a_sync() {
        let mut p = two_slots();
        append(&mut p, 100, true);
        append(&mut p, 200, false);
        run(&mut p, Event::WriteDone { to: 100, ok: true });
        run(
            &mut p,
            Event::SyncDone {
                upto: 100,
                ok: true,
            },
        );
        // 100..200 holds only async appends: the periodic flush syncs it, not a waiter.
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 200, ok: true }),
            [Action::AckWritten { upto: 200 }]
        );
    }

    #[test]
    fn a_failed_write_waits_for_the_writes_before_it() {
        let mut p = two_slots();
        append(&mut p, 100, true);
        append(&mut p, 200, true);
        // The second write fails first: the first one's appends get its own outcome.
        assert!(run(&mut p, Event::WriteDone { to: 200, ok: false }).is_empty());
        assert!(!p.is_broken());
        // No new write or sync starts behind a failed write.
        assert!(append(&mut p, 300, true).is_empty());
        assert!(run(&mut p, Event::Tick { now_us: 50_000 }).is_empty());
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: true }),
            [
                Action::AckWritten { upto: 100 },
                Action::Fail {
                    written: 100,
                    durable: 0
                }
            ]
        );
        assert!(p.is_broken());

        // An earlier write that fails breaks the log at once, whatever follows it.
        let mut p = two_slots();
        append(&mut p, 100, false);
        append(&mut p, 200, false);
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: false }),
            [Action::Fail {
                written: 0,
                durable: 0
            }]
        );
        assert!(run(&mut p, Event::WriteDone { to: 200, ok: true }).is_empty());
        assert_eq!(p.written(), 0);
    }

    fn durable_writes() -> FlushPolicy {
        FlushPolicy::new(
            FlushConfig {
                batch_bytes_max: 10_000,
                batch_delay_us: 0,
                flush_interval_ms: 10,
                write_chunk_bytes: u64::MAX,
                writes_in_flight_max: 2,
                durable_writes: true,
            },
            0,
            0,
        )
    }

    #[test]
    fn sync_appenders_get_one_durable_write_and_gather_behind_it() {
        let mut p = durable_writes();
        append(&mut p, 100, true);
        append(&mut p, 200, true);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 0 }),
            [Action::WriteDurable { from: 0, to: 200 }]
        );
        // Sync appenders arriving meanwhile wait for the next durable write.
        append(&mut p, 300, true);
        append(&mut p, 400, true);
        assert!(run(&mut p, Event::Tick { now_us: 1 }).is_empty());
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 200, ok: true }),
            [
                Action::AckWritten { upto: 200 },
                Action::AckDurable { upto: 200 }
            ]
        );
        assert_eq!(p.durable(), 200);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 2 }),
            [Action::WriteDurable { from: 200, to: 400 }]
        );
    }

    #[test]
    fn a_durable_write_needs_everything_before_it_durable() {
        let mut p = durable_writes();
        // Async bytes written but not synced: a durable write would not cover them.
        append(&mut p, 100, false);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 0 }),
            [Action::Write { from: 0, to: 100 }]
        );
        run(&mut p, Event::WriteDone { to: 100, ok: true });
        append(&mut p, 200, true);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 1 }),
            [Action::Write { from: 100, to: 200 }]
        );
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 200, ok: true }),
            [Action::AckWritten { upto: 200 }, Action::Sync { upto: 200 }]
        );
        // While that sync is in flight, the next sync waiter is written the plain way too.
        append(&mut p, 300, true);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 2 }),
            [Action::Write { from: 200, to: 300 }]
        );
        run(&mut p, Event::WriteDone { to: 300, ok: true });
        assert_eq!(
            run(
                &mut p,
                Event::SyncDone {
                    upto: 200,
                    ok: true
                }
            ),
            [Action::AckDurable { upto: 200 }, Action::Sync { upto: 300 }]
        );
        run(
            &mut p,
            Event::SyncDone {
                upto: 300,
                ok: true,
            },
        );
        // Everything durable again: the next batch is one durable write.
        append(&mut p, 400, true);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 3 }),
            [Action::WriteDurable { from: 300, to: 400 }]
        );
    }

    #[test]
    fn async_appends_are_written_while_a_durable_write_is_in_flight() {
        let mut p = durable_writes();
        append(&mut p, 100, true);
        run(&mut p, Event::Tick { now_us: 0 });
        append(&mut p, 150, false);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 1 }),
            [Action::Write { from: 100, to: 150 }]
        );
        assert_eq!(run(&mut p, Event::WriteDone { to: 150, ok: true }), []);
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 100, ok: true }),
            [
                Action::AckWritten { upto: 150 },
                Action::AckDurable { upto: 100 }
            ]
        );
    }

    #[test]
    fn a_failed_durable_write_fails_its_appends() {
        let mut p = durable_writes();
        append(&mut p, 100, true);
        run(&mut p, Event::Tick { now_us: 0 });
        run(&mut p, Event::WriteDone { to: 100, ok: true });
        append(&mut p, 200, true);
        assert_eq!(
            run(&mut p, Event::Tick { now_us: 1 }),
            [Action::WriteDurable { from: 100, to: 200 }]
        );
        assert_eq!(
            run(&mut p, Event::WriteDone { to: 200, ok: false }),
            [Action::Fail {
                written: 100,
                durable: 100
            }]
        );
    }
}
