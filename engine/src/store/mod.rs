//! The store of one shard: commit log, consume queues, key index, group commit, checkpoint,
//! retention. Owned by one thread; `append` and the reads take `&self` and may run from many
//! tasks of that thread at once.
//!
//! - [`open`](Store::open) recovers (`open.rs`); `append.rs` encodes records straight into
//!   the write buffer; `driver.rs` runs the group-commit policy and the I/O; `read.rs` serves
//!   consume-queue reads, lookups and key queries; `persist.rs` writes consume-queue and index
//!   files and the checkpoint; `retention.rs` deletes old segments.

mod append;
mod driver;
mod open;
mod persist;
mod read;
mod retention;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use crate::clock::Clock;
use crate::config::StoreConfig;
use crate::disk::Disk;
use crate::error::StorageError;
use crate::flush::{Event, FlushPolicy};
use crate::index::KeyIndex;
use crate::queue::Topics;
use crate::sync::{Kick, OffsetWaiters, WaitList};
use crate::types::Arrival;

/// A hook called with every batch of newly visible messages (long polling wakes on it).
pub type ArrivalHook = Box<dyn FnMut(&Arrival)>;

/// The commit log's in-memory side: open segments and the write buffer.
pub(crate) struct LogState<F> {
    pub segments: BTreeMap<u64, F>,
    /// Start of the segment being created ahead of time.
    pub creating: Option<u64>,
    /// Start of the oldest segment.
    pub min: u64,
    /// Encoded bytes `[buf_start, buf_start + buf.len())` not yet handed to a write.
    pub buf: Vec<u8>,
    pub buf_start: u64,
    /// Emptied write buffers for the next writes, at most one per write slot plus one. A
    /// single spare left the second of two writes in flight a buffer of no capacity, grown
    /// by doubling (copies, and page faults on fresh memory) while the turn encoded into it,
    /// and dropped one of the two buffers when both writes completed.
    pub spares: Vec<Vec<u8>>,
    /// Segments written since the last sync was submitted.
    pub dirty: Vec<u64>,
    /// Store time of the first record of each segment, when known (retention ages).
    pub first_ts: BTreeMap<u64, i64>,
}

impl<F> LogState<F> {
    pub fn appended(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }
}

/// Per-index-file bookkeeping.
pub(crate) struct IndexFile<F> {
    pub file: Option<F>,
    pub count: u64,
    pub last_phys: u64,
}

/// A failure that broke the log: the watermarks at the time and the cause.
pub(crate) struct Failure {
    pub written: u64,
    pub durable: u64,
    pub cause: StorageError,
}

/// Everything that recovery rebuilds.
pub(crate) struct State<F> {
    pub log: LogState<F>,
    pub topics: Topics<F>,
    pub index: KeyIndex,
    pub index_files: BTreeMap<u64, IndexFile<F>>,
    pub policy: FlushPolicy,
    pub failure: Option<Failure>,
    /// The first I/O error of a write or sync, until the policy turns it into a failure.
    pub pending_cause: Option<StorageError>,
    /// Bytes below this are visible to readers.
    pub visible: u64,
    pub arrivals: VecDeque<(Rc<str>, i32, u64, u64, i64)>,
    pub derived_upto: u64,
    pub checkpoint_seq: u64,
    pub checkpoint_file: Option<F>,
    pub disk_full: Option<(f64, f64)>,
    pub last_checkpoint_us: u64,
    pub last_retention_us: u64,
}

pub(crate) struct Inner<D: Disk> {
    pub disk: D,
    pub cfg: StoreConfig,
    pub clock: Rc<dyn Clock>,
    pub started: Instant,
    pub st: RefCell<State<D::File>>,
    /// Events queued for the driver's next turn, tagged with their generation. Appends and
    /// I/O completions do not queue here: they are fed to the policy at once
    /// (`driver::feed`), and `recover()` clears what is left.
    pub events: RefCell<Vec<(u64, Event)>>,
    pub kick: Kick,
    /// Tasks waiting for any change of the watermarks, the failure state or the I/O in
    /// flight (`close` and `recover`), woken on every ack. Appends wait in the two lists
    /// below instead, each woken only when its own offset is reached.
    pub acks: WaitList,
    /// Appends waiting for their bytes to be written, by end offset.
    pub written_waiters: OffsetWaiters,
    /// Appends waiting for their bytes to be durable, by end offset.
    pub durable_waiters: OffsetWaiters,
    /// Appenders waiting for room in the write buffer.
    pub room: WaitList,
    /// Writers waiting for a segment being created.
    pub segment_ready: WaitList,
    pub arrival_hook: RefCell<Option<ArrivalHook>>,
    pub generation: Cell<u64>,
    /// Watermarks of the generation before the last `recover()`, for waiters from it.
    pub prev_marks: Cell<(u64, u64)>,
    pub inflight_io: Cell<usize>,
    /// Write-behind: where the next writeback starts (a log offset), and whether one is in
    /// flight ([`StoreConfig::write_behind_bytes`]).
    pub writeback_mark: Cell<u64>,
    pub writeback_busy: Cell<bool>,
    pub background_busy: Cell<bool>,
    pub closing: Cell<bool>,
    pub closed: Cell<bool>,
    pub stats: Cell<StoreStats>,
    /// Time of the driver's last pass: appends stamp their batch with it instead of reading
    /// the clock again (the batch delay is measured from the turn that saw the first byte).
    pub last_tick_us: Cell<u64>,
}

/// Counters of the group commit, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Log writes submitted and their bytes.
    pub writes: u64,
    pub write_bytes: u64,
    /// Sync rounds submitted (each syncs every dirty segment).
    pub syncs: u64,
}

impl<D: Disk> Inner<D> {
    pub fn now_us(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Wakes every waiter of an ack (a failure, a close, a recovery, or the last I/O of a
    /// broken or closing log): each looks at the state again.
    pub fn wake_all_waiters(&self) {
        self.acks.wake_all();
        self.written_waiters.wake_all();
        self.durable_waiters.wake_all();
    }
}

/// One shard's store.
pub struct Store<D: Disk> {
    inner: Rc<Inner<D>>,
}

impl<D: Disk> std::fmt::Debug for Store<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.cfg.root)
            .finish()
    }
}

impl<D: Disk> Drop for Store<D> {
    fn drop(&mut self) {
        // Stops the driver task; an unclosed store recovers by scanning on the next open.
        self.inner.closed.set(true);
        self.inner.kick.kick();
        self.inner.wake_all_waiters();
        self.inner.room.wake_all();
    }
}

impl<D: Disk> Store<D> {
    /// The configuration the store runs with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.cfg
    }

    /// Installs the hook that hears about newly visible messages.
    pub fn set_arrival_hook(&self, hook: ArrivalHook) {
        *self.inner.arrival_hook.borrow_mut() = Some(hook);
    }

    /// End of the log: bytes encoded so far (written or not).
    pub fn appended_offset(&self) -> u64 {
        self.inner.st.borrow().log.appended()
    }

    /// Bytes below this offset are written to files.
    pub fn written_offset(&self) -> u64 {
        self.inner.st.borrow().policy.written()
    }

    /// Bytes below this offset are durable.
    pub fn durable_offset(&self) -> u64 {
        self.inner.st.borrow().policy.durable()
    }

    /// Start of the oldest segment kept.
    pub fn min_phys_offset(&self) -> u64 {
        self.inner.st.borrow().log.min
    }

    /// Group-commit counters since open.
    pub fn stats(&self) -> StoreStats {
        self.inner.stats.get()
    }

    /// Whether appends are refused until [`Store::recover`].
    pub fn is_broken(&self) -> bool {
        self.inner.st.borrow().failure.is_some()
    }

    /// Number of consume queues.
    pub fn queue_count(&self) -> usize {
        self.inner
            .st
            .borrow()
            .topics
            .values()
            .map(|qs| qs.len())
            .sum()
    }

    /// Every (topic, queue id) the store knows.
    pub fn queues(&self) -> Vec<(String, i32)> {
        let st = self.inner.st.borrow();
        let mut out: Vec<(String, i32)> = st
            .topics
            .iter()
            .flat_map(|(t, qs)| qs.keys().map(move |q| (t.clone(), q)))
            .collect();
        out.sort();
        out
    }
}
