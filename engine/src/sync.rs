//! Single-thread wake-up primitives (a shard owns its state; no `Send`, no locks).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A set of parked tasks woken all at once ("something changed, look again").
#[derive(Debug, Default)]
pub struct WaitList {
    wakers: RefCell<Vec<Waker>>,
}

impl WaitList {
    /// Registers a waker. No de-duplication: a task registers once per poll, a spurious
    /// extra wake costs one poll, and scanning the list would make a turn with n waiting
    /// appenders cost n² comparisons.
    pub fn register(&self, w: &Waker) {
        self.wakers.borrow_mut().push(w.clone());
    }

    pub fn wake_all(&self) {
        let ws = std::mem::take(&mut *self.wakers.borrow_mut());
        for w in ws {
            w.wake();
        }
    }
}

/// A one-task notification with a sticky flag: a kick before the wait is not lost.
#[derive(Debug, Default)]
pub struct Kick {
    flag: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Kick {
    pub fn kick(&self) {
        self.flag.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Ready when kicked since the last time this returned Ready.
    pub fn poll_kicked(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.replace(false) {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Yields once to the executor so other ready tasks (appenders of this turn) run first.
pub fn yield_now() -> impl Future<Output = ()> {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false)
}

/// Tasks waiting for a log offset to be reached, each woken once, when it is: an ack wakes
/// only the appends it acknowledges. (A [`WaitList`] here woke every waiting appender on
/// every ack, and most of them polled only to register again: with 512 appenders and a few
/// hundred acked per write, that was most of the task polls of a busy shard.)
///
/// Entries are kept ordered by offset. Appends register in the order their records were
/// encoded, so registration is a push at the back; a waiter polled again before its offset
/// is reached (a task that also waits on something else) replaces its own entry: two
/// waiting appends never share an end offset.
#[derive(Debug, Default)]
pub struct OffsetWaiters {
    waiters: RefCell<VecDeque<(u64, Waker)>>,
}

impl OffsetWaiters {
    /// Wakes `w` once everything below `end` is reached ([`OffsetWaiters::wake_upto`]) or at
    /// the next [`OffsetWaiters::wake_all`].
    pub fn register(&self, end: u64, w: &Waker) {
        let mut ws = self.waiters.borrow_mut();
        if ws.back().is_none_or(|(e, _)| *e < end) {
            ws.push_back((end, w.clone()));
            return;
        }
        let at = ws.partition_point(|(e, _)| *e < end);
        match ws.get_mut(at) {
            Some((e, old)) if *e == end => old.clone_from(w),
            _ => ws.insert(at, (end, w.clone())),
        }
    }

    /// Wakes the waiters whose offset is at or below `mark`.
    pub fn wake_upto(&self, mark: u64) {
        loop {
            // One at a time, with the list released while waking.
            let w = {
                let mut ws = self.waiters.borrow_mut();
                match ws.front() {
                    Some((e, _)) if *e <= mark => ws.pop_front().map(|(_, w)| w),
                    _ => None,
                }
            };
            match w {
                Some(w) => w.wake(),
                None => break,
            }
        }
    }

    /// Wakes every waiter (a failure, a close or a recovery: each looks again).
    pub fn wake_all(&self) {
        let ws = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, w) in ws {
            w.wake();
        }
    }

    /// Waiters registered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    /// A waker counting its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn offset_waiters_wake_only_what_was_reached() {
        let ws = OffsetWaiters::default();
        let (c10, w10) = counter();
        let (c20, w20) = counter();
        let (c30, w30) = counter();
        ws.register(10, &w10);
        ws.register(30, &w30);
        // Out of order (registered again after a spurious poll): kept sorted.
        ws.register(20, &w20);
        // The same offset again replaces the entry instead of adding one.
        ws.register(20, &w20);
        assert_eq!(ws.len(), 3);
        ws.wake_upto(9);
        assert_eq!(c10.0.load(Ordering::Relaxed), 0);
        ws.wake_upto(20);
        assert_eq!(c10.0.load(Ordering::Relaxed), 1);
        assert_eq!(c20.0.load(Ordering::Relaxed), 1);
        assert_eq!(c30.0.load(Ordering::Relaxed), 0);
        assert_eq!(ws.len(), 1);
        ws.wake_all();
        assert_eq!(c30.0.load(Ordering::Relaxed), 1);
        assert!(ws.is_empty());
        ws.wake_upto(u64::MAX);
        assert_eq!(c10.0.load(Ordering::Relaxed), 1);
    }
}
