//! RocketMQ-style configuration for ringmq processes: a Java `.properties` file given with
//! `-c FILE`, then `key=value` command-line overrides, with RocketMQ's property names.
//!
//! ```text
//! ringmq-namesrv -c namesrv.conf listenPort=9877
//! ```
//!
//! Typed lookups name the key in their error (`listenPort = "x" is not a port number`), and
//! keys the process does not know are reported back so the caller can warn about them: a
//! typo in a config file should be visible, not silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File { path: PathBuf, line: usize },
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::CommandLine => f.write_str("the command line"),
        }
    }
}

/// A configuration that cannot be used. The message says what to fix.
#[derive(Debug)]
pub enum ConfigError {
    /// The `-c` file cannot be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A command-line argument is neither `-c FILE` nor `key=value`.
    BadArgument(String),
    /// `-c` without a file name.
    MissingFile,
    /// A value does not parse as its key's type.
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
        source: Source,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            ConfigError::BadArgument(arg) => write!(
                f,
                "unexpected argument {arg:?}: expected `-c FILE` or `key=value`"
            ),
            ConfigError::MissingFile => f.write_str("`-c` needs a file name: `-c namesrv.conf`"),
            ConfigError::BadValue {
                key,
                value,
                expected,
                source,
            } => write!(
                f,
                "config key `{key}` = {value:?} (from {source}) is not {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A value type a config key can have.
pub trait ConfigValue: Sized {
    /// What a valid value looks like, for error messages.
    const EXPECTED: &'static str;
    fn parse(text: &str) -> Option<Self>;
}

macro_rules! number_value {
    ($($ty:ty => $what:literal),*) => {$(
        impl ConfigValue for $ty {
            const EXPECTED: &'static str = $what;
            fn parse(text: &str) -> Option<Self> {
                <$ty>::from_str(text).ok()
            }
        }
    )*};
}

number_value!(
    u16 => "a port number (0-65535)",
    u32 => "a non-negative 32-bit integer",
    u64 => "a non-negative integer",
    i32 => "a 32-bit integer",
    i64 => "a 64-bit integer",
    usize => "a non-negative integer"
);

impl ConfigValue for bool {
    const EXPECTED: &'static str = "`true` or `false`";
    fn parse(text: &str) -> Option<Self> {
        if text.eq_ignore_ascii_case("true") {
            Some(true)
        } else if text.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    }
}

impl ConfigValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

impl ConfigValue for std::net::IpAddr {
    const EXPECTED: &'static str = "an IP address such as 0.0.0.0 or 127.0.0.1";
    fn parse(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// Loaded key/value pairs; later sources override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, (String, Source)>,
}

impl Config {
    /// Builds the configuration from process arguments (without the program name):
    /// `-c FILE` is read first wherever it appears, then each `key=value` in order.
    pub fn from_args<I, S>(args: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut file: Option<PathBuf> = None;
        let mut overrides = Vec::new();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            if arg == "-c" {
                file = Some(args.next().ok_or(ConfigError::MissingFile)?.into());
            } else if let Some(path) = arg.strip_prefix("-c").filter(|p| !p.is_empty()) {
                file = Some(path.into());
            } else if let Some((k, v)) = arg.split_once('=').filter(|(k, _)| !k.is_empty()) {
                overrides.push((k.trim().to_owned(), v.trim().to_owned()));
            } else {
                return Err(ConfigError::BadArgument(arg));
            }
        }
        let mut config = Config::default();
        if let Some(path) = file {
            config.merge_file(&path)?;
        }
        for (k, v) in overrides {
            config.values.insert(k, (v, Source::CommandLine));
        }
        Ok(config)
    }

    /// Reads a properties file and lays its values over the current ones.
    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        for (line, key, value) in parse_properties(&text) {
            let source = Source::File {
                path: path.to_owned(),
                line,
            };
            self.values.insert(key, (value, source));
        }
        Ok(())
    }

    /// Sets one value, as a command-line override would.
    pub fn set(&mut self, key: &str, value: &str) {
        self.values
            .insert(key.to_owned(), (value.to_owned(), Source::CommandLine));
    }

    /// The raw text of `key`, if set.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// The typed value of `key`, `None` if unset; a value that does not parse is an error
    /// naming the key and where it was set.
    pub fn get<T: ConfigValue>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some((text, source)) = self.values.get(key) else {
            return Ok(None);
        };
        T::parse(text)
            .map(Some)
            .ok_or_else(|| ConfigError::BadValue {
                key: key.to_owned(),
                value: text.clone(),
                expected: T::EXPECTED,
                source: source.clone(),
            })
    }

    /// The typed value of `key`, or `default` when unset.
    pub fn get_or<T: ConfigValue>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    /// The error for `key`'s value being out of range although it parses (e.g. a zero
    /// interval), naming where it was set.
    pub fn invalid(&self, key: &str, expected: &'static str) -> ConfigError {
        let (value, source) = self
            .values
            .get(key)
            .cloned()
            .unwrap_or_else(|| (String::new(), Source::CommandLine));
        ConfigError::BadValue {
            key: key.to_owned(),
            value,
            expected,
            source,
        }
    }

    /// Keys set but not in `known`, with where each was set: the caller warns about them.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<(String, Source)> {
        self.values
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, (_, source))| (k.clone(), source.clone()))
            .collect()
    }

    /// Logs what a process does not use: keys it does not know (warning) and keys it accepts
    /// only for compatibility with Java's configuration files (`ignored`, informational).
    pub fn log_unused_keys(&self, documented: &[(&str, &str)], ignored: &[&str]) {
        let known: Vec<&str> = documented
            .iter()
            .map(|(k, _)| *k)
            .chain(ignored.iter().copied())
            .collect();
        for (key, source) in self.unknown_keys(&known) {
            tracing::warn!("unknown config key `{key}` (from {source}) is ignored; see --help");
        }
        for key in ignored.iter().filter(|k| self.raw(k).is_some()) {
            tracing::info!("config key `{key}` is accepted for compatibility and has no effect");
        }
    }
}

/// Parses Java `.properties` text into `(line number, key, value)` triples.
///
/// Supported, as Java does: `key=value`, `key: value` and `key value`; `#` and `!` comment
/// lines; blank lines; a trailing `\` continuing the line; the escapes `\t \n \r \f \\ \= \:
/// \uXXXX` and a backslash before any other character standing for that character. Values are
/// trimmed at both ends (Java keeps trailing blanks, which then fail `Integer.parseInt`).
pub fn parse_properties(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, first)) = lines.next() {
        let mut logical = first.trim_start().to_owned();
        if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
            continue;
        }
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_key_value(&logical);
        out.push((index + 1, unescape(key), unescape(value).trim().to_owned()));
    }
    out
}

/// An odd number of trailing backslashes continues the line.
fn ends_with_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits at the first unescaped `=`, `:` or blank; a blank run may be followed by one `=`
/// or `:` that still belongs to the separator.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '=' | ':' => {
                let (k, rest) = line.split_at(i);
                return (k.trim_end(), rest.get(1..).unwrap_or_default().trim_start());
            }
            ' ' | '\t' | '\x0c' => {
                let (k, rest) = line.split_at(i);
                let rest = rest.trim_start();
                let rest = rest
                    .strip_prefix('=')
                    .or_else(|| rest.strip_prefix(':'))
                    .unwrap_or(rest);
                return (k, rest.trim_start());
            }
            _ => {}
        }
    }
    (line, "")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten();
                match code.and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn java_properties_syntax() {
        let text = "# comment\n! also a comment\n\nlistenPort=9876\n  bindAddress : 127.0.0.1  \n\
                    rocketmqHome /opt/rmq\nempty=\nkey\\=with\\:escapes=a\\tb\\u0041\n\
                    long = one, \\\n    two\nflag\n";
        assert_eq!(
            props(text),
            vec![
                kv("listenPort", "9876"),
                kv("bindAddress", "127.0.0.1"),
                kv("rocketmqHome", "/opt/rmq"),
                kv("empty", ""),
                kv("key=with:escapes", "a\tbA"),
                kv("long", "one, two"),
                kv("flag", ""),
            ]
        );
        let lines: Vec<usize> = parse_properties(text).iter().map(|(l, _, _)| *l).collect();
        assert_eq!(lines, vec![4, 5, 6, 7, 8, 9, 11]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for text in [
            "\\",
            "a\\",
            "=",
            ":x",
            "a=\\u12",
            "a=\\uZZZZ",
            "\\\\\n",
            "k v \\",
        ] {
            let _ = parse_properties(text);
        }
        assert_eq!(props("a=\\u12"), vec![kv("a", "\\u12")]);
    }

    #[test]
    fn command_line_overrides_file() {
        let dir = std::env::temp_dir().join(format!("ringmq-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("namesrv.conf");
        std::fs::write(
            &file,
            "listenPort=1000\nbindAddress=127.0.0.1\nlistenPrt=1\n",
        )
        .unwrap();
        let args = ["listenPort=2000", "-c", file.to_str().unwrap()];
        let config = Config::from_args(args).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(config.get::<u16>("listenPort").unwrap(), Some(2000));
        assert_eq!(
            config.get::<std::net::IpAddr>("bindAddress").unwrap(),
            Some([127, 0, 0, 1].into())
        );
        assert_eq!(
            config
                .get_or::<u64>("scanNotActiveBrokerInterval", 5000)
                .unwrap(),
            5000
        );
        let unknown = config.unknown_keys(&["listenPort", "bindAddress"]);
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].0, "listenPrt");
        assert!(matches!(&unknown[0].1, Source::File { line: 3, .. }));
    }

    #[test]
    fn bad_values_name_the_key_and_source() {
        let config = Config::from_args(["listenPort=ninety", "flag=yes"]).unwrap();
        let err = config.get::<u16>("listenPort").unwrap_err().to_string();
        assert!(
            err.contains("listenPort") && err.contains("ninety"),
            "{err}"
        );
        assert!(err.contains("command line"), "{err}");
        assert!(config.get::<bool>("flag").is_err());
        assert!(config.get::<u16>("absent").unwrap().is_none());
    }

    #[test]
    fn bad_arguments() {
        assert!(matches!(
            Config::from_args(["-c"]),
            Err(ConfigError::MissingFile)
        ));
        assert!(matches!(
            Config::from_args(["--verbose"]),
            Err(ConfigError::BadArgument(_))
        ));
        assert!(matches!(
            Config::from_args(["=x"]),
            Err(ConfigError::BadArgument(_))
        ));
        let err = Config::from_args(["-c", "/nonexistent/ringmq.conf"]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/ringmq.conf"),
            "{err}"
        );
    }
}
