//! rocketmq-client-rust reads routes from `ringmq-namesrv` (spec §3.1 105, §5.1): the queues a
//! producer publishes to and a consumer subscribes to are exactly those the registered
//! broker announced, and an unknown topic is an error, not an empty route.
//!
//! Method: a broker registration is sent by hand (the harness's fastjson-style body: TBW102
//! with 8 queues perm 7, TopicTest with 4 queues perm 6) for an address where nothing
//! listens, so only the name server is exercised. The client's `fetch_publish_message_queues`
//! and `fetch_subscribe_message_queues` must list (TopicTest, broker-r, 0..3).

mod common;

use common::{Env, Inbox, start_producer, unique};
use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::namesrv::Broker;
use ringmq_tests::{Process, free_port};
use rocketmq_client_rust::{DefaultMQPushConsumer, MQPushConsumer};

#[test]
fn client_sees_the_queues_a_registered_broker_announced() {
    let namesrv = Process::namesrv(&[]);
    let addr = format!("127.0.0.1:{}", free_port());
    let reg = Broker::new("broker-r", &addr, 0).register(SerializeType::Json);
    // The registration lives as long as this connection (the name server drops a broker
    // whose connection closes), so it stays open for the whole test.
    let mut broker_conn = namesrv.client();
    assert_eq!(broker_conn.call(reg).code, response::SUCCESS);
    let ns = namesrv.addr().to_string();

    let env = Env::new("routes");
    let mut producer = start_producer(&env, &ns, &unique("routes_producer"));
    let mut publish = env
        .block_on(producer.fetch_publish_message_queues("TopicTest"))
        .expect("publish queues of TopicTest");
    publish.sort_by_key(|mq| mq.queue_id());
    let got: Vec<(String, String, i32)> = publish
        .iter()
        .map(|mq| {
            (
                mq.topic().to_string(),
                mq.broker_name().to_string(),
                mq.queue_id(),
            )
        })
        .collect();
    let want: Vec<(String, String, i32)> = (0..4)
        .map(|q| ("TopicTest".to_owned(), "broker-r".to_owned(), q))
        .collect();
    assert_eq!(got, want, "publish queues");

    let unknown = env.block_on(producer.fetch_publish_message_queues("NoSuchTopic"));
    assert!(
        unknown.as_ref().map_or(true, Vec::is_empty),
        "an unknown topic has no publish queues, got {unknown:?}"
    );
    env.block_on(producer.shutdown());

    // A consumer answers route questions once started; its heartbeats to the announced
    // address fail (nothing listens there), which does not stop it from starting.
    let mut consumer = DefaultMQPushConsumer::builder(env.runtime())
        .consumer_group(unique("routes_consumer"))
        .name_server_addr(ns)
        .build();
    env.block_on(consumer.subscribe("TopicTest", "*"))
        .expect("subscribe");
    consumer.register_message_listener_concurrently(Inbox::default().listener());
    env.block_on(consumer.start()).expect("consumer start");
    let mut subscribe = env
        .block_on(consumer.fetch_subscribe_message_queues("TopicTest"))
        .expect("subscribe queues of TopicTest");
    subscribe.sort_by_key(|mq| mq.queue_id());
    let got: Vec<(String, String, i32)> = subscribe
        .iter()
        .map(|mq| {
            (
                mq.topic().to_string(),
                mq.broker_name().to_string(),
                mq.queue_id(),
            )
        })
        .collect();
    assert_eq!(got, want, "subscribe queues");
    env.block_on(consumer.shutdown());
    drop(broker_conn);
}
