//! The four ways rocketmq-client-rust sends (sync, async with a callback, oneway, batch), each
//! with tags and keys, all consumed exactly once by one CLUSTERING push consumer.
//!
//! Method: a topic with 4 queues on each of 2 shards (two logical brokers) is created first.
//! 40 messages go out per mode; sync and async sends must report SEND_OK, a batch send one
//! SEND_OK per batch, oneway sends report nothing (spec §7.1 step 6: one attempt, no answer)
//! but on a healthy local broker every one of them must still arrive. The consumer (one
//! consume worker) must then deliver each of the 160 bodies exactly once, with the tag and
//! key they were sent with, in queue-offset order per queue, and the sync/async ones at the
//! queue and offset their send result named.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, PushOpts, SEND_TIMEOUT_MS, Sent, assert_exactly_once,
    assert_matches_sends, assert_queue_order, create_topic, message, send_ok, start_producer,
    start_push, unique,
};
use rocketmq_client_rust::SendStatus;

const PER_MODE: usize = 40;
const BATCH: usize = 10;

fn tag_of(i: usize) -> &'static str {
    ["TagA", "TagB", "TagC"][i % 3]
}

#[test]
fn sync_async_oneway_and_batch_sends_are_each_consumed_once() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("send-modes");
    let topic = unique("SendModes");
    create_topic(&env, &cluster, &topic, 4);
    let producer = start_producer(&env, &ns, &unique("send_modes_producer"));

    let mut want = BTreeSet::new();
    let mut expected_tag_key = Vec::new();
    let mut acked: Vec<Sent> = Vec::new();

    // Sync.
    for i in 0..PER_MODE {
        let (body, key) = (format!("sync-{i}"), format!("sync-key-{i}"));
        acked.push(send_ok(
            &env,
            &producer,
            message(&topic, Some(tag_of(i)), Some(&key), &body),
        ));
        want.insert(body.clone());
        expected_tag_key.push((body, tag_of(i), key));
    }

    // Async: the call returns once the request is on its way; the callback reports the result.
    type Outcome = (String, Result<Sent, String>);
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    for i in 0..PER_MODE {
        let (body, key) = (format!("async-{i}"), format!("async-key-{i}"));
        let sink = Arc::clone(&outcomes);
        let b = body.clone();
        env.block_on(producer.send_with_callback_timeout(
            message(&topic, Some(tag_of(i)), Some(&key), &body),
            move |result, error| {
                let outcome = match (result, error) {
                    (Some(r), _) if r.send_status == SendStatus::SendOk => {
                        Ok(Sent::from_result(&b, r))
                    }
                    (Some(r), _) => Err(format!("status {:?}", r.send_status)),
                    (None, Some(e)) => Err(e.to_string()),
                    (None, None) => Err("callback without result or error".to_owned()),
                };
                sink.lock().expect("outcomes").push((b.clone(), outcome));
            },
            SEND_TIMEOUT_MS,
        ))
        .unwrap_or_else(|e| panic!("async send of {body} not accepted: {e:?}"));
        want.insert(body.clone());
        expected_tag_key.push((body, tag_of(i), key));
    }
    let end = Instant::now() + Duration::from_secs(30);
    while outcomes.lock().expect("outcomes").len() < PER_MODE {
        assert!(
            Instant::now() < end,
            "async send callbacks missing after 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for (body, outcome) in outcomes.lock().expect("outcomes").iter() {
        match outcome {
            Ok(sent) => acked.push(sent.clone()),
            Err(e) => panic!("async send of {body} failed: {e:?}"),
        }
    }

    // Oneway.
    for i in 0..PER_MODE {
        let (body, key) = (format!("oneway-{i}"), format!("oneway-key-{i}"));
        env.block_on(producer.send_oneway(message(&topic, Some(tag_of(i)), Some(&key), &body)))
            .unwrap_or_else(|e| panic!("oneway send of {body}: {e:?}"));
        want.insert(body.clone());
        expected_tag_key.push((body, tag_of(i), key));
    }

    // Batch (SEND_BATCH_MESSAGE, spec §4.6).
    for b in 0..PER_MODE / BATCH {
        let mut batch = Vec::new();
        for j in 0..BATCH {
            let i = b * BATCH + j;
            let (body, key) = (format!("batch-{i}"), format!("batch-key-{i}"));
            batch.push(message(&topic, Some(tag_of(i)), Some(&key), &body));
            want.insert(body.clone());
            expected_tag_key.push((body, tag_of(i), key));
        }
        let r = env
            .block_on(producer.send_batch_with_timeout(batch, SEND_TIMEOUT_MS))
            .unwrap_or_else(|e| panic!("batch send #{b} failed: {e:?}"));
        assert_eq!(r.send_status, SendStatus::SendOk, "batch #{b}: {r:?}");
    }

    let inbox = Inbox::default();
    let mut opts = PushOpts::clustering(&unique("send_modes_consumer"), &topic);
    opts.single_thread = true;
    let mut consumer = start_push(&env, &ns, opts, &inbox);
    inbox.wait_for_all(&want, CONSUME_DEADLINE, "send-modes consumer");
    let mut producer = producer;
    env.block_on(producer.shutdown());
    env.block_on(consumer.shutdown());

    let got = inbox.snapshot();
    assert_exactly_once(&got, &want, "send-modes consumer");
    assert_queue_order(&got, "send-modes consumer");
    assert_matches_sends(&got, &acked, "send-modes consumer");
    for (body, tag, key) in &expected_tag_key {
        let r = got.iter().find(|r| &r.body == body).expect("received");
        assert_eq!(r.tags.as_deref(), Some(*tag), "tag of {body}");
        assert!(
            r.keys.iter().any(|k| k == key),
            "keys of {body}: {:?}, expected {key}",
            r.keys
        );
        assert!(r.uniq_key.is_some(), "{body} arrived without UNIQ_KEY");
    }
}
