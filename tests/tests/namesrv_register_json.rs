//! A broker registers over JSON headers with a Java-style body; a client reads the route
//! back with the shape of spec §5.1 (quoted brokerAddrs keys, filterServerTable {}), and the
//! TBW102 probe route is there too.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, CLUSTER, json, route_request};

#[test]
fn register_then_route_with_json_headers() {
    let ns = Process::namesrv(&[]);
    let mut broker = ns.client();
    let reg =
        broker.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json));
    assert_eq!(reg.code, response::SUCCESS, "{reg:?}");
    assert!(reg.is_response());
    assert_eq!(reg.serialize, SerializeType::Json);
    assert!(reg.version > 0, "responses carry a version");
    assert_eq!(reg.ext.get("masterAddr"), None, "a master has no master");

    let mut client = ns.client();
    let route = client.call(route_request("TopicTest", SerializeType::Json));
    assert_eq!(route.code, response::SUCCESS, "{route:?}");
    let raw = String::from_utf8(route.body.to_vec()).unwrap();
    assert!(
        raw.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911"}"#),
        "{raw}"
    );

    let v = json(&route);
    assert_eq!(v["filterServerTable"], serde_json::json!({}));
    let queues = v["queueDatas"].as_array().unwrap();
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0]["brokerName"], "broker-a");
    assert_eq!(queues[0]["readQueueNums"], 4);
    assert_eq!(queues[0]["writeQueueNums"], 4);
    assert_eq!(queues[0]["perm"], 6);
    assert_eq!(queues[0]["topicSysFlag"], 0);
    let brokers = v["brokerDatas"].as_array().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["cluster"], CLUSTER);
    assert_eq!(brokers[0]["brokerName"], "broker-a");
    assert_eq!(brokers[0]["brokerAddrs"]["0"], "127.0.0.1:10911");
    assert_eq!(brokers[0]["enableActingMaster"], false);

    let probe = json(&client.call(route_request("TBW102", SerializeType::Json)));
    assert_eq!(probe["queueDatas"][0]["perm"], 7);
    assert_eq!(probe["queueDatas"][0]["writeQueueNums"], 8);

    assert!(ns.stderr().contains("broker registered"), "{}", ns.stderr());
}

#[test]
fn slave_registration_learns_its_master() {
    let ns = Process::namesrv(&[]);
    let mut master = ns.client();
    let r =
        master.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS);
    let mut slave = ns.client();
    let r = slave.call(Broker::new("broker-a", "127.0.0.1:20911", 1).register(SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS, "{r:?}");
    assert_eq!(r.ext.get("masterAddr"), Some("127.0.0.1:10911"));
    assert_eq!(r.ext.get("haServerAddr"), Some("127.0.0.1:10911-ha"));

    let v = json(
        &ns.client()
            .call(route_request("TopicTest", SerializeType::Json)),
    );
    assert_eq!(v["brokerDatas"][0]["brokerAddrs"]["1"], "127.0.0.1:20911");
    assert_eq!(v["queueDatas"].as_array().unwrap().len(), 1);
}

#[test]
fn first_registration_with_a_single_topic_is_refused_like_java() {
    // Java 5.x treats a one-topic registration as an incremental "register single topic",
    // which must follow a full registration of that broker id (spec §3.1).
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let mut single = Broker::new("broker-s", "127.0.0.1:10971", 0);
    single.topics.truncate(1);
    let r = conn.call(single.register(SerializeType::Json));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        r.remark
            .as_deref()
            .unwrap_or("")
            .starts_with("register broker failed"),
        "{r:?}"
    );
    let full = Broker::new("broker-s", "127.0.0.1:10971", 0);
    assert_eq!(
        conn.call(full.register(SerializeType::Json)).code,
        response::SUCCESS
    );
    single.counter = 2;
    assert_eq!(
        conn.call(single.register(SerializeType::Json)).code,
        response::SUCCESS
    );
}
