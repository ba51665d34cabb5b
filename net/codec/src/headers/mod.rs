//! Typed request/response headers for every MVP and REC code (spec §3), one file per family.

pub mod admin;
pub mod client;
pub mod lookup;
pub mod namesrv;
pub mod offset;
pub mod pull;
pub mod send;
pub mod transaction;
