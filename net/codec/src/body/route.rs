//! Route bodies of the namesrv (spec §5.1, §5.6): `TopicRouteData`, `QueueData`, `BrokerData`,
//! `ClusterInfo`, `TopicList`.
//!
//! Output is always standard JSON: `brokerAddrs` keys are quoted (`{"0":"ip:port"}`), which
//! every Java client accepts, and collections a Java client iterates are never `null`
//! (`filterServerTable` is `{}` when empty). Input may be Java's unquoted form, see
//! [`lenient`](super::lenient).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::lenient::{self, JsonBodyError, i32_lenient, null_as_default};

/// Broker id of a master (`MixAll.MASTER_ID`).
pub const MASTER_ID: i64 = 0;

/// The answer to GET_ROUTEINFO_BY_TOPIC (105).
///
/// ```json
/// {"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],
///  "brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"10.0.0.1:10911"},"enableActingMaster":false}],
///  "filterServerTable":{}}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    /// `brokerName:queueNum;...` from the ORDER_TOPIC_CONFIG KV namespace; normally absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub queue_datas: Vec<QueueData>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub broker_datas: Vec<BrokerData>,
    /// Obsolete filter servers per broker address; always emitted, as `{}` (spec §10 item 9).
    #[serde(default, deserialize_with = "null_as_default")]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

/// One broker name's queues of a topic, as its master registered them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    #[serde(default, deserialize_with = "i32_lenient")]
    pub read_queue_nums: i32,
    #[serde(default, deserialize_with = "i32_lenient")]
    pub write_queue_nums: i32,
    /// PermName bits: 4 read, 2 write, 1 inherit (spec §5.7).
    #[serde(default, deserialize_with = "i32_lenient")]
    pub perm: i32,
    /// Java 4.x spells it `topicSynFlag`; both spellings are read, the 5.x one is written.
    #[serde(default, alias = "topicSynFlag", deserialize_with = "i32_lenient")]
    pub topic_sys_flag: i32,
}

/// The addresses of one broker name: id → `ip:port` (0 = master).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    #[serde(default)]
    pub cluster: String,
    pub broker_name: String,
    /// Serialized with quoted keys (`{"0":"a:1"}`); read quoted or bare.
    #[serde(default, deserialize_with = "null_as_default")]
    pub broker_addrs: BTreeMap<i64, String>,
    #[serde(default)]
    pub enable_acting_master: bool,
    /// 5.x zone name, when the broker sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

/// The answer to GET_BROKER_CLUSTER_INFO (106).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Broker name → its addresses.
    #[serde(default, deserialize_with = "null_as_default")]
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker names.
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

/// The answer to GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) and GET_TOPICS_BY_CLUSTER (224).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    #[serde(default, deserialize_with = "null_as_default")]
    pub topic_list: BTreeSet<String>,
    /// Set only by brokers answering GET_SYSTEM_TOPIC_LIST_FROM_BROKER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

macro_rules! json_body {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// Standard JSON, as ringmq sends it.
            pub fn to_json(&self) -> Vec<u8> {
                lenient::to_json(self)
            }

            /// Reads the JSON of a ringmq or Java peer (bare integer keys accepted).
            pub fn from_json(bytes: &[u8]) -> Result<Self, JsonBodyError> {
                lenient::from_slice(stringify!($ty), bytes)
            }
        }
    )*};
}

json_body!(
    TopicRouteData,
    QueueData,
    BrokerData,
    ClusterInfo,
    TopicList
);

#[cfg(test)]
mod tests {
    use super::*;

    fn broker_a() -> BrokerData {
        BrokerData {
            cluster: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_addrs: [
                (0, "10.0.0.1:10911".to_owned()),
                (1, "10.0.0.2:10911".to_owned()),
            ]
            .into_iter()
            .collect(),
            enable_acting_master: false,
            zone_name: None,
        }
    }

    #[test]
    fn route_data_golden_json() {
        let route = TopicRouteData {
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![broker_a()],
            filter_server_table: BTreeMap::new(),
        };
        let json = String::from_utf8(route.to_json()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"#,
                r#""perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","#,
                r#""brokerName":"broker-a","brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"},"#,
                r#""enableActingMaster":false}],"filterServerTable":{}}"#
            )
        );
        assert_eq!(TopicRouteData::from_json(json.as_bytes()).unwrap(), route);
    }

    #[test]
    fn reads_java_4x_route_json() {
        // fastjson 4.x: bare keys, `topicSynFlag`, alphabetical keys, null filter table.
        let java = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":null,"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSynFlag":0,"writeQueueNums":4}]}"#;
        let route = TopicRouteData::from_json(java).unwrap();
        assert_eq!(route.broker_datas, vec![broker_a()]);
        assert_eq!(
            route.queue_datas.first().map(|q| q.write_queue_nums),
            Some(4)
        );
        assert!(route.filter_server_table.is_empty());
    }

    #[test]
    fn cluster_info_and_topic_list_shapes() {
        let info = ClusterInfo {
            broker_addr_table: [("broker-a".to_owned(), broker_a())].into_iter().collect(),
            cluster_addr_table: [(
                "DefaultCluster".to_owned(),
                ["broker-a".to_owned()].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
        };
        let v: serde_json::Value = serde_json::from_slice(&info.to_json()).unwrap();
        assert_eq!(
            v["brokerAddrTable"]["broker-a"]["brokerAddrs"]["0"],
            "10.0.0.1:10911"
        );
        assert_eq!(v["clusterAddrTable"]["DefaultCluster"][0], "broker-a");
        assert_eq!(ClusterInfo::from_json(&info.to_json()).unwrap(), info);

        let list = TopicList {
            topic_list: ["B".to_owned(), "A".to_owned()].into_iter().collect(),
            broker_addr: None,
        };
        assert_eq!(list.to_json(), br#"{"topicList":["A","B"]}"#);
        assert_eq!(TopicList::default().to_json(), br#"{"topicList":[]}"#);
    }
}
