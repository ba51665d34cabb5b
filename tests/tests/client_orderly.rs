//! Ordered messages (the seeds' ordered example): a producer picks the queue from an order
//! id with a selector, and an orderly push consumer (LOCK_BATCH_MQ, spec §3.12 and §7.5)
//! sees each order's messages in the order they were sent.
//!
//! Method: 100 messages, order id = i % 10, tags cycling TagA..TagE, keys `KEY<i>`, are sent
//! with `send_with_selector` choosing `queues[order id % queue count]` of a topic with 4
//! queues on each of 2 shards. An orderly consumer subscribed `*` must receive each message
//! exactly once, and for every order id the sequence numbers must increase.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{
    CONSUME_DEADLINE, Cluster, Env, Inbox, Received, SEND_TIMEOUT_MS, assert_exactly_once,
    assert_queue_order, create_topic, message, start_producer, unique,
};
use rocketmq_client_rust::{
    ConsumeOrderlyContext, ConsumeOrderlyStatus, DefaultMQPushConsumer, MQPushConsumer, SendStatus,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;

const COUNT: usize = 100;
const ORDERS: usize = 10;

#[test]
fn orderly_consumer_sees_each_order_in_send_order() {
    let cluster = Cluster::start(2, &[]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("orderly");
    let topic = unique("Orderly");
    create_topic(&env, &cluster, &topic, 4);

    let mut producer = start_producer(&env, &ns, &unique("orderly_producer"));
    let tags = ["TagA", "TagB", "TagC", "TagD", "TagE"];
    let mut want = BTreeSet::new();
    for i in 0..COUNT {
        let order_id = i % ORDERS;
        let body = format!("order-{order_id}-seq-{i}");
        let msg = message(
            &topic,
            Some(tags[i % tags.len()]),
            Some(&format!("KEY{i}")),
            &body,
        );
        let r = env
            .block_on(producer.send_with_selector_timeout(
                msg,
                |mqs: &[MessageQueue], _msg: &Message, id: &usize| mqs.get(id % mqs.len()).cloned(),
                order_id,
                SEND_TIMEOUT_MS,
            ))
            .unwrap_or_else(|e| panic!("selector send #{i}: {e:?}"))
            .unwrap_or_else(|| panic!("selector send #{i} returned no result"));
        assert_eq!(r.send_status, SendStatus::SendOk, "selector send #{i}");
        want.insert(body);
    }
    env.block_on(producer.shutdown());

    let inbox = Inbox::default();
    let sink = inbox.clone();
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .consumer_group(unique("orderly_group"))
        .name_server_addr(ns)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    env.block_on(consumer.subscribe(topic.as_str(), "*"))
        .expect("subscribe");
    consumer.register_message_listener_orderly(
        move |msgs: &[&MessageExt], _ctx: &mut ConsumeOrderlyContext| {
            for m in msgs {
                sink.push(m);
            }
            Ok(ConsumeOrderlyStatus::Success)
        },
    );
    env.block_on(consumer.start())
        .expect("start orderly consumer");
    inbox.wait_for_all(&want, CONSUME_DEADLINE, "orderly consumer");
    env.block_on(consumer.shutdown());

    let got = inbox.snapshot();
    assert_exactly_once(&got, &want, "orderly consumer");
    assert_queue_order(&got, "orderly consumer");
    let mut last: BTreeMap<usize, usize> = BTreeMap::new();
    for Received { body, .. } in &got {
        let parts: Vec<&str> = body.split('-').collect();
        let (order, seq): (usize, usize) = (
            parts[1].parse().expect("order id"),
            parts[3].parse().expect("sequence"),
        );
        if let Some(prev) = last.insert(order, seq) {
            assert!(
                seq > prev,
                "order {order}: seq {seq} delivered after {prev}"
            );
        }
    }
}
