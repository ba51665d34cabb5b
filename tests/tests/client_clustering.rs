//! One CLUSTERING push consumer receives every message exactly once, each queue in offset
//! order, each message at the (broker, queue, offset) its send result named.
//!
//! Method: a topic with 4 queues on each of 2 shards is created, then the consumer starts
//! (CONSUME_FROM_FIRST_OFFSET, one consume worker so the listener sees pull order) and waits
//! until its rebalance has taken all 8 queues, so its pulls are parked in long polling when
//! the producer starts. 200 messages are then sent synchronously; they must arrive through
//! the long-poll wake-ups (spec §3.4 step 6) exactly once and in queue order.

mod common;

use std::collections::BTreeSet;

use common::{
    Assignment, CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, ROUTE_DEADLINE,
    assert_exactly_once, assert_matches_sends, assert_queue_order, create_topic, send_n,
    start_producer, start_push, unique,
};
use ringmq_tests::wait_until;

const COUNT: usize = 200;

#[test]
fn clustering_consumer_gets_each_message_once_in_queue_order() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("clustering");
    let topic = unique("Clustering");
    let route = create_topic(&env, &cluster, &topic, 4);
    let all_queues: BTreeSet<(String, i32)> = route
        .read_queues()
        .into_iter()
        .map(|(name, _, q)| (name, q))
        .collect();
    assert_eq!(all_queues.len(), 8);

    let inbox = Inbox::default();
    let assignment = Assignment::new(&topic);
    let mut opts = PushOpts::clustering(&unique("clustering_group"), &topic);
    opts.single_thread = true;
    opts.assignment = Some(assignment.clone());
    let mut consumer = start_push(&env, &ns, opts, &inbox);
    wait_until(ROUTE_DEADLINE, "the consumer owns all 8 queues", || {
        assignment.current().as_ref() == Some(&all_queues)
    });

    let mut producer = start_producer(&env, &ns, &unique("clustering_producer"));
    let sent = send_n(&env, &producer, &topic, "TagA", "clustering", COUNT);
    let used: BTreeSet<(String, i32)> = sent
        .iter()
        .map(|s| (s.broker.clone(), s.queue_id))
        .collect();
    assert_eq!(used, all_queues, "round-robin sends reach every queue");

    let want: BTreeSet<String> = sent.iter().map(|s| s.body.clone()).collect();
    inbox.wait_for_all(&want, CONSUME_DEADLINE, "clustering consumer");
    env.block_on(producer.shutdown());
    env.block_on(consumer.shutdown());

    let got = inbox.snapshot();
    assert_exactly_once(&got, &want, "clustering consumer");
    assert_queue_order(&got, "clustering consumer");
    assert_matches_sends(&got, &sent, "clustering consumer");
}
