//! Every shard registers with the namesrv as its own broker (distinct names and ports, same
//! cluster), a created topic is routed at once, and all of them disappear after SIGTERM.
//! The VIP port (port − 2) serves the same requests.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::broker::send_v2;
use ringmq_tests::namesrv::{json, route_request};
use ringmq_tests::{Process, RawClient};

#[test]
fn shards_register_distinctly_and_unregister_on_sigterm() {
    let ns = Process::namesrv(&[]);
    let mut broker = Process::broker(ns.addr(), &["shards=2", "brokerName=rb"]);
    let info = broker.cluster_info();
    let names: Vec<String> = (0..2).map(|k| broker.broker_name(k)).collect();
    assert_eq!(names, ["rb-0", "rb-1"]);
    assert_eq!(
        info["clusterAddrTable"]["DefaultCluster"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{info}"
    );
    assert_ne!(broker.shard_addr(0), broker.shard_addr(1));
    assert_eq!(broker.shard_addr(1).port() - broker.shard_addr(0).port(), 4);

    // TBW102 is routed to both shards (perm 7, 8 queues), for producers' auto-create.
    let mut nsc = ns.client();
    let route = json(&nsc.call(route_request("TBW102", SerializeType::Json)));
    let queues = route["queueDatas"].as_array().unwrap();
    assert_eq!(queues.len(), 2, "{route}");
    assert!(
        queues
            .iter()
            .all(|q| q["perm"] == 7 && q["writeQueueNums"] == 8)
    );

    // A topic auto-created on shard 1 only is routed to shard 1 only, at once; the VIP port
    // serves sends too.
    let mut vip = RawClient::connect(broker.vip_addr(1));
    assert_eq!(
        vip.call(send_v2("OnShard1", 0, b"x", "")).code,
        response::SUCCESS
    );
    let r = nsc.call(route_request("OnShard1", SerializeType::Json));
    assert_eq!(
        r.code,
        response::SUCCESS,
        "registered at creation, not 30 s later"
    );
    let route = json(&r);
    assert_eq!(route["queueDatas"].as_array().unwrap().len(), 1);
    assert_eq!(route["queueDatas"][0]["brokerName"], "rb-1");
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"]["0"],
        broker.shard_addr(1).to_string()
    );

    broker.stop_cleanly();
    assert!(broker.is_unregistered(), "{}", broker.cluster_info());
    let log = ns.stderr();
    assert_eq!(log.matches("broker unregistered").count(), 2, "{log}");
    assert!(
        !log.contains("its connection closed"),
        "explicit UNREGISTER_BROKER, not a close: {log}"
    );
}
