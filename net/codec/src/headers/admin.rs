//! Topic administration and offset reset headers (spec §3.11, §3.13, §3.2).
//!
//! | code | header |
//! |---|---|
//! | 17 UPDATE_AND_CREATE_TOPIC | [`CreateTopicRequestHeader`] |
//! | 215 DELETE_TOPIC_IN_BROKER | [`DeleteTopicRequestHeader`] |
//! | 21 GET_ALL_TOPIC_CONFIG | [`GetAllTopicConfigRequestHeader`] |
//! | 21 answer ext | [`GetAllTopicConfigResponseHeader`] |
//! | 222 INVOKE_BROKER_TO_RESET_OFFSET | [`ResetOffsetRequestHeader`] (admin → broker) |
//! | 220 RESET_CONSUMER_CLIENT_OFFSET | [`ResetOffsetRequestHeader`] (broker → client, oneway) |

crate::ext_header! {
    /// UPDATE_AND_CREATE_TOPIC (17).
    pub struct CreateTopicRequestHeader {
        topic: req String = "topic",
        /// Legacy (clients send `TBW102`); required by Java, ignored by the broker.
        default_topic: req String = "defaultTopic",
        read_queue_nums: req i32 = "readQueueNums",
        write_queue_nums: req i32 = "writeQueueNums",
        /// PermName bits, usually 6.
        perm: req i32 = "perm",
        /// `SINGLE_TAG` or `MULTI_TAG`.
        topic_filter_type: req String = "topicFilterType",
        topic_sys_flag: opt i32 = "topicSysFlag",
        order: req bool = "order",
        /// 5.x, `+key=value,…` (e.g. `+message.type=NORMAL`).
        attributes: opt String = "attributes",
        /// 5.x.
        force: opt bool = "force",
    }
}

crate::ext_header! {
    /// DELETE_TOPIC_IN_BROKER (215).
    pub struct DeleteTopicRequestHeader {
        topic: req String = "topic",
    }
}

crate::ext_header! {
    /// GET_ALL_TOPIC_CONFIG (21). 4.x sends no ext; 5.x may page with these keys.
    pub struct GetAllTopicConfigRequestHeader {
        topic_seq: opt i32 = "topicSeq",
        max_topic_num: opt i32 = "maxTopicNum",
        data_version: opt String = "dataVersion",
    }
}

crate::ext_header! {
    /// GET_ALL_TOPIC_CONFIG answer ext (5.x paging only).
    pub struct GetAllTopicConfigResponseHeader {
        total_topic_num: opt i32 = "totalTopicNum",
    }
}

crate::ext_header! {
    /// INVOKE_BROKER_TO_RESET_OFFSET (222) and RESET_CONSUMER_CLIENT_OFFSET (220): the same
    /// keys in both directions. The 220 body is `ResetOffsetBody`.
    pub struct ResetOffsetRequestHeader {
        topic: req String = "topic",
        group: req String = "group",
        /// Reset to the first message stored at or after this time, ms.
        timestamp_ms: req i64 = "timestamp",
        is_force: req bool = "isForce",
        /// 5.x: reset one queue to an explicit offset.
        queue_id: opt i32 = "queueId",
        offset: opt i64 = "offset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ExtFields;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    fn create_topic_ext() -> ExtFields {
        ext(&[
            ("topic", "TopicTest"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "8"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("topicSysFlag", "0"),
            ("order", "false"),
            ("attributes", "+message.type=NORMAL"),
            ("force", "false"),
            ("AccessKey", "rocketmq2"),
            ("Signature", "c2lnbmF0dXJl"),
        ])
    }

    #[test]
    fn create_topic_as_mqadmin_sends_it() {
        let h = CreateTopicRequestHeader::decode(&create_topic_ext()).unwrap();
        assert_eq!(h.read_queue_nums, 8);
        assert_eq!(h.perm, 6);
        assert!(!h.order);
        assert_eq!(h.attributes.as_deref(), Some("+message.type=NORMAL"));
        let back = h.to_ext();
        assert_eq!(back.get("AccessKey"), None);
        assert_eq!(CreateTopicRequestHeader::decode(&back), Ok(h));
    }

    #[test]
    fn create_topic_errors() {
        let mut e = create_topic_ext();
        e.insert("perm", "rw");
        let err = CreateTopicRequestHeader::decode(&e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header field `perm` = \"rw\" is not a 32-bit integer"
        );
        let mut e = create_topic_ext();
        e.remove("order");
        assert_eq!(
            CreateTopicRequestHeader::decode(&e),
            Err(FieldError::Missing { key: "order" })
        );
    }

    #[test]
    fn delete_and_get_all_topic_config() {
        let d = DeleteTopicRequestHeader {
            topic: "ns%T".into(),
        };
        assert_eq!(DeleteTopicRequestHeader::decode(&d.to_ext()), Ok(d));
        assert!(DeleteTopicRequestHeader::decode(&ExtFields::new()).is_err());

        // 4.x: no ext at all.
        let g = GetAllTopicConfigRequestHeader::decode(&ExtFields::new()).unwrap();
        assert_eq!(g, GetAllTopicConfigRequestHeader::default());
        assert!(g.to_ext().is_empty());
        let e = ext(&[
            ("topicSeq", "2"),
            ("maxTopicNum", "1000"),
            ("dataVersion", "{}"),
        ]);
        let g = GetAllTopicConfigRequestHeader::decode(&e).unwrap();
        assert_eq!(g.max_topic_num, Some(1000));
        assert_eq!(g.to_ext(), e);
        let r = GetAllTopicConfigResponseHeader {
            total_topic_num: Some(2500),
        };
        assert_eq!(GetAllTopicConfigResponseHeader::decode(&r.to_ext()), Ok(r));
    }

    #[test]
    fn reset_offset_both_versions() {
        let e = ext(&[
            ("topic", "TopicTest"),
            ("group", "g"),
            ("timestamp", "1700000000000"),
            ("isForce", "true"),
        ]);
        let h = ResetOffsetRequestHeader::decode(&e).unwrap();
        assert!(h.is_force);
        assert_eq!(h.queue_id, None);
        assert_eq!(h.to_ext(), e);
        let mut e5 = e.clone();
        e5.insert("queueId", "1");
        e5.insert("offset", "42");
        let h = ResetOffsetRequestHeader::decode(&e5).unwrap();
        assert_eq!((h.queue_id, h.offset), (Some(1), Some(42)));
        assert_eq!(ResetOffsetRequestHeader::decode(&h.to_ext()), Ok(h));
        let mut bad = e.clone();
        bad.insert("timestamp", "");
        assert!(matches!(
            ResetOffsetRequestHeader::decode(&bad),
            Err(FieldError::Malformed {
                key: "timestamp",
                ..
            })
        ));
    }
}
