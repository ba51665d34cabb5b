//! Acceptance: the stock quickstart flow with rocketmq-client-rust, unmodified, against
//! `ringmq-namesrv` + `ringmq-broker` started the way `./start.sh` starts them (broker
//! defaults; only ports and the store directory are made free/temporary).
//!
//! Method: a producer sends 1 000 messages with tag `TagA` to `TopicTest` by sync send, through
//! the name server, with no topic created beforehand (auto-create from TBW102, spec §7.1
//! step 2). Then a push consumer with the client's defaults (CLUSTERING, concurrent listener,
//! default consume-from-where, which is what the client's and the seeds' quickstart consumers
//! use) subscribes `*` and must receive every one of them exactly once. It starts after the
//! producer so the topic's route exists (no 30 s route poll); it still gets everything
//! because a new group on a young topic starts at offset 0 (spec §3.6, pitfall 13).

mod common;

use std::collections::BTreeSet;

use common::{CONSUME_DEADLINE, Env, Inbox, ROUTE_DEADLINE, assert_exactly_once, route, unique};
use ringmq_tests::{Process, TempDir, free_port, wait_until};
use rocketmq_client_rust::{DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer, SendStatus};
use rocketmq_model::common::message::message_single::Message;

const TOPIC: &str = "TopicTest";
const TAG: &str = "TagA";
const COUNT: usize = 1_000;

#[test]
fn quickstart_1000_tagged_messages_reach_a_star_consumer() {
    let namesrv = Process::namesrv(&[]);
    let store = TempDir::new("quickstart-store");
    // start.sh: `ringmq-broker -n 127.0.0.1:9876 storePathRootDir=./data`; the metrics port
    // (default listenPort − 1) is moved to a free port like the listen port itself.
    // Not the harness's `Process::broker`: that one pins brokerIP1=127.0.0.1, and this test
    // keeps every default, so clients reach the broker at the address it advertises by
    // itself (the host's first non-loopback IPv4).
    let ns_arg = namesrv.addr().to_string();
    let store_arg = format!("storePathRootDir={}", store.path().display());
    let metrics_arg = format!("metricsPort={}", free_port());
    let broker = Process::start("ringmq-broker", "listenPort", move |_dir| {
        vec![
            "-n".to_owned(),
            ns_arg.clone(),
            store_arg.clone(),
            metrics_arg.clone(),
        ]
    });
    wait_until(ROUTE_DEADLINE, "the broker registered TBW102", || {
        route(&namesrv, "TBW102").is_some_and(|r| !r.brokers.is_empty())
    });
    let ns = namesrv.addr().to_string();

    let env = Env::new("quickstart");
    let mut producer = DefaultMQProducer::builder(env.runtime())
        .producer_group(unique("please_rename_unique_group_name"))
        .name_server_addr(ns.clone())
        .build();
    env.block_on(producer.start()).expect("producer start");
    let mut want = BTreeSet::new();
    for i in 0..COUNT {
        let body = format!("Hello RocketMQ {i}");
        let msg = Message::builder()
            .topic(TOPIC)
            .tags(TAG)
            .body(body.clone().into_bytes())
            .build()
            .expect("message");
        let r = env
            .block_on(producer.send_with_timeout(msg, 3_000))
            .unwrap_or_else(|e| panic!("send #{i} failed: {e:?}"))
            .unwrap_or_else(|| panic!("send #{i} returned no result"));
        assert_eq!(r.send_status, SendStatus::SendOk, "send #{i}: {r:?}");
        want.insert(body);
    }
    env.block_on(producer.shutdown());
    assert!(
        route(&namesrv, TOPIC).is_some(),
        "{TOPIC} was auto-created but is not in the name server's routes"
    );

    let inbox = Inbox::default();
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .consumer_group(unique("please_rename_unique_group_name_4"))
        .name_server_addr(ns)
        .build();
    env.block_on(consumer.subscribe(TOPIC, "*"))
        .expect("subscribe");
    consumer.register_message_listener_concurrently(inbox.listener());
    env.block_on(consumer.start()).expect("consumer start");

    inbox.wait_for_all(&want, CONSUME_DEADLINE, "quickstart consumer");
    env.block_on(consumer.shutdown());

    let got = inbox.snapshot();
    assert_exactly_once(&got, &want, "quickstart consumer");
    for r in &got {
        assert_eq!(r.tags.as_deref(), Some(TAG), "tag of {:?}", r.body);
        assert_eq!(r.topic, TOPIC);
    }
    drop(broker);
}
