//! `KVTable` (spec §3.1 KV config): the GET_KVLIST_BY_NAMESPACE body and the optional
//! REGISTER_BROKER response body (namespace `ORDER_TOPIC_CONFIG`).
//!
//! ```json
//! {"table":{"TopicA":"broker-a:4;broker-b:4"}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient::{self, JsonBodyError, null_as_default};

/// KV namespace whose entries give ordered topics their queue layout.
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// One KV-config namespace: key → value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KvTable {
    #[serde(default, deserialize_with = "null_as_default")]
    pub table: BTreeMap<String, String>,
}

impl KvTable {
    pub fn to_json(&self) -> Vec<u8> {
        lenient::to_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<KvTable, JsonBodyError> {
        lenient::from_slice("KVTable", bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_round_trip() {
        let kv = KvTable {
            table: [("k".to_owned(), "v".to_owned())].into_iter().collect(),
        };
        assert_eq!(kv.to_json(), br#"{"table":{"k":"v"}}"#);
        assert_eq!(KvTable::from_json(&kv.to_json()).unwrap(), kv);
        assert_eq!(
            KvTable::from_json(br#"{"table":null}"#).unwrap(),
            KvTable::default()
        );
    }
}
