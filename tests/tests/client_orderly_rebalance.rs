//! Orderly consumption across a rebalance (issue 6, spec §3.12): queue locks move from one
//! orderly consumer to another of the same group, and each order's messages stay in order.
//!
//! Method: a topic with 4 queues; messages `order-<o>-seq-<k>` (8 order ids, the producer's
//! selector puts order `o` on queue `o % 4`, `k` counts within the order), sent in rounds of
//! one message per order. Orderly consumer 1 starts, a first batch of rounds is sent, and once
//! consumer 1 is under way consumer 2 joins the group (NOTIFY_CONSUMER_IDS_CHANGED,
//! rebalance: consumer 1 unlocks half of the queues, consumer 2 locks them). Rounds keep being
//! sent, through the handover, until consumer 2 has delivered a few messages (or a cap of
//! rounds is reached). Both listeners append to one shared log, so the
//! log's order is causal: consumer 1 logs a message before it unlocks the queue, consumer 2
//! locks it only after.
//!
//! What "order holds" means here (RocketMQ's orderly consumption is at-least-once: the new
//! owner resumes from the committed offset, so the tail the old owner consumed but had not
//! committed yet may come again):
//! - nothing lost: every message is delivered;
//! - no skipping: in the shared log, message `k` of an order appears only after messages
//!   `0..k` of that order all appeared (at least once);
//! - within a run (consecutive deliveries of one order by the same consumer), each delivery
//!   is the successor of the previous one (`k = prev + 1`) or a restart at or before it
//!   (`k <= prev`, a redelivery from the committed offset), never a jump ahead; a new run (the
//!   other consumer took the queue) may start anywhere the no-skipping rule allows;
//! - the handover happened: consumer 2 delivered messages of orders consumer 1 had started.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{CONSUME_DEADLINE, Cluster, Env, SEND_TIMEOUT_MS, create_topic, message, unique};
use rocketmq_client_rust::{
    ConsumeOrderlyContext, ConsumeOrderlyStatus, DefaultMQProducer, DefaultMQPushConsumer,
    MQPushConsumer, SendStatus,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;

const ORDERS: usize = 8;
/// Rounds sent before consumer 2 joins.
const FIRST_ROUNDS: usize = 6;
/// Most rounds in all (the handover normally takes a second or two).
const ROUNDS_MAX: usize = 400;

/// One delivery: which consumer, which order, which position in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Delivery {
    consumer: u8,
    order: usize,
    seq: usize,
}

type Log = Arc<Mutex<Vec<Delivery>>>;

fn parse(body: &str) -> Option<(usize, usize)> {
    let parts: Vec<&str> = body.split('-').collect();
    match parts.as_slice() {
        ["order", o, "seq", k] => Some((o.parse().ok()?, k.parse().ok()?)),
        _ => None,
    }
}

fn start_orderly(
    env: &Env,
    ns: &str,
    group: &str,
    topic: &str,
    id: u8,
    log: &Log,
) -> DefaultMQPushConsumer {
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .consumer_group(group.to_owned())
        .name_server_addr(ns.to_owned())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    env.block_on(consumer.subscribe(topic, "*"))
        .expect("subscribe");
    let sink = log.clone();
    consumer.register_message_listener_orderly(
        move |msgs: &[&MessageExt], _ctx: &mut ConsumeOrderlyContext| {
            for m in msgs {
                let body = String::from_utf8_lossy(m.body_slice());
                let (order, seq) = parse(&body).expect("a test message body");
                sink.lock().expect("log").push(Delivery {
                    consumer: id,
                    order,
                    seq,
                });
                // Slow enough that the rebalance lands while queues still hold messages.
                std::thread::sleep(Duration::from_millis(3));
            }
            Ok(ConsumeOrderlyStatus::Success)
        },
    );
    env.block_on(consumer.start())
        .unwrap_or_else(|e| panic!("start orderly consumer {id}: {e:?}"));
    consumer
}

/// Sends positions `from..to` of every order, interleaved across orders.
fn send_rounds(env: &Env, producer: &DefaultMQProducer, topic: &str, from: usize, to: usize) {
    for seq in from..to {
        for order in 0..ORDERS {
            let body = format!("order-{order}-seq-{seq}");
            let r = env
                .block_on(producer.send_with_selector_timeout(
                    message(topic, Some("TagA"), None, &body),
                    |mqs: &[MessageQueue], _msg: &Message, o: &usize| {
                        mqs.get(o % mqs.len()).cloned()
                    },
                    order,
                    SEND_TIMEOUT_MS,
                ))
                .unwrap_or_else(|e| panic!("selector send of {body}: {e:?}"))
                .unwrap_or_else(|| panic!("selector send of {body} returned no result"));
            assert_eq!(r.send_status, SendStatus::SendOk, "{body}");
        }
    }
}

fn wait(log: &Log, what: &str, done: impl Fn(&[Delivery]) -> bool) {
    let end = Instant::now() + CONSUME_DEADLINE;
    loop {
        if done(&log.lock().expect("log")) {
            return;
        }
        if Instant::now() >= end {
            let l = log.lock().expect("log");
            let by_2 = l.iter().filter(|d| d.consumer == 2).count();
            let distinct: BTreeSet<(usize, usize)> = l.iter().map(|d| (d.order, d.seq)).collect();
            panic!(
                "timed out waiting until {what}: {} deliveries, {} distinct, {by_2} by consumer 2",
                l.len(),
                distinct.len()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn all_delivered(log: &[Delivery], per_order: usize) -> bool {
    let seen: BTreeSet<(usize, usize)> = log.iter().map(|d| (d.order, d.seq)).collect();
    seen.len() == ORDERS * per_order
}

/// The three order properties of the module doc, on the shared log.
fn assert_order(log: &[Delivery]) {
    // Per order: how far the prefix delivered so far reaches (next seq not yet delivered).
    let mut frontier: BTreeMap<usize, usize> = BTreeMap::new();
    // Per order: the consumer and seq of its latest delivery.
    let mut last: BTreeMap<usize, (u8, usize)> = BTreeMap::new();
    for (i, d) in log.iter().enumerate() {
        let f = frontier.entry(d.order).or_insert(0);
        assert!(
            d.seq <= *f,
            "delivery #{i}: order {} seq {} by consumer {} before seq {} of that order was \
             delivered",
            d.order,
            d.seq,
            d.consumer,
            *f
        );
        if d.seq == *f {
            *f += 1;
        }
        if let Some((who, prev)) = last.insert(d.order, (d.consumer, d.seq))
            && who == d.consumer
        {
            assert!(
                d.seq == prev + 1 || d.seq <= prev,
                "delivery #{i}: consumer {} jumped from seq {prev} to {} in order {}",
                d.consumer,
                d.seq,
                d.order
            );
        }
    }
}

#[test]
fn per_order_sequence_holds_when_a_second_orderly_consumer_joins() {
    let cluster = Cluster::start(1, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("orderly-rebalance");
    let topic = unique("OrderlyRebalance");
    create_topic(&env, &cluster, &topic, 4);
    let group = unique("orderly_rebalance");
    let log: Log = Arc::default();

    let mut c1 = start_orderly(&env, &ns, &group, &topic, 1, &log);
    let mut producer = common::start_producer(&env, &ns, &unique("orderly_rb_producer"));
    send_rounds(&env, &producer, &topic, 0, FIRST_ROUNDS);
    wait(&log, "consumer 1 is under way", |l| l.len() >= ORDERS * 2);
    let mut c2 = start_orderly(&env, &ns, &group, &topic, 2, &log);
    let mut rounds = FIRST_ROUNDS;
    let by_2 = |log: &Log| {
        log.lock()
            .expect("log")
            .iter()
            .filter(|d| d.consumer == 2)
            .count()
    };
    while rounds < ROUNDS_MAX && by_2(&log) < ORDERS {
        send_rounds(&env, &producer, &topic, rounds, rounds + 1);
        rounds += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    env.block_on(producer.shutdown());

    let per_order = rounds;
    wait(
        &log,
        "every message was delivered and consumer 2 took over",
        |l| all_delivered(l, per_order) && l.iter().any(|d| d.consumer == 2),
    );
    env.block_on(c2.shutdown());
    env.block_on(c1.shutdown());

    let log = log.lock().expect("log").clone();
    assert_order(&log);
    let started_by_1: BTreeSet<usize> = log
        .iter()
        .filter(|d| d.consumer == 1)
        .map(|d| d.order)
        .collect();
    let taken_by_2: BTreeSet<usize> = log
        .iter()
        .filter(|d| d.consumer == 2)
        .map(|d| d.order)
        .collect();
    assert!(
        started_by_1.intersection(&taken_by_2).next().is_some(),
        "no order moved from consumer 1 to consumer 2 (1 had {started_by_1:?}, 2 had \
         {taken_by_2:?})"
    );
    let redelivered = log.len() - ORDERS * per_order;
    eprintln!(
        "{} deliveries, {redelivered} redelivered around the handover",
        log.len()
    );
}

#[test]
fn the_order_check_rejects_skips_and_jumps() {
    let d = |consumer, order, seq| Delivery {
        consumer,
        order,
        seq,
    };
    // A handover with a redelivered tail passes.
    assert_order(&[
        d(1, 0, 0),
        d(1, 0, 1),
        d(1, 0, 2),
        d(2, 0, 1),
        d(2, 0, 2),
        d(2, 0, 3),
    ]);
    let skip = std::panic::catch_unwind(|| assert_order(&[d(1, 0, 0), d(2, 0, 2)]));
    assert!(skip.is_err(), "seq 2 before seq 1 must fail");
    // Consumer 1 taking the queue back after consumer 2 committed seq 1 starts a new run.
    assert_order(&[d(1, 0, 0), d(2, 0, 1), d(2, 0, 2), d(1, 0, 2)]);
    let jump = std::panic::catch_unwind(|| {
        assert_order(&[d(1, 0, 0), d(1, 0, 1), d(2, 0, 2), d(2, 0, 1), d(2, 0, 3)])
    });
    assert!(
        jump.is_err(),
        "consumer 2 restarting at 1, then jumping to 3 must fail"
    );
}
