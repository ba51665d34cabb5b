//! Single-thread wake-up primitives (a shard owns its state; no `Send`, no locks).

use std::cell::{Cell, RefCell};
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
