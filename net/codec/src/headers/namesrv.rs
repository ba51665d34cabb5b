//! NameServer headers (spec §3.1).
//!
//! | code | direction | header |
//! |---|---|---|
//! | 103 REGISTER_BROKER | B→N | [`RegisterBrokerRequestHeader`]; answer [`RegisterBrokerResponseHeader`] |
//! | 104 UNREGISTER_BROKER | B→N | [`UnregisterBrokerRequestHeader`] |
//! | 904 BROKER_HEARTBEAT | B→N | [`BrokerHeartbeatRequestHeader`] |
//! | 322 QUERY_DATA_VERSION | B→N | [`QueryDataVersionRequestHeader`]; answer [`QueryDataVersionResponseHeader`] |
//! | 105 GET_ROUTEINFO_BY_TOPIC | C→N | [`GetRouteInfoRequestHeader`] |
//! | 224 GET_TOPICS_BY_CLUSTER | C→N | [`GetTopicsByClusterRequestHeader`] |
//! | 100 PUT_KV_CONFIG | C→N | [`PutKvConfigRequestHeader`] |
//! | 101 GET_KV_CONFIG | C→N | [`GetKvConfigRequestHeader`]; answer [`GetKvConfigResponseHeader`] |
//! | 102 DELETE_KV_CONFIG | C→N | [`DeleteKvConfigRequestHeader`] |
//! | 219 GET_KVLIST_BY_NAMESPACE | C→N | [`GetKvListByNamespaceRequestHeader`] |
//! | 216 DELETE_TOPIC_IN_NAMESRV | C→N | [`DeleteTopicFromNamesrvRequestHeader`] |
//!
//! 106 GET_BROKER_CLUSTER_INFO and 206 GET_ALL_TOPIC_LIST_FROM_NAMESERVER carry no header.

crate::ext_header! {
    /// REGISTER_BROKER (103), sent by every broker to every namesrv every 30 s.
    pub struct RegisterBrokerRequestHeader {
        broker_name: req String = "brokerName",
        /// `ip:port` clients must use.
        broker_addr: req String = "brokerAddr",
        cluster_name: req String = "clusterName",
        /// `ip:haPort` of the broker's replication service.
        ha_server_addr: req String = "haServerAddr",
        /// 0 = master, ≥ 1 = slave.
        broker_id: req i64 = "brokerId",
        /// Liveness timeout for this broker; absent means the namesrv default (120 s).
        heartbeat_timeout_millis: opt i64 = "heartbeatTimeoutMillis",
        /// Absent marks a pre-5.0 broker (no slave-acting-master support).
        enable_acting_master: opt bool = "enableActingMaster",
        /// The body is the deflated format of spec §3.1, not JSON.
        compressed: opt bool = "compressed",
        /// `crc32(body) & 0x7FFF_FFFF`; absent or 0 means "not checked".
        body_crc32: opt i32 = "bodyCrc32",
        /// 5.x zone, copied into `BrokerData.zoneName`.
        zone_name: opt String = "__ZONE_NAME",
    }
}

crate::ext_header! {
    /// REGISTER_BROKER (103) response: for a slave, where its master is.
    pub struct RegisterBrokerResponseHeader {
        ha_server_addr: opt String = "haServerAddr",
        master_addr: opt String = "masterAddr",
    }
}

crate::ext_header! {
    /// UNREGISTER_BROKER (104), sent by a broker at shutdown.
    pub struct UnregisterBrokerRequestHeader {
        broker_name: req String = "brokerName",
        broker_addr: req String = "brokerAddr",
        cluster_name: req String = "clusterName",
        broker_id: req i64 = "brokerId",
    }
}

crate::ext_header! {
    /// BROKER_HEARTBEAT (904, 5.x): refreshes a registered broker's liveness only.
    pub struct BrokerHeartbeatRequestHeader {
        cluster_name: req String = "clusterName",
        broker_addr: req String = "brokerAddr",
        broker_name: req String = "brokerName",
        broker_id: opt i64 = "brokerId",
        epoch: opt i32 = "epoch",
        max_offset: opt i64 = "maxOffset",
        confirm_offset: opt i64 = "confirmOffset",
        /// Java spells this key without the second `i` (`Mills`); kept as on the wire.
        heartbeat_timeout_millis: opt i64 = "heartbeatTimeoutMills",
        election_priority: opt i32 = "electionPriority",
    }
}

crate::ext_header! {
    /// QUERY_DATA_VERSION (322): "has my topic table changed since you last saw it?". The
    /// request body is the broker's `DataVersion` JSON.
    pub struct QueryDataVersionRequestHeader {
        broker_name: req String = "brokerName",
        broker_addr: req String = "brokerAddr",
        cluster_name: req String = "clusterName",
        broker_id: req i64 = "brokerId",
    }
}

crate::ext_header! {
    /// QUERY_DATA_VERSION (322) response; the body is the namesrv's stored `DataVersion`.
    pub struct QueryDataVersionResponseHeader {
        /// The stored version differs from the one the broker sent (or none is stored).
        changed: req bool = "changed",
    }
}

crate::ext_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105), the client's route poll (every 30 s per topic).
    pub struct GetRouteInfoRequestHeader {
        /// May be `TBW102` (the producer's default-topic probe) or `%RETRY%<group>`.
        topic: req String = "topic",
        /// 5.x; ringmq always answers standard JSON, so this changes nothing.
        accept_standard_json_only: opt bool = "acceptStandardJsonOnly",
    }
}

crate::ext_header! {
    /// GET_TOPICS_BY_CLUSTER (224).
    pub struct GetTopicsByClusterRequestHeader {
        cluster: req String = "cluster",
    }
}

crate::ext_header! {
    /// PUT_KV_CONFIG (100).
    pub struct PutKvConfigRequestHeader {
        namespace: req String = "namespace",
        key: req String = "key",
        value: req String = "value",
    }
}

crate::ext_header! {
    /// GET_KV_CONFIG (101).
    pub struct GetKvConfigRequestHeader {
        namespace: req String = "namespace",
        key: req String = "key",
    }
}

crate::ext_header! {
    /// GET_KV_CONFIG (101) response.
    pub struct GetKvConfigResponseHeader {
        value: opt String = "value",
    }
}

crate::ext_header! {
    /// DELETE_KV_CONFIG (102).
    pub struct DeleteKvConfigRequestHeader {
        namespace: req String = "namespace",
        key: req String = "key",
    }
}

crate::ext_header! {
    /// GET_KVLIST_BY_NAMESPACE (219); the answer is a `KVTable` body.
    pub struct GetKvListByNamespaceRequestHeader {
        namespace: req String = "namespace",
    }
}

crate::ext_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216), sent by `mqadmin deleteTopic` after the brokers
    /// deleted the topic; without `clusterName` the topic goes from every broker.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        topic: req String = "topic",
        cluster_name: opt String = "clusterName",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ext;
    use crate::typed::{FieldError, Header};

    #[test]
    fn register_broker_reads_java_keys() {
        let h = RegisterBrokerRequestHeader::decode(&ext(&[
            ("brokerName", "broker-a"),
            ("brokerAddr", "10.0.0.1:10911"),
            ("clusterName", "DefaultCluster"),
            ("haServerAddr", "10.0.0.1:10912"),
            ("brokerId", "0"),
            ("compressed", "false"),
            ("bodyCrc32", "123456"),
            ("enableActingMaster", "false"),
            ("__ZONE_NAME", "z1"),
            ("bname", "ignored"),
        ]))
        .unwrap();
        assert_eq!(h.broker_name, "broker-a");
        assert_eq!(h.broker_id, 0);
        assert_eq!(h.compressed, Some(false));
        assert_eq!(h.body_crc32, Some(123456));
        assert_eq!(h.heartbeat_timeout_millis, None);
        assert_eq!(h.enable_acting_master, Some(false));
        assert_eq!(h.zone_name.as_deref(), Some("z1"));
        assert_eq!(RegisterBrokerRequestHeader::decode(&h.to_ext()), Ok(h));
    }

    #[test]
    fn missing_and_malformed_fields_name_the_key() {
        let missing = RegisterBrokerRequestHeader::decode(&ext(&[("brokerName", "b")]));
        assert_eq!(missing, Err(FieldError::Missing { key: "brokerAddr" }));
        let bad = UnregisterBrokerRequestHeader::decode(&ext(&[
            ("brokerName", "b"),
            ("brokerAddr", "a:1"),
            ("clusterName", "c"),
            ("brokerId", "zero"),
        ]));
        let err = bad.unwrap_err();
        assert!(err.to_string().contains("brokerId"), "{err}");
    }

    #[test]
    fn heartbeat_keeps_the_java_spelling() {
        let h = BrokerHeartbeatRequestHeader {
            cluster_name: "c".into(),
            broker_addr: "a:1".into(),
            broker_name: "b".into(),
            heartbeat_timeout_millis: Some(10_000),
            ..Default::default()
        };
        assert_eq!(h.to_ext().get("heartbeatTimeoutMills"), Some("10000"));
    }

    #[test]
    fn responses_round_trip() {
        let r = QueryDataVersionResponseHeader { changed: true };
        assert_eq!(r.to_ext().get("changed"), Some("true"));
        let r = GetKvConfigResponseHeader {
            value: Some("v".into()),
        };
        assert_eq!(GetKvConfigResponseHeader::decode(&r.to_ext()), Ok(r));
        let r = RegisterBrokerResponseHeader::default();
        assert!(r.to_ext().is_empty());
    }
}
