//! A broker's topic table as it travels to the namesrv (spec §3.1 REGISTER_BROKER, §5.4):
//! `TopicConfig`, `DataVersion`, `TopicConfigSerializeWrapper`, `RegisterBrokerBody`, in JSON
//! and in the compressed form.
//!
//! Compressed REGISTER_BROKER body (header ext `compressed=true`): one zlib stream (Java
//! `DeflaterOutputStream`, best compression) holding, all integers `i32` big-endian:
//!
//! ```text
//! +-----+-------------------+-------+----------------------------------------+
//! | len | DataVersion JSON  | count | count × (len | TopicConfig line)       |
//! +-----+-------------------+-------+----------------------------------------+
//! | len | filterServerList JSON array                                        |
//! +-----+--------------------------------------------------------------------+
//! | mappings | mappings × (len | TopicQueueMappingInfo JSON)  (version ≥ V5_0_0 only)
//! +----------+---------------------------------------------------------------+
//! TopicConfig line = "topicName readQueueNums writeQueueNums perm topicFilterType[ attributesJSON]"
//! ```
//!
//! The line form carries no `topicSysFlag` and no `order`: a compressed registration loses
//! them, as it does in Java.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::lenient::{self, JsonBodyError, i32_lenient, i64_lenient, null_as_default};

/// `MQVersion` ordinal from which REGISTER_BROKER carries a `RegisterBrokerBody`; older
/// brokers send a bare `TopicConfigSerializeWrapper`.
pub const VERSION_V3_0_11: i32 = 37;
/// `MQVersion` ordinal from which the compressed body has the static-topic mapping section.
pub const VERSION_V5_0_0: i32 = 413;

/// Largest inflated compressed body we accept. A Java broker with 100 000 topics inflates to
/// about 5 MiB; the bound keeps a small hostile body from inflating without limit.
pub const REGISTER_BODY_INFLATED_MAX: u64 = 64 * 1024 * 1024;

/// PermName bits (spec §5.7).
pub mod perm {
    pub const PRIORITY: i32 = 8;
    pub const READ: i32 = 4;
    pub const WRITE: i32 = 2;
    pub const INHERIT: i32 = 1;
}

/// How consumers filter a topic; only the name travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicFilterType {
    #[default]
    SingleTag,
    MultiTag,
}

impl TopicFilterType {
    pub fn name(self) -> &'static str {
        match self {
            TopicFilterType::SingleTag => "SINGLE_TAG",
            TopicFilterType::MultiTag => "MULTI_TAG",
        }
    }

    /// Java's enum name; fastjson also accepts the ordinal, so do we.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SINGLE_TAG" | "0" => Some(TopicFilterType::SingleTag),
            "MULTI_TAG" | "1" => Some(TopicFilterType::MultiTag),
            _ => None,
        }
    }
}

impl Serialize for TopicFilterType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TopicFilterType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = TopicFilterType;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("SINGLE_TAG or MULTI_TAG")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TopicFilterType, E> {
                TopicFilterType::from_name(v)
                    .ok_or_else(|| E::custom(format!("unknown topicFilterType {v:?}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TopicFilterType, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TopicFilterType, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<TopicFilterType, E> {
                Ok(TopicFilterType::SingleTag)
            }
        }
        d.deserialize_any(V)
    }
}

/// One topic of a broker. Missing JSON fields take Java's constructor defaults (16/16 queues,
/// perm 6, SINGLE_TAG).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    pub topic_name: String,
    #[serde(deserialize_with = "i32_lenient")]
    pub read_queue_nums: i32,
    #[serde(deserialize_with = "i32_lenient")]
    pub write_queue_nums: i32,
    #[serde(deserialize_with = "i32_lenient")]
    pub perm: i32,
    pub topic_filter_type: TopicFilterType,
    #[serde(deserialize_with = "i32_lenient")]
    pub topic_sys_flag: i32,
    pub order: bool,
    /// 5.x topic attributes, e.g. `{"message.type":"NORMAL"}`.
    #[serde(deserialize_with = "null_as_default")]
    pub attributes: BTreeMap<String, String>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: perm::READ | perm::WRITE,
            topic_filter_type: TopicFilterType::SingleTag,
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

impl TopicConfig {
    /// The space-separated line of the compressed body. Attributes are appended only when
    /// present, so Java 4.x (which wants exactly five fields) still reads it.
    pub fn to_line(&self) -> String {
        let mut line = format!(
            "{} {} {} {} {}",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.perm,
            self.topic_filter_type.name()
        );
        if !self.attributes.is_empty() {
            line.push(' ');
            line.push_str(&String::from_utf8_lossy(&lenient::to_json(
                &self.attributes,
            )));
        }
        line
    }

    /// Parses a line of the compressed body; `None` if it does not have Java's shape.
    pub fn from_line(line: &str) -> Option<TopicConfig> {
        let mut parts = line.splitn(6, ' ');
        let topic_name = parts.next()?.to_owned();
        let read_queue_nums = parts.next()?.parse().ok()?;
        let write_queue_nums = parts.next()?.parse().ok()?;
        let perm = parts.next()?.parse().ok()?;
        let topic_filter_type = TopicFilterType::from_name(parts.next()?)?;
        let attributes = match parts.next() {
            Some(json) => serde_json::from_str(json).ok()?,
            None => BTreeMap::new(),
        };
        Some(TopicConfig {
            topic_name,
            read_queue_nums,
            write_queue_nums,
            perm,
            topic_filter_type,
            attributes,
            ..TopicConfig::default()
        })
    }
}

/// Version of a broker's topic table: the broker bumps `counter` and `timestamp` on every
/// change; the namesrv compares versions to decide whether to rewrite its queue data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    #[serde(deserialize_with = "i64_lenient")]
    pub state_version: i64,
    #[serde(deserialize_with = "i64_lenient")]
    pub timestamp: i64,
    #[serde(deserialize_with = "i64_lenient")]
    pub counter: i64,
}

impl DataVersion {
    /// The version after one change at `now_ms`.
    pub fn next(self, now_ms: i64) -> DataVersion {
        DataVersion {
            state_version: self.state_version,
            timestamp: now_ms,
            counter: self.counter.wrapping_add(1),
        }
    }
}

/// A broker's topic table (also the GET_ALL_TOPIC_CONFIG body).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    #[serde(deserialize_with = "null_as_default")]
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
    /// 5.x static-topic mappings, topic → `TopicQueueMappingInfo`; kept opaque.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub topic_queue_mapping_info_map: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_data_version: Option<DataVersion>,
}

/// The REGISTER_BROKER body (version ≥ V3_0_11).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    #[serde(deserialize_with = "null_as_default")]
    pub filter_server_list: Vec<String>,
}

/// Why a REGISTER_BROKER body does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterBodyError {
    Json(JsonBodyError),
    /// The zlib stream is corrupt.
    Inflate(String),
    /// The inflated body is larger than [`REGISTER_BODY_INFLATED_MAX`].
    TooLarge,
    /// The inflated body ends inside `field`.
    Truncated {
        field: &'static str,
    },
    /// A length or count is negative.
    BadLength {
        field: &'static str,
        len: i32,
    },
    /// A TopicConfig line does not have Java's shape.
    BadTopicLine(String),
}

impl std::fmt::Display for RegisterBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterBodyError::Json(e) => write!(f, "{e}"),
            RegisterBodyError::Inflate(e) => write!(f, "compressed register body: {e}"),
            RegisterBodyError::TooLarge => write!(
                f,
                "compressed register body inflates beyond {REGISTER_BODY_INFLATED_MAX} bytes"
            ),
            RegisterBodyError::Truncated { field } => {
                write!(f, "compressed register body ends inside {field}")
            }
            RegisterBodyError::BadLength { field, len } => {
                write!(
                    f,
                    "compressed register body: {field} length {len} is negative"
                )
            }
            RegisterBodyError::BadTopicLine(line) => {
                write!(
                    f,
                    "compressed register body: bad topic config line {line:?}"
                )
            }
        }
    }
}

impl std::error::Error for RegisterBodyError {}

impl From<JsonBodyError> for RegisterBodyError {
    fn from(e: JsonBodyError) -> Self {
        RegisterBodyError::Json(e)
    }
}

impl RegisterBrokerBody {
    /// Reads the body of a REGISTER_BROKER request sent with protocol `version`.
    ///
    /// An empty body is an empty topic table at version zero (Java does the same), a broker
    /// older than V3_0_11 sends a bare [`TopicConfigSerializeWrapper`], and `compressed`
    /// selects the deflated format of the module docs.
    pub fn decode(
        body: &[u8],
        compressed: bool,
        version: i32,
    ) -> Result<RegisterBrokerBody, RegisterBodyError> {
        if body.is_empty() {
            return Ok(RegisterBrokerBody::default());
        }
        if version < VERSION_V3_0_11 {
            let wrapper = lenient::from_slice("TopicConfigSerializeWrapper", body)?;
            return Ok(RegisterBrokerBody {
                topic_config_serialize_wrapper: wrapper,
                filter_server_list: Vec::new(),
            });
        }
        if compressed {
            return Self::decode_compressed(body, version);
        }
        Ok(lenient::from_slice("RegisterBrokerBody", body)?)
    }

    /// Standard JSON (the default, uncompressed REGISTER_BROKER body).
    pub fn to_json(&self) -> Vec<u8> {
        lenient::to_json(self)
    }

    /// The compressed form for a request sent with protocol `version`.
    pub fn encode_compressed(&self, version: i32) -> Vec<u8> {
        let wrapper = &self.topic_config_serialize_wrapper;
        let mut raw = Vec::new();
        put_block(&mut raw, &lenient::to_json(&wrapper.data_version));
        put_count(&mut raw, wrapper.topic_config_table.len());
        for config in wrapper.topic_config_table.values() {
            put_block(&mut raw, config.to_line().as_bytes());
        }
        put_block(&mut raw, &lenient::to_json(&self.filter_server_list));
        if version >= VERSION_V5_0_0 {
            put_count(&mut raw, wrapper.topic_queue_mapping_info_map.len());
            for info in wrapper.topic_queue_mapping_info_map.values() {
                put_block(&mut raw, &lenient::to_json(info));
            }
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        // Writing into a Vec cannot fail.
        z.write_all(&raw).expect("deflate into memory");
        z.finish().expect("deflate into memory")
    }

    fn decode_compressed(
        body: &[u8],
        version: i32,
    ) -> Result<RegisterBrokerBody, RegisterBodyError> {
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(body)
            .take(REGISTER_BODY_INFLATED_MAX + 1)
            .read_to_end(&mut raw)
            .map_err(|e| RegisterBodyError::Inflate(e.to_string()))?;
        if raw.len() as u64 > REGISTER_BODY_INFLATED_MAX {
            return Err(RegisterBodyError::TooLarge);
        }
        let mut r = Reader { buf: &raw };
        let mut wrapper = TopicConfigSerializeWrapper {
            data_version: lenient::from_slice("DataVersion", r.block("dataVersion")?)?,
            ..Default::default()
        };
        let topics = r.count("topic count")?;
        for _ in 0..topics {
            let line = r.block("topic config")?;
            let line = String::from_utf8_lossy(line);
            let config = TopicConfig::from_line(&line)
                .ok_or_else(|| RegisterBodyError::BadTopicLine(line.into_owned()))?;
            wrapper
                .topic_config_table
                .insert(config.topic_name.clone(), config);
        }
        let filter_server_list =
            lenient::from_slice("filterServerList", r.block("filterServerList")?)?;
        if version >= VERSION_V5_0_0 {
            let mappings = r.count("mapping count")?;
            for _ in 0..mappings {
                let info: serde_json::Value =
                    lenient::from_slice("TopicQueueMappingInfo", r.block("mapping info")?)?;
                let topic = info
                    .get("topic")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                wrapper.topic_queue_mapping_info_map.insert(topic, info);
            }
        }
        Ok(RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list,
        })
    }
}

fn put_count(dst: &mut Vec<u8>, n: usize) {
    let n = i32::try_from(n).expect("fewer than 2^31 entries in a register body");
    dst.extend_from_slice(&n.to_be_bytes());
}

fn put_block(dst: &mut Vec<u8>, bytes: &[u8]) {
    put_count(dst, bytes.len());
    dst.extend_from_slice(bytes);
}

/// Cursor over the inflated body; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RegisterBodyError> {
        if self.buf.len() < n {
            return Err(RegisterBodyError::Truncated { field });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn count(&mut self, field: &'static str) -> Result<usize, RegisterBodyError> {
        let bytes: [u8; 4] = self
            .take(4, field)?
            .try_into()
            .map_err(|_| RegisterBodyError::Truncated { field })?;
        let n = i32::from_be_bytes(bytes);
        usize::try_from(n).map_err(|_| RegisterBodyError::BadLength { field, len: n })
    }

    fn block(&mut self, field: &'static str) -> Result<&'a [u8], RegisterBodyError> {
        let n = self.count(field)?;
        self.take(n, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version_counter: i64) -> RegisterBrokerBody {
        let mut table = BTreeMap::new();
        for (name, queues, perm) in [("TopicTest", 4, 6), ("TBW102", 8, 7)] {
            table.insert(
                name.to_owned(),
                TopicConfig {
                    topic_name: name.to_owned(),
                    read_queue_nums: queues,
                    write_queue_nums: queues,
                    perm,
                    ..TopicConfig::default()
                },
            );
        }
        if let Some(t) = table.get_mut("TopicTest") {
            t.attributes.insert("message.type".into(), "NORMAL".into());
        }
        RegisterBrokerBody {
            topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
                topic_config_table: table,
                data_version: DataVersion {
                    state_version: 0,
                    timestamp: 1_700_000_000_000,
                    counter: version_counter,
                },
                ..Default::default()
            },
            filter_server_list: Vec::new(),
        }
    }

    #[test]
    fn json_round_trip_and_java_shape() {
        let body = sample(12);
        let json = body.to_json();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let tc = &v["topicConfigSerializeWrapper"]["topicConfigTable"]["TBW102"];
        assert_eq!(tc["topicFilterType"], "SINGLE_TAG");
        assert_eq!(tc["perm"], 7);
        assert_eq!(tc["order"], false);
        assert_eq!(
            v["topicConfigSerializeWrapper"]["dataVersion"]["counter"],
            12
        );
        assert_eq!(v["filterServerList"], serde_json::json!([]));
        assert_eq!(RegisterBrokerBody::decode(&json, false, 479).unwrap(), body);
    }

    #[test]
    fn compressed_round_trip_in_both_versions() {
        let body = sample(3);
        for version in [VERSION_V5_0_0 - 1, VERSION_V5_0_0, 479] {
            let z = body.encode_compressed(version);
            assert_eq!(z.first(), Some(&0x78), "zlib header");
            let back = RegisterBrokerBody::decode(&z, true, version).unwrap();
            assert_eq!(back, body, "version {version}");
        }
    }

    #[test]
    fn compressed_loses_sys_flag_like_java() {
        let mut body = sample(1);
        for c in body
            .topic_config_serialize_wrapper
            .topic_config_table
            .values_mut()
        {
            c.topic_sys_flag = 3;
            c.order = true;
        }
        let back = RegisterBrokerBody::decode(&body.encode_compressed(479), true, 479).unwrap();
        assert!(
            back.topic_config_serialize_wrapper
                .topic_config_table
                .values()
                .all(|c| c.topic_sys_flag == 0 && !c.order)
        );
    }

    #[test]
    fn topic_lines() {
        let c = TopicConfig::from_line("T 4 2 6 MULTI_TAG").unwrap();
        assert_eq!((c.read_queue_nums, c.write_queue_nums, c.perm), (4, 2, 6));
        assert_eq!(c.topic_filter_type, TopicFilterType::MultiTag);
        assert_eq!(c.to_line(), "T 4 2 6 MULTI_TAG");
        let c = TopicConfig::from_line(r#"T 1 1 6 SINGLE_TAG {"a":"b c"}"#).unwrap();
        assert_eq!(c.attributes.get("a").map(String::as_str), Some("b c"));
        for bad in [
            "",
            "T",
            "T 1 1 6",
            "T x 1 6 SINGLE_TAG",
            "T 1 1 6 OTHER",
            "T 1 1 6 SINGLE_TAG {",
        ] {
            assert!(TopicConfig::from_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn old_and_empty_bodies() {
        let body = sample(5);
        let wrapper = lenient::to_json(&body.topic_config_serialize_wrapper);
        let back = RegisterBrokerBody::decode(&wrapper, false, VERSION_V3_0_11 - 1).unwrap();
        assert_eq!(back, body);
        assert_eq!(
            RegisterBrokerBody::decode(&[], true, 479).unwrap(),
            RegisterBrokerBody::default()
        );
    }

    #[test]
    fn corrupt_compressed_bodies_are_errors() {
        let z = sample(1).encode_compressed(479);
        assert!(matches!(
            RegisterBrokerBody::decode(b"not zlib", true, 479),
            Err(RegisterBodyError::Inflate(_))
        ));
        for cut in 0..z.len() {
            let _ = RegisterBrokerBody::decode(z.get(..cut).unwrap(), true, 479);
        }
        // A well-formed stream whose topic count overruns the data.
        let mut raw = Vec::new();
        put_block(&mut raw, br#"{"counter":1}"#);
        put_count(&mut raw, 1000);
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw).unwrap();
        assert_eq!(
            RegisterBrokerBody::decode(&enc.finish().unwrap(), true, 479),
            Err(RegisterBodyError::Truncated {
                field: "topic config"
            })
        );
    }

    #[test]
    fn reads_java_fastjson_wrapper() {
        // Longs as strings, alphabetical keys, enum by name, missing 5.x fields.
        let java = br#"{"dataVersion":{"counter":"7","stateVersion":0,"timestamp":"1700000000000"},"topicConfigTable":{"T":{"order":false,"perm":6,"readQueueNums":2,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":2}}}"#;
        let body = RegisterBrokerBody::decode(java, false, 36).unwrap();
        let w = body.topic_config_serialize_wrapper;
        assert_eq!(w.data_version.counter, 7);
        assert_eq!(
            w.topic_config_table.get("T").map(|c| c.write_queue_nums),
            Some(2)
        );
    }
}
