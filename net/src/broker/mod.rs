//! The broker: one shard per core, each a logical RocketMQ broker (DESIGN.md), serving the
//! remoting protocol on its own ports from its own store.
//!
//! # Layout
//! - [`config`]: `broker.conf` keys → [`config::BrokerConfig`].
//! - [`shard`]: a shard's thread body, its state ([`shard::Shard`]) and listeners.
//! - [`dispatch`]: request code → handler; [`handlers`]: one file per request family.
//! - [`topics`]: the topic table (validation, system topics, auto-create, retry/DLQ,
//!   persistence); [`groups`]: subscription-group configs.
//! - [`clients`]: producer/consumer groups, connections and subscriptions (pure).
//! - [`locks`]: orderly-consumption queue locks (pure).
//! - [`offsets`]: consumer offsets and their persistence.
//! - [`longpoll`]: parked pulls and the wake-up on arrival (pure table + signal).
//! - [`transaction`]: half messages, END_TRANSACTION, op records and the check-back.
//! - [`register`]: registration with the name servers.
//! - [`schedule`]: delay levels (`SCHEDULE_TOPIC_XXXX`, per-level cursors, re-put when due)
//!   and 5.x timers (a cascade of fixed-delay stages).
//! - [`storage`]: opening the engine store, fsync timing, commit-log files as splice sources.
//! - [`metrics`]: per-shard counters and the `/metrics` endpoint; [`errors`]: failures →
//!   response codes; [`stop`]: the cross-thread stop request.
//!
//! # Invariants
//! - A shard's state is touched only by its own thread: no lock and no cross-core hop on
//!   the send or pull path. The only shared objects are the per-shard metrics (relaxed
//!   atomics written by the owning shard) and the stop signal.
//! - Every send response carries `MSG_REGION` and `TRACE_ON`; every pull response carries
//!   the full pull header; oneway requests are never answered.
//! - A send is answered only after the store acknowledged it: written (ASYNC_FLUSH) or
//!   durable (SYNC_FLUSH); consumers see a message only from then on.
//! - A parked pull is answered within `min(suspendTimeoutMillis, 25 s)`, never blocks its
//!   connection, and its re-run never commits the piggy-backed offset again.
//! - Every topic-table change is persisted and registered with every namesrv at once.
//! - A delayed or timer message reaches its real queue once, never before it is due, across
//!   kill -9 ([`schedule`]); a half message is invisible until committed, and a commit makes it
//!   visible once ([`transaction`]).

pub mod clients;
pub mod config;
pub mod dispatch;
pub mod errors;
pub mod groups;
pub mod handlers;
pub mod locks;
pub mod longpoll;
pub mod metrics;
pub mod offsets;
pub mod register;
pub mod schedule;
pub mod shard;
pub mod stop;
pub mod storage;
pub mod topics;
pub mod transaction;
