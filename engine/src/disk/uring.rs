//! io_uring backend through compio: reads, writes and (optionally) fdatasync are io_uring
//! operations on the shard's own ring; buffered (page-cache) I/O, because zero-copy pull
//! reads from the page cache.
//!
//! fdatasync has two paths ([`SyncMethod`]): an io_uring op, which the kernel punts to an
//! io-wq worker, or a plain `fdatasync(2)` on a per-shard sync thread. DESIGN.md measured the
//! io_uring path at 0.66–0.96× the syscall; `engine-bench` measures both and the faster is
//! [`SyncMethod::default`] (numbers and command beside it).
//!
//! A durable write ([`DiskFile::write_durable_at`]) is one `IORING_OP_WRITE` with
//! `RWF_DSYNC` ([`WriteDsync`], a custom op on compio's driver): the kernel worker writes and
//! syncs the range back to back, where a write and a separate fsync cost a round trip through
//! the shard in between. Raw, at the 77 KB batch of 64 sync appenders on a pre-filled file
//! (2-core VM, ext4 on virtio): 6 423 / 6 483 / 6 629 rounds/s against 3 518 / 5 898 / 5 637
//! for io_uring write then io_uring fsync, and 6 270 / 5 899 for `pwrite` + `fdatasync(2)`
//! (alternating 2 s runs of a scratch program doing each, 2026-11).
//!
//! Every buffered write goes through an io-wq worker too, not only the durable ones: ext4
//! cannot take a buffered write without the right to block (`pwritev2(RWF_NOWAIT)` answers
//! EOPNOTSUPP on Linux 6.18), so io_uring punts each one (perf: `io_write` runs in
//! `iou-wrk-*` threads). That costs two thread hand-offs per write. A plain `pwrite` on the
//! shard thread was tried instead (2-shard broker, `ringmq-bench produce-consume --rate 20k`,
//! three alternating pairs): broker CPU per message 52 → 40 µs, but the closed-loop produce
//! rate fell 57–67k → 46–53k msgs/s (the worker had overlapped the copy with the shard's
//! network work on the other core), and the shard thread then waits out the periodic
//! fdatasync's hold on the file (single `pwrite` calls of 0.5–4 ms every 500 ms, `perf
//! trace`). So writes stay on io_uring.

use std::fs::File as StdFile;
use std::io;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Poll, Waker};

use compio::buf::{IntoInner, IoBuf};
use compio::driver::{OpCode, OpEntry};
use compio::io::{AsyncReadAtExt, AsyncWriteAtExt};

use super::{Disk, DiskFile, Space};

/// How the io_uring backend makes data durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMethod {
    /// `IORING_OP_FSYNC` with `IORING_FSYNC_DATASYNC` on the shard's ring.
    Uring,
    /// `fdatasync(2)` on a per-shard thread; the shard's task awaits its completion.
    Thread,
}

impl Default for SyncMethod {
    /// Measured with `cargo run -p ringmq-engine --release --bin engine-bench -- --dir /tmp/rb`
    /// (2-core VM, ext4 on virtio, kernel 6.18, 2026-11), sync flush, 64 appenders, 64
    /// appends per fdatasync. This disk's fdatasync is bimodal. When it takes ~4 ms, the two
    /// paths tie (appends/s thread vs io_uring over seven runs: 16 318/16 009, 17 919/16 447,
    /// 18 302/24 764, 12 878/14 032, 22 604/28 054, 27 289/26 328, 29 430/21 683). When it
    /// takes ~0.3 ms, the sync thread's two cross-thread hand-offs dominate: 38 722 vs
    /// 118 197 appends/s, p99 8.1 ms vs 3.6 ms. So io_uring is the default; DESIGN.md's
    /// 0.66–0.96× for io_uring fsync was not reproduced here (raw 4 KiB write+sync rounds:
    /// 317 vs 317, 296 vs 1 354, 202 vs 207 per second, io_uring vs syscall).
    fn default() -> Self {
        SyncMethod::Uring
    }
}

/// The io_uring disk of one shard. Must be created and used on the shard's thread, inside a
/// compio runtime.
#[derive(Clone)]
pub struct UringDisk {
    sync: SyncMethod,
    thread: Option<Rc<SyncThread>>,
}

impl std::fmt::Debug for UringDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringDisk")
            .field("sync", &self.sync)
            .finish()
    }
}

impl UringDisk {
    pub fn new(sync: SyncMethod) -> io::Result<Self> {
        let thread = match sync {
            SyncMethod::Uring => None,
            SyncMethod::Thread => Some(Rc::new(SyncThread::start()?)),
        };
        Ok(UringDisk { sync, thread })
    }

    pub fn sync_method(&self) -> SyncMethod {
        self.sync
    }
}

/// A file of [`UringDisk`].
#[derive(Clone)]
pub struct UringFile {
    file: compio::fs::File,
    /// A duplicate descriptor for the sync thread (`fdatasync` on any descriptor of the inode
    /// syncs the file).
    dup: Option<Arc<StdFile>>,
    thread: Option<Rc<SyncThread>>,
    path: Rc<PathBuf>,
}

impl std::fmt::Debug for UringFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFile")
            .field("path", &self.path)
            .finish()
    }
}

impl Disk for UringDisk {
    type File = UringFile;

    async fn open(&self, path: &Path) -> io::Result<UringFile> {
        let file = compio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(path)
            .await?;
        let dup = match self.thread {
            Some(_) => Some(Arc::new(StdFile::from(file.as_fd().try_clone_to_owned()?))),
            None => None,
        };
        Ok(UringFile {
            file,
            dup,
            thread: self.thread.clone(),
            path: Rc::new(path.to_path_buf()),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        match compio::fs::remove_file(path).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        // Directory creation is rare (a new queue); the blocking call keeps it simple.
        std::fs::create_dir_all(path)
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        super::std_fs::list_dir(dir)
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let d = compio::fs::File::open(dir).await?;
        d.sync_all().await
    }

    fn space(&self, path: &Path) -> io::Result<Space> {
        super::std_fs::statvfs_space(path)
    }
}

impl DiskFile for UringFile {
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        // compio reads into the spare capacity: hand it an empty vector of the right capacity.
        let want = buf.len();
        let mut buf = buf;
        buf.clear();
        buf.reserve_exact(want);
        let slice = buf.slice(0..want);
        let compio::BufResult(r, slice) = self.file.read_exact_at(slice, offset).await;
        let mut buf = slice.into_inner();
        if r.is_err() {
            buf.resize(want, 0);
        }
        (r, buf)
    }

    async fn write_all_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        if range.end > buf.len() || range.start > range.end {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "write range outside buffer");
            return (Err(e), buf);
        }
        let mut f = &self.file;
        let compio::BufResult(r, slice) = f.write_all_at(buf.slice(range), offset).await;
        (r, slice.into_inner())
    }

    async fn write_durable_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        if self.thread.is_some() {
            // The sync thread owns fdatasync under `SyncMethod::Thread`: write, then sync.
            return super::write_then_sync(self, buf, range, offset).await;
        }
        if range.end > buf.len() || range.start > range.end {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "write range outside buffer");
            return (Err(e), buf);
        }
        let mut op = WriteDsync {
            file: self.file.clone(),
            buf,
            range,
            offset,
        };
        // A short write made its own bytes durable; the rest goes in another durable write.
        while !op.range.is_empty() {
            let compio::BufResult(r, back) = compio::runtime::submit(op).await;
            op = back;
            match r {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), op.buf),
                Ok(n) => {
                    let n = n.min(op.range.len());
                    op.range.start += n;
                    op.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (Err(e), op.buf),
            }
        }
        (Ok(()), op.buf)
    }

    async fn sync_data(&self) -> io::Result<()> {
        match (&self.thread, &self.dup) {
            (Some(thread), Some(dup)) => thread.fdatasync(dup.clone()).await,
            _ => self.file.sync_data().await,
        }
    }

    /// `IORING_OP_SYNC_FILE_RANGE`: the kernel starts the writeback on an io-wq worker, so
    /// building the range's I/O (ext4 maps delayed blocks then) costs the shard nothing.
    async fn start_writeback(&self, from: u64, to: u64) -> io::Result<()> {
        if to <= from {
            return Ok(());
        }
        let len = u32::try_from(to - from)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range over 4 GiB"))?;
        let op = StartWriteback {
            file: self.file.clone(),
            offset: from,
            len,
        };
        compio::runtime::submit(op).await.0.map(drop)
    }

    /// The 4 KiB-aligned middle of the range goes through a second descriptor opened with
    /// `O_DIRECT`, one [`DIRECT_FILL_BYTES`] write at a time; unaligned ends, and a file
    /// system or device that refuses direct I/O (`EINVAL`), go through the page cache. See
    /// [`DIRECT_FILL_BYTES`] for why.
    async fn fill_zeros(&self, from: u64, to: u64) -> io::Result<()> {
        let start = from.next_multiple_of(DIRECT_ALIGN).min(to);
        let end = (to - to % DIRECT_ALIGN).max(start);
        super::fill_zeros_buffered(self, from, start).await?;
        match fill_zeros_direct(&self.path, start, end).await {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                super::fill_zeros_buffered(self, start, end).await?
            }
            r => r?,
        }
        super::fill_zeros_buffered(self, end, to).await
    }

    async fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata().await?.len())
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).await
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Alignment of direct-I/O offsets, lengths and memory: a multiple of the logical block
/// size and of the memory alignment that devices ask for (512 B on this VM's virtio disk).
const DIRECT_ALIGN: u64 = 4096;

/// Size of one write of the direct-I/O zero fill.
///
/// A segment prepared with [`crate::Prealloc::Fill`] (the default under sync flush) used to
/// be filled through the page cache: 1 GiB of dirty pages that the fill's final
/// `fdatasync` sent to the disk at once, while the log's group commits kept issuing their
/// own write+flush. On a VM disk, a flush waits for everything written before it, so the
/// commits in that window stalled. With direct I/O, the zeros reach the disk 256 KiB at a
/// time as the fill runs, and no flush finds a gigabyte queued ahead of it; the fill also
/// stops copying a gigabyte into the page cache and evicting cached log data with zeros.
/// `engine-bench --only-sync DIR --seconds 10` (64 appenders, about two segment fills per
/// run; 2-core VM, ext4 on virtio, Linux 6.18; six alternating pairs, medians): slowest
/// append 386 → 60 ms (each run: 489, 348, 279, 396, 391, 381 ms through the page cache;
/// 43, 93, 41, 78, 113, 34 ms direct), p99.9 5.1 → 3.0 ms, p99 1.20 → 1.06 ms. The price:
/// 162k → 151k appends/s and p50 309 → 365 µs, because a direct fill takes longer and more
/// group commits share the disk with it. 1 MiB direct writes cut the slowest append to
/// 40 ms but raised p99 to 1.4–1.6 ms (three pairs).
const DIRECT_FILL_BYTES: usize = 256 << 10;

/// The zeros the direct-I/O fill writes from: static, so every write can borrow them for as
/// long as the kernel needs, and aligned as direct I/O asks.
#[repr(C, align(4096))]
struct AlignedZeros([u8; DIRECT_FILL_BYTES]);

static ZEROS: AlignedZeros = AlignedZeros([0; DIRECT_FILL_BYTES]);

/// Zeros over `[from, to)` (both multiples of [`DIRECT_ALIGN`]) of the file at `path`,
/// through an `O_DIRECT` descriptor. `InvalidInput` when direct I/O is refused.
async fn fill_zeros_direct(path: &Path, from: u64, to: u64) -> io::Result<()> {
    if from >= to {
        return Ok(());
    }
    let file = compio::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .await?;
    let mut off = from;
    while off < to {
        let n = (to - off).min(DIRECT_FILL_BYTES as u64) as usize;
        let mut f = &file;
        let compio::BufResult(r, _) = f.write_all_at((&ZEROS.0).slice(0..n), off).await;
        r?;
        off += n as u64;
    }
    file.close().await
}

/// `IORING_OP_WRITE` of `buf[range]` at `offset` with `RWF_DSYNC`: complete once those
/// bytes (and the metadata to read them back) are durable.
struct WriteDsync {
    /// Keeps the descriptor open while the kernel uses it.
    file: compio::fs::File,
    /// The kernel reads from this heap block; the op owns it until completion.
    buf: Vec<u8>,
    range: Range<usize>,
    offset: u64,
}

impl WriteDsync {
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or_default()
    }
}

// SAFETY: the entry points into `buf`'s heap block, which does not move with the op and is
// neither dropped nor changed until compio hands the op back at completion (or cancellation,
// which compio completes before releasing the op).
unsafe impl OpCode for WriteDsync {
    type Control = ();

    fn create_entry(&mut self, _: &mut ()) -> OpEntry {
        let bytes = self.bytes();
        io_uring::opcode::Write::new(
            io_uring::types::Fd(self.file.as_raw_fd()),
            bytes.as_ptr(),
            u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        )
        .offset(self.offset)
        .rw_flags(libc::RWF_DSYNC)
        .build()
        .into()
    }

    /// A kernel without `IORING_OP_WRITE` (before 5.6): the same call, blocking, on compio's
    /// thread pool.
    fn create_entry_fallback(&mut self, _: &mut ()) -> OpEntry {
        OpEntry::Blocking
    }

    fn call_blocking(&mut self, _: &mut ()) -> io::Result<usize> {
        let bytes = self.bytes();
        let iov = libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        };
        let offset = libc::off_t::try_from(self.offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: `iov` describes `bytes`, valid for the call; the descriptor is open.
        let n = unsafe { libc::pwritev2(self.file.as_raw_fd(), &iov, 1, offset, libc::RWF_DSYNC) };
        usize::try_from(n).map_err(|_| io::Error::last_os_error())
    }
}

/// `IORING_OP_SYNC_FILE_RANGE` with `SYNC_FILE_RANGE_WRITE` over `len` bytes at `offset`.
struct StartWriteback {
    /// Keeps the descriptor open while the kernel uses it.
    file: compio::fs::File,
    offset: u64,
    len: u32,
}

// SAFETY: the entry refers to no memory of the op, only to a descriptor the op keeps open
// until compio hands it back.
unsafe impl OpCode for StartWriteback {
    type Control = ();

    fn create_entry(&mut self, _: &mut ()) -> OpEntry {
        io_uring::opcode::SyncFileRange::new(io_uring::types::Fd(self.file.as_raw_fd()), self.len)
            .offset(self.offset)
            .flags(libc::SYNC_FILE_RANGE_WRITE)
            .build()
            .into()
    }

    /// A kernel without `IORING_OP_SYNC_FILE_RANGE` (before 5.2): the same call, blocking,
    /// on compio's thread pool.
    fn create_entry_fallback(&mut self, _: &mut ()) -> OpEntry {
        OpEntry::Blocking
    }

    fn call_blocking(&mut self, _: &mut ()) -> io::Result<usize> {
        let to = self.offset + u64::from(self.len);
        super::sync_file_range_write(self.file.as_raw_fd(), self.offset, to).map(|()| 0)
    }
}

/// One completion slot shared between the shard task and the sync thread.
#[derive(Default)]
struct Completion {
    state: Mutex<(Option<io::Result<()>>, Option<Waker>)>,
}

type Job = (Arc<StdFile>, Arc<Completion>);

/// A per-shard thread that runs `fdatasync(2)` calls in order. The mutex in [`Completion`] is
/// taken twice per sync (not per append), off the append path.
struct SyncThread {
    jobs: Option<mpsc::Sender<Job>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl SyncThread {
    fn start() -> io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let handle = std::thread::Builder::new()
            .name("ringmq-sync".into())
            .spawn(move || {
                while let Ok((file, done)) = rx.recv() {
                    let r = file.sync_data();
                    let waker = match done.state.lock() {
                        Ok(mut g) => {
                            g.0 = Some(r);
                            g.1.take()
                        }
                        Err(_) => None,
                    };
                    if let Some(w) = waker {
                        w.wake();
                    }
                }
            })?;
        Ok(SyncThread {
            jobs: Some(tx),
            handle: Some(handle),
        })
    }

    async fn fdatasync(&self, file: Arc<StdFile>) -> io::Result<()> {
        let done = Arc::new(Completion::default());
        let sent = self.jobs.as_ref().map(|tx| tx.send((file, done.clone())));
        if !matches!(sent, Some(Ok(()))) {
            return Err(io::Error::other("sync thread is gone"));
        }
        std::future::poll_fn(|cx| {
            let Ok(mut g) = done.state.lock() else {
                return Poll::Ready(Err(io::Error::other("sync thread panicked")));
            };
            match g.0.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    g.1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for SyncThread {
    fn drop(&mut self) {
        self.jobs = None; // closes the channel: the thread's loop ends
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    //! The durable write on real files: what it writes, where, with both sync methods, and
    //! its refusal of a range outside the buffer.
    use super::*;

    #[test]
    fn durable_writes_land_at_their_offset() {
        let dir = std::env::temp_dir().join(format!("ringmq-uring-dsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        compio::runtime::Runtime::new().unwrap().block_on(async {
            for (i, method) in [SyncMethod::Uring, SyncMethod::Thread]
                .into_iter()
                .enumerate()
            {
                let disk = UringDisk::new(method).unwrap();
                let path = dir.join(format!("f{i}"));
                let f = disk.open(&path).await.unwrap();
                let buf = b"..hello..".to_vec();
                let (r, buf) = f.write_durable_at(buf, 2..7, 4096).await;
                r.unwrap();
                assert_eq!(buf, b"..hello..");
                let (r, _) = f.write_durable_at(buf, 3..20, 0).await;
                assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
                let data = std::fs::read(&path).unwrap();
                assert_eq!(data.len(), 4096 + 5);
                assert_eq!(&data[4096..], b"hello");
            }
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The kernel takes the write-behind op as built (a bad opcode or flag is `EINVAL`), an
    /// empty range is a no-op, a range over 4 GiB is refused before the kernel, and the data
    /// is unchanged by it.
    #[test]
    fn start_writeback_is_accepted_and_changes_no_data() {
        let dir = std::env::temp_dir().join(format!("ringmq-uring-wb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let disk = UringDisk::new(SyncMethod::Uring).unwrap();
            let f = disk.open(&path).await.unwrap();
            let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
            let len = data.len();
            let (r, _) = f.write_all_at(data.clone(), 0..len, 0).await;
            r.unwrap();
            f.start_writeback(0, 3 * 4096).await.unwrap();
            f.start_writeback(4096, 4096).await.unwrap();
            let err = f.start_writeback(0, 5 << 30).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            f.sync_data().await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), data);
        });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The direct-I/O fill with unaligned ends (page-cache writes) around an aligned middle
    /// longer than one direct write: zeros exactly over the range, the rest untouched, and
    /// the file grown when the range runs past its end.
    #[test]
    fn fill_zeros_covers_exactly_its_range() {
        let dir = std::env::temp_dir().join(format!("ringmq-uring-fill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        let len = 3 * DIRECT_FILL_BYTES + 5000;
        std::fs::write(&path, vec![0xABu8; len]).unwrap();
        let (from, to) = (100u64, (2 * DIRECT_FILL_BYTES + 3 * 4096 + 17) as u64);
        let grown = (len + 2 * 4096 + 1) as u64;
        compio::runtime::Runtime::new().unwrap().block_on(async {
            let disk = UringDisk::new(SyncMethod::Uring).unwrap();
            let f = disk.open(&path).await.unwrap();
            f.fill_zeros(from, to).await.unwrap();
            f.fill_zeros(len as u64 - 10, grown).await.unwrap();
            f.sync_data().await.unwrap();
        });
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, grown);
        let (from, to) = (from as usize, to as usize);
        assert!(data[..from].iter().all(|&b| b == 0xAB));
        assert!(data[from..to].iter().all(|&b| b == 0));
        assert!(data[to..len - 10].iter().all(|&b| b == 0xAB));
        assert!(data[len - 10..].iter().all(|&b| b == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
