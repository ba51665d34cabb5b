//! JSON header (spec §1.4).
//!
//! Decoding is lenient the way Java's fastjson is: unknown keys are ignored, `remark`,
//! `extFields`, `language` and `version` may be missing or null, `language` may be a name or an
//! ordinal, and ext values may be JSON numbers or booleans (they become their text).
//! Encoding is standard JSON with Java's key order (alphabetical) and no nulls.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;

use super::HeaderError;
use crate::command::{Command, ExtFields, LanguageCode, SerializeType};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    code: Option<i64>,
    #[serde(default)]
    language: Option<Value>,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    opaque: Option<i64>,
    #[serde(default)]
    flag: Option<i64>,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    ext_fields: Option<ExtPairs>,
}

/// `extFields` read straight into pairs, in wire order: no intermediate `serde_json::Map`
/// (a tree node per key) between the parser and [`ExtFields`]. Null values are dropped and
/// non-string values become their text ([`ext_text`]); a repeated key keeps its last value
/// ([`ExtFields::from_decoded`]), as the map did.
struct ExtPairs(Vec<(String, String)>);

impl<'de> Deserialize<'de> for ExtPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ExtPairsVisitor)
    }
}

struct ExtPairsVisitor;

impl<'de> serde::de::Visitor<'de> for ExtPairsVisitor {
    type Value = ExtPairs;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of ext fields")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ExtPairs, A::Error> {
        // Headers carry 0–15 keys; a hostile size hint must not reserve much.
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16).min(32));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            if let Some(text) = ext_text(v) {
                pairs.push((k, text));
            }
        }
        Ok(ExtPairs(pairs))
    }
}

fn to_i32(value: Option<i64>, field: &'static str) -> Result<i32, HeaderError> {
    let v = value.unwrap_or(0);
    i32::try_from(v).map_err(|_| HeaderError::OutOfRange { field, value: v })
}

fn language(value: Option<&Value>) -> LanguageCode {
    match value {
        Some(Value::String(name)) => LanguageCode::from_name(name),
        // An ordinal Java does not define becomes OTHER, as an unknown name does: the JSON
        // encoder writes names, so keeping the raw ordinal would not survive a round trip.
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map(LanguageCode)
            .filter(|l| l.name().is_some())
            .unwrap_or(LanguageCode::OTHER),
        _ => LanguageCode::JAVA,
    }
}

/// The text Java's `toString` would give for a value fastjson put in a string map.
fn ext_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

pub(super) fn decode(header: &[u8], body: Bytes) -> Result<Command, HeaderError> {
    let wire: Wire =
        serde_json::from_slice(header).map_err(|e| HeaderError::Json(e.to_string()))?;
    let code = wire
        .code
        .ok_or_else(|| HeaderError::Json("missing \"code\"".to_owned()))?;
    let pairs = wire.ext_fields.map(|p| p.0).unwrap_or_default();
    let ext = ExtFields::from_decoded(pairs);
    Ok(Command {
        code: to_i32(Some(code), "code")?,
        language: language(wire.language.as_ref()),
        version: to_i32(wire.version, "version")?,
        opaque: to_i32(wire.opaque, "opaque")?,
        flag: to_i32(wire.flag, "flag")?,
        remark: wire.remark,
        ext,
        serialize: SerializeType::Json,
        body,
    })
}

pub(super) fn encode(cmd: &Command, dst: &mut BytesMut) {
    dst.put_slice(b"{\"code\":");
    put_int(dst, i64::from(cmd.code));
    if !cmd.ext.is_empty() {
        dst.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in cmd.ext.iter().enumerate() {
            if i > 0 {
                dst.put_u8(b',');
            }
            put_str(dst, k);
            dst.put_u8(b':');
            put_str(dst, v);
        }
        dst.put_u8(b'}');
    }
    dst.put_slice(b",\"flag\":");
    put_int(dst, i64::from(cmd.flag));
    dst.put_slice(b",\"language\":");
    match cmd.language.name() {
        Some(name) => put_str(dst, name),
        None => put_str(dst, "OTHER"),
    }
    dst.put_slice(b",\"opaque\":");
    put_int(dst, i64::from(cmd.opaque));
    if let Some(remark) = &cmd.remark {
        dst.put_slice(b",\"remark\":");
        put_str(dst, super::binary::bounded(remark));
    }
    dst.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    put_int(dst, i64::from(cmd.version));
    dst.put_u8(b'}');
}

fn put_int(dst: &mut BytesMut, v: i64) {
    let mut buf = itoa_buf(v);
    dst.put_slice(buf.as_bytes_mut());
}

/// Formats an integer without allocating.
fn itoa_buf(v: i64) -> IntText {
    let mut out = IntText {
        buf: [0; 20],
        start: 20,
    };
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        out.start -= 1;
        if let Some(slot) = out.buf.get_mut(out.start) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.start -= 1;
        if let Some(slot) = out.buf.get_mut(out.start) {
            *slot = b'-';
        }
    }
    out
}

struct IntText {
    buf: [u8; 20],
    start: usize,
}

impl IntText {
    fn as_bytes_mut(&mut self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

/// Writes `s` as a JSON string literal.
pub(crate) fn put_str(dst: &mut BytesMut, s: &str) {
    dst.put_u8(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        dst.put_slice(bytes.get(run_start..i).unwrap_or_default());
        match escape {
            Some(seq) => dst.put_slice(seq),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                dst.put_slice(b"\\u00");
                dst.put_u8(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                dst.put_u8(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
        }
        run_start = i + 1;
    }
    dst.put_slice(bytes.get(run_start..).unwrap_or_default());
    dst.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the fuzz target `frame_decode` asserts that a decoded command survives
    /// encode → decode. A JSON header `"language":99` decoded to `LanguageCode(99)`, which the
    /// encoder (names only) wrote as "OTHER", which decoded to 7: the command changed. Unknown
    /// ordinals now decode to OTHER, like unknown names, so the round trip is stable.
    #[test]
    fn unknown_language_ordinal_decodes_as_other_and_round_trips() {
        let header = br#"{"code":34,"language":99}"#;
        let cmd = decode(header, Bytes::new()).unwrap();
        assert_eq!(cmd.language, LanguageCode::OTHER);
        let mut out = BytesMut::new();
        encode(&cmd, &mut out);
        assert_eq!(decode(&out, Bytes::new()).unwrap(), cmd);
        for (ordinal, want) in [
            (0, LanguageCode::JAVA),
            (13, LanguageCode(13)),
            (14, LanguageCode::OTHER),
            (255, LanguageCode::OTHER),
            (256, LanguageCode::OTHER),
        ] {
            let header = format!(r#"{{"code":1,"language":{ordinal}}}"#);
            assert_eq!(
                decode(header.as_bytes(), Bytes::new()).unwrap().language,
                want,
                "{ordinal}"
            );
        }
    }
}
