//! The decoded remoting command: one request or response, header fields plus body.

use bytes::Bytes;

pub use crate::ext::{ExtFields, ValueText};

/// Header serialization, the top byte of the frame's header word (spec §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerializeType {
    /// `0`: the header is a UTF-8 JSON object.
    Json,
    /// `1`: the compact binary layout of spec §1.5.
    RocketMq,
}

impl SerializeType {
    pub const fn as_byte(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// Sender language (`LanguageCode`, spec §1.6). Unknown values are kept, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LanguageCode(pub u8);

impl LanguageCode {
    pub const JAVA: LanguageCode = LanguageCode(0);
    pub const CPP: LanguageCode = LanguageCode(1);
    pub const GO: LanguageCode = LanguageCode(9);
    pub const RUST: LanguageCode = LanguageCode(12);
    /// Code used for names we do not know (`OTHER`).
    pub const OTHER: LanguageCode = LanguageCode(7);

    const NAMES: [&'static str; 14] = [
        "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO",
        "PHP", "OMS", "RUST", "NODE_JS",
    ];

    /// The Java enum name, or `None` for an ordinal Java does not define.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES.get(usize::from(self.0)).copied()
    }

    /// Parses a Java enum name; unknown names map to `OTHER`.
    pub fn from_name(name: &str) -> LanguageCode {
        Self::NAMES
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .and_then(|i| u8::try_from(i).ok())
            .map_or(Self::OTHER, LanguageCode)
    }
}

/// `flag` bit 0: the command is a response.
pub const FLAG_RESPONSE: i32 = 0x1;
/// `flag` bit 1: the request is oneway and must never be answered.
pub const FLAG_ONEWAY: i32 = 0x2;

/// Protocol version we advertise in every command we originate (`MQVersion` V5_3_3).
pub const RINGMQ_VERSION_ORDINAL: i32 = 479;

/// One remoting command (Java `RemotingCommand`).
///
/// `code` is an `i32` even though the binary header carries 16 bits: JSON headers can carry
/// the 5.x POP codes (200050…), spec §10 item 17.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext: ExtFields,
    /// How the header was (or will be) serialized.
    pub serialize: SerializeType,
    /// Empty means "no body" (Java maps an empty body to null).
    pub body: Bytes,
}

impl Command {
    /// A new request with the given code; the caller sets `opaque`.
    pub fn request(code: i32) -> Command {
        Command {
            code,
            language: LanguageCode::RUST,
            version: RINGMQ_VERSION_ORDINAL,
            opaque: 0,
            flag: 0,
            remark: None,
            ext: ExtFields::new(),
            serialize: SerializeType::Json,
            body: Bytes::new(),
        }
    }

    /// A response to `request`: same opaque, same serialization, response bit set.
    pub fn response_to(request: &Command, code: i32) -> Command {
        Command {
            code,
            language: LanguageCode::RUST,
            version: RINGMQ_VERSION_ORDINAL,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark: None,
            ext: ExtFields::new(),
            serialize: request.serialize,
            body: Bytes::new(),
        }
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> Command {
        self.remark = Some(remark.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Command {
        self.body = body.into();
        self
    }

    pub fn with_ext(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Command {
        self.ext.insert(key, value);
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }
}

/// An ext map from literal pairs, for the header tests.
#[cfg(test)]
pub(crate) fn ext(pairs: &[(&str, &str)]) -> ExtFields {
    pairs.iter().copied().collect()
}
