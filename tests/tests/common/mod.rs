//! Shared helpers for the tests that drive ringmq with the third-party client
//! `rocketmq-client-rust` 1.0.0 (a dev-dependency, hence a test-only module rather than part
//! of `ringmq_tests`).
//!
//! # Layout
//! - [`Env`]: the runtime the client insists on being given (a `RuntimeOwner` with its own
//!   Tokio runtime, a `ClientRuntime`, no global telemetry). Test threads call
//!   [`Env::block_on`] for the client's async calls; consumers run on the owner's workers, so a
//!   test thread can wait on an [`Inbox`] with plain deadlines.
//! - [`Cluster`]: a name server plus a broker (the harness's `Process::broker`) whose store
//!   and ports survive restarts after kill -9 or SIGTERM.
//! - Producer / push-consumer builders and [`Inbox`] (what a listener received).
//! - [`probe`]: routes, offsets and raw pulls over the harness's `RawClient`, i.e. what the
//!   name server and the broker say, independent of the client.
//! - [`check`]: the assertions every test shares (exactly once, order per queue, agreement
//!   with the send results).
//!
//! # Invariants
//! - Every wait has a deadline and fails naming what it waited for; nothing sleeps for a
//!   fixed time except the short polls of a deadline loop.
//! - Topic and group names are unique per test run ([`unique`]), so tests never see each
//!   other's data even against a shared broker.
//! - Topics are created (UPDATE_AND_CREATE_TOPIC through the client's admin call) and visible
//!   in the name server before any producer or consumer starts, so no test waits for the
//!   client's 30 s route poll; consumers of already-present data start after the producer.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test file uses a different part of these helpers and re-exports"
)]

mod check;
mod probe;

pub use check::*;
pub use probe::*;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq_tests::Process;
use ringmq_tests::broker::BrokerProcess;
use rocketmq_client_rust::{
    ArcMessageQueueListener, ClientConfig, ClientRuntime, ClientRuntimeConfig,
    ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus, DefaultMQProducer,
    DefaultMQPushConsumer, MQPushConsumer, MessageQueueListener, SendResult, SendStatus,
    TelemetryHandle,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

/// How long a consumer may take to receive everything a test sent. Generous: a 2-core CI
/// machine runs the broker, the name server and the client together. It also covers two
/// rounds of redelivery through the retry topic (levels 3 and 4: 10 s + 30 s): when the
/// machine is saturated, rocketmq-client-rust 1.0.0 may refuse to run a consume request
/// (on 2 cores its blocking "metadata-io" lane runs 4 tasks and queues 16, which its 20
/// consume threads alone fill; one more task is refused at once) and then sends the
/// request's messages back, unseen by the listener, as if consuming had failed. They come back through `%RETRY%`, so exactly-once at the listener still holds.
pub const CONSUME_DEADLINE: Duration = Duration::from_secs(150);
/// How long a broker may take to appear in (or leave) the name server's routes.
pub const ROUTE_DEADLINE: Duration = Duration::from_secs(30);
/// Per-send timeout given to the client (ms).
pub const SEND_TIMEOUT_MS: u64 = 5_000;

/// A name unique to this test process: `<prefix>_<pid>_<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Client logs (the crate logs through `tracing`) go to the test output when `RUST_LOG` is set.
fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

// ------------------------------------------------------------------------------------------
// Client runtime
// ------------------------------------------------------------------------------------------

/// The runtime rocketmq-client-rust 1.0.0 requires: it never creates or discovers a Tokio
/// runtime itself, it spawns everything into the `RuntimeOwner` it is handed.
pub struct Env {
    owner: Option<RuntimeOwner>,
    runtime: Arc<ClientRuntime>,
}

impl Env {
    pub fn new(label: &str) -> Env {
        init_logging();
        let owner = RuntimeOwner::plan(RuntimeConfig {
            thread_name: format!("rmq-{label}"),
            ..Default::default()
        })
        .expect("runtime configuration")
        .build()
        .expect("build the client's Tokio runtime");
        let runtime = ClientRuntime::try_new(
            owner.root_context().component("client"),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        )
        .expect("create the client runtime");
        Env {
            owner: Some(owner),
            runtime,
        }
    }

    pub fn runtime(&self) -> Arc<ClientRuntime> {
        Arc::clone(&self.runtime)
    }

    /// Runs one of the client's async calls to completion on the calling thread.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.owner
            .as_ref()
            .expect("runtime owner present until drop")
            .block_on(future)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Clients were shut down by the tests; whatever is left (timers, a half-closed
        // connection after a broker kill) is cancelled without waiting for it.
        if let Some(owner) = self.owner.take() {
            let _ = owner.shutdown_background();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

/// A name server and one broker process (with `shards` logical brokers), started by the
/// harness's [`Process::broker`] (free ports, temp store, `brokerIP1=127.0.0.1`, waits until
/// every shard is registered); kill -9, SIGTERM and restarts keep its store and ports.
pub struct Cluster {
    pub namesrv: Process,
    pub broker: BrokerProcess,
    pub shards: u32,
}

impl Cluster {
    /// Starts a name server and a broker with `shards` shards and `extra` `key=value`
    /// settings.
    pub fn start(shards: u32, extra: &[&str]) -> Cluster {
        let namesrv = Process::namesrv(&[]);
        let shards_arg = format!("shards={shards}");
        let mut args = vec![shards_arg.as_str()];
        args.extend_from_slice(extra);
        let broker = Process::broker(namesrv.addr(), &args);
        Cluster {
            namesrv,
            broker,
            shards,
        }
    }

    pub fn namesrv_addr(&self) -> String {
        self.namesrv.addr().to_string()
    }

    /// Starts the broker again on the same store and ports (after [`Cluster::kill9_broker`]
    /// or [`Cluster::stop_broker`]) and waits until every shard is registered.
    pub fn start_broker(&mut self) {
        self.broker.restart();
    }

    /// kill -9: no shutdown hook, no flush; only what was durable survives.
    pub fn kill9_broker(&mut self) {
        self.broker.kill9();
    }

    /// SIGTERM and wait for a clean exit (status 0).
    pub fn stop_broker(&mut self) {
        self.broker.stop_cleanly();
    }
}

// ------------------------------------------------------------------------------------------
// Producers
// ------------------------------------------------------------------------------------------

/// A started producer pointed at the test name server (client defaults otherwise).
pub fn start_producer(env: &Env, namesrv: &str, group: &str) -> DefaultMQProducer {
    let mut producer = DefaultMQProducer::builder(env.runtime())
        .producer_group(group.to_owned())
        .name_server_addr(namesrv.to_owned())
        .send_msg_timeout(SEND_TIMEOUT_MS as u32)
        .build();
    env.block_on(producer.start())
        .unwrap_or_else(|e| panic!("start producer {group}: {e:?}"));
    producer
}

/// Creates `topic` with `queues` read/write queues on every broker of the TBW102 route
/// (UPDATE_AND_CREATE_TOPIC through the client's admin call), then waits until the name
/// server routes it on all of them.
pub fn create_topic(env: &Env, cluster: &Cluster, topic: &str, queues: i32) -> Route {
    let mut admin = start_producer(env, &cluster.namesrv_addr(), &unique("admin"));
    env.block_on(admin.create_topic("TBW102", topic, queues, HashMap::new()))
        .unwrap_or_else(|e| panic!("create topic {topic}: {e:?}"));
    env.block_on(admin.shutdown());
    wait_topic_route(&cluster.namesrv, topic, cluster.shards as usize, queues)
}

/// A message with a tag, a key and a UTF-8 body.
pub fn message(topic: &str, tag: Option<&str>, key: Option<&str>, body: &str) -> Message {
    let mut b = Message::builder()
        .topic(topic)
        .body(body.as_bytes().to_vec());
    if let Some(t) = tag {
        b = b.tags(t);
    }
    if let Some(k) = key {
        b = b.key(k);
    }
    b.build().expect("valid message")
}

/// What a successful send reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub body: String,
    /// The client-side message id (UNIQ_KEY).
    pub msg_id: String,
    pub offset_msg_id: String,
    pub broker: String,
    pub queue_id: i32,
    pub queue_offset: i64,
}

impl Sent {
    pub fn from_result(body: &str, r: &SendResult) -> Sent {
        let mq = r
            .message_queue
            .as_ref()
            .expect("a send result names its queue");
        Sent {
            body: body.to_owned(),
            msg_id: r.msg_id.as_ref().map(|s| s.to_string()).unwrap_or_default(),
            offset_msg_id: r.offset_msg_id.clone().unwrap_or_default(),
            broker: mq.broker_name().to_string(),
            queue_id: mq.queue_id(),
            queue_offset: r.queue_offset as i64,
        }
    }
}

/// Sends `msg` synchronously and insists on SEND_OK.
pub fn send_ok(env: &Env, producer: &DefaultMQProducer, msg: Message) -> Sent {
    let body = String::from_utf8_lossy(msg.body_slice()).into_owned();
    let r = env
        .block_on(producer.send_with_timeout(msg, SEND_TIMEOUT_MS))
        .unwrap_or_else(|e| panic!("sync send of {body:?} failed: {e:?}"))
        .unwrap_or_else(|| panic!("sync send of {body:?} returned no result"));
    assert_eq!(
        r.send_status,
        SendStatus::SendOk,
        "sync send of {body:?}: {r:?}"
    );
    Sent::from_result(&body, &r)
}

/// Sends `n` messages `"<prefix>-<i>"` synchronously with `tag`, key `"<prefix>-key-<i>"`.
pub fn send_n(
    env: &Env,
    producer: &DefaultMQProducer,
    topic: &str,
    tag: &str,
    prefix: &str,
    n: usize,
) -> Vec<Sent> {
    (0..n)
        .map(|i| {
            let body = format!("{prefix}-{i}");
            let key = format!("{prefix}-key-{i}");
            send_ok(env, producer, message(topic, Some(tag), Some(&key), &body))
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Consumers
// ------------------------------------------------------------------------------------------

/// One message as a listener saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub body: String,
    pub tags: Option<String>,
    pub keys: Vec<String>,
    pub uniq_key: Option<String>,
    pub broker: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub reconsume_times: i32,
}

impl Received {
    pub fn from_ext(m: &MessageExt) -> Received {
        Received {
            topic: m.topic().to_string(),
            body: String::from_utf8_lossy(m.body_slice()).into_owned(),
            tags: m.tags().map(str::to_owned),
            keys: m.keys().unwrap_or_default(),
            uniq_key: m.property("UNIQ_KEY").map(str::to_owned),
            broker: m.broker_name().to_owned(),
            queue_id: m.queue_id(),
            queue_offset: m.queue_offset(),
            reconsume_times: m.reconsume_times(),
        }
    }
}

/// Everything a listener received, in arrival order, shared with the test thread.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    pub fn push(&self, m: &MessageExt) {
        self.0
            .lock()
            .expect("inbox lock")
            .push(Received::from_ext(m));
    }

    pub fn snapshot(&self) -> Vec<Received> {
        self.0.lock().expect("inbox lock").clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().expect("inbox lock").len()
    }

    pub fn distinct_bodies(&self) -> BTreeSet<String> {
        self.snapshot().into_iter().map(|r| r.body).collect()
    }

    /// Waits until every body in `want` has been received (at least once).
    pub fn wait_for_all(&self, want: &BTreeSet<String>, deadline: Duration, who: &str) {
        let end = Instant::now() + deadline;
        loop {
            let have = self.distinct_bodies();
            let missing: Vec<&String> = want.difference(&have).collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < end,
                "{who}: {} of {} messages not received after {deadline:?} (received {} \
                 deliveries); first missing: {:?}",
                missing.len(),
                want.len(),
                self.len(),
                missing.iter().take(10).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A concurrent listener that records every message and acknowledges it.
    pub fn listener(
        &self,
    ) -> impl Fn(
        &[&MessageExt],
        &ConsumeConcurrentlyContext,
    ) -> rocketmq_client_rust::ClientResult<ConsumeConcurrentlyStatus>
    + Send
    + Sync
    + 'static {
        let inbox = self.clone();
        move |msgs: &[&MessageExt], _ctx: &ConsumeConcurrentlyContext| {
            for m in msgs {
                inbox.push(m);
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        }
    }
}

/// A queue as (brokerName, queueId).
pub type QueueKey = (String, i32);

/// Records the queues the client's rebalance assigned to one consumer for one topic (the
/// client reports every subscribed topic, including the group's `%RETRY%` topic, to the same
/// listener).
#[derive(Clone)]
pub struct Assignment {
    topic: String,
    queues: Arc<Mutex<Option<BTreeSet<QueueKey>>>>,
}

impl Assignment {
    pub fn new(topic: &str) -> Assignment {
        Assignment {
            topic: topic.to_owned(),
            queues: Arc::default(),
        }
    }

    pub fn current(&self) -> Option<BTreeSet<QueueKey>> {
        self.queues.lock().expect("assignment lock").clone()
    }
}

impl MessageQueueListener for Assignment {
    fn message_queue_changed(
        &self,
        topic: &str,
        _mq_all: &HashSet<MessageQueue>,
        mq_assigned: &HashSet<MessageQueue>,
    ) {
        if topic != self.topic {
            return;
        }
        let set = mq_assigned
            .iter()
            .map(|mq| (mq.broker_name().to_string(), mq.queue_id()))
            .collect();
        *self.queues.lock().expect("assignment lock") = Some(set);
    }
}

/// How a push consumer is set up.
pub struct PushOpts {
    pub group: String,
    pub topic: String,
    pub expression: String,
    pub model: MessageModel,
    pub from: ConsumeFromWhere,
    /// Instance name (part of the client id). Clustering consumers get a unique one from the
    /// client; broadcasting consumers in one process need distinct ones set here.
    pub instance: Option<String>,
    /// One consume worker, so the listener sees each queue's messages in pull order.
    pub single_thread: bool,
    pub assignment: Option<Assignment>,
}

impl PushOpts {
    pub fn clustering(group: &str, topic: &str) -> PushOpts {
        PushOpts {
            group: group.to_owned(),
            topic: topic.to_owned(),
            expression: "*".to_owned(),
            model: MessageModel::Clustering,
            from: ConsumeFromWhere::ConsumeFromFirstOffset,
            instance: None,
            single_thread: false,
            assignment: None,
        }
    }
}

/// Builds, subscribes and starts a push consumer whose concurrent listener fills `inbox`.
pub fn start_push(
    env: &Env,
    namesrv: &str,
    opts: PushOpts,
    inbox: &Inbox,
) -> DefaultMQPushConsumer {
    let mut builder = DefaultMQPushConsumer::builder(env.runtime());
    if let Some(instance) = &opts.instance {
        let mut config = ClientConfig::new();
        config.set_instance_name(instance.as_str().into());
        builder = builder.client_config(config);
    }
    builder = builder
        .name_server_addr(namesrv.to_owned())
        .consumer_group(opts.group.clone())
        .message_model(opts.model)
        .consume_from_where(opts.from);
    if opts.single_thread {
        builder = builder.consume_thread_min(1).consume_thread_max(1);
    }
    if let Some(a) = &opts.assignment {
        let listener: ArcMessageQueueListener = Arc::new(a.clone());
        builder = builder.message_queue_listener(Some(listener));
    }
    let mut consumer = builder.build();
    env.block_on(consumer.subscribe(opts.topic.as_str(), opts.expression.as_str()))
        .unwrap_or_else(|e| panic!("subscribe {} {}: {e:?}", opts.topic, opts.expression));
    consumer.register_message_listener_concurrently(inbox.listener());
    env.block_on(consumer.start())
        .unwrap_or_else(|e| panic!("start consumer {}: {e:?}", opts.group));
    consumer
}

/// Removes the broadcasting offset files the client wrote under
/// `$HOME/.rocketmq_offsets/<clientId>/` for client ids ending in `@<instance>`.
pub fn remove_local_offsets(instance: &str) {
    let Some(home) = std::env::var_os("HOME") else {
        return;
    };
    let dir = PathBuf::from(home).join(".rocketmq_offsets");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let suffix = format!("@{instance}");
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().ends_with(&suffix) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
