//! GET_ALL_TOPIC_LIST_FROM_NAMESERVER and GET_TOPICS_BY_CLUSTER answer TopicList
//! (`{"topicList":[...]}`), the second limited to the cluster's brokers;
//! DELETE_TOPIC_IN_NAMESRV removes a topic's routes by cluster or everywhere.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::namesrv::{Broker, CLUSTER, json, plain_request};

fn sorted(v: &serde_json::Value) -> Vec<String> {
    let mut names: Vec<String> = v["topicList"]
        .as_array()
        .unwrap_or_else(|| panic!("topicList is an array: {v}"))
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn topic_lists() {
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let empty = json(&conn.call(plain_request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER)));
    assert_eq!(empty, serde_json::json!({"topicList": []}));

    let a = Broker::new("broker-a", "127.0.0.1:10911", 0).with_topic("OnlyA", 1, 6);
    let x = Broker::new("broker-x", "127.0.0.1:10931", 0)
        .in_cluster("OtherCluster")
        .with_topic("OnlyX", 1, 6);
    for b in [a, x] {
        assert_eq!(
            conn.call(b.register(SerializeType::Json)).code,
            response::SUCCESS
        );
    }

    let all = conn.call(plain_request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER));
    assert_eq!(all.code, response::SUCCESS);
    assert_eq!(
        sorted(&json(&all)),
        ["OnlyA", "OnlyX", "TBW102", "TopicTest"]
    );

    let by_cluster =
        conn.call(plain_request(request::GET_TOPICS_BY_CLUSTER).with_ext("cluster", CLUSTER));
    assert_eq!(by_cluster.code, response::SUCCESS);
    assert_eq!(sorted(&json(&by_cluster)), ["OnlyA", "TBW102", "TopicTest"]);

    let unknown =
        conn.call(plain_request(request::GET_TOPICS_BY_CLUSTER).with_ext("cluster", "NoCluster"));
    assert!(sorted(&json(&unknown)).is_empty());

    // DELETE_TOPIC_IN_NAMESRV (mqadmin deleteTopic): by cluster, then everywhere.
    let delete = |topic: &str, cluster: Option<&str>| {
        let mut r = plain_request(request::DELETE_TOPIC_IN_NAMESRV).with_ext("topic", topic);
        if let Some(c) = cluster {
            r = r.with_ext("clusterName", c);
        }
        r
    };
    assert_eq!(
        conn.call(delete("OnlyX", Some(CLUSTER))).code,
        response::SUCCESS
    );
    let all = json(&conn.call(plain_request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER)));
    assert!(
        sorted(&all).contains(&"OnlyX".to_owned()),
        "other cluster kept"
    );
    assert_eq!(conn.call(delete("OnlyX", None)).code, response::SUCCESS);
    let route =
        conn.call(plain_request(request::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", "OnlyX"));
    assert_eq!(route.code, response::TOPIC_NOT_EXIST);
    let all = json(&conn.call(plain_request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER)));
    assert_eq!(sorted(&all), ["OnlyA", "TBW102", "TopicTest"]);
    let no_topic = conn.call(plain_request(request::DELETE_TOPIC_IN_NAMESRV));
    assert_eq!(
        no_topic.code,
        response::SYSTEM_ERROR,
        "{:?}",
        no_topic.remark
    );
}
