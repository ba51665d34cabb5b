//! A CLUSTERING consumer that stops and starts again resumes from the offsets its group
//! committed: the second session receives exactly the messages sent after the first one
//! had committed, none of the earlier ones.
//!
//! Method: 100 messages are sent and consumed by session 1 (CONSUME_FROM_FIRST_OFFSET), which
//! then shuts down (the client persists offsets with UPDATE_CONSUMER_OFFSET, oneway, spec
//! §3.6). The test then asks the broker itself (QUERY_CONSUMER_OFFSET vs GET_MAX_OFFSET on
//! every queue) until the group's stored offset equals the max offset everywhere. So nothing
//! is legitimately uncommitted and the client's at-least-once redelivery of an uncommitted
//! tail does not apply: any old message in session 2 is a broker error. Then 50 more are sent
//! and session 2 (same group; CONSUME_FROM_FIRST_OFFSET, which must be ignored because an
//! offset exists) must deliver exactly those 50. Waiting for the 50 suffices to rule out old
//! ones: each queue is delivered in offset order, so an old message would come first.

mod common;

use std::collections::BTreeSet;

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, assert_exactly_once, assert_queue_order,
    create_topic, send_n, start_producer, start_push, unique, wait_committed_all,
};

#[test]
fn restarted_consumer_resumes_from_the_committed_offset() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("resume");
    let topic = unique("Resume");
    create_topic(&env, &cluster, &topic, 4);
    let group = unique("resume_group");
    let mut producer = start_producer(&env, &ns, &unique("resume_producer"));

    let first = send_n(&env, &producer, &topic, "TagA", "first", 100);
    let want_first: BTreeSet<String> = first.iter().map(|s| s.body.clone()).collect();
    let inbox1 = Inbox::default();
    let mut opts = PushOpts::clustering(&group, &topic);
    opts.single_thread = true;
    let mut session1 = start_push(&env, &ns, opts, &inbox1);
    inbox1.wait_for_all(&want_first, CONSUME_DEADLINE, "session 1");
    env.block_on(session1.shutdown());
    assert_exactly_once(&inbox1.snapshot(), &want_first, "session 1");
    wait_committed_all(&cluster.namesrv, &group, &topic);

    let second = send_n(&env, &producer, &topic, "TagA", "second", 50);
    env.block_on(producer.shutdown());
    let want_second: BTreeSet<String> = second.iter().map(|s| s.body.clone()).collect();
    let inbox2 = Inbox::default();
    let mut opts = PushOpts::clustering(&group, &topic);
    opts.single_thread = true;
    let mut session2 = start_push(&env, &ns, opts, &inbox2);
    inbox2.wait_for_all(&want_second, CONSUME_DEADLINE, "session 2");
    env.block_on(session2.shutdown());

    let got = inbox2.snapshot();
    assert_exactly_once(
        &got,
        &want_second,
        "session 2 (must not see session 1's messages)",
    );
    assert_queue_order(&got, "session 2");
    wait_committed_all(&cluster.namesrv, &group, &topic);
}
