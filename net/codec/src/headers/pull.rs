//! Pull headers: PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) share both (spec §3.4).

/// PullSysFlag bits of [`PullMessageRequestHeader::sys_flag`].
pub mod sys_flag {
    /// `commitOffset` carries the consumer's offset; store it (first execution, master only).
    pub const COMMIT_OFFSET: i32 = 0x01;
    /// The broker may hold the request (long polling) when nothing is there yet.
    pub const SUSPEND: i32 = 0x02;
    /// `subscription` / `expressionType` in this request replace the heartbeat subscription.
    pub const SUBSCRIPTION: i32 = 0x04;
    /// Obsolete filter-server mode.
    pub const CLASS_FILTER: i32 = 0x08;
    /// Set by the lite pull consumer.
    pub const LITE_PULL: i32 = 0x10;
}

/// `expressionType` meaning a tag expression; also the meaning of an absent or empty value.
pub const EXPRESSION_TYPE_TAG: &str = "TAG";

crate::ext_header! {
    /// PULL_MESSAGE / LITE_PULL_MESSAGE request.
    pub struct PullMessageRequestHeader {
        consumer_group: req String = "consumerGroup",
        /// May be the group's `%RETRY%` topic.
        topic: req String = "topic",
        queue_id: req i32 = "queueId",
        /// First consume-queue offset wanted.
        queue_offset: req i64 = "queueOffset",
        max_msg_nums: req i32 = "maxMsgNums",
        /// [`sys_flag`] bits.
        sys_flag: req i32 = "sysFlag",
        /// Valid only with [`sys_flag::COMMIT_OFFSET`].
        commit_offset: req i64 = "commitOffset",
        /// Long-poll hold time: push 15 000, lite 20 000.
        suspend_timeout_ms: req i64 = "suspendTimeoutMillis",
        /// Sent only with [`sys_flag::SUBSCRIPTION`].
        subscription: opt String = "subscription",
        sub_version: req i64 = "subVersion",
        expression_type: opt String = "expressionType",
        /// 5.x, advisory.
        max_msg_bytes: opt i32 = "maxMsgBytes",
        /// 5.x proxy only; absent or −1 is a normal SDK.
        request_source: opt i32 = "requestSource",
        /// 5.x proxy only. The misspelling is the real key.
        proxy_forward_client_id: opt String = "proxyFrowardClientId",
    }
}

impl PullMessageRequestHeader {
    /// Whether every bit of `bits` (a [`sys_flag`] constant) is set.
    pub fn has_flag(&self, bits: i32) -> bool {
        self.sys_flag & bits == bits
    }

    /// The expression type with Java's default: absent or empty means `TAG`.
    pub fn expression_type_or_tag(&self) -> &str {
        match self.expression_type.as_deref() {
            None | Some("") => EXPRESSION_TYPE_TAG,
            Some(t) => t,
        }
    }
}

crate::ext_header! {
    /// Pull response ext, on every pull response code (SUCCESS, PULL_NOT_FOUND,
    /// PULL_RETRY_IMMEDIATELY, PULL_OFFSET_MOVED): Java clients unbox the four required
    /// fields and crash without them (spec §10 item 2).
    pub struct PullMessageResponseHeader {
        /// Always 0 for a master-only deployment.
        suggest_which_broker_id: req i64 = "suggestWhichBrokerId",
        next_begin_offset: req i64 = "nextBeginOffset",
        min_offset: req i64 = "minOffset",
        /// Next offset to be written.
        max_offset: req i64 = "maxOffset",
        /// Static topics only.
        offset_delta: opt i64 = "offsetDelta",
        topic_sys_flag: opt i32 = "topicSysFlag",
        group_sys_flag: opt i32 = "groupSysFlag",
        /// With NO_PERMISSION: 1 broker, 2 group, 3 topic, 4 broadcasting off, 5 subscription.
        forbidden_type: opt i32 = "forbiddenType",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ExtFields;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    /// A push consumer's pull as Java 5.x sends it (no subscription: it comes from the heartbeat).
    fn push_pull_ext() -> ExtFields {
        ext(&[
            ("consumerGroup", "please_rename_unique_group_name_4"),
            ("topic", "TopicTest"),
            ("queueId", "1"),
            ("queueOffset", "250"),
            ("maxMsgNums", "32"),
            ("sysFlag", "3"),
            ("commitOffset", "248"),
            ("suspendTimeoutMillis", "15000"),
            ("subVersion", "1700000000000"),
            ("expressionType", "TAG"),
            ("maxMsgBytes", "262144"),
            ("bname", "broker-a"),
            ("lo", "false"),
        ])
    }

    #[test]
    fn push_consumer_pull_decodes() {
        let h = PullMessageRequestHeader::decode(&push_pull_ext()).unwrap();
        assert_eq!(h.queue_offset, 250);
        assert_eq!(h.suspend_timeout_ms, 15_000);
        assert!(h.has_flag(sys_flag::COMMIT_OFFSET | sys_flag::SUSPEND));
        assert!(!h.has_flag(sys_flag::SUBSCRIPTION));
        assert_eq!(h.subscription, None);
        assert_eq!(h.max_msg_bytes, Some(262_144));
        assert_eq!(PullMessageRequestHeader::decode(&h.to_ext()), Ok(h));
    }

    #[test]
    fn lite_pull_decodes_with_subscription_and_default_expression_type() {
        let mut e = push_pull_ext();
        let flags = sys_flag::SUBSCRIPTION | sys_flag::LITE_PULL | sys_flag::SUSPEND;
        e.insert("sysFlag", flags.to_string());
        e.insert("subscription", "TagA || TagB");
        e.insert("subVersion", "0");
        e.remove("expressionType");
        e.remove("maxMsgBytes");
        let h = PullMessageRequestHeader::decode(&e).unwrap();
        assert!(h.has_flag(sys_flag::LITE_PULL));
        assert_eq!(h.subscription.as_deref(), Some("TagA || TagB"));
        assert_eq!(h.expression_type_or_tag(), "TAG");
        let h2 = PullMessageRequestHeader {
            expression_type: Some(String::new()),
            ..h.clone()
        };
        assert_eq!(h2.expression_type_or_tag(), "TAG");
        assert_eq!(PullMessageRequestHeader::decode(&h.to_ext()), Ok(h));
    }

    #[test]
    fn pull_request_errors() {
        let mut e = push_pull_ext();
        e.remove("subVersion");
        assert_eq!(
            PullMessageRequestHeader::decode(&e),
            Err(FieldError::Missing { key: "subVersion" })
        );
        let mut e = push_pull_ext();
        e.insert("queueOffset", "9223372036854775808");
        let err = PullMessageRequestHeader::decode(&e).unwrap_err();
        assert!(err.to_string().contains("queueOffset"), "{err}");
        assert!(err.to_string().contains("64-bit"), "{err}");
    }

    #[test]
    fn pull_response_round_trip_and_required_fields() {
        let h = PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: 282,
            min_offset: 0,
            max_offset: 300,
            forbidden_type: None,
            ..Default::default()
        };
        let e = h.to_ext();
        assert_eq!(e.len(), 4);
        assert_eq!(e.get("nextBeginOffset"), Some("282"));
        assert_eq!(PullMessageResponseHeader::decode(&e), Ok(h));
        let mut e = ext(&[
            ("suggestWhichBrokerId", "0"),
            ("nextBeginOffset", "5"),
            ("minOffset", "0"),
            ("maxOffset", "5"),
            ("topicSysFlag", "0"),
            ("groupSysFlag", "0"),
        ]);
        assert_eq!(
            PullMessageResponseHeader::decode(&e)
                .unwrap()
                .group_sys_flag,
            Some(0)
        );
        e.remove("minOffset");
        assert_eq!(
            PullMessageResponseHeader::decode(&e),
            Err(FieldError::Missing { key: "minOffset" })
        );
    }
}
