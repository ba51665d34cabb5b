//! The same registration and route query with ROCKETMQ (binary) headers: the server answers
//! in the request's serialization (spec §1.3).

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, json, route_request};

#[test]
fn register_then_route_with_binary_headers() {
    let ns = Process::namesrv(&[]);
    let mut broker = ns.client();
    let reg = broker
        .call(Broker::new("broker-b", "127.0.0.1:10921", 0).register(SerializeType::RocketMq));
    assert_eq!(reg.code, response::SUCCESS, "{reg:?}");
    assert_eq!(reg.serialize, SerializeType::RocketMq);

    let mut client = ns.client();
    let route = client.call(route_request("TopicTest", SerializeType::RocketMq));
    assert_eq!(route.code, response::SUCCESS, "{route:?}");
    assert_eq!(route.serialize, SerializeType::RocketMq);
    let v = json(&route);
    assert_eq!(v["brokerDatas"][0]["brokerAddrs"]["0"], "127.0.0.1:10921");
    assert_eq!(v["queueDatas"][0]["writeQueueNums"], 4);

    // A JSON client sees the same route.
    let same = json(&client.call(route_request("TopicTest", SerializeType::Json)));
    assert_eq!(same, v);
}
