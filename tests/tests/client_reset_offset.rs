//! Offset reset to a timestamp (issue 6, spec §3.13 INVOKE_BROKER_TO_RESET_OFFSET, §3.2
//! RESET_CONSUMER_CLIENT_OFFSET, §3.4 step 4 "pending admin reset").
//!
//! Method: batch A is sent, the wall clock is read between A and batch B (the reset time),
//! then B is sent, on a topic with 2 queues on each of 2 shards. A push consumer group
//! consumes and commits everything. INVOKE_BROKER_TO_RESET_OFFSET is sent with the harness's
//! raw client to every broker of the route, as mqadmin does. Its answer must name, per queue,
//! the offset of the first B message there (the queue's end when B put none there), and the
//! group must then consume all of B again and none of A:
//! - online: the running consumer is told by RESET_CONSUMER_CLIENT_OFFSET and by the
//!   PULL_OFFSET_MOVED of its next pull;
//! - offline: the group's consumer is stopped before the reset and a new one of the same
//!   group starts after it, and receives exactly B.
//!
//! A raw test pins the broker's side: a stale commit after the reset is dropped, the next pull
//! answers PULL_OFFSET_MOVED with the target once, the pull after it is served.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, Route, Sent, assert_exactly_once,
    consumer_offset, create_topic, max_offset, send_n, start_producer, start_push, unique,
    wait_committed_all,
};
use ringmq_codec::body::misc::{MessageQueue, ResetOffsetBody};
use ringmq_codec::codes::{request, response};
use ringmq_codec::{Command, LanguageCode, SerializeType};
use ringmq_tests::RawClient;
use ringmq_tests::broker::{GROUP, ext_i64, pull, update_offset};

const BATCH: usize = 12;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A wall-clock time strictly after every store time of what was sent so far and strictly
/// before that of anything sent after this returns (the broker shares the host's clock).
fn time_between_batches() -> i64 {
    let start = now_ms();
    while now_ms() <= start {
        std::thread::sleep(Duration::from_millis(1));
    }
    let between = now_ms();
    while now_ms() <= between {
        std::thread::sleep(Duration::from_millis(1));
    }
    between
}

/// INVOKE_BROKER_TO_RESET_OFFSET to one broker; insists on SUCCESS and returns its body.
fn reset_on(
    addr: &str,
    group: &str,
    topic: &str,
    timestamp_ms: i64,
    force: bool,
) -> ResetOffsetBody {
    let mut cmd = Command::request(request::INVOKE_BROKER_TO_RESET_OFFSET)
        .with_ext("topic", topic)
        .with_ext("group", group)
        .with_ext("timestamp", timestamp_ms.to_string())
        .with_ext("isForce", force.to_string());
    cmd.language = LanguageCode::JAVA;
    cmd.serialize = SerializeType::Json;
    let r = RawClient::connect(addr.parse().expect("broker address")).call(cmd);
    assert_eq!(r.code, response::SUCCESS, "reset on {addr}: {:?}", r.remark);
    ResetOffsetBody::from_fastjson(&r.body).expect("the reset answer is a ResetOffsetBody")
}

/// Resets on every broker of the route and returns the union of the answers.
fn reset_everywhere(
    route: &Route,
    group: &str,
    topic: &str,
    timestamp_ms: i64,
    force: bool,
) -> BTreeMap<MessageQueue, i64> {
    let mut all = BTreeMap::new();
    for addr in route.brokers.values() {
        all.extend(reset_on(addr, group, topic, timestamp_ms, force).offset_table);
    }
    all
}

/// Per queue of the route: the offset of the first message of `b` there, else the queue's
/// max offset.
fn expected_targets(route: &Route, topic: &str, b: &[Sent]) -> BTreeMap<MessageQueue, i64> {
    let mut out = BTreeMap::new();
    for (name, addr, q) in route.read_queues() {
        let first_b = b
            .iter()
            .filter(|s| s.broker == name && s.queue_id == q)
            .map(|s| s.queue_offset)
            .min();
        let target = first_b.unwrap_or_else(|| max_offset(&addr, topic, q));
        out.insert(MessageQueue::new(topic, name, q), target);
    }
    out
}

fn bodies(sent: &[Sent]) -> BTreeSet<String> {
    sent.iter().map(|s| s.body.clone()).collect()
}

struct Setup {
    cluster: Cluster,
    env: Env,
    topic: String,
    route: Route,
    a: Vec<Sent>,
    b: Vec<Sent>,
    reset_ms: i64,
}

fn setup(label: &str) -> Setup {
    let cluster = Cluster::start(2, &[]);
    let env = Env::new(label);
    let topic = unique("Reset");
    let route = create_topic(&env, &cluster, &topic, 2);
    let mut producer = start_producer(&env, &cluster.namesrv_addr(), &unique("reset_producer"));
    let a = send_n(&env, &producer, &topic, "TagA", "a", BATCH);
    let reset_ms = time_between_batches();
    let b = send_n(&env, &producer, &topic, "TagA", "b", BATCH);
    env.block_on(producer.shutdown());
    Setup {
        cluster,
        env,
        topic,
        route,
        a,
        b,
        reset_ms,
    }
}

#[test]
fn an_online_group_reconsumes_from_the_reset_time() {
    let s = setup("reset-online");
    let ns = s.cluster.namesrv_addr();
    let group = unique("reset_online");
    let inbox = Inbox::default();
    let mut consumer = start_push(&s.env, &ns, PushOpts::clustering(&group, &s.topic), &inbox);
    let everything: BTreeSet<String> = bodies(&s.a).union(&bodies(&s.b)).cloned().collect();
    inbox.wait_for_all(&everything, CONSUME_DEADLINE, "before the reset");
    wait_committed_all(&s.cluster.namesrv, &group, &s.topic);
    let seen_before = inbox.len();

    // isForce=false: every target is below the committed (max) offset, so every queue with
    // B messages moves back.
    let answered = reset_everywhere(&s.route, &group, &s.topic, s.reset_ms, false);
    assert_eq!(answered, expected_targets(&s.route, &s.topic, &s.b));

    let again = bodies(&s.b);
    let end = std::time::Instant::now() + CONSUME_DEADLINE;
    loop {
        let after: BTreeSet<String> = inbox.snapshot()[seen_before..]
            .iter()
            .map(|r| r.body.clone())
            .collect();
        if again.is_subset(&after) {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "after the reset the group re-consumed only {} of the {} B messages",
            again.intersection(&after).count(),
            again.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_committed_all(&s.cluster.namesrv, &group, &s.topic);
    s.env.block_on(consumer.shutdown());
    let after = inbox.snapshot()[seen_before..].to_vec();
    let old: Vec<&str> = after
        .iter()
        .filter(|r| r.body.starts_with("a-"))
        .map(|r| r.body.as_str())
        .collect();
    assert!(
        old.is_empty(),
        "messages before the reset time consumed again: {old:?}"
    );
}

#[test]
fn an_offline_group_restarts_from_the_reset_time() {
    let s = setup("reset-offline");
    let ns = s.cluster.namesrv_addr();
    let group = unique("reset_offline");
    let inbox1 = Inbox::default();
    let mut session1 = start_push(&s.env, &ns, PushOpts::clustering(&group, &s.topic), &inbox1);
    let everything: BTreeSet<String> = bodies(&s.a).union(&bodies(&s.b)).cloned().collect();
    inbox1.wait_for_all(&everything, CONSUME_DEADLINE, "session 1");
    wait_committed_all(&s.cluster.namesrv, &group, &s.topic);
    s.env.block_on(session1.shutdown());

    let want = expected_targets(&s.route, &s.topic, &s.b);
    let answered = reset_everywhere(&s.route, &group, &s.topic, s.reset_ms, true);
    assert_eq!(answered, want);
    for (name, addr, q) in s.route.read_queues() {
        let mq = MessageQueue::new(s.topic.as_str(), name.as_str(), q);
        assert_eq!(
            consumer_offset(&addr, &group, &s.topic, q),
            want.get(&mq).copied(),
            "committed offset of {name}/{q} after the reset"
        );
    }

    let inbox2 = Inbox::default();
    let mut session2 = start_push(&s.env, &ns, PushOpts::clustering(&group, &s.topic), &inbox2);
    let again = bodies(&s.b);
    inbox2.wait_for_all(&again, CONSUME_DEADLINE, "session 2");
    wait_committed_all(&s.cluster.namesrv, &group, &s.topic);
    s.env.block_on(session2.shutdown());
    assert_exactly_once(&inbox2.snapshot(), &again, "session 2 after the reset");
}

#[test]
fn a_pending_reset_answers_the_next_pull_once_and_holds_off_stale_commits() {
    let cluster = Cluster::start(1, &[]);
    let addr = cluster.broker.shard_addr(0).to_string();
    let topic = unique("ResetRaw");
    let mut c = cluster.broker.shard_client(0);
    let send = |c: &mut RawClient, body: &str| {
        let r = c.call(ringmq_tests::broker::send_v2(
            &topic,
            0,
            body.as_bytes(),
            "",
        ));
        assert_eq!(r.code, response::SUCCESS, "send: {:?}", r.remark);
    };
    for i in 0..3 {
        send(&mut c, &format!("a-{i}"));
    }
    let reset_ms = time_between_batches();
    for i in 0..2 {
        send(&mut c, &format!("b-{i}"));
    }
    assert_eq!(c.call(update_offset(&topic, 0, 5)).code, response::SUCCESS);

    let name = cluster.broker.broker_name(0);
    let q0 = MessageQueue::new(topic.as_str(), name.as_str(), 0);
    // The auto-created topic has more queues; the empty ones are positioned at 0.
    let body = reset_on(&addr, GROUP, &topic, reset_ms, false);
    assert_eq!(body.offset_table.get(&q0), Some(&3), "{body:?}");
    assert!(
        body.offset_table
            .iter()
            .all(|(mq, o)| mq.queue_id == 0 || *o == 0),
        "{body:?}"
    );
    assert_eq!(consumer_offset(&addr, GROUP, &topic, 0), Some(3));
    // A client that has not heard of the reset persists its old offset: dropped.
    assert_eq!(c.call(update_offset(&topic, 0, 5)).code, response::SUCCESS);
    assert_eq!(consumer_offset(&addr, GROUP, &topic, 0), Some(3));

    let r = c.call(pull(&topic, 0, 5, 32, 0, Some("*")));
    assert_eq!(r.code, response::PULL_OFFSET_MOVED, "{:?}", r.remark);
    assert_eq!(ext_i64(&r, "nextBeginOffset"), 3);
    assert_eq!(ext_i64(&r, "maxOffset"), 5);
    let r = c.call(pull(&topic, 0, 3, 32, 0, Some("*")));
    assert_eq!(
        r.code,
        response::SUCCESS,
        "the reset is answered once: {:?}",
        r.remark
    );
    let (msgs, err) = ringmq_codec::message::decode_all(&r.body);
    assert!(err.is_none());
    let got: Vec<&[u8]> = msgs.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(got, vec![b"b-0".as_slice(), b"b-1".as_slice()]);
    // Commits are accepted again.
    assert_eq!(c.call(update_offset(&topic, 0, 5)).code, response::SUCCESS);
    assert_eq!(consumer_offset(&addr, GROUP, &topic, 0), Some(5));

    // Without isForce a reset never moves a group forwards; a timestamp of -1 means the end.
    assert_eq!(c.call(update_offset(&topic, 0, 1)).code, response::SUCCESS);
    let body = reset_on(&addr, GROUP, &topic, reset_ms, false);
    assert_eq!(body.offset_table.get(&q0), Some(&1));
    assert_eq!(consumer_offset(&addr, GROUP, &topic, 0), Some(1));
    let body = reset_on(&addr, GROUP, &topic, -1, true);
    assert_eq!(body.offset_table.get(&q0), Some(&5));
    assert_eq!(consumer_offset(&addr, GROUP, &topic, 0), Some(5));
}
