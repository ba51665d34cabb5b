//! What the name server and the broker say, over the harness's raw client and independent
//! of rocketmq-client-rust: routes (GET_ROUTEINFO_BY_TOPIC), queue and consumer offsets
//! (GET_MAX_OFFSET, QUERY_CONSUMER_OFFSET) and raw pulls (PULL_MESSAGE with an expression).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ringmq_codec::codes::{request, response};
use ringmq_codec::{Command, LanguageCode, SerializeType};
use ringmq_tests::namesrv::route_request;
use ringmq_tests::{Process, RawClient};

use super::ROUTE_DEADLINE;

/// A topic's route as the name server answers it.
#[derive(Debug, Clone, Default)]
pub struct Route {
    /// brokerName → master address.
    pub brokers: BTreeMap<String, String>,
    /// brokerName → (readQueueNums, writeQueueNums).
    pub queues: BTreeMap<String, (i32, i32)>,
}

impl Route {
    /// Every readable (brokerName, queueId) with its master address.
    pub fn read_queues(&self) -> Vec<(String, String, i32)> {
        let mut out = Vec::new();
        for (name, (read, _)) in &self.queues {
            if let Some(addr) = self.brokers.get(name) {
                for q in 0..*read {
                    out.push((name.clone(), addr.clone(), q));
                }
            }
        }
        out
    }
}

/// GET_ROUTEINFO_BY_TOPIC; `None` for TOPIC_NOT_EXIST.
pub fn route(namesrv: &Process, topic: &str) -> Option<Route> {
    let mut conn = namesrv.client();
    let r = conn.call(route_request(topic, SerializeType::Json));
    if r.code == response::TOPIC_NOT_EXIST {
        return None;
    }
    assert_eq!(
        r.code,
        response::SUCCESS,
        "route of {topic}: {:?}",
        r.remark
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("route JSON");
    let mut route = Route::default();
    for b in v["brokerDatas"].as_array().into_iter().flatten() {
        let name = b["brokerName"].as_str().unwrap_or_default().to_owned();
        if let Some(addr) = b["brokerAddrs"]["0"].as_str() {
            route.brokers.insert(name, addr.to_owned());
        }
    }
    for q in v["queueDatas"].as_array().into_iter().flatten() {
        let name = q["brokerName"].as_str().unwrap_or_default().to_owned();
        let read = q["readQueueNums"].as_i64().unwrap_or(0) as i32;
        let write = q["writeQueueNums"].as_i64().unwrap_or(0) as i32;
        route.queues.insert(name, (read, write));
    }
    Some(route)
}

/// Waits until `topic`'s route lists `brokers` brokers, each with `queues` read and write
/// queues.
pub fn wait_topic_route(namesrv: &Process, topic: &str, brokers: usize, queues: i32) -> Route {
    let end = Instant::now() + ROUTE_DEADLINE;
    loop {
        let r = route(namesrv, topic);
        if let Some(r) = &r
            && r.brokers.len() == brokers
            && r.queues.len() == brokers
            && r.queues
                .values()
                .all(|&(rd, wr)| rd == queues && wr == queues)
        {
            return r.clone();
        }
        assert!(
            Instant::now() < end,
            "topic {topic} not routed on {brokers} broker(s) with {queues} queues after \
             {ROUTE_DEADLINE:?}; last route {r:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// GET_MAX_OFFSET of one queue on one broker.
pub fn max_offset(addr: &str, topic: &str, queue_id: i32) -> i64 {
    let mut conn = RawClient::connect(addr.parse().expect("broker address"));
    let r = conn.call(
        broker_request(request::GET_MAX_OFFSET)
            .with_ext("topic", topic)
            .with_ext("queueId", queue_id.to_string()),
    );
    assert_eq!(r.code, response::SUCCESS, "GET_MAX_OFFSET: {:?}", r.remark);
    r.ext
        .get("offset")
        .and_then(|s| s.parse().ok())
        .expect("GET_MAX_OFFSET answers ext offset")
}

/// QUERY_CONSUMER_OFFSET of one queue on one broker; `None` for QUERY_NOT_FOUND.
pub fn consumer_offset(addr: &str, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
    let mut conn = RawClient::connect(addr.parse().expect("broker address"));
    let r = conn.call(
        broker_request(request::QUERY_CONSUMER_OFFSET)
            .with_ext("consumerGroup", group)
            .with_ext("topic", topic)
            .with_ext("queueId", queue_id.to_string()),
    );
    if r.code == response::QUERY_NOT_FOUND {
        return None;
    }
    assert_eq!(
        r.code,
        response::SUCCESS,
        "QUERY_CONSUMER_OFFSET: {:?}",
        r.remark
    );
    r.ext.get("offset").and_then(|s| s.parse().ok())
}

/// Waits until the broker's stored offset of `group` equals the max offset on every queue of
/// `topic`, i.e. the group has committed everything it consumed.
pub fn wait_committed_all(namesrv: &Process, group: &str, topic: &str) {
    let r = route(namesrv, topic).expect("topic routed");
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let mut behind = Vec::new();
        for (name, addr, q) in r.read_queues() {
            let max = max_offset(&addr, topic, q);
            let committed = consumer_offset(&addr, group, topic, q);
            if max > 0 && committed != Some(max) {
                behind.push(format!("{name}/{q}: committed {committed:?}, max {max}"));
            }
        }
        if behind.is_empty() {
            return;
        }
        assert!(
            Instant::now() < end,
            "group {group} did not commit all of {topic} within 30 s: {behind:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pulls every message of one queue with PULL_MESSAGE carrying `expression` (SUBSCRIPTION
/// flag, no suspend, no commit; spec §3.4), from offset 0 to the queue's max offset, and
/// returns them decoded. Entries the broker filtered out are skipped by its
/// `nextBeginOffset` (PULL_RETRY_IMMEDIATELY when a whole scan matched nothing).
pub fn raw_pull_all(
    addr: &str,
    group: &str,
    topic: &str,
    queue_id: i32,
    expression: &str,
) -> Vec<ringmq_codec::message::MessageExt> {
    let max = max_offset(addr, topic, queue_id);
    let mut conn = RawClient::connect(addr.parse().expect("broker address"));
    let mut offset = 0i64;
    let mut out = Vec::new();
    let mut rounds = 0;
    while offset < max {
        rounds += 1;
        assert!(
            rounds < 10_000,
            "raw pull of {topic}/{queue_id} does not advance"
        );
        let r = conn.call(
            broker_request(request::PULL_MESSAGE)
                .with_ext("consumerGroup", group)
                .with_ext("topic", topic)
                .with_ext("queueId", queue_id.to_string())
                .with_ext("queueOffset", offset.to_string())
                .with_ext("maxMsgNums", "32")
                .with_ext("sysFlag", "4")
                .with_ext("commitOffset", "0")
                .with_ext("suspendTimeoutMillis", "0")
                .with_ext("subscription", expression)
                .with_ext("subVersion", "0")
                .with_ext("expressionType", "TAG"),
        );
        let next: i64 = r
            .ext
            .get("nextBeginOffset")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("pull response without nextBeginOffset: {r:?}"));
        match r.code {
            response::SUCCESS => {
                let (msgs, err) = ringmq_codec::message::decode_all(&r.body);
                assert!(
                    err.is_none(),
                    "pull body of {topic}/{queue_id} does not decode: {err:?}"
                );
                out.extend(msgs);
            }
            response::PULL_RETRY_IMMEDIATELY => {}
            other => panic!(
                "raw pull of {topic}/{queue_id} at {offset} (max {max}): code {other} {:?}",
                r.remark
            ),
        }
        assert!(
            next > offset,
            "pull at {offset} answered nextBeginOffset {next}"
        );
        offset = next;
    }
    out
}

fn broker_request(code: i32) -> Command {
    let mut cmd = Command::request(code);
    cmd.language = LanguageCode::JAVA;
    cmd.serialize = SerializeType::Json;
    cmd
}
