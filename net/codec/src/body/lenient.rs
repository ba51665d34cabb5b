//! Reading the JSON Java's fastjson writes (spec §1.9), which is not always JSON.
//!
//! Two quirks reach us in bodies from Java peers (a Java broker registering with a ringmq
//! namesrv, admin tools):
//!
//! - Maps with non-string keys are written with **bare keys**: `{"brokerAddrs":{0:"a:1"}}`.
//!   [`standardize`] quotes them in one pass before serde sees the text.
//! - `BrowserCompatible` output writes longs beyond 2^53 **as strings**. Fields that may hold
//!   such longs read through [`i64_lenient`] / [`i32_lenient`], which accept a number or a
//!   decimal string.
//!
//! Maps keyed by whole objects (`{{"topic":"T",...}:5}`) appear only in admin bodies and are
//! not handled here: such text fails to parse and is reported as a [`JsonBodyError`].

use std::borrow::Cow;

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned, Deserializer, Error as _, Visitor};

/// A body that is not the JSON we expected, with serde's description of where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBodyError {
    /// What we tried to read, e.g. `"TopicRouteData"`.
    pub what: &'static str,
    pub reason: String,
}

impl std::fmt::Display for JsonBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} body is not valid JSON: {}", self.what, self.reason)
    }
}

impl std::error::Error for JsonBodyError {}

/// Parses a JSON body from a Java or Rust peer, after [`standardize`].
pub fn from_slice<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, JsonBodyError> {
    serde_json::from_slice(&standardize(bytes)).map_err(|e| JsonBodyError {
        what,
        reason: e.to_string(),
    })
}

/// Writes a body as compact standard JSON (quoted keys, no nulls where we skip them).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Our body types have string or integer map keys and no fallible Serialize impls, so
    // serde_json cannot fail on them; a failure would be a bug in a type definition.
    serde_json::to_vec(value).expect("ringmq body types always serialize")
}

/// Reads a collection that a Java peer may have written as `null` as an empty one (Java
/// keeps the constructor default; spec §1.9 item 6).
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Where the scanner is inside the current container.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// In an object, before a key (after `{` or `,`).
    Key,
    /// Anywhere a value or punctuation may come.
    Other,
}

/// Returns `input` with every bare object key (`{0:"a"}`, `{-1:"b"}`) quoted.
///
/// Text that is already standard JSON comes back borrowed, untouched. The scan only looks at
/// structure (strings, braces, commas); it never rejects input, so malformed text stays
/// malformed and serde reports it.
pub fn standardize(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    // One entry per open container: true for an object, false for an array.
    let mut stack: Vec<bool> = Vec::new();
    let mut expect = Expect::Other;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'"' => {
                let end = string_end(input, i);
                copy(&mut out, input, i, end);
                expect = Expect::Other;
                i = end;
                continue;
            }
            b'{' => {
                stack.push(true);
                expect = Expect::Key;
            }
            b'[' => {
                stack.push(false);
                expect = Expect::Other;
            }
            b'}' | b']' => {
                stack.pop();
                expect = Expect::Other;
            }
            b',' => {
                expect = if stack.last() == Some(&true) {
                    Expect::Key
                } else {
                    Expect::Other
                };
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b':' => expect = Expect::Other,
            _ if expect == Expect::Key => {
                let end = bare_key_end(input, i);
                let buf = out.get_or_insert_with(|| input.get(..i).unwrap_or_default().to_vec());
                buf.push(b'"');
                buf.extend_from_slice(input.get(i..end).unwrap_or_default());
                buf.push(b'"');
                expect = Expect::Other;
                i = end;
                continue;
            }
            _ => expect = Expect::Other,
        }
        copy(&mut out, input, i, i + 1);
        i += 1;
    }
    match out {
        Some(v) => Cow::Owned(v),
        None => Cow::Borrowed(input),
    }
}

/// Appends `input[from..to]` to the output once the output has diverged from the input.
fn copy(out: &mut Option<Vec<u8>>, input: &[u8], from: usize, to: usize) {
    if let Some(buf) = out {
        buf.extend_from_slice(input.get(from..to).unwrap_or_default());
    }
}

/// Index just past the string literal starting at `start` (a `"`), or the input's end.
fn string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = input.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    input.len()
}

/// Index just past a bare key token: up to `:`, whitespace or a structural character.
fn bare_key_end(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while let Some(&b) = input.get(i) {
        if matches!(
            b,
            b':' | b',' | b'{' | b'}' | b'[' | b']' | b'"' | b' ' | b'\t' | b'\r' | b'\n'
        ) {
            break;
        }
        i += 1;
    }
    i.max(start + 1).min(input.len())
}

/// Deserializes an `i64` written as a JSON number or as a decimal string.
pub fn i64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(LongVisitor)
}

/// Deserializes an `i32` written as a JSON number or as a decimal string.
pub fn i32_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let v = d.deserialize_any(LongVisitor)?;
    i32::try_from(v).map_err(|_| D::Error::custom(format!("{v} does not fit a 32-bit int")))
}

struct LongVisitor;

impl Visitor<'_> for LongVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer or a decimal string")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} does not fit a 64-bit long")))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::custom(format!("{v:?} is not a decimal integer")))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<i64, E> {
        // fastjson writes null for an unset boxed number; Java's setter then keeps 0.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    fn std_text(s: &str) -> String {
        String::from_utf8(standardize(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn standard_json_is_borrowed_unchanged() {
        let text = br#"{"a":{"0":"x:1"},"b":[1,2,{"c":"{0:\"no\"}"}]}"#;
        assert!(matches!(standardize(text), Cow::Borrowed(_)));
    }

    #[test]
    fn bare_integer_keys_get_quoted() {
        assert_eq!(
            std_text(r#"{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}}"#),
            r#"{"brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}}"#
        );
        assert_eq!(
            std_text("{ -1 : 5 , 7:[{8:9}]}"),
            r#"{ "-1" : 5 , "7":[{"8":9}]}"#
        );
        // Strings holding braces and escaped quotes are copied verbatim.
        assert_eq!(
            std_text(r#"{0:"a\"{1:2}","s":"}"}"#),
            r#"{"0":"a\"{1:2}","s":"}"}"#
        );
    }

    #[test]
    fn never_panics_on_garbage() {
        for text in [
            "",
            "{",
            "{0",
            "{0:",
            "\"",
            "\"\\",
            "}}]]",
            "{,,:",
            "[{a}]",
            "{\"a\":1,}",
        ] {
            let _ = standardize(text.as_bytes());
        }
    }

    #[derive(Debug, Deserialize)]
    struct Longs {
        #[serde(deserialize_with = "i64_lenient")]
        a: i64,
        #[serde(deserialize_with = "i32_lenient")]
        b: i32,
        m: BTreeMap<i64, String>,
    }

    #[test]
    fn longs_as_strings_and_bare_keys_read() {
        let v: Longs = from_slice("t", br#"{"a":"9007199254740993","b":7,"m":{3:"x"}}"#).unwrap();
        assert_eq!(v.a, 9_007_199_254_740_993);
        assert_eq!(v.b, 7);
        assert_eq!(v.m.get(&3).map(String::as_str), Some("x"));
        let err = from_slice::<Longs>("Longs", br#"{"a":"x","b":1,"m":{}}"#).unwrap_err();
        assert!(err.to_string().contains("Longs"), "{err}");
        assert!(from_slice::<Longs>("Longs", br#"{"a":1,"b":4294967296,"m":{}}"#).is_err());
    }
}
