//! A broker that stops registering disappears from routes: after the configured default
//! (`brokerExpiredTimeoutMillis`, a ringmq extension) or after its own
//! `heartbeatTimeoutMillis`. Its connection stays open, so only expiry can remove it; the
//! test waits on the condition with a deadline and never asserts on timing.

use std::time::Duration;

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::namesrv::{Broker, route_request};
use ringmq_tests::{Process, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn broker_expires_after_configured_timeout() {
    let ns = Process::namesrv(&[
        "brokerExpiredTimeoutMillis=500",
        "scanNotActiveBrokerInterval=100",
    ]);
    let mut broker = ns.client();
    let r =
        broker.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS);

    let mut client = ns.client();
    wait_until(DEADLINE, "the silent broker's route expires", || {
        client
            .call(route_request("TopicTest", SerializeType::Json))
            .code
            == response::TOPIC_NOT_EXIST
    });
    wait_until(DEADLINE, "the expiry is logged", || {
        ns.stderr().contains("broker expired")
    });
    // The connection itself is still usable.
    let r = broker.call(route_request("TopicTest", SerializeType::Json));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
}

#[test]
fn broker_given_timeout_overrides_the_default() {
    // Default expiry of an hour: only the broker's own 500 ms can expire it.
    let ns = Process::namesrv(&[
        "brokerExpiredTimeoutMillis=3600000",
        "scanNotActiveBrokerInterval=100",
    ]);
    let mut broker = ns.client();
    let mut short = Broker::new("broker-s", "127.0.0.1:10941", 0);
    short.heartbeat_timeout_ms = Some(500);
    assert_eq!(
        broker.call(short.register(SerializeType::Json)).code,
        response::SUCCESS
    );
    let long = Broker::new("broker-l", "127.0.0.1:10951", 0).with_topic("LongLived", 1, 6);
    assert_eq!(
        broker.call(long.register(SerializeType::Json)).code,
        response::SUCCESS
    );

    let mut client = ns.client();
    wait_until(DEADLINE, "broker-s expires", || {
        let v = client.call(route_request("TopicTest", SerializeType::Json));
        v.code == response::SUCCESS && !String::from_utf8_lossy(&v.body).contains("broker-s")
    });
    let r = client.call(route_request("LongLived", SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS, "broker-l is still registered");
}
