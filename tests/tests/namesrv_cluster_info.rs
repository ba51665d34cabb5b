//! GET_BROKER_CLUSTER_INFO has the shape of spec §5.6: brokerAddrTable with quoted id keys
//! and clusterAddrTable listing broker names per cluster.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, CLUSTER, json, plain_request};

#[test]
fn cluster_info_shape() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let empty = conn.call(plain_request(request::GET_BROKER_CLUSTER_INFO));
    assert_eq!(empty.code, response::SUCCESS);
    assert_eq!(
        json(&empty),
        serde_json::json!({"brokerAddrTable": {}, "clusterAddrTable": {}})
    );

    for b in [
        Broker::new("broker-a", "127.0.0.1:10911", 0),
        Broker::new("broker-a", "127.0.0.1:10912", 1),
        Broker::new("broker-b", "127.0.0.1:10921", 0),
        Broker::new("broker-x", "127.0.0.1:10931", 0).in_cluster("OtherCluster"),
    ] {
        assert_eq!(
            conn.call(b.register(SerializeType::Json)).code,
            response::SUCCESS
        );
    }
    let info = conn.call(plain_request(request::GET_BROKER_CLUSTER_INFO));
    let raw = String::from_utf8(info.body.to_vec()).unwrap();
    assert!(
        raw.contains(r#"{"0":"127.0.0.1:10911","1":"127.0.0.1:10912"}"#),
        "{raw}"
    );
    let v = json(&info);
    let a = &v["brokerAddrTable"]["broker-a"];
    assert_eq!(a["cluster"], CLUSTER);
    assert_eq!(a["brokerName"], "broker-a");
    assert_eq!(a["brokerAddrs"]["1"], "127.0.0.1:10912");
    assert_eq!(a["enableActingMaster"], false);
    assert_eq!(v["brokerAddrTable"]["broker-x"]["cluster"], "OtherCluster");
    assert_eq!(
        v["clusterAddrTable"][CLUSTER],
        serde_json::json!(["broker-a", "broker-b"])
    );
    assert_eq!(
        v["clusterAddrTable"]["OtherCluster"],
        serde_json::json!(["broker-x"])
    );
}
