//! Engine side of the record format: encoding an append into the write buffer, and verifying
//! a stored record as a whole.
//!
//! Every record carries the whole-record CRC property `__CRC32#` (see FORMAT.md): the body
//! CRC alone does not notice a torn or flipped header, and Java clients parse the property as
//! an ordinary one.

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

/// The property string without any `__CRC32#` pair (a message re-stored from an old record,
/// such as a retry, carries the old record's CRC).
fn strip_crc_property(props: &str) -> Option<String> {
    if !props.contains(keys::CRC32) {
        return None;
    }
    let mut out = String::with_capacity(props.len());
    properties::encode(
        properties::iter(props).filter(|(k, _)| *k != keys::CRC32),
        &mut out,
    );
    Some(out)
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

/// Size of the record `req` will be, checking every length.
pub fn encoded_len(req: &AppendRequest<'_>, store_host: SocketAddr) -> Result<usize, MessageError> {
    let stripped = strip_crc_property(req.properties);
    let props = stripped.as_deref().unwrap_or(req.properties);
    let at = Placement {
        phys_offset: 0,
        queue_offset: 0,
        store_timestamp: 0,
        store_host,
    };
    fields(req, props, &at).encoded_len(RecordCrc::Append)
}

/// Appends the record to `dst`; returns its length.
pub fn encode(
    req: &AppendRequest<'_>,
    at: &Placement,
    dst: &mut Vec<u8>,
) -> Result<usize, MessageError> {
    let stripped = strip_crc_property(req.properties);
    let props = stripped.as_deref().unwrap_or(req.properties);
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
