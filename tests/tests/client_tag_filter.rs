//! A subscription `TagA || TagB` delivers exactly the TagA and TagB messages (spec §6).
//!
//! Method: 120 messages cycle through tags TagA, TagB, TagC and no tag over a topic with 4
//! queues on each of 2 shards. A push consumer subscribed `TagA || TagB` must receive each
//! TagA/TagB message exactly once and nothing else. Because the client also re-filters by tag
//! name (spec §6, "client re-filter"), the consumer alone cannot tell whether the broker
//! filtered; so the test also pulls every queue raw with the same expression and requires
//! the broker to return only TagA/TagB messages, all of them.

mod common;

use std::collections::BTreeSet;

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, assert_exactly_once, assert_queue_order,
    create_topic, message, raw_pull_all, send_ok, start_producer, start_push, unique,
};

const COUNT: usize = 120;
const EXPRESSION: &str = "TagA || TagB";

fn tag_of(i: usize) -> Option<&'static str> {
    [Some("TagA"), Some("TagB"), Some("TagC"), None][i % 4]
}

#[test]
fn tag_a_or_tag_b_subscription_gets_only_those_tags() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("tag-filter");
    let topic = unique("TagFilter");
    let route = create_topic(&env, &cluster, &topic, 4);

    let mut producer = start_producer(&env, &ns, &unique("tag_filter_producer"));
    let mut want = BTreeSet::new();
    for i in 0..COUNT {
        let body = format!("tagged-{i}-{}", tag_of(i).unwrap_or("none"));
        send_ok(&env, &producer, message(&topic, tag_of(i), None, &body));
        if matches!(tag_of(i), Some("TagA" | "TagB")) {
            want.insert(body);
        }
    }
    env.block_on(producer.shutdown());

    let inbox = Inbox::default();
    let mut opts = PushOpts::clustering(&unique("tag_filter_group"), &topic);
    opts.expression = EXPRESSION.to_owned();
    opts.single_thread = true;
    let mut consumer = start_push(&env, &ns, opts, &inbox);
    inbox.wait_for_all(&want, CONSUME_DEADLINE, "TagA || TagB consumer");
    env.block_on(consumer.shutdown());
    let got = inbox.snapshot();
    assert_exactly_once(&got, &want, "TagA || TagB consumer");
    assert_queue_order(&got, "TagA || TagB consumer");
    for r in &got {
        assert!(
            matches!(r.tags.as_deref(), Some("TagA" | "TagB")),
            "{:?} delivered with tag {:?}",
            r.body,
            r.tags
        );
    }

    // The broker's own filtering, without the client's second pass.
    let raw_group = unique("tag_filter_raw");
    let mut pulled = Vec::new();
    for (_, addr, q) in route.read_queues() {
        for m in raw_pull_all(&addr, &raw_group, &topic, q, EXPRESSION) {
            assert!(
                matches!(m.tags(), Some("TagA" | "TagB")),
                "the broker returned a message tagged {:?} for {EXPRESSION:?} ({}/{q} offset {})",
                m.tags(),
                addr,
                m.queue_offset
            );
            pulled.push(String::from_utf8_lossy(&m.body).into_owned());
        }
    }
    let pulled_set: BTreeSet<String> = pulled.iter().cloned().collect();
    assert_eq!(
        pulled.len(),
        pulled_set.len(),
        "raw pull returned duplicates"
    );
    assert_eq!(pulled_set, want, "raw pull with {EXPRESSION:?}");
}
