//! The stop request a shard thread waits for: set once by the main thread (on SIGTERM or
//! when another shard fails to start), awaited by the shard's runtime.
//!
//! The only cross-thread object of a shard, touched twice in its life, never on the data
//! path; a mutex is fine here.

use std::future::poll_fn;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Poll, Waker};

#[derive(Debug, Default)]
pub struct StopSignal {
    stopped: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StopSignal {
    /// Asks the shard to stop; callable from any thread, any number of times.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let waker = self.waker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Resolves once [`StopSignal::stop`] was called. One waiter at a time.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.is_stopped() {
                return Poll::Ready(());
            }
            if let Ok(mut w) = self.waker.lock() {
                *w = Some(cx.waker().clone());
            }
            // Checked again after publishing the waker: a stop in between is not lost.
            if self.is_stopped() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn stop_from_another_thread_wakes_the_runtime() {
        let stop = Arc::new(StopSignal::default());
        let other = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            other.stop();
        });
        compio::runtime::Runtime::new()
            .unwrap()
            .block_on(stop.wait());
        assert!(stop.is_stopped());
        t.join().unwrap();
    }
}
