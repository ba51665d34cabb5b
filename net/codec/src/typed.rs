//! Typed command headers ↔ `extFields` (spec §1.8).
//!
//! Every value travels as text: ints and longs in plain decimal (Java `parseInt`/`parseLong`:
//! optional `-`, no `+`, no spaces), booleans as `true`/`false` (anything but a
//! case-insensitive "true" reads as false, as Java's `parseBoolean`). Headers are declared with
//! [`ext_header!`], which writes the struct and both directions of the mapping.

use crate::command::{ExtFields, ValueText};

/// A request header field that is missing or does not parse. Becomes a response with a
/// readable remark, never a broken connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldError {
    Missing {
        key: &'static str,
    },
    Malformed {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldError::Missing { key } => write!(f, "the request header lacks field `{key}`"),
            FieldError::Malformed {
                key,
                value,
                expected,
            } => {
                write!(f, "header field `{key}` = {value:?} is not {expected}")
            }
        }
    }
}

impl std::error::Error for FieldError {}

/// A type that travels as one ext value.
pub trait WireValue: Sized {
    /// What the value must look like, for error remarks ("a 32-bit integer").
    const EXPECTED: &'static str;
    fn parse(text: &str) -> Option<Self>;
    fn to_wire(&self) -> String;

    /// Appends the wire text to an ext map's buffer; override to avoid the `String` that
    /// [`to_wire`](Self::to_wire) allocates.
    fn write_wire(&self, out: &mut ValueText<'_>) {
        out.push_str(&self.to_wire());
    }
}

impl WireValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
    fn to_wire(&self) -> String {
        self.clone()
    }
    fn write_wire(&self, out: &mut ValueText<'_>) {
        out.push_str(self);
    }
}

fn java_integer_text(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl WireValue for i32 {
    const EXPECTED: &'static str = "a 32-bit integer";
    fn parse(text: &str) -> Option<Self> {
        java_integer_text(text).then(|| text.parse().ok()).flatten()
    }
    fn to_wire(&self) -> String {
        self.to_string()
    }
    fn write_wire(&self, out: &mut ValueText<'_>) {
        out.push_int(i64::from(*self));
    }
}

impl WireValue for i64 {
    const EXPECTED: &'static str = "a 64-bit integer";
    fn parse(text: &str) -> Option<Self> {
        java_integer_text(text).then(|| text.parse().ok()).flatten()
    }
    fn to_wire(&self) -> String {
        self.to_string()
    }
    fn write_wire(&self, out: &mut ValueText<'_>) {
        out.push_int(*self);
    }
}

impl WireValue for bool {
    const EXPECTED: &'static str = "a boolean";
    fn parse(text: &str) -> Option<Self> {
        Some(text.eq_ignore_ascii_case("true"))
    }
    fn to_wire(&self) -> String {
        self.to_string()
    }
    fn write_wire(&self, out: &mut ValueText<'_>) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

/// Reads a field the handler cannot do without.
pub fn required<T: WireValue>(ext: &ExtFields, key: &'static str) -> Result<T, FieldError> {
    optional(ext, key)?.ok_or(FieldError::Missing { key })
}

/// Reads a field that may be absent; present but malformed is still an error.
pub fn optional<T: WireValue>(ext: &ExtFields, key: &'static str) -> Result<Option<T>, FieldError> {
    match ext.get(key) {
        None => Ok(None),
        Some(text) => T::parse(text)
            .map(Some)
            .ok_or_else(|| FieldError::Malformed {
                key,
                value: text.to_owned(),
                expected: T::EXPECTED,
            }),
    }
}

/// Writes a typed header's fields into an ext map.
///
/// Into an empty map the fields are appended without a lookup each (a header's keys are
/// distinct literals: [`ext_header!`] checks that at compile time), so encoding is linear in
/// the number of fields. Into a map that already holds keys, each field replaces any earlier
/// value of its key, as [`ExtFields::insert`] does.
pub struct ExtWriter<'a> {
    ext: &'a mut ExtFields,
    fresh: bool,
}

impl<'a> ExtWriter<'a> {
    pub fn new(ext: &'a mut ExtFields) -> ExtWriter<'a> {
        let fresh = ext.is_empty();
        ExtWriter { ext, fresh }
    }

    /// Writes one field. Each key may be written once per writer.
    pub fn put<T: WireValue>(&mut self, key: &'static str, value: &T) {
        if self.fresh {
            self.ext.append_new_with(key, |out| value.write_wire(out));
        } else {
            self.ext
                .insert_static_with(key, |out| value.write_wire(out));
        }
    }
}

/// True when no two of `keys` are equal; [`ext_header!`] asserts it at compile time so that
/// [`ExtWriter`] may append without looking keys up.
pub const fn keys_distinct(keys: &[&str]) -> bool {
    let mut i = 0;
    while i < keys.len() {
        let mut j = i + 1;
        while j < keys.len() {
            if let (Some(a), Some(b)) = (const_get(keys, i), const_get(keys, j))
                && const_str_eq(a, b)
            {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn const_get<'a>(keys: &[&'a str], i: usize) -> Option<&'a str> {
    match keys.split_at_checked(i) {
        Some((_, [first, ..])) => Some(*first),
        _ => None,
    }
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    while let ([x, rest_a @ ..], [y, rest_b @ ..]) = (a, b) {
        if *x != *y {
            return false;
        }
        a = rest_a;
        b = rest_b;
    }
    true
}

/// A command's typed header.
pub trait Header: Sized {
    fn decode(ext: &ExtFields) -> Result<Self, FieldError>;
    fn encode(&self, ext: &mut ExtFields);

    fn to_ext(&self) -> ExtFields {
        let mut ext = ExtFields::new();
        self.encode(&mut ext);
        ext
    }
}

/// Declares a header struct and its ext-field mapping.
///
/// ```
/// ringmq_codec::ext_header! {
///     /// GET_ROUTEINFO_BY_TOPIC (105).
///     pub struct RouteRequest {
///         topic: req String = "topic",
///         accept_standard_json_only: opt bool = "acceptStandardJsonOnly",
///     }
/// }
/// ```
/// `req` fields must be present; `opt` fields become `Option<T>`.
#[macro_export]
macro_rules! ext_header {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident $ty:ty = $key:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $crate::ext_header!(@ty $kind $ty), )*
        }

        impl $crate::typed::Header for $name {
            fn decode(
                ext: &$crate::command::ExtFields,
            ) -> ::core::result::Result<Self, $crate::typed::FieldError> {
                Ok($name { $( $field: $crate::ext_header!(@get $kind ext $key $ty), )* })
            }

            fn encode(&self, ext: &mut $crate::command::ExtFields) {
                const {
                    assert!(
                        $crate::typed::keys_distinct(&[$($key),*]),
                        "two fields of this header have the same ext key"
                    )
                }
                #[allow(unused_mut)] // a header without fields writes nothing
                let mut _w = $crate::typed::ExtWriter::new(ext);
                $( $crate::ext_header!(@put $kind _w $key self.$field); )*
            }
        }
    };
    (@ty req $ty:ty) => { $ty };
    (@ty opt $ty:ty) => { ::core::option::Option<$ty> };
    (@get req $ext:ident $key:literal $ty:ty) => {
        $crate::typed::required::<$ty>($ext, $key)?
    };
    (@get opt $ext:ident $key:literal $ty:ty) => {
        $crate::typed::optional::<$ty>($ext, $key)?
    };
    (@put req $w:ident $key:literal $value:expr) => {
        $w.put($key, &$value)
    };
    (@put opt $w:ident $key:literal $value:expr) => {
        if let Some(v) = &$value {
            $w.put($key, v);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::ext_header! {
        /// A header using every field kind.
        pub struct Sample {
            topic: req String = "topic",
            queue_id: req i32 = "queueId",
            offset: opt i64 = "offset",
            flag: opt bool = "flag",
        }
    }

    #[test]
    fn round_trip_and_errors() {
        let h = Sample {
            topic: "T".into(),
            queue_id: -3,
            offset: Some(1 << 40),
            flag: None,
        };
        let ext = h.to_ext();
        assert_eq!(ext.get("queueId"), Some("-3"));
        assert_eq!(ext.get("flag"), None);
        assert_eq!(Sample::decode(&ext), Ok(h));

        let missing: ExtFields = [("queueId", "1")].into_iter().collect();
        assert_eq!(
            Sample::decode(&missing),
            Err(FieldError::Missing { key: "topic" })
        );
        for bad in ["+1", " 1", "1.0", "", "x", "99999999999"] {
            let ext: ExtFields = [("topic", "T"), ("queueId", bad)].into_iter().collect();
            assert!(
                matches!(Sample::decode(&ext), Err(FieldError::Malformed { .. })),
                "{bad}"
            );
        }
        let ext: ExtFields = [("topic", "T"), ("queueId", "0"), ("flag", "TRUE")]
            .into_iter()
            .collect();
        assert_eq!(Sample::decode(&ext).unwrap().flag, Some(true));
    }

    /// Encoding into a map that already holds some of the header's keys replaces them
    /// instead of appending a second copy.
    #[test]
    fn encode_into_a_non_empty_map_replaces_keys() {
        let mut ext: ExtFields = [("queueId", "77"), ("other", "x")].into_iter().collect();
        let h = Sample {
            topic: "T".into(),
            queue_id: 5,
            offset: Some(-1),
            flag: Some(false),
        };
        h.encode(&mut ext);
        assert_eq!(ext.len(), 5);
        assert_eq!(ext.get("queueId"), Some("5"));
        assert_eq!(ext.get("other"), Some("x"));
        assert_eq!(ext.get("offset"), Some("-1"));
        assert_eq!(ext.get("flag"), Some("false"));
        assert_eq!(Sample::decode(&ext), Ok(h));
    }

    #[test]
    fn keys_distinct_finds_repeats() {
        assert!(keys_distinct(&[]));
        assert!(keys_distinct(&["a", "ab", "b", "ba"]));
        assert!(!keys_distinct(&["a", "b", "a"]));
        assert!(!keys_distinct(&["queueId", "x", "queueId"]));
        const { assert!(keys_distinct(&["topic", "queueId"])) }
    }
}
