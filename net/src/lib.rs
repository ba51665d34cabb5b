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

/// Logging for the ringmq processes: `tracing` to stderr, level from `RUST_LOG` (default
/// info), colours only on a terminal.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
}
