//! Queue offset queries (spec §3.7): GET_MAX_OFFSET, GET_MIN_OFFSET,
//! GET_EARLIEST_MSG_STORETIME, SEARCH_OFFSET_BY_TIMESTAMP. All answer SUCCESS, unknown
//! queues included (offset 0, store time −1), as Java does.

use std::rc::Rc;

use ringmq_codec::headers::offset::{
    BoundaryType, EarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader,
    OffsetResponseHeader, QueueRequestHeader, SearchOffsetRequestHeader,
};
use ringmq_codec::{Command, Header};
use ringmq_engine::TimeBoundary;

use super::{Answer, ok};
use crate::broker::shard::Shard;

fn offset_response(request: &Command, offset: i64) -> Command {
    let mut r = ok(request);
    OffsetResponseHeader { offset }.encode(&mut r.ext);
    r
}

/// The next offset to be written (visible messages only).
pub fn max_offset(shard: &Shard, request: &Command) -> Answer {
    let h = GetMaxOffsetRequestHeader::decode(&request.ext)?;
    let (_, max) = shard.store.queue_offsets(&h.topic, h.queue_id);
    Ok(offset_response(request, max.0 as i64))
}

pub fn min_offset(shard: &Shard, request: &Command) -> Answer {
    let h = QueueRequestHeader::decode(&request.ext)?;
    let (min, _) = shard.store.queue_offsets(&h.topic, h.queue_id);
    Ok(offset_response(request, min.0 as i64))
}

/// Store time of the message at the queue's min offset; −1 when there is none.
pub async fn earliest_store_time(shard: Rc<Shard>, request: Command) -> Answer {
    let h = QueueRequestHeader::decode(&request.ext)?;
    let ts = shard
        .store
        .earliest_store_time(&h.topic, h.queue_id)
        .await?;
    let mut r = ok(&request);
    EarliestMsgStoretimeResponseHeader {
        timestamp_ms: ts.unwrap_or(-1),
    }
    .encode(&mut r.ext);
    Ok(r)
}

/// Without `boundaryType` (4.x clients): the entry whose store time is closest; with it
/// (5.x): the first at or after (LOWER) or the last at or before (UPPER) the timestamp.
pub async fn search_by_timestamp(shard: Rc<Shard>, request: Command) -> Answer {
    let h = SearchOffsetRequestHeader::decode(&request.ext)?;
    let boundary = match h.boundary_type {
        None => TimeBoundary::Closest,
        Some(BoundaryType::Lower) => TimeBoundary::Lower,
        Some(BoundaryType::Upper) => TimeBoundary::Upper,
    };
    let offset = shard
        .store
        .offset_by_time(&h.topic, h.queue_id, h.timestamp_ms, boundary)
        .await?;
    Ok(offset_response(&request, offset.0 as i64))
}
