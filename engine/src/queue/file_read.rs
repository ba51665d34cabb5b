//! Synchronous positional reads of derived files (consume queues), for the store's
//! synchronous read API (`Store::read`, `Store::queue_entry`), which must answer from entries
//! that have left memory.
//!
//! Why `pread` and not `mmap`: a mapping of a file that recovery later truncates raises
//! SIGBUS on access, the mapping count per process is limited (`vm.max_map_count`, 65 530 by
//! default, against 10 000 queues × several files), and a consume-queue read touches a few
//! hundred bytes: one `pread` of page-cached data costs about what the page fault of a
//! mapping would. Both read the page cache, so neither adds anonymous memory.
//!
//! Backends without a descriptor (the simulated disk) are read through the [`DiskFile`] seam:
//! their futures complete on the first poll, so one poll with a no-op waker suffices; a
//! future that does not complete at once counts as a failed read.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::disk::DiskFile;

/// Fills `buf` from `file` at `offset`. `false` when the file is shorter or the read fails
/// twice: callers treat the entry as absent (a pull then answers "no matched message" at the
/// same offset and the consumer retries), never as a panic. The store's read API is
/// synchronous and has no error channel, so a transient failure gets one retry here.
pub(crate) fn read_exact_sync<F: DiskFile>(file: &F, buf: &mut [u8], offset: u64) -> bool {
    let once = |buf: &mut [u8]| match file.raw_fd() {
        Some(fd) => pread_exact(fd, buf, offset),
        None => read_through_seam(file, buf, offset),
    };
    once(buf) || once(buf)
}

fn pread_exact(fd: std::os::fd::RawFd, buf: &mut [u8], offset: u64) -> bool {
    let mut done = 0usize;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            return false;
        };
        let Ok(at) = libc::off_t::try_from(offset + done as u64) else {
            return false;
        };
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes for the whole call;
        // `fd` belongs to a file the caller holds open.
        let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at) };
        match n {
            n if n > 0 => done += n as usize,
            0 => return false,
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => return false,
        }
    }
    true
}

fn read_through_seam<F: DiskFile>(file: &F, buf: &mut [u8], offset: u64) -> bool {
    let fut = pin!(file.read_exact_at(vec![0; buf.len()], offset));
    let mut cx = Context::from_waker(Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready((Ok(()), bytes)) if bytes.len() == buf.len() => {
            buf.copy_from_slice(&bytes);
            true
        }
        _ => false,
    }
}
