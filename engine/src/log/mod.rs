//! The commit log's format side: record encoding and verification, segment math, and the
//! recovery scan. The write buffer and segment files live in the store (`store/`).

pub mod record;
pub mod recovery;
pub mod segment;
