//! Client registration and group membership headers (spec §3.2, §3.5).
//!
//! | code | dir | header |
//! |---|---|---|
//! | 34 HEART_BEAT | C→B | request: none (body `HeartbeatData`); [`HeartbeatResponseHeader`] |
//! | 35 UNREGISTER_CLIENT | C→B | [`UnregisterClientRequestHeader`] |
//! | 38 GET_CONSUMER_LIST_BY_GROUP | C→B | [`GetConsumerListByGroupRequestHeader`] |
//! | 40 NOTIFY_CONSUMER_IDS_CHANGED | B→C | [`NotifyConsumerIdsChangedRequestHeader`], oneway |
//! | 46 CHECK_CLIENT_CONFIG | C→B | none: body `CheckClientConfigBody` only |

crate::ext_header! {
    /// HEART_BEAT (34) response ext, Java 5.x brokers only.
    ///
    /// A broker that sets `IS_SUPPORT_HEART_BEAT_V2` lets the client send fingerprint-only
    /// heartbeats; one that never sets it keeps receiving full ones (spec §3.2).
    pub struct HeartbeatResponseHeader {
        supports_heartbeat_v2: opt bool = "IS_SUPPORT_HEART_BEAT_V2",
        /// `true` on the V1 path; on V2, whether the group's fingerprint changed.
        subscription_changed: opt bool = "IS_SUB_CHANGE",
    }
}

crate::ext_header! {
    /// UNREGISTER_CLIENT (35): one per producer/consumer group at client shutdown.
    pub struct UnregisterClientRequestHeader {
        /// Note the capital `ID` in the wire key.
        client_id: req String = "clientID",
        producer_group: opt String = "producerGroup",
        consumer_group: opt String = "consumerGroup",
    }
}

crate::ext_header! {
    /// GET_CONSUMER_LIST_BY_GROUP (38); the answer is `GetConsumerListByGroupResponseBody`.
    pub struct GetConsumerListByGroupRequestHeader {
        consumer_group: req String = "consumerGroup",
    }
}

crate::ext_header! {
    /// NOTIFY_CONSUMER_IDS_CHANGED (40), broker → every channel of the group, oneway.
    pub struct NotifyConsumerIdsChangedRequestHeader {
        consumer_group: req String = "consumerGroup",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ExtFields;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    #[test]
    fn heartbeat_response_round_trip_and_absent_keys() {
        let h = HeartbeatResponseHeader {
            supports_heartbeat_v2: Some(true),
            subscription_changed: Some(false),
        };
        let e = h.to_ext();
        assert_eq!(e.get("IS_SUPPORT_HEART_BEAT_V2"), Some("true"));
        assert_eq!(e.get("IS_SUB_CHANGE"), Some("false"));
        assert_eq!(HeartbeatResponseHeader::decode(&e), Ok(h));
        // A 4.x broker answers with no ext at all.
        assert_eq!(
            HeartbeatResponseHeader::decode(&ExtFields::new()),
            Ok(HeartbeatResponseHeader::default())
        );
    }

    #[test]
    fn unregister_client_as_java_sends_it() {
        // Java 5.x adds the RpcRequestHeader keys; they are ignored.
        let e = ext(&[
            ("clientID", "192.168.1.20@12345#3145178372019833"),
            ("producerGroup", "pg"),
            ("bname", "broker-a"),
            ("oway", "false"),
            ("lo", "false"),
        ]);
        let h = UnregisterClientRequestHeader::decode(&e).unwrap();
        assert_eq!(h.client_id, "192.168.1.20@12345#3145178372019833");
        assert_eq!(h.producer_group.as_deref(), Some("pg"));
        assert_eq!(h.consumer_group, None);
        let back = h.to_ext();
        assert_eq!(back.len(), 2);
        assert_eq!(UnregisterClientRequestHeader::decode(&back), Ok(h));
        // `clientId` (lower-case d) is not the key Java uses.
        let err = UnregisterClientRequestHeader::decode(&ext(&[("clientId", "x")])).unwrap_err();
        assert_eq!(err, FieldError::Missing { key: "clientID" });
        assert!(err.to_string().contains("clientID"), "{err}");
    }

    #[test]
    fn group_headers_round_trip_and_require_the_group() {
        let h = GetConsumerListByGroupRequestHeader {
            consumer_group: "g".into(),
        };
        assert_eq!(h.to_ext(), ext(&[("consumerGroup", "g")]));
        assert_eq!(
            GetConsumerListByGroupRequestHeader::decode(&h.to_ext()),
            Ok(h)
        );
        assert_eq!(
            GetConsumerListByGroupRequestHeader::decode(&ExtFields::new()),
            Err(FieldError::Missing {
                key: "consumerGroup"
            })
        );
        let n = NotifyConsumerIdsChangedRequestHeader {
            consumer_group: "ns%g".into(),
        };
        assert_eq!(
            NotifyConsumerIdsChangedRequestHeader::decode(&n.to_ext()),
            Ok(n)
        );
        assert!(NotifyConsumerIdsChangedRequestHeader::decode(&ext(&[("group", "g")])).is_err());
    }
}
