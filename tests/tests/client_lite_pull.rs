//! The lite pull consumer (`DefaultLitePullConsumer`, subscribe mode) polls every message
//! exactly once, each queue in offset order, and its commit reaches the broker.
//!
//! Method: 150 messages are sent to a topic with 4 queues on each of 2 shards; a lite pull
//! consumer (CLUSTERING, CONSUME_FROM_FIRST_OFFSET) subscribes `*` and polls until it has
//! them all. Lite pull carries the subscription in every LITE_PULL_MESSAGE (spec §7.6), so
//! this also covers pulls whose expression travels with the request. After `commit_sync` and
//! shutdown, the broker's stored offsets of the group (QUERY_CONSUMER_OFFSET) must equal the
//! max offsets of all queues.
//!
//! The long-poll hold is shortened from the client's 20 s to 1 s (`brokerSuspendMaxTimeMillis`):
//! the client's shutdown does not cancel a parked LITE_PULL_MESSAGE, it waits for each pull
//! task up to 5 s, which adds ~20 s to the test otherwise. The broker must then answer every
//! parked pull at its 1 s deadline (spec §3.4 step 6b) for the consumer to keep polling.

mod common;

use std::collections::BTreeSet;
use std::time::Instant;

use common::{
    CONSUME_DEADLINE, Cluster, Env, Received, assert_exactly_once, assert_matches_sends,
    assert_queue_order, create_topic, send_n, start_producer, unique, wait_committed_all,
};
use rocketmq_client_rust::DefaultLitePullConsumer;
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;

const COUNT: usize = 150;

#[test]
fn lite_pull_consumer_polls_everything_once_and_commits() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("lite-pull");
    let topic = unique("LitePull");
    create_topic(&env, &cluster, &topic, 4);
    let mut producer = start_producer(&env, &ns, &unique("lite_pull_producer"));
    let sent = send_n(&env, &producer, &topic, "TagA", "lite", COUNT);
    env.block_on(producer.shutdown());
    let want: BTreeSet<String> = sent.iter().map(|s| s.body.clone()).collect();

    let group = unique("lite_pull_group");
    let consumer = DefaultLitePullConsumer::builder(env.runtime())
        .consumer_group(group.clone())
        .name_server_addr(ns.clone())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .broker_suspend_max_time_millis(1_000)
        .build()
        .expect("build lite pull consumer");
    env.block_on(consumer.subscribe_with_expression(&topic, "*"))
        .expect("subscribe");
    env.block_on(consumer.start())
        .expect("start lite pull consumer");

    let mut got: Vec<Received> = Vec::new();
    let end = Instant::now() + CONSUME_DEADLINE;
    loop {
        let have: BTreeSet<&str> = got.iter().map(|r| r.body.as_str()).collect();
        if want.iter().all(|b| have.contains(b.as_str())) {
            break;
        }
        assert!(
            Instant::now() < end,
            "lite pull: {} of {} messages after {CONSUME_DEADLINE:?}",
            have.len(),
            want.len()
        );
        for m in env.block_on(consumer.poll_with_timeout(1_000)) {
            got.push(Received::from_ext(&m));
        }
    }
    env.block_on(consumer.commit_sync());
    env.block_on(consumer.shutdown());

    assert_exactly_once(&got, &want, "lite pull consumer");
    assert_queue_order(&got, "lite pull consumer");
    assert_matches_sends(&got, &sent, "lite pull consumer");
    wait_committed_all(&cluster.namesrv, &group, &topic);
}
