//! The stock quickstart against a running ringmq (`./start.sh`: namesrv 127.0.0.1:9876, broker
//! 10911), with rocketmq-client-rust 1.0.0 used as an application would:
//!
//!     cargo run -p ringmq-tests --example quickstart [-- <namesrvAddr>]
//!
//! A producer sends 1 000 messages tagged `TagA` to `TopicTest` (sync send), then a push
//! consumer subscribed `*` counts how many of *this run's* messages it receives (the store may
//! hold earlier runs). Exits 0 when all 1 000 arrived, 1 if some are missing after 90 s.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer, SendStatus, TelemetryHandle,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

const TOPIC: &str = "TopicTest";
const TAG: &str = "TagA";
const COUNT: usize = 1_000;

fn main() {
    let namesrv = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9876".to_owned());
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);

    // rocketmq-client-rust 1.0.0 runs on a runtime it is given, never on one it finds.
    let owner = RuntimeOwner::plan(RuntimeConfig {
        thread_name: "quickstart".to_owned(),
        ..Default::default()
    })
    .expect("runtime configuration")
    .build()
    .expect("Tokio runtime");
    let runtime = ClientRuntime::try_new(
        owner.root_context().component("client"),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    )
    .expect("client runtime");

    let mut producer = DefaultMQProducer::builder(Arc::clone(&runtime))
        .producer_group("please_rename_unique_group_name".to_owned())
        .name_server_addr(namesrv.clone())
        .build();
    owner.block_on(producer.start()).expect("producer start");
    let mut mine = HashSet::new();
    for i in 0..COUNT {
        let body = format!("Hello RocketMQ {run} {i}");
        let msg = Message::builder()
            .topic(TOPIC)
            .tags(TAG)
            .body(body.clone().into_bytes())
            .build()
            .expect("message");
        match owner.block_on(producer.send_with_timeout(msg, 3_000)) {
            Ok(Some(r)) if r.send_status == SendStatus::SendOk => {
                mine.insert(body);
            }
            other => eprintln!("send #{i}: {other:?}"),
        }
    }
    owner.block_on(producer.shutdown());
    println!("producer: {} of {COUNT} sends SEND_OK", mine.len());

    let received: Arc<Mutex<HashSet<String>>> = Arc::default();
    let sink = Arc::clone(&received);
    let mut consumer = DefaultMQPushConsumer::builder(Arc::clone(&runtime))
        .consumer_group(format!("please_rename_unique_group_name_4_{run}"))
        .name_server_addr(namesrv)
        .build();
    owner
        .block_on(consumer.subscribe(TOPIC, "*"))
        .expect("subscribe");
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt], _ctx: &ConsumeConcurrentlyContext| {
            let mut seen = sink.lock().expect("received");
            for m in msgs {
                seen.insert(String::from_utf8_lossy(m.body_slice()).into_owned());
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    owner.block_on(consumer.start()).expect("consumer start");

    let end = Instant::now() + Duration::from_secs(90);
    let got = loop {
        let got = received
            .lock()
            .expect("received")
            .intersection(&mine)
            .count();
        if got == mine.len() || Instant::now() > end {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    owner.block_on(consumer.shutdown());
    println!(
        "consumer: received {got} of this run's {} messages",
        mine.len()
    );
    let _ = owner.shutdown_background();
    if got != COUNT {
        std::process::exit(1);
    }
}
