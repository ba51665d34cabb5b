//! Small bodies: message queues, group membership, locks, group lists, client config checks
//! and offset resets (spec §5.3, §3.12, §6, §3.13).
//!
//! All are plain serde JSON except [`ResetOffsetBody`], whose map is keyed by MessageQueue
//! objects: fastjson writes such a map with objects as keys, which is not JSON, and Java clients
//! expect exactly that on RESET_CONSUMER_CLIENT_OFFSET. It has its own writer and reader.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::heartbeat::{SubscriptionData, json_body};
use super::lenient::{JsonBodyError, null_as_default};

/// One queue of a topic on one broker. Ordered by (topic, brokerName, queueId).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct MessageQueue {
    #[serde(deserialize_with = "null_as_default")]
    pub topic: String,
    #[serde(deserialize_with = "null_as_default")]
    pub broker_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub queue_id: i32,
}

impl MessageQueue {
    pub fn new(topic: impl Into<String>, broker_name: impl Into<String>, queue_id: i32) -> Self {
        MessageQueue {
            topic: topic.into(),
            broker_name: broker_name.into(),
            queue_id,
        }
    }
}

/// GET_CONSUMER_LIST_BY_GROUP (38) answer: client ids of the group's live channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct GetConsumerListByGroupResponseBody {
    #[serde(deserialize_with = "null_as_default")]
    pub consumer_id_list: Vec<String>,
}

/// LOCK_BATCH_MQ (41) request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    #[serde(deserialize_with = "null_as_default")]
    pub consumer_group: String,
    #[serde(deserialize_with = "null_as_default")]
    pub client_id: String,
    /// Used by Java brokers forwarding to replicas in strict-lock mode.
    #[serde(deserialize_with = "null_as_default")]
    pub only_this_broker: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub mq_set: BTreeSet<MessageQueue>,
}

/// LOCK_BATCH_MQ answer: the queues now locked by the requesting client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LockBatchResponseBody {
    #[serde(rename = "lockOKMQSet", deserialize_with = "null_as_default")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

/// UNLOCK_BATCH_MQ (42) request body; the same fields as the lock request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct UnlockBatchRequestBody {
    #[serde(deserialize_with = "null_as_default")]
    pub consumer_group: String,
    #[serde(deserialize_with = "null_as_default")]
    pub client_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub only_this_broker: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub mq_set: BTreeSet<MessageQueue>,
}

/// `{"groupList":[…]}`, e.g. the QUERY_TOPIC_CONSUME_BY_WHO (300) answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupList {
    #[serde(deserialize_with = "null_as_default")]
    pub group_list: BTreeSet<String>,
}

/// CHECK_CLIENT_CONFIG (46) request body, sent at start by clients with non-TAG
/// subscriptions (spec §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientConfigBody {
    #[serde(deserialize_with = "null_as_default")]
    pub client_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_data: Option<SubscriptionData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// RESET_CONSUMER_CLIENT_OFFSET (220) body and INVOKE_BROKER_TO_RESET_OFFSET (222) answer:
/// the offset each queue is reset to.
///
/// fastjson writes the MessageQueue keys as objects, keys sorted:
///
/// ```text
/// {"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5,{…}:7}}
/// ```
///
/// [`ResetOffsetBody::to_fastjson`] writes exactly that; [`ResetOffsetBody::from_fastjson`]
/// reads it, and also reads keys written as JSON strings holding the object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResetOffsetBody {
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

json_body!(
    MessageQueue,
    GetConsumerListByGroupResponseBody,
    LockBatchRequestBody,
    LockBatchResponseBody,
    UnlockBatchRequestBody,
    GroupList,
    CheckClientConfigBody,
);

impl ResetOffsetBody {
    /// The fastjson form Java clients parse (object keys, fields in alphabetical order).
    pub fn to_fastjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.offset_table.len() * 64);
        out.extend_from_slice(b"{\"offsetTable\":{");
        for (i, (mq, offset)) in self.offset_table.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"brokerName\":");
            push_json_str(&mut out, &mq.broker_name);
            out.extend_from_slice(b",\"queueId\":");
            out.extend_from_slice(mq.queue_id.to_string().as_bytes());
            out.extend_from_slice(b",\"topic\":");
            push_json_str(&mut out, &mq.topic);
            out.extend_from_slice(b"}:");
            out.extend_from_slice(offset.to_string().as_bytes());
        }
        out.extend_from_slice(b"}}");
        out
    }

    /// Reads the fastjson form; unknown top-level fields are skipped, a missing or `null`
    /// `offsetTable` is empty.
    pub fn from_fastjson(bytes: &[u8]) -> Result<Self, JsonBodyError> {
        let mut p = Parser { buf: bytes, pos: 0 };
        let mut body = ResetOffsetBody::default();
        p.expect(b'{')?;
        if !p.eat(b'}') {
            loop {
                let key = p.string()?;
                p.expect(b':')?;
                if key != "offsetTable" {
                    p.value::<serde::de::IgnoredAny>()?;
                } else if !p.eat_null() {
                    body.offset_table = p.offset_table()?;
                }
                if p.eat(b'}') {
                    break;
                }
                p.expect(b',')?;
            }
        }
        p.end()?;
        Ok(body)
    }
}

fn fail_at(at: usize, reason: impl std::fmt::Display) -> JsonBodyError {
    JsonBodyError {
        what: "ResetOffsetBody",
        reason: format!("at byte {at}: {reason}"),
    }
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // A `String` always serializes.
    if let Ok(text) = serde_json::to_vec(s) {
        out.extend_from_slice(&text);
    }
}

/// A reader for the structure around object keys; every plain JSON value inside is handed
/// to serde_json, so this only knows `{`, `:`, `,`, `}`, `null` and whitespace.
struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn fail(&self, reason: impl std::fmt::Display) -> JsonBodyError {
        fail_at(self.pos, reason)
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.buf.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.buf.get(self.pos).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_null(&mut self) -> bool {
        self.skip_ws();
        let hit = self
            .buf
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(b"null"));
        if hit {
            self.pos += 4;
        }
        hit
    }

    fn expect(&mut self, byte: u8) -> Result<(), JsonBodyError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.fail(format!("expected `{}`", char::from(byte))))
        }
    }

    fn end(&mut self) -> Result<(), JsonBodyError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.fail("trailing characters")),
        }
    }

    /// One standard JSON value at the cursor, parsed by serde_json.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, JsonBodyError> {
        self.skip_ws();
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
        match stream.next() {
            Some(Ok(v)) => {
                self.pos += stream.byte_offset();
                Ok(v)
            }
            Some(Err(e)) => Err(self.fail(e.to_string())),
            None => Err(self.fail("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String, JsonBodyError> {
        if self.peek() != Some(b'"') {
            return Err(self.fail("expected a quoted key"));
        }
        self.value()
    }

    /// `{ key : offset , … }` where a key is a MessageQueue object or a string holding one,
    /// and an offset is a number or (fastjson's BrowserCompatible long) a numeric string.
    fn offset_table(&mut self) -> Result<BTreeMap<MessageQueue, i64>, JsonBodyError> {
        let mut table = BTreeMap::new();
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(table);
        }
        loop {
            let at = self.pos;
            let mq = match self.peek() {
                Some(b'{') => self.value::<MessageQueue>()?,
                Some(b'"') => {
                    let text: String = self.value()?;
                    serde_json::from_str(&text)
                        .map_err(|e| fail_at(at, format!("key is not a MessageQueue: {e}")))?
                }
                _ => return Err(self.fail("expected a MessageQueue key")),
            };
            self.expect(b':')?;
            let at = self.pos;
            let offset = match self.value::<serde_json::Value>()? {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| fail_at(at, "offset is not a 64-bit integer"))?;
            table.insert(mq, offset);
            if self.eat(b'}') {
                return Ok(table);
            }
            self.expect(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::heartbeat::ExpressionType;

    #[test]
    fn message_queue_json_and_order() {
        let mq: MessageQueue =
            serde_json::from_str(r#"{"topic":"T","brokerName":"broker-a","queueId":0}"#).unwrap();
        assert_eq!(mq, MessageQueue::new("T", "broker-a", 0));
        assert_eq!(
            serde_json::to_string(&mq).unwrap(),
            r#"{"topic":"T","brokerName":"broker-a","queueId":0}"#
        );
        let mut v = vec![
            MessageQueue::new("T", "broker-b", 0),
            MessageQueue::new("S", "broker-z", 9),
            MessageQueue::new("T", "broker-a", 3),
            MessageQueue::new("T", "broker-a", 1),
        ];
        v.sort();
        assert_eq!(
            v,
            [
                MessageQueue::new("S", "broker-z", 9),
                MessageQueue::new("T", "broker-a", 1),
                MessageQueue::new("T", "broker-a", 3),
                MessageQueue::new("T", "broker-b", 0),
            ]
        );
    }

    #[test]
    fn consumer_list_and_group_list() {
        let b: GetConsumerListByGroupResponseBody = serde_json::from_str(
            r#"{"consumerIdList":["10.0.0.5@12345#123456789012","10.0.0.6@1#2"]}"#,
        )
        .unwrap();
        assert_eq!(b.consumer_id_list.len(), 2);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(
            serde_json::from_str::<GetConsumerListByGroupResponseBody>(&json).unwrap(),
            b
        );
        let empty = GetConsumerListByGroupResponseBody::default();
        assert_eq!(
            serde_json::to_string(&empty).unwrap(),
            r#"{"consumerIdList":[]}"#
        );
        let g: GroupList = serde_json::from_str(r#"{"groupList":["g2","g1"]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"groupList":["g1","g2"]}"#
        );
        let g: GroupList = serde_json::from_str(r#"{"groupList":null}"#).unwrap();
        assert!(g.group_list.is_empty());
    }

    #[test]
    fn lock_bodies_as_java_sends_them() {
        let j = r#"{"consumerGroup":"g","clientId":"10.0.0.5@12345#1","onlyThisBroker":false,"mqSet":[{"topic":"T","brokerName":"broker-a","queueId":1},{"topic":"T","brokerName":"broker-a","queueId":0}]}"#;
        let lock: LockBatchRequestBody = serde_json::from_str(j).unwrap();
        assert_eq!(lock.mq_set.len(), 2);
        assert_eq!(
            lock.mq_set.first(),
            Some(&MessageQueue::new("T", "broker-a", 0))
        );
        let back: LockBatchRequestBody =
            serde_json::from_str(&serde_json::to_string(&lock).unwrap()).unwrap();
        assert_eq!(back, lock);
        let unlock: UnlockBatchRequestBody = serde_json::from_str(j).unwrap();
        assert_eq!(unlock.client_id, "10.0.0.5@12345#1");
        assert_eq!(unlock.mq_set, lock.mq_set);

        let resp = LockBatchResponseBody {
            lock_ok_mq_set: lock.mq_set.clone(),
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert!(
            json.starts_with(r#"{"lockOKMQSet":[{"topic":"T""#),
            "{json}"
        );
        assert_eq!(
            serde_json::from_str::<LockBatchResponseBody>(&json).unwrap(),
            resp
        );
        assert_eq!(
            serde_json::to_string(&LockBatchResponseBody::default()).unwrap(),
            r#"{"lockOKMQSet":[]}"#
        );
    }

    #[test]
    fn check_client_config_body() {
        let j = r#"{"clientId":"c","group":"g","namespace":"","subscriptionData":{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 5","subVersion":1,"tagsSet":[],"topic":"T"}}"#;
        let b: CheckClientConfigBody = serde_json::from_str(j).unwrap();
        let sub = b.subscription_data.as_ref().unwrap();
        assert_eq!(sub.expression_type, ExpressionType::Sql92);
        assert_eq!(sub.sub_string, "a > 5");
        let back: CheckClientConfigBody =
            serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        assert_eq!(back, b);
        let bare: CheckClientConfigBody = serde_json::from_str(r#"{"group":"g"}"#).unwrap();
        assert_eq!(bare.subscription_data, None);
        assert_eq!(
            serde_json::to_string(&bare).unwrap(),
            r#"{"clientId":"","group":"g"}"#
        );
    }

    fn reset_sample() -> ResetOffsetBody {
        let mut b = ResetOffsetBody::default();
        b.offset_table
            .insert(MessageQueue::new("T", "broker-a", 0), 5);
        b.offset_table
            .insert(MessageQueue::new("T", "broker-a", 1), 7);
        b.offset_table
            .insert(MessageQueue::new("T\"q", "b\\é", -1), -1);
        b
    }

    #[test]
    fn reset_offset_writes_the_fastjson_form() {
        let mut b = ResetOffsetBody::default();
        b.offset_table
            .insert(MessageQueue::new("T", "broker-a", 0), 5);
        b.offset_table
            .insert(MessageQueue::new("T", "broker-a", 1), 1 << 40);
        assert_eq!(
            String::from_utf8(b.to_fastjson()).unwrap(),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:5,{"brokerName":"broker-a","queueId":1,"topic":"T"}:1099511627776}}"#
        );
        assert_eq!(
            ResetOffsetBody::default().to_fastjson(),
            br#"{"offsetTable":{}}"#
        );
    }

    #[test]
    fn reset_offset_round_trip_with_escapes() {
        let b = reset_sample();
        assert_eq!(ResetOffsetBody::from_fastjson(&b.to_fastjson()), Ok(b));
    }

    #[test]
    fn reset_offset_reads_java_variants() {
        // Whitespace, key order inside the MQ, a string long (BrowserCompatible), a quoted
        // object key, an unknown field and a null map.
        let j = br#" { "other" : [1, {"x": null}] ,
            "offsetTable" : { {"topic":"T","queueId":0,"brokerName":"broker-a"} : 5 ,
              "{\"brokerName\":\"broker-a\",\"queueId\":1,\"topic\":\"T\"}":"9007199254740993" } } "#;
        let b = ResetOffsetBody::from_fastjson(j).unwrap();
        assert_eq!(b.offset_table.len(), 2);
        assert_eq!(b.offset_table[&MessageQueue::new("T", "broker-a", 0)], 5);
        assert_eq!(
            b.offset_table[&MessageQueue::new("T", "broker-a", 1)],
            9_007_199_254_740_993
        );
        let b = ResetOffsetBody::from_fastjson(br#"{"offsetTable":null}"#).unwrap();
        assert!(b.offset_table.is_empty());
        let b = ResetOffsetBody::from_fastjson(b"{}").unwrap();
        assert!(b.offset_table.is_empty());
    }

    #[test]
    fn reset_offset_rejects_broken_input() {
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            br#"{"offsetTable":{{"topic":"T"}:}}"#,
            br#"{"offsetTable":{{"topic":"T"}:1.5}}"#,
            br#"{"offsetTable":{{"topic":"T"} 5}}"#,
            br#"{"offsetTable":{0:5}}"#,
            br#"{"offsetTable":{"x":5}}"#,
            br#"{"offsetTable":{{"topic":"T"}:5}"#,
            br#"{"offsetTable":{{"topic":"T"}:5}} x"#,
            br#"{offsetTable:{}}"#,
        ] {
            let r = ResetOffsetBody::from_fastjson(bad);
            assert!(r.is_err(), "{:?}", String::from_utf8_lossy(bad));
            let msg = r.unwrap_err().to_string();
            assert!(msg.contains("at byte"), "{msg}");
        }
    }

    #[test]
    fn reset_offset_truncations_never_panic() {
        let bytes = reset_sample().to_fastjson();
        for cut in 0..bytes.len() {
            assert!(
                ResetOffsetBody::from_fastjson(&bytes[..cut]).is_err(),
                "{cut}"
            );
        }
    }
}
