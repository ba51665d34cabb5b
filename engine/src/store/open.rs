//! Opening a store: after a clean stop, start at once from the checkpoint; after a crash,
//! scan the log from the checkpoint's `derived_upto`, verify each record, cut the log at the
//! first torn or corrupt one, and rebuild the consume-queue and index tails from the records.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use ringmq_codec::message::record::RecordView;

use super::{IndexFile, Inner, LogState, State, Store, driver, persist};
use crate::checkpoint::Checkpoint;
use crate::clock::Clock;
use crate::config::{Prealloc, StoreConfig};
use crate::disk::{Disk, DiskFile};
use crate::error::StorageError;
use crate::flush::FlushPolicy;
use crate::index::{INDEX_ENTRY_SIZE, IndexEntry, KeyIndex, key_hash, sorted};
use crate::log::record::Invalid;
use crate::log::recovery::{Stop, scan};
use crate::log::segment::segment_start;
use crate::queue::rebuild::Rebuilder;
use crate::queue::{CQ_ENTRY_SIZE, ConsumeQueue, CqEntry, Topics};
use crate::sync::{Kick, OffsetWaiters, WaitList};
use ringmq_codec::message::record::MessageError;

mod chunks;

use chunks::Chunks;

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
            written_waiters: OffsetWaiters::default(),
            durable_waiters: OffsetWaiters::default(),
            room: WaitList::default(),
            segment_ready: WaitList::default(),
            arrival_hook: RefCell::new(None),
            generation: Cell::new(0),
            prev_marks: Cell::new((0, 0)),
            inflight_io: Cell::new(0),
            writeback_mark: Cell::new(0),
            writeback_busy: Cell::new(false),
            background_busy: Cell::new(false),
            closing: Cell::new(false),
            closed: Cell::new(false),
            stats: Cell::new(super::StoreStats::default()),
            last_tick_us: Cell::new(0),
        });
        // From here on a crash must scan: the clean flag goes before any append.
        persist::write_checkpoint(&inner, derived, false).await?;
        if inner.cfg.prepare_first_segment {
            driver::prepare_current_segment(&inner).await?;
        }
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
        inner.wake_all_waiters();
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
    let index_files = load_index(disk, cfg, derived_upto).await?;
    let mut index = KeyIndex::new();
    let mut first_ts = BTreeMap::new();
    let end = match clean {
        Some(c) if c.log_end >= log_min => c.log_end,
        _ => {
            let mut rebuilder = Rebuilder::default();
            let mut last_seg = u64::MAX;
            let end = scan_log(cfg, &segments, derived_upto, &mut |view, phys| {
                rebuild(cfg, &mut rebuilder, &mut index, view, phys);
                let seg = segment_start(phys, cfg.segment_size);
                if seg != last_seg {
                    last_seg = seg;
                    first_ts.entry(seg).or_insert(view.store_timestamp);
                }
            })
            .await?;
            rebuilder.merge(&mut topics);
            cut_log(disk, cfg, &mut segments, end).await?;
            end
        }
    };
    for queues in topics.values_mut() {
        for q in queues.values_mut() {
            // Entries in files are all below `derived_upto`; only a log cut below it (lost
            // segments) reaches into them.
            if q.tail_len() > 0 || end < derived_upto {
                q.truncate_after_phys(end);
            }
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
            spares: Vec::new(),
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

/// Adds one recovered record to its consume queue's rebuilt run and the key index.
fn rebuild(
    cfg: &StoreConfig,
    rebuilder: &mut Rebuilder,
    index: &mut KeyIndex,
    view: &RecordView<'_>,
    phys: u64,
) {
    let entry = CqEntry {
        phys,
        size: view.total_size as u32,
        tag_code: (cfg.tag_code_of)(view),
    };
    let qo = view.queue_offset.max(0) as u64;
    rebuilder.push(view.topic, view.queue_id, qo, entry);
    let ts = view.store_timestamp;
    let (business, uniq) = index_keys(view.properties);
    let keys = business
        .into_iter()
        .flat_map(|v| v.split(' ').filter(|k| !k.is_empty()))
        .chain(uniq);
    for key in keys {
        index.add(
            IndexEntry {
                key_hash: key_hash(view.topic, key),
                phys,
                store_timestamp: ts,
            },
            true,
        );
    }
}

/// The KEYS and UNIQ_KEY values of a property string in one pass over its bytes, with the
/// rules of `properties::find` (non-empty name and value; the last pair of a name wins).
/// Recovery calls this for every record: two `find` calls, each a walk over every pair with
/// a char searcher, took 23 % of a warm 4 GiB scan in `perf`.
fn index_keys(props: &str) -> (Option<&str>, Option<&str>) {
    let (mut business, mut uniq) = (None, None);
    for pair in props.as_bytes().split(|b| *b == 0x02) {
        let (slot, name_len) = if pair.starts_with(b"KEYS\x01") {
            (&mut business, 4)
        } else if pair.starts_with(b"UNIQ_KEY\x01") {
            (&mut uniq, 8)
        } else {
            continue;
        };
        // The separators are ASCII, so the value is valid UTF-8 on its own.
        if let Some(value) = pair
            .get(name_len + 1..)
            .and_then(|v| std::str::from_utf8(v).ok())
            && !value.is_empty()
        {
            *slot = Some(value);
        }
    }
    (business, uniq)
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

/// Scans one segment file from `start` (bytes into the file) in consecutive chunks, read
/// ahead of the verification ([`chunks`]). A record cut by a chunk's end is carried over: its
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
    let mut carry: Vec<u8> = Vec::new(); // bytes [pos, read end) when a record straddles chunks
    if start >= file_len {
        return Ok((pos, None));
    }
    let mut src = Chunks::start(file, start, file_len, chunk);
    while let Some((r, buf, off)) = src.next().await {
        r.map_err(io_err("read", file.path(), off))?;
        let read_at = off + buf.len() as u64;
        let at_file_end = read_at == file_len;
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
                src.finish().await;
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
                src.recycle(buf);
                continue; // a record longer than a chunk: keep collecting
            }
            let out = scan(
                &carry,
                seg + pos,
                at_file_end && skip == buf.len(),
                &mut *on_record,
            );
            if out.valid_len < carry.len() || !complete {
                src.finish().await;
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
                src.recycle(buf);
            }
            stop => {
                src.finish().await;
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

/// Reads the `size`-byte entry `i` of a derived file.
async fn read_entry<F: DiskFile>(f: &F, i: u64, size: usize) -> Option<Vec<u8>> {
    let (r, b) = f.read_exact_at(vec![0; size], i * size as u64).await;
    r.ok().map(|_| b)
}

/// How many leading entries of a derived file of `n` entries satisfy `ok` (binary search:
/// entries are written in order and the checkpoint's bound holds for a prefix of them, the
/// part synced before the checkpoint was written; what follows is unwritten, torn, or newer).
/// The last entry is tried first: in a file behind a clean stop or a completed checkpoint it
/// holds, and that costs one read.
async fn valid_prefix<F: DiskFile>(f: &F, n: u64, size: usize, ok: impl Fn(&[u8]) -> bool) -> u64 {
    if n == 0 {
        return 0;
    }
    if read_entry(f, n - 1, size).await.is_some_and(|b| ok(&b)) {
        return n;
    }
    let (mut lo, mut hi) = (0, n - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if read_entry(f, mid, size).await.is_some_and(|b| ok(&b)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Loads every consume queue without reading its entries: offsets come from file names and
/// lengths, and only the entries near the end are read, to find the last one for a record
/// below `derived_upto`. Files are cut after it (stale entries must never reappear). Entries
/// stay in the files and are read on demand.
async fn load_queues<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    log_min: u64,
    derived_upto: u64,
) -> Result<Topics<D::File>, StorageError> {
    let root = cfg.consumequeue_dir();
    let mut topics: Topics<D::File> = Topics::default();
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
            let Some(mut q) = load_queue(disk, cfg, &qdir, &topic, qid, derived_upto).await? else {
                continue;
            };
            q.drop_below(log_min);
            topics.entry(topic.clone()).or_default().insert(qid, q);
        }
    }
    Ok(topics)
}

/// One queue directory: see [`load_queues`].
async fn load_queue<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    qdir: &Path,
    topic: &str,
    qid: i32,
    derived_upto: u64,
) -> Result<Option<ConsumeQueue<D::File>>, StorageError> {
    let per_file = cfg.cq_entries_per_file;
    let paths = persist::numbered_files(disk, qdir).await?;
    let Some(first) = paths.keys().next().copied() else {
        return Ok(None);
    };
    // Candidates: consecutive files, every one but the last full.
    let mut files: Vec<(u64, D::File, u64)> = Vec::new();
    let mut extra: Vec<&Path> = Vec::new();
    for (start, path) in &paths {
        let contiguous = files
            .last()
            .is_none_or(|(s, _, n)| *n == per_file && *start == s + per_file);
        if !extra.is_empty() || !contiguous {
            extra.push(path);
            continue;
        }
        let f = disk.open(path).await.map_err(io_err("open", path, 0))?;
        let len = f.len().await.map_err(io_err("stat", path, 0))?;
        files.push((*start, f, (len / CQ_ENTRY_SIZE as u64).min(per_file)));
    }
    let ok = |b: &[u8]| CqEntry::decode(b).is_some_and(|e| e.end() <= derived_upto);
    // From the last file back: the first file with a valid entry ends the queue.
    let mut end_file = 0usize;
    let mut kept = 0u64;
    for (i, (_, f, n)) in files.iter().enumerate().rev() {
        kept = valid_prefix(f, *n, CQ_ENTRY_SIZE, ok).await;
        if kept > 0 {
            end_file = i;
            break;
        }
    }
    for (_, f, _) in files.drain(end_file + 1..).collect::<Vec<_>>() {
        disk.remove(f.path())
            .await
            .map_err(io_err("remove", f.path(), 0))?;
    }
    for path in extra {
        disk.remove(path).await.map_err(io_err("remove", path, 0))?;
    }
    let Some((end_start, end_f, _)) = files.last() else {
        return Ok(None);
    };
    let keep_len = kept * CQ_ENTRY_SIZE as u64;
    let len = end_f.len().await.map_err(io_err("stat", end_f.path(), 0))?;
    if len > keep_len {
        end_f
            .set_len(keep_len)
            .await
            .map_err(io_err("truncate", end_f.path(), keep_len))?;
        end_f
            .sync_data()
            .await
            .map_err(io_err("fdatasync", end_f.path(), 0))?;
    }
    let files_end = end_start + kept;
    let opened: BTreeMap<u64, D::File> = files.into_iter().map(|(s, f, _)| (s, f)).collect();
    Ok(Some(ConsumeQueue::from_files(
        topic.into(),
        qid,
        first,
        files_end,
        opened,
    )))
}

/// Loads the key index's file bookkeeping (entries stay in the files), keeping entries for
/// records below `derived_upto`; files after the first incomplete one are removed.
async fn load_index<D: Disk>(
    disk: &D,
    cfg: &StoreConfig,
    derived_upto: u64,
) -> Result<BTreeMap<u64, IndexFile<D::File>>, StorageError> {
    let files = persist::numbered_files(disk, &cfg.index_dir()).await?;
    let sorted_dir = cfg.index_dir().join(sorted::SORTED_DIR);
    let mut metas = BTreeMap::new();
    // Sorted files replace full journals; one without a valid header is unfinished.
    for (start, path) in persist::numbered_files(disk, &sorted_dir).await? {
        let f = disk.open(&path).await.map_err(io_err("open", &path, 0))?;
        let head = read_entry(&f, 0, sorted::SORTED_HEADER_LEN).await;
        match head.as_deref().and_then(sorted::decode_header) {
            Some(count) if count > 0 => {
                metas.insert(
                    start,
                    IndexFile {
                        file: Some(f),
                        count,
                        last_phys: start,
                    },
                );
            }
            _ => disk
                .remove(&path)
                .await
                .map_err(io_err("remove", &path, 0))?,
        }
    }
    let mut ended = false;
    let ok = |b: &[u8]| IndexEntry::decode(b).is_some_and(|e| e.phys < derived_upto);
    for (start, path) in &files {
        if metas.contains_key(start) {
            // Sorted before a crash, journal not yet removed.
            disk.remove(path).await.map_err(io_err("remove", path, 0))?;
            continue;
        }
        let f = disk.open(path).await.map_err(io_err("open", path, 0))?;
        if ended {
            disk.remove(path).await.map_err(io_err("remove", path, 0))?;
            continue;
        }
        let len = f.len().await.map_err(io_err("stat", path, 0))?;
        let n = (len / INDEX_ENTRY_SIZE as u64).min(cfg.index_entries_per_file);
        let count = valid_prefix(&f, n, INDEX_ENTRY_SIZE, ok).await;
        if count < cfg.index_entries_per_file {
            ended = true;
        }
        let keep_len = count * INDEX_ENTRY_SIZE as u64;
        if len > keep_len {
            f.set_len(keep_len)
                .await
                .map_err(io_err("truncate", path, keep_len))?;
            f.sync_data().await.map_err(io_err("fdatasync", path, 0))?;
        }
        let last = match count.checked_sub(1) {
            Some(i) => read_entry(&f, i, INDEX_ENTRY_SIZE).await,
            None => None,
        };
        let Some(last_phys) = last.as_deref().and_then(IndexEntry::decode).map(|e| e.phys) else {
            disk.remove(path).await.map_err(io_err("remove", path, 0))?;
            continue;
        };
        metas.insert(
            *start,
            IndexFile {
                file: Some(f),
                count,
                last_phys,
            },
        );
    }
    Ok(metas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_codec::message::properties::{self, keys};

    /// The one-pass key extraction agrees with `properties::find` / `business_keys`.
    #[test]
    fn index_keys_match_the_codec() {
        for props in [
            "",
            "KEYS\u{1}a b\u{2}UNIQ_KEY\u{1}U1\u{2}",
            "UNIQ_KEY\u{1}U1\u{2}KEYS\u{1}x\u{2}KEYS\u{1}y\u{2}",
            "KEYS\u{1}\u{2}UNIQ_KEY\u{1}\u{2}TAGS\u{1}t\u{2}",
            "KEYSX\u{1}no\u{2}XKEYS\u{1}no\u{2}KEYS\u{1}k\u{1}v",
            "TAGS\u{1}KEYS\u{2}UNIQ_KEY",
        ] {
            let (business, uniq) = index_keys(props);
            assert_eq!(business, properties::find(props, keys::KEYS), "{props:?}");
            assert_eq!(uniq, properties::find(props, keys::UNIQ_KEY), "{props:?}");
        }
    }
}
