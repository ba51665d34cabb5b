//! Long polling (spec §3.4 step 6): pulls that found nothing park on their queue until a
//! matching message arrives or their suspend time runs out.
//!
//! [`Waiters`] is the pure part: which parked pulls a new message wakes. The pull handler
//! parks with a [`Signal`], then races it against its deadline; on timeout it calls
//! [`Waiters::cancel`]. One table per shard, touched only by that shard's thread.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringmq_codec::filter::TagFilter;

/// Identifies a parked pull for cancellation.
pub type WaiterId = u64;

struct Waiter<T> {
    id: WaiterId,
    /// The pull asked for this offset; a message at or after it wakes the pull.
    offset: i64,
    filter: TagFilter,
    token: T,
}

/// Parked pulls by topic, then queue id (lookups by `&str` need no allocation on the append
/// path).
pub struct Waiters<T> {
    by_topic: HashMap<String, HashMap<i32, Vec<Waiter<T>>>>,
    next_id: WaiterId,
    len: usize,
}

impl<T> Default for Waiters<T> {
    fn default() -> Self {
        Waiters {
            by_topic: HashMap::new(),
            next_id: 0,
            len: 0,
        }
    }
}

impl<T> Waiters<T> {
    pub fn park(
        &mut self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        filter: TagFilter,
        token: T,
    ) -> WaiterId {
        self.next_id += 1;
        let id = self.next_id;
        let queues = match self.by_topic.get_mut(topic) {
            Some(q) => q,
            None => self.by_topic.entry(topic.to_owned()).or_default(),
        };
        queues.entry(queue_id).or_default().push(Waiter {
            id,
            offset,
            filter,
            token,
        });
        self.len += 1;
        id
    }

    /// Messages became visible in the queue: its max offset is now `max_offset` and the last
    /// of them has `last_tag_code` (the engine's arrival report). Returns the tokens of the
    /// pulls to re-run, removing them.
    ///
    /// A pull parked at offset `o` wakes when `max_offset > o` and either the one message at
    /// `o` matches its filter by tag code, or several messages arrived past `o` at once (the
    /// report only carries the last tag, so the re-run does the filtering).
    pub fn on_arrival(
        &mut self,
        topic: &str,
        queue_id: i32,
        max_offset: i64,
        last_tag_code: i64,
    ) -> Vec<T> {
        if self.len == 0 {
            return Vec::new();
        }
        let Some(list) = self
            .by_topic
            .get_mut(topic)
            .and_then(|q| q.get_mut(&queue_id))
        else {
            return Vec::new();
        };
        let wakes = |w: &Waiter<T>| {
            max_offset > w.offset
                && (max_offset - w.offset > 1 || w.filter.matches_code(last_tag_code))
        };
        let mut woken = Vec::new();
        let mut i = 0;
        while i < list.len() {
            if list.get(i).is_some_and(wakes) {
                woken.push(list.swap_remove(i).token);
            } else {
                i += 1;
            }
        }
        self.len -= woken.len();
        woken
    }

    /// Removes a parked pull (its deadline passed). Returns its token if it was still parked.
    pub fn cancel(&mut self, topic: &str, queue_id: i32, id: WaiterId) -> Option<T> {
        let list = self.by_topic.get_mut(topic)?.get_mut(&queue_id)?;
        let i = list.iter().position(|w| w.id == id)?;
        self.len -= 1;
        Some(list.swap_remove(i).token)
    }

    /// Wakes every parked pull of a topic (it was deleted) or of all topics (shutdown).
    pub fn drain(&mut self, topic: Option<&str>) -> Vec<T> {
        let mut out = Vec::new();
        let mut take = |queues: HashMap<i32, Vec<Waiter<T>>>| {
            out.extend(queues.into_values().flatten().map(|w| w.token));
        };
        match topic {
            Some(t) => {
                if let Some(q) = self.by_topic.remove(t) {
                    take(q);
                }
            }
            None => self.by_topic.drain().for_each(|(_, q)| take(q)),
        }
        self.len -= out.len();
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A single-thread, fire-once wake-up: the parked pull awaits it, the append path fires it.
#[derive(Default)]
pub struct Signal {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Signal {
    pub fn new() -> Rc<Signal> {
        Rc::new(Signal::default())
    }

    pub fn fire(&self) {
        self.fired.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once [`Signal::fire`] was called.
    pub fn wait(self: &Rc<Self>) -> SignalWait {
        SignalWait {
            signal: Rc::clone(self),
        }
    }
}

impl Signal {
    /// `true` when the signal fired, `false` when `hold` passed first.
    pub async fn wait_or_timeout(self: &Rc<Self>, hold: Duration) -> bool {
        let mut fired = pin!(self.wait());
        let mut sleep = pin!(compio::time::sleep(hold));
        poll_fn(|cx| {
            if fired.as_mut().poll(cx).is_ready() {
                Poll::Ready(true)
            } else if sleep.as_mut().poll(cx).is_ready() {
                Poll::Ready(false)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

pub struct SignalWait {
    signal: Rc<Signal>,
}

impl Future for SignalWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.fired.get() {
            return Poll::Ready(());
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_codec::filter::java_string_hash;

    #[test]
    fn arrival_wakes_only_matching_waiters() {
        let mut w = Waiters::default();
        let tag_a = i64::from(java_string_hash("TagA"));
        let tag_b = i64::from(java_string_hash("TagB"));
        w.park("T", 0, 5, TagFilter::All, "all@5");
        w.park("T", 0, 7, TagFilter::All, "all@7");
        w.park("T", 0, 5, TagFilter::parse(Some("TagB")), "b@5");
        w.park("T", 1, 0, TagFilter::All, "q1");
        assert_eq!(w.len(), 4);
        assert!(w.on_arrival("U", 0, 9, 0).is_empty());
        // One message at 5 (max becomes 6) with TagA: only the match-all pull at 5 wakes.
        assert_eq!(w.on_arrival("T", 0, 6, tag_a), vec!["all@5"]);
        assert_eq!(w.len(), 3);
        // A second message (at 6): the TagB pull at 5 now has two messages past its offset,
        // so it wakes whatever the tag and its re-run filters; the pull at 7 stays.
        assert_eq!(w.on_arrival("T", 0, 7, tag_a), vec!["b@5"]);
        // Several at once past 7: the match-all pull at 7 wakes whatever the last tag.
        assert_eq!(w.on_arrival("T", 0, 9, tag_b), vec!["all@7"]);
        assert_eq!(w.len(), 1);
        assert!(
            w.on_arrival("T", 1, 0, tag_a).is_empty(),
            "nothing past offset 0"
        );
    }

    #[test]
    fn a_non_matching_single_arrival_keeps_the_pull_parked() {
        let mut w = Waiters::default();
        let tag_a = i64::from(java_string_hash("TagA"));
        let tag_b = i64::from(java_string_hash("TagB"));
        w.park("T", 0, 3, TagFilter::parse(Some("TagB")), "b@3");
        assert!(w.on_arrival("T", 0, 4, tag_a).is_empty());
        assert_eq!(w.on_arrival("T", 0, 5, tag_b), vec!["b@3"]);
    }

    #[test]
    fn cancel_and_drain() {
        let mut w = Waiters::default();
        let id = w.park("T", 0, 0, TagFilter::All, 1);
        w.park("T", 2, 0, TagFilter::All, 2);
        w.park("U", 0, 0, TagFilter::All, 3);
        assert_eq!(w.cancel("T", 0, id), Some(1));
        assert_eq!(w.cancel("T", 0, id), None);
        assert_eq!(w.drain(Some("T")), vec![2]);
        assert_eq!(w.drain(None), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn signal_wakes_its_waiter() {
        let signal = Signal::new();
        let mut fut = Box::pin(signal.wait());
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        signal.fire();
        assert!(fut.as_mut().poll(&mut cx).is_ready());
    }
}
