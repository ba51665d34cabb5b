//! Small single-thread async helpers for the worker runtimes: a stop flag tasks can wait on,
//! a FIFO with one waiting consumer, and "first of two futures". Everything here lives on one
//! worker thread (`Rc`, `Cell`), so nothing locks.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// A flag that, once set, wakes every task waiting on it.
#[derive(Default)]
pub struct Stop {
    set: Cell<bool>,
    waiters: RefCell<Vec<Waker>>,
}

impl Stop {
    pub fn new() -> Rc<Stop> {
        Rc::new(Stop::default())
    }

    pub fn set(&self) {
        self.set.set(true);
        for w in self.waiters.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Completes once the flag is set.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.get() {
                Poll::Ready(())
            } else {
                let mut w = self.waiters.borrow_mut();
                if !w.iter().any(|x| x.will_wake(cx.waker())) {
                    w.push(cx.waker().clone());
                }
                Poll::Pending
            }
        })
        .await
    }
}

/// A FIFO with any number of producers and one consumer task on the same thread.
pub struct LocalQueue<T> {
    items: RefCell<VecDeque<T>>,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl<T> Default for LocalQueue<T> {
    fn default() -> Self {
        LocalQueue {
            items: RefCell::new(VecDeque::new()),
            waker: RefCell::new(None),
            closed: Cell::new(false),
        }
    }
}

impl<T> LocalQueue<T> {
    pub fn push(&self, item: T) {
        self.items.borrow_mut().push_back(item);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// No more pushes: `pop` returns `None` once the queue is empty.
    pub fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Drops everything queued; returns how many items there were.
    pub fn clear(&self) -> usize {
        let mut items = self.items.borrow_mut();
        let n = items.len();
        items.clear();
        n
    }

    pub async fn pop(&self) -> Option<T> {
        poll_fn(|cx| {
            if let Some(item) = self.items.borrow_mut().pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.closed.get() {
                return Poll::Ready(None);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls both futures; returns the output of the first to finish (the other is dropped).
pub async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_and_stop_on_a_runtime() {
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let q: Rc<LocalQueue<u32>> = Rc::default();
            let stop = Stop::new();
            let (q2, stop2) = (q.clone(), stop.clone());
            let consumer = compio::runtime::spawn(async move {
                let mut got = Vec::new();
                while let Some(v) = q2.pop().await {
                    got.push(v);
                }
                stop2.wait().await;
                got
            });
            for i in 0..5 {
                q.push(i);
                compio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            q.close();
            stop.set();
            assert_eq!(consumer.await.unwrap(), [0, 1, 2, 3, 4]);
            match first(std::future::pending::<()>(), stop.wait()).await {
                Either::Right(()) => {}
                Either::Left(()) => panic!("pending finished"),
            }
        });
    }
}
