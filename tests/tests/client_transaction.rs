//! Transactional messages (issue 6, spec §3.10, §4.9), against a broker that checks every
//! 300 ms for half messages older than 1 s.
//!
//! - With rocketmq-client-rust's `TransactionMQProducer`: commit → consumed once; rollback →
//!   never consumed; unknown → the broker checks back and the producer's answer decides.
//! - Raw, across kill -9: an unresolved half message survives the crash, the restarted broker
//!   checks back on the producer's new connection (the check carries the real topic in its
//!   body), the answer commits it once (a repeated commit changes nothing), and a rolled-back
//!   half stays resolved through another restart.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CONSUME_DEADLINE, Cluster, Env, create_topic, max_offset, raw_pull_all, unique};
use ringmq_codec::Command;
use ringmq_codec::codes::request;
use ringmq_tests::RawClient;
use ringmq_tests::broker::{ext_i64, heartbeat, props, send_v2};
use rocketmq_client_rust::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQPushConsumer,
    LocalTransactionState, MQPushConsumer, TransactionListener, TransactionMQProducer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;

const FAST_CHECKS: [&str; 2] = ["transactionCheckInterval=300", "transactionTimeOut=1000"];

struct Listener {
    checks: Arc<AtomicU32>,
}

fn decide(body: &str, checking: bool) -> LocalTransactionState {
    if body.starts_with("commit") {
        LocalTransactionState::CommitMessage
    } else if body.starts_with("rollback") {
        LocalTransactionState::RollbackMessage
    } else if !checking {
        LocalTransactionState::Unknown
    } else if body.starts_with("unknown-commit") {
        LocalTransactionState::CommitMessage
    } else {
        LocalTransactionState::RollbackMessage
    }
}

impl TransactionListener for Listener {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn std::any::Any + Send + Sync)>,
    ) -> LocalTransactionState {
        let body = msg
            .get_body()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        decide(&body, false)
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        self.checks.fetch_add(1, Ordering::SeqCst);
        decide(&String::from_utf8_lossy(msg.body_slice()), true)
    }
}

#[test]
fn commit_rollback_and_check_back_decide_visibility() {
    let cluster = Cluster::start(1, &FAST_CHECKS);
    let env = Env::new("tx");
    let ns = cluster.namesrv_addr();
    let topic = unique("TxTopic");
    create_topic(&env, &cluster, &topic, 2);

    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .name_server_addr(ns.clone())
        .consumer_group(unique("tx_consumer"))
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    env.block_on(consumer.subscribe(topic.as_str(), "*"))
        .expect("subscribe");
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _ctx: &ConsumeConcurrentlyContext| {
            for m in msgs {
                sink.lock().expect("sink").push((
                    String::from_utf8_lossy(m.body_slice()).into_owned(),
                    m.topic().to_string(),
                ));
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    env.block_on(consumer.start()).expect("consumer start");

    let checks = Arc::new(AtomicU32::new(0));
    let mut producer = TransactionMQProducer::builder(env.runtime())
        .producer_group(unique("tx_producer"))
        .name_server_addr(ns.clone())
        .transaction_listener(Listener {
            checks: checks.clone(),
        })
        .build();
    env.block_on(producer.start()).expect("producer start");
    let bodies = [
        "commit-0",
        "rollback-0",
        "unknown-commit-0",
        "unknown-rollback-0",
        "commit-1",
        "rollback-1",
        "unknown-commit-1",
        "unknown-rollback-1",
    ];
    for body in bodies {
        let msg = Message::builder()
            .topic(topic.as_str())
            .body(body.as_bytes().to_vec())
            .build()
            .expect("message");
        let r = env
            .block_on(producer.send_message_in_transaction::<(), _>(msg, None))
            .unwrap_or_else(|e| panic!("transactional send of {body}: {e:?}"));
        assert!(r.send_result.is_some(), "{body}: {r:?}");
    }

    let want = [
        "commit-0",
        "commit-1",
        "unknown-commit-0",
        "unknown-commit-1",
    ];
    let end = Instant::now() + CONSUME_DEADLINE;
    loop {
        let have: Vec<String> = got
            .lock()
            .expect("got")
            .iter()
            .map(|g| g.0.clone())
            .collect();
        if want.iter().all(|w| have.iter().any(|h| h == w)) {
            break;
        }
        assert!(
            Instant::now() < end,
            "committed messages missing; have {have:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Wait until every unknown one was checked and resolved, plus a few check rounds.
    let end = Instant::now() + CONSUME_DEADLINE;
    while checks.load(Ordering::SeqCst) < 4 {
        assert!(
            Instant::now() < end,
            "the broker did not check back on all unknown transactions"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(2_000));
    env.block_on(producer.shutdown());
    env.block_on(consumer.shutdown());

    let got = got.lock().expect("got").clone();
    let mut counts = BTreeMap::new();
    for (body, t) in &got {
        assert_eq!(t, &topic, "{body} consumed from another topic");
        *counts.entry(body.clone()).or_insert(0) += 1;
    }
    for w in want {
        assert_eq!(
            counts.get(w),
            Some(&1),
            "{w} consumed {:?} times",
            counts.get(w)
        );
    }
    assert_eq!(
        counts.len(),
        want.len(),
        "rolled back messages consumed: {counts:?}"
    );
    let addr = cluster.broker.shard_addr(0).to_string();
    let stored: i64 = (0..2).map(|q| max_offset(&addr, &topic, q)).sum();
    assert_eq!(
        stored, 4,
        "the real topic holds each committed message once"
    );
}

/// Sends a half message of producer group `test_producer` (the raw heartbeat's) to
/// `topic`/0; returns (half queue offset, physical offset, msgId).
fn send_half(c: &mut RawClient, topic: &str, body: &str) -> (i64, i64, String) {
    let p = props(&[
        ("TRAN_MSG", "true"),
        ("PGROUP", "test_producer"),
        ("UNIQ_KEY", &unique("U")),
    ]);
    let r = c.call(send_v2(topic, 0, body.as_bytes(), &p).with_ext("f", "4"));
    assert_eq!(r.code, 0, "half send: {:?}", r.remark);
    let msg_id = r.ext.get("msgId").expect("msgId").to_owned();
    let (_, phys) = ringmq_codec::message::decode_offset_msg_id(&msg_id).expect("offsetMsgId");
    (ext_i64(&r, "queueOffset"), phys, msg_id)
}

fn end_tx(half: i64, phys: i64, state: i32, from_check: bool) -> Command {
    let mut cmd = Command::request(request::END_TRANSACTION)
        .with_ext("producerGroup", "test_producer")
        .with_ext("tranStateTableOffset", half.to_string())
        .with_ext("commitLogOffset", phys.to_string())
        .with_ext("commitOrRollback", state.to_string())
        .with_ext("fromTransactionCheck", from_check.to_string())
        .with_ext("msgId", "x");
    cmd.language = ringmq_codec::LanguageCode::JAVA;
    cmd
}

/// A connection registered as producer of `test_producer`.
fn producer_conn(cluster: &Cluster) -> RawClient {
    let mut c = cluster.broker.shard_client(0);
    let r = c.call(heartbeat(&unique("raw_client"), &unique("idle_group"), &[]));
    assert_eq!(r.code, 0, "heartbeat: {:?}", r.remark);
    c
}

#[test]
fn half_messages_survive_kill9_and_are_checked_back() {
    let mut cluster = Cluster::start(1, &FAST_CHECKS);
    let topic = unique("TxRaw");
    let addr = cluster.broker.shard_addr(0).to_string();
    let mut c = producer_conn(&cluster);
    let (half_a, phys_a, _) = send_half(&mut c, &topic, "to-commit");
    let (half_b, phys_b, _) = send_half(&mut c, &topic, "to-rollback");
    assert_eq!(
        max_offset(&addr, &topic, 0),
        0,
        "a half message is invisible"
    );
    // Roll back b before the crash.
    let r = c.call(end_tx(half_b, phys_b, 12, false));
    assert_eq!(r.code, 0, "{:?}", r.remark);
    drop(c);

    cluster.kill9_broker();
    cluster.start_broker();
    let mut c = producer_conn(&cluster);
    // The restarted broker asks about a (b is resolved) on the new connection.
    let end = Instant::now() + CONSUME_DEADLINE;
    let check = loop {
        assert!(
            Instant::now() < end,
            "no CHECK_TRANSACTION_STATE after the restart"
        );
        let f = c.read_frame().expect("read").expect("connection open");
        if !f.is_response() && f.code == request::CHECK_TRANSACTION_STATE {
            break f;
        }
    };
    assert_eq!(ext_i64(&check, "tranStateTableOffset"), half_a);
    assert_eq!(ext_i64(&check, "commitLogOffset"), phys_a);
    let (m, _) = ringmq_codec::message::decode(&check.body).expect("the check body decodes");
    assert_eq!(m.topic, topic, "the check names the real topic");
    assert_eq!(m.queue_id, 0);
    assert_eq!(m.property("PGROUP"), Some("test_producer"));
    assert_eq!(m.body, b"to-commit");

    let r = c.call(end_tx(half_a, phys_a, 8, true));
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(max_offset(&addr, &topic, 0), 1, "commit is visible");
    // A repeated commit (a late duplicate answer) and a late commit of the rolled-back one
    // change nothing.
    assert_eq!(c.call(end_tx(half_a, phys_a, 8, true)).code, 0);
    assert_eq!(c.call(end_tx(half_b, phys_b, 8, true)).code, 0);
    assert_eq!(max_offset(&addr, &topic, 0), 1, "committed exactly once");

    cluster.kill9_broker();
    cluster.start_broker();
    let mut c = producer_conn(&cluster);
    assert_eq!(c.call(end_tx(half_a, phys_a, 8, true)).code, 0);
    assert_eq!(c.call(end_tx(half_b, phys_b, 8, true)).code, 0);
    assert_eq!(
        max_offset(&addr, &topic, 0),
        1,
        "resolutions survive a restart"
    );

    let got = raw_pull_all(&addr, &unique("probe"), &topic, 0, "*");
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.body, b"to-commit");
    assert_eq!(m.prepared_transaction_offset, phys_a);
    assert_eq!(m.sys_flag & 0xC, 0x8, "COMMIT transaction type");
    for key in ["REAL_TOPIC", "REAL_QID", "TRAN_MSG"] {
        assert_eq!(m.property(key), None, "{key} left on the committed message");
    }
}

#[test]
fn a_half_message_checked_too_often_is_parked() {
    let cluster = Cluster::start(
        1,
        &[FAST_CHECKS[0], FAST_CHECKS[1], "transactionCheckMax=2"],
    );
    let topic = unique("TxCheckMax");
    let addr = cluster.broker.shard_addr(0).to_string();
    let mut c = producer_conn(&cluster);
    let (half, phys, _) = send_half(&mut c, &topic, "never-answered");
    // Read the checks without answering them; after transactionCheckMax of them the broker
    // gives up and parks the message.
    let mut checks = 0;
    while checks < 2 {
        let f = c.read_frame().expect("read").expect("connection open");
        if !f.is_response() && f.code == request::CHECK_TRANSACTION_STATE {
            assert_eq!(ext_i64(&f, "tranStateTableOffset"), half);
            checks += 1;
        }
    }
    let end = Instant::now() + CONSUME_DEADLINE;
    while max_offset(&addr, "TRANS_CHECK_MAX_TIME_TOPIC", 0) == 0 {
        assert!(Instant::now() < end, "the half message was never parked");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Resolved by parking: a late commit changes nothing.
    assert_eq!(c.call(end_tx(half, phys, 8, true)).code, 0);
    assert_eq!(
        max_offset(&addr, &topic, 0),
        0,
        "a parked half message is never committed"
    );
}
