//! Two push consumers in one CLUSTERING group split the topic's queues between them: both
//! receive messages, each only from its own queues, and together they receive every message
//! exactly once.
//!
//! Method: 8 queues (4 on each of 2 shards). Consumer A starts and takes all 8; consumer B
//! joins. B rebalances at once; A learns of B from NOTIFY_CONSUMER_IDS_CHANGED or, at the
//! latest, from its 20 s periodic rebalance (spec §7.3), so the test waits up to 45 s until
//! the two assignments are disjoint halves (AllocateMessageQueueAveragely: 4 + 4) that cover
//! all queues. Only then are 200 messages sent, so no queue is pulled by both consumers while
//! they arrive and any message delivered twice is a real duplicate.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    Assignment, CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, ROUTE_DEADLINE,
    assert_exactly_once, assert_queue_order, create_topic, send_n, start_producer, start_push,
    unique,
};
use ringmq_tests::wait_until;

const COUNT: usize = 200;

#[test]
fn two_consumers_in_one_group_split_the_queues() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("two-consumers");
    let topic = unique("TwoConsumers");
    let route = create_topic(&env, &cluster, &topic, 4);
    let all: BTreeSet<(String, i32)> = route
        .read_queues()
        .into_iter()
        .map(|(name, _, q)| (name, q))
        .collect();
    let group = unique("two_consumers_group");

    let (inbox_a, inbox_b) = (Inbox::default(), Inbox::default());
    let (asg_a, asg_b) = (Assignment::new(&topic), Assignment::new(&topic));
    let mut opts = PushOpts::clustering(&group, &topic);
    opts.assignment = Some(asg_a.clone());
    opts.single_thread = true;
    let mut a = start_push(&env, &ns, opts, &inbox_a);
    wait_until(ROUTE_DEADLINE, "consumer A owns all queues", || {
        asg_a.current().as_ref() == Some(&all)
    });

    let mut opts = PushOpts::clustering(&group, &topic);
    opts.assignment = Some(asg_b.clone());
    opts.single_thread = true;
    let mut b = start_push(&env, &ns, opts, &inbox_b);
    wait_until(
        Duration::from_secs(45),
        "A and B hold disjoint halves of the queues",
        || match (asg_a.current(), asg_b.current()) {
            (Some(qa), Some(qb)) => {
                qa.len() == all.len() / 2
                    && qb.len() == all.len() / 2
                    && qa.is_disjoint(&qb)
                    && qa.union(&qb).cloned().collect::<BTreeSet<_>>() == all
            }
            _ => false,
        },
    );
    let (qa, qb) = (
        asg_a.current().expect("A assigned"),
        asg_b.current().expect("B assigned"),
    );

    let mut producer = start_producer(&env, &ns, &unique("two_consumers_producer"));
    let sent = send_n(&env, &producer, &topic, "TagA", "split", COUNT);
    let want: BTreeSet<String> = sent.iter().map(|s| s.body.clone()).collect();

    wait_until(
        CONSUME_DEADLINE,
        "A and B together received all messages",
        || {
            let mut have = inbox_a.distinct_bodies();
            have.extend(inbox_b.distinct_bodies());
            want.is_subset(&have)
        },
    );
    env.block_on(producer.shutdown());
    env.block_on(a.shutdown());
    env.block_on(b.shutdown());

    let (got_a, got_b) = (inbox_a.snapshot(), inbox_b.snapshot());
    assert!(!got_a.is_empty(), "consumer A received nothing");
    assert!(!got_b.is_empty(), "consumer B received nothing");
    for (name, got, mine) in [("A", &got_a, &qa), ("B", &got_b, &qb)] {
        for r in got.iter() {
            assert!(
                mine.contains(&(r.broker.clone(), r.queue_id)),
                "consumer {name} received {:?} from {}/{}, which is not one of its queues {mine:?}",
                r.body,
                r.broker,
                r.queue_id
            );
        }
        assert_queue_order(got, name);
    }
    let mut union = got_a.clone();
    union.extend(got_b.iter().cloned());
    assert_exactly_once(&union, &want, "A and B together");
}
