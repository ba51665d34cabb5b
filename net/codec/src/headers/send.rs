//! Send and redelivery headers (spec §3.3, §3.8).
//!
//! One request struct serves SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and
//! SEND_BATCH_MESSAGE (320). Code 10 spells the keys out; 310 and 320 use one letter each:
//!
//! ```text
//! V1 key                 V2   type    V1 key               V2   type
//! producerGroup          a    R str   properties           i    o str
//! topic                  b    R str   reconsumeTimes       j    o int
//! defaultTopic           c    R str   unitMode             k    o bool
//! defaultTopicQueueNums  d    R int   maxReconsumeTimes    l    o int
//! queueId                e    R int   batch                m    o bool
//! sysFlag                f    R int   bname (5.x)          n    o str
//! bornTimestamp          g    R long
//! flag                   h    R int
//! ```
//!
//! The decoder picks the spelling from the keys present, not from the request code, so a
//! client that sends either spelling under any of the three codes is understood. The encoder
//! writes V2, the spelling every Java client uses.

use crate::command::ExtFields;
use crate::typed::{ExtWriter, FieldError, Header, WireValue};

/// SEND_MESSAGE / SEND_MESSAGE_V2 / SEND_BATCH_MESSAGE request, with V1 field names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendMessageRequestHeader {
    pub producer_group: String,
    pub topic: String,
    /// Auto-create template topic, `TBW102`.
    pub default_topic: String,
    /// Queue count for an auto-created topic (producer default 4).
    pub default_topic_queue_nums: i32,
    /// Target queue; negative lets the broker pick.
    pub queue_id: i32,
    /// MessageSysFlag bits from the client (compression, transaction prepared).
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    /// User flag, opaque to the broker.
    pub flag: i32,
    /// Property string (spec §4.3): TAGS, KEYS, UNIQ_KEY, WAIT, DELAY, …
    pub properties: Option<String>,
    pub reconsume_times: Option<i32>,
    /// Legacy; Java 4.x always sends it, absent reads as false as in Java.
    pub unit_mode: bool,
    pub max_reconsume_times: Option<i32>,
    /// Absent reads as false as in Java.
    pub batch: bool,
    /// 5.x target broker name (`n`, or the RpcRequestHeader `bname` in V1 spelling).
    pub broker_name: Option<String>,
}

/// One header field in both spellings. `label` names the field in errors about a V2 request,
/// where a bare `e` would tell the reader nothing.
struct Key {
    v1: &'static str,
    v2: &'static str,
    label: &'static str,
    /// Position in [`ALL_KEYS`]: the V2 letter's distance from `a`.
    slot: usize,
}

const PRODUCER_GROUP: Key = key("producerGroup", "a", "a (producerGroup)");
const TOPIC: Key = key("topic", "b", "b (topic)");
const DEFAULT_TOPIC: Key = key("defaultTopic", "c", "c (defaultTopic)");
const DEFAULT_TOPIC_QUEUE_NUMS: Key =
    key("defaultTopicQueueNums", "d", "d (defaultTopicQueueNums)");
const QUEUE_ID: Key = key("queueId", "e", "e (queueId)");
const SYS_FLAG: Key = key("sysFlag", "f", "f (sysFlag)");
const BORN_TIMESTAMP: Key = key("bornTimestamp", "g", "g (bornTimestamp)");
const FLAG: Key = key("flag", "h", "h (flag)");
const PROPERTIES: Key = key("properties", "i", "i (properties)");
const RECONSUME_TIMES: Key = key("reconsumeTimes", "j", "j (reconsumeTimes)");
const UNIT_MODE: Key = key("unitMode", "k", "k (unitMode)");
const MAX_RECONSUME_TIMES: Key = key("maxReconsumeTimes", "l", "l (maxReconsumeTimes)");
const BATCH: Key = key("batch", "m", "m (batch)");
const BROKER_NAME: Key = key("bname", "n", "n (bname)");

const fn key(v1: &'static str, v2: &'static str, label: &'static str) -> Key {
    // Every V2 key is one letter (`slots_follow_the_v2_letters`); an empty one, which none
    // is, would get a slot past the end and never be found.
    let slot = match v2.as_bytes() {
        [c, ..] => (*c - b'a') as usize,
        [] => usize::MAX,
    };
    Key {
        v1,
        v2,
        label,
        slot,
    }
}

/// Which key set a send request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendSpelling {
    /// Long names (SEND_MESSAGE, code 10).
    V1,
    /// One-letter names (SEND_MESSAGE_V2 310, SEND_BATCH_MESSAGE 320).
    V2,
}

impl SendSpelling {
    /// V2 when either V2 key every client sends (`a` group, `b` topic) is present.
    ///
    /// No 5.x RpcRequestHeader key is a single letter, so extra keys cannot mislead this.
    pub fn detect(ext: &ExtFields) -> SendSpelling {
        if ext.get(PRODUCER_GROUP.v2).is_some() || ext.get(TOPIC.v2).is_some() {
            SendSpelling::V2
        } else {
            SendSpelling::V1
        }
    }
}

/// The text of every field present, found in one pass over the map, by position in
/// [`ALL_KEYS`]. (A lookup per field was 14 scans of the map, ~4 % of a broker's samples
/// under load.)
struct Texts<'e> {
    text: [Option<&'e str>; ALL_KEYS.len()],
    spelling: SendSpelling,
}

impl<'e> Texts<'e> {
    fn of(ext: &'e ExtFields, spelling: SendSpelling) -> Self {
        let mut text = [None; ALL_KEYS.len()];
        for (k, v) in ext.iter() {
            let slot = match spelling {
                // `a`..`n` are ALL_KEYS in order.
                SendSpelling::V2 => match k.as_bytes() {
                    [c @ b'a'..=b'n'] => Some(usize::from(c - b'a')),
                    _ => None,
                },
                SendSpelling::V1 => ALL_KEYS.iter().position(|f| f.v1 == k),
            };
            if let Some(t) = slot.and_then(|i| text.get_mut(i)) {
                *t = Some(v);
            }
        }
        Texts { text, spelling }
    }

    /// How errors name `key`: a V2 field by its label, where a bare `e` would tell the
    /// reader nothing.
    fn name(&self, key: &Key) -> &'static str {
        match self.spelling {
            SendSpelling::V1 => key.v1,
            SendSpelling::V2 => key.label,
        }
    }

    /// The field under the chosen spelling.
    fn read<T: WireValue>(&self, key: &Key) -> Result<Option<T>, FieldError> {
        match self.text.get(key.slot).copied().flatten() {
            None => Ok(None),
            Some(text) => T::parse(text)
                .map(Some)
                .ok_or_else(|| FieldError::Malformed {
                    key: self.name(key),
                    value: text.to_owned(),
                    expected: T::EXPECTED,
                }),
        }
    }

    fn required<T: WireValue>(&self, key: &Key) -> Result<T, FieldError> {
        self.read(key)?.ok_or(FieldError::Missing {
            key: self.name(key),
        })
    }
}

impl SendMessageRequestHeader {
    /// The extFields keys, as [`Header::encode`] writes them (V2), of the birth time and the
    /// properties: what changes from one send of a producer's stream to the next.
    pub const PER_MESSAGE_KEYS: [&'static str; 2] = [BORN_TIMESTAMP.v2, PROPERTIES.v2];

    /// Decodes with an explicit spelling (for callers that trust the request code).
    pub fn decode_spelling(ext: &ExtFields, sp: SendSpelling) -> Result<Self, FieldError> {
        let t = Texts::of(ext, sp);
        Ok(SendMessageRequestHeader {
            producer_group: t.required(&PRODUCER_GROUP)?,
            topic: t.required(&TOPIC)?,
            default_topic: t.required(&DEFAULT_TOPIC)?,
            default_topic_queue_nums: t.required(&DEFAULT_TOPIC_QUEUE_NUMS)?,
            queue_id: t.required(&QUEUE_ID)?,
            sys_flag: t.required(&SYS_FLAG)?,
            born_timestamp_ms: t.required(&BORN_TIMESTAMP)?,
            flag: t.required(&FLAG)?,
            properties: t.read(&PROPERTIES)?,
            reconsume_times: t.read(&RECONSUME_TIMES)?,
            unit_mode: t.read(&UNIT_MODE)?.unwrap_or(false),
            max_reconsume_times: t.read(&MAX_RECONSUME_TIMES)?,
            batch: t.read(&BATCH)?.unwrap_or(false),
            broker_name: t.read(&BROKER_NAME)?,
        })
    }

    /// Encodes with an explicit spelling; [`Header::encode`] writes V2.
    pub fn encode_spelling(&self, ext: &mut ExtFields, sp: SendSpelling) {
        // The keys are distinct in both spellings (`keys_are_distinct_per_spelling`), so the
        // writer may append without lookups.
        let w = &mut ExtWriter::new(ext);
        put(w, sp, &PRODUCER_GROUP, &self.producer_group);
        put(w, sp, &TOPIC, &self.topic);
        put(w, sp, &DEFAULT_TOPIC, &self.default_topic);
        put(
            w,
            sp,
            &DEFAULT_TOPIC_QUEUE_NUMS,
            &self.default_topic_queue_nums,
        );
        put(w, sp, &QUEUE_ID, &self.queue_id);
        put(w, sp, &SYS_FLAG, &self.sys_flag);
        put(w, sp, &BORN_TIMESTAMP, &self.born_timestamp_ms);
        put(w, sp, &FLAG, &self.flag);
        if let Some(p) = &self.properties {
            put(w, sp, &PROPERTIES, p);
        }
        if let Some(n) = &self.reconsume_times {
            put(w, sp, &RECONSUME_TIMES, n);
        }
        // Java 4.x clients always send `k` and `m`; so do we.
        put(w, sp, &UNIT_MODE, &self.unit_mode);
        if let Some(n) = &self.max_reconsume_times {
            put(w, sp, &MAX_RECONSUME_TIMES, n);
        }
        put(w, sp, &BATCH, &self.batch);
        if let Some(b) = &self.broker_name {
            put(w, sp, &BROKER_NAME, b);
        }
    }
}

/// Writes one field under the chosen spelling.
fn put<T: WireValue>(w: &mut ExtWriter<'_>, sp: SendSpelling, key: &Key, value: &T) {
    let k = match sp {
        SendSpelling::V1 => key.v1,
        SendSpelling::V2 => key.v2,
    };
    w.put(k, value);
}

/// Every key in the order [`SendMessageRequestHeader::encode_spelling`] may write them,
/// which is also their V2 letters' order `a`..`n` ([`Key::slot`]).
const ALL_KEYS: [&Key; 14] = [
    &PRODUCER_GROUP,
    &TOPIC,
    &DEFAULT_TOPIC,
    &DEFAULT_TOPIC_QUEUE_NUMS,
    &QUEUE_ID,
    &SYS_FLAG,
    &BORN_TIMESTAMP,
    &FLAG,
    &PROPERTIES,
    &RECONSUME_TIMES,
    &UNIT_MODE,
    &MAX_RECONSUME_TIMES,
    &BATCH,
    &BROKER_NAME,
];

impl Header for SendMessageRequestHeader {
    fn decode(ext: &ExtFields) -> Result<Self, FieldError> {
        Self::decode_spelling(ext, SendSpelling::detect(ext))
    }

    fn encode(&self, ext: &mut ExtFields) {
        self.encode_spelling(ext, SendSpelling::V2);
    }
}

/// Region id Java brokers report when none is configured.
pub const DEFAULT_REGION: &str = "DefaultRegion";

crate::ext_header! {
    /// Send response ext (`SendMessageResponseHeader`).
    ///
    /// `MSG_REGION` and `TRACE_ON` are required fields so that no send response can be built
    /// without them: Java clients read `MSG_REGION` unguarded and crash on a successful send
    /// without it (spec §10 item 1). Build with [`SendMessageResponseHeader::new`], which fills
    /// both; the derived `Default` leaves the region empty, and an empty value vanishes in the
    /// binary header format.
    pub struct SendMessageResponseHeader {
        /// The offsetMsgId (for a batch: all of them joined with `,`), never the UNIQ_KEY.
        msg_id: req String = "msgId",
        queue_id: req i32 = "queueId",
        queue_offset: req i64 = "queueOffset",
        /// The message's UNIQ_KEY; Java always sets it.
        transaction_id: opt String = "transactionId",
        batch_uniq_id: opt String = "batchUniqId",
        recall_handle: opt String = "recallHandle",
        msg_region: req String = "MSG_REGION",
        trace_on: req bool = "TRACE_ON",
    }
}

impl SendMessageResponseHeader {
    /// A response header with Java's defaults: region `DefaultRegion`, tracing on.
    pub fn new(msg_id: impl Into<String>, queue_id: i32, queue_offset: i64) -> Self {
        SendMessageResponseHeader {
            msg_id: msg_id.into(),
            queue_id,
            queue_offset,
            transaction_id: None,
            batch_uniq_id: None,
            recall_handle: None,
            msg_region: DEFAULT_REGION.to_owned(),
            trace_on: true,
        }
    }
}

crate::ext_header! {
    /// CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit-log (physical) offset of the failed message.
        commit_log_offset: req i64 = "offset",
        group: req String = "group",
        /// 0 = broker decides (`3 + reconsumeTimes`), > 0 explicit, < 0 straight to the DLQ.
        delay_level: req i32 = "delayLevel",
        origin_msg_id: opt String = "originMsgId",
        origin_topic: opt String = "originTopic",
        unit_mode: opt bool = "unitMode",
        max_reconsume_times: opt i32 = "maxReconsumeTimes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ext;

    fn sample() -> SendMessageRequestHeader {
        SendMessageRequestHeader {
            producer_group: "please_rename_unique_group_name".into(),
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 3,
            sys_flag: 0,
            born_timestamp_ms: 1_700_000_000_123,
            flag: 0,
            properties: Some("TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}".into()),
            reconsume_times: Some(0),
            unit_mode: false,
            max_reconsume_times: None,
            batch: false,
            broker_name: None,
        }
    }

    /// A SEND_MESSAGE_V2 ext map the way a Java 5.x client fills it.
    fn java_v2_ext() -> ExtFields {
        ext(&[
            ("a", "please_rename_unique_group_name"),
            ("b", "TopicTest"),
            ("c", "TBW102"),
            ("d", "4"),
            ("e", "3"),
            ("f", "0"),
            ("g", "1700000000123"),
            ("h", "0"),
            ("i", "TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}"),
            ("j", "0"),
            ("k", "false"),
            ("m", "false"),
            ("n", "broker-a"),
            ("bname", "broker-a"),
            ("oway", "false"),
            ("lo", "false"),
        ])
    }

    #[test]
    fn slots_follow_the_v2_letters() {
        for (i, k) in ALL_KEYS.iter().enumerate() {
            assert_eq!(k.slot, i, "{}", k.v1);
            assert_eq!(k.v2.as_bytes(), [b'a' + i as u8], "{}", k.v1);
        }
    }

    #[test]
    fn keys_are_distinct_per_spelling() {
        let v1: Vec<&str> = ALL_KEYS.iter().map(|k| k.v1).collect();
        let v2: Vec<&str> = ALL_KEYS.iter().map(|k| k.v2).collect();
        assert!(crate::typed::keys_distinct(&v1));
        assert!(crate::typed::keys_distinct(&v2));
    }

    #[test]
    fn v2_ext_from_a_java_client_decodes() {
        let h = SendMessageRequestHeader::decode(&java_v2_ext()).unwrap();
        let mut want = sample();
        want.broker_name = Some("broker-a".into());
        assert_eq!(h, want);
    }

    #[test]
    fn v1_ext_decodes_to_the_same_header() {
        let e = ext(&[
            ("producerGroup", "please_rename_unique_group_name"),
            ("topic", "TopicTest"),
            ("defaultTopic", "TBW102"),
            ("defaultTopicQueueNums", "4"),
            ("queueId", "3"),
            ("sysFlag", "0"),
            ("bornTimestamp", "1700000000123"),
            ("flag", "0"),
            ("properties", "TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}"),
            ("reconsumeTimes", "0"),
            ("unitMode", "false"),
            ("batch", "false"),
        ]);
        assert_eq!(SendSpelling::detect(&e), SendSpelling::V1);
        assert_eq!(SendMessageRequestHeader::decode(&e), Ok(sample()));
    }

    #[test]
    fn round_trips_in_both_spellings() {
        let mut h = sample();
        h.max_reconsume_times = Some(16);
        h.unit_mode = true;
        h.batch = true;
        h.broker_name = Some("broker-b".into());
        let v2 = h.to_ext();
        assert_eq!(v2.get("b"), Some("TopicTest"));
        assert_eq!(v2.get("topic"), None);
        assert_eq!(v2.get("m"), Some("true"));
        assert_eq!(SendMessageRequestHeader::decode(&v2), Ok(h.clone()));

        let mut v1 = ExtFields::new();
        h.encode_spelling(&mut v1, SendSpelling::V1);
        assert_eq!(v1.get("defaultTopicQueueNums"), Some("4"));
        assert_eq!(v1.get("bname"), Some("broker-b"));
        assert_eq!(v1.get("a"), None);
        assert_eq!(SendMessageRequestHeader::decode(&v1), Ok(h.clone()));
        assert_eq!(v1.len(), v2.len());
    }

    #[test]
    fn optional_send_fields_may_be_absent() {
        let h = SendMessageRequestHeader {
            properties: None,
            reconsume_times: None,
            ..sample()
        };
        let mut e = h.to_ext();
        assert_eq!(e.get("k"), Some("false"));
        e.remove("k");
        e.remove("m");
        assert_eq!(SendMessageRequestHeader::decode(&e), Ok(h));
    }

    #[test]
    fn missing_or_malformed_required_fields_name_the_field() {
        let mut e = java_v2_ext();
        e.remove("b");
        // `a` still marks the request as V2, so the missing topic is reported as such.
        let err = SendMessageRequestHeader::decode(&e).unwrap_err();
        assert_eq!(err, FieldError::Missing { key: "b (topic)" });
        assert!(err.to_string().contains("b (topic)"), "{err}");

        let mut e = java_v2_ext();
        e.insert("e", "three");
        let err = SendMessageRequestHeader::decode(&e).unwrap_err();
        assert_eq!(
            err,
            FieldError::Malformed {
                key: "e (queueId)",
                value: "three".into(),
                expected: "a 32-bit integer"
            }
        );
        let mut e = java_v2_ext();
        e.insert("g", "1.7e12");
        assert!(matches!(
            SendMessageRequestHeader::decode(&e),
            Err(FieldError::Malformed {
                key: "g (bornTimestamp)",
                ..
            })
        ));
        let mut e = java_v2_ext();
        e.insert("j", "");
        assert!(SendMessageRequestHeader::decode(&e).is_err());

        let mut v1 = ExtFields::new();
        sample().encode_spelling(&mut v1, SendSpelling::V1);
        v1.remove("bornTimestamp");
        assert_eq!(
            SendMessageRequestHeader::decode(&v1),
            Err(FieldError::Missing {
                key: "bornTimestamp"
            })
        );
        assert_eq!(
            SendMessageRequestHeader::decode(&ExtFields::new()),
            Err(FieldError::Missing {
                key: "producerGroup"
            })
        );
    }

    #[test]
    fn json_frame_with_numbers_and_booleans_decodes_to_the_header() {
        // Non-Java clients may put JSON numbers and booleans in extFields; the JSON header
        // layer turns them into text and the typed header parses that text.
        let header = r#"{"code":310,"extFields":{"a":"pg","b":"TopicTest","c":"TBW102","d":4,"e":3,"f":0,"g":1700000000123,"h":0,"i":"TAGS\u0001TagA\u0002WAIT\u0001true\u0002","j":0,"k":false,"m":false},"flag":0,"language":"GO","opaque":7,"serializeTypeCurrentRPC":"JSON","version":401}"#;
        let mut frame = Vec::new();
        frame.extend_from_slice(&(4 + header.len() as u32 + 5).to_be_bytes());
        frame.extend_from_slice(&(header.len() as u32).to_be_bytes());
        frame.extend_from_slice(header.as_bytes());
        frame.extend_from_slice(b"hello");
        let (cmd, _) = crate::frame::decode(&frame, crate::FRAME_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        let h = SendMessageRequestHeader::decode(&cmd.ext).unwrap();
        let mut want = sample();
        want.producer_group = "pg".into();
        assert_eq!(h, want);
        assert_eq!(&cmd.body[..], b"hello");
    }

    #[test]
    fn send_response_always_carries_region_and_trace() {
        let mut h = SendMessageResponseHeader::new("C0A8011400002A9F0000000000000000", 2, 17);
        h.transaction_id = Some("7F0000010001".into());
        let e = h.to_ext();
        assert_eq!(e.get("MSG_REGION"), Some("DefaultRegion"));
        assert_eq!(e.get("TRACE_ON"), Some("true"));
        assert_eq!(e.get("queueOffset"), Some("17"));
        assert_eq!(SendMessageResponseHeader::decode(&e), Ok(h));

        // As a Java broker answers (numbers as text, 5.x optional keys absent).
        let java = ext(&[
            ("msgId", "0A00000100002A9F0000000000001234"),
            ("queueId", "0"),
            ("queueOffset", "41"),
            ("transactionId", "7F00000100002A9F0000000000000001"),
            ("MSG_REGION", "DefaultRegion"),
            ("TRACE_ON", "false"),
        ]);
        let h = SendMessageResponseHeader::decode(&java).unwrap();
        assert!(!h.trace_on);
        assert_eq!(h.queue_offset, 41);
        assert_eq!(h.batch_uniq_id, None);
        let mut no_region = java.clone();
        no_region.remove("MSG_REGION");
        assert_eq!(
            SendMessageResponseHeader::decode(&no_region),
            Err(FieldError::Missing { key: "MSG_REGION" })
        );
    }

    #[test]
    fn send_back_header() {
        let e = ext(&[
            ("offset", "123456"),
            ("group", "g"),
            ("delayLevel", "0"),
            ("originMsgId", "7F0000010001"),
            ("originTopic", "TopicTest"),
            ("unitMode", "false"),
            ("maxReconsumeTimes", "16"),
            ("ns", "x"),
        ]);
        let h = ConsumerSendMsgBackRequestHeader::decode(&e).unwrap();
        assert_eq!(h.commit_log_offset, 123_456);
        assert_eq!(h.max_reconsume_times, Some(16));
        assert_eq!(ConsumerSendMsgBackRequestHeader::decode(&h.to_ext()), Ok(h));
        let e = ext(&[("offset", "-1x"), ("group", "g"), ("delayLevel", "0")]);
        assert!(matches!(
            ConsumerSendMsgBackRequestHeader::decode(&e),
            Err(FieldError::Malformed { key: "offset", .. })
        ));
        let e = ext(&[("offset", "1"), ("group", "g")]);
        assert_eq!(
            ConsumerSendMsgBackRequestHeader::decode(&e),
            Err(FieldError::Missing { key: "delayLevel" })
        );
    }
}
