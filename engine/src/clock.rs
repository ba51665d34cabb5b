//! Time as an input: the engine reads wall-clock milliseconds through [`Clock`], so tests can
//! drive store timestamps, flush intervals and retention ages.

use std::cell::Cell;
use std::rc::Rc;

/// Wall-clock milliseconds since the Unix epoch.
pub trait Clock {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// A clock tests set by hand.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<i64>>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Rc::new(Cell::new(now_ms)))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.set(now_ms);
    }
    pub fn advance(&self, ms: i64) {
        self.0.set(self.0.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}
