//! Command headers in both serializations: JSON (spec §1.4) and ROCKETMQ binary (§1.5).

mod binary;
mod json;
mod json_fast;

use bytes::{Bytes, BytesMut};

pub(crate) use json::{put_int as json_int, put_str as json_string};

use crate::command::{Command, SerializeType};

/// Why header bytes do not parse. Breaks the stream, like every frame error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// JSON header is not a JSON object of the expected shape.
    Json(String),
    /// Binary header ends before a field it announces.
    Truncated {
        field: &'static str,
        need: usize,
        have: usize,
    },
    /// A binary length field is negative or larger than the header.
    BadLength { field: &'static str, len: i64 },
    /// A string is not UTF-8.
    NotUtf8 { field: &'static str },
    /// A JSON integer field does not fit its wire type.
    OutOfRange { field: &'static str, value: i64 },
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::Json(e) => write!(f, "JSON header: {e}"),
            HeaderError::Truncated { field, need, have } => {
                write!(
                    f,
                    "binary header truncated in {field}: need {need} bytes, have {have}"
                )
            }
            HeaderError::BadLength { field, len } => {
                write!(f, "binary header {field} length {len} is out of range")
            }
            HeaderError::NotUtf8 { field } => write!(f, "header {field} is not UTF-8"),
            HeaderError::OutOfRange { field, value } => {
                write!(f, "header field {field} value {value} does not fit 32 bits")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// Decodes header bytes of the given serialization; `body` becomes the command body.
pub fn decode(ser: SerializeType, header: &[u8], body: Bytes) -> Result<Command, HeaderError> {
    match ser {
        SerializeType::Json => json::decode(header, body),
        SerializeType::RocketMq => binary::decode(header, body),
    }
}

/// Appends the header of `cmd` in `cmd.serialize` to `dst`.
pub fn encode(cmd: &Command, dst: &mut BytesMut) {
    match cmd.serialize {
        SerializeType::Json => json::encode(cmd, dst),
        SerializeType::RocketMq => binary::encode(cmd, dst),
    }
}
