//! BROADCASTING: every consumer of the group receives every message (spec §7.3 step 6: each
//! client takes all queues, offsets are kept locally).
//!
//! Method: 120 messages are sent to a topic with 4 queues on each of 2 shards, then two
//! BROADCASTING push consumers of one group start (CONSUME_FROM_FIRST_OFFSET). Broadcasting
//! consumers keep the configured instance name, so the two get distinct ones, which also
//! keeps their local offset files apart (removed at the end). Each must receive all 120
//! exactly once, in queue order.

mod common;

use std::collections::BTreeSet;

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, assert_exactly_once, assert_queue_order,
    create_topic, remove_local_offsets, send_n, start_producer, start_push, unique,
};
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;

const COUNT: usize = 120;

#[test]
fn each_broadcasting_consumer_gets_every_message() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("broadcasting");
    let topic = unique("Broadcasting");
    create_topic(&env, &cluster, &topic, 4);

    let mut producer = start_producer(&env, &ns, &unique("broadcast_producer"));
    let sent = send_n(&env, &producer, &topic, "TagA", "bcast", COUNT);
    env.block_on(producer.shutdown());
    let want: BTreeSet<String> = sent.iter().map(|s| s.body.clone()).collect();

    let group = unique("broadcast_group");
    let instances = [unique("ringmq_bcast_a"), unique("ringmq_bcast_b")];
    let inboxes = [Inbox::default(), Inbox::default()];
    let mut consumers = Vec::new();
    for (instance, inbox) in instances.iter().zip(&inboxes) {
        let mut opts = PushOpts::clustering(&group, &topic);
        opts.model = MessageModel::Broadcasting;
        opts.instance = Some(instance.clone());
        opts.single_thread = true;
        consumers.push(start_push(&env, &ns, opts, inbox));
    }
    for (i, inbox) in inboxes.iter().enumerate() {
        inbox.wait_for_all(&want, CONSUME_DEADLINE, &format!("broadcast consumer {i}"));
    }
    for mut c in consumers {
        env.block_on(c.shutdown());
    }
    for instance in &instances {
        remove_local_offsets(instance);
    }
    for (i, inbox) in inboxes.iter().enumerate() {
        let got = inbox.snapshot();
        let who = format!("broadcast consumer {i}");
        assert_exactly_once(&got, &want, &who);
        assert_queue_order(&got, &who);
    }
}
