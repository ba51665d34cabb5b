//! A hand-written reader for the JSON header shape every RocketMQ peer sends:
//! `{"code":N,"extFields":{"k":"v",..},"flag":N,"language":"JAVA",...}` in any key order.
//!
//! It accepts a strict subset of what the serde decoder in `json.rs` accepts and answers
//! exactly what that decoder would for it; for anything else (nested values in unknown
//! fields, floats, surrogate escapes, escaped top-level keys, repeated known keys, malformed
//! input) it returns `None` and the caller falls back to serde, which also produces the
//! error values. So it never has to be right about an error, only about a success; the
//! differential test in `json.rs` checks that on generated and mutated headers.
//! serde_json spent ~2.4 µs on a send request header; this reads it in a fraction of that.

use std::borrow::Cow;

use crate::command::{ExtFields, LanguageCode};

/// The header fields as serde's `Wire` would hold them.
pub(super) struct Fields {
    pub code: Option<i64>,
    pub language: LanguageCode,
    pub version: Option<i64>,
    pub opaque: Option<i64>,
    pub flag: Option<i64>,
    pub remark: Option<String>,
    pub ext: ExtFields,
}

/// The header is checked as UTF-8 once, up front: every cut the reader makes is next to an
/// ASCII byte, so each piece is a `&str` slice of it with no further check. (Checking each
/// piece on its own was ~3 % of a broker's samples under load.)
struct Reader<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

/// Integers longer than this may not fit an i64/u64; serde decides about those.
const DIGITS_MAX: usize = 18;

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string with no escapes and no control bytes (keys, names, skipped values), as a
    /// slice of the header; anything else is `None`, and the caller either unescapes it
    /// ([`Self::string`]) or leaves the header to serde.
    fn plain(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let run = string_run(self.b.get(start..)?)?;
        if self.b.get(start + run) != Some(&b'"') {
            self.i = start - 1;
            return None;
        }
        self.i = start + run + 1;
        self.s.get(start..start + run)
    }

    /// A string: a slice of the header when it has no escapes, else unescaped into a copy.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        if let Some(s) = self.plain() {
            return Some(Cow::Borrowed(s));
        }
        let mut out = String::new();
        self.string_into(&mut out)?;
        Some(Cow::Owned(out))
    }

    /// A string, unescaped and appended to `out`. Surrogate escapes, control bytes and
    /// invalid UTF-8 are left to serde.
    fn string_into(&mut self, out: &mut String) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let run = string_run(self.b.get(self.i..)?)?;
            out.push_str(self.s.get(self.i..self.i + run)?);
            self.i += run;
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    let c = self.peek()?;
                    self.i += 1;
                    out.push(match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.hex4()?,
                        _ => return None,
                    });
                }
                _ => return None,
            }
        }
    }

    /// The four hex digits of a `\u` escape outside the surrogate range.
    fn hex4(&mut self) -> Option<char> {
        let end = self.i.checked_add(4)?;
        let digits = self.s.get(self.i..end)?;
        if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let code = u32::from_str_radix(digits, 16).ok()?;
        self.i = end;
        char::from_u32(code) // None for surrogates
    }

    /// An integer in JSON's grammar that surely fits an i64: `0`, or up to 18 digits not
    /// starting with 0, with an optional `-` (but not `-0`, which serde reads as a float).
    /// Returns its text; a fraction or exponent is left to serde.
    fn int_text(&mut self) -> Option<&'a str> {
        let start = self.i;
        let negative = self.peek()? == b'-';
        if negative {
            self.i += 1;
        }
        let rest = self.b.get(self.i..)?;
        let len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let first = *rest.first()?;
        if len == 0 || len > DIGITS_MAX || (first == b'0' && (len > 1 || negative)) {
            return None;
        }
        self.i += len;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.s.get(start..self.i)
    }

    fn int(&mut self) -> Option<i64> {
        self.int_text()?.parse().ok()
    }

    /// `null` or an integer, for the `Option<i64>` fields.
    fn opt_int(&mut self) -> Option<Option<i64>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        self.int().map(Some)
    }

    /// `language`: a name, an ordinal, or anything scalar (JAVA), as `json::language` reads
    /// a `serde_json::Value`.
    fn language(&mut self) -> Option<LanguageCode> {
        match self.peek()? {
            b'"' => Some(LanguageCode::from_name(&self.string()?)),
            b'n' => self.literal(b"null").map(|()| LanguageCode::JAVA),
            b't' => self.literal(b"true").map(|()| LanguageCode::JAVA),
            b'f' => self.literal(b"false").map(|()| LanguageCode::JAVA),
            _ => {
                let n = self.int()?;
                Some(
                    u8::try_from(n)
                        .ok()
                        .map(LanguageCode)
                        .filter(|l| l.name().is_some())
                        .unwrap_or(LanguageCode::OTHER),
                )
            }
        }
    }

    fn remark(&mut self) -> Option<Option<String>> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            return Some(None);
        }
        let mut s = String::new();
        self.string_into(&mut s)?;
        Some(Some(s))
    }

    /// `extFields`: `null` or a flat object whose values are strings, integers, booleans or
    /// `null` (dropped), as `json::ext_text` turns them into text.
    fn ext(&mut self, ext: &mut ExtFields) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null");
        }
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            match self.peek()? {
                b'"' => {
                    let text = ext.decoding_text();
                    let start = text.len();
                    self.string_into(text)?;
                    ext.end_decoded_value(&key, start);
                }
                b'n' => self.literal(b"null")?,
                b't' => {
                    self.literal(b"true")?;
                    ext.push_decoded(&key, "true");
                }
                b'f' => {
                    self.literal(b"false")?;
                    ext.push_decoded(&key, "false");
                }
                _ => {
                    let n = self.int_text()?;
                    ext.push_decoded(&key, n);
                }
            }
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An unknown field's value: a plain string, an integer or a literal; serde validates
    /// anything bigger.
    fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.plain().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            _ => self.int_text().map(drop),
        }
    }
}

/// Whether a string's plain run ends at `c`: a quote, a backslash or a control byte.
fn ends_run(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The length of the plain run at the front of `b` (up to the first byte [`ends_run`] is true
/// for), eight bytes per step ([`crate::swar`]): a byte-at-a-time scan of the header's strings
/// (the property string above all) was ~4 % of a broker's samples under load.
pub(super) fn string_run(b: &[u8]) -> Option<usize> {
    use crate::swar::{below, equal, position};
    position(
        b,
        |w| below(w, 0x20) | equal(w, b'"') | equal(w, b'\\'),
        ends_run,
    )
}

/// Reads `header` if it has the common flat shape; `None` means "ask serde".
pub(super) fn read(header: &[u8]) -> Option<Fields> {
    let s = std::str::from_utf8(header).ok()?;
    let mut r = Reader { s, b: header, i: 0 };
    let mut f = Fields {
        code: None,
        language: LanguageCode::JAVA,
        version: None,
        opaque: None,
        flag: None,
        remark: None,
        ext: ExtFields::new(),
    };
    // serde rejects a known field given twice; so do we, by handing the header over.
    let mut seen = 0u8;
    let mut once = |bit: u8| {
        let fresh = seen & bit == 0;
        seen |= bit;
        fresh.then_some(())
    };
    r.ws();
    r.eat(b'{')?;
    r.ws();
    if r.eat(b'}').is_none() {
        loop {
            let key = r.plain()?.as_bytes();
            r.ws();
            r.eat(b':')?;
            r.ws();
            match key {
                b"code" => {
                    once(1)?;
                    f.code = r.opt_int()?;
                }
                b"language" => {
                    once(2)?;
                    f.language = r.language()?;
                }
                b"version" => {
                    once(4)?;
                    f.version = r.opt_int()?;
                }
                b"opaque" => {
                    once(8)?;
                    f.opaque = r.opt_int()?;
                }
                b"flag" => {
                    once(16)?;
                    f.flag = r.opt_int()?;
                }
                b"remark" => {
                    once(32)?;
                    f.remark = r.remark()?;
                }
                b"extFields" => {
                    once(64)?;
                    f.ext = ExtFields::for_decoding(16, header.len());
                    r.ext(&mut f.ext)?;
                }
                _ => r.skip()?,
            }
            r.ws();
            match r.peek()? {
                b',' => {
                    r.i += 1;
                    r.ws();
                }
                b'}' => {
                    r.i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    r.ws();
    (r.i == header.len()).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::{ends_run, string_run};

    /// The word-at-a-time scan finds what a byte-at-a-time scan finds, on bytes drawn mostly
    /// from the interesting ones (separators, controls, quotes, backslashes, non-ASCII).
    #[test]
    fn string_run_matches_a_byte_scan() {
        let (seed, cases) =
            crate::proptests::seed_and_cases("string_run_matches_a_byte_scan", 20_000);
        let mut x = seed.max(1);
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let pool = [
            b'a', b'"', b'\\', 0x00, 0x01, 0x1F, 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA2,
            0xDC, 0xFF,
        ];
        for _ in 0..cases {
            let len = (next() % 40) as usize;
            let b: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 4 == 0 {
                        (r >> 8) as u8
                    } else {
                        pool[(r >> 8) as usize % pool.len()]
                    }
                })
                .collect();
            let plain = b.iter().position(|&c| ends_run(c));
            assert_eq!(string_run(&b), plain, "seed {seed}: {b:?}");
        }
    }
}
