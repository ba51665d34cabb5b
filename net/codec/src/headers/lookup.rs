//! Message lookup headers: QUERY_MESSAGE (12) and VIEW_MESSAGE_BY_ID (33), spec §3.9.

crate::ext_header! {
    /// QUERY_MESSAGE (12): messages whose KEYS or UNIQ_KEY equal `key` in a store-time window.
    pub struct QueryMessageRequestHeader {
        topic: req String = "topic",
        /// A KEYS entry, or a UNIQ_KEY when `unique_key_query` is set.
        key: req String = "key",
        max_num: req i32 = "maxNum",
        begin_timestamp_ms: req i64 = "beginTimestamp",
        end_timestamp_ms: req i64 = "endTimestamp",
        /// `"true"`: look up by UNIQ_KEY (the broker then applies its own maximum).
        unique_key_query: opt bool = "_UNIQUE_KEY_QUERY",
    }
}

crate::ext_header! {
    /// QUERY_MESSAGE answer, sent with SUCCESS and with QUERY_NOT_FOUND alike.
    pub struct QueryMessageResponseHeader {
        index_last_update_timestamp_ms: req i64 = "indexLastUpdateTimestamp",
        index_last_update_phy_offset: req i64 = "indexLastUpdatePhyoffset",
    }
}

crate::ext_header! {
    /// VIEW_MESSAGE_BY_ID (33): the message at a physical offset (decoded from an offsetMsgId).
    pub struct ViewMessageRequestHeader {
        commit_log_offset: req i64 = "offset",
        topic: opt String = "topic",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    #[test]
    fn query_by_unique_key_as_java_sends_it() {
        let e = ext(&[
            ("topic", "TopicTest"),
            ("key", "7F00000100002A9F0000000000000001"),
            ("maxNum", "32"),
            ("beginTimestamp", "0"),
            ("endTimestamp", "9223372036854775807"),
            ("_UNIQUE_KEY_QUERY", "true"),
            ("bname", "broker-a"),
        ]);
        let h = QueryMessageRequestHeader::decode(&e).unwrap();
        assert_eq!(h.unique_key_query, Some(true));
        assert_eq!(h.end_timestamp_ms, i64::MAX);
        let back = h.to_ext();
        assert_eq!(back.get("_UNIQUE_KEY_QUERY"), Some("true"));
        assert_eq!(QueryMessageRequestHeader::decode(&back), Ok(h));
    }

    #[test]
    fn query_by_key_without_flag_and_errors() {
        let mut e = ext(&[
            ("topic", "T"),
            ("key", "order-1"),
            ("maxNum", "64"),
            ("beginTimestamp", "1"),
            ("endTimestamp", "2"),
        ]);
        let h = QueryMessageRequestHeader::decode(&e).unwrap();
        assert_eq!(h.unique_key_query, None);
        assert_eq!(h.to_ext(), e);
        e.insert("maxNum", "sixty-four");
        assert!(matches!(
            QueryMessageRequestHeader::decode(&e),
            Err(FieldError::Malformed { key: "maxNum", .. })
        ));
        e.remove("key");
        assert_eq!(
            QueryMessageRequestHeader::decode(&e),
            Err(FieldError::Missing { key: "key" })
        );
    }

    #[test]
    fn query_response_and_view_headers() {
        let r = QueryMessageResponseHeader {
            index_last_update_timestamp_ms: 1_700_000_000_000,
            index_last_update_phy_offset: 4096,
        };
        let e = r.to_ext();
        assert_eq!(e.get("indexLastUpdatePhyoffset"), Some("4096"));
        assert_eq!(QueryMessageResponseHeader::decode(&e), Ok(r));

        let v = ViewMessageRequestHeader::decode(&ext(&[("offset", "123")])).unwrap();
        assert_eq!(v.commit_log_offset, 123);
        assert_eq!(v.topic, None);
        assert_eq!(ViewMessageRequestHeader::decode(&v.to_ext()), Ok(v));
        assert_eq!(
            ViewMessageRequestHeader::decode(&ext(&[("topic", "T")])),
            Err(FieldError::Missing { key: "offset" })
        );
    }
}
