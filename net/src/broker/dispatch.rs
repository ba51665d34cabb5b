//! Request code → handler. Routing only: every decision lives in `handlers/*`.

use std::rc::Rc;

use ringmq_codec::Command;
use ringmq_codec::codes::{request as req, response as resp};

use super::handlers::{
    heartbeat, locks, lookup, offsets, pull, queue_offsets, reply_with, reset, send, send_back,
    spawn_answer, topic_admin,
};
use super::shard::Shard;
use crate::remoting::{Connection, Reply};

pub fn dispatch(shard: &Rc<Shard>, conn: &Connection, request: Command, reply: Reply) {
    let answer = match request.code {
        req::SEND_MESSAGE | req::SEND_MESSAGE_V2 | req::SEND_BATCH_MESSAGE => {
            return send::handle(shard, conn, request, reply);
        }
        req::PULL_MESSAGE | req::LITE_PULL_MESSAGE => return pull::handle(shard, request, reply),
        req::CONSUMER_SEND_MSG_BACK => {
            let fut = send_back::handle(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::END_TRANSACTION => {
            let fut = super::transaction::end_transaction(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::HEART_BEAT => heartbeat::heart_beat(shard, conn, &request),
        req::UNREGISTER_CLIENT => heartbeat::unregister_client(shard, &request),
        req::GET_CONSUMER_LIST_BY_GROUP => heartbeat::consumer_list(shard, &request),
        req::CHECK_CLIENT_CONFIG => heartbeat::check_client_config(&request),
        req::LOCK_BATCH_MQ => locks::lock(shard, &request),
        req::UNLOCK_BATCH_MQ => locks::unlock(shard, &request),
        req::QUERY_CONSUMER_OFFSET => offsets::query(shard, &request),
        req::UPDATE_CONSUMER_OFFSET => offsets::update(shard, &request),
        req::GET_MAX_OFFSET => queue_offsets::max_offset(shard, &request),
        req::GET_MIN_OFFSET => queue_offsets::min_offset(shard, &request),
        req::GET_EARLIEST_MSG_STORETIME => {
            let fut = queue_offsets::earliest_store_time(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::SEARCH_OFFSET_BY_TIMESTAMP => {
            let fut = queue_offsets::search_by_timestamp(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::UPDATE_AND_CREATE_TOPIC => {
            let fut = topic_admin::create(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::INVOKE_BROKER_TO_RESET_OFFSET => {
            let fut = reset::invoke(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::GET_ALL_TOPIC_CONFIG => topic_admin::all_topics(shard, &request),
        req::DELETE_TOPIC_IN_BROKER => {
            let fut = topic_admin::delete(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::VIEW_MESSAGE_BY_ID => {
            let fut = lookup::view_by_offset(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        req::QUERY_MESSAGE => {
            let fut = lookup::query_by_key(shard.clone(), request.clone());
            return spawn_answer(reply, request, fut);
        }
        code => Ok(
            Command::response_to(&request, resp::REQUEST_CODE_NOT_SUPPORTED)
                .with_remark(format!(" request type {code} not supported")),
        ),
    };
    reply_with(reply, &request, answer);
}
