//! Group commit: [`policy`] decides (pure), [`crate::store`]'s driver task performs.

pub mod policy;

pub use policy::{Action, Event, FlushConfig, FlushPolicy};
