//! Message lookup (spec §3.9): VIEW_MESSAGE_BY_ID (by physical offset, decoded by the client
//! from an offsetMsgId) and QUERY_MESSAGE (by KEYS entry or UNIQ_KEY through the key index).

use std::rc::Rc;

use ringmq_codec::codes::response as resp;
use ringmq_codec::headers::lookup::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use ringmq_codec::{Command, Header};
use ringmq_engine::PhysOffset;

use super::{Answer, ok};
use crate::broker::errors::BrokerError;
use crate::broker::shard::Shard;

/// Most messages one QUERY_MESSAGE returns (Java `maxMsgsNumBatch`).
pub const QUERY_MAX: usize = 64;
/// What a unique-key query returns at most (Java `defaultQueryMaxNum`).
pub const UNIQUE_KEY_QUERY_MAX: usize = 32;

pub async fn view_by_offset(shard: Rc<Shard>, request: Command) -> Answer {
    let h = ViewMessageRequestHeader::decode(&request.ext)?;
    let not_found = || {
        BrokerError::System(format!(
            "can not find message by the offset, {}",
            h.commit_log_offset
        ))
    };
    let phys = u64::try_from(h.commit_log_offset).map_err(|_| not_found())?;
    match shard.store.record_at(PhysOffset(phys)).await? {
        Some(bytes) => Ok(ok(&request).with_body(bytes)),
        None => Err(not_found()),
    }
}

pub async fn query_by_key(shard: Rc<Shard>, request: Command) -> Answer {
    let h = QueryMessageRequestHeader::decode(&request.ext)?;
    let max = if h.unique_key_query == Some(true) {
        UNIQUE_KEY_QUERY_MAX
    } else {
        usize::try_from(h.max_num).unwrap_or(0).clamp(1, QUERY_MAX)
    };
    let found = shard
        .store
        .query_by_key(
            &h.topic,
            &h.key,
            h.begin_timestamp_ms,
            h.end_timestamp_ms,
            max,
        )
        .await?;
    let header = QueryMessageResponseHeader {
        index_last_update_timestamp_ms: found.iter().map(|f| f.store_timestamp).max().unwrap_or(0),
        index_last_update_phy_offset: shard.store.written_offset() as i64,
    };
    let mut response = if found.is_empty() {
        Command::response_to(&request, resp::QUERY_NOT_FOUND).with_remark(format!(
            "can not find message, maybe time range not correct: topic {} key {}",
            h.topic, h.key
        ))
    } else {
        let mut body = Vec::with_capacity(found.iter().map(|f| f.bytes.len()).sum());
        for f in &found {
            body.extend_from_slice(&f.bytes);
        }
        ok(&request).with_body(body)
    };
    header.encode(&mut response.ext);
    Ok(response)
}
