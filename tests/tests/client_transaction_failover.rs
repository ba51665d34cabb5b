//! Transaction check-back across failures (issue 6, spec §3.10, §4.9), against a broker that
//! checks every 300 ms for half messages older than 1 s.
//!
//! - A producer that dies mid-transaction: producer A of group G sends a half message, its
//!   local transaction answers UNKNOW, and A goes away at once (shut down: it unregisters and
//!   its connections close, as far as the broker can tell the same as a crash, which closes
//!   them too). Producer B of the same group, whose check
//!   listener answers COMMIT, stays up. The broker must ask B, and a consumer must see the
//!   message exactly once.
//! - Check counts survive a restart: a half message is checked (never answered) up to
//!   `transactionCheckMax`; the broker is killed with -9 after some checks and restarted. The
//!   checks before and after the restart together stay within the maximum (a count kept in
//!   memory only would grant a fresh set), and the message is then parked.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, assert_exactly_once, create_topic, unique,
    wait_committed_all,
};
use ringmq_codec::codes::{request, response};
use ringmq_codec::{Command, LanguageCode, SerializeType};
use ringmq_tests::RawClient;
use ringmq_tests::broker::{ext_i64, heartbeat, props, send_v2};
use rocketmq_client_rust::{
    ClientConfig, LocalTransactionState, TransactionListener, TransactionMQProducer,
};
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;

const FAST_CHECKS: [&str; 2] = ["transactionCheckInterval=300", "transactionTimeOut=1000"];

/// Executes every local transaction as `execute` and answers every check with `check`,
/// counting the checks.
struct Fixed {
    execute: LocalTransactionState,
    check: LocalTransactionState,
    checks: Arc<AtomicU32>,
}

impl TransactionListener for Fixed {
    fn execute_local_transaction(
        &self,
        _msg: &dyn MessageTrait,
        _arg: Option<&(dyn std::any::Any + Send + Sync)>,
    ) -> LocalTransactionState {
        self.execute
    }

    fn check_local_transaction(&self, _msg: &MessageExt) -> LocalTransactionState {
        self.checks.fetch_add(1, Ordering::SeqCst);
        self.check
    }
}

/// A started transactional producer of `group` with its own client instance name (two
/// producers of one group in one process must not share a client instance).
fn tx_producer(
    env: &Env,
    ns: &str,
    group: &str,
    instance: &str,
    l: Fixed,
) -> TransactionMQProducer {
    let mut config = ClientConfig::new();
    config.set_instance_name(instance.into());
    // The client config first: it replaces the whole config, name server included.
    let mut producer = TransactionMQProducer::builder(env.runtime())
        .client_config(config)
        .producer_group(group.to_owned())
        .name_server_addr(ns.to_owned())
        .transaction_listener(l)
        .build();
    env.block_on(producer.start())
        .unwrap_or_else(|e| panic!("start producer {instance}: {e:?}"));
    producer
}

#[test]
fn a_producer_dying_mid_transaction_is_checked_via_another_of_its_group() {
    let cluster = Cluster::start(1, &FAST_CHECKS);
    let ns = cluster.namesrv_addr();
    let env = Env::new("txfail");
    let topic = unique("TxFailover");
    create_topic(&env, &cluster, &topic, 2);
    let group = unique("tx_group");

    let b_checks = Arc::new(AtomicU32::new(0));
    let mut b = tx_producer(
        &env,
        &ns,
        &group,
        &unique("producer_b"),
        Fixed {
            execute: LocalTransactionState::CommitMessage,
            check: LocalTransactionState::CommitMessage,
            checks: b_checks.clone(),
        },
    );
    // A producer heartbeats only the brokers it has routes to: B sends (and commits) one
    // message of its own, so the broker knows B's connection as one of group G.
    let warmup = Message::builder()
        .topic(topic.as_str())
        .body(b"warm-up".to_vec())
        .build()
        .expect("message");
    let r = env
        .block_on(b.send_message_in_transaction::<(), _>(warmup, None))
        .expect("transactional send by B");
    assert!(r.send_result.is_some(), "{r:?}");

    let a_checks = Arc::new(AtomicU32::new(0));
    let mut a = tx_producer(
        &env,
        &ns,
        &group,
        &unique("producer_a"),
        Fixed {
            execute: LocalTransactionState::Unknown,
            check: LocalTransactionState::Unknown,
            checks: a_checks.clone(),
        },
    );
    let msg = Message::builder()
        .topic(topic.as_str())
        .body(b"in-doubt".to_vec())
        .build()
        .expect("message");
    let r = env
        .block_on(a.send_message_in_transaction::<(), _>(msg, None))
        .expect("transactional send by A");
    assert!(r.send_result.is_some(), "{r:?}");
    // A is gone before any check could reach it (the broker waits 1 s before checking).
    env.block_on(a.shutdown());
    drop(a);

    let inbox = Inbox::default();
    let consumer_group = unique("tx_failover_consumer");
    let mut consumer = common::start_push(
        &env,
        &ns,
        PushOpts::clustering(&consumer_group, &topic),
        &inbox,
    );
    let want = ["in-doubt".to_owned(), "warm-up".to_owned()]
        .into_iter()
        .collect();
    inbox.wait_for_all(
        &want,
        CONSUME_DEADLINE,
        "consumer of the checked-back commit",
    );
    assert!(
        b_checks.load(Ordering::SeqCst) >= 1,
        "the commit came without B being asked"
    );
    wait_committed_all(&cluster.namesrv, &consumer_group, &topic);
    env.block_on(b.shutdown());
    env.block_on(consumer.shutdown());
    assert_exactly_once(&inbox.snapshot(), &want, "consumer");
    let addr = cluster.broker.shard_addr(0).to_string();
    let stored: i64 = (0..2).map(|q| common::max_offset(&addr, &topic, q)).sum();
    assert_eq!(
        stored, 2,
        "the real topic holds each committed message once"
    );
}

/// A connection registered as producer of `test_producer` (the raw heartbeat's group).
fn producer_conn(cluster: &Cluster) -> RawClient {
    let mut c = cluster.broker.shard_client(0);
    let r = c.call(heartbeat(&unique("raw_client"), &unique("idle_group"), &[]));
    assert_eq!(r.code, 0, "heartbeat: {:?}", r.remark);
    c
}

/// Reads frames until `n` CHECK_TRANSACTION_STATE requests for `half` arrived.
fn read_checks(c: &mut RawClient, half: i64, n: u32) {
    let mut seen = 0;
    while seen < n {
        let f = c.read_frame().expect("read").expect("connection open");
        if !f.is_response() && f.code == request::CHECK_TRANSACTION_STATE {
            assert_eq!(ext_i64(&f, "tranStateTableOffset"), half);
            seen += 1;
        }
    }
}

/// GET_MAX_OFFSET of the check-max topic over `c`, counting the checks that arrive on `c`
/// before the answer. The broker sends a check before it parks the message, on this very
/// connection, so every check sent before the parking is counted by the call that sees it.
fn parked_and_checks(c: &mut RawClient) -> (i64, u32) {
    let mut cmd = Command::request(request::GET_MAX_OFFSET)
        .with_ext("topic", "TRANS_CHECK_MAX_TIME_TOPIC")
        .with_ext("queueId", "0");
    cmd.language = LanguageCode::JAVA;
    cmd.serialize = SerializeType::Json;
    cmd.opaque = 1_000_000;
    c.send(&cmd);
    let mut checks = 0;
    loop {
        let f = c.read_frame().expect("read").expect("connection open");
        if f.is_response() && f.opaque == cmd.opaque {
            assert_eq!(f.code, response::SUCCESS, "{:?}", f.remark);
            return (ext_i64(&f, "offset"), checks);
        }
        if !f.is_response() && f.code == request::CHECK_TRANSACTION_STATE {
            checks += 1;
        }
    }
}

#[test]
fn check_counts_survive_a_restart() {
    const MAX: u32 = 4;
    let max_arg = format!("transactionCheckMax={MAX}");
    let mut cluster = Cluster::start(1, &[FAST_CHECKS[0], FAST_CHECKS[1], max_arg.as_str()]);
    let topic = unique("TxCheckCount");
    let mut c = producer_conn(&cluster);
    let p = props(&[
        ("TRAN_MSG", "true"),
        ("PGROUP", "test_producer"),
        ("UNIQ_KEY", &unique("U")),
    ]);
    let r = c.call(send_v2(&topic, 0, b"never-answered", &p).with_ext("f", "4"));
    assert_eq!(r.code, 0, "half send: {:?}", r.remark);
    let half = ext_i64(&r, "queueOffset");
    let before = 2;
    read_checks(&mut c, half, before);
    // More checks may be sent between this read and the kill; they only lower what is left.
    cluster.kill9_broker();
    drop(c);
    cluster.start_broker();

    let mut c = producer_conn(&cluster);
    let end = Instant::now() + CONSUME_DEADLINE;
    let mut after = 0;
    loop {
        let (parked, checks) = parked_and_checks(&mut c);
        after += checks;
        if parked > 0 {
            break;
        }
        assert!(Instant::now() < end, "the half message was never parked");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        before + after <= MAX,
        "{before} checks before the restart and {after} after it: more than \
         transactionCheckMax={MAX}, so the restart forgot the count"
    );
    assert_eq!(
        common::max_offset(&cluster.broker.shard_addr(0).to_string(), &topic, 0),
        0,
        "a parked half message is never committed"
    );
}
