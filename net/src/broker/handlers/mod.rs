//! Request handlers, one file per request family. Each takes the shard and the decoded
//! request and answers through its [`Reply`], now or (sends, pulls, lookups) from a task.
//!
//! - [`send`]: SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE (spec §3.3).
//! - [`send_back`]: CONSUMER_SEND_MSG_BACK, retry through the delay levels or the DLQ (§3.8).
//! - [`pull`]: PULL_MESSAGE, LITE_PULL_MESSAGE with long polling and zero-copy bodies (§3.4).
//! - [`heartbeat`]: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
//!   CHECK_CLIENT_CONFIG, and NOTIFY_CONSUMER_IDS_CHANGED to clients (§3.2, §3.5).
//! - [`offsets`]: QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET (§3.6).
//! - [`queue_offsets`]: GET_MAX/MIN_OFFSET, GET_EARLIEST_MSG_STORETIME,
//!   SEARCH_OFFSET_BY_TIMESTAMP (§3.7).
//! - [`topic_admin`]: UPDATE_AND_CREATE_TOPIC, GET_ALL_TOPIC_CONFIG, DELETE_TOPIC_IN_BROKER
//!   (§3.11).
//! - [`lookup`]: VIEW_MESSAGE_BY_ID, QUERY_MESSAGE (§3.9).
//! - [`locks`]: LOCK_BATCH_MQ, UNLOCK_BATCH_MQ for orderly consumers (§3.12).
//! - [`reset`]: INVOKE_BROKER_TO_RESET_OFFSET, RESET_CONSUMER_CLIENT_OFFSET to clients and the
//!   PULL_OFFSET_MOVED answer of a pending reset (§3.13, §3.4).

pub mod heartbeat;
pub mod locks;
pub mod lookup;
pub mod offsets;
pub mod pull;
pub mod queue_offsets;
pub mod reset;
pub mod send;
pub mod send_back;
pub mod topic_admin;

use std::future::Future;

use ringmq_codec::Command;
use ringmq_codec::codes::response;

use super::errors::{BrokerError, error_response};
use crate::remoting::Reply;

/// What most handlers produce: the response, or why there is none.
pub type Answer = Result<Command, BrokerError>;

pub fn ok(request: &Command) -> Command {
    Command::response_to(request, response::SUCCESS)
}

/// Sends `answer`, turning an error into its response (spec §2.1).
pub fn reply_with(reply: Reply, request: &Command, answer: Answer) {
    match answer {
        Ok(r) => reply.send(r),
        Err(e) => {
            tracing::debug!(code = request.code, error = ?e, "request failed");
            reply.send(error_response(request, &e));
        }
    }
}

/// Runs an async handler on the shard's runtime and answers when it is done.
pub fn spawn_answer<F>(reply: Reply, request: Command, answer: F)
where
    F: Future<Output = Answer> + 'static,
{
    compio::runtime::spawn(async move {
        let a = answer.await;
        reply_with(reply, &request, a);
    })
    .detach();
}
