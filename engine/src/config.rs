//! Store configuration. Defaults follow RocketMQ where it has a knob.

use std::net::SocketAddr;
use std::path::PathBuf;

use ringmq_codec::filter::tag_code;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::RecordView;

use crate::flush::FlushConfig;
use crate::retention::RetentionConfig;
use crate::types::FlushMode;

/// How a segment is prepared ahead of time, off the hot path: the segment the log starts in
/// when the store opens, and the next one once the current one is half written.
///
/// The default is [`Prealloc::Auto`]: `Fill` under sync flush, `Extend` under async flush.
/// `fdatasync` after overwriting written blocks needs no journal commit for block allocation
/// or the file size; after appending it does. `engine-bench` (raw pwrite+fdatasync of the
/// ~77 KB batch group commit reaches with 64 appenders; 2-core VM, ext4 on virtio) measured
/// overwriting a filled file at 8 329 vs 3 602 and 4 359 vs 3 278 rounds/s, and the engine's
/// sync p50 at 253/221/256 µs with `Fill` vs 448/381/396 µs with `Extend` (alternating runs,
/// `--only-sync`). Under async flush the sync is off the ack path, so the second write of
/// every byte that `Fill` costs buys nothing; `Fill` also writes a whole segment (1 GiB by
/// default) before the first append of a fresh sync-flush log completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prealloc {
    /// Create the empty file; writes extend it.
    Create,
    /// Create it and set its length (sparse): no block allocation ahead of time.
    Extend,
    /// Create it and write zeros over the whole length, then sync: later writes overwrite
    /// allocated, written blocks, and their fdatasync commits no metadata.
    Fill,
    /// `Fill` when the store runs [`FlushMode::Sync`], `Extend` otherwise.
    Auto,
}

impl Prealloc {
    /// The concrete preparation for a store flushing as `mode` (never `Auto`).
    pub fn resolve(self, mode: FlushMode) -> Prealloc {
        match (self, mode) {
            (Prealloc::Auto, FlushMode::Sync) => Prealloc::Fill,
            (Prealloc::Auto, FlushMode::Async) => Prealloc::Extend,
            (p, _) => p,
        }
    }
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
    /// Prepare the segment a fresh log starts in as `prealloc` says before `open` returns,
    /// instead of only extending it (RocketMQ `warmMapedFileEnable`). With `Fill`, the
    /// first segment's group commits then overwrite written blocks like every later
    /// segment's, at the price of writing a segment of zeros before the store opens.
    pub prepare_first_segment: bool,
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
    /// Write-behind, async flush only: once this many bytes are written past the last
    /// writeback started, their whole pages are handed to the kernel's writeback at once
    /// ([`DiskFile::start_writeback`](crate::disk::DiskFile::start_writeback)) instead of
    /// all waiting for the periodic flush (0: off). Every 500 ms, that flush's fdatasync had
    /// ~10 ms of writeback to build at once (perf: `ext4_writepages` in the sync's io-wq
    /// worker), a burst that delayed everything else on a 2-core host. Broker, open-loop
    /// produce at 30k msgs/s, 100 µs tick, alternating runs: send p99 20.0 / 21.8 / 21.8 ms
    /// without, 10.2 / 9.7 / 10.3 ms with 1 MiB. The price near saturation: closed-loop
    /// produce 79.4k → 74.9k msgs/s (medians of 6 pairs, on winning 1 of 6). A log whose
    /// writes queue up skips it (see `write_behind` in the driver): `engine-bench
    /// --only-async`, 3 pairs, 481 / 559 / 543k appends/s off against 559 / 552 / 610k on
    /// (447 / 625 / 485k before that rule). The broker's `writeBehindBytes`.
    pub write_behind_bytes: u64,
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
            prealloc: Prealloc::Auto,
            prepare_first_segment: false,
            store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
            max_message_size: 4 << 20,
            checkpoint_interval_ms: 5_000,
            retention: RetentionConfig::default(),
            retention_interval_ms: 10_000,
            tag_code_of: default_tag_code,
            recovery_chunk_bytes: 4 << 20,
            write_behind_bytes: 1 << 20,
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
