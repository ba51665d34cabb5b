//! The shard's store as the broker opens it: the io_uring disk wrapped to time every
//! commit-log `fdatasync` (the `ringmq_fsync_seconds` histogram), the [`StoreConfig`] made
//! from the broker config, and commit-log files as splice sources for zero-copy pulls.
//!
//! The wrapper sits on the engine's public [`Disk`] seam, so the engine needs no metrics hook.
//! It also times every file operation the engine starts on the shard's thread and logs, at
//! debug level, each one slower than [`SLOW_OP`] with its file and offset: a send stall
//! (broker-bugs.md #3) then shows which operation it waited for (`RUST_LOG=debug`, target
//! `ringmq_net::broker::storage`).

use std::io;
use std::ops::Range;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq_engine::disk::{Disk, DiskFile, Space, SyncMethod, UringDisk, UringFile};
use ringmq_engine::flush::FlushConfig;
use ringmq_engine::retention::RetentionConfig;
use ringmq_engine::{FlushMode, Prealloc, Store, StoreConfig, SystemClock};

use super::config::{BrokerConfig, FlushDiskType};
use super::metrics::ShardMetrics;
use crate::remoting::SpliceSource;

/// Operations slower than this are logged at debug level: 5 ms is above a loaded
/// scheduler tick (4 ms) and well below the stalls worth explaining.
pub const SLOW_OP: Duration = Duration::from_millis(5);

/// Logs `op` on `path` if it took longer than [`SLOW_OP`] since `start`. Blocking calls
/// (`space`) stall the shard thread; the others measure submit → completion, which includes
/// the time the completion waited for the thread.
fn note_slow(op: &str, path: &Path, offset: u64, len: usize, start: Instant) {
    let took = start.elapsed();
    if took > SLOW_OP {
        tracing::debug!(
            op,
            path = %path.display(),
            offset,
            len,
            took_ms = took.as_secs_f64() * 1e3,
            "slow store operation"
        );
    }
}

/// The store type every shard runs.
pub type ShardStore = Store<MeteredDisk>;
pub type SegmentFile = MeteredFile;

/// [`UringDisk`] with commit-log syncs timed into the shard's metrics.
#[derive(Clone)]
pub struct MeteredDisk {
    inner: UringDisk,
    metrics: Arc<ShardMetrics>,
}

#[derive(Clone)]
pub struct MeteredFile {
    inner: UringFile,
    /// Set for commit-log segments only: consume-queue and checkpoint syncs are not the
    /// latency producers wait on.
    metrics: Option<Arc<ShardMetrics>>,
}

impl Disk for MeteredDisk {
    type File = MeteredFile;

    async fn open(&self, path: &Path) -> io::Result<MeteredFile> {
        let start = Instant::now();
        let inner = self.inner.open(path).await;
        note_slow("open", path, 0, 0, start);
        let inner = inner?;
        let is_log = path
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|d| d == "commitlog");
        Ok(MeteredFile {
            inner,
            metrics: is_log.then(|| self.metrics.clone()),
        })
    }

    async fn remove(&self, path: &Path) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.remove(path).await;
        note_slow("remove", path, 0, 0, start);
        r
    }

    async fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.create_dir_all(path).await;
        note_slow("create_dir_all", path, 0, 0, start);
        r
    }

    async fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let start = Instant::now();
        let r = self.inner.list(dir).await;
        note_slow("list", dir, 0, 0, start);
        r
    }

    async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.sync_dir(dir).await;
        note_slow("sync_dir", dir, 0, 0, start);
        r
    }

    fn space(&self, path: &Path) -> io::Result<Space> {
        let start = Instant::now();
        let r = self.inner.space(path);
        note_slow("statvfs (blocking)", path, 0, 0, start);
        r
    }
}

impl DiskFile for MeteredFile {
    async fn read_exact_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<()>, Vec<u8>) {
        let (start, len) = (Instant::now(), buf.len());
        let r = self.inner.read_exact_at(buf, offset).await;
        note_slow("read", self.path(), offset, len, start);
        r
    }

    async fn write_all_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        let (start, len) = (Instant::now(), range.len());
        let r = self.inner.write_all_at(buf, range, offset).await;
        note_slow("write", self.path(), offset, len, start);
        r
    }

    /// Delegated, not left to the trait's default (a write, then a sync of the whole file):
    /// the io_uring backend does both in one `RWF_DSYNC` write, the group commit's durable
    /// write under SYNC_FLUSH. Timed into the fsync histogram, since it is the log's sync.
    async fn write_durable_at(
        &self,
        buf: Vec<u8>,
        range: Range<usize>,
        offset: u64,
    ) -> (io::Result<()>, Vec<u8>) {
        let (start, len) = (Instant::now(), range.len());
        let r = self.inner.write_durable_at(buf, range, offset).await;
        if let Some(m) = &self.metrics {
            m.fsync.observe(start.elapsed());
        }
        note_slow("write+fdatasync", self.path(), offset, len, start);
        r
    }

    /// Delegated for the backend's direct-I/O fill.
    async fn fill_zeros(&self, from: u64, to: u64) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.fill_zeros(from, to).await;
        note_slow(
            "fill zeros",
            self.path(),
            from,
            to.saturating_sub(from) as usize,
            start,
        );
        r
    }

    async fn sync_data(&self) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.sync_data().await;
        if let Some(m) = &self.metrics {
            m.fsync.observe(start.elapsed());
        }
        note_slow("fdatasync", self.path(), 0, 0, start);
        r
    }

    async fn start_writeback(&self, from: u64, to: u64) -> io::Result<()> {
        self.inner.start_writeback(from, to).await
    }

    async fn len(&self) -> io::Result<u64> {
        self.inner.len().await
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        let start = Instant::now();
        let r = self.inner.set_len(len).await;
        note_slow("set_len", self.path(), len, 0, start);
        r
    }

    fn raw_fd(&self) -> Option<RawFd> {
        self.inner.raw_fd()
    }

    fn path(&self) -> &Path {
        self.inner.path()
    }
}

/// A commit-log segment as a splice source: the clone keeps the file open for as long as a
/// pull response still needs it, even after retention deleted the segment.
pub struct SegmentSource {
    file: MeteredFile,
    fd: RawFd,
}

impl SegmentSource {
    /// `None` when the backend has no descriptor (then the pull copies).
    pub fn new(file: &MeteredFile) -> Option<Rc<SegmentSource>> {
        let fd = file.raw_fd()?;
        Some(Rc::new(SegmentSource {
            file: file.clone(),
            fd,
        }))
    }
}

impl SpliceSource for SegmentSource {
    fn fd(&self) -> BorrowedFd<'_> {
        let _ = &self.file;
        // SAFETY: `self.file` owns this descriptor (through its open compio file) and lives
        // as long as `self`, so the descriptor stays open for the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

/// The engine settings for shard `k`.
pub fn store_config(cfg: &BrokerConfig, k: usize) -> StoreConfig {
    let mut sc = StoreConfig::new(cfg.shard_dir(k));
    sc.segment_size = cfg.segment_size;
    sc.flush_mode = match cfg.flush {
        FlushDiskType::Sync => FlushMode::Sync,
        FlushDiskType::Async => FlushMode::Async,
    };
    sc.flush = FlushConfig {
        flush_interval_ms: cfg.flush_interval_ms,
        ..FlushConfig::default()
    };
    if cfg.warm_mapped_file {
        sc.prealloc = Prealloc::Fill;
        sc.prepare_first_segment = true;
    }
    sc.write_behind_bytes = cfg.write_behind_bytes;
    sc.store_host = cfg.shard_addr(k);
    sc.max_message_size = cfg.max_message_size;
    // Schedule records keep their due time in the tag slot, also after recovery.
    sc.tag_code_of = super::schedule::tag_code_of;
    sc.retention = RetentionConfig {
        file_reserved_time_hours: cfg.file_reserved_time_hours,
        delete_when_hours: cfg.delete_when_hours.clone(),
        disk_max_used_space_ratio: f64::from(cfg.disk_max_used_space_ratio) / 100.0,
        ..RetentionConfig::default()
    };
    sc
}

/// Opens shard `k`'s store on the current (shard) runtime.
pub async fn open(
    cfg: &BrokerConfig,
    k: usize,
    metrics: Arc<ShardMetrics>,
) -> Result<ShardStore, String> {
    let inner = UringDisk::new(SyncMethod::default())
        .map_err(|e| format!("cannot start the sync thread of shard {k}: {e}"))?;
    let disk = MeteredDisk { inner, metrics };
    let sc = store_config(cfg, k);
    let root = sc.root.clone();
    Store::open(disk, sc, Rc::new(SystemClock))
        .await
        .map_err(|e| {
            format!(
                "cannot open the store of shard {k} at {}: {e}",
                root.display()
            )
        })
}

#[cfg(test)]
mod tests {
    //! The engine settings the broker's keys become.
    use super::*;
    use crate::config::Config;

    fn parse(args: &[&str]) -> BrokerConfig {
        BrokerConfig::from_config(&Config::from_args(args.iter().copied()).unwrap()).unwrap()
    }

    #[test]
    fn warm_mapped_file_prepares_every_segment_the_first_included() {
        let cold = store_config(&parse(&["shards=1"]), 0);
        assert_eq!(cold.prealloc, Prealloc::Auto);
        assert!(!cold.prepare_first_segment);
        let warm = store_config(&parse(&["shards=1", "warmMapedFileEnable=true"]), 0);
        assert_eq!(warm.prealloc, Prealloc::Fill);
        assert!(warm.prepare_first_segment);
    }
}
