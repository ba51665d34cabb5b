//! Opening a store: after a clean stop, start at once from the checkpoint; after a crash,
//! scan the log from the checkpoint's `derived_upto`, verify each record, cut the log at the
//! first torn or corrupt one, and rebuild the consume-queue and index tails from the records.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::RecordView;

use super::{IndexFile, Inner, LogState, State, Store, driver, persist};
use crate::checkpoint::Checkpoint;
use crate::clock::Clock;
use crate::config::{Prealloc, StoreConfig};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::flush::FlushPolicy;
use crate::index::{INDEX_ENTRY_SIZE, IndexEntry, KeyIndex, key_hash};
use crate::log::record::Invalid;
use crate::log::recovery::{Stop, scan};
use crate::log::segment::segment_start;
use crate::queue::{CQ_ENTRY_SIZE, ConsumeQueue, CqEntry};
use crate::sync::{Kick, WaitList};
use ringmq_codec::message::record::MessageError;

type Topics<F> = HashMap<String, HashMap<i32, ConsumeQueue<F>>>;

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
    offset: u64,
) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |e| StorageError::io(op, path, offset, e)
}

async fn read_all<F: DiskFile>(file: &F) -> Result<Vec<u8>, StorageError> {
    let len = file.len().await.map_err(io_err("stat", file.path(), 0))?;
    let (r, buf) = file.read_exact_at(vec![0; len as usize], 0).await;
    r.map_err(io_err("read", file.path(), 0))?;
    Ok(buf)
}

impl<D: Disk> Store<D> {
    /// Opens (creating if needed) the store under `cfg.root`, recovering as described in the
    /// module docs. Must run inside a compio runtime; spawns the group-commit driver.
    pub async fn open(
        disk: D,
        cfg: StoreConfig,
        clock: Rc<dyn Clock>,
    ) -> Result<Store<D>, StorageError> {
        if cfg.segment_size < 4096
            || cfg.cq_entries_per_file == 0
            || cfg.index_entries_per_file == 0
        {
            return Err(StorageError::invalid(
                "segment_size must be ≥ 4096 and files must hold entries",
            ));
        }
        let st = load(&disk, &cfg).await?;
        let derived = st.derived_upto;
        let inner = Rc::new(Inner {
            disk,
            cfg,
            clock,
            started: Instant::now(),
            st: RefCell::new(st),
            events: RefCell::new(Vec::new()),
            kick: Kick::default(),
            acks: WaitList::default(),
            room: WaitList::default(),
            segment_ready: WaitList::default(),
            arrival_hook: RefCell::new(None),
            generation: Cell::new(0),
            prev_marks: Cell::new((0, 0)),
            inflight_io: Cell::new(0),
            background_busy: Cell::new(false),
            closing: Cell::new(false),
            closed: Cell::new(false),
            stats: Cell::new(super::StoreStats::default()),
            last_tick_us: Cell::new(0),
        });
        // From here on a crash must scan: the clean flag goes before any append.
        persist::write_checkpoint(&inner, derived, false).await?;
        compio::runtime::spawn(driver::run(inner.clone())).detach();
        Ok(Store { inner })
    }

    /// After a failed write or sync: waits for in-flight I/O, reloads the state from the
    /// files exactly as a crash recovery would (cutting whatever is torn), and accepts
    /// appends again. Appends that were not acknowledged before the failure stay failed.
    pub async fn recover(&self) -> Result<(), StorageError> {
        let inner = &*self.inner;
        std::future::poll_fn(|cx| {
            if inner.inflight_io.get() == 0 && !inner.background_busy.get() {
                return std::task::Poll::Ready(());
            }
            inner.acks.register(cx.waker());
            std::task::Poll::Pending
        })
        .await;
        let st = load(&inner.disk, &inner.cfg).await?;
        let derived = st.derived_upto;
        {
            let mut old = inner.st.borrow_mut();
            inner
                .prev_marks
                .set((old.policy.written(), old.policy.durable()));
            let seq = old.checkpoint_seq;
            *old = st;
            old.checkpoint_seq = seq;
            old.last_checkpoint_us = inner.now_us();
            old.last_retention_us = inner.now_us();
            old.policy = FlushPolicy::recovered(
                inner.cfg.flush,
                old.policy.written(),
                old.policy.durable(),
                inner.now_us(),
            );
        }
        inner.generation.set(inner.generation.get() + 1);
        inner.events.borrow_mut().clear();
        persist::write_checkpoint(inner, derived, false).await?;
        inner.acks.wake_all();
        inner.room.wake_all();
        inner.kick.kick();
        Ok(())
    }
}

/// Builds the state from the files.
pub(crate) async fn load<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
) -> Result<State<D::File>, StorageError> {
    for dir in [
        cfg.root.clone(),
        cfg.commitlog_dir(),
        cfg.consumequeue_dir(),
        cfg.index_dir(),
    ] {
        disk.create_dir_all(&dir)
            .await
            .map_err(io_err("create directory", &dir, 0))?;
    }
    let cp_path = cfg.checkpoint_path();
    let cp_file = disk
        .open(&cp_path)
        .await
        .map_err(io_err("open", &cp_path, 0))?;
    let checkpoint = Checkpoint::newest(&read_all(&cp_file).await?);
    let seg_paths = persist::numbered_files(disk, &cfg.commitlog_dir()).await?;
    let mut segments = BTreeMap::new();
    for (start, path) in &seg_paths {
        segments.insert(
            *start,
            disk.open(path)
                .await
                .map_err(io_err("open segment", path, 0))?,
        );
    }
    let log_min = seg_paths
        .keys()
        .next()
        .copied()
        .unwrap_or_else(|| checkpoint.map_or(0, |c| c.log_min));
    let clean = checkpoint.filter(|c| c.clean);
    let derived_upto = match (clean, checkpoint) {
        (Some(c), _) => c.log_end,
        (None, Some(c)) => c.derived_upto,
        (None, None) => 0,
    }
    .max(log_min);

    let mut topics = load_queues(disk, cfg, log_min, derived_upto).await?;
    let (mut index, index_files) = load_index(disk, cfg, log_min, derived_upto).await?;
    let mut first_ts = BTreeMap::new();
    let end = match clean {
        Some(c) if c.log_end >= log_min => c.log_end,
        _ => {
            let end = scan_log(cfg, &segments, derived_upto, &mut |view, phys| {
                rebuild(cfg, &mut topics, &mut index, view, phys);
                first_ts
                    .entry(segment_start(phys, cfg.segment_size))
                    .or_insert(view.store_timestamp);
            })
            .await?;
            cut_log(disk, cfg, &mut segments, end).await?;
            end
        }
    };
    for queues in topics.values_mut() {
        for q in queues.values_mut() {
            q.truncate_after_phys(end);
        }
    }
    index.truncate_from(end);
    // What the scan accepted beyond `derived_upto` may only be in the page cache (a process
    // crash keeps it). It must be durable before anything new is acknowledged as durable on
    // top of it. Under async flush those segments start out dirty and `durable` stays at
    // `derived_upto`, so the first sync covers them and `open` does not wait for gigabytes
    // of writeback; under sync flush (little unsynced data, and readers see only durable
    // data) they are synced now.
    let mut durable = derived_upto.min(end);
    let mut dirty: Vec<u64> = segments
        .range(segment_start(durable, cfg.segment_size)..)
        .map(|(s, _)| *s)
        .collect();
    if cfg.flush_mode == crate::types::FlushMode::Sync {
        for s in dirty.drain(..) {
            if let Some(f) = segments.get(&s) {
                f.sync_data()
                    .await
                    .map_err(io_err("fdatasync", f.path(), 0))?;
            }
        }
        durable = end;
    }
    let visible = match cfg.flush_mode {
        crate::types::FlushMode::Async => end,
        crate::types::FlushMode::Sync => durable,
    };
    Ok(State {
        log: LogState {
            segments,
            creating: None,
            min: log_min,
            buf: Vec::with_capacity(cfg.flush.batch_bytes_max as usize),
            buf_start: end,
            spare: Vec::with_capacity(cfg.flush.batch_bytes_max as usize),
            dirty,
            first_ts,
        },
        topics,
        index,
        index_files,
        policy: FlushPolicy::recovered(cfg.flush, end, durable, 0),
        failure: None,
        pending_cause: None,
        visible,
        arrivals: VecDeque::new(),
        derived_upto: derived_upto.min(end),
        checkpoint_seq: checkpoint.map_or(0, |c| c.seq),
        checkpoint_file: Some(cp_file),
        disk_full: None,
        last_checkpoint_us: 0,
        last_retention_us: 0,
    })
}

/// Adds one recovered record to its consume queue and the key index.
fn rebuild<F>(
    cfg: &StoreConfig,
    topics: &mut Topics<F>,
    index: &mut KeyIndex,
    view: &RecordView<'_>,
    phys: u64,
) {
    if !topics.contains_key(view.topic) {
        topics.insert(view.topic.to_owned(), HashMap::new());
    }
    let Some(queues) = topics.get_mut(view.topic) else {
        return;
    };
    let q = queues
        .entry(view.queue_id)
        .or_insert_with(|| ConsumeQueue::new(view.topic.into(), view.queue_id));
    let qo = view.queue_offset.max(0) as u64;
    if qo < q.next_offset() {
        q.truncate_from(qo);
    }
    if qo != q.next_offset() {
        // A gap: files and log disagree. The record is the truth from here on.
        *q = ConsumeQueue::with_entries(q.topic.clone(), q.queue_id, qo, VecDeque::new());
        q.persisted = 0;
    }
    q.push(CqEntry {
        phys,
        size: view.total_size as u32,
        tag_code: (cfg.tag_code_of)(view),
    });
    let ts = view.store_timestamp;
    for key in properties::business_keys(view.properties) {
        index.add(
            IndexEntry {
                key_hash: key_hash(view.topic, key),
                phys,
                store_timestamp: ts,
            },
            true,
        );
    }
    if let Some(uniq) = properties::find(view.properties, keys::UNIQ_KEY) {
        index.add(
            IndexEntry {
                key_hash: key_hash(view.topic, uniq),
                phys,
                store_timestamp: ts,
            },
            true,
        );
    }
}

/// Scans from `from` and returns where the valid log ends.
async fn scan_log<F: DiskFile>(
    cfg: &StoreConfig,
    segments: &BTreeMap<u64, F>,
    from: u64,
    on_record: &mut dyn FnMut(&RecordView<'_>, u64),
) -> Result<u64, StorageError> {
    let size = cfg.segment_size;
    let mut pos = from;
    loop {
        let seg = segment_start(pos, size);
        let Some(file) = segments.get(&seg) else {
            return Ok(pos);
        };
        let file_len = file
            .len()
            .await
            .map_err(io_err("stat", file.path(), 0))?
            .min(size);
        let (end_in_seg, stop) =
            scan_segment(cfg, file, pos - seg, file_len, seg, on_record).await?;
        pos = seg + end_in_seg;
        match stop {
            Some(Stop::Blank) => pos = seg + size,
            _ => return Ok(pos),
        }
    }
}

/// Reads `n` bytes at `off` in a task of its own, so the next chunk is read while this one
/// is verified (the kernel copies from the page cache on another core).
/// `buf` is a recycled buffer: chunks are large, and fresh allocations would page-fault on
/// every chunk.
fn read_ahead<F: DiskFile>(
    file: &F,
    off: u64,
    n: usize,
    mut buf: Vec<u8>,
) -> compio::runtime::JoinHandle<(std::io::Result<()>, Vec<u8>, u64)> {
    let f = file.clone();
    buf.resize(n, 0);
    compio::runtime::spawn(async move {
        let (r, b) = f.read_exact_at(buf, off).await;
        (r, b, off)
    })
}

/// Scans one segment file from `start` (bytes into the file) in consecutive chunks, reading
/// the next chunk while verifying this one. A record cut by a chunk's end is carried over: its
/// head is copied aside and completed from the next chunk. Returns where the valid records
/// end in the file and why the scan stopped (`None`: the file ended).
async fn scan_segment<F: DiskFile>(
    cfg: &StoreConfig,
    file: &F,
    start: u64,
    file_len: u64,
    seg: u64,
    on_record: &mut dyn FnMut(&RecordView<'_>, u64),
) -> Result<(u64, Option<Stop>), StorageError> {
    let chunk = (cfg.recovery_chunk_bytes as u64).max(4096);
    let mut pos = start; // start of the first record not yet accepted
    let mut read_at = start;
    let mut carry: Vec<u8> = Vec::new(); // bytes [pos, read_at) when a record straddles chunks
    let mut spare = Vec::new();
    let mut pending = None;
    if read_at < file_len {
        pending = Some(read_ahead(
            file,
            read_at,
            chunk.min(file_len - read_at) as usize,
            Vec::new(),
        ));
    }
    while let Some(handle) = pending.take() {
        let (r, buf, off) = handle.await.map_err(|_| {
            StorageError::io(
                "read",
                file.path(),
                read_at,
                std::io::Error::other("read task failed"),
            )
        })?;
        r.map_err(io_err("read", file.path(), off))?;
        read_at = off + buf.len() as u64;
        let at_file_end = read_at == file_len;
        if !at_file_end {
            let n = chunk.min(file_len - read_at) as usize;
            pending = Some(read_ahead(file, read_at, n, std::mem::take(&mut spare)));
        }
        let mut skip = 0usize;
        if !carry.is_empty() {
            // Complete the carried record: its length is in its first 4 bytes.
            let head_need = 8usize.saturating_sub(carry.len()).min(buf.len());
            carry.extend_from_slice(buf.get(..head_need).unwrap_or_default());
            skip = head_need;
            let total = ringmq_codec::message::record::peek_header(&carry).map_or(0, |(t, _)| t);
            let want = usize::try_from(total).unwrap_or(0).max(carry.len());
            if want > record_len_limit(cfg) {
                // A length no record can have: corrupt, and not worth collecting.
                finish(pending).await;
                let bad = MessageError::BadLength {
                    field: "TOTALSIZE",
                    len: i64::from(total),
                };
                return Ok((pos, Some(Stop::Corrupt(Invalid::Format(bad)))));
            }
            let take = (want - carry.len()).min(buf.len() - skip);
            carry.extend_from_slice(buf.get(skip..skip + take).unwrap_or_default());
            skip += take;
            let complete = carry.len() >= want;
            if !complete && !at_file_end {
                spare = buf;
                continue; // a record longer than a chunk: keep collecting
            }
            let out = scan(
                &carry,
                seg + pos,
                at_file_end && skip == buf.len(),
                &mut *on_record,
            );
            if out.valid_len < carry.len() || !complete {
                finish(pending).await;
                let stop = match out.stop {
                    Stop::NeedMore => Stop::Zero,
                    s => s,
                };
                return Ok((pos + out.valid_len as u64, Some(stop)));
            }
            pos += carry.len() as u64;
            carry.clear();
        }
        let rest = buf.get(skip..).unwrap_or_default();
        let out = scan(rest, seg + pos, at_file_end, &mut *on_record);
        pos += out.valid_len as u64;
        match out.stop {
            Stop::NeedMore if !at_file_end => {
                carry.extend_from_slice(rest.get(out.valid_len..).unwrap_or_default());
                spare = buf;
            }
            stop => {
                finish(pending).await;
                return Ok((pos, Some(stop)));
            }
        }
    }
    Ok((pos, None))
}

/// Longest record recovery will collect across chunks: a body of the larger of
/// `max_message_size` and 64 MiB (a limit lowered after large messages were stored must not
/// turn them into "corruption"), plus topic, properties and the fixed fields.
fn record_len_limit(cfg: &StoreConfig) -> usize {
    cfg.max_message_size.max(64 << 20) + 2 * 32_767 + 256
}

/// Lets a read still in flight finish before the scan returns.
async fn finish<T>(pending: Option<compio::runtime::JoinHandle<T>>) {
    if let Some(h) = pending {
        let _ = h.await;
    }
}

/// Cuts the log at `end`: the segment holding it keeps only the bytes below `end` (the rest
/// is zeroed, so stale records can never reappear behind new ones), later segments go.
async fn cut_log<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    segments: &mut BTreeMap<u64, D::File>,
    end: u64,
) -> Result<(), StorageError> {
    let seg = segment_start(end, cfg.segment_size);
    let later: Vec<u64> = segments.range(seg + 1..).map(|(s, _)| *s).collect();
    for s in later {
        if let Some(f) = segments.remove(&s) {
            disk.remove(f.path())
                .await
                .map_err(io_err("remove segment", f.path(), 0))?;
        }
    }
    if let Some(f) = segments.get(&seg) {
        let keep = end - seg;
        let len = f.len().await.map_err(io_err("stat", f.path(), 0))?;
        if len > keep {
            f.set_len(keep)
                .await
                .map_err(io_err("truncate", f.path(), keep))?;
            if cfg.prealloc != Prealloc::Create {
                f.set_len(cfg.segment_size)
                    .await
                    .map_err(io_err("extend", f.path(), keep))?;
            }
            f.sync_data()
                .await
                .map_err(io_err("fdatasync", f.path(), keep))?;
        }
    }
    let dir = cfg.commitlog_dir();
    disk.sync_dir(&dir)
        .await
        .map_err(io_err("sync directory", &dir, 0))?;
    Ok(())
}

/// Loads every consume queue, keeping entries for records in `[log_min, derived_upto)`, and
/// cuts the files after the last kept entry (stale entries must never reappear).
async fn load_queues<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    log_min: u64,
    derived_upto: u64,
) -> Result<Topics<D::File>, StorageError> {
    let root = cfg.consumequeue_dir();
    let per_file = cfg.cq_entries_per_file;
    let mut topics: Topics<D::File> = HashMap::new();
    for topic in disk
        .list(&root)
        .await
        .map_err(io_err("list directory", &root, 0))?
    {
        let tdir = root.join(&topic);
        for qname in disk
            .list(&tdir)
            .await
            .map_err(io_err("list directory", &tdir, 0))?
        {
            let Ok(qid) = qname.parse::<i32>() else {
                continue;
            };
            let qdir = tdir.join(&qname);
            let files = persist::numbered_files(disk, &qdir).await?;
            let Some(first) = files.keys().next().copied() else {
                continue;
            };
            let mut entries = VecDeque::new();
            let mut opened = BTreeMap::new();
            let mut ended = false;
            for (start, path) in &files {
                let f = disk.open(path).await.map_err(io_err("open", path, 0))?;
                if ended || *start != first + entries.len() as u64 {
                    disk.remove(path).await.map_err(io_err("remove", path, 0))?;
                    continue;
                }
                let bytes = read_all(&f).await?;
                let mut kept = 0u64;
                for raw in bytes.chunks_exact(CQ_ENTRY_SIZE).take(per_file as usize) {
                    match CqEntry::decode(raw) {
                        Some(e) if e.end() <= derived_upto => {
                            entries.push_back(e);
                            kept += 1;
                        }
                        _ => {
                            ended = true;
                            break;
                        }
                    }
                }
                if kept < per_file {
                    ended = true;
                }
                let keep_len = kept * CQ_ENTRY_SIZE as u64;
                if bytes.len() as u64 > keep_len {
                    f.set_len(keep_len)
                        .await
                        .map_err(io_err("truncate", path, keep_len))?;
                    f.sync_data().await.map_err(io_err("fdatasync", path, 0))?;
                }
                opened.insert(*start, f);
            }
            let mut q = ConsumeQueue::with_entries(topic.as_str().into(), qid, first, entries);
            q.files = opened;
            q.drop_below(log_min);
            topics.entry(topic.clone()).or_default().insert(qid, q);
        }
    }
    Ok(topics)
}

/// Loads the key index, keeping entries in `[log_min, derived_upto)`.
async fn load_index<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    log_min: u64,
    derived_upto: u64,
) -> Result<(KeyIndex, BTreeMap<u64, IndexFile<D::File>>), StorageError> {
    let files = persist::numbered_files(disk, &cfg.index_dir()).await?;
    let mut index = KeyIndex::new();
    let mut metas = BTreeMap::new();
    let mut ended = false;
    for (start, path) in &files {
        let f = disk.open(path).await.map_err(io_err("open", path, 0))?;
        if ended {
            disk.remove(path).await.map_err(io_err("remove", path, 0))?;
            continue;
        }
        let bytes = read_all(&f).await?;
        index.reserve(bytes.len() / INDEX_ENTRY_SIZE);
        let mut count = 0u64;
        let mut last_phys = *start;
        for raw in bytes.chunks_exact(INDEX_ENTRY_SIZE) {
            match IndexEntry::decode(raw) {
                Some(e) if e.phys < derived_upto => {
                    if e.phys >= log_min {
                        index.add(e, false);
                    }
                    count += 1;
                    last_phys = e.phys;
                }
                _ => {
                    ended = true;
                    break;
                }
            }
        }
        let keep_len = count * INDEX_ENTRY_SIZE as u64;
        if bytes.len() as u64 > keep_len {
            f.set_len(keep_len)
                .await
                .map_err(io_err("truncate", path, keep_len))?;
            f.sync_data().await.map_err(io_err("fdatasync", path, 0))?;
        }
        if count == 0 {
            disk.remove(path).await.map_err(io_err("remove", path, 0))?;
            continue;
        }
        metas.insert(
            *start,
            IndexFile {
                file: Some(f),
                count,
                last_phys,
            },
        );
    }
    Ok((index, metas))
}
