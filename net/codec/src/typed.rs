//! Typed command headers ↔ `extFields` (spec §1.8).
//!
//! Every value travels as text: ints and longs in plain decimal (Java `parseInt`/`parseLong`:
//! optional `-`, no `+`, no spaces), booleans as `true`/`false` (anything but a
//! case-insensitive "true" reads as false, as Java's `parseBoolean`). Headers are declared with
//! [`ext_header!`], which writes the struct and both directions of the mapping.

use crate::command::ExtFields;

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
}

impl WireValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
    fn to_wire(&self) -> String {
        self.clone()
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
}

impl WireValue for i64 {
    const EXPECTED: &'static str = "a 64-bit integer";
    fn parse(text: &str) -> Option<Self> {
        java_integer_text(text).then(|| text.parse().ok()).flatten()
    }
    fn to_wire(&self) -> String {
        self.to_string()
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
                $( $crate::ext_header!(@put $kind ext $key self.$field); )*
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
    (@put req $ext:ident $key:literal $value:expr) => {
        $ext.insert($key, $crate::typed::WireValue::to_wire(&$value))
    };
    (@put opt $ext:ident $key:literal $value:expr) => {
        if let Some(v) = &$value {
            $ext.insert($key, $crate::typed::WireValue::to_wire(v));
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
}
