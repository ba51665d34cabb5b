//! The remoting transport on compio: TCP server and client connections carrying RocketMQ
//! remoting frames (spec §1), generic over the request handler.
//!
//! # Layout
//! - [`server`]: bind (SO_REUSEADDR, optional SO_REUSEPORT, backlog 1024) and the accept loop.
//! - [`client`]: connect with a timeout.
//! - [`conn`]: one connection: reader and writer tasks, [`Handler`] dispatch, [`Reply`],
//!   calls with a fresh opaque and a timeout, oneway sends.
//! - [`splice`]: response bodies sent from files to the socket: copied from the page cache
//!   into the head's write when cached, else spliced (zero copy).
//!
//! # Invariants
//! - Every socket has TCP_NODELAY.
//! - Everything runs on the thread that created it: handlers need not be `Send` or `Sync`,
//!   and a thread-per-core server runs one runtime, one listener (SO_REUSEPORT) and one
//!   handler per thread.
//! - A request never waits for another: requests are dispatched in arrival order, but each
//!   is answered whenever its handler sends the reply, so responses may go out of order.
//! - A oneway request is never answered; a response uses the request's serialization.
//! - A bad frame (too large, bad header length, unknown serialization, unparsable header)
//!   closes that connection only, logged at warn with the peer address; nothing panics.
//! - The handler learns of every connection's start and end exactly once each
//!   (`Handler::on_open` before its first request, `Handler::on_close` after its last).
//! - Unsent responses are bounded per connection: past `outbox_pause_bytes` the reader stops
//!   reading until the peer drains them.
//! - A command that cannot fit one frame is never encoded: a call fails with
//!   `CallError::TooLarge`, a response is replaced by SYSTEM_ERROR.
//! - A response sent with file slices goes out as its head, then the slices in order, with
//!   nothing interleaved (cached slices are copied into the same write as the head); a failed splice closes the connection (its frame is already
//!   announced), except "splice unsupported" before any byte left, which falls back to a
//!   copy.

pub mod client;
pub mod conn;
pub mod server;
pub mod splice;

pub use client::{RefuseRequests, connect};
pub use conn::{CallError, ConnId, ConnOptions, Connection, Handler, Reply};
pub use server::{Server, ServerOptions};
pub use splice::{FileSlice, SpliceSource};

#[cfg(test)]
mod tests;
