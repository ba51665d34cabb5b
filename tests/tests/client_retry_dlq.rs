//! Retry and dead letters (issue 6, spec §3.8, §4.8, §7.4), against a broker with short delay
//! levels `1s 1s 1s 2s 3s 4s` (so retry rounds 1, 2, 3 wait 1 s, 2 s, 3 s: levels 3, 4, 5).
//!
//! - With rocketmq-client-rust: a listener that always answers "reconsume later" for some
//!   messages sees each of them exactly `1 + max` times (reconsumeTimes 0, 1, …, max), under
//!   its original topic, with gaps no shorter than the round's delay (an ordering fact); then
//!   the message is in `%DLQ%<group>` (routed by the namesrv at once) with its original topic,
//!   UNIQ_KEY, origin id and reconsume count; the messages it accepts arrive once.
//! - Raw, the client's fallback (§7.4): a send to `%RETRY%<group>` with DELAY waits its level;
//!   one whose reconsume count passed the max goes to the DLQ at once.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    CONSUME_DEADLINE, Cluster, Env, SEND_TIMEOUT_MS, create_topic, max_offset, message,
    raw_pull_all, route, start_producer, unique, wait_topic_route,
};
use ringmq_tests::broker::{props, send_v2};
use rocketmq_client_rust::{
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQPushConsumer, MQPushConsumer,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;

const LEVELS: &str = "messageDelayLevel=1s 1s 1s 2s 3s 4s";
const MAX: i32 = 3;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone)]
struct Seen {
    body: String,
    topic: String,
    reconsume: i32,
    at: i64,
    uniq: Option<String>,
}

#[test]
fn reconsume_later_retries_with_growing_delay_then_dead_letters() {
    let cluster = Cluster::start(1, &[LEVELS]);
    let env = Env::new("retry");
    let ns = cluster.namesrv_addr();
    let topic = unique("RetryTopic");
    let group = unique("retry_group");
    create_topic(&env, &cluster, &topic, 2);

    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let sink = seen.clone();
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .name_server_addr(ns.clone())
        .consumer_group(group.clone())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .consume_message_batch_max_size(1)
        .max_reconsume_times(MAX)
        .build();
    env.block_on(consumer.subscribe(topic.as_str(), "*"))
        .expect("subscribe");
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _ctx: &ConsumeConcurrentlyContext| {
            let at = now_ms();
            let mut fail = false;
            for m in msgs {
                let body = String::from_utf8_lossy(m.body_slice()).into_owned();
                fail |= body.starts_with("fail");
                sink.lock().expect("sink").push(Seen {
                    body,
                    topic: m.topic().to_string(),
                    reconsume: m.reconsume_times(),
                    at,
                    uniq: m.property("UNIQ_KEY").map(str::to_owned),
                });
            }
            Ok(if fail {
                ConsumeConcurrentlyStatus::ReconsumeLater
            } else {
                ConsumeConcurrentlyStatus::ConsumeSuccess
            })
        },
    );
    env.block_on(consumer.start()).expect("consumer start");

    let mut producer = start_producer(&env, &ns, &unique("retry_producer"));
    let mut ids = BTreeMap::new();
    for body in ["fail-0", "ok-0", "fail-1", "ok-1", "ok-2"] {
        let r = env
            .block_on(
                producer.send_with_timeout(message(&topic, Some("T"), None, body), SEND_TIMEOUT_MS),
            )
            .expect("send")
            .expect("send result");
        ids.insert(
            body.to_owned(),
            r.msg_id.map(|s| s.to_string()).unwrap_or_default(),
        );
    }
    env.block_on(producer.shutdown());

    let dlq = format!("%DLQ%{group}");
    let addr = cluster.broker.shard_addr(0).to_string();
    let end = Instant::now() + CONSUME_DEADLINE;
    loop {
        let dead = route(&cluster.namesrv, &dlq).map_or(0, |_| max_offset(&addr, &dlq, 0));
        let all_ok = {
            let s = seen.lock().expect("seen");
            ["ok-0", "ok-1", "ok-2"]
                .iter()
                .all(|b| s.iter().any(|x| x.body == *b))
        };
        if dead >= 2 && all_ok {
            break;
        }
        assert!(
            Instant::now() < end,
            "dead letters: {dead} of 2; seen {:?}",
            seen.lock().expect("seen")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything still on its way would show up within this time.
    std::thread::sleep(Duration::from_millis(2_000));
    env.block_on(consumer.shutdown());

    let seen = seen.lock().expect("seen").clone();
    for body in ["ok-0", "ok-1", "ok-2"] {
        let n = seen.iter().filter(|s| s.body == body).count();
        assert_eq!(n, 1, "{body} consumed {n} times");
    }
    for body in ["fail-0", "fail-1"] {
        let rounds: Vec<&Seen> = seen.iter().filter(|s| s.body == body).collect();
        let counts: Vec<i32> = rounds.iter().map(|s| s.reconsume).collect();
        assert_eq!(counts, (0..=MAX).collect::<Vec<_>>(), "{body} rounds");
        for s in &rounds {
            assert_eq!(s.topic, topic, "{body} seen under another topic");
            assert_eq!(
                s.uniq.as_deref(),
                Some(ids[body].as_str()),
                "{body} UNIQ_KEY"
            );
        }
        // Round n+1 waits level 3+n: 1 s, 2 s, 3 s.
        for (i, pair) in rounds.windows(2).enumerate() {
            let delay = [1_000, 2_000, 3_000][i];
            let gap = pair[1].at - pair[0].at;
            assert!(
                gap >= delay,
                "{body}: round {} came {gap} ms after the previous",
                i + 1
            );
        }
    }

    wait_topic_route(&cluster.namesrv, &dlq, 1, 1);
    let dead = raw_pull_all(&addr, &unique("probe"), &dlq, 0, "*");
    assert_eq!(dead.len(), 2, "DLQ holds each failing message once");
    let bodies: BTreeSet<String> = dead
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(
        bodies,
        BTreeSet::from(["fail-0".to_owned(), "fail-1".to_owned()])
    );
    for m in &dead {
        let body = String::from_utf8_lossy(&m.body).into_owned();
        assert_eq!(m.property("RETRY_TOPIC"), Some(topic.as_str()), "{body}");
        assert_eq!(m.property("UNIQ_KEY"), Some(ids[&body].as_str()), "{body}");
        assert!(m.property("ORIGIN_MESSAGE_ID").is_some(), "{body}");
        assert_eq!(
            m.property("DLQ_ORIGIN_TOPIC"),
            Some(topic.as_str()),
            "{body}"
        );
        assert_eq!(
            m.property("DLQ_ORIGIN_MESSAGE_ID"),
            Some(ids[&body].as_str()),
            "{body}"
        );
        assert_eq!(m.reconsume_times, MAX + 1, "{body}");
        assert_eq!(m.property("DELAY"), None, "{body}");
    }
}

#[test]
fn client_fallback_send_to_retry_topic_honours_delay_and_max() {
    let cluster = Cluster::start(1, &[LEVELS]);
    let group = unique("fallback_group");
    let retry = format!("%RETRY%{group}");
    let dlq = format!("%DLQ%{group}");
    let addr = cluster.broker.shard_addr(0).to_string();
    let mut c = cluster.broker.shard_client(0);

    // Round 1 of the fallback: DELAY=3+0, reconsumeTimes 1.
    let sent_at = now_ms();
    let p = props(&[
        ("DELAY", "4"),
        ("RETRY_TOPIC", "Orig"),
        ("RECONSUME_TIME", "1"),
    ]);
    let r = c.call(
        send_v2(&retry, -1, b"again", &p)
            .with_ext("j", "1")
            .with_ext("l", "3"),
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    // Over the max: straight to the DLQ, no delay.
    let p = props(&[
        ("DELAY", "6"),
        ("RETRY_TOPIC", "Orig"),
        ("RECONSUME_TIME", "4"),
    ]);
    let r = c.call(
        send_v2(&retry, -1, b"dead", &p)
            .with_ext("j", "4")
            .with_ext("l", "3"),
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(
        max_offset(&addr, &dlq, 0),
        1,
        "the over-max message is in the DLQ at once"
    );
    wait_topic_route(&cluster.namesrv, &dlq, 1, 1);

    let end = Instant::now() + CONSUME_DEADLINE;
    let got = loop {
        let got = raw_pull_all(&addr, &unique("probe"), &retry, 0, "*");
        if !got.is_empty() {
            break got;
        }
        assert!(Instant::now() < end, "the delayed retry never arrived");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"again");
    assert!(
        got[0].store_timestamp >= sent_at + 2_000,
        "delivered before level 4 (2 s) was due"
    );
    assert_eq!(got[0].reconsume_times, 1);
    let dead = raw_pull_all(&addr, &unique("probe"), &dlq, 0, "*");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, b"dead");
    assert_eq!(dead[0].property("DELAY"), None);
    assert_eq!(dead[0].property("DLQ_ORIGIN_TOPIC"), Some("Orig"));
}
