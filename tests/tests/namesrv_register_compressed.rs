//! REGISTER_BROKER with the compressed body of spec §3.1 and a bodyCrc32; a wrong CRC is
//! refused with SYSTEM_ERROR "crc32 not match".

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, json, route_request};

#[test]
fn compressed_registration_publishes_routes() {
    let ns = Process::namesrv(&[]);
    let broker = Broker::new("broker-z", "127.0.0.1:10931", 0).with_topic("Zipped", 3, 6);
    let mut conn = ns.client();
    let r = conn.call(broker.register_compressed());
    assert_eq!(r.code, response::SUCCESS, "{r:?}");

    let v = json(&conn.call(route_request("Zipped", SerializeType::Json)));
    assert_eq!(v["queueDatas"][0]["readQueueNums"], 3);
    assert_eq!(v["brokerDatas"][0]["brokerName"], "broker-z");
}

#[test]
fn wrong_body_crc_is_refused() {
    let ns = Process::namesrv(&[]);
    let mut cmd = Broker::new("broker-z", "127.0.0.1:10931", 0).register_compressed();
    let crc: i32 = cmd.ext.get("bodyCrc32").unwrap().parse().unwrap();
    cmd.ext.insert("bodyCrc32", (crc ^ 1).to_string());
    let mut conn = ns.client();
    let r = conn.call(cmd);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        r.remark
            .as_deref()
            .unwrap_or("")
            .contains("crc32 not match"),
        "{r:?}"
    );
    let route = conn.call(route_request("TopicTest", SerializeType::Json));
    assert_eq!(route.code, response::TOPIC_NOT_EXIST);
}
