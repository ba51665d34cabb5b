//! `SimDisk`: an in-memory disk for deterministic crash tests.
//!
//! Each file keeps two images: `data` (what reads see: the page cache) and `durable` (what
//! survives a crash). Writes and length changes since the last `sync_data` are kept as an
//! ordered list of pending operations. [`SimDisk::crash`] rebuilds every file from its durable
//! image plus some of its pending operations, chosen by [`CrashMode`]: none, an in-order prefix
//! with the last write torn, or a random subset (page-cache writeback has no order).
//! [`SimDisk::fail_call`] makes the Nth call from now fail with EIO, and a capacity makes
//! writes past it fail with ENOSPC. Directory operations are durable at once.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{Disk, DiskFile, Space};

/// What reaches the disk of the writes that were not synced when the machine stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Only synced bytes survive.
    DurableOnly,
    /// A random in-order prefix of the pending operations survives; the last one may be torn
    /// (a prefix of its bytes).
    TornPrefix { seed: u64 },
    /// Each pending write survives or not at random, possibly torn (holes stay zero or old).
    Scattered { seed: u64 },
}

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct SimFileState {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Pending>,
}

#[derive(Debug, Default)]
struct SimState {
    files: BTreeMap<PathBuf, Rc<RefCell<SimFileState>>>,
    dirs: BTreeSet<PathBuf>,
    generation: u64,
    calls: u64,
    fail_at: Option<u64>,
    capacity_bytes: Option<u64>,
    syncs: u64,
    /// Every [`DiskFile::start_writeback`] asked for: (file, from, to).
    writebacks: Vec<(PathBuf, u64, u64)>,
}

impl SimState {
    /// Counts a call and decides whether it is the one to fail.
    fn call(&mut self, what: &str) -> io::Result<()> {
        self.calls += 1;
        if self.fail_at == Some(self.calls) {
            self.fail_at = None;
            return Err(io::Error::other(format!(
                "simulated I/O error on call {} ({what})",
                self.calls
            )));
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|f| f.borrow().data.len() as u64)
            .sum()
    }
}

/// The simulated disk. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Rc<RefCell<SimState>>,
}

/// A file of [`SimDisk`]. A handle from before a crash fails every call.
#[derive(Debug, Clone)]
pub struct SimFile {
    disk: Rc<RefCell<SimState>>,
    file: Rc<RefCell<SimFileState>>,
    generation: u64,
    path: Rc<PathBuf>,
}

/// A tiny deterministic generator (xorshift64*), enough to pick crash outcomes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

fn apply_write(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let start = offset as usize;
    let end = start + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    if let Some(dst) = data.get_mut(start..end) {
        dst.copy_from_slice(bytes);
    }
}

/// The parts of a pending operation outside `[start, end)` (a write cut around a durable
/// range; length changes stay as they are).
fn cut_write(op: Pending, start: u64, end: u64) -> Vec<Pending> {
    let Pending::Write { offset, bytes } = op else {
        return vec![op];
    };
    let op_end = offset + bytes.len() as u64;
    if op_end <= start || offset >= end {
        return vec![Pending::Write { offset, bytes }];
    }
    let mut parts = Vec::new();
    if offset < start {
        let keep = (start - offset) as usize;
        parts.push(Pending::Write {
            offset,
            bytes: bytes.get(..keep).unwrap_or_default().to_vec(),
        });
    }
    if op_end > end {
        let skip = (end - offset) as usize;
        parts.push(Pending::Write {
            offset: end,
            bytes: bytes.get(skip..).unwrap_or_default().to_vec(),
        });
    }
    parts
}

impl SimDisk {
    pub fn new() -> Self {
        SimDisk::default()
    }

    /// Makes the `n`th call from now (1 = the next one) fail with an I/O error.
    pub fn fail_call(&self, n: u64) {
        let mut s = self.state.borrow_mut();
        s.fail_at = Some(s.calls + n.max(1));
    }

    /// Cancels a pending [`SimDisk::fail_call`].
    pub fn clear_failure(&self) {
        self.state.borrow_mut().fail_at = None;
    }

    /// Caps the total bytes of all files; writes past it fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.state.borrow_mut().capacity_bytes = bytes;
    }

    /// Number of calls made so far (to aim [`SimDisk::fail_call`]).
    pub fn calls(&self) -> u64 {
        self.state.borrow().calls
    }

    /// Number of successful `sync_data` calls and durable writes so far.
    pub fn syncs(&self) -> u64 {
        self.state.borrow().syncs
    }

    /// The writebacks started so far, as (file, from, to), in order.
    pub fn writebacks(&self) -> Vec<(PathBuf, u64, u64)> {
        self.state.borrow().writebacks.clone()
    }

    /// Stops the machine: every file keeps its durable image plus what `mode` lets through,
    /// and every open handle becomes stale.
    pub fn crash(&self, mode: CrashMode) {
        let mut s = self.state.borrow_mut();
        s.generation += 1;
        s.fail_at = None;
        let mut rng = Rng(match mode {
            CrashMode::DurableOnly => 1,
            CrashMode::TornPrefix { seed } | CrashMode::Scattered { seed } => seed ^ 0x9E37_79B9,
        });
        for (_, f) in s.files.iter() {
            let mut f = f.borrow_mut();
            let mut image = f.durable.clone();
            let pending = std::mem::take(&mut f.pending);
            match mode {
                CrashMode::DurableOnly => {}
                CrashMode::TornPrefix { .. } => {
                    let keep = rng.below(pending.len() as u64 + 1) as usize;
                    for (i, op) in pending.iter().take(keep).enumerate() {
                        match op {
                            Pending::SetLen(len) => image.resize(*len as usize, 0),
                            Pending::Write { offset, bytes } => {
                                let n = if i + 1 == keep {
                                    rng.below(bytes.len() as u64 + 1) as usize
                                } else {
                                    bytes.len()
                                };
                                apply_write(
                                    &mut image,
                                    *offset,
                                    bytes.get(..n).unwrap_or_default(),
                                );
                            }
                        }
                    }
                }
                CrashMode::Scattered { .. } => {
                    for op in &pending {
                        if let Pending::Write { offset, bytes } = op
                            && rng.below(2) == 0
                        {
                            let n = rng.below(bytes.len() as u64 + 1) as usize;
                            apply_write(&mut image, *offset, bytes.get(..n).unwrap_or_default());
                        }
                    }
                }
            }
            f.durable = image.clone();
            f.data = image;
        }
    }

    /// The bytes reads see now (page cache), for test assertions.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        self.state
            .borrow()
            .files
            .get(path)
            .map(|f| f.borrow().data.clone())
    }

    /// Overwrites bytes of a file as if on the platter (durable at once), for corruption tests.
    pub fn poke(&self, path: &Path, offset: u64, bytes: &[u8]) -> bool {
        let s = self.state.borrow();
        let Some(f) = s.files.get(path) else {
            return false;
        };
        let mut f = f.borrow_mut();
        apply_write(&mut f.data, offset, bytes);
        apply_write(&mut f.durable, offset, bytes);
        true
    }

    /// Paths of all files, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.state.borrow().files.keys().cloned().collect()
    }
}

impl Disk for SimDisk {
    type File = SimFile;

    async fn open(&self, path: &Path) -> io::Result<SimFile> {
        let mut s = self.state.borrow_mut();
        s.call("open")?;
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !s.dirs.contains(parent)
        {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no directory {}", parent.display()),
            ));
        }
        let file = s.files.entry(path.to_path_buf()).or_default().clone();
        Ok(SimFile {
            disk: self.state.clone(),
            file,
            generation: s.generation,
            path: Rc::new(path.to_path_buf()),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        s.call("remove")?;
        s.files.remove(path);
        Ok(())
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state.borrow_mut();
        s.call("create_dir_all")?;
        let mut p = Some(path);
        while let Some(dir) = p {
            if dir.as_os_str().is_empty() {
                break;
            }
            s.dirs.insert(dir.to_path_buf());
            p = dir.parent();
        }
        Ok(())
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.state.borrow();
        let mut names = BTreeSet::new();
        let children = s.files.keys().chain(s.dirs.iter());
        for p in children {
            if let Ok(rest) = p.strip_prefix(dir)
                && let Some(first) = rest.components().next()
                && let Some(name) = first.as_os_str().to_str()
            {
                names.insert(name.to_owned());
            }
        }
        Ok(names.into_iter().collect())
    }

    async fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        self.state.borrow_mut().call("sync_dir")
    }

    fn space(&self, _path: &Path) -> io::Result<Space> {
        let s = self.state.borrow();
        let total = s.capacity_bytes.unwrap_or(u64::MAX / 2);
        Ok(Space {
            total_bytes: total,
            available_bytes: total.saturating_sub(s.used_bytes()),
        })
    }
}

impl SimFile {
    fn check(&self, what: &str) -> io::Result<()> {
        let mut s = self.disk.borrow_mut();
        if s.generation != self.generation {
            return Err(io::Error::other(format!(
                "stale handle to {} after a crash",
                self.path.display()
            )));
        }
        s.call(what)
    }
}

impl DiskFile for SimFile {
    async fn read_exact_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        if let Err(e) = self.check("read") {
            return (Err(e), buf);
        }
        let f = self.file.borrow();
        let start = offset as usize;
        let r = match f.data.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of file",
            )),
        };
        (r, buf)
    }

    async fn write_all_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        if let Err(e) = self.check("write") {
            return (Err(e), buf);
        }
        let Some(bytes) = buf.get(range) else {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "write range outside buffer");
            return (Err(e), buf);
        };
        {
            let s = self.disk.borrow();
            let cur = self.file.borrow().data.len() as u64;
            let grow = (offset + bytes.len() as u64).saturating_sub(cur);
            if let Some(cap) = s.capacity_bytes
                && s.used_bytes() + grow > cap
            {
                return (Err(io::Error::from_raw_os_error(libc::ENOSPC)), buf);
            }
        }
        let mut f = self.file.borrow_mut();
        apply_write(&mut f.data, offset, bytes);
        f.pending.push(Pending::Write {
            offset,
            bytes: bytes.to_vec(),
        });
        drop(f);
        (Ok(()), buf)
    }

    /// Two calls, as the kernel does it: the write, then the sync of its range (each can be
    /// failed with [`SimDisk::fail_call`]; a failed sync leaves the write pending, as a failed
    /// `fdatasync` does). Only the written range becomes durable, as with `RWF_DSYNC`: older
    /// pending writes stay pending, cut where they overlap it (the page cache holds only the
    /// newest bytes, so a crash can never put older bytes over durable ones).
    async fn write_durable_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        let (r, buf) = self.write_all_at(buf, range.clone(), offset).await;
        if r.is_err() {
            return (r, buf);
        }
        if let Err(e) = self.check("sync") {
            return (Err(e), buf);
        }
        let bytes = buf.get(range).unwrap_or_default();
        let mut f = self.file.borrow_mut();
        f.pending.pop(); // the write just pushed: durable now
        let end = offset + bytes.len() as u64;
        f.pending = std::mem::take(&mut f.pending)
            .into_iter()
            .flat_map(|op| cut_write(op, offset, end))
            .collect();
        apply_write(&mut f.durable, offset, bytes);
        drop(f);
        self.disk.borrow_mut().syncs += 1;
        (Ok(()), buf)
    }

    async fn fill_zeros(&self, from: u64, to: u64) -> io::Result<()> {
        super::fill_zeros_buffered(self, from, to).await
    }

    async fn sync_data(&self) -> io::Result<()> {
        self.check("sync")?;
        let mut f = self.file.borrow_mut();
        f.durable = f.data.clone();
        f.pending.clear();
        drop(f);
        self.disk.borrow_mut().syncs += 1;
        Ok(())
    }

    /// Recorded, and otherwise nothing: written bytes stay written and not durable. Never an
    /// injected failure, since the store ignores this hint's outcome.
    async fn start_writeback(&self, from: u64, to: u64) -> io::Result<()> {
        let path = self.path.as_ref().clone();
        self.disk.borrow_mut().writebacks.push((path, from, to));
        Ok(())
    }

    async fn len(&self) -> io::Result<u64> {
        self.check("len")?;
        Ok(self.file.borrow().data.len() as u64)
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        self.check("set_len")?;
        let mut f = self.file.borrow_mut();
        f.data.resize(len as usize, 0);
        f.pending.push(Pending::SetLen(len));
        Ok(())
    }

    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        compio::runtime::Runtime::new().unwrap().block_on(f)
    }

    #[test]
    fn written_vs_durable_and_crash_modes() {
        block_on(async {
            let disk = SimDisk::new();
            disk.create_dir_all(Path::new("/d")).await.unwrap();
            let f = disk.open(Path::new("/d/a")).await.unwrap();
            f.write_all_at(b"hello".to_vec(), 0..5, 0).await.0.unwrap();
            f.sync_data().await.unwrap();
            f.write_all_at(b"world".to_vec(), 0..5, 5).await.0.unwrap();
            assert_eq!(disk.contents(Path::new("/d/a")).unwrap(), b"helloworld");
            disk.crash(CrashMode::DurableOnly);
            assert_eq!(disk.contents(Path::new("/d/a")).unwrap(), b"hello");
            // The old handle is stale after a crash.
            assert!(f.len().await.is_err());
            let f = disk.open(Path::new("/d/a")).await.unwrap();
            f.write_all_at(b"world".to_vec(), 0..5, 5).await.0.unwrap();
            disk.crash(CrashMode::TornPrefix { seed: 3 });
            let c = disk.contents(Path::new("/d/a")).unwrap();
            assert!(c.len() >= 5 && c.len() <= 10 && b"helloworld".starts_with(&c));
            assert_eq!(
                disk.list(Path::new("/d")).await.unwrap(),
                vec!["a".to_owned()]
            );
        });
    }

    #[test]
    fn a_durable_write_makes_only_its_range_durable() {
        block_on(async {
            let disk = SimDisk::new();
            disk.create_dir_all(Path::new("/d")).await.unwrap();
            let f = disk.open(Path::new("/d/a")).await.unwrap();
            f.write_all_at(b"aaaaaaaa".to_vec(), 0..8, 0)
                .await
                .0
                .unwrap();
            f.write_durable_at(b"BBBB".to_vec(), 0..4, 2)
                .await
                .0
                .unwrap();
            assert_eq!(disk.syncs(), 1);
            // The older write stays pending, but never over the durable range.
            disk.crash(CrashMode::DurableOnly);
            assert_eq!(disk.contents(Path::new("/d/a")).unwrap(), b"\0\0BBBB");
            let f = disk.open(Path::new("/d/a")).await.unwrap();
            f.write_all_at(b"cccccccc".to_vec(), 0..8, 0)
                .await
                .0
                .unwrap();
            f.write_durable_at(b"DD".to_vec(), 0..2, 3).await.0.unwrap();
            disk.crash(CrashMode::TornPrefix { seed: 7 });
            let c = disk.contents(Path::new("/d/a")).unwrap();
            assert_eq!(c.get(3..5), Some(&b"DD"[..]), "{c:?}");
        });
    }

    #[test]
    fn fails_the_nth_call_and_runs_out_of_space() {
        block_on(async {
            let disk = SimDisk::new();
            disk.create_dir_all(Path::new("/d")).await.unwrap();
            let f = disk.open(Path::new("/d/a")).await.unwrap();
            disk.fail_call(2);
            assert!(f.write_all_at(vec![1; 4], 0..4, 0).await.0.is_ok());
            assert!(f.sync_data().await.is_err());
            assert!(f.sync_data().await.is_ok());
            disk.set_capacity(Some(6));
            let (r, _) = f.write_all_at(vec![1; 4], 0..4, 4).await;
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        });
    }
}
