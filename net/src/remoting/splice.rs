//! File ranges sent to a socket: copied from the page cache when it holds them, else spliced
//! without passing through user space.
//!
//! ```text
//!   cached:   segment file ──preadv2(RWF_NOWAIT)──► outbox buffer (after the head) ──write──► socket
//!   on disk:  segment file ──splice(off)──► pipe ──splice──► socket        (both io_uring ops)
//! ```
//!
//! Why copy at all: io_uring runs every splice in a kernel worker thread (io-wq; the op is
//! forced async), two hops per chunk. On a busy core those workers wait for the CPU behind
//! the shard threads, so a tail pull took ~33 ms per round trip while the same shard took
//! heavy sends, against ~1.7 ms idle (broker-bugs.md #2). `preadv2(RWF_NOWAIT)` reads only
//! what the page cache holds, on the shard thread, never waiting for the disk, and the copy
//! joins the response head in one socket write (which io_uring completes inline). Tail data
//! is always cached. Measured with `ringmq-bench pull-tail` + `produce` on one 2-shard
//! broker (medians of 3): tail consume 19.4k → 40.9k msgs/s, end-to-end p50 2.88 s → 0.55 ms;
//! with no sends, copy and splice were within noise (256k vs 277k msgs/s catch-up).
//!
//! What the page cache does not hold goes the zero-copy way: Linux splices only through a
//! pipe, so each connection keeps one pipe, made on its first spliced slice. A chunk of at
//! most the pipe's capacity moves file → pipe, then pipe → socket until the pipe is empty;
//! the pages are referenced, not copied. If the kernel refuses to splice from the file
//! (EINVAL: a file system without splice support), the slice is read into memory and
//! written instead, and that is logged once per connection.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;
use compio::BufResult;
use compio::driver::SharedFd;
use compio::fs::pipe::{Receiver, Sender, anonymous, splice};
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;

/// An open file a connection may splice from.
pub trait SpliceSource: 'static {
    /// The file's descriptor. It must stay open as long as `self` lives: the writer keeps the
    /// source alive until the kernel is done with every operation on it.
    fn fd(&self) -> BorrowedFd<'_>;
}

/// `len` bytes of a file at `offset`, part of a response body.
#[derive(Clone)]
pub struct FileSlice {
    pub source: Rc<dyn SpliceSource>,
    pub offset: u64,
    pub len: u32,
}

impl std::fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileSlice({} bytes at {})", self.len, self.offset)
    }
}

impl FileSlice {
    /// The slice without its first `n` bytes (`n` at most `len`).
    pub(crate) fn skip(&self, n: u32) -> FileSlice {
        let n = n.min(self.len);
        FileSlice {
            source: self.source.clone(),
            offset: self.offset + u64::from(n),
            len: self.len - n,
        }
    }
}

/// Owns the source for the duration of a splice op (compio keeps it until completion, even
/// if the future is dropped).
struct SourceFd(Rc<dyn SpliceSource>);

impl AsFd for SourceFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.fd()
    }
}

/// Largest slice copied from the page cache instead of spliced. Every pull body is at most
/// 256 KiB (`maxTransferBytesOnMessageInMemory`), and a commit-log range merges adjacent records of one pull, so
/// this covers every cached pull body.
pub(crate) const COPY_MAX: usize = 1024 * 1024;

/// Bytes moved per file → pipe splice: the default pipe capacity (16 pages), so the pipe
/// never holds more than one chunk.
const PIPE_CHUNK: usize = 64 * 1024;

/// The writer's splice state for one connection.
pub(crate) struct Splicer {
    pipe: Option<(Receiver, Sender)>,
    counter: Option<Arc<AtomicU64>>,
    copied: Option<Arc<AtomicU64>>,
    /// Splicing from files failed with "unsupported": copy from now on.
    copy_only: bool,
}

impl Splicer {
    pub(crate) fn new(counter: Option<Arc<AtomicU64>>, copied: Option<Arc<AtomicU64>>) -> Splicer {
        Splicer {
            pipe: None,
            counter,
            copied,
            copy_only: false,
        }
    }

    /// Appends to `buf` the leading part of `slice` that the page cache holds, without
    /// waiting for the disk; returns how many bytes that was (`slice.len` when all of it).
    /// Slices longer than [`COPY_MAX`] are left to [`Splicer::send`]. An I/O error other than
    /// "not cached" is returned: the frame is already announced, so the caller closes.
    pub(crate) fn copy_cached(&self, slice: &FileSlice, buf: &mut BytesMut) -> io::Result<u32> {
        if slice.len as usize > COPY_MAX {
            return Ok(0);
        }
        let n = read_cached(slice, buf)?;
        if let Some(c) = &self.copied {
            c.fetch_add(u64::from(n), Ordering::Relaxed);
        }
        Ok(n)
    }

    /// Sends the whole slice to `stream`.
    pub(crate) async fn send(
        &mut self,
        stream: &mut TcpStream,
        slice: &FileSlice,
    ) -> io::Result<()> {
        if !self.copy_only {
            match self.splice_slice(stream, slice).await {
                Err(e) if is_unsupported(&e) => {
                    tracing::warn!(
                        error = %e,
                        "cannot splice from the commit log; pull bodies are copied on this connection"
                    );
                    self.copy_only = true;
                }
                other => return other,
            }
        }
        copy_slice(stream, slice).await
    }

    /// Splices the slice; fails with an "unsupported" error only before any byte of it reached
    /// the socket (the copy fallback may then send it whole).
    async fn splice_slice(&mut self, stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
        if self.pipe.is_none() {
            self.pipe = Some(anonymous().await?);
        }
        let Some((rx, tx)) = &self.pipe else {
            return Err(io::Error::other("pipe vanished"));
        };
        let src = SharedFd::new(SourceFd(slice.source.clone()));
        let mut offset = slice.offset;
        let mut left = slice.len as usize;
        while left > 0 {
            let want = left.min(PIPE_CHUNK);
            let n = splice(&src, tx, want).offset_in(to_i64(offset)?).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file ended {left} bytes before the end of a pull body"),
                ));
            }
            let mut moved = 0;
            while moved < n {
                let k = splice(rx, stream, n - moved)
                    .await
                    .map_err(not_unsupported)?;
                if k == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                moved += k;
            }
            if let Some(c) = &self.counter {
                c.fetch_add(n as u64, Ordering::Relaxed);
            }
            offset += n as u64;
            left -= n;
        }
        Ok(())
    }
}

/// Reads the cached prefix of `slice` into `buf`'s spare capacity with
/// `preadv2(RWF_NOWAIT)`: the kernel copies what the page cache holds and answers EAGAIN (or
/// a short count) where it would have to read the disk.
fn read_cached(slice: &FileSlice, buf: &mut BytesMut) -> io::Result<u32> {
    let want = slice.len as usize;
    buf.reserve(want);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&slice.source.fd());
    let mut done = 0usize;
    while done < want {
        let spare = buf.spare_capacity_mut();
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: (want - done).min(spare.len()),
        };
        let at = to_i64(slice.offset + done as u64)?;
        // SAFETY: `fd` is open while `slice.source` lives; the iovec covers spare capacity
        // of `buf`, writable and not aliased, and only the bytes the kernel reports written
        // are then marked initialised.
        let n = unsafe { libc::preadv2(fd, &iov, 1, at, libc::RWF_NOWAIT) };
        match n {
            n if n > 0 => {
                let n = n as usize;
                // SAFETY: the kernel initialised `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                done += n;
            }
            0 => break,
            _ => {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => {}
                    // Not in the page cache, or a kernel/file system without RWF_NOWAIT:
                    // the splice path sends the rest.
                    Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => break,
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(done as u32)
}

fn to_i64(offset: u64) -> io::Result<i64> {
    i64::try_from(offset).map_err(|_| io::Error::other("file offset beyond i64"))
}

fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    )
}

/// A failure after bytes reached the pipe must close the connection, never fall back.
fn not_unsupported(e: io::Error) -> io::Error {
    if is_unsupported(&e) {
        io::Error::other(format!("splice to the socket failed: {e}"))
    } else {
        e
    }
}

/// The fallback: read the range (from the page cache) and write it.
async fn copy_slice(stream: &mut TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut buf = vec![0u8; slice.len as usize];
    let mut done = 0usize;
    while done < buf.len() {
        let fd = slice.source.fd();
        let at = to_i64(slice.offset + done as u64)?;
        let rest = buf.get_mut(done..).unwrap_or_default();
        // SAFETY: `fd` is open while `slice.source` lives; `rest` is a valid writable buffer
        // of the length passed.
        let n = unsafe {
            libc::pread(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                rest.as_mut_ptr().cast(),
                rest.len(),
                at,
            )
        };
        match n {
            n if n > 0 => done += n as usize,
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    let BufResult(res, _) = stream.write_all(buf).await;
    res
}
