//! Typed request/response headers for every MVP and REC code (spec §3), one file per family.

pub mod namesrv;
