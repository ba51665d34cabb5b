//! HeartbeatData, the HEART_BEAT (34) body (spec §5.2), and the enums it carries.
//!
//! Input follows fastjson: unknown fields are ignored, a missing or `null` field keeps the
//! Java constructor's default, and enums arrive as a Java name or an ordinal. Output is
//! standard JSON with Java bean names, enums by name, and `[]` (never `null`) for sets.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::lenient::null_as_default;

/// Gives a body type `from_json` (lenient, spec §1.9) and `to_json` (standard JSON).
macro_rules! json_body {
    ($($ty:ident),+ $(,)?) => {
        $(
            impl $ty {
                pub fn from_json(
                    bytes: &[u8],
                ) -> Result<Self, $crate::body::lenient::JsonBodyError> {
                    $crate::body::lenient::from_slice(stringify!($ty), bytes)
                }

                pub fn to_json(&self) -> Vec<u8> {
                    $crate::body::lenient::to_json(self)
                }
            }
        )+
    };
}
pub(crate) use json_body;

/// A Java enum on the wire: written by name, read by name or ordinal.
pub trait JavaEnum: Sized + Copy + 'static {
    /// Java constant names in declaration order: index = ordinal.
    const NAMES: &'static [&'static str];
    /// What the enum is, for error messages.
    const WHAT: &'static str;
    /// All values in declaration order, matching `NAMES`.
    const VALUES: &'static [Self];

    fn ordinal(self) -> usize;

    fn name(self) -> &'static str {
        Self::NAMES.get(self.ordinal()).copied().unwrap_or("")
    }

    fn from_name(name: &str) -> Option<Self> {
        let i = Self::NAMES.iter().position(|n| *n == name)?;
        Self::VALUES.get(i).copied()
    }

    fn from_ordinal(ordinal: u64) -> Option<Self> {
        Self::VALUES.get(usize::try_from(ordinal).ok()?).copied()
    }
}

struct JavaEnumVisitor<T>(std::marker::PhantomData<T>);

impl<T: JavaEnum> Visitor<'_> for JavaEnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} name ({}) or ordinal", T::WHAT, T::NAMES.join(", "))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::from_name(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::from_ordinal(v).ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v)
            .ok()
            .and_then(T::from_ordinal)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
}

fn deserialize_java_enum<'de, D: Deserializer<'de>, T: JavaEnum>(d: D) -> Result<T, D::Error> {
    d.deserialize_any(JavaEnumVisitor(std::marker::PhantomData))
}

/// Declares a Java enum with its constants in Java's declaration order (ordinals matter).
macro_rules! java_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $java:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl JavaEnum for $name {
            const NAMES: &'static [&'static str] = &[$($java),+];
            const WHAT: &'static str = $what;
            const VALUES: &'static [Self] = &[$($name::$variant),+];

            fn ordinal(self) -> usize {
                self as usize
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_java_enum(d)
            }
        }
    };
}

java_enum! {
    /// How a consumer gets its messages.
    pub enum ConsumeType: "ConsumeType" {
        /// Pull and lite-pull consumers.
        Actively = "CONSUME_ACTIVELY",
        /// Push consumers.
        Passively = "CONSUME_PASSIVELY",
        /// 5.x POP consumers.
        Pop = "CONSUME_POP",
    }
}

java_enum! {
    /// Whether every consumer of a group gets every message (broadcasting) or one of them.
    pub enum MessageModel: "MessageModel" {
        Broadcasting = "BROADCASTING",
        Clustering = "CLUSTERING",
    }
}

java_enum! {
    /// Where a group without a stored offset starts. Decided by the client; the broker only
    /// keeps it for admin display.
    pub enum ConsumeFromWhere: "ConsumeFromWhere" {
        LastOffset = "CONSUME_FROM_LAST_OFFSET",
        /// Deprecated alias of `LastOffset`.
        LastOffsetAndFromMinWhenBootFirst = "CONSUME_FROM_LAST_OFFSET_AND_FROM_MIN_WHEN_BOOT_FIRST",
        /// Deprecated alias of `LastOffset`.
        MinOffset = "CONSUME_FROM_MIN_OFFSET",
        /// Deprecated alias of `LastOffset`.
        MaxOffset = "CONSUME_FROM_MAX_OFFSET",
        FirstOffset = "CONSUME_FROM_FIRST_OFFSET",
        Timestamp = "CONSUME_FROM_TIMESTAMP",
    }
}

/// A subscription's expression language.
///
/// In Java these are string constants, not an enum, and an empty or missing value means TAG.
/// Ordinals follow the order Java declares the constants (`SQL92`, then `TAG`); no Java peer
/// sends one, they are accepted only for symmetry with the other enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ExpressionType {
    Sql92,
    #[default]
    Tag,
}

impl JavaEnum for ExpressionType {
    const NAMES: &'static [&'static str] = &["SQL92", "TAG"];
    const WHAT: &'static str = "ExpressionType";
    const VALUES: &'static [Self] = &[ExpressionType::Sql92, ExpressionType::Tag];

    fn ordinal(self) -> usize {
        self as usize
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "" | "TAG" => Some(ExpressionType::Tag),
            "SQL92" => Some(ExpressionType::Sql92),
            _ => None,
        }
    }
}

impl Serialize for ExpressionType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ExpressionType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_java_enum(d)
    }
}

/// One topic subscription of a consumer group (Java `SubscriptionData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    /// Legacy filter-server mode; always false.
    #[serde(deserialize_with = "null_as_default")]
    pub class_filter_mode: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub topic: String,
    /// The raw expression; `*` (or empty) means every message.
    #[serde(deserialize_with = "null_as_default")]
    pub sub_string: String,
    #[serde(deserialize_with = "null_as_default")]
    pub tags_set: BTreeSet<String>,
    /// Java `String.hashCode` of each tag; the broker should recompute them (spec §6).
    #[serde(deserialize_with = "null_as_default")]
    pub code_set: BTreeSet<i32>,
    /// Subscription version, a ms timestamp. Java defaults a missing one to the current time,
    /// which a sans-IO codec cannot read: `None` lets the broker apply its own clock.
    #[serde(
        deserialize_with = "null_as_default",
        skip_serializing_if = "Option::is_none"
    )]
    pub sub_version: Option<i64>,
    /// `null`, empty or missing all mean TAG.
    #[serde(deserialize_with = "null_as_default")]
    pub expression_type: ExpressionType,
}

/// A producer group the client belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    #[serde(deserialize_with = "null_as_default")]
    pub group_name: String,
}

/// A consumer group the client belongs to, with its subscriptions.
///
/// The three enums are `None` when absent, as Java leaves them null; they are omitted on
/// output then, as fastjson omits nulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    #[serde(deserialize_with = "null_as_default")]
    pub group_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_type: Option<ConsumeType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_model: Option<MessageModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume_from_where: Option<ConsumeFromWhere>,
    #[serde(deserialize_with = "null_as_default")]
    pub subscription_data_set: Vec<SubscriptionData>,
    #[serde(deserialize_with = "null_as_default")]
    pub unit_mode: bool,
}

/// HEART_BEAT (34) body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    /// `clientIP@instanceName[@unitName]`: opaque, unique per client process.
    #[serde(rename = "clientID", deserialize_with = "null_as_default")]
    pub client_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(deserialize_with = "null_as_default")]
    pub consumer_data_set: Vec<ConsumerData>,
    /// 5.x heartbeat V2: non-zero when the client supports it. Read as 64 bits so that no
    /// client's choice of width can make a heartbeat unreadable.
    #[serde(deserialize_with = "null_as_default")]
    pub heartbeat_fingerprint: i64,
    /// 5.x heartbeat V2: subscriptions omitted because the fingerprint is unchanged
    /// (Java `isWithoutSub`).
    #[serde(deserialize_with = "null_as_default")]
    pub without_sub: bool,
}

json_body!(SubscriptionData, ProducerData, ConsumerData, HeartbeatData);

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §5.2, compacted, as a Java 5.x push consumer sends it.
    const JAVA_HEARTBEAT: &str = r#"{"clientID":"192.168.1.20@12345#3145178372019833","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"please_rename_unique_group_name_4","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000000,"tagsSet":[],"topic":"TopicTest"},{"classFilterMode":false,"codeSet":[],"expressionType":"TAG","subString":"*","subVersion":1700000000001,"tagsSet":[],"topic":"%RETRY%please_rename_unique_group_name_4"}],"unitMode":false}],"heartbeatFingerprint":0,"producerDataSet":[{"groupName":"please_rename_unique_group_name"},{"groupName":"CLIENT_INNER_PRODUCER"}],"withoutSub":false}"#;

    #[test]
    fn java_heartbeat_decodes() {
        let h = HeartbeatData::from_json(JAVA_HEARTBEAT.as_bytes()).unwrap();
        assert_eq!(h.client_id, "192.168.1.20@12345#3145178372019833");
        assert_eq!(h.producer_data_set.len(), 2);
        assert_eq!(h.producer_data_set[1].group_name, "CLIENT_INNER_PRODUCER");
        let c = &h.consumer_data_set[0];
        assert_eq!(c.consume_type, Some(ConsumeType::Passively));
        assert_eq!(c.message_model, Some(MessageModel::Clustering));
        assert_eq!(c.consume_from_where, Some(ConsumeFromWhere::FirstOffset));
        assert_eq!(c.subscription_data_set.len(), 2);
        let s = &c.subscription_data_set[1];
        assert_eq!(s.topic, "%RETRY%please_rename_unique_group_name_4");
        assert_eq!(s.sub_version, Some(1_700_000_000_001));
        assert_eq!(s.expression_type, ExpressionType::Tag);
        assert!(s.tags_set.is_empty());
    }

    #[test]
    fn heartbeat_round_trips_and_emits_bean_names() {
        let h = HeartbeatData::from_json(JAVA_HEARTBEAT.as_bytes()).unwrap();
        let json = h.to_json();
        assert_eq!(HeartbeatData::from_json(&json).unwrap(), h);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert!(v.get("clientID").is_some());
        assert_eq!(v["withoutSub"], false);
        assert_eq!(v["consumerDataSet"][0]["consumeType"], "CONSUME_PASSIVELY");
        let sub = &v["consumerDataSet"][0]["subscriptionDataSet"][0];
        assert_eq!(sub["tagsSet"], serde_json::json!([]));
        assert_eq!(sub["codeSet"], serde_json::json!([]));
        assert_eq!(sub["subString"], "*");
        assert_eq!(sub["expressionType"], "TAG");
        assert!(!String::from_utf8(json).unwrap().contains("null"));
    }

    #[test]
    fn tags_and_codes_round_trip() {
        let j = r#"{"clientID":"c","consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_ACTIVELY","messageModel":"BROADCASTING","consumeFromWhere":"CONSUME_FROM_TIMESTAMP","subscriptionDataSet":[{"topic":"T","subString":"TagA || TagB","tagsSet":["TagB","TagA"],"codeSet":[2598919,2598920],"subVersion":1,"expressionType":"TAG"}]}]}"#;
        let h = HeartbeatData::from_json(j.as_bytes()).unwrap();
        let s = &h.consumer_data_set[0].subscription_data_set[0];
        assert_eq!(s.tags_set.iter().collect::<Vec<_>>(), ["TagA", "TagB"]);
        assert!(s.code_set.contains(&2_598_919));
        assert_eq!(HeartbeatData::from_json(&h.to_json()).unwrap(), h);
    }

    #[test]
    fn ordinals_nulls_missing_and_unknown_fields() {
        // Ordinals for enums, nulls for sets, a producer-only 4.x heartbeat without the 5.x
        // fields, and fields this codec does not know.
        let j = r#"{"clientID":"c","producerDataSet":null,"consumerDataSet":[{"groupName":"g","consumeType":1,"messageModel":0,"consumeFromWhere":4,"subscriptionDataSet":[{"topic":"T","subString":"*","tagsSet":null,"codeSet":null,"filterClassSource":"x","expressionType":null}],"unitMode":null,"extra":{"a":[1]}}],"newField":42}"#;
        let h = HeartbeatData::from_json(j.as_bytes()).unwrap();
        assert!(h.producer_data_set.is_empty());
        assert_eq!(h.heartbeat_fingerprint, 0);
        assert!(!h.without_sub);
        let c = &h.consumer_data_set[0];
        assert_eq!(c.consume_type, Some(ConsumeType::Passively));
        assert_eq!(c.message_model, Some(MessageModel::Broadcasting));
        assert_eq!(c.consume_from_where, Some(ConsumeFromWhere::FirstOffset));
        let s = &c.subscription_data_set[0];
        assert_eq!(s.expression_type, ExpressionType::Tag);
        assert_eq!(s.sub_version, None);
        assert!(s.code_set.is_empty());

        // Everything missing: Java's defaults.
        let h = HeartbeatData::from_json(b"{}").unwrap();
        assert_eq!(h, HeartbeatData::default());
        let c: ConsumerData = serde_json::from_str(r#"{"groupName":"g"}"#).unwrap();
        assert_eq!(c.consume_type, None);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"groupName":"g","subscriptionDataSet":[],"unitMode":false}"#
        );
        let s: SubscriptionData = serde_json::from_str(r#"{"expressionType":""}"#).unwrap();
        assert_eq!(s.expression_type, ExpressionType::Tag);
        let s: SubscriptionData = serde_json::from_str(r#"{"expressionType":"SQL92"}"#).unwrap();
        assert_eq!(s.expression_type, ExpressionType::Sql92);
    }

    #[test]
    fn heartbeat_v2_fields() {
        let j = r#"{"clientID":"c","producerDataSet":[],"consumerDataSet":[{"groupName":"g","consumeType":"CONSUME_POP","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","subscriptionDataSet":[],"unitMode":false}],"heartbeatFingerprint":-123456,"withoutSub":true}"#;
        let h = HeartbeatData::from_json(j.as_bytes()).unwrap();
        assert_eq!(h.heartbeat_fingerprint, -123_456);
        assert!(h.without_sub);
        assert_eq!(h.consumer_data_set[0].consume_type, Some(ConsumeType::Pop));
        assert_eq!(HeartbeatData::from_json(&h.to_json()).unwrap(), h);
    }

    #[test]
    fn bad_enum_values_are_errors_with_the_choices() {
        for bad in [
            r#"{"consumerDataSet":[{"consumeType":"CONSUME_SOMETIMES"}]}"#,
            r#"{"consumerDataSet":[{"messageModel":2}]}"#,
            r#"{"consumerDataSet":[{"consumeFromWhere":-1}]}"#,
            r#"{"consumerDataSet":[{"subscriptionDataSet":[{"expressionType":"XPATH"}]}]}"#,
            r#"{"consumerDataSet":[{"consumeType":true}]}"#,
        ] {
            let err = HeartbeatData::from_json(bad.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("name"), "{bad}: {err}");
        }
        let err = HeartbeatData::from_json(br#"{"consumerDataSet":[{"messageModel":"x"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("BROADCASTING, CLUSTERING"), "{err}");
    }

    #[test]
    fn enum_names_and_ordinals_agree() {
        fn check<T: JavaEnum + PartialEq + fmt::Debug>() {
            for (i, v) in T::VALUES.iter().enumerate() {
                assert_eq!(v.ordinal(), i);
                assert_eq!(T::from_name(v.name()), Some(*v));
                assert_eq!(T::from_ordinal(i as u64), Some(*v));
            }
            assert_eq!(T::NAMES.len(), T::VALUES.len());
            assert_eq!(T::from_ordinal(T::VALUES.len() as u64), None);
        }
        check::<ConsumeType>();
        check::<MessageModel>();
        check::<ConsumeFromWhere>();
        check::<ExpressionType>();
        assert_eq!(ConsumeFromWhere::Timestamp.ordinal(), 5);
        assert_eq!(MessageModel::Clustering.ordinal(), 1);
    }
}
