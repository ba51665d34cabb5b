//! The rest of a broker's conversation with the namesrv: QUERY_DATA_VERSION (changed or
//! not, the stored version in the body), BROKER_HEARTBEAT, re-registration with a new
//! DataVersion updating queues, and UNREGISTER_BROKER removing its routes.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, json, route_request};

fn query_version(b: &Broker, counter: i64) -> ringmq_codec::Command {
    let mut cmd = ringmq_codec::Command::request(request::QUERY_DATA_VERSION)
        .with_ext("brokerName", b.name.as_str())
        .with_ext("brokerAddr", b.addr.as_str())
        .with_ext("clusterName", b.cluster.as_str())
        .with_ext("brokerId", b.id.to_string())
        .with_body(
            format!(r#"{{"counter":{counter},"stateVersion":0,"timestamp":1700000000000}}"#)
                .into_bytes(),
        );
    cmd.serialize = SerializeType::Json;
    cmd
}

#[test]
fn data_version_heartbeat_reregistration_and_unregister() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let mut b = Broker::new("broker-a", "127.0.0.1:10911", 0);

    let r = conn.call(query_version(&b, 1));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(r.ext.get("changed"), Some("true"));
    assert!(r.body.is_empty(), "nothing stored yet");

    assert_eq!(
        conn.call(b.register(SerializeType::Json)).code,
        response::SUCCESS
    );
    let r = conn.call(query_version(&b, 1));
    assert_eq!(r.ext.get("changed"), Some("false"));
    assert_eq!(json(&r)["counter"], 1);
    assert_eq!(
        conn.call(query_version(&b, 2)).ext.get("changed"),
        Some("true")
    );

    assert_eq!(conn.call(b.heartbeat()).code, response::SUCCESS);

    b.counter = 2;
    b.topics[1].queues = 8;
    assert_eq!(
        conn.call(b.register(SerializeType::Json)).code,
        response::SUCCESS
    );
    let v = json(&conn.call(route_request("TopicTest", SerializeType::Json)));
    assert_eq!(v["queueDatas"][0]["writeQueueNums"], 8);
    assert!(
        ns.stderr().contains("re-registered with changed topics"),
        "{}",
        ns.stderr()
    );

    assert_eq!(conn.call(b.unregister()).code, response::SUCCESS);
    let r = conn.call(route_request("TopicTest", SerializeType::Json));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
    assert!(
        ns.stderr().contains("broker unregistered"),
        "{}",
        ns.stderr()
    );
}

#[test]
fn oneway_registration_registers_without_an_answer() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let mut reg = Broker::new("broker-o", "127.0.0.1:10961", 0).register(SerializeType::Json);
    reg.mark_oneway();
    reg.opaque = 500;
    conn.send(&reg);
    let mut route = route_request("TopicTest", SerializeType::Json);
    route.opaque = 501;
    conn.send(&route);
    // Requests are handled in order, so an answer to the oneway request would come first.
    let r = conn.read_frame().unwrap().expect("the route answer");
    assert_eq!(r.opaque, 501, "{r:?}");
    assert_eq!(
        r.code,
        response::SUCCESS,
        "the oneway registration took effect: {r:?}"
    );
}
