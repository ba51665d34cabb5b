//! RocketMQ "remoting" protocol codec for ringmq: bytes in, values out.
//!
//! # Layout
//! - [`frame`]: length prefix and header word; `check` / `decode` / `decode_from` / `encode`.
//! - [`header`]: JSON (spec §1.4) and ROCKETMQ binary (spec §1.5) command headers.
//! - [`command`]: the decoded [`Command`] and its ext-field map ([`ExtFields`], stored in
//!   one text buffer).
//! - [`codes`]: request and response codes; [`filter`]: tag codes and TAG expressions.
//! - [`typed`]: the `ext_header!` mapping of typed headers to ext fields; [`headers`]: every
//!   MVP/REC header, one file per request family.
//! - [`body`]: JSON bodies of spec §5; [`message`]: the stored-message layout of spec §4.
//!
//! # Invariants
//! - No I/O and no async runtime: this crate only turns bytes into values and back.
//! - Input never panics: malformed bytes are a [`FrameError`]; an incomplete frame is
//!   `Ok(None)` ("need more bytes").
//! - Lengths are checked against the frame limit before anything is allocated.
//! - Output is standard JSON (quoted keys); input tolerates Java's quirks.
#![deny(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
#![cfg_attr(
    test,
    allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)
)]

pub mod body;
pub mod codes;
pub mod command;
mod ext;
pub mod filter;
pub mod frame;
pub mod header;
pub mod headers;
pub mod message;
mod swar;
pub mod template;
pub mod typed;

pub use command::{Command, ExtFields, LanguageCode, SerializeType};
pub use frame::{FRAME_MAX_DEFAULT, FrameError, FrameInfo};
pub use typed::{FieldError, Header};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
