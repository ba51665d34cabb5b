//! Requests with missing or malformed header fields get an error response with a readable
//! remark naming the field, and the connection stays open; unknown codes get
//! REQUEST_CODE_NOT_SUPPORTED (3) with Java's remark.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, plain_request, route_request};

fn remark(cmd: &ringmq_codec::Command) -> &str {
    cmd.remark.as_deref().unwrap_or("")
}

#[test]
fn missing_and_malformed_fields_get_readable_errors() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();

    let r = conn.call(plain_request(request::GET_ROUTEINFO_BY_TOPIC));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("`topic`"), "{r:?}");

    let mut reg = Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json);
    reg.ext.insert("brokerId", "zero");
    let r = conn.call(reg);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        remark(&r).contains("brokerId") && remark(&r).contains("zero"),
        "{r:?}"
    );

    let mut reg = Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::RocketMq);
    reg.ext.remove("clusterName");
    let r = conn.call(reg);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("clusterName"), "{r:?}");

    let reg = Broker::new("broker-a", "127.0.0.1:10911", 0)
        .register(SerializeType::Json)
        .with_body(&b"{\"topicConfigSerializeWrapper\": [not json"[..]);
    let r = conn.call(reg);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("RegisterBrokerBody"), "{r:?}");

    let r = conn.call(plain_request(request::GET_TOPICS_BY_CLUSTER));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(remark(&r).contains("`cluster`"), "{r:?}");

    // The connection survived every error.
    let r = conn.call(route_request("Nope", SerializeType::Json));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
}

#[test]
fn unknown_codes_are_not_supported() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    for (code, ser) in [
        (9999, SerializeType::Json),
        (310, SerializeType::RocketMq),
        (200050, SerializeType::Json),
    ] {
        let mut cmd = plain_request(code);
        cmd.serialize = ser;
        let r = conn.call(cmd);
        assert_eq!(r.code, response::REQUEST_CODE_NOT_SUPPORTED, "code {code}");
        assert_eq!(
            r.remark,
            Some(format!(" request type {code} not supported"))
        );
    }
}
