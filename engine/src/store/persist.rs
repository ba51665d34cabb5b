//! Derived files behind the log: consume-queue and index entries are written to their files
//! and synced, then the checkpoint moves `derived_upto` forward. Runs as a background task
//! every `checkpoint_interval_ms`, and once more at `close()` with the clean flag.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use super::{IndexFile, Inner, Store};
use crate::checkpoint::Checkpoint;
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::index::{INDEX_ENTRY_SIZE, sorted};
use crate::log::segment::segment_name;
use crate::queue::CQ_ENTRY_SIZE;

/// One file write of derived data.
struct Job<F> {
    path: PathBuf,
    file: Option<F>,
    offset: u64,
    bytes: Vec<u8>,
}

/// Starts the checkpoint or retention task when due (one background task at a time).
pub(crate) fn maybe_start_background<D: Disk>(inner: &Rc<Inner<D>>, now_us: u64) {
    if inner.background_busy.get() || inner.closing.get() {
        return;
    }
    let (checkpoint_due, retention_due) = {
        let st = inner.st.borrow();
        if st.failure.is_some() {
            return;
        }
        (
            now_us >= st.last_checkpoint_us + inner.cfg.checkpoint_interval_ms * 1000,
            now_us >= st.last_retention_us + inner.cfg.retention_interval_ms * 1000,
        )
    };
    if !(checkpoint_due || retention_due) {
        return;
    }
    inner.background_busy.set(true);
    // Both marks move now, not when the task gets to each step: a due time left in the past
    // made the driver's wait return at once, so the driver spun for as long as the task ran
    // (at start-up, where both are due, for the whole first checkpoint). Under `chrt -f` the
    // spinning shard thread never let the blocking threads the checkpoint waits for run.
    {
        let mut st = inner.st.borrow_mut();
        if checkpoint_due {
            st.last_checkpoint_us = now_us;
        }
        if retention_due {
            st.last_retention_us = now_us;
        }
    }
    let inner = inner.clone();
    compio::runtime::spawn(async move {
        if checkpoint_due {
            let upto = inner.st.borrow().policy.durable();
            // A failed checkpoint leaves the old one in force; the next attempt retries.
            let _ = persist_derived(&inner, upto, false).await;
        }
        if retention_due {
            let _ = super::retention::run_once(&inner).await;
        }
        inner.background_busy.set(false);
        inner.kick.kick();
    })
    .detach();
}

/// Writes every consume-queue and index entry for records below `upto` (a durable record
/// boundary), syncs those files, then writes the checkpoint.
pub(crate) async fn persist_derived<D: Disk>(
    inner: &Inner<D>,
    upto: u64,
    clean: bool,
) -> Result<(), StorageError> {
    let epoch = inner.generation.get();
    let (cq_jobs, marks) = plan_queue_writes(inner, upto);
    let (ix_jobs, ix_upto, ix_marks) = plan_index_writes(inner, upto);
    let mut touched: Vec<D::File> = Vec::new();
    // Paths already in `touched`: a linear search here was quadratic in the number of
    // queues (10 000 queues: 12 s of path comparisons per checkpoint in `perf`).
    let mut touched_paths: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut new_dirs: Vec<PathBuf> = Vec::new();
    for job in cq_jobs.into_iter().chain(ix_jobs) {
        let file = match job.file {
            Some(f) => f,
            None => {
                let dir = job.path.parent().map(PathBuf::from).unwrap_or_default();
                inner
                    .disk
                    .create_dir_all(&dir)
                    .await
                    .map_err(|e| StorageError::io("create directory", &dir, 0, e))?;
                let f = inner
                    .disk
                    .open(&job.path)
                    .await
                    .map_err(|e| StorageError::io("open", &job.path, 0, e))?;
                remember_file(inner, &job.path, &f);
                new_dirs.push(dir);
                f
            }
        };
        let n = job.bytes.len();
        let (r, _) = file.write_all_at(job.bytes, 0..n, job.offset).await;
        r.map_err(|e| StorageError::io("write", &job.path, job.offset, e))?;
        if touched_paths.insert(file.path().to_path_buf()) {
            touched.push(file);
        }
    }
    sync_files(&touched).await?;
    // New files' directories and their parents (a new queue directory is an entry of its
    // topic directory), each once, synced together like the files.
    let parents: Vec<PathBuf> = new_dirs
        .iter()
        .filter_map(|d| d.parent().map(PathBuf::from))
        .collect();
    new_dirs.extend(parents);
    new_dirs.sort();
    new_dirs.dedup();
    for group in new_dirs.chunks(SYNC_WINDOW) {
        let handles: Vec<_> = group
            .iter()
            .map(|d| {
                let (disk, d) = (inner.disk.clone(), d.clone());
                compio::runtime::spawn(async move { (disk.sync_dir(&d).await, d) })
            })
            .collect();
        for h in handles {
            let (r, d) = h.await.map_err(|_| task_failed("sync directory"))?;
            r.map_err(|e| StorageError::io("sync directory", &d, 0, e))?;
        }
    }
    if epoch != inner.generation.get() {
        return Ok(());
    }
    {
        let mut st = inner.st.borrow_mut();
        for ((topic, qid), persisted) in marks {
            if let Some(q) = st.topics.get_mut(&topic).and_then(|qs| qs.get_mut(&qid)) {
                // Written (page cache) and synced: these entries may now leave memory.
                q.mark_persisted(persisted);
            }
        }
        st.index.mark_persisted(ix_upto);
        for (start, count, last_phys) in ix_marks {
            let meta = st.index_files.entry(start).or_insert(IndexFile {
                file: None,
                count: 0,
                last_phys,
            });
            meta.count = meta.count.max(count);
            meta.last_phys = last_phys;
        }
    }
    write_checkpoint(inner, upto, clean).await?;
    // Sorting is an optimisation of lookups: a failure leaves the journal, which answers
    // the same queries, and the next checkpoint retries.
    let _ = seal_index_files(inner).await;
    Ok(())
}

/// Rewrites every full journal file of the key index as a sorted file
/// (`index/sorted/<start>`, FORMAT.md), then removes the journal. The sorted file is
/// complete once its header is: entries are synced first, the header after them.
async fn seal_index_files<D: Disk>(inner: &Inner<D>) -> Result<(), StorageError> {
    let per_file = inner.cfg.index_entries_per_file;
    let todo: Vec<(u64, D::File, u64)> = {
        let st = inner.st.borrow();
        st.index_files
            .iter()
            .filter(|(_, m)| m.count >= per_file)
            .filter_map(|(s, m)| {
                let f = m.file.clone()?;
                (!sorted::is_sorted_path(f.path())).then_some((*s, f, m.count))
            })
            .collect()
    };
    let index_dir = inner.cfg.index_dir();
    let dir = index_dir.join(sorted::SORTED_DIR);
    let io = |op: &'static str, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |e| StorageError::io(op, &path, 0, e)
    };
    for (start, journal, count) in todo {
        let epoch = inner.generation.get();
        let len = count as usize * INDEX_ENTRY_SIZE;
        let (r, bytes) = journal.read_exact_at(vec![0; len], 0).await;
        r.map_err(io("read", journal.path()))?;
        // Sorting a full journal (1 Mi entries, 24 MiB) takes 70-80 ms of CPU here (a
        // stand-alone release build of `sort_journal`'s steps): off the shard thread, which
        // would otherwise hold every send that long once per 1 Mi keyed messages.
        let (body, n) = compio::runtime::spawn_blocking(move || sorted::sort_journal(&bytes))
            .await
            .map_err(|_| task_failed("sort index journal"))?;
        inner
            .disk
            .create_dir_all(&dir)
            .await
            .map_err(io("create directory", &dir))?;
        let path = dir.join(segment_name(start));
        let f = inner.disk.open(&path).await.map_err(io("open", &path))?;
        f.set_len(0).await.map_err(io("truncate", &path))?;
        let blen = body.len();
        let (r, _) = f
            .write_all_at(body, 0..blen, sorted::SORTED_HEADER_LEN as u64)
            .await;
        r.map_err(io("write", &path))?;
        f.sync_data().await.map_err(io("fdatasync", &path))?;
        let head = sorted::encode_header(n);
        let hlen = head.len();
        let (r, _) = f.write_all_at(head, 0..hlen, 0).await;
        r.map_err(io("write", &path))?;
        f.sync_data().await.map_err(io("fdatasync", &path))?;
        inner
            .disk
            .sync_dir(&dir)
            .await
            .map_err(io("sync directory", &dir))?;
        inner
            .disk
            .sync_dir(&index_dir)
            .await
            .map_err(io("sync directory", &index_dir))?;
        if epoch != inner.generation.get() {
            return Ok(());
        }
        if let Some(m) = inner.st.borrow_mut().index_files.get_mut(&start) {
            m.file = Some(f);
            m.count = n;
        }
        inner
            .disk
            .remove(journal.path())
            .await
            .map_err(io("remove", journal.path()))?;
    }
    Ok(())
}

/// fdatasyncs of derived files in flight at once. Each shard's ring runs file syncs on its
/// io-wq workers (bounded to 4 per CPU), in submission order; the commit log's own
/// fdatasync and its writes (ext4 punts every buffered write there too) queue behind
/// whatever the checkpoint submitted first. With 64 in flight, a commit-log sync issued
/// during a checkpoint waited ~1.8 ms at p50 and ~20 ms at p99 from submission to
/// completion while ext4 itself took the usual 0.5 ms (perf tracepoints
/// `io_uring:io_uring_{submit_req,complete}` vs `ext4:ext4_sync_file_{enter,exit}`, sync
/// flush, 23k msgs/s, 128 queues). A few in flight still share the device's cache flushes:
/// with 10 000 queues (20 000 files per checkpoint over 2 shards) the checkpoint's syncs
/// took 0.8-1.1 s with 4 in flight as with 64, while async produce to those queues went
/// from 34.0k to 40.6k msgs/s and its send p99 from 3.8 to 1.7 ms (`ringmq-bench produce
/// --topics 100 --queues 50 --inflight 4`, one run each; one at a time was ~30 s).
const SYNC_WINDOW: usize = 4;

/// Syncs `files`, at most [`SYNC_WINDOW`] at a time: a sliding window, so one slow sync
/// does not hold back the rest of its group.
async fn sync_files<F: DiskFile>(files: &[F]) -> Result<(), StorageError> {
    let mut window = std::collections::VecDeque::with_capacity(SYNC_WINDOW);
    let mut first_err = None;
    for f in files {
        if window.len() >= SYNC_WINDOW {
            note_synced(window.pop_front(), &mut first_err).await;
        }
        if first_err.is_some() {
            break;
        }
        let f = f.clone();
        window.push_back(compio::runtime::spawn(async move {
            let r = f.sync_data().await;
            (r, f)
        }));
    }
    while let Some(h) = window.pop_front() {
        note_synced(Some(h), &mut first_err).await;
    }
    first_err.map_or(Ok(()), Err)
}

/// Awaits one sync of [`sync_files`], keeping the first error.
async fn note_synced<F: DiskFile>(
    handle: Option<compio::runtime::JoinHandle<(std::io::Result<()>, F)>>,
    first_err: &mut Option<StorageError>,
) {
    let Some(h) = handle else { return };
    let e = match h.await {
        Ok((Ok(()), _)) => return,
        Ok((Err(e), f)) => StorageError::io("fdatasync", f.path(), 0, e),
        Err(_) => task_failed("fdatasync"),
    };
    first_err.get_or_insert(e);
}

fn task_failed(op: &'static str) -> StorageError {
    StorageError::io(
        op,
        std::path::Path::new(""),
        0,
        std::io::Error::other("task failed"),
    )
}

/// Remembers a newly opened derived file in the state that owns it.
fn remember_file<D: Disk>(inner: &Inner<D>, path: &std::path::Path, f: &D::File) {
    let mut st = inner.st.borrow_mut();
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return;
    };
    let Some(start) = crate::log::segment::parse_segment_name(name) else {
        return;
    };
    if path.starts_with(inner.cfg.index_dir()) {
        let meta = st.index_files.entry(start).or_insert(IndexFile {
            file: None,
            count: 0,
            last_phys: start,
        });
        meta.file = Some(f.clone());
        return;
    }
    let qdir = path.parent();
    let qid = qdir
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse::<i32>().ok());
    let topic = qdir
        .and_then(|d| d.parent())
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str());
    if let (Some(topic), Some(qid)) = (topic, qid)
        && let Some(q) = st.topics.get_mut(topic).and_then(|qs| qs.get_mut(&qid))
    {
        q.files.insert(start, f.clone());
    }
}

type QueueMarks = Vec<((String, i32), u64)>;

/// File writes for every queue's unpersisted entries below `upto`.
fn plan_queue_writes<D: Disk>(inner: &Inner<D>, upto: u64) -> (Vec<Job<D::File>>, QueueMarks) {
    let per_file = inner.cfg.cq_entries_per_file;
    let st = inner.st.borrow();
    let mut jobs = Vec::new();
    let mut marks = Vec::new();
    for (topic, queues) in &st.topics {
        for (qid, q) in queues.iter() {
            let (from, entries) = q.unpersisted(upto);
            let mut offset = from;
            let mut current: Option<Job<D::File>> = None;
            let mut current_start = None;
            for e in entries {
                let start = offset - offset % per_file;
                if current_start != Some(start) {
                    current_start = Some(start);
                    if let Some(j) = current.take() {
                        jobs.push(j);
                    }
                    let path = inner
                        .cfg
                        .consumequeue_dir()
                        .join(topic)
                        .join(qid.to_string())
                        .join(segment_name(start));
                    current = Some(Job {
                        path,
                        file: q.files.get(&start).cloned(),
                        offset: (offset - start) * CQ_ENTRY_SIZE as u64,
                        bytes: Vec::new(),
                    });
                }
                if let Some(j) = current.as_mut() {
                    e.encode(&mut j.bytes);
                }
                offset += 1;
            }
            if let Some(j) = current.take() {
                jobs.push(j);
            }
            if offset > from {
                marks.push(((topic.clone(), qid), offset));
            }
        }
    }
    (jobs, marks)
}

/// Index file bookkeeping after a successful write: `(start, count, last_phys)` per file.
type IndexMarks = Vec<(u64, u64, u64)>;

/// File writes for the index entries below `upto`; rolls to a new file when one is full.
/// Returns the jobs, the log offset below which every entry is written, and the marks.
/// The bookkeeping is only planned here and applied after the writes succeed, so a failed
/// checkpoint leaves no hole in a file.
fn plan_index_writes<D: Disk>(inner: &Inner<D>, upto: u64) -> (Vec<Job<D::File>>, u64, IndexMarks) {
    let per_file = inner.cfg.index_entries_per_file;
    let st = inner.st.borrow();
    let count = st
        .index
        .unpersisted
        .iter()
        .take_while(|e| e.phys < upto)
        .count();
    let mut jobs: Vec<Job<D::File>> = Vec::new();
    let mut marks: IndexMarks = Vec::new();
    // A sorted file is sealed: new entries never go into it.
    let mut cur: Option<(u64, u64, u64)> = st
        .index_files
        .last_key_value()
        .filter(|(_, m)| {
            !m.file
                .as_ref()
                .is_some_and(|f| sorted::is_sorted_path(f.path()))
        })
        .map(|(s, m)| (*s, m.count, m.last_phys));
    // The file the last job writes, by start: comparing paths per entry (a formatted name
    // and a `Path::ends_with` for each of ~60 000 entries per checkpoint at 12 000 msgs/s)
    // held the shard thread for 20-45 ms per checkpoint in `perf`, and every send waited.
    let mut job_start: Option<u64> = None;
    for (i, e) in st.index.unpersisted.iter().take(count).enumerate() {
        if cur.is_none_or(|(_, c, _)| c >= per_file) {
            if let Some(m) = cur {
                marks.push(m);
            }
            cur = Some((e.phys, 0, e.phys));
        }
        let Some((start, c, _)) = cur else { continue };
        if job_start != Some(start) {
            job_start = Some(start);
            let room = (per_file - c).min((count - i) as u64) as usize;
            jobs.push(Job {
                path: inner.cfg.index_dir().join(segment_name(start)),
                file: st.index_files.get(&start).and_then(|m| m.file.clone()),
                offset: c * INDEX_ENTRY_SIZE as u64,
                bytes: Vec::with_capacity(room * INDEX_ENTRY_SIZE),
            });
        }
        if let Some(j) = jobs.last_mut() {
            e.encode(&mut j.bytes);
        }
        cur = Some((start, c + 1, e.phys));
    }
    if let Some(m) = cur {
        marks.push(m);
    }
    (jobs, upto, marks)
}

/// Writes the next checkpoint slot and syncs it.
pub(crate) async fn write_checkpoint<D: Disk>(
    inner: &Inner<D>,
    derived_upto: u64,
    clean: bool,
) -> Result<(), StorageError> {
    let path = inner.cfg.checkpoint_path();
    let (cp, file) = {
        let mut st = inner.st.borrow_mut();
        st.checkpoint_seq += 1;
        let cp = Checkpoint {
            seq: st.checkpoint_seq,
            clean,
            log_end: if clean { st.policy.durable() } else { 0 },
            derived_upto,
            log_min: st.log.min,
        };
        (cp, st.checkpoint_file.clone())
    };
    let file = match file {
        Some(f) => f,
        None => {
            let f = inner
                .disk
                .open(&path)
                .await
                .map_err(|e| StorageError::io("open", &path, 0, e))?;
            inner.st.borrow_mut().checkpoint_file = Some(f.clone());
            f
        }
    };
    let bytes = cp.encode().to_vec();
    let n = bytes.len();
    let (r, _) = file.write_all_at(bytes, 0..n, cp.slot_offset()).await;
    r.map_err(|e| StorageError::io("write checkpoint", &path, cp.slot_offset(), e))?;
    file.sync_data()
        .await
        .map_err(|e| StorageError::io("fdatasync", &path, 0, e))?;
    inner.st.borrow_mut().derived_upto = derived_upto;
    Ok(())
}

impl<D: Disk> Store<D> {
    /// Stops accepting appends, waits for everything appended to be written, syncs it, brings
    /// consume-queue and index files up to date and writes a clean checkpoint, so the next
    /// `open` starts without a scan.
    pub async fn close(&self) -> Result<(), StorageError> {
        let inner = &*self.inner;
        inner.closing.set(true);
        inner.kick.kick();
        std::future::poll_fn(|cx| {
            let st = inner.st.borrow();
            let done = st.failure.is_some()
                || (st.policy.appended() == st.policy.written()
                    && st.log.buf.is_empty()
                    && inner.inflight_io.get() == 0);
            if done && !inner.background_busy.get() {
                return std::task::Poll::Ready(());
            }
            inner.acks.register(cx.waker());
            inner.kick.kick();
            std::task::Poll::Pending
        })
        .await;
        if let Some(f) = &inner.st.borrow().failure {
            inner.closed.set(true);
            return Err(StorageError::Broken {
                since: Box::new(f.cause.share()),
            });
        }
        // Every segment from the one holding the durable end may hold unsynced bytes (one
        // write can span several small segments).
        let (segments, end) = {
            let st = inner.st.borrow();
            let from = st.policy.durable() - st.policy.durable() % inner.cfg.segment_size;
            let files: Vec<D::File> = st
                .log
                .segments
                .range(from..)
                .map(|(_, f)| f.clone())
                .collect();
            (files, st.policy.written())
        };
        for f in &segments {
            f.sync_data()
                .await
                .map_err(|e| StorageError::io("fdatasync", f.path(), 0, e))?;
        }
        {
            let mut st = inner.st.borrow_mut();
            let mut ignored = Vec::new();
            st.policy.handle(
                crate::flush::Event::SyncDone {
                    upto: end,
                    ok: true,
                },
                &mut ignored,
            );
        }
        let r = persist_derived(inner, end, true).await;
        inner.closed.set(true);
        inner.kick.kick();
        inner.wake_all_waiters();
        r
    }

    /// Brings consume-queue and index files up to the durable end and advances the checkpoint
    /// now (the driver also does it every `checkpoint_interval_ms`).
    pub async fn checkpoint(&self) -> Result<(), StorageError> {
        let upto = self.inner.st.borrow().policy.durable();
        persist_derived(&self.inner, upto, false).await
    }
}

/// Files of a directory with 20-digit names, by start.
pub(crate) async fn numbered_files<D: Disk>(
    disk: &D,
    dir: &std::path::Path,
) -> Result<BTreeMap<u64, PathBuf>, StorageError> {
    let names = disk
        .list(dir)
        .await
        .map_err(|e| StorageError::io("list directory", dir, 0, e))?;
    Ok(names
        .iter()
        .filter_map(|n| crate::log::segment::parse_segment_name(n).map(|s| (s, dir.join(n))))
        .collect())
}
