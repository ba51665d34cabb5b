//! A real `ringmq-broker` for black-box tests, and request builders for talking to it.
//!
//! [`Process::broker`] starts a broker on free ports (every shard's main, VIP and HA port,
//! plus the metrics port) with a temp store under the process's data dir and
//! `brokerIP1=127.0.0.1`, then waits until every shard is registered with the namesrv
//! (GET_BROKER_CLUSTER_INFO). [`BrokerProcess::kill9`] and [`BrokerProcess::restart`] crash
//! and restart it on the same store and ports.
//!
//! Builders write headers the way Java clients fill them (SEND_MESSAGE_V2 one-letter keys,
//! pull sysFlag bits, fastjson-shaped heartbeat bodies), not through the broker's own code.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::time::Duration;

use ringmq_codec::codes::request;
use ringmq_codec::message::batch::{BatchEntry, encode_entry};
use ringmq_codec::{Command, LanguageCode, SerializeType};

use crate::namesrv::{json, plain_request};
use crate::{Process, RawClient, START_DEADLINE, TempDir, free_port, wait_until};

/// Port distance between shards (the broker's `listenPort + 4k`).
pub const SHARD_PORT_STRIDE: u16 = 4;
/// Consumer group the builders use unless told otherwise.
pub const GROUP: &str = "test_group";

/// A running broker: derefs to its [`Process`] (whose `addr()` is shard 0's main port).
pub struct BrokerProcess {
    process: Process,
    pub namesrv: SocketAddr,
    pub listen_port: u16,
    pub shards: usize,
    pub metrics_port: u16,
    pub cluster: String,
    pub broker_name: String,
}

impl Deref for BrokerProcess {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for BrokerProcess {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

/// Whether each of `ports` can be bound on 127.0.0.1 right now.
fn all_free(ports: &[u16]) -> bool {
    ports
        .iter()
        .all(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, *p)).is_ok())
}

/// Every port a broker with `shards` shards at `listen` binds: per shard main, VIP (−2) and
/// the HA port kept free (+1).
fn broker_ports(listen: u16, shards: usize) -> Option<Vec<u16>> {
    let mut out = Vec::new();
    for k in 0..shards as u32 {
        let main = u32::from(listen) + u32::from(SHARD_PORT_STRIDE) * k;
        for p in [main.checked_sub(2)?, main, main + 1] {
            out.push(u16::try_from(p).ok()?);
        }
    }
    Some(out)
}

/// A `listenPort` whose shard ports are all free now.
fn free_listen_port(shards: usize) -> u16 {
    for _ in 0..200 {
        let p = free_port();
        if let Some(ports) = broker_ports(p, shards)
            && all_free(&ports)
        {
            return p;
        }
    }
    panic!("no free run of ports for {shards} broker shards");
}

fn value_of<'a>(extra: &[&'a str], key: &str) -> Option<&'a str> {
    extra
        .iter()
        .rev()
        .find_map(|a| a.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

impl Process {
    /// Starts `ringmq-broker` registered with the namesrv at `namesrv`, with `extra`
    /// `key=value` settings laid over the harness defaults (`shards` defaults to the CPU
    /// count, as the broker's own default), and waits until every shard is registered.
    pub fn broker(namesrv: SocketAddr, extra: &[&str]) -> BrokerProcess {
        let shards: usize = value_of(extra, "shards")
            .map(|v| v.parse().expect("shards=N"))
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let cluster = value_of(extra, "brokerClusterName")
            .unwrap_or("DefaultCluster")
            .to_owned();
        let broker_name = value_of(extra, "brokerName")
            .unwrap_or("broker-a")
            .to_owned();
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let listen_port = free_listen_port(shards);
            let used = broker_ports(listen_port, shards).unwrap_or_default();
            let metrics_port = loop {
                let p = free_port();
                if !used.contains(&p) {
                    break p;
                }
            };
            let dir = TempDir::new("broker");
            let mut args = vec![
                "-n".to_owned(),
                namesrv.to_string(),
                format!("storePathRootDir={}", dir.path().join("store").display()),
                "brokerIP1=127.0.0.1".to_owned(),
                format!("listenPort={listen_port}"),
                format!("metricsPort={metrics_port}"),
                format!("shards={shards}"),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, listen_port));
            match Process::spawn("ringmq-broker", args, dir, addr) {
                Ok(process) => {
                    let b = BrokerProcess {
                        process,
                        namesrv,
                        listen_port,
                        shards,
                        metrics_port,
                        cluster: cluster.clone(),
                        broker_name: broker_name.clone(),
                    };
                    b.wait_registered();
                    return b;
                }
                Err(e) => last_err = e,
            }
        }
        panic!("ringmq-broker did not start: {last_err}");
    }
}

impl BrokerProcess {
    /// Broker name of shard `k` (exactly `brokerName` with one shard).
    pub fn broker_name(&self, k: usize) -> String {
        if self.shards == 1 {
            self.broker_name.clone()
        } else {
            format!("{}-{k}", self.broker_name)
        }
    }

    /// Main address of shard `k`.
    pub fn shard_addr(&self, k: usize) -> SocketAddr {
        let port = self.listen_port + SHARD_PORT_STRIDE * k as u16;
        SocketAddr::from((Ipv4Addr::LOCALHOST, port))
    }

    /// VIP address (port − 2) of shard `k`.
    pub fn vip_addr(&self, k: usize) -> SocketAddr {
        let a = self.shard_addr(k);
        SocketAddr::from((Ipv4Addr::LOCALHOST, a.port() - 2))
    }

    /// A raw client connected to shard `k`.
    pub fn shard_client(&self, k: usize) -> RawClient {
        RawClient::connect(self.shard_addr(k))
    }

    /// The broker's store root (`storePathRootDir`).
    pub fn store_dir(&self) -> PathBuf {
        self.data_dir().join("store")
    }

    /// The namesrv's cluster info as JSON.
    pub fn cluster_info(&self) -> serde_json::Value {
        let mut ns = RawClient::connect(self.namesrv);
        json(&ns.call(plain_request(request::GET_BROKER_CLUSTER_INFO)))
    }

    /// Whether the namesrv lists every shard at its address.
    pub fn is_registered(&self) -> bool {
        let info = self.cluster_info();
        (0..self.shards).all(|k| {
            let addr = info["brokerAddrTable"][self.broker_name(k)]["brokerAddrs"]["0"].as_str();
            addr == Some(self.shard_addr(k).to_string().as_str())
        })
    }

    /// Whether the namesrv lists none of the shards.
    pub fn is_unregistered(&self) -> bool {
        let info = self.cluster_info();
        (0..self.shards).all(|k| info["brokerAddrTable"].get(self.broker_name(k)).is_none())
    }

    /// Waits until every shard is registered with the namesrv.
    pub fn wait_registered(&self) {
        wait_until(
            START_DEADLINE,
            "every broker shard is registered with the namesrv",
            || self.is_registered(),
        );
    }

    /// SIGKILL, no clean stop; returns once no shard port accepts connections any more.
    pub fn kill9(&mut self) {
        self.process.kill9();
        for k in 0..self.shards {
            crate::wait_refused(self.shard_addr(k));
        }
    }

    /// Starts the broker again on the same store and ports and waits until it is registered
    /// (after a kill -9 the namesrv drops the old registration when its connection closes;
    /// this waits for the new one).
    pub fn restart(&mut self) {
        if !self.has_exited() {
            self.kill9();
        }
        wait_until(START_DEADLINE, "the namesrv forgets the old broker", || {
            self.is_unregistered()
        });
        for attempt in 0.. {
            match self.process.restart() {
                Ok(()) => break,
                // The old process's ports may linger for a moment after a kill.
                Err(e) if attempt < 3 => eprintln!("restart attempt {attempt} failed: {e}"),
                Err(e) => panic!("ringmq-broker did not restart: {e}"),
            }
        }
        self.wait_registered();
    }

    /// SIGTERM, then waits for a clean exit (status 0).
    pub fn stop_cleanly(&mut self) {
        self.terminate();
        let status = self
            .wait_exit(Duration::from_secs(30))
            .expect("the broker exits after SIGTERM");
        assert!(
            status.success(),
            "broker exit status {status}; stderr:\n{}",
            self.stderr()
        );
    }

    /// The `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, self.metrics_port))
            .expect("connect to the metrics port");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").expect("write the request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read the metrics");
        text
    }

    /// The value of metric `name` for shard `k` (0 if absent).
    pub fn metric(&self, name: &str, k: usize) -> f64 {
        let prefix = format!("{name}{{shard=\"{k}\",");
        self.metrics_text()
            .lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// A property string: `k\x01v\x02` per pair.
pub fn props(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}\u{1}{v}\u{2}"))
        .collect()
}

fn java(mut cmd: Command, serialize: SerializeType) -> Command {
    cmd.language = LanguageCode::JAVA;
    cmd.version = 401;
    cmd.serialize = serialize;
    cmd
}

/// SEND_MESSAGE_V2 as a Java producer fills it (`queue_id < 0`: the broker picks).
pub fn send_v2(topic: &str, queue_id: i32, body: &[u8], properties: &str) -> Command {
    java(
        Command::request(request::SEND_MESSAGE_V2)
            .with_ext("a", "test_producer")
            .with_ext("b", topic)
            .with_ext("c", "TBW102")
            .with_ext("d", "4")
            .with_ext("e", queue_id.to_string())
            .with_ext("f", "0")
            .with_ext("g", "1700000000000")
            .with_ext("h", "0")
            .with_ext("i", properties)
            .with_ext("j", "0")
            .with_ext("k", "false")
            .with_ext("m", "false")
            .with_body(body.to_vec()),
        SerializeType::Json,
    )
}

/// SEND_MESSAGE (code 10) with the long key names.
pub fn send_v1(topic: &str, queue_id: i32, body: &[u8], properties: &str) -> Command {
    java(
        Command::request(request::SEND_MESSAGE)
            .with_ext("producerGroup", "test_producer")
            .with_ext("topic", topic)
            .with_ext("defaultTopic", "TBW102")
            .with_ext("defaultTopicQueueNums", "4")
            .with_ext("queueId", queue_id.to_string())
            .with_ext("sysFlag", "0")
            .with_ext("bornTimestamp", "1700000000000")
            .with_ext("flag", "0")
            .with_ext("properties", properties)
            .with_ext("reconsumeTimes", "0")
            .with_ext("unitMode", "false")
            .with_ext("batch", "false")
            .with_body(body.to_vec()),
        SerializeType::Json,
    )
}

/// SEND_BATCH_MESSAGE of `(body, properties)` entries.
pub fn send_batch(topic: &str, queue_id: i32, entries: &[(&[u8], String)]) -> Command {
    let mut body = Vec::new();
    for (b, p) in entries {
        encode_entry(
            &BatchEntry {
                flag: 0,
                body: b,
                properties: p,
            },
            &mut body,
        )
        .expect("encode a batch entry");
    }
    let mut cmd = send_v2(topic, queue_id, &[], "");
    cmd.code = request::SEND_BATCH_MESSAGE;
    cmd.ext.insert("m", "true");
    cmd.ext.remove("i");
    cmd.with_body(body)
}

/// PullSysFlag bits (spec §3.4).
pub mod pull_flag {
    pub const COMMIT_OFFSET: i32 = 0x01;
    pub const SUSPEND: i32 = 0x02;
    pub const SUBSCRIPTION: i32 = 0x04;
    pub const LITE_PULL: i32 = 0x10;
}

/// PULL_MESSAGE. With `subscription`, the SUBSCRIPTION flag is set and the expression sent.
pub fn pull(
    topic: &str,
    queue_id: i32,
    offset: i64,
    max: i32,
    sys_flag: i32,
    subscription: Option<&str>,
) -> Command {
    let flag = sys_flag
        | if subscription.is_some() {
            pull_flag::SUBSCRIPTION
        } else {
            0
        };
    let mut cmd = Command::request(request::PULL_MESSAGE)
        .with_ext("consumerGroup", GROUP)
        .with_ext("topic", topic)
        .with_ext("queueId", queue_id.to_string())
        .with_ext("queueOffset", offset.to_string())
        .with_ext("maxMsgNums", max.to_string())
        .with_ext("sysFlag", flag.to_string())
        .with_ext("commitOffset", "0")
        .with_ext("suspendTimeoutMillis", "15000")
        .with_ext("subVersion", "0")
        .with_ext("expressionType", "TAG");
    if let Some(s) = subscription {
        cmd.ext.insert("subscription", s);
    }
    java(cmd, SerializeType::Json)
}

/// HEART_BEAT from client `client_id`: producer group `test_producer`, and consumer group
/// `group` subscribed to `subs` (topic, expression, subVersion) — fastjson's shape.
pub fn heartbeat(client_id: &str, group: &str, subs: &[(&str, &str, i64)]) -> Command {
    let subs: Vec<String> = subs
        .iter()
        .map(|(t, e, v)| {
            format!(
                r#"{{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"{e}","subVersion":{v},"tagsSet":[],"topic":"{t}"}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"clientID":"{client_id}","consumerDataSet":[{{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"{group}","messageModel":"CLUSTERING","subscriptionDataSet":[{}],"unitMode":false}}],"producerDataSet":[{{"groupName":"test_producer"}},{{"groupName":"CLIENT_INNER_PRODUCER"}}]}}"#,
        subs.join(",")
    );
    java(
        Command::request(request::HEART_BEAT).with_body(body.into_bytes()),
        SerializeType::Json,
    )
}

/// A request with `topic`/`queueId` ext (GET_MAX_OFFSET, GET_MIN_OFFSET, ...).
pub fn queue_request(code: i32, topic: &str, queue_id: i32) -> Command {
    java(
        Command::request(code)
            .with_ext("topic", topic)
            .with_ext("queueId", queue_id.to_string()),
        SerializeType::Json,
    )
}

/// QUERY_CONSUMER_OFFSET for [`GROUP`].
pub fn query_offset(topic: &str, queue_id: i32) -> Command {
    queue_request(request::QUERY_CONSUMER_OFFSET, topic, queue_id).with_ext("consumerGroup", GROUP)
}

/// UPDATE_CONSUMER_OFFSET for [`GROUP`] (send it oneway with `mark_oneway` as clients do).
pub fn update_offset(topic: &str, queue_id: i32, offset: i64) -> Command {
    queue_request(request::UPDATE_CONSUMER_OFFSET, topic, queue_id)
        .with_ext("consumerGroup", GROUP)
        .with_ext("commitOffset", offset.to_string())
}

/// UPDATE_AND_CREATE_TOPIC as mqadmin sends it.
pub fn create_topic(topic: &str, queues: i32, perm: i32) -> Command {
    java(
        Command::request(request::UPDATE_AND_CREATE_TOPIC)
            .with_ext("topic", topic)
            .with_ext("defaultTopic", "TBW102")
            .with_ext("readQueueNums", queues.to_string())
            .with_ext("writeQueueNums", queues.to_string())
            .with_ext("perm", perm.to_string())
            .with_ext("topicFilterType", "SINGLE_TAG")
            .with_ext("topicSysFlag", "0")
            .with_ext("order", "false"),
        SerializeType::Json,
    )
}

/// An ext value parsed as an integer; panics naming the key if absent or not a number.
pub fn ext_i64(cmd: &Command, key: &str) -> i64 {
    cmd.ext
        .get(key)
        .unwrap_or_else(|| panic!("response lacks ext {key}: {cmd:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("ext {key} is not a number: {cmd:?}"))
}
