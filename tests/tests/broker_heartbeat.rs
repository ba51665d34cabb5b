//! Client registration (spec §3.2, §3.5): a heartbeat registers the consumer's
//! subscriptions (push pulls without a subscription then work, with SUBSCRIPTION_NOT_EXIST
//! and SUBSCRIPTION_NOT_LATEST as Java answers them), creates `%RETRY%<group>` and registers
//! it with the namesrv at once, lists the group's members, and tells the remaining members
//! NOTIFY_CONSUMER_IDS_CHANGED when one leaves (UNREGISTER_CLIENT or connection close).

use std::time::Duration;

use ringmq_codec::Command;
use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_tests::broker::{GROUP, heartbeat, pull, pull_flag, send_v2};
use ringmq_tests::namesrv::{json, route_request};
use ringmq_tests::{Process, wait_until};

#[test]
fn heartbeat_subscription_drives_pulls_and_membership() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut producer = broker.client();
    assert_eq!(
        producer.call(send_v2("HbTopic", 0, b"m", "")).code,
        response::SUCCESS
    );

    let mut c1 = broker.client();
    // No heartbeat yet: a push pull (no SUBSCRIPTION flag) cannot find the subscription.
    let r = c1.call(pull("HbTopic", 0, 0, 32, 0, None));
    assert_eq!(r.code, response::SUBSCRIPTION_NOT_EXIST, "{r:?}");
    assert!(
        r.ext.get("nextBeginOffset").is_some(),
        "pull header on errors too"
    );

    let r = c1.call(heartbeat("10.0.0.1@1", GROUP, &[("HbTopic", "*", 100)]));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(
        r.version, 479,
        "the broker's version, stored by Java clients"
    );
    let r = c1.call(pull("HbTopic", 0, 0, 32, 0, None));
    assert_eq!(r.code, response::SUCCESS, "{r:?}");
    let mut newer = pull("HbTopic", 0, 0, 32, 0, None);
    newer.ext.insert("subVersion", "200");
    assert_eq!(c1.call(newer).code, response::SUBSCRIPTION_NOT_LATEST);

    // The retry topic exists on the broker and in the namesrv route right away.
    let mut nsc = ns.client();
    wait_until(Duration::from_secs(10), "the retry topic is routed", || {
        nsc.call(route_request(
            &format!("%RETRY%{GROUP}"),
            SerializeType::Json,
        ))
        .code
            == response::SUCCESS
    });
    let route = json(&nsc.call(route_request(
        &format!("%RETRY%{GROUP}"),
        SerializeType::Json,
    )));
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], 1);

    let list = |c: &mut ringmq_tests::RawClient| {
        c.call(
            Command::request(request::GET_CONSUMER_LIST_BY_GROUP).with_ext("consumerGroup", GROUP),
        )
    };
    let mut c2 = broker.client();
    c2.call(heartbeat("10.0.0.2@2", GROUP, &[("HbTopic", "*", 100)]));
    // c1 is told that the group changed when c2 joined.
    let note = c1.read_frame().unwrap().expect("a notification");
    assert_eq!(note.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
    assert!(note.is_oneway());
    assert_eq!(note.ext.get("consumerGroup"), Some(GROUP));
    let r = list(&mut c2);
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(
        json(&r)["consumerIdList"],
        serde_json::json!(["10.0.0.1@1", "10.0.0.2@2"])
    );

    // c2's connection closes: it leaves at once and c1 is told.
    drop(c2);
    let note = c1.read_frame().unwrap().expect("a notification");
    assert_eq!(note.code, request::NOTIFY_CONSUMER_IDS_CHANGED);
    assert_eq!(
        json(&list(&mut c1))["consumerIdList"],
        serde_json::json!(["10.0.0.1@1"])
    );

    // UNREGISTER_CLIENT empties the group: no consumer for this group.
    let unreg = Command::request(request::UNREGISTER_CLIENT)
        .with_ext("clientID", "10.0.0.1@1")
        .with_ext("consumerGroup", GROUP);
    assert_eq!(c1.call(unreg).code, response::SUCCESS);
    let r = list(&mut c1);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert_eq!(
        r.remark.as_deref(),
        Some(format!("no consumer for this group, {GROUP}").as_str())
    );
}

#[test]
fn lite_pull_works_without_heartbeat_and_sql92_is_refused() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    assert_eq!(c.call(send_v2("Lite", 0, b"m", "")).code, response::SUCCESS);
    let mut lite = pull(
        "Lite",
        0,
        0,
        10,
        pull_flag::SUSPEND | pull_flag::LITE_PULL,
        Some("*"),
    );
    lite.code = request::LITE_PULL_MESSAGE;
    assert_eq!(c.call(lite).code, response::SUCCESS);
    let mut sql = pull("Lite", 0, 0, 10, 0, Some("a > 1"));
    sql.ext.insert("expressionType", "SQL92");
    let r = c.call(sql);
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(r.remark.unwrap().contains("SQL92"));
    let check = Command::request(request::CHECK_CLIENT_CONFIG).with_body(
        br#"{"clientId":"c","group":"g","subscriptionData":{"topic":"Lite","subString":"a > 1","expressionType":"SQL92"}}"#.to_vec(),
    );
    assert_eq!(c.call(check).code, response::SYSTEM_ERROR);
}
