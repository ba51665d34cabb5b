//! The disk seam: the only code in the engine that opens, reads, writes, syncs or deletes
//! files. Everything above it works on byte offsets and is tested on [`SimDisk`].
//!
//! Three backends:
//! - [`UringDisk`]: production; io_uring through compio, fdatasync either as an io_uring op or
//!   on a sync thread ([`SyncMethod`]).
//! - [`StdDisk`]: `std::fs` with positional I/O, for portable runs and real-file tests.
//! - [`SimDisk`]: in memory; tracks written vs durable bytes, can crash with a torn last write
//!   and can fail the Nth call.
//!
//! Buffers are owned (`Vec<u8>` in, the same `Vec<u8>` back) because io_uring needs the
//! memory to stay put while the kernel works on it.
#![allow(async_fn_in_trait)] // one thread owns a shard: these futures never need `Send`.

mod sim;
mod std_fs;
mod uring;

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::path::Path;

pub use sim::{CrashMode, SimDisk, SimFile};
pub use std_fs::{StdDisk, StdFile};
pub use uring::{SyncMethod, UringDisk, UringFile};

/// Free and total bytes of the file system holding a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

impl Space {
    /// Fraction of the file system in use, 0.0 ..= 1.0.
    pub fn used_ratio(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        1.0 - self.available_bytes as f64 / self.total_bytes as f64
    }
}

/// A file system. Paths are absolute or relative to the process; the engine only uses paths
/// under its root directory.
pub trait Disk: Clone + 'static {
    type File: DiskFile;

    /// Opens `path` for reading and writing, creating an empty file if it does not exist.
    /// Creating the file is durable once [`Disk::sync_dir`] has run on its directory.
    async fn open(&self, path: &Path) -> io::Result<Self::File>;

    /// Removes a file. A missing file is not an error.
    async fn remove(&self, path: &Path) -> io::Result<()>;

    /// Creates a directory and its parents.
    async fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Names of the entries of a directory (files and directories), unsorted; an absent
    /// directory lists as empty.
    async fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Makes creations and removals in `dir` durable (fsync on the directory).
    async fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Space of the file system holding `path`.
    fn space(&self, path: &Path) -> io::Result<Space>;
}

/// An open file with positional I/O. Clones share the same open file.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is a number, not a collection size"
)]
pub trait DiskFile: Clone + 'static {
    /// Reads exactly `buf.len()` bytes at `offset`; a short file is `UnexpectedEof`.
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>);

    /// Writes all of `buf[range]` at `offset`. On error some prefix may have been written.
    async fn write_all_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>);

    /// Writes all of `buf[range]` at `offset` and makes those bytes durable before it
    /// completes, with the metadata needed to read them back (`RWF_DSYNC`: a write and an
    /// `fdatasync` of its range in one call). Other ranges of the file are not made durable
    /// by it. On error some prefix may have been written and nothing new is known durable.
    ///
    /// No default: a backend without a one-call durable write uses [`write_then_sync`], and a
    /// wrapper forwards to what it wraps (a default once made the broker's timing wrapper
    /// do two round trips per group commit without anyone noticing).
    async fn write_durable_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>);

    /// Makes every completed write durable (`fdatasync`: the data and the metadata needed to
    /// read it back, such as the length, but not timestamps, which recovery never reads).
    async fn sync_data(&self) -> io::Result<()>;

    /// Starts writing the written bytes of `[from, to)` back to the device without waiting
    /// for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that the next
    /// [`DiskFile::sync_data`] finds little left to do. Not durability: nothing is known
    /// durable after it. No default, for the reason given at [`DiskFile::write_durable_at`].
    async fn start_writeback(&self, from: u64, to: u64) -> io::Result<()>;

    /// Writes zeros over `[from, to)`, to prepare a segment ahead of time: later writes then
    /// overwrite written blocks, whose `fdatasync` commits no block allocation. Not durable
    /// until [`DiskFile::sync_data`]. No default, for the reason given at
    /// [`DiskFile::write_durable_at`]; [`fill_zeros_buffered`] writes through the page cache.
    async fn fill_zeros(&self, from: u64, to: u64) -> io::Result<()>;

    /// Current length in bytes.
    async fn len(&self) -> io::Result<u64>;

    /// Truncates or extends (with zeros) to `len` bytes.
    async fn set_len(&self, len: u64) -> io::Result<()>;

    /// The descriptor for sendfile/splice, when the backend has a real file.
    fn raw_fd(&self) -> Option<RawFd>;

    /// The path this file was opened with (for error messages).
    fn path(&self) -> &Path;
}

/// Piece size of [`fill_zeros_buffered`].
pub const FILL_CHUNK_BYTES: usize = 1 << 20;

/// Zeros over `[from, to)` of `file` as ordinary writes, [`FILL_CHUNK_BYTES`] at a time: a
/// [`DiskFile::fill_zeros`] for backends without a faster one.
pub async fn fill_zeros_buffered<F: DiskFile>(file: &F, from: u64, to: u64) -> io::Result<()> {
    let mut zeros = vec![0u8; FILL_CHUNK_BYTES.min(to.saturating_sub(from) as usize)];
    let mut off = from;
    while off < to {
        let n = (to - off).min(zeros.len() as u64) as usize;
        let (r, z) = file.write_all_at(zeros, 0..n, off).await;
        zeros = z;
        r?;
        off += n as u64;
    }
    Ok(())
}

/// A durable write as two calls: the write, then `fdatasync` of the whole file: the
/// [`DiskFile::write_durable_at`] of a backend without a one-call durable write.
pub async fn write_then_sync<F: DiskFile>(
    file: &F,
    buf: Vec<u8>,
    range: Range<usize>,
    offset: u64,
) -> (io::Result<()>, Vec<u8>) {
    let (r, buf) = file.write_all_at(buf, range, offset).await;
    if let Err(e) = r {
        return (Err(e), buf);
    }
    (file.sync_data().await, buf)
}

/// `sync_file_range(fd, from, to - from, SYNC_FILE_RANGE_WRITE)`: starts writeback of the
/// range's dirty pages and returns without waiting for it (an empty range does nothing).
pub(crate) fn sync_file_range_write(fd: RawFd, from: u64, to: u64) -> io::Result<()> {
    if to <= from {
        return Ok(());
    }
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(from),
        libc::off64_t::try_from(to - from),
    ) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range too large",
        ));
    };
    // SAFETY: a plain system call on a descriptor the caller holds open; no memory is shared.
    let r = unsafe { libc::sync_file_range(fd, offset, len, libc::SYNC_FILE_RANGE_WRITE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
