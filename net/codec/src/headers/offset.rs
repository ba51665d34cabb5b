//! Consumer offset and queue offset headers (spec §3.6, §3.7).
//!
//! | code | request | answer ext |
//! |---|---|---|
//! | 14 QUERY_CONSUMER_OFFSET | [`QueryConsumerOffsetRequestHeader`] | [`OffsetResponseHeader`] |
//! | 15 UPDATE_CONSUMER_OFFSET | [`UpdateConsumerOffsetRequestHeader`] | none |
//! | 30 GET_MAX_OFFSET | [`GetMaxOffsetRequestHeader`] | [`OffsetResponseHeader`] |
//! | 31 GET_MIN_OFFSET | [`QueueRequestHeader`] | [`OffsetResponseHeader`] |
//! | 29 SEARCH_OFFSET_BY_TIMESTAMP | [`SearchOffsetRequestHeader`] | [`OffsetResponseHeader`] |
//! | 32 GET_EARLIEST_MSG_STORETIME | [`QueueRequestHeader`] | `timestamp`, see below |
//!
//! GET_EARLIEST_MSG_STORETIME answers with [`EarliestMsgStoretimeResponseHeader`].
//! The four responses that answer with `offset` share one struct: Java's four classes carry
//! the same single key.

use crate::typed::WireValue;

crate::ext_header! {
    /// QUERY_CONSUMER_OFFSET (14).
    pub struct QueryConsumerOffsetRequestHeader {
        consumer_group: req String = "consumerGroup",
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
        /// 5.x. Absent behaves as `true` on Java brokers (answer 0 for a young queue).
        set_zero_if_not_found: opt bool = "setZeroIfNotFound",
    }
}

crate::ext_header! {
    /// UPDATE_CONSUMER_OFFSET (15), usually oneway.
    pub struct UpdateConsumerOffsetRequestHeader {
        consumer_group: req String = "consumerGroup",
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
        /// The next offset to consume (exclusive).
        commit_offset: req i64 = "commitOffset",
    }
}

crate::ext_header! {
    /// GET_MAX_OFFSET (30).
    pub struct GetMaxOffsetRequestHeader {
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
        /// 5.x; absent means `true`.
        committed: opt bool = "committed",
    }
}

crate::ext_header! {
    /// GET_MIN_OFFSET (31) and GET_EARLIEST_MSG_STORETIME (32): a queue and nothing else.
    pub struct QueueRequestHeader {
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
    }
}

/// SEARCH_OFFSET_BY_TIMESTAMP's `boundaryType` (5.x).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BoundaryType {
    /// First offset whose store time is ≥ the timestamp.
    #[default]
    Lower,
    /// Last offset whose store time is ≤ the timestamp.
    Upper,
}

/// Java reads the name case-insensitively and takes anything but "upper" as LOWER, so no
/// value is malformed.
impl WireValue for BoundaryType {
    const EXPECTED: &'static str = "LOWER or UPPER";

    fn parse(text: &str) -> Option<Self> {
        Some(if text.eq_ignore_ascii_case("upper") {
            BoundaryType::Upper
        } else {
            BoundaryType::Lower
        })
    }

    fn to_wire(&self) -> String {
        match self {
            BoundaryType::Lower => "LOWER",
            BoundaryType::Upper => "UPPER",
        }
        .to_owned()
    }
}

crate::ext_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29).
    pub struct SearchOffsetRequestHeader {
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
        /// Store time, ms.
        timestamp_ms: req i64 = "timestamp",
        /// Absent (4.x clients): the entry whose store time is closest to the timestamp.
        boundary_type: opt BoundaryType = "boundaryType",
    }
}

crate::ext_header! {
    /// `offset` answer of QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET, GET_MIN_OFFSET and
    /// SEARCH_OFFSET_BY_TIMESTAMP.
    pub struct OffsetResponseHeader {
        offset: req i64 = "offset",
    }
}

/// GET_MIN_OFFSET (31) request.
pub type GetMinOffsetRequestHeader = QueueRequestHeader;
/// GET_EARLIEST_MSG_STORETIME (32) request.
pub type GetEarliestMsgStoretimeRequestHeader = QueueRequestHeader;
/// QUERY_CONSUMER_OFFSET (14) answer.
pub type QueryConsumerOffsetResponseHeader = OffsetResponseHeader;
/// GET_MAX_OFFSET (30) answer.
pub type GetMaxOffsetResponseHeader = OffsetResponseHeader;
/// GET_MIN_OFFSET (31) answer.
pub type GetMinOffsetResponseHeader = OffsetResponseHeader;
/// SEARCH_OFFSET_BY_TIMESTAMP (29) answer.
pub type SearchOffsetResponseHeader = OffsetResponseHeader;

crate::ext_header! {
    /// GET_EARLIEST_MSG_STORETIME (32) answer; −1 when unknown.
    pub struct EarliestMsgStoretimeResponseHeader {
        timestamp_ms: req i64 = "timestamp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    #[test]
    fn query_and_update_consumer_offset() {
        let e = ext(&[
            ("consumerGroup", "g"),
            ("topic", "%RETRY%g"),
            ("queueId", "0"),
            ("setZeroIfNotFound", "true"),
            ("bname", "broker-a"),
        ]);
        let q = QueryConsumerOffsetRequestHeader::decode(&e).unwrap();
        assert_eq!(q.set_zero_if_not_found, Some(true));
        assert_eq!(QueryConsumerOffsetRequestHeader::decode(&q.to_ext()), Ok(q));
        // 4.x clients do not send setZeroIfNotFound.
        let e = ext(&[("consumerGroup", "g"), ("topic", "T"), ("queueId", "2")]);
        let q = QueryConsumerOffsetRequestHeader::decode(&e).unwrap();
        assert_eq!(q.set_zero_if_not_found, None);

        let e = ext(&[
            ("consumerGroup", "g"),
            ("topic", "T"),
            ("queueId", "2"),
            ("commitOffset", "1024"),
        ]);
        let u = UpdateConsumerOffsetRequestHeader::decode(&e).unwrap();
        assert_eq!(u.commit_offset, 1024);
        assert_eq!(u.to_ext(), e);
        let mut bad = e.clone();
        bad.insert("commitOffset", "10 ");
        assert!(matches!(
            UpdateConsumerOffsetRequestHeader::decode(&bad),
            Err(FieldError::Malformed {
                key: "commitOffset",
                ..
            })
        ));
        bad.remove("commitOffset");
        assert_eq!(
            UpdateConsumerOffsetRequestHeader::decode(&bad),
            Err(FieldError::Missing {
                key: "commitOffset"
            })
        );
    }

    #[test]
    fn queue_offset_queries() {
        let e = ext(&[("topic", "T"), ("queueId", "3"), ("committed", "false")]);
        let m = GetMaxOffsetRequestHeader::decode(&e).unwrap();
        assert_eq!(m.committed, Some(false));
        assert_eq!(GetMaxOffsetRequestHeader::decode(&m.to_ext()), Ok(m));
        let q = QueueRequestHeader::decode(&ext(&[("topic", "T"), ("queueId", "-1")])).unwrap();
        assert_eq!(q.queue_id, -1);
        assert_eq!(QueueRequestHeader::decode(&q.to_ext()), Ok(q));
        assert_eq!(
            QueueRequestHeader::decode(&ext(&[("topic", "T")])),
            Err(FieldError::Missing { key: "queueId" })
        );
        let r = OffsetResponseHeader { offset: 77 };
        assert_eq!(r.to_ext(), ext(&[("offset", "77")]));
        assert_eq!(OffsetResponseHeader::decode(&r.to_ext()), Ok(r));
        let t = EarliestMsgStoretimeResponseHeader { timestamp_ms: -1 };
        assert_eq!(t.to_ext(), ext(&[("timestamp", "-1")]));
        assert_eq!(
            EarliestMsgStoretimeResponseHeader::decode(&t.to_ext()),
            Ok(t)
        );
    }

    #[test]
    fn search_offset_boundary_type_is_lenient_like_java() {
        let base = [
            ("topic", "T"),
            ("queueId", "0"),
            ("timestamp", "1700000000000"),
        ];
        let h = SearchOffsetRequestHeader::decode(&ext(&base)).unwrap();
        assert_eq!(h.boundary_type, None);
        for (text, want) in [
            ("UPPER", BoundaryType::Upper),
            ("upper", BoundaryType::Upper),
            ("LOWER", BoundaryType::Lower),
            ("sideways", BoundaryType::Lower),
        ] {
            let mut e = ext(&base);
            e.insert("boundaryType", text);
            let h = SearchOffsetRequestHeader::decode(&e).unwrap();
            assert_eq!(h.boundary_type, Some(want), "{text}");
            let back = h.to_ext();
            assert_eq!(back.get("boundaryType"), Some(want.to_wire().as_str()));
            assert_eq!(SearchOffsetRequestHeader::decode(&back), Ok(h));
        }
        let mut e = ext(&base);
        e.insert("timestamp", "yesterday");
        assert!(SearchOffsetRequestHeader::decode(&e).is_err());
    }
}
