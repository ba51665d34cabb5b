//! Value types of the engine's API: offsets, requests, results.

use std::net::SocketAddr;
use std::rc::Rc;

/// A byte position in the shard's commit log (RocketMQ's "physical offset").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysOffset(pub u64);

/// A position in one consume queue (RocketMQ's "queue offset"): the n-th message of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct QueueOffset(pub u64);

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the record is written to the file (page cache); a periodic flush syncs it later.
    Written,
    /// After an `fdatasync` covering the record.
    Synced,
}

/// What becomes visible to readers: written data, or only durable data (SYNC_FLUSH brokers:
/// "a message is visible to consumers only once it is written and, under SYNC_FLUSH, durable").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    Async,
    Sync,
}

/// One message to store. Borrowed: the record is encoded before `append` first awaits.
#[derive(Debug, Clone, Copy)]
pub struct AppendRequest<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub body: &'a [u8],
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    /// Property string as stored (spec §4.3). A `__CRC32#` pair in it is replaced.
    pub properties: &'a str,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    /// The consume-queue tag slot: the TAGS hash code ([`ringmq_codec::filter::tag_code`]),
    /// or for delayed messages the due time (spec §4.8). Opaque to the engine; recovery
    /// recomputes it with `StoreConfig::tag_code_of`.
    pub tag_code: i64,
    pub durability: Durability,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub phys_offset: PhysOffset,
    pub queue_offset: QueueOffset,
    pub store_timestamp: i64,
    pub size: u32,
}

/// A byte range of a commit-log segment, ready for sendfile/splice (`file.raw_fd()`).
#[derive(Debug, Clone)]
pub struct FileRange<F> {
    pub file: F,
    pub file_offset: u64,
    pub len: u32,
    pub phys_offset: PhysOffset,
}

/// Outcome of a consume-queue read, in the terms of spec §3.4's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// At least one message returned.
    Found,
    /// Entries were examined but none matched the tag filter.
    NoMatchedMessage,
    /// The queue has no messages (never written, or everything deleted).
    NoMessageInQueue,
    /// `from` is below the queue's min offset.
    OffsetTooSmall,
    /// `from` equals the max offset: caught up (long-poll candidate).
    OffsetOverflowOne,
    /// `from` is beyond the max offset.
    OffsetOverflowBadly,
}

/// Result of [`crate::Store::read`].
#[derive(Debug, Clone)]
pub struct ReadResult<F> {
    pub status: ReadStatus,
    pub ranges: Vec<FileRange<F>>,
    /// Number of messages in `ranges`.
    pub message_count: usize,
    /// Total bytes in `ranges`.
    pub total_bytes: u64,
    /// Where the caller should read next (spec §3.4 `nextBeginOffset`).
    pub next_offset: QueueOffset,
    pub min_offset: QueueOffset,
    pub max_offset: QueueOffset,
}

/// How [`crate::Store::offset_by_time`] resolves a timestamp (spec §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBoundary {
    /// 5.x LOWER: first offset with store time ≥ ts (all older → max offset).
    Lower,
    /// 5.x UPPER: last offset with store time ≤ ts (all newer → 0... the min offset).
    Upper,
    /// 4.x: the entry whose store time is closest to ts (all older → the last entry).
    Closest,
}

/// New messages became visible in one queue: its max offset is now `max_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub topic: Rc<str>,
    pub queue_id: i32,
    pub max_offset: QueueOffset,
    /// Tag slot of the last new message (long-poll wake-up filters on it, spec §3.4).
    pub last_tag_code: i64,
}

/// A record found by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    pub phys_offset: PhysOffset,
    pub store_timestamp: i64,
    pub bytes: Vec<u8>,
}
