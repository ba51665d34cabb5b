//! Engine side of the record format: encoding an append into the write buffer, and verifying
//! a stored record as a whole.
//!
//! Every record carries the whole-record CRC property `__CRC32#` (see FORMAT.md): the body
//! CRC alone does not notice a torn or flipped header, and Java clients parse the property as
//! an ordinary one.

use std::borrow::Cow;
use std::net::SocketAddr;

use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::{
    self as layout, MessageError, RecordCrc, RecordCrcCheck, RecordFields, RecordView,
};

use crate::types::AppendRequest;

/// Offsets and time fixed at append.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub phys_offset: u64,
    pub queue_offset: u64,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
}

/// The property string as stored: without any `__CRC32#` pair (a message re-stored from an
/// old record, such as a retry, carries the old record's CRC). Borrowed unless there is one.
pub fn stored_properties(props: &str) -> Cow<'_, str> {
    if !props.contains(keys::CRC32) {
        return Cow::Borrowed(props);
    }
    let mut out = String::with_capacity(props.len());
    properties::encode(
        properties::iter(props).filter(|(k, _)| *k != keys::CRC32),
        &mut out,
    );
    Cow::Owned(out)
}

/// What the append path indexes, found in one pass over the property string (the last
/// occurrence wins, as in `properties::find`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexKeys<'a> {
    /// The `KEYS` value: space-separated business keys.
    pub keys: Option<&'a str>,
    pub uniq_key: Option<&'a str>,
    /// The string holds a `__CRC32#` pair (an old record's), which [`stored_properties`]
    /// drops; the same pass finds it, so a string without one is not searched again.
    pub record_crc: bool,
}

impl<'a> IndexKeys<'a> {
    pub fn of(props: &'a str) -> Self {
        let mut out = IndexKeys::default();
        for (name, value) in properties::iter(props) {
            if name == keys::KEYS {
                out.keys = Some(value);
            } else if name == keys::UNIQ_KEY {
                out.uniq_key = Some(value);
            } else if name == keys::CRC32 {
                out.record_crc = true;
            }
        }
        out
    }

    /// The property string as stored: `props` (the string these keys came from) itself,
    /// unless it holds a `__CRC32#` pair.
    pub fn stored<'p>(&self, props: &'p str) -> Cow<'p, str> {
        if self.record_crc {
            stored_properties(props)
        } else {
            Cow::Borrowed(props)
        }
    }

    /// Every key to index: the business keys (empty pieces dropped), then UNIQ_KEY.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        self.keys
            .into_iter()
            .flat_map(|v| v.split(' ').filter(|k| !k.is_empty()))
            .chain(self.uniq_key)
    }
}

/// The record's fields for `req` at `at`, with `props` as the property string.
fn fields<'a>(req: &AppendRequest<'a>, props: &'a str, at: &Placement) -> RecordFields<'a> {
    RecordFields {
        topic: req.topic,
        queue_id: req.queue_id,
        flag: req.flag,
        queue_offset: at.queue_offset as i64,
        phys_offset: at.phys_offset as i64,
        sys_flag: req.sys_flag,
        born_timestamp: req.born_timestamp,
        born_host: req.born_host,
        store_timestamp: at.store_timestamp,
        store_host: at.store_host,
        reconsume_times: req.reconsume_times,
        prepared_transaction_offset: req.prepared_transaction_offset,
        body: req.body,
        properties: props,
    }
}

/// Size of the record `req` will be with `props` ([`stored_properties`] of its properties),
/// checking every length.
pub fn encoded_len(
    req: &AppendRequest<'_>,
    props: &str,
    store_host: SocketAddr,
) -> Result<usize, MessageError> {
    let at = Placement {
        phys_offset: 0,
        queue_offset: 0,
        store_timestamp: 0,
        store_host,
    };
    fields(req, props, &at).encoded_len(RecordCrc::Append)
}

/// Appends the record with `props` ([`stored_properties`] of its properties) to `dst`;
/// returns its length.
pub fn encode(
    req: &AppendRequest<'_>,
    props: &str,
    at: &Placement,
    dst: &mut Vec<u8>,
) -> Result<usize, MessageError> {
    fields(req, props, at).encode(RecordCrc::Append, dst)
}

/// Why a stored record is not acceptable during a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    Format(MessageError),
    NoCrc,
    CrcMismatch,
    WrongOffset { stored: i64 },
}

/// Parses and verifies the record at the front of `buf`, which should sit at log offset
/// `phys`: whole-record CRC, layout lengths, and the stored physical offset.
pub fn verify(buf: &[u8], phys: u64) -> Result<RecordView<'_>, Invalid> {
    let view = RecordView::parse(buf).map_err(Invalid::Format)?;
    let record = buf.get(..view.total_size).unwrap_or_default();
    match layout::check_record_crc(record) {
        RecordCrcCheck::Valid => {}
        RecordCrcCheck::Absent => return Err(Invalid::NoCrc),
        RecordCrcCheck::Mismatch { .. } => return Err(Invalid::CrcMismatch),
    }
    if view.phys_offset != phys as i64 {
        return Err(Invalid::WrongOffset {
            stored: view.phys_offset,
        });
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_match_the_property_lookups() {
        let props = "KEYS\u{1}a  b\u{2}TAGS\u{1}t\u{2}UNIQ_KEY\u{1}U1\u{2}KEYS\u{1}c d\u{2}";
        let keys: Vec<&str> = IndexKeys::of(props).iter().collect();
        let mut expected: Vec<&str> = properties::business_keys(props).collect();
        expected.extend(properties::find(props, keys::UNIQ_KEY));
        assert_eq!(keys, expected);
        assert_eq!(keys, ["c", "d", "U1"]);
        assert_eq!(IndexKeys::of("TAGS\u{1}t\u{2}").iter().count(), 0);
        assert!(!IndexKeys::of(props).record_crc);
    }

    #[test]
    fn index_keys_store_what_stored_properties_stores() {
        for props in [
            "TAGS\u{1}t\u{2}",
            "TAGS\u{1}t\u{2}__CRC32#\u{1}0000000042\u{2}",
            "__CRC32#\u{1}0000000042\u{2}KEYS\u{1}k\u{2}",
            "",
        ] {
            let found = IndexKeys::of(props);
            assert_eq!(found.record_crc, props.contains(keys::CRC32), "{props:?}");
            assert_eq!(found.stored(props), stored_properties(props), "{props:?}");
        }
    }

    #[test]
    fn stored_properties_drop_only_an_old_record_crc() {
        let plain = "TAGS\u{1}t\u{2}";
        assert!(matches!(stored_properties(plain), Cow::Borrowed(p) if p == plain));
        let with_crc = "TAGS\u{1}t\u{2}__CRC32#\u{1}0000000042\u{2}";
        assert_eq!(stored_properties(with_crc), "TAGS\u{1}t\u{2}");
    }
}
