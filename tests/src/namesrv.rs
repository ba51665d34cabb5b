//! Request builders for black-box name server tests. Registration bodies are written as a
//! Java broker's fastjson writes them (alphabetical keys), not through our own serializer,
//! so the tests check the server against the wire format rather than against itself.

use ringmq_codec::body::topic_config::{
    DataVersion, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
};
use ringmq_codec::codes::request;
use ringmq_codec::{Command, LanguageCode, SerializeType};

pub const CLUSTER: &str = "DefaultCluster";

/// One topic a test broker hosts.
#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub queues: i32,
    pub perm: i32,
}

/// A broker as a test registers it.
#[derive(Debug, Clone)]
pub struct Broker {
    pub cluster: String,
    pub name: String,
    pub addr: String,
    pub id: i64,
    pub topics: Vec<Topic>,
    /// DataVersion counter; bump it to announce changed topics.
    pub counter: i64,
    /// Broker-given liveness timeout (`heartbeatTimeoutMillis`).
    pub heartbeat_timeout_ms: Option<i64>,
}

impl Broker {
    /// A broker hosting `TBW102` (8 queues, perm 7) and `TopicTest` (4 queues, perm 6), as a
    /// Java broker with auto-create on would.
    pub fn new(name: &str, addr: &str, id: i64) -> Broker {
        Broker {
            cluster: CLUSTER.to_owned(),
            name: name.to_owned(),
            addr: addr.to_owned(),
            id,
            topics: vec![
                Topic {
                    name: "TBW102".into(),
                    queues: 8,
                    perm: 7,
                },
                Topic {
                    name: "TopicTest".into(),
                    queues: 4,
                    perm: 6,
                },
            ],
            counter: 1,
            heartbeat_timeout_ms: None,
        }
    }

    pub fn with_topic(mut self, name: &str, queues: i32, perm: i32) -> Broker {
        self.topics.push(Topic {
            name: name.to_owned(),
            queues,
            perm,
        });
        self
    }

    pub fn in_cluster(mut self, cluster: &str) -> Broker {
        self.cluster = cluster.to_owned();
        self
    }

    /// The RegisterBrokerBody as Java's fastjson writes it.
    pub fn body_json(&self) -> String {
        let topics: Vec<String> = self
            .topics
            .iter()
            .map(|t| {
                format!(
                    r#""{n}":{{"order":false,"perm":{p},"readQueueNums":{q},"topicFilterType":"SINGLE_TAG","topicName":"{n}","topicSysFlag":0,"writeQueueNums":{q}}}"#,
                    n = t.name,
                    p = t.perm,
                    q = t.queues
                )
            })
            .collect();
        format!(
            r#"{{"filterServerList":[],"topicConfigSerializeWrapper":{{"dataVersion":{{"counter":{c},"stateVersion":0,"timestamp":1700000000000}},"topicConfigTable":{{{t}}}}}}}"#,
            c = self.counter,
            t = topics.join(",")
        )
    }

    fn request(&self, code: i32, serialize: SerializeType) -> Command {
        let mut cmd = Command::request(code)
            .with_ext("brokerName", self.name.as_str())
            .with_ext("brokerAddr", self.addr.as_str())
            .with_ext("clusterName", self.cluster.as_str())
            .with_ext("brokerId", self.id.to_string());
        cmd.language = LanguageCode::JAVA;
        cmd.serialize = serialize;
        cmd
    }

    /// REGISTER_BROKER with an uncompressed JSON body, header in `serialize`.
    pub fn register(&self, serialize: SerializeType) -> Command {
        let mut cmd = self
            .request(request::REGISTER_BROKER, serialize)
            .with_ext("haServerAddr", format!("{}-ha", self.addr))
            .with_ext("compressed", "false")
            .with_ext("enableActingMaster", "false")
            .with_body(self.body_json().into_bytes());
        if let Some(t) = self.heartbeat_timeout_ms {
            cmd.ext.insert("heartbeatTimeoutMillis", t.to_string());
        }
        cmd
    }

    /// REGISTER_BROKER with the compressed body (ringmq-codec's encoder) and its CRC.
    pub fn register_compressed(&self) -> Command {
        let mut wrapper = TopicConfigSerializeWrapper {
            data_version: DataVersion {
                state_version: 0,
                timestamp: 1_700_000_000_000,
                counter: self.counter,
            },
            ..Default::default()
        };
        for t in &self.topics {
            wrapper.topic_config_table.insert(
                t.name.clone(),
                TopicConfig {
                    topic_name: t.name.clone(),
                    read_queue_nums: t.queues,
                    write_queue_nums: t.queues,
                    perm: t.perm,
                    ..TopicConfig::default()
                },
            );
        }
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list: Vec::new(),
        };
        let mut cmd = self.register(SerializeType::Json);
        let bytes = body.encode_compressed(cmd.version);
        let crc = crc32fast::hash(&bytes) & 0x7FFF_FFFF;
        cmd.ext.insert("compressed", "true");
        cmd.ext.insert("bodyCrc32", crc.to_string());
        cmd.with_body(bytes)
    }

    /// UNREGISTER_BROKER.
    pub fn unregister(&self) -> Command {
        self.request(request::UNREGISTER_BROKER, SerializeType::Json)
    }

    /// BROKER_HEARTBEAT.
    pub fn heartbeat(&self) -> Command {
        self.request(request::BROKER_HEARTBEAT, SerializeType::Json)
    }
}

/// GET_ROUTEINFO_BY_TOPIC in the given serialization.
pub fn route_request(topic: &str, serialize: SerializeType) -> Command {
    let mut cmd = Command::request(request::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", topic);
    cmd.language = LanguageCode::JAVA;
    cmd.serialize = serialize;
    cmd
}

/// A request without header fields.
pub fn plain_request(code: i32) -> Command {
    let mut cmd = Command::request(code);
    cmd.language = LanguageCode::JAVA;
    cmd
}

/// The body of `cmd` parsed as JSON; panics with the body text if it is not JSON.
pub fn json(cmd: &Command) -> serde_json::Value {
    serde_json::from_slice(&cmd.body).unwrap_or_else(|e| {
        panic!(
            "body is not standard JSON ({e}): {}",
            String::from_utf8_lossy(&cmd.body)
        )
    })
}
