//! A route query for a topic no live broker hosts answers TOPIC_NOT_EXIST (17) with Java's
//! remark, before and after a broker registers other topics, in both serializations.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, route_request};

#[test]
fn unknown_topic_is_topic_not_exist() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        let r = conn.call(route_request("NoSuchTopic", ser));
        assert_eq!(r.code, response::TOPIC_NOT_EXIST, "{r:?}");
        assert_eq!(
            r.remark.as_deref(),
            Some("No topic route info in name server for the topic: NoSuchTopic")
        );
        assert!(r.body.is_empty());
    }
    let r = conn.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS);
    let r = conn.call(route_request("NoSuchTopic", SerializeType::Json));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST);
}
