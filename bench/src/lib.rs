//! ringmq-bench: an honest load generator for any RocketMQ-remoting broker.
//!
//! # Layout
//! - [`cli`]: scenarios, flags, defaults.
//! - [`sched`]: the clock and the open-loop scheduler (pure, injected clock in tests).
//! - [`body`]: the verification header every message body carries.
//! - [`verify`]: lost / duplicated / reordered accounting per stream and queue.
//! - [`stats`]: HDR latency histograms, percentiles, errors by response code, `.hgrm` files.
//! - [`report`]: the JSON report (manifest + results), the printed summary, the ceiling rule.
//! - [`compare`]: two reports side by side.
//! - [`setup`]: name server, topic creation, routes → the [`setup::Plan`] of queues.
//! - [`worker`]: the pinned thread-per-core workers; [`producer`] and [`consumer`] run on them;
//!   [`local`] has their single-thread async helpers.
//! - [`selftest`]: the built-in minimal responder that measures the generator's ceiling.
//! - [`run`]: one run end to end: setup, workers, progress, merge, report.
//! - [`suite`]: issue 7's table in one run: starts the broker ([`procs`]), runs the scenarios
//!   and the raw baselines ([`baseline`]), prints the [`table`] of medians and ratios.
//! - [`timers`]: pending-timer RSS and firing skew (issue 6), a produce-consume run whose
//!   messages carry delivery times.
//!
//! # Invariants
//! - Nothing on the hot path is shared between worker threads: each records into its own
//!   histograms and counters, merged once at the end.
//! - In open loop, latency is measured from the intended send time and the schedule never
//!   stretches; lateness is reported, not hidden.
//! - At most one request per (producer, queue) is in flight, so a correct broker delivers
//!   every stream in sequence order and any reordering counted is the broker's.
//! - Loss is counted against acknowledged sends only; a send that failed is never "lost".

pub mod baseline;
pub mod body;
pub mod cli;
pub mod compare;
pub mod consumer;
pub mod local;
pub mod procs;
pub mod producer;
pub mod report;
pub mod run;
pub mod sched;
pub mod selftest;
pub mod setup;
pub mod stats;
pub mod suite;
pub mod table;
pub mod timers;
pub mod verify;
pub mod worker;
