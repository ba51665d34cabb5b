//! The recovery scan's reads: consecutive chunks of one segment file, read ahead of the
//! verification.
//!
//! With a real descriptor a helper thread `pread`s the chunks. io_uring completes a buffered
//! read of page-cached data inline, in the submitting thread, so a read "in flight" on the
//! ring did not overlap with the verification at all: the page-cache copy was 21 % of a warm
//! 4 GiB scan, on the scanning thread (`perf record` of `engine-bench --time-open`). A thread
//! puts that copy on the other core and keeps the disk busy on a cold cache. Backends without
//! a descriptor (the simulated disk) read through the seam in a task, one chunk ahead.

use std::io;
use std::os::fd::RawFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::disk::DiskFile;

/// Chunks read ahead by the helper thread (each `chunk` bytes).
const AHEAD: usize = 2;

type Chunk = (io::Result<()>, Vec<u8>, u64);

/// Where the scan gets its chunks from.
pub(super) enum Chunks<F: DiskFile> {
    /// A helper thread reading the descriptor.
    Thread {
        rx: Option<Receiver<Chunk>>,
        recycle: SyncSender<Vec<u8>>,
        handle: Option<JoinHandle<()>>,
    },
    /// Reads through the disk seam, one in flight.
    Task {
        file: F,
        chunk: u64,
        file_len: u64,
        pending: Option<compio::runtime::JoinHandle<Chunk>>,
        spare: Vec<u8>,
    },
}

impl<F: DiskFile> Chunks<F> {
    /// Starts reading `[start, file_len)` of `file` in chunks of `chunk` bytes.
    pub(super) fn start(file: &F, start: u64, file_len: u64, chunk: u64) -> Chunks<F> {
        if let Some(fd) = file.raw_fd() {
            let (tx, rx) = sync_channel(AHEAD);
            let (recycle, spares) = sync_channel(AHEAD + 2);
            let handle = std::thread::Builder::new()
                .name("ringmq-recovery-read".into())
                .spawn(move || read_thread(fd, start, file_len, chunk, tx, spares))
                .ok();
            if handle.is_some() {
                return Chunks::Thread {
                    rx: Some(rx),
                    recycle,
                    handle,
                };
            }
        }
        let mut c = Chunks::Task {
            file: file.clone(),
            chunk,
            file_len,
            pending: None,
            spare: Vec::new(),
        };
        c.submit(start);
        c
    }

    fn submit(&mut self, off: u64) {
        if let Chunks::Task {
            file,
            chunk,
            file_len,
            pending,
            spare,
        } = self
            && off < *file_len
        {
            let n = (*chunk).min(*file_len - off) as usize;
            let mut buf = std::mem::take(spare);
            buf.resize(n, 0);
            let f = file.clone();
            *pending = Some(compio::runtime::spawn(async move {
                let (r, b) = f.read_exact_at(buf, off).await;
                (r, b, off)
            }));
        }
    }

    /// The next chunk (bytes and their offset in the file), `None` after the last.
    pub(super) async fn next(&mut self) -> Option<Chunk> {
        match self {
            Chunks::Thread { rx, .. } => rx.as_ref()?.recv().ok(),
            Chunks::Task { pending, .. } => {
                let got = pending.take()?.await;
                let chunk = match got {
                    Ok(c) => c,
                    Err(_) => (Err(io::Error::other("read task failed")), Vec::new(), 0),
                };
                let next = chunk.2 + chunk.1.len() as u64;
                if chunk.0.is_ok() {
                    self.submit(next);
                }
                Some(chunk)
            }
        }
    }

    /// Hands a consumed chunk's buffer back for reuse: chunks are large, and fresh
    /// allocations would page-fault on every chunk.
    pub(super) fn recycle(&mut self, buf: Vec<u8>) {
        match self {
            Chunks::Thread { recycle, .. } => {
                let _ = recycle.try_send(buf);
            }
            Chunks::Task { spare, .. } => *spare = buf,
        }
    }

    /// Stops reading and waits for reads in flight (the file must outlive them).
    pub(super) async fn finish(mut self) {
        match &mut self {
            Chunks::Thread { .. } => self.stop_thread(),
            Chunks::Task { pending, .. } => {
                if let Some(h) = pending.take() {
                    let _ = h.await;
                }
            }
        }
    }

    fn stop_thread(&mut self) {
        if let Chunks::Thread { rx, handle, .. } = self {
            // Dropping the receiver makes the thread's next send fail, and it exits.
            drop(rx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

impl<F: DiskFile> Drop for Chunks<F> {
    fn drop(&mut self) {
        // An early return must not leave the thread reading a descriptor that may close.
        self.stop_thread();
    }
}

/// The helper thread: reads every chunk in order and sends it, until done or the scan stops
/// listening.
fn read_thread(
    fd: RawFd,
    start: u64,
    file_len: u64,
    chunk: u64,
    tx: SyncSender<Chunk>,
    spares: Receiver<Vec<u8>>,
) {
    // Tell the kernel the file is read sequentially (a larger read-ahead window on a cold
    // cache). Advice only: a failure changes nothing.
    if let (Ok(off), Ok(len)) = (
        libc::off_t::try_from(start),
        libc::off_t::try_from(file_len - start),
    ) {
        // SAFETY: plain syscall on a descriptor the scan holds open until this thread ends.
        unsafe { libc::posix_fadvise(fd, off, len, libc::POSIX_FADV_SEQUENTIAL) };
    }
    let mut off = start;
    while off < file_len {
        let n = chunk.min(file_len - off) as usize;
        let mut buf = spares.try_recv().unwrap_or_default();
        buf.resize(n, 0);
        let r = pread_all(fd, &mut buf, off);
        let failed = r.is_err();
        if tx.send((r, buf, off)).is_err() || failed {
            return;
        }
        off += n as u64;
    }
}

fn pread_all(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let rest = buf.get_mut(done..).unwrap_or_default();
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|_| io::Error::other("offset out of range"))?;
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes during the call; the
        // descriptor stays open until this thread is joined.
        let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at) };
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
    Ok(())
}
