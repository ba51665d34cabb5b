//! The stored-message record (spec §4.1): the commit-log record format, which is also the body
//! of pull, query, view and check-back responses (records concatenated).
//!
//! ```text
//!  off  size  field                      (v1, IPv4 hosts; `*` = +12 per IPv6 host)
//!    0     4  TOTALSIZE   i32            size of the whole record, this field included
//!    4     4  MAGICCODE   i32            v1 0xDAA320A7, v2 0xDAA320AB (filler 0xCBD43194)
//!    8     4  BODYCRC     i32            crc32(body) & 0x7FFFFFFF
//!   12     4  QUEUEID     i32
//!   16     4  FLAG        i32            producer's user flag
//!   20     8  QUEUEOFFSET i64            consume-queue offset
//!   28     8  PHYSICALOFFSET i64         commit-log offset of this record
//!   36     4  SYSFLAG     i32            MessageSysFlag (sysflag.rs)
//!   40     8  BORNTIMESTAMP i64          producer clock, ms
//!   48  8/20  BORNHOST                   ip (4|16) + port i32; 16-byte ip iff SYSFLAG 0x10
//!   56*    8  STORETIMESTAMP i64         broker clock at append, ms
//!   64* 8/20  STOREHOST                  ip (4|16) + port i32; 16-byte ip iff SYSFLAG 0x20
//!   72*    4  RECONSUMETIMES i32
//!   76*    8  PREPAREDTRANSACTIONOFFSET i64
//!   84*    4  BODYLEN     i32 = B
//!   88*    B  BODY
//!          1  TOPICLEN    i8 (v1) | i16 (v2) = T
//!          T  TOPIC       UTF-8
//!          2  PROPLEN     i16 = P
//!          P  PROPERTIES  property string (properties.rs)
//!  TOTALSIZE (v1, IPv4) = 91 + B + T + P; all integers big-endian.
//! ```
//!
//! The optional whole-record CRC ([`RecordCrc::Append`]) is the last property,
//! `__CRC32#` `\x01` ten decimal digits `\x02`: crc32 & 0x7FFFFFFF over every byte of the
//! record before the digits. Clients treat it as an ordinary property.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::crc::{body_crc, crc32_masked};

use super::properties::{self, PROPERTIES_LEN_MAX, keys};
use super::{id, sysflag};

/// MAGICCODE of layout v1 (one-byte TOPICLEN).
pub const MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// MAGICCODE of layout v2 (two-byte TOPICLEN); only clients ≥ 5.1.0 decode it.
pub const MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// MAGICCODE of the end-of-file filler in commit-log segments; never sent to clients.
pub const MAGIC_BLANK: i32 = 0xCBD4_3194_u32 as i32;
/// Bytes of a v1 record with IPv4 hosts and empty body, topic and properties.
pub const RECORD_FIXED_LEN_V1: usize = 91;
/// Offset of TOTALSIZE, MAGICCODE and the fields before the hosts.
pub const OFF_TOTAL_SIZE: usize = 0;
pub const OFF_MAGIC: usize = 4;
pub const OFF_BODY_CRC: usize = 8;
pub const OFF_QUEUE_ID: usize = 12;
pub const OFF_FLAG: usize = 16;
pub const OFF_QUEUE_OFFSET: usize = 20;
pub const OFF_PHYS_OFFSET: usize = 28;
pub const OFF_SYS_FLAG: usize = 36;
pub const OFF_BORN_TIMESTAMP: usize = 40;
pub const OFF_BORN_HOST: usize = 48;
/// Longest v1 topic (TOPICLEN is a signed byte).
pub const TOPIC_LEN_MAX_V1: usize = i8::MAX as usize;
/// Length of the trailing CRC property: `__CRC32#` + `\x01` + 10 digits + `\x02`.
pub const RECORD_CRC_PROPERTY_LEN: usize = 8 + 1 + 10 + 1;

const _: () = assert!(
    RECORD_FIXED_LEN_V1 == 4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 4 + 8 + 4 + 1 + 2
);

/// Whether to append the whole-record CRC property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCrc {
    None,
    Append,
}

/// Why bytes are not a stored record, or why a record cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// Fewer bytes than the record (or a field) needs.
    Truncated { need: usize, have: usize },
    /// MAGICCODE is neither v1 nor v2.
    BadMagic(i32),
    /// The end-of-file filler of a commit-log segment, `len` bytes long.
    Blank { len: usize },
    /// A length field is negative or inconsistent with TOTALSIZE.
    BadLength { field: &'static str, len: i64 },
    /// Topic or properties are not UTF-8.
    NotUtf8 { field: &'static str },
    /// Topic longer than 32767 bytes, or properties longer than 32767 bytes.
    TooLong { field: &'static str, len: usize },
    /// The whole-record CRC property does not match the bytes.
    RecordCrc { stored: i64, computed: i32 },
    /// BODYCRC does not match the body.
    BodyCrc { stored: i32, computed: i32 },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::Truncated { need, have } => {
                write!(
                    f,
                    "stored message truncated: need {need} bytes, have {have}"
                )
            }
            MessageError::BadMagic(m) => write!(f, "bad message magic code {m:#010x}"),
            MessageError::Blank { len } => write!(f, "end-of-file filler of {len} bytes"),
            MessageError::BadLength { field, len } => {
                write!(f, "stored message {field} length {len} is out of range")
            }
            MessageError::NotUtf8 { field } => write!(f, "stored message {field} is not UTF-8"),
            MessageError::TooLong { field, len } => {
                write!(f, "message {field} of {len} bytes exceeds 32767 bytes")
            }
            MessageError::RecordCrc { stored, computed } => {
                write!(
                    f,
                    "record CRC mismatch: stored {stored}, computed {computed}"
                )
            }
            MessageError::BodyCrc { stored, computed } => {
                write!(f, "body CRC mismatch: stored {stored}, computed {computed}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// The fields of one record to encode. Hosts decide the IPv6 SYSFLAG bits; the topic length
/// decides the magic (v1 unless longer than 127 bytes); BODYCRC is computed.
#[derive(Debug, Clone, Copy)]
pub struct RecordFields<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub phys_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    /// The property string as stored (spec §4.3), without any `__CRC32#` pair.
    pub properties: &'a str,
}

fn host_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() { 8 } else { 20 }
}

/// Whether properties need a `\x02` before an appended pair.
fn needs_separator(props: &str) -> bool {
    !props.is_empty() && !props.ends_with(properties::PROPERTY_SEPARATOR)
}

impl RecordFields<'_> {
    fn is_v2(&self) -> bool {
        self.topic.len() > TOPIC_LEN_MAX_V1
    }

    fn properties_len(&self, crc: RecordCrc) -> usize {
        match crc {
            RecordCrc::None => self.properties.len(),
            RecordCrc::Append => {
                self.properties.len()
                    + usize::from(needs_separator(self.properties))
                    + RECORD_CRC_PROPERTY_LEN
            }
        }
    }

    /// The SYSFLAG actually stored: the caller's bits with the host-family bits set from the
    /// addresses.
    pub fn stored_sys_flag(&self) -> i32 {
        let mut f = self.sys_flag & !(sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6);
        if self.born_host.is_ipv6() {
            f |= sysflag::BORNHOST_V6;
        }
        if self.store_host.is_ipv6() {
            f |= sysflag::STOREHOST_V6;
        }
        f
    }

    /// Size of the encoded record, after checking every length fits its field.
    pub fn encoded_len(&self, crc: RecordCrc) -> Result<usize, MessageError> {
        let topic_len = self.topic.len();
        if topic_len > i16::MAX as usize {
            return Err(MessageError::TooLong {
                field: "topic",
                len: topic_len,
            });
        }
        let props_len = self.properties_len(crc);
        if props_len > PROPERTIES_LEN_MAX {
            return Err(MessageError::TooLong {
                field: "properties",
                len: props_len,
            });
        }
        let len = RECORD_FIXED_LEN_V1 - 16
            + host_len(&self.born_host)
            + host_len(&self.store_host)
            + usize::from(self.is_v2())
            + self.body.len()
            + topic_len
            + props_len;
        if len > i32::MAX as usize {
            return Err(MessageError::TooLong {
                field: "record",
                len,
            });
        }
        Ok(len)
    }

    /// Appends the record to `dst`; returns its length. Nothing is written on error.
    pub fn encode(&self, crc: RecordCrc, dst: &mut Vec<u8>) -> Result<usize, MessageError> {
        let len = self.encoded_len(crc)?;
        let start = dst.len();
        dst.reserve(len);
        // One pass over the body serves both checksums: BODYCRC, and (combined with the
        // header and tail) the whole-record CRC.
        let mut body_hasher = crc32fast::Hasher::new();
        body_hasher.update(self.body);
        let body_crc = (body_hasher.clone().finalize() & 0x7FFF_FFFF) as i32;
        let magic = if self.is_v2() { MAGIC_V2 } else { MAGIC_V1 };
        // The fixed header goes through a stack buffer and one copy: ~20 appends to `dst`,
        // each checking its capacity, cost more than the copies themselves.
        let mut head = Head::default();
        head.put(&(len as i32).to_be_bytes());
        head.put(&magic.to_be_bytes());
        head.put(&body_crc.to_be_bytes());
        head.put(&self.queue_id.to_be_bytes());
        head.put(&self.flag.to_be_bytes());
        head.put(&self.queue_offset.to_be_bytes());
        head.put(&self.phys_offset.to_be_bytes());
        head.put(&self.stored_sys_flag().to_be_bytes());
        head.put(&self.born_timestamp.to_be_bytes());
        head.put_host(&self.born_host);
        head.put(&self.store_timestamp.to_be_bytes());
        head.put_host(&self.store_host);
        head.put(&self.reconsume_times.to_be_bytes());
        head.put(&self.prepared_transaction_offset.to_be_bytes());
        head.put(&(self.body.len() as i32).to_be_bytes());
        dst.extend_from_slice(head.bytes());
        let body_at = dst.len();
        dst.extend_from_slice(self.body);
        let tail_at = dst.len();
        if self.is_v2() {
            dst.extend_from_slice(&(self.topic.len() as i16).to_be_bytes());
        } else {
            dst.extend_from_slice(&(self.topic.len() as i8).to_be_bytes());
        }
        dst.extend_from_slice(self.topic.as_bytes());
        dst.extend_from_slice(&(self.properties_len(crc) as i16).to_be_bytes());
        dst.extend_from_slice(self.properties.as_bytes());
        if crc == RecordCrc::Append {
            if needs_separator(self.properties) {
                dst.push(0x02);
            }
            dst.extend_from_slice(keys::CRC32.as_bytes());
            dst.push(0x01);
            let mut record = crc32fast::Hasher::new();
            record.update(dst.get(start..body_at).unwrap_or_default());
            record.combine(&body_hasher);
            record.update(dst.get(tail_at..).unwrap_or_default());
            let crc_value = (record.finalize() & 0x7FFF_FFFF) as i32;
            dst.extend_from_slice(format_args_digits(crc_value).as_slice());
            dst.push(0x02);
        }
        debug_assert_eq!(dst.len() - start, len);
        Ok(len)
    }
}

/// Ten zero-padded decimal digits of a non-negative i32.
fn format_args_digits(value: i32) -> [u8; 10] {
    let mut out = [b'0'; 10];
    let mut v = value.unsigned_abs();
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out
}

/// The fixed part of a record up to BODY (both hosts IPv6 at most), built on the stack.
struct Head {
    buf: [u8; HEAD_MAX],
    len: usize,
}

/// The fixed fields before BODY (the fixed length less TOPICLEN and PROPLEN) with both hosts
/// IPv6 (20 bytes each instead of 8).
const HEAD_MAX: usize = RECORD_FIXED_LEN_V1 - 1 - 2 - 2 * 8 + 2 * 20;

impl Default for Head {
    fn default() -> Self {
        Head {
            buf: [0; HEAD_MAX],
            len: 0,
        }
    }
}

impl Head {
    fn put(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        if let Some(slot) = self.buf.get_mut(self.len..end) {
            slot.copy_from_slice(b);
            self.len = end;
        }
    }

    fn put_host(&mut self, addr: &SocketAddr) {
        match addr.ip() {
            IpAddr::V4(v4) => self.put(&v4.octets()),
            IpAddr::V6(v6) => self.put(&v6.octets()),
        }
        self.put(&i32::from(addr.port()).to_be_bytes());
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Outcome of checking the whole-record CRC property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordCrcCheck {
    Valid,
    /// The record does not end with a `__CRC32#` property.
    Absent,
    Mismatch {
        stored: i64,
        computed: i32,
    },
}

/// Checks the trailing `__CRC32#` property of a complete record.
pub fn check_record_crc(record: &[u8]) -> RecordCrcCheck {
    let n = record.len();
    let Some(tail) = n
        .checked_sub(RECORD_CRC_PROPERTY_LEN)
        .and_then(|at| record.get(at..))
    else {
        return RecordCrcCheck::Absent;
    };
    let (name, rest) = tail.split_at(8);
    if name != keys::CRC32.as_bytes() || rest.first() != Some(&0x01) || rest.last() != Some(&0x02) {
        return RecordCrcCheck::Absent;
    }
    let digits = rest.get(1..11).unwrap_or_default();
    let mut stored: i64 = 0;
    for d in digits {
        if !d.is_ascii_digit() {
            return RecordCrcCheck::Mismatch {
                stored: -1,
                computed: 0,
            };
        }
        stored = stored * 10 + i64::from(d - b'0');
    }
    let covered = record.get(..n - 11).unwrap_or_default();
    let computed = crc32_masked(covered);
    if stored == i64::from(computed) {
        RecordCrcCheck::Valid
    } else {
        RecordCrcCheck::Mismatch { stored, computed }
    }
}

/// TOTALSIZE and MAGICCODE at the front of `buf`, if 8 bytes are there.
pub fn peek_header(buf: &[u8]) -> Option<(i32, i32)> {
    Some((be_i32(buf, OFF_TOTAL_SIZE)?, be_i32(buf, OFF_MAGIC)?))
}

fn be_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(buf: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

/// A borrowing cursor that reports truncation as an error value.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(MessageError::Truncated {
                need: self.pos.saturating_add(n),
                have: self.buf.len(),
            })?;
        let s = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }
    fn i8(&mut self) -> Result<i8, MessageError> {
        Ok(i8::from_be_bytes(self.arr()?))
    }
    fn i16(&mut self) -> Result<i16, MessageError> {
        Ok(i16::from_be_bytes(self.arr()?))
    }
    fn i32(&mut self) -> Result<i32, MessageError> {
        Ok(i32::from_be_bytes(self.arr()?))
    }
    fn i64(&mut self) -> Result<i64, MessageError> {
        Ok(i64::from_be_bytes(self.arr()?))
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let s = self.take(N)?;
        s.try_into().map_err(|_| MessageError::Truncated {
            need: N,
            have: s.len(),
        })
    }
    fn host(&mut self, v6: bool) -> Result<SocketAddr, MessageError> {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.arr::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.arr::<4>()?))
        };
        let port = self.i32()?;
        // Java writes the port as an int; anything out of u16 range is kept modulo 2^16.
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// A record parsed in place: fixed fields by value, body, topic and properties borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub total_size: usize,
    pub magic: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub phys_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a str,
}

impl<'a> RecordView<'a> {
    /// Parses the record at the front of `buf`. Lengths are checked against TOTALSIZE; the
    /// CRCs are not checked (see [`RecordView::verify_body_crc`], [`check_record_crc`]).
    pub fn parse(buf: &'a [u8]) -> Result<RecordView<'a>, MessageError> {
        let (total, magic) = peek_header(buf).ok_or(MessageError::Truncated {
            need: 8,
            have: buf.len(),
        })?;
        if magic == MAGIC_BLANK {
            return Err(MessageError::Blank {
                len: total.max(0) as usize,
            });
        }
        if magic != MAGIC_V1 && magic != MAGIC_V2 {
            return Err(MessageError::BadMagic(magic));
        }
        if total < RECORD_FIXED_LEN_V1 as i32 {
            return Err(MessageError::BadLength {
                field: "TOTALSIZE",
                len: i64::from(total),
            });
        }
        let total_size = total as usize;
        let record = buf.get(..total_size).ok_or(MessageError::Truncated {
            need: total_size,
            have: buf.len(),
        })?;
        let mut c = Cursor {
            buf: record,
            pos: 8,
        };
        let body_crc = c.i32()?;
        let queue_id = c.i32()?;
        let flag = c.i32()?;
        let queue_offset = c.i64()?;
        let phys_offset = c.i64()?;
        let sys_flag = c.i32()?;
        let born_timestamp = c.i64()?;
        let born_host = c.host(sys_flag & sysflag::BORNHOST_V6 != 0)?;
        let store_timestamp = c.i64()?;
        let store_host = c.host(sys_flag & sysflag::STOREHOST_V6 != 0)?;
        let reconsume_times = c.i32()?;
        let prepared_transaction_offset = c.i64()?;
        let body_len = length(c.i32()?.into(), "BODYLEN")?;
        let body = c.take(body_len)?;
        let topic_len = if magic == MAGIC_V2 {
            i64::from(c.i16()?)
        } else {
            i64::from(c.i8()?)
        };
        let topic_len = length(topic_len, "TOPICLEN")?;
        let topic = c.take(topic_len)?;
        let props_len = length(c.i16()?.into(), "PROPLEN")?;
        let props = c.take(props_len)?;
        if c.pos != total_size {
            return Err(MessageError::BadLength {
                field: "TOTALSIZE",
                len: i64::from(total),
            });
        }
        Ok(RecordView {
            total_size,
            magic,
            body_crc,
            queue_id,
            flag,
            queue_offset,
            phys_offset,
            sys_flag,
            born_timestamp,
            born_host,
            store_timestamp,
            store_host,
            reconsume_times,
            prepared_transaction_offset,
            body,
            topic: std::str::from_utf8(topic)
                .map_err(|_| MessageError::NotUtf8 { field: "topic" })?,
            properties: std::str::from_utf8(props).map_err(|_| MessageError::NotUtf8 {
                field: "properties",
            })?,
        })
    }

    /// Checks BODYCRC against the body.
    pub fn verify_body_crc(&self) -> Result<(), MessageError> {
        let computed = body_crc(self.body);
        if computed == self.body_crc {
            Ok(())
        } else {
            Err(MessageError::BodyCrc {
                stored: self.body_crc,
                computed,
            })
        }
    }

    /// Owned copy with the properties parsed into a map.
    pub fn to_message(&self) -> MessageExt {
        MessageExt {
            store_size: self.total_size,
            magic: self.magic,
            body_crc: self.body_crc,
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            commit_log_offset: self.phys_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: self.body.to_vec(),
            topic: self.topic.to_owned(),
            properties: properties::parse(self.properties),
        }
    }
}

fn length(len: i64, field: &'static str) -> Result<usize, MessageError> {
    usize::try_from(len).map_err(|_| MessageError::BadLength { field, len })
}

/// A decoded stored message, as a client sees it after a pull (Java's `MessageExt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub store_size: usize,
    pub magic: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: Vec<u8>,
    pub topic: String,
    pub properties: HashMap<String, String>,
}

impl MessageExt {
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties.get(key).map(String::as_str)
    }
    pub fn tags(&self) -> Option<&str> {
        self.property(keys::TAGS)
    }
    /// The broker's id: store host + physical offset (spec §4.7).
    pub fn offset_msg_id(&self) -> String {
        id::offset_msg_id(self.store_host, self.commit_log_offset)
    }
    /// The client-visible `msgId`: UNIQ_KEY when present, else the offsetMsgId.
    pub fn msg_id(&self) -> String {
        self.property(keys::UNIQ_KEY)
            .map_or_else(|| self.offset_msg_id(), str::to_owned)
    }
}

/// Decodes one record from the front of `buf`; returns it and its length.
pub fn decode(buf: &[u8]) -> Result<(MessageExt, usize), MessageError> {
    let view = RecordView::parse(buf)?;
    Ok((view.to_message(), view.total_size))
}

/// Decodes a pull body the way a 4.x/5.x client does: records one after another until the
/// body ends; the first record that fails to parse ends decoding, and its error is returned
/// beside what came before it.
pub fn decode_all(mut buf: &[u8]) -> (Vec<MessageExt>, Option<MessageError>) {
    let mut out = Vec::new();
    while !buf.is_empty() {
        match decode(buf) {
            Ok((msg, len)) => {
                out.push(msg);
                buf = buf.get(len..).unwrap_or_default();
            }
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// Writes the end-of-file filler: TOTALSIZE = `len`, MAGICCODE = blank; `len` ≥ 8 bytes are
/// appended, the rest zero.
pub fn encode_blank(len: usize, dst: &mut Vec<u8>) {
    let len = len.max(8);
    dst.extend_from_slice(&(len as i32).to_be_bytes());
    dst.extend_from_slice(&MAGIC_BLANK.to_be_bytes());
    dst.resize(dst.len() + len - 8, 0);
}

/// Reads STORETIMESTAMP from the front of a record (needs the first 64 or 76 bytes).
pub fn peek_store_timestamp(buf: &[u8]) -> Option<i64> {
    let sys_flag = be_i32(buf, OFF_SYS_FLAG)?;
    let at = OFF_BORN_HOST
        + if sys_flag & sysflag::BORNHOST_V6 != 0 {
            20
        } else {
            8
        };
    be_i64(buf, at)
}

/// Reads QUEUEOFFSET and PHYSICALOFFSET from the front of a record.
pub fn peek_offsets(buf: &[u8]) -> Option<(i64, i64)> {
    Some((
        be_i64(buf, OFF_QUEUE_OFFSET)?,
        be_i64(buf, OFF_PHYS_OFFSET)?,
    ))
}
