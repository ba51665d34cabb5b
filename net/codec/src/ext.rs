//! [`ExtFields`]: a command's typed header flattened to a string map (spec §1.8), stored so
//! that building or decoding one costs two allocations, not two per field.
//!
//! ```text
//! entries: [ key: Static("a") | value 0..5 ] [ key: Text 5..10 | value 10..12 ] ...
//! text:    "group" "topic" "T1" ...            (every value, every non-static key)
//! ```
//!
//! Keys a typed header writes are `&'static str` literals and are never copied; keys read
//! from the wire and every value live back to back in one `String`. A replaced or removed
//! value leaves dead bytes in `text`; they are compacted away once they outweigh the live
//! ones, so a map that is edited in a loop does not grow without bound.

use std::fmt;

/// A byte range of [`ExtFields::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn len(self) -> usize {
        self.end - self.start
    }
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Static(&'static str),
    Text(Span),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: Key,
    value: Span,
}

/// The typed header of a command, flattened to a string map (spec §1.8).
///
/// Kept as a small vector: headers carry 0–15 keys, where a linear scan beats hashing and
/// insertion order is preserved for stable encoding. Keys are unique; equality ignores order.
#[derive(Clone, Default)]
pub struct ExtFields {
    entries: Vec<Entry>,
    /// Every value and every non-static key, back to back.
    text: String,
    /// Bytes of `text` no entry refers to any more.
    dead: usize,
}

/// Appends one value's text to an [`ExtFields`] without an intermediate `String`; given to
/// [`ExtFields::append_new_with`] and [`crate::typed::WireValue::write_wire`].
pub struct ValueText<'a>(&'a mut String);

impl ValueText<'_> {
    pub fn push_str(&mut self, s: &str) {
        self.0.push_str(s);
    }

    /// Appends `v` in plain decimal (Java's `Long.toString`).
    pub fn push_int(&mut self, v: i64) {
        let mut buf = [0u8; 20];
        let mut at = buf.len();
        let mut n = v.unsigned_abs();
        loop {
            at -= 1;
            if let Some(slot) = buf.get_mut(at) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if v < 0 {
            self.0.push('-');
        }
        let digits = buf.get(at..).unwrap_or_default();
        // Only ASCII digits were written.
        self.0
            .push_str(std::str::from_utf8(digits).unwrap_or_default());
    }
}

impl fmt::Write for ValueText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.push_str(s);
        Ok(())
    }
}

/// Text reserved by the first append to an empty map: a send request's whole header fits.
const TEXT_FIRST_RESERVE: usize = 256;
/// Entries reserved by the first append to an empty map.
const ENTRIES_FIRST_RESERVE: usize = 16;
/// Dead bytes tolerated before a compaction is considered.
const DEAD_MIN: usize = 4096;

impl ExtFields {
    pub fn new() -> Self {
        ExtFields::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(n),
            text: String::with_capacity(n.saturating_mul(16)),
            dead: 0,
        }
    }

    /// An empty map whose text buffer holds `text_bytes` without growing: a decoder knows the
    /// header's length, and no field's text is longer than its encoding.
    pub(crate) fn for_decoding(entries: usize, text_bytes: usize) -> Self {
        ExtFields {
            entries: Vec::with_capacity(entries),
            text: String::with_capacity(text_bytes),
            dead: 0,
        }
    }

    fn span_text(&self, s: Span) -> &str {
        self.text.get(s.start..s.end).unwrap_or_default()
    }

    fn key_text(&self, e: &Entry) -> &str {
        match e.key {
            Key::Static(k) => k,
            Key::Text(s) => self.span_text(s),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|e| self.key_text(e) == key)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        let e = self.entries.iter().find(|e| self.key_text(e) == key)?;
        Some(self.span_text(e.value))
    }

    /// Appends `s` to the text buffer and returns where it went.
    fn push_text(&mut self, s: &str) -> Span {
        self.reserve_first();
        let start = self.text.len();
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len(),
        }
    }

    fn reserve_first(&mut self) {
        if self.text.capacity() == 0 {
            self.text.reserve(TEXT_FIRST_RESERVE);
        }
        if self.entries.capacity() == 0 {
            self.entries.reserve(ENTRIES_FIRST_RESERVE);
        }
    }

    fn write_value(&mut self, write: impl FnOnce(&mut ValueText<'_>)) -> Span {
        self.reserve_first();
        let start = self.text.len();
        write(&mut ValueText(&mut self.text));
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// Sets `key` to `value`, replacing an earlier value of the same key.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl AsRef<str>) {
        let (key, value) = (key.as_ref(), value.as_ref());
        match self.position(key) {
            Some(i) => self.replace_value(i, |t| t.push_str(value)),
            None => {
                let k = self.push_text(key);
                let v = self.push_text(value);
                self.entries.push(Entry {
                    key: Key::Text(k),
                    value: v,
                });
            }
        }
    }

    /// [`insert`](Self::insert) for a literal key, which is kept by reference, not copied.
    pub fn insert_static_with(
        &mut self,
        key: &'static str,
        write: impl FnOnce(&mut ValueText<'_>),
    ) {
        match self.position(key) {
            Some(i) => self.replace_value(i, write),
            None => self.append_new_with(key, write),
        }
    }

    /// Appends `key` without looking for an earlier value of it. The caller knows the key is
    /// absent: a typed header writing its distinct literal keys into an empty map
    /// ([`crate::typed::ExtWriter`]). This is what keeps encoding a header linear.
    pub fn append_new_with(&mut self, key: &'static str, write: impl FnOnce(&mut ValueText<'_>)) {
        debug_assert!(self.get(key).is_none(), "ext key `{key}` appended twice");
        let value = self.write_value(write);
        self.entries.push(Entry {
            key: Key::Static(key),
            value,
        });
    }

    /// Appends a pair read from the wire. Repeats are allowed until
    /// [`finish_decoding`](Self::finish_decoding).
    pub(crate) fn push_decoded(&mut self, key: &str, value: &str) {
        let key = self.push_text(key);
        let value = self.push_text(value);
        self.entries.push(Entry {
            key: Key::Text(key),
            value,
        });
    }

    /// The text buffer, for a decoder that unescapes a value straight into it; the value is
    /// then recorded with [`end_decoded_value`](Self::end_decoded_value).
    pub(crate) fn decoding_text(&mut self) -> &mut String {
        &mut self.text
    }

    /// Records a pair whose value is the text appended since `value_start`.
    pub(crate) fn end_decoded_value(&mut self, key: &str, value_start: usize) {
        let value = Span {
            start: value_start.min(self.text.len()),
            end: self.text.len(),
        };
        let key = self.push_text(key);
        self.entries.push(Entry {
            key: Key::Text(key),
            value,
        });
    }

    /// Makes keys unique after decoding in linear time: a repeated key keeps its last value,
    /// at the place of its last occurrence (a peer can send thousands of keys in one frame,
    /// so no per-key scan unless a cheap filter says a repeat is possible).
    pub(crate) fn finish_decoding(&mut self) {
        /// Up to this many pairs a 64-bit filter over (length, first and last byte) rules out
        /// repeats without allocating; a request header has at most ~15 keys.
        const SCAN_MAX: usize = 32;
        let n = self.entries.len();
        if n < 2 {
            return;
        }
        if n <= SCAN_MAX {
            let mut seen = 0u64;
            let mut maybe_repeat = false;
            for e in &self.entries {
                let k = self.key_text(e).as_bytes();
                let (first, last) = (k.first().copied(), k.last().copied());
                let h = k.len() as u64 * 7
                    + u64::from(first.unwrap_or(0)) * 3
                    + u64::from(last.unwrap_or(0));
                let bit = 1u64 << (h % 64);
                maybe_repeat |= seen & bit != 0;
                seen |= bit;
            }
            if !maybe_repeat {
                return;
            }
            let mut i = 0;
            while i < self.entries.len() {
                if self.repeated_later(i) {
                    self.drop_entry(i);
                } else {
                    i += 1;
                }
            }
        } else {
            let mut seen = std::collections::HashSet::with_capacity(n);
            let mut keep = vec![false; n];
            for (i, e) in self.entries.iter().enumerate().rev() {
                if seen.insert(self.key_text(e))
                    && let Some(slot) = keep.get_mut(i)
                {
                    *slot = true;
                }
            }
            let mut flags = keep.into_iter();
            self.entries.retain(|_| flags.next().unwrap_or(false));
        }
    }

    fn repeated_later(&self, i: usize) -> bool {
        let Some(key) = self.entries.get(i).map(|e| self.key_text(e)) else {
            return false;
        };
        self.entries
            .iter()
            .skip(i + 1)
            .any(|e| self.key_text(e) == key)
    }

    /// Writes a new value for entry `i`; the old value's bytes become dead.
    fn replace_value(&mut self, i: usize, write: impl FnOnce(&mut ValueText<'_>)) {
        let value = self.write_value(write);
        if let Some(e) = self.entries.get_mut(i) {
            self.dead += e.value.len();
            e.value = value;
        }
        self.maybe_compact();
    }

    fn drop_entry(&mut self, i: usize) -> Option<Entry> {
        if i >= self.entries.len() {
            return None;
        }
        let e = self.entries.remove(i);
        self.dead += e.value.len();
        if let Key::Text(k) = e.key {
            self.dead += k.len();
        }
        Some(e)
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.position(key)?;
        let e = self.drop_entry(i)?;
        let value = self.span_text(e.value).to_owned();
        self.maybe_compact();
        Some(value)
    }

    /// Rewrites `text` with only live bytes once dead ones dominate.
    fn maybe_compact(&mut self) {
        if self.dead < DEAD_MIN || self.dead * 2 < self.text.len() {
            return;
        }
        let mut text = String::with_capacity(self.text.len() - self.dead);
        for e in &mut self.entries {
            if let Key::Text(k) = e.key {
                let start = text.len();
                text.push_str(self.text.get(k.start..k.end).unwrap_or_default());
                e.key = Key::Text(Span {
                    start,
                    end: text.len(),
                });
            }
            let start = text.len();
            text.push_str(
                self.text
                    .get(e.value.start..e.value.end)
                    .unwrap_or_default(),
            );
            e.value = Span {
                start,
                end: text.len(),
            };
        }
        self.text = text;
        self.dead = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|e| (self.key_text(e), self.span_text(e.value)))
    }
}

impl fmt::Debug for ExtFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl PartialEq for ExtFields {
    fn eq(&self, other: &Self) -> bool {
        /// Past this many keys, pairwise lookups (quadratic) give way to a hash map.
        const SCAN_MAX: usize = 32;
        if self.len() != other.len() {
            return false;
        }
        if self.len() <= SCAN_MAX {
            return self.iter().all(|(k, v)| other.get(k) == Some(v));
        }
        let theirs: std::collections::HashMap<&str, &str> = other.iter().collect();
        self.iter().all(|(k, v)| theirs.get(k) == Some(&v))
    }
}

impl Eq for ExtFields {}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for ExtFields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut ext = ExtFields::new();
        for (k, v) in iter {
            ext.insert(k, v);
        }
        ext
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_and_static_keys_mix_with_copied_ones() {
        let mut e = ExtFields::new();
        e.append_new_with("a", |t| t.push_str("1"));
        e.insert("b", String::from("2"));
        e.insert("a", "3");
        e.insert_static_with("b", |t| t.push_int(-40));
        e.insert_static_with("c", |t| t.push_int(i64::MIN));
        assert_eq!(e.get("a"), Some("3"));
        assert_eq!(e.get("b"), Some("-40"));
        assert_eq!(e.get("c"), Some("-9223372036854775808"));
        assert_eq!(e.len(), 3);
        let order: Vec<_> = e.iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["a", "b", "c"], "insertion order is kept");
        assert_eq!(e.remove("b"), Some("-40".to_owned()));
        assert_eq!(e.remove("b"), None);
        assert_eq!(
            format!("{e:?}"),
            r#"{"a": "3", "c": "-9223372036854775808"}"#
        );
    }

    /// Editing one key in a loop must not grow the buffer without bound.
    #[test]
    fn dead_text_is_compacted() {
        let mut e = ExtFields::new();
        e.insert("keep", "k");
        for i in 0..10_000 {
            e.insert("x", format!("value {i}"));
            if i % 3 == 0 {
                e.insert(format!("tmp{}", i % 7), "t");
                e.remove(&format!("tmp{}", i % 7));
            }
        }
        assert!(
            e.text.len() < 2 * DEAD_MIN,
            "text is {} bytes",
            e.text.len()
        );
        assert_eq!(e.get("x"), Some("value 9999"));
        assert_eq!(e.get("keep"), Some("k"));
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn decoding_keeps_the_last_of_repeated_keys_below_and_above_the_scan_limit() {
        for n in [2usize, 5, 31, 32, 33, 500] {
            let mut e = ExtFields::for_decoding(0, 0);
            for i in 0..n {
                e.push_decoded(&format!("k{}", i % (n / 2).max(1)), &i.to_string());
            }
            e.push_decoded("k0", "last");
            e.finish_decoding();
            assert_eq!(e.len(), (n / 2).max(1), "{n}");
            assert_eq!(e.get("k0"), Some("last"), "{n}");
            let want = format!("{}", n - 1);
            let last_key = format!("k{}", (n - 1) % (n / 2).max(1));
            if last_key != "k0" {
                assert_eq!(e.get(&last_key), Some(want.as_str()), "{n}");
            }
        }
    }

    #[test]
    fn equality_ignores_order_for_small_and_large_maps() {
        for n in [3, 100] {
            let a: ExtFields = (0..n).map(|i| (i.to_string(), "v")).collect();
            let b: ExtFields = (0..n).rev().map(|i| (i.to_string(), "v")).collect();
            assert_eq!(a, b);
            let mut c = b.clone();
            c.insert("0", "other");
            assert_ne!(a, c);
        }
    }
}
