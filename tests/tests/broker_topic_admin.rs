//! Topic administration (spec §3.11): UPDATE_AND_CREATE_TOPIC validates, creates and
//! re-registers at once; GET_ALL_TOPIC_CONFIG returns the TopicConfigSerializeWrapper;
//! DELETE_TOPIC_IN_BROKER removes the topic and its offsets from the broker (the namesrv
//! route goes with DELETE_TOPIC_IN_NAMESRV, which mqadmin sends next, as with Java).

use ringmq_codec::codes::{request, response};
use ringmq_codec::{Command, SerializeType};
use ringmq_tests::Process;
use ringmq_tests::broker::{create_topic, query_offset, send_v2, update_offset};
use ringmq_tests::namesrv::{json, route_request};

#[test]
fn create_list_and_delete_topics() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    let mut nsc = ns.client();
    assert_eq!(c.call(create_topic("Admin", 6, 6)).code, response::SUCCESS);
    assert_eq!(
        c.call(create_topic("Admin", 6, 6)).code,
        response::SUCCESS,
        "identical again"
    );
    let route = json(&nsc.call(route_request("Admin", SerializeType::Json)));
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 6);
    assert_eq!(
        c.call(create_topic("bad name", 1, 6)).code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        c.call(create_topic("Zero", 0, 6)).code,
        response::INVALID_PARAMETER
    );
    assert_eq!(
        c.call(create_topic("TBW102", 1, 6)).code,
        response::INVALID_PARAMETER
    );
    let mut bad_filter = create_topic("F", 1, 6);
    bad_filter.ext.insert("topicFilterType", "NONE");
    assert_eq!(c.call(bad_filter).code, response::INVALID_PARAMETER);

    let r = c.call(Command::request(request::GET_ALL_TOPIC_CONFIG));
    let all = json(&r);
    assert_eq!(all["topicConfigTable"]["Admin"]["writeQueueNums"], 6);
    assert_eq!(all["topicConfigTable"]["TBW102"]["perm"], 7);
    assert!(all["dataVersion"]["counter"].as_i64().unwrap() > 0);

    assert_eq!(
        c.call(send_v2("Admin", 5, b"x", "")).code,
        response::SUCCESS
    );
    assert_eq!(c.call(update_offset("Admin", 5, 1)).code, response::SUCCESS);
    let del = Command::request(request::DELETE_TOPIC_IN_BROKER).with_ext("topic", "Admin");
    assert_eq!(c.call(del).code, response::SUCCESS);
    let r = c.call(ringmq_tests::broker::pull("Admin", 5, 0, 32, 0, Some("*")));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST, "{r:?}");
    let all = json(&c.call(Command::request(request::GET_ALL_TOPIC_CONFIG)));
    assert!(all["topicConfigTable"].get("Admin").is_none());
    // The group's offset on it is gone; a young queue answers 0 rather than the old 1.
    assert_eq!(
        c.call(query_offset("Admin", 5)).ext.get("offset"),
        Some("0")
    );
    let del = Command::request(request::DELETE_TOPIC_IN_BROKER).with_ext("topic", "TBW102");
    assert_eq!(
        c.call(del).code,
        response::INVALID_PARAMETER,
        "system topics stay"
    );
}
