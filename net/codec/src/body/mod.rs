//! JSON bodies (spec §5): standard JSON out, Java's quirks accepted in.

pub mod heartbeat;
pub mod kv;
pub mod lenient;
pub mod misc;
pub mod route;
pub mod topic_config;
