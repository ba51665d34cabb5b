//! ringmq storage engine: one shard's commit log, consume queues, key index, group commit,
//! checkpointed recovery and retention.
//!
//! # Layout
//! - [`store`]: [`Store`], the shard's storage: `open` (recovery), `append`, `read`, lookups,
//!   `close`; its group-commit driver, checkpoint writer and retention executor.
//! - [`log`]: commit-log record encoding and verification, segment math, the recovery scan.
//! - [`queue`]: consume-queue entries and offset math.
//! - [`flush`]: group commit as a pure state machine ([`flush::FlushPolicy`]).
//! - [`index`]: key index (KEYS, UNIQ_KEY → physical offsets).
//! - [`retention`]: which segments to delete (pure policy).
//! - [`disk`]: the only code that touches files: io_uring, `std::fs` and simulated backends.
//! - [`checkpoint`]: the recovery checkpoint file; [`config`]; [`clock`]; [`types`].
//!
//! The byte layout of every file is in `FORMAT.md`.
//!
//! # Invariants
//! - A record never straddles segments; a segment's unused tail is an end-of-file filler.
//! - Physical offset, queue offset and store time are written once, at append, and every
//!   record carries a whole-record CRC; recovery serves nothing after the first record that
//!   fails verification.
//! - An append acknowledged with `Durability::Synced` survives any crash. One acknowledged
//!   with `Durability::Written` survives a process crash (page cache), not a power loss
//!   before the next sync.
//! - Readers see only written bytes, and under `FlushMode::Sync` only durable bytes.
//! - Queue offsets of one queue are consecutive; a batch's records are consecutive.
//! - A failed write or sync fails exactly the appends it covers (and those behind them);
//!   the store then refuses appends until `recover()`.
//! - A `Store` is owned by one thread; nothing is `Send`, nothing locks on the append path.
#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod disk;
pub mod error;
pub mod flush;
pub mod index;
pub mod log;
pub mod queue;
pub mod retention;
pub mod store;
mod sync;
pub mod types;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Prealloc, StoreConfig};
pub use error::StorageError;
pub use store::{Store, StoreStats};
pub use types::*;
