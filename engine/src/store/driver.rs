//! The group-commit driver: feeds events to the pure [`FlushPolicy`] and performs its
//! actions. Writes and syncs run as their own tasks, so a sync of batch N can overlap the
//! write of batch N+1. A durable write ([`Action::WriteDurable`]) is one disk operation that
//! writes and syncs its range; its segments are not marked dirty, since nothing of theirs is
//! left to sync.
//!
//! Appends and I/O completions are fed to the policy at once ([`feed`]), not queued for the
//! driver task: a task woken now runs after every task already in the run queue, and with
//! hundreds of appenders queued that hop cost a whole turn per completion, during which the
//! disk sat idle. The driver task only ends turns ([`Event::Tick`]) and runs timers.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::{Failure, Inner};
use crate::config::Prealloc;
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::flush::{Action, Event};
use crate::log::segment::{segment_name, segment_start};
use crate::sync::yield_now;
use crate::types::{Arrival, FlushMode, QueueOffset};

/// Capacity the arrivals ring keeps when empty: one busy turn's worth.
const ARRIVALS_KEEP: usize = 4096;

/// Runs until the store is dropped or closed.
pub(crate) async fn run<D: Disk>(inner: Rc<Inner<D>>) {
    let mut actions = Vec::new();
    let mut events = Vec::new();
    // The segment the next append goes to is prepared now, not by the first write. It is
    // only extended, never zero-filled: a fill of a 1 GiB segment takes seconds, and the
    // first append waits for this segment. Segments prepared ahead are filled. (With
    // `prepare_first_segment`, `open` has already prepared it in full.)
    let current = segment_start(inner.st.borrow().log.appended(), inner.cfg.segment_size);
    let first = match inner.cfg.prealloc.resolve(inner.cfg.flush_mode) {
        Prealloc::Fill => Prealloc::Extend,
        p => p,
    };
    maybe_precreate(&inner, current, first);
    loop {
        wait(&inner).await;
        if inner.closed.get() {
            break;
        }
        // Let every appender that is ready in this reactor turn encode first: their records
        // then share one write.
        yield_now().await;
        let epoch = inner.generation.get();
        let now = inner.now_us();
        inner.last_tick_us.set(now);
        std::mem::swap(&mut events, &mut *inner.events.borrow_mut());
        {
            let mut st = inner.st.borrow_mut();
            for (g, e) in events.drain(..) {
                if g == epoch {
                    st.policy.handle(e, &mut actions);
                }
            }
            st.policy.handle(Event::Tick { now_us: now }, &mut actions);
        }
        for a in actions.drain(..) {
            perform(&inner, epoch, a);
        }
        super::persist::maybe_start_background(&inner, now);
    }
}

/// Waits for a kick or the policy's next deadline (or a background timer).
async fn wait<D: Disk>(inner: &Inner<D>) {
    let deadline = {
        let st = inner.st.borrow();
        let policy = st.policy.deadline_us();
        // While a checkpoint or retention pass runs, its next due time is not a deadline:
        // one that takes longer than its interval would leave a due time in the past and
        // make this wait return at once, every turn. Its end kicks the driver.
        let background = if inner.background_busy.get() {
            u64::MAX
        } else {
            let cp = st.last_checkpoint_us + inner.cfg.checkpoint_interval_ms * 1000;
            let rt = st.last_retention_us + inner.cfg.retention_interval_ms * 1000;
            cp.min(rt)
        };
        Some(policy.map_or(background, |p| p.min(background)))
    };
    let now = inner.now_us();
    // At most a minute: with no deadline (u64::MAX) the sleep must not overflow the clock.
    let sleep_us = deadline.map_or(60_000_000, |d| d.saturating_sub(now).min(60_000_000));
    if sleep_us == 0 {
        return;
    }
    let mut sleep = pin!(compio::time::sleep(Duration::from_micros(sleep_us)));
    poll_fn(|cx| {
        if inner.kick.poll_kicked(cx).is_ready() {
            return Poll::Ready(());
        }
        sleep.as_mut().poll(cx)
    })
    .await
}

/// Applies `event` of generation `epoch` now and performs the resulting actions. Allocates
/// only when the event produces actions (an append mostly produces none).
pub(crate) fn feed<D: Disk>(inner: &Rc<Inner<D>>, epoch: u64, event: Event) {
    if epoch != inner.generation.get() {
        return;
    }
    let mut actions = Vec::new();
    inner.st.borrow_mut().policy.handle(event, &mut actions);
    for a in actions {
        perform(inner, epoch, a);
    }
}

/// Starts an I/O task now: its first poll runs here, so its first operation is on the ring
/// before the caller goes on, and the ring is submitted at once. (A spawned task first runs
/// after every task already queued: with hundreds of appenders, after the whole turn.) The
/// no-op waker is replaced by the task's own at the task's first poll, which always comes.
fn start_now(fut: impl Future<Output = ()> + 'static) {
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    if fut.as_mut().poll(&mut cx).is_pending() {
        compio::runtime::spawn(fut).detach();
        let _ = compio::runtime::Runtime::try_with_current(|rt| rt.flush());
    }
}

/// Feeds the completion of a write or sync task. `close()` and `recover()` wait (on `acks`)
/// for no I/O in flight, so the count drops before the event is fed, and they are woken even
/// when the event acknowledges nothing (a broken log). With appended bytes still waiting
/// for a write, the driver is kicked: they are written at the end of its next turn, not at
/// its next timer (the regression test below tells the story). Without any, it is not: an
/// extra driver turn per completion cost 0.3–0.5 µs per append at 64 sync appenders.
fn io_done<D: Disk>(inner: &Rc<Inner<D>>, epoch: u64, event: Event) {
    inner.inflight_io.set(inner.inflight_io.get() - 1);
    feed(inner, epoch, event);
    if inner.st.borrow().policy.unsubmitted() > 0 {
        inner.kick.kick();
    }
    let waiting = inner.closing.get() || inner.st.borrow().failure.is_some();
    if waiting && inner.inflight_io.get() == 0 {
        inner.wake_all_waiters();
    }
}

fn perform<D: Disk>(inner: &Rc<Inner<D>>, epoch: u64, action: Action) {
    match action {
        Action::Write { from, to } => start_write(inner, epoch, from, to, Durable::No),
        Action::WriteDurable { from, to } => start_write(inner, epoch, from, to, Durable::Yes),
        Action::Sync { upto } => start_sync(inner, epoch, upto),
        Action::AckWritten { upto } => {
            inner.room.wake_all();
            if inner.cfg.flush_mode == FlushMode::Async {
                advance_visible(inner, upto);
            }
            inner.written_waiters.wake_upto(upto);
            inner.acks.wake_all();
        }
        Action::AckDurable { upto } => {
            if inner.cfg.flush_mode == FlushMode::Sync {
                advance_visible(inner, upto);
            }
            inner.durable_waiters.wake_upto(upto);
            inner.acks.wake_all();
        }
        Action::Fail { written, durable } => {
            let mut st = inner.st.borrow_mut();
            if st.failure.is_none() {
                let cause = st
                    .pending_cause
                    .take()
                    .unwrap_or(StorageError::WriteFailed {
                        op: "write",
                        phys_offset: written,
                        kind: std::io::ErrorKind::Other,
                        message: "unknown failure".into(),
                    });
                st.failure = Some(Failure {
                    written,
                    durable,
                    cause,
                });
            }
            drop(st);
            inner.wake_all_waiters();
            inner.room.wake_all();
        }
    }
}

/// Moves the visibility watermark and tells the arrival hook which queues grew.
fn advance_visible<D: Disk>(inner: &Inner<D>, upto: u64) {
    let mut fired = Vec::new();
    {
        let mut st = inner.st.borrow_mut();
        if upto <= st.visible {
            return;
        }
        st.visible = upto;
        let has_hook = inner.arrival_hook.borrow().is_some();
        while st.arrivals.front().is_some_and(|a| a.3 <= upto) {
            let Some((topic, queue_id, max, _, tag)) = st.arrivals.pop_front() else {
                break;
            };
            if !has_hook {
                continue;
            }
            match fired.last_mut() {
                Some(Arrival {
                    topic: t,
                    queue_id: q,
                    max_offset,
                    last_tag_code,
                }) if *q == queue_id && (Rc::ptr_eq(t, &topic) || **t == *topic) => {
                    *max_offset = QueueOffset(max);
                    *last_tag_code = tag;
                }
                _ => fired.push(Arrival {
                    topic,
                    queue_id,
                    max_offset: QueueOffset(max),
                    last_tag_code: tag,
                }),
            }
        }
        // A burst leaves a large ring behind; give it back once drained (40 B per append).
        if st.arrivals.is_empty() && st.arrivals.capacity() > ARRIVALS_KEEP {
            st.arrivals.shrink_to(ARRIVALS_KEEP);
        }
    }
    if fired.is_empty() {
        return;
    }
    if let Some(hook) = inner.arrival_hook.borrow_mut().as_mut() {
        for a in &fired {
            hook(a);
        }
    }
}

/// Whether a write also makes its bytes durable ([`Action::WriteDurable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durable {
    No,
    Yes,
}

fn start_write<D: Disk>(inner: &Rc<Inner<D>>, epoch: u64, from: u64, to: u64, durable: Durable) {
    let buf = {
        let mut st = inner.st.borrow_mut();
        let log = &mut st.log;
        debug_assert_eq!(log.buf_start, from);
        debug_assert_eq!(log.appended(), to);
        // A write buffer has the capacity of a whole batch: untouched capacity costs no
        // memory, and a buffer reused from the pool never reallocates while a turn fills it.
        let next = log
            .spares
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(inner.cfg.flush.batch_bytes_max as usize));
        let buf = std::mem::replace(&mut log.buf, next);
        log.buf_start = to;
        buf
    };
    inner.room.wake_all();
    let mut stats = inner.stats.get();
    stats.writes += 1;
    stats.write_bytes += to - from;
    if durable == Durable::Yes {
        stats.syncs += 1;
    }
    inner.stats.set(stats);
    inner.inflight_io.set(inner.inflight_io.get() + 1);
    let inner = inner.clone();
    start_now(async move {
        let (r, mut buf) = write_pieces(&inner, buf, from, durable).await;
        buf.clear();
        let ok = r.is_ok();
        {
            let mut st = inner.st.borrow_mut();
            if st.log.spares.len() <= inner.cfg.flush.writes_in_flight_max {
                st.log.spares.push(buf);
            }
            if let Err(e) = r {
                st.pending_cause.get_or_insert(e);
            }
        }
        io_done(&inner, epoch, Event::WriteDone { to, ok });
    });
}

/// Writes `buf` (log bytes from `from`) into its segments, splitting at segment boundaries.
async fn write_pieces<D: Disk>(
    inner: &Rc<Inner<D>>,
    mut buf: Vec<u8>,
    from: u64,
    durable: Durable,
) -> (Result<(), StorageError>, Vec<u8>) {
    let size = inner.cfg.segment_size;
    let mut pos = 0usize;
    while pos < buf.len() {
        let at = from + pos as u64;
        let seg = segment_start(at, size);
        let n = ((seg + size - at) as usize).min(buf.len() - pos);
        let file = match segment_file(inner, seg).await {
            Ok(f) => f,
            Err(e) => return (Err(e), buf),
        };
        let (r, b) = match durable {
            Durable::No => file.write_all_at(buf, pos..pos + n, at - seg).await,
            Durable::Yes => file.write_durable_at(buf, pos..pos + n, at - seg).await,
        };
        buf = b;
        if let Err(e) = r {
            let op = match durable {
                Durable::No => "write",
                Durable::Yes => "write+fdatasync",
            };
            return (Err(StorageError::io(op, file.path(), at, e)), buf);
        }
        if durable == Durable::No {
            {
                let mut st = inner.st.borrow_mut();
                if !st.log.dirty.contains(&seg) {
                    st.log.dirty.push(seg);
                }
            }
            write_behind(inner, &file, seg, at + n as u64);
        }
        // The next segment is prepared once this one is half written: early enough for a
        // zero fill to finish well before the roll, late enough that a fresh log does not
        // fill two segments at once.
        if at + n as u64 - seg >= size / 2 {
            maybe_precreate(inner, seg + size, inner.cfg.prealloc);
        }
        pos += n;
    }
    (Ok(()), buf)
}

/// Hands the whole pages written to segment `seg` since the last writeback to the kernel's
/// writeback once `write_behind_bytes` of them have gathered (`end`: where the write just
/// completed ends, a log offset). One at a time. Pages of a segment left behind by a roll
/// are the periodic sync's.
fn write_behind<D: Disk>(inner: &Rc<Inner<D>>, file: &D::File, seg: u64, end: u64) {
    /// Writeback works on whole pages; a partial last page would be written twice.
    const PAGE: u64 = 4096;
    let every = inner.cfg.write_behind_bytes;
    // Under sync flush every write is made durable at once; nothing waits for a periodic
    // sync. And only while this write is the log's only I/O in flight: writeback slows the
    // writes it runs beside (ext4 maps the delayed blocks of the range under the inode's
    // block-map lock, which those writes need too), and a log busy enough to keep writes
    // queued is bound by its write rate, not by the flush's bursts.
    if every == 0
        || inner.cfg.flush_mode != FlushMode::Async
        || inner.writeback_busy.get()
        || inner.inflight_io.get() > 1
    {
        return;
    }
    let from = inner.writeback_mark.get().max(seg) - seg;
    let to = (end.saturating_sub(seg) / PAGE) * PAGE;
    if to < from.saturating_add(every) {
        return;
    }
    inner.writeback_mark.set(seg + to);
    inner.writeback_busy.set(true);
    let (inner, file) = (inner.clone(), file.clone());
    start_now(async move {
        // A hint: if it fails, the periodic sync still writes these pages and reports its
        // own error.
        let _ = file.start_writeback(from, to).await;
        inner.writeback_busy.set(false);
    });
}

/// The file of the segment starting at `seg`, creating it if needed (waiting for a
/// pre-creation in progress rather than racing it).
pub(crate) async fn segment_file<D: Disk>(
    inner: &Rc<Inner<D>>,
    seg: u64,
) -> Result<D::File, StorageError> {
    loop {
        let creating = {
            let st = inner.st.borrow();
            if let Some(f) = st.log.segments.get(&seg) {
                return Ok(f.clone());
            }
            st.log.creating == Some(seg)
        };
        if !creating {
            break;
        }
        poll_fn(|cx| {
            let st = inner.st.borrow();
            if st.log.creating != Some(seg) {
                return Poll::Ready(());
            }
            inner.segment_ready.register(cx.waker());
            Poll::Pending
        })
        .await;
    }
    let dir = inner.cfg.commitlog_dir();
    let path = dir.join(segment_name(seg));
    let file = inner
        .disk
        .open(&path)
        .await
        .map_err(|e| StorageError::io("open segment", &path, 0, e))?;
    inner
        .disk
        .sync_dir(&dir)
        .await
        .map_err(|e| StorageError::io("sync directory", &dir, 0, e))?;
    inner.st.borrow_mut().log.segments.insert(seg, file.clone());
    Ok(file)
}

fn maybe_precreate<D: Disk>(inner: &Rc<Inner<D>>, next: u64, prealloc: Prealloc) {
    {
        let mut st = inner.st.borrow_mut();
        if st.log.creating.is_some() || st.log.segments.contains_key(&next) {
            return;
        }
        st.log.creating = Some(next);
    }
    let inner = inner.clone();
    compio::runtime::spawn(async move {
        let r = create_segment(&inner, next, prealloc).await;
        let mut st = inner.st.borrow_mut();
        st.log.creating = None;
        if let Ok(f) = r {
            st.log.segments.entry(next).or_insert(f);
        }
        drop(st);
        inner.segment_ready.wake_all();
    })
    .detach();
}

/// `StoreConfig::prepare_first_segment`: the segment the next append goes to, when it does
/// not exist yet, is created and prepared in full as `cfg.prealloc` says before the store
/// opens.
pub(crate) async fn prepare_current_segment<D: Disk>(
    inner: &Rc<Inner<D>>,
) -> Result<(), StorageError> {
    let seg = segment_start(inner.st.borrow().log.appended(), inner.cfg.segment_size);
    if inner.st.borrow().log.segments.contains_key(&seg) {
        return Ok(());
    }
    let file = create_segment(inner, seg, inner.cfg.prealloc).await?;
    inner.st.borrow_mut().log.segments.insert(seg, file);
    Ok(())
}

/// Creates a segment ahead of time as `cfg.prealloc` says.
async fn create_segment<D: Disk>(
    inner: &Inner<D>,
    start: u64,
    prealloc: Prealloc,
) -> Result<D::File, StorageError> {
    let dir = inner.cfg.commitlog_dir();
    let path = dir.join(segment_name(start));
    let io = |op, e| StorageError::io(op, &path, 0, e);
    let file = inner
        .disk
        .open(&path)
        .await
        .map_err(|e| io("open segment", e))?;
    let size = inner.cfg.segment_size;
    match prealloc.resolve(inner.cfg.flush_mode) {
        Prealloc::Create | Prealloc::Auto => {}
        Prealloc::Extend => file
            .set_len(size)
            .await
            .map_err(|e| io("extend segment", e))?,
        Prealloc::Fill => {
            file.fill_zeros(0, size)
                .await
                .map_err(|e| io("fill segment", e))?;
            file.sync_data()
                .await
                .map_err(|e| io("sync filled segment", e))?;
        }
    }
    inner
        .disk
        .sync_dir(&dir)
        .await
        .map_err(|e| StorageError::io("sync directory", &dir, 0, e))?;
    Ok(file)
}

fn start_sync<D: Disk>(inner: &Rc<Inner<D>>, epoch: u64, upto: u64) {
    let files: Vec<(u64, D::File)> = {
        let mut st = inner.st.borrow_mut();
        let dirty = std::mem::take(&mut st.log.dirty);
        dirty
            .into_iter()
            .filter_map(|s| st.log.segments.get(&s).map(|f| (s, f.clone())))
            .collect()
    };
    let mut stats = inner.stats.get();
    stats.syncs += 1;
    inner.stats.set(stats);
    inner.inflight_io.set(inner.inflight_io.get() + 1);
    let inner = inner.clone();
    start_now(async move {
        let mut result = Ok(());
        for (seg, f) in &files {
            if let Err(e) = f.sync_data().await {
                result = Err(StorageError::io("fdatasync", f.path(), *seg, e));
                break;
            }
        }
        let ok = result.is_ok();
        if let Err(e) = result {
            inner.st.borrow_mut().pending_cause.get_or_insert(e);
        }
        io_done(&inner, epoch, Event::SyncDone { upto, ok });
    });
}

#[cfg(test)]
mod tests {
    //! Bug story: appends that arrive while the write slots are busy wait for the end of a
    //! driver turn, and the driver, once asleep with no batch deadline, was only woken by a
    //! new append. With nobody appending after the in-flight write completed, the waiting
    //! bytes sat until the next timer (checkpoint, retention: seconds). Method: real files,
    //! one write slot and durable writes, a second append made while the first one's durable
    //! write is in flight, and nothing after it; it must complete (30 s deadline, timers set
    //! to hours so that only the fix can end the wait in time).
    use std::future::Future;
    use std::pin::pin;
    use std::rc::Rc;
    use std::task::Poll;
    use std::time::Duration;

    use crate::disk::{SyncMethod, UringDisk};
    use crate::{AppendRequest, Durability, FlushMode, Store, StoreConfig, SystemClock};

    fn req(body: &[u8]) -> AppendRequest<'_> {
        AppendRequest {
            topic: "T",
            queue_id: 0,
            body,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: std::net::SocketAddr::from(([127, 0, 0, 1], 1)),
            properties: "",
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            tag_code: 0,
            durability: Durability::Synced,
        }
    }

    #[test]
    fn bytes_pending_behind_a_busy_slot_are_written_when_it_frees() {
        let dir = std::env::temp_dir().join(format!("ringmq-driver-kick-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let mut cfg = StoreConfig::new(&dir);
            cfg.flush_mode = FlushMode::Sync;
            cfg.segment_size = 1 << 20;
            cfg.prealloc = crate::Prealloc::Extend;
            cfg.flush.writes_in_flight_max = 1;
            cfg.checkpoint_interval_ms = 3_600_000;
            cfg.retention_interval_ms = 3_600_000;
            cfg.flush.flush_interval_ms = 3_600_000;
            let disk = UringDisk::new(SyncMethod::Uring).unwrap();
            let store = Rc::new(Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap());
            // Warm up: the first segment exists before the measured appends.
            store.append(req(b"warm")).await.unwrap();
            let first = {
                let s = store.clone();
                compio::runtime::spawn(async move { s.append(req(b"first")).await.map(|_| ()) })
            };
            // Wait until the first append's durable write is submitted and still in flight.
            let writes = store.stats().writes;
            while store.stats().writes == writes {
                crate::sync::yield_now().await;
            }
            if store.durable_offset() == store.appended_offset() {
                // The write finished before this task ran again: nothing to test this time.
                first.await.unwrap().unwrap();
                return;
            }
            let mut second = pin!(store.append(req(b"second")));
            let mut deadline = pin!(compio::time::sleep(Duration::from_secs(30)));
            let done = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = second.as_mut().poll(cx) {
                    return Poll::Ready(Some(r));
                }
                deadline.as_mut().poll(cx).map(|()| None)
            })
            .await;
            let r = done.expect("the second append never completed");
            r.unwrap();
            first.await.unwrap().unwrap();
        });
        let _ = std::fs::remove_dir_all(&dir);
    }
}
