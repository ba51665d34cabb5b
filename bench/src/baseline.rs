//! Raw-machine baselines, measured in the same run as the broker rows so that a ratio compares
//! two figures taken under the same noise: buffered sequential `pwrite`, `write` +
//! `fdatasync` at a given batch size, the latency of one `fdatasync`, and `sendfile` from a
//! file to a loopback TCP socket. Plain blocking syscalls on std threads: the point is what
//! the kernel and the disk give a simple program, not what a runtime adds.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::stats::Latency;

/// Chunk written when a file is filled for the sendfile baseline.
const FILL_CHUNK: usize = 1 << 20;
/// Most bytes one `sendfile` call is asked to move (the kernel caps a call near 2 GiB).
const SENDFILE_CALL_MAX: usize = 1 << 30;

/// What a throughput baseline measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub bytes: u64,
    pub secs: f64,
}

impl Throughput {
    pub fn bytes_per_s(&self) -> f64 {
        if self.secs > 0.0 {
            self.bytes as f64 / self.secs
        } else {
            0.0
        }
    }
}

fn fresh(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
}

/// Removes a scratch file; its dirty pages are dropped with it, so nothing is written back
/// behind the next measurement.
fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Buffered sequential `pwrite` of `total` bytes in `record`-byte writes into a new file:
/// page cache only, no sync. The async-flush produce row's baseline ("the same bytes": 1 KiB
/// writes, as many as the messages).
pub fn buffered_write(dir: &Path, total: u64, record: usize) -> io::Result<Throughput> {
    let path = dir.join("baseline-buffered.dat");
    let f = fresh(&path)?;
    let buf = vec![0x5au8; record.max(1)];
    let t = Instant::now();
    let mut off = 0u64;
    while off < total {
        f.write_at(&buf, off)?;
        off += buf.len() as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    discard(&path);
    Ok(Throughput { bytes: off, secs })
}

/// What [`write_fdatasync`] measured: throughput and the latency of each `fdatasync` alone.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub throughput: Throughput,
    pub sync_latency: Latency,
}

/// Where the timed writes of [`write_fdatasync`] land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTarget {
    /// Appends to a new, empty file: every `fdatasync` also commits the new file size.
    Append,
    /// Overwrites a file of this many bytes, written and synced before the clock starts
    /// (wrapping to its start when the end is reached): what a broker that prepares its
    /// segments ahead of time pays. Usually faster (no size update per sync).
    Prewritten(u64),
}

/// `writers` threads, each writing `batch` bytes to its own file and calling `fdatasync`
/// after every write, for `duration`: what group commit at that batch size can reach with one
/// commit log per shard (ringmq syncs each shard's log on its own).
pub fn write_fdatasync(
    dir: &Path,
    batch: usize,
    writers: usize,
    duration: Duration,
    target: SyncTarget,
) -> io::Result<SyncRun> {
    let threads: Vec<_> = (0..writers.max(1))
        .map(|k| {
            let path = dir.join(format!("baseline-sync-{k}.dat"));
            std::thread::spawn(move || sync_writer(&path, batch, duration, target))
        })
        .collect();
    let mut bytes = 0;
    let mut secs: f64 = 0.0;
    let mut sync_latency = Latency::new();
    for t in threads {
        let (b, s, lat) = t
            .join()
            .map_err(|_| io::Error::other("a baseline writer thread panicked"))??;
        bytes += b;
        secs = secs.max(s);
        sync_latency.merge(&lat);
    }
    Ok(SyncRun {
        throughput: Throughput { bytes, secs },
        sync_latency,
    })
}

fn sync_writer(
    path: &Path,
    batch: usize,
    duration: Duration,
    target: SyncTarget,
) -> io::Result<(u64, f64, Latency)> {
    let f = fresh(path)?;
    let buf = vec![0xa5u8; batch.max(1)];
    let wrap = match target {
        SyncTarget::Append => u64::MAX,
        SyncTarget::Prewritten(len) => {
            let chunk = vec![0u8; FILL_CHUNK];
            let mut off = 0u64;
            while off < len {
                f.write_at(&chunk, off)?;
                off += chunk.len() as u64;
            }
            f.sync_all()?;
            (off / buf.len() as u64).max(1) * buf.len() as u64
        }
    };
    let mut lat = Latency::new();
    let t = Instant::now();
    let (mut off, mut written) = (0u64, 0u64);
    while t.elapsed() < duration {
        f.write_at(&buf, off)?;
        written += buf.len() as u64;
        off = (off + buf.len() as u64) % wrap;
        let s = Instant::now();
        f.sync_data()?;
        lat.record_ns(u64::try_from(s.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    discard(path);
    Ok((written, secs, lat))
}

/// `sendfile` of a `file_bytes` file (freshly written, so in the page cache) to a loopback
/// TCP socket read by another thread into a 1 MiB buffer: the ceiling of ringmq's zero-copy
/// pull path on this host. Timed from the first call until the reader has every byte.
pub fn sendfile_loopback(dir: &Path, file_bytes: u64) -> io::Result<Throughput> {
    let path = dir.join("baseline-sendfile.dat");
    let f = fresh(&path)?;
    let chunk = vec![0x3cu8; FILL_CHUNK];
    let mut off = 0u64;
    while off < file_bytes {
        f.write_at(&chunk, off)?;
        off += chunk.len() as u64;
    }
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n as u64,
            }
        }
    });
    let sock = TcpStream::connect(addr)?;
    sock.set_nodelay(true)?;
    let t = Instant::now();
    let mut pos: libc::off_t = 0;
    let total = off;
    while (pos as u64) < total {
        let want = usize::try_from(total - pos as u64)
            .unwrap_or(SENDFILE_CALL_MAX)
            .min(SENDFILE_CALL_MAX);
        // SAFETY: both descriptors are open for the duration of the call and `pos` is a valid
        // off_t the kernel advances by what it sent.
        let n = unsafe { libc::sendfile(sock.as_raw_fd(), f.as_raw_fd(), &mut pos, want) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
    }
    sock.shutdown(std::net::Shutdown::Write)?;
    let got = reader
        .join()
        .map_err(|_| io::Error::other("the sendfile reader thread panicked"))??;
    let secs = t.elapsed().as_secs_f64();
    drop(f);
    discard(&path);
    Ok(Throughput { bytes: got, secs })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringmq-baseline-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn baselines_move_the_bytes_they_claim_and_clean_up() {
        let dir = scratch("all");
        let w = buffered_write(&dir, 1 << 20, 1024).unwrap();
        assert_eq!(w.bytes, 1 << 20);
        for target in [SyncTarget::Append, SyncTarget::Prewritten(2 << 20)] {
            let s = write_fdatasync(&dir, 4096, 2, Duration::from_millis(50), target).unwrap();
            assert_eq!(s.throughput.bytes % 4096, 0);
            assert!(s.throughput.bytes > 0);
            assert_eq!(s.sync_latency.count() * 4096, s.throughput.bytes);
        }
        let f = sendfile_loopback(&dir, 3 << 20).unwrap();
        assert_eq!(f.bytes, 3 << 20, "the reader got every byte");
        assert!(f.bytes_per_s() > 0.0);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "scratch files removed: {left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
