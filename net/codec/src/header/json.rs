//! JSON header (spec §1.4).
//!
//! Decoding is lenient the way Java's fastjson is: unknown keys are ignored, `remark`,
//! `extFields`, `language` and `version` may be missing or null, `language` may be a name or an
//! ordinal, and ext values may be JSON numbers or booleans (they become their text).
//! Encoding is standard JSON with Java's key order (alphabetical) and no nulls.
//!
//! Decoding first tries `json_fast` (the flat shape peers send, read without serde); what it
//! does not take on is read by serde here, which also gives every error.

use bytes::{BufMut, Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;

use super::HeaderError;
use super::json_fast::Fields;
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
/// ([`ExtFields::finish_decoding`]), as the map did.
struct ExtPairs(ExtFields);

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
        let mut ext = ExtFields::for_decoding(map.size_hint().unwrap_or(16).min(32), 0);
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            if let Some(text) = ext_text(v) {
                ext.push_decoded(&k, &text);
            }
        }
        Ok(ExtPairs(ext))
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
    let fields = match super::json_fast::read(header) {
        Some(f) => f,
        None => decode_serde(header)?,
    };
    finish(fields, body)
}

/// The general decoder: any JSON serde accepts, and every error value.
fn decode_serde(header: &[u8]) -> Result<Fields, HeaderError> {
    let wire: Wire =
        serde_json::from_slice(header).map_err(|e| HeaderError::Json(e.to_string()))?;
    Ok(Fields {
        code: wire.code,
        language: language(wire.language.as_ref()),
        version: wire.version,
        opaque: wire.opaque,
        flag: wire.flag,
        remark: wire.remark,
        ext: wire.ext_fields.map(|p| p.0).unwrap_or_default(),
    })
}

fn finish(f: Fields, body: Bytes) -> Result<Command, HeaderError> {
    let code = f
        .code
        .ok_or_else(|| HeaderError::Json("missing \"code\"".to_owned()))?;
    let mut ext = f.ext;
    ext.finish_decoding();
    Ok(Command {
        code: to_i32(Some(code), "code")?,
        language: f.language,
        version: to_i32(f.version, "version")?,
        opaque: to_i32(f.opaque, "opaque")?,
        flag: to_i32(f.flag, "flag")?,
        remark: f.remark,
        ext,
        serialize: SerializeType::Json,
        body,
    })
}

pub(super) fn encode(cmd: &Command, dst: &mut BytesMut) {
    // Fixed keys and numbers take ~130 bytes; each ext pair its text plus 6.
    let ext_bytes: usize = cmd.ext.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    dst.reserve(160 + ext_bytes);
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

pub(crate) fn put_int(dst: &mut BytesMut, v: i64) {
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

/// How each byte is written inside a JSON string: 0 as itself, `u` as `\u00XX`, anything
/// else as a backslash and that letter. One table lookup per byte instead of a `match`.
#[allow(clippy::indexing_slicing)] // evaluated at compile time: a bad index fails the build
const ESCAPES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn escape_of(b: u8) -> u8 {
    ESCAPES.get(usize::from(b)).copied().unwrap_or(0)
}

/// Writes `s` as a JSON string literal.
pub(crate) fn put_str(dst: &mut BytesMut, s: &str) {
    let bytes = s.as_bytes();
    dst.reserve(bytes.len() + 2);
    dst.put_u8(b'"');
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| escape_of(b) != 0) {
        let (run, tail) = rest.split_at(at);
        dst.put_slice(run);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        match escape_of(b) {
            b'u' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                dst.put_slice(b"\\u00");
                dst.put_u8(HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0'));
                dst.put_u8(HEX.get(usize::from(b & 0xf)).copied().unwrap_or(b'0'));
            }
            letter => dst.put_slice(&[b'\\', letter]),
        }
        rest = tail;
    }
    dst.put_slice(rest);
    dst.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny seeded generator (xorshift64*): the differential test needs no proptest.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const NUMBERS: &[&str] = &[
        "0",
        "7",
        "-3",
        "479",
        "2147483647",
        "2147483648",
        "-2147483649",
        "123456789012345678",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "-0",
        "01",
        "1.0",
        "1e3",
        "-1.5E-2",
        "2.",
        "-",
        "1a",
    ];
    const STRINGS: &[&str] = &[
        r#""""#,
        r#""JAVA""#,
        r#""rust""#,
        r#""GO""#,
        r#""x\"y\\z\/""#,
        r#""\u0041\u00e9\n""#,
        r#""\ud83d\ude00""#,
        r#""\ud83d""#,
        r#""é中""#,
        "\"tab\there\"",
        r#""\q""#,
        r#""\u12""#,
        r#""TAGS\u0001a\u0002""#,
        r#""unterminated"#,
    ];
    const OTHERS: &[&str] = &[
        "null",
        "true",
        "false",
        "[1,2]",
        "{}",
        "{\"a\":1}",
        "nul",
        "tru",
    ];
    const KEYS: &[&str] = &[
        "code",
        "language",
        "version",
        "opaque",
        "flag",
        "remark",
        "extFields",
        "serializeTypeCurrentRPC",
        "unknown",
        "é",
        r"co\u0064e",
        "",
    ];

    fn value(r: &mut Rng) -> String {
        match r.below(3) {
            0 => r.pick(NUMBERS).to_owned(),
            1 => r.pick(STRINGS).to_owned(),
            _ => r.pick(OTHERS).to_owned(),
        }
    }

    fn ws(r: &mut Rng) -> &'static str {
        [" ", "", "", "", "\n\t ", "\r"][r.below(6)]
    }

    fn ext_object(r: &mut Rng) -> String {
        let ext_keys = [
            r#""a""#,
            r#""b""#,
            r#""queueId""#,
            r#""k\"q""#,
            r#""é""#,
            r#""\u0061""#,
        ];
        let mut out = String::from("{");
        for i in 0..r.below(6) {
            if i > 0 {
                out.push(',');
            }
            out.push_str(ws(r));
            out.push_str(ext_keys[r.below(ext_keys.len())]);
            out.push_str(ws(r));
            out.push(':');
            let v = if r.below(3) == 0 {
                value(r)
            } else {
                r.pick(STRINGS).to_owned()
            };
            out.push_str(&v);
        }
        out.push('}');
        out
    }

    /// A header from typical and odd pieces, in random order, sometimes with a byte edited.
    fn header(r: &mut Rng) -> Vec<u8> {
        let mut fields = Vec::new();
        for _ in 0..r.below(9) {
            let key = r.pick(KEYS);
            let v = match key {
                "extFields" if r.below(4) != 0 => ext_object(r),
                "code" | "version" | "opaque" | "flag" if r.below(3) != 0 => {
                    r.pick(NUMBERS).to_owned()
                }
                _ => value(r),
            };
            fields.push(format!("{}\"{key}\"{}:{}{v}", ws(r), ws(r), ws(r)));
        }
        let mut h = format!("{}{{{}}}{}", ws(r), fields.join(","), ws(r)).into_bytes();
        if r.below(4) == 0 && !h.is_empty() {
            let at = r.below(h.len());
            let edits = b"{}[],:\"\\ 0a-.e\x01\xff";
            match r.below(3) {
                0 => {
                    h.remove(at);
                }
                1 => h.insert(at, edits[r.below(edits.len())]),
                _ => h[at] = edits[r.below(edits.len())],
            }
        }
        h
    }

    /// Wherever the fast reader answers, serde answers the same; on the headers we send it
    /// answers at all.
    #[test]
    fn fast_reader_agrees_with_serde() {
        let (seed, iterations) =
            crate::proptests::seed_and_cases("fast_reader_agrees_with_serde", 20_000);
        // xorshift never leaves 0.
        let mut r = Rng(seed.max(1));
        let mut fast_hits = 0;
        for _ in 0..iterations {
            let h = header(&mut r);
            let slow = decode_serde(&h).and_then(|f| finish(f, Bytes::new()));
            if let Some(f) = super::super::json_fast::read(&h) {
                fast_hits += 1;
                let fast = finish(f, Bytes::new());
                assert_eq!(fast, slow, "seed {seed}: {}", String::from_utf8_lossy(&h));
            }
        }
        eprintln!("fast path answered {fast_hits} of {iterations}");
        assert!(
            fast_hits > iterations / 50,
            "fast path taken {fast_hits} times"
        );

        let mut cmd = Command::request(310).with_remark("r\u{1}é\"");
        cmd.opaque = -7;
        cmd.ext.insert("b", "Topic\"\\\n\u{7f}\u{10ffff}");
        cmd.ext
            .insert("i", "UNIQ_KEY\u{1}AB\u{2}WAIT\u{1}true\u{2}");
        let mut out = BytesMut::new();
        encode(&cmd, &mut out);
        let f = super::super::json_fast::read(&out).expect("our own headers take the fast path");
        assert_eq!(finish(f, Bytes::new()).unwrap(), cmd);
    }

    /// The table-driven escaper writes what the byte-by-byte rules say.
    #[test]
    fn put_str_escapes_every_control_byte_quote_and_backslash() {
        let mut input = String::new();
        let mut want = String::from("\"");
        for c in (0u8..0x80).map(char::from).chain(['é', '\u{2028}', '😀']) {
            input.push(c);
            match c {
                '"' => want.push_str("\\\""),
                '\\' => want.push_str("\\\\"),
                '\n' => want.push_str("\\n"),
                '\r' => want.push_str("\\r"),
                '\t' => want.push_str("\\t"),
                c if (c as u32) < 0x20 => want.push_str(&format!("\\u{:04x}", c as u32)),
                c => want.push(c),
            }
        }
        want.push('"');
        let mut out = BytesMut::new();
        put_str(&mut out, &input);
        assert_eq!(std::str::from_utf8(&out).unwrap(), want);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, input);
    }

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
