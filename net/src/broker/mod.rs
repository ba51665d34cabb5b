//! The broker: shards, request handlers, and the per-shard state they share.
//!
//! # Layout
//! - [`clients`]: producer/consumer groups, connections and subscriptions (pure).
//! - [`offsets`]: consumer offsets and their persistence.
//! - [`longpoll`]: parked pulls and the wake-up on arrival (pure table + signal).

pub mod clients;
pub mod longpoll;
pub mod offsets;
