//! Group commit as a pure state machine: events in, actions out, no I/O and no clock of its
//! own (time arrives in the events).
//!
//! The log is a line of bytes: `durable ≤ written ≤ appended`. At most one write is in
//! flight (writes must land in order) and at most one sync; a sync may run while the next
//! write is in flight, so durability of batch N overlaps the write of batch N+1.
//!
//! - A write covers everything appended and not yet written: all appends of a reactor turn
//!   become one write. It is submitted at the end of the turn ([`Event::Tick`]) once the
//!   oldest pending byte has waited `batch_delay_us` (0: at once), or as soon as
//!   `batch_bytes_max` bytes are pending.
//! - Mid-turn, when no write is in flight and `write_chunk_bytes` are pending, the write is
//!   submitted at once (on [`Event::Appended`], or on [`Event::WriteDone`] of the previous
//!   one): the kernel copies the first part of a big turn while the rest is still being
//!   encoded, instead of the two taking turns.
//! - A sync is submitted when a sync-durability append waits on written bytes (not while the
//!   write it waits for is still in flight), or every `flush_interval_ms` for async-flush data.
//! - A failed write or sync fails exactly the appends it covered or that wait behind it, and
//!   the policy stops: the log refuses appends until it is recovered.

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
    /// Pending bytes that start a write mid-turn when none is in flight (`u64::MAX`: only
    /// at the end of a turn). Sized so a write is big enough to be cheap per byte, and small
    /// enough that a turn of hundreds of appenders splits into a few overlapping writes.
    pub write_chunk_bytes: u64,
}

impl Default for FlushConfig {
    fn default() -> Self {
        FlushConfig {
            batch_bytes_max: 4 << 20,
            batch_delay_us: 0,
            flush_interval_ms: 500,
            write_chunk_bytes: 128 << 10,
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
    /// The write of `[from, to)` completed.
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

/// The group-commit state.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    cfg: FlushConfig,
    appended: u64,
    written: u64,
    durable: u64,
    write_to: Option<u64>,
    sync_upto: Option<u64>,
    sync_wanted: u64,
    first_pending_us: Option<u64>,
    /// The byte bound was reached: write at the next tick, whatever the delay.
    write_due: bool,
    last_sync_us: u64,
    broken: bool,
}

impl FlushPolicy {
    /// A policy for a log whose bytes below `end` are already durable.
    pub fn new(cfg: FlushConfig, end: u64, now_us: u64) -> Self {
        FlushPolicy {
            cfg,
            appended: end,
            written: end,
            durable: end,
            write_to: None,
            sync_upto: None,
            sync_wanted: end,
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
        self.write_to.is_none() && self.sync_upto.is_none() && self.appended == self.written
    }
    /// Nothing in flight (a write or sync may still be due).
    pub fn in_flight(&self) -> bool {
        self.write_to.is_some() || self.sync_upto.is_some()
    }

    /// When the policy next wants a [`Event::Tick`] although nothing else happens.
    pub fn deadline_us(&self) -> Option<u64> {
        if self.broken {
            return None;
        }
        let batch = self
            .first_pending_us
            .filter(|_| self.write_to.is_none())
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
                if self.appended - self.written >= self.cfg.batch_bytes_max {
                    self.write_due = true;
                }
                self.maybe_write_chunk(out);
            }
            Event::WriteDone { to, ok } => {
                self.write_to = None;
                if !ok {
                    return self.fail(out);
                }
                self.written = to;
                out.push(Action::AckWritten { upto: to });
                self.maybe_sync(None, out);
                self.maybe_write_chunk(out);
            }
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

    fn submit_write(&mut self, out: &mut Vec<Action>) {
        if self.write_to.is_some() || self.appended == self.written {
            return;
        }
        self.write_to = Some(self.appended);
        self.first_pending_us = None;
        self.write_due = false;
        out.push(Action::Write {
            from: self.written,
            to: self.appended,
        });
    }

    /// Submits a write mid-turn when a chunk is pending and nothing is being written.
    fn maybe_write_chunk(&mut self, out: &mut Vec<Action>) {
        if self.write_to.is_none() && self.appended - self.written >= self.cfg.write_chunk_bytes {
            self.submit_write(out);
        }
    }

    fn maybe_sync(&mut self, now_us: Option<u64>, out: &mut Vec<Action>) {
        if self.sync_upto.is_some() || self.written <= self.durable {
            return;
        }
        // A sync waiter whose bytes are all written, or one whose write is not in flight.
        let waiter_ready = self.sync_wanted > self.durable
            && (self.sync_wanted <= self.written || self.write_to.is_none());
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
}
