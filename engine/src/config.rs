//! Store configuration. Defaults follow RocketMQ where it has a knob.

use std::net::SocketAddr;
use std::path::PathBuf;

use ringmq_codec::filter::tag_code;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::RecordView;

use crate::flush::FlushConfig;
use crate::retention::RetentionConfig;
use crate::types::FlushMode;

/// How the next segment is prepared ahead of time, off the hot path.
///
/// The default is [`Prealloc::Extend`]. `engine-bench` measures DESIGN.md's claim that
/// overwriting a pre-filled file syncs faster than appending (command and numbers with
/// `SyncMethod::default`): on this VM, 4 KiB write+fdatasync ran at 417 vs 275, 333 vs 341,
/// 283 vs 292 and 269 vs 292 rounds/s (filled vs appending), and at the ~77 KB batches group
/// commit reaches 288 vs 286, 280 vs 311 and 305 vs 283 — no consistent gain, while `Fill`
/// writes a whole segment (1 GiB) of zeros per segment. Re-measure on real NVMe before
/// switching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prealloc {
    /// Create the empty file; writes extend it.
    Create,
    /// Create it and set its length (sparse): no block allocation ahead of time.
    Extend,
    /// Create it and write zeros over the whole length, then sync: later writes overwrite
    /// allocated blocks, which DESIGN.md measured as syncing 2–3× faster than appending.
    Fill,
}

/// Recomputes the consume-queue tag slot of a stored record during recovery. The default is
/// the TAGS hash code; the broker installs one that knows delay topics (due time, §4.8).
pub type TagCodeFn = fn(&RecordView<'_>) -> i64;

/// The default [`TagCodeFn`]: Java `String.hashCode` of TAGS, 0 without a tag.
pub fn default_tag_code(view: &RecordView<'_>) -> i64 {
    tag_code(properties::find(view.properties, keys::TAGS))
}

/// Settings of one shard's store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The shard's data directory (`commitlog/`, `consumequeue/`, `index/`, `checkpoint`).
    pub root: PathBuf,
    /// Commit-log segment size (RocketMQ `mappedFileSizeCommitLog`, 1 GiB).
    pub segment_size: u64,
    /// Entries per consume-queue file (RocketMQ: 300 000 → 6 MB files).
    pub cq_entries_per_file: u64,
    /// Entries per index file.
    pub index_entries_per_file: u64,
    /// Whether readers see written or only durable data.
    pub flush_mode: FlushMode,
    pub flush: FlushConfig,
    pub prealloc: Prealloc,
    /// The broker's client-reachable address, stored as STOREHOST.
    pub store_host: SocketAddr,
    /// Largest body (RocketMQ `maxMessageSize`, 4 MiB).
    pub max_message_size: usize,
    /// How often consume-queue and index files are brought up to date and the checkpoint
    /// advanced (bounds the crash-recovery scan).
    pub checkpoint_interval_ms: u64,
    pub retention: RetentionConfig,
    /// How often retention runs.
    pub retention_interval_ms: u64,
    pub tag_code_of: TagCodeFn,
    /// Read size of the recovery scan.
    pub recovery_chunk_bytes: usize,
}

impl StoreConfig {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root: root.into(),
            segment_size: 1 << 30,
            cq_entries_per_file: 300_000,
            index_entries_per_file: 1 << 20,
            flush_mode: FlushMode::Async,
            flush: FlushConfig::default(),
            prealloc: Prealloc::Extend,
            store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
            max_message_size: 4 << 20,
            checkpoint_interval_ms: 5_000,
            retention: RetentionConfig::default(),
            retention_interval_ms: 10_000,
            tag_code_of: default_tag_code,
            recovery_chunk_bytes: 4 << 20,
        }
    }

    pub(crate) fn commitlog_dir(&self) -> PathBuf {
        self.root.join("commitlog")
    }
    pub(crate) fn consumequeue_dir(&self) -> PathBuf {
        self.root.join("consumequeue")
    }
    pub(crate) fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    pub(crate) fn checkpoint_path(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
}
