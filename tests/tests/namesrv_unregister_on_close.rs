//! Closing the connection a broker registered over unregisters it at once (spec §5.5),
//! while a broker registered over another connection stays.

use std::time::Duration;

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::namesrv::{Broker, json, route_request};
use ringmq_tests::{Process, wait_until};

#[test]
fn closing_the_broker_connection_unregisters_it() {
    // Expiry far away, so only the close can remove the broker.
    let ns = Process::namesrv(&["brokerExpiredTimeoutMillis=3600000"]);
    let mut a = ns.client();
    assert_eq!(
        a.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json))
            .code,
        response::SUCCESS
    );
    let mut b = ns.client();
    assert_eq!(
        b.call(Broker::new("broker-b", "127.0.0.1:10921", 0).register(SerializeType::Json))
            .code,
        response::SUCCESS
    );

    let mut client = ns.client();
    let v = json(&client.call(route_request("TopicTest", SerializeType::Json)));
    assert_eq!(v["brokerDatas"].as_array().unwrap().len(), 2);

    drop(a);
    wait_until(Duration::from_secs(20), "broker-a leaves the route", || {
        let v = json(&client.call(route_request("TopicTest", SerializeType::Json)));
        v["brokerDatas"].as_array().map(Vec::len) == Some(1)
    });
    let v = json(&client.call(route_request("TopicTest", SerializeType::Json)));
    assert_eq!(v["brokerDatas"][0]["brokerName"], "broker-b");
    assert_eq!(v["queueDatas"].as_array().unwrap().len(), 1);
    assert!(
        ns.stderr().contains("its connection closed"),
        "{}",
        ns.stderr()
    );
    drop(b);
}
