//! ringmq's network side: the remoting codec (re-exported), the namesrv and broker servers,
//! and a client.
//!
//! # Layout
//! - [`remoting`]: the transport on compio (server, client, connection, handler trait).
//! - [`config`]: RocketMQ-style `-c FILE` + `key=value` configuration.
//! - [`namesrv`]: the name server (pure route table + thin handler).
//! - [`broker`]: the broker.
//!
//! # Invariants
//! - Per-thread state only: handlers and tables are owned by one thread (no `Send`/`Sync`
//!   requirement, no `Arc<Mutex>` on the data path).
//! - Bad input from the network becomes a response code or a closed connection, never a
//!   panic.

pub use ringmq_codec as codec;

pub mod broker;
pub mod config;
pub mod namesrv;
pub mod remoting;
