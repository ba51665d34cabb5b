//! A graceful stop (SIGTERM) and restart on the same store keeps topics, consumer offsets and
//! messages.
//!
//! Method: on a topic with 4 queues on each of 2 shards, 100 messages are sent and consumed by
//! group G1, whose offsets the broker confirms (QUERY_CONSUMER_OFFSET = max offset on every
//! queue); 50 more are sent and left unconsumed. The broker is stopped with SIGTERM (it must
//! exit 0 and leave the name server's routes) and started again on the same store. Then:
//! the topic is routed again with the same queues (topics kept); every queue's max offset
//! and G1's stored offset are what they were before the stop (offsets kept); a new group
//! reading from the first offset gets all 150 messages at the queue offsets their sends
//! named (messages kept); and G1 resumes with exactly the 50 unconsumed ones.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, QueueKey, ROUTE_DEADLINE, assert_exactly_once,
    assert_matches_sends, consumer_offset, create_topic, max_offset, route, send_n, start_producer,
    start_push, unique, wait_committed_all, wait_topic_route,
};
use ringmq_tests::wait_until;

/// (max offset, G1's stored offset) per queue, asked of the broker.
fn offsets(cluster: &Cluster, topic: &str, group: &str) -> BTreeMap<QueueKey, (i64, Option<i64>)> {
    let r = route(&cluster.namesrv, topic).expect("topic routed");
    r.read_queues()
        .into_iter()
        .map(|(name, addr, q)| {
            let max = max_offset(&addr, topic, q);
            let committed = consumer_offset(&addr, group, topic, q);
            ((name, q), (max, committed))
        })
        .collect()
}

#[test]
fn sigterm_and_restart_keep_topics_offsets_and_messages() {
    let mut cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("graceful-restart");
    let topic = unique("Restart");
    create_topic(&env, &cluster, &topic, 4);
    let g1 = unique("restart_g1");
    let mut producer = start_producer(&env, &ns, &unique("restart_producer"));

    let consumed = send_n(&env, &producer, &topic, "TagA", "consumed", 100);
    let inbox = Inbox::default();
    let mut opts = PushOpts::clustering(&g1, &topic);
    opts.single_thread = true;
    let mut c = start_push(&env, &ns, opts, &inbox);
    let want_consumed: BTreeSet<String> = consumed.iter().map(|s| s.body.clone()).collect();
    inbox.wait_for_all(&want_consumed, CONSUME_DEADLINE, "G1 before the stop");
    env.block_on(c.shutdown());
    wait_committed_all(&cluster.namesrv, &g1, &topic);

    let pending = send_n(&env, &producer, &topic, "TagA", "pending", 50);
    env.block_on(producer.shutdown());
    let before = offsets(&cluster, &topic, &g1);

    cluster.stop_broker();
    wait_until(
        ROUTE_DEADLINE,
        "the stopped broker's routes are gone",
        || route(&cluster.namesrv, &topic).is_none(),
    );
    cluster.start_broker();
    wait_topic_route(&cluster.namesrv, &topic, 2, 4);
    let after = offsets(&cluster, &topic, &g1);
    assert_eq!(
        after, before,
        "(max offset, G1 offset) per queue changed across a graceful restart"
    );

    let mut all = consumed.clone();
    all.extend(pending.iter().cloned());
    let want_all: BTreeSet<String> = all.iter().map(|s| s.body.clone()).collect();
    let fresh = Inbox::default();
    let mut opts = PushOpts::clustering(&unique("restart_fresh"), &topic);
    opts.single_thread = true;
    let mut c = start_push(&env, &ns, opts, &fresh);
    fresh.wait_for_all(&want_all, CONSUME_DEADLINE, "a new group after the restart");
    env.block_on(c.shutdown());
    assert_exactly_once(
        &fresh.snapshot(),
        &want_all,
        "a new group after the restart",
    );
    assert_matches_sends(&fresh.snapshot(), &all, "a new group after the restart");

    let resumed = Inbox::default();
    let mut opts = PushOpts::clustering(&g1, &topic);
    opts.single_thread = true;
    let mut c = start_push(&env, &ns, opts, &resumed);
    let want_pending: BTreeSet<String> = pending.iter().map(|s| s.body.clone()).collect();
    resumed.wait_for_all(&want_pending, CONSUME_DEADLINE, "G1 after the restart");
    env.block_on(c.shutdown());
    assert_exactly_once(&resumed.snapshot(), &want_pending, "G1 after the restart");
}
