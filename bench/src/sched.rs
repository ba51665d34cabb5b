//! Time and the open-loop scheduler.
//!
//! In open-loop mode a producer does not wait for one send to finish before the next: send `i`
//! is *meant* to go out at `start + i / rate`, and its latency is measured from that intended
//! time, not from when the client got round to it. A broker that stalls for a second therefore
//! shows a second of latency on every send that was due during the stall, instead of one slow
//! send and a quietly slowed-down client ("coordinated omission").
//!
//! [`OpenLoop`] is pure: it is handed the current time and answers which sends are due. It never
//! skips a due send and never stretches the schedule; when the caller is late it hands out the
//! overdue sends at once and records how late they were ([`LagStats`]), so a generator that
//! cannot keep up says so in the report.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch on this host's clock.
pub type Nanos = u64;

/// A send issued later than this after its intended time counts as late.
pub const LATE_THRESHOLD_NS: Nanos = 1_000_000;

/// Where the current time comes from; tests inject a fake one.
pub trait Clock {
    fn now_ns(&self) -> Nanos;
}

/// The process clock: monotonic (`Instant`), anchored once to the wall clock.
///
/// Born timestamps written into message bodies come from this clock, and consumers subtract
/// them from their own reading of it. Within one process the anchor is shared, so the
/// difference is exact and immune to wall-clock steps; between processes on one host the two
/// anchors agree to the wall clock's precision.
#[derive(Debug, Clone, Copy)]
pub struct AnchoredClock {
    base: Instant,
    base_wall_ns: Nanos,
}

impl AnchoredClock {
    pub fn new() -> AnchoredClock {
        let base_wall_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        AnchoredClock {
            base: Instant::now(),
            base_wall_ns,
        }
    }

    /// The `Instant` at which this clock reads `ns` (for sleeping until an intended time).
    pub fn instant_at(&self, ns: Nanos) -> Instant {
        self.base + Duration::from_nanos(ns.saturating_sub(self.base_wall_ns))
    }

    /// This clock's reading at `instant`.
    pub fn ns_at(&self, instant: Instant) -> Nanos {
        let since = instant.saturating_duration_since(self.base);
        self.base_wall_ns + u64::try_from(since.as_nanos()).unwrap_or(u64::MAX / 2)
    }
}

impl Default for AnchoredClock {
    fn default() -> Self {
        AnchoredClock::new()
    }
}

impl Clock for AnchoredClock {
    fn now_ns(&self) -> Nanos {
        self.ns_at(Instant::now())
    }
}

/// A send the schedule says is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Position in the schedule, from 0.
    pub index: u64,
    /// When it was meant to go out; latency is measured from here.
    pub intended_ns: Nanos,
    /// How late the caller asked for it (0 when on time).
    pub lag_ns: Nanos,
}

/// How far behind its schedule the generator fell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LagStats {
    pub max_ns: Nanos,
    /// Sends handed out more than [`LATE_THRESHOLD_NS`] after their intended time.
    pub late: u64,
    pub issued: u64,
}

impl LagStats {
    pub fn merge(&mut self, other: &LagStats) {
        self.max_ns = self.max_ns.max(other.max_ns);
        self.late += other.late;
        self.issued += other.issued;
    }
}

/// Why a schedule cannot be built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SchedError {
    /// The rate must be a positive, finite number of sends per second.
    BadRate(f64),
}

impl std::fmt::Display for SchedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedError::BadRate(r) => write!(f, "rate {r} is not a positive number of sends/s"),
        }
    }
}

impl std::error::Error for SchedError {}

/// Fixed-rate schedule: send `i` is intended at `start + i * 1e9 / rate` ns.
#[derive(Debug, Clone)]
pub struct OpenLoop {
    start_ns: Nanos,
    /// Sends per 1000 s, so fractional rates stay exact in integer math.
    rate_milli: u128,
    next: u64,
    /// Stop after this many sends (a message-count run).
    limit: Option<u64>,
    lag: LagStats,
}

impl OpenLoop {
    pub fn new(start_ns: Nanos, rate_per_s: f64) -> Result<OpenLoop, SchedError> {
        let rate_milli = (rate_per_s * 1000.0).round();
        if !rate_per_s.is_finite() || rate_milli < 1.0 {
            return Err(SchedError::BadRate(rate_per_s));
        }
        Ok(OpenLoop {
            start_ns,
            rate_milli: rate_milli as u128,
            next: 0,
            limit: None,
            lag: LagStats::default(),
        })
    }

    /// Ends the schedule after `n` sends.
    pub fn with_limit(mut self, n: u64) -> OpenLoop {
        self.limit = Some(n);
        self
    }

    /// Intended time of send `index`.
    pub fn intended(&self, index: u64) -> Nanos {
        let offset = u128::from(index) * 1_000_000_000_000 / self.rate_milli;
        self.start_ns
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// The next send if it is due at `now`, else `None`. Call until `None` to drain everything
    /// overdue: nothing is skipped however late the caller is.
    pub fn next_due(&mut self, now: Nanos) -> Option<Due> {
        if self.finished() {
            return None;
        }
        let intended_ns = self.intended(self.next);
        if intended_ns > now {
            return None;
        }
        let lag_ns = now - intended_ns;
        let due = Due {
            index: self.next,
            intended_ns,
            lag_ns,
        };
        self.next += 1;
        self.lag.issued += 1;
        self.lag.max_ns = self.lag.max_ns.max(lag_ns);
        if lag_ns > LATE_THRESHOLD_NS {
            self.lag.late += 1;
        }
        Some(due)
    }

    /// When the next send is due (to sleep until then); `None` once the limit is reached.
    pub fn next_at(&self) -> Option<Nanos> {
        (!self.finished()).then(|| self.intended(self.next))
    }

    pub fn finished(&self) -> bool {
        self.limit.is_some_and(|n| self.next >= n)
    }

    /// When a caller that last woke at `now` and wakes at most once per `tick_ns` should
    /// wake next: the next intended time, or a tick after `now` if that is later (the sends
    /// due by then go out together, each still measured from its own intended time). `None`
    /// once the limit is reached.
    pub fn wake_at(&self, now: Nanos, tick_ns: Nanos) -> Option<Nanos> {
        self.next_at().map(|at| at.max(now.saturating_add(tick_ns)))
    }

    pub fn lag(&self) -> LagStats {
        self.lag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a tick, the caller wakes a tick after its last wake when sends are closer
    /// together than that, and at the next send's time when they are further apart; the
    /// sends then handed out are the overdue ones, with their own intended times.
    #[test]
    fn a_tick_groups_close_sends_and_keeps_their_intended_times() {
        // 50 000 sends/s: one every 20 µs.
        let mut s = OpenLoop::new(1_000_000, 50_000.0).unwrap();
        assert_eq!(s.next_due(1_000_000).map(|d| d.index), Some(0));
        assert_eq!(s.wake_at(1_000_000, 0), Some(1_020_000));
        assert_eq!(s.wake_at(1_000_000, 100_000), Some(1_100_000));
        let woke: Vec<_> = std::iter::from_fn(|| s.next_due(1_100_000)).collect();
        assert_eq!(woke.len(), 5);
        assert_eq!(woke[0].intended_ns, 1_020_000);
        assert_eq!(woke[0].lag_ns, 80_000);
        assert_eq!(woke[4].intended_ns, 1_100_000);
        // 1 000 sends/s: further apart than the tick, which then changes nothing.
        let mut slow = OpenLoop::new(0, 1_000.0).unwrap();
        assert!(slow.next_due(0).is_some());
        assert_eq!(slow.wake_at(0, 100_000), Some(1_000_000));
        let done = OpenLoop::new(0, 1_000.0).unwrap().with_limit(0);
        assert_eq!(done.wake_at(0, 100_000), None);
    }
    use std::cell::Cell;

    /// A clock the test moves by hand.
    struct FakeClock(Cell<Nanos>);

    impl Clock for FakeClock {
        fn now_ns(&self) -> Nanos {
            self.0.get()
        }
    }

    impl FakeClock {
        fn advance(&self, ns: Nanos) {
            self.0.set(self.0.get() + ns);
        }
    }

    fn drain(s: &mut OpenLoop, clock: &FakeClock) -> Vec<Due> {
        std::iter::from_fn(|| s.next_due(clock.now_ns())).collect()
    }

    #[test]
    fn on_time_caller_gets_one_send_per_interval_with_no_lag() {
        let clock = FakeClock(Cell::new(1_000));
        let mut s = OpenLoop::new(1_000, 1000.0).unwrap(); // one send per ms
        let mut got = Vec::new();
        for _ in 0..5 {
            got.extend(drain(&mut s, &clock));
            clock.0.set(s.next_at().unwrap());
        }
        let intended: Vec<Nanos> = got.iter().map(|d| d.intended_ns).collect();
        assert_eq!(
            intended,
            [1_000, 1_001_000, 2_001_000, 3_001_000, 4_001_000]
        );
        assert!(got.iter().all(|d| d.lag_ns == 0));
        assert_eq!(
            s.lag(),
            LagStats {
                max_ns: 0,
                late: 0,
                issued: 5
            }
        );
    }

    #[test]
    fn a_stalled_caller_gets_every_overdue_send_with_its_own_lag() {
        let clock = FakeClock(Cell::new(0));
        let mut s = OpenLoop::new(0, 1000.0).unwrap();
        assert_eq!(drain(&mut s, &clock).len(), 1);
        // The caller (or the broker it waited on) stalls for 5.5 ms.
        clock.advance(5_500_000);
        let late = drain(&mut s, &clock);
        assert_eq!(late.len(), 5, "nothing is skipped");
        assert_eq!(
            late.iter().map(|d| d.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        // Latency is owed from the intended times, not from now.
        assert_eq!(
            late.iter().map(|d| d.lag_ns).collect::<Vec<_>>(),
            [4_500_000, 3_500_000, 2_500_000, 1_500_000, 500_000]
        );
        let lag = s.lag();
        assert_eq!(lag.max_ns, 4_500_000);
        assert_eq!(lag.late, 4, "sends over 1 ms late");
        assert_eq!(lag.issued, 6);
        // The schedule did not stretch: the next send keeps its original slot.
        assert_eq!(s.next_at(), Some(6_000_000));
    }

    #[test]
    fn fractional_and_high_rates_stay_exact() {
        let s = OpenLoop::new(0, 0.5).unwrap(); // one send every 2 s
        assert_eq!(s.intended(3), 6_000_000_000);
        let s = OpenLoop::new(7, 3.0).unwrap();
        assert_eq!(s.intended(3), 1_000_000_007);
        assert_eq!(s.intended(1), 333_333_340);
        let s = OpenLoop::new(0, 2_000_000.0).unwrap();
        assert_eq!(s.intended(1_000_000_000), 500_000_000_000);
    }

    #[test]
    fn limit_ends_the_schedule() {
        let clock = FakeClock(Cell::new(u64::MAX / 2));
        let mut s = OpenLoop::new(0, 10.0).unwrap().with_limit(3);
        assert_eq!(drain(&mut s, &clock).len(), 3);
        assert!(s.finished());
        assert_eq!(s.next_at(), None);
    }

    #[test]
    fn bad_rates_are_refused() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 0.0001] {
            assert!(OpenLoop::new(0, r).is_err(), "{r}");
        }
    }

    #[test]
    fn anchored_clock_round_trips_instants() {
        let c = AnchoredClock::new();
        let now = Instant::now();
        let ns = c.ns_at(now);
        let back = c.instant_at(ns);
        let diff = if back > now { back - now } else { now - back };
        assert!(diff < Duration::from_micros(1), "{diff:?}");
        assert!(c.now_ns() >= ns);
    }
}
