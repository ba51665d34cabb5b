//! Property tests of the frame layer: the decoder never panics and is consistent on any
//! bytes, every command survives encode → decode in both serializations, and every prefix of
//! a frame is "need more bytes"; and the property-string scanner agrees with its plain
//! definition.
//!
//! Method: proptest generates commands, raw bytes and valid frames with random byte edits.
//! Each test prints its seed; `RINGMQ_SEED=<n>` replays it, `RINGMQ_ITERATIONS=<n>` (or
//! proptest's own `PROPTEST_CASES`) sets the number of cases, default 64.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::command::{Command, ExtFields, LanguageCode, SerializeType};
use crate::frame::{self, FRAME_MAX_DEFAULT};

/// Cases per property when neither `RINGMQ_ITERATIONS` nor `PROPTEST_CASES` is set: enough to
/// exercise every branch, small enough for a 2-core CI machine.
const DEFAULT_CASES: u32 = 64;

/// A frame limit small enough that generated frames exceed it.
const SMALL_LIMIT: usize = 64;

fn config(test: &str) -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if let Some(n) = env_u64("RINGMQ_ITERATIONS") {
        config.cases = u32::try_from(n).unwrap_or(u32::MAX);
    } else if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    let seed = seed(test, u64::from(config.cases));
    config.rng_seed = RngSeed::Fixed(seed);
    config
}

/// The seed of a randomized test (`RINGMQ_SEED`, else a fresh one), printed with `cases`.
fn seed(test: &str, cases: u64) -> u64 {
    let seed = env_u64("RINGMQ_SEED").unwrap_or_else(|| {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(test)
    });
    eprintln!("{test}: seed {seed}, {cases} cases (replay: RINGMQ_SEED={seed})");
    seed
}

/// Seed and case count of a randomized test outside proptest: `RINGMQ_SEED`, and
/// `RINGMQ_ITERATIONS` or `default_cases`.
pub(crate) fn seed_and_cases(test: &str, default_cases: usize) -> (u64, usize) {
    let cases = env_u64("RINGMQ_ITERATIONS")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(default_cases);
    (seed(test, cases as u64), cases)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Non-empty text with any characters, control characters and non-BMP ones included.
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("(?s).{{1,{max}}}")).expect("valid regex")
}

fn ext_fields() -> impl Strategy<Value = ExtFields> {
    proptest::collection::vec((text(12), text(40)), 0..8)
        .prop_map(|pairs| pairs.into_iter().collect())
}

/// Any command one serialization can carry without loss: the binary header has a 16-bit code
/// and version and a raw language byte; JSON names the language, so it must be a known one.
fn command(ser: SerializeType) -> impl Strategy<Value = Command> {
    let (code, version, language) = match ser {
        SerializeType::Json => (
            any::<i32>().boxed(),
            any::<i32>().boxed(),
            (0u8..=13).boxed(),
        ),
        SerializeType::RocketMq => (
            any::<i16>().prop_map(i32::from).boxed(),
            any::<i16>().prop_map(i32::from).boxed(),
            any::<u8>().boxed(),
        ),
    };
    (
        (code, version, language),
        (any::<i32>(), any::<i32>()),
        proptest::option::of(text(60)),
        ext_fields(),
        proptest::collection::vec(any::<u8>(), 0..96),
    )
        .prop_map(
            move |((code, version, language), (opaque, flag), remark, ext, body)| Command {
                code,
                language: LanguageCode(language),
                version,
                opaque,
                flag,
                remark,
                ext,
                serialize: ser,
                body: Bytes::from(body),
            },
        )
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        command(SerializeType::Json),
        command(SerializeType::RocketMq)
    ]
}

fn encode(cmd: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode(cmd, &mut buf);
    buf.to_vec()
}

/// The command with its ext keys sorted. A JSON header hands ext fields back in the order of
/// serde_json's map (sorted keys, or insertion order with its `preserve_order` feature), and
/// `ExtFields` equality looks at order, so JSON round trips compare sorted ext maps.
fn sorted_ext(cmd: &Command) -> Command {
    let mut pairs: Vec<(String, String)> = cmd
        .ext
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    pairs.sort();
    Command {
        ext: pairs.into_iter().collect(),
        ..cmd.clone()
    }
}

/// Decodes `bytes` with both entry points and checks they agree with each other and with
/// `check`; if a command comes out, encoding it again must give a frame that decodes to it.
fn decode_consistently(bytes: &[u8], limit: usize) -> Result<(), TestCaseError> {
    let by_slice = frame::decode(bytes, limit);
    let checked = frame::check(bytes, limit);
    let mut buf = BytesMut::from(bytes);
    let by_buf = frame::decode_from(&mut buf, limit);
    match by_slice {
        Ok(None) => {
            prop_assert_eq!(checked, Ok(None));
            prop_assert_eq!(by_buf, Ok(None));
            prop_assert_eq!(&buf[..], bytes, "Ok(None) must not consume bytes");
        }
        Ok(Some((cmd, used))) => {
            prop_assert!(used <= bytes.len(), "used {} of {}", used, bytes.len());
            prop_assert_eq!(checked.map(|i| i.map(|i| i.frame_len)), Ok(Some(used)));
            prop_assert_eq!(by_buf, Ok(Some(cmd.clone())));
            prop_assert_eq!(buf.len(), bytes.len() - used);
            let again = encode(&cmd);
            let (back, n) = frame::decode(&again, usize::MAX)
                .map_err(|e| TestCaseError::fail(format!("re-encoded frame fails: {e}")))?
                .ok_or_else(|| TestCaseError::fail("re-encoded frame is incomplete"))?;
            prop_assert_eq!(n, again.len());
            prop_assert_eq!(back, cmd);
        }
        Err(e) => {
            prop_assert!(checked.is_err() || matches!(e, frame::FrameError::BadHeader(_)));
            prop_assert_eq!(by_buf, Err(e));
        }
    }
    Ok(())
}

/// A valid frame with a few bytes overwritten, to reach the header parsers with
/// nearly-valid input that random bytes almost never produce.
fn mutated_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        any_command(),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    )
        .prop_map(|(cmd, edits)| {
            let mut bytes = encode(&cmd);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                if let Some(slot) = bytes.get_mut(i) {
                    *slot = byte;
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config("decode_arbitrary_bytes"))]

    /// (a) Arbitrary bytes: no panic, and Ok(None) / Ok(Some) / Err agree across entry points.
    #[test]
    fn decode_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        small in any::<bool>(),
    ) {
        decode_consistently(&bytes, if small { SMALL_LIMIT } else { FRAME_MAX_DEFAULT })?;
    }
}

proptest! {
    #![proptest_config(config("decode_mutated_frames"))]

    /// (a) Nearly-valid frames: the same consistency, deep inside the header parsers.
    #[test]
    fn decode_mutated_frames(bytes in mutated_frame(), small in any::<bool>()) {
        decode_consistently(&bytes, if small { SMALL_LIMIT } else { FRAME_MAX_DEFAULT })?;
    }
}

proptest! {
    #![proptest_config(config("commands_round_trip"))]

    /// (b) Every command comes back equal, through both decode entry points, with trailing
    /// bytes of the next frame left in place.
    #[test]
    fn commands_round_trip(
        cmd in any_command(),
        trailing in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let mut bytes = encode(&cmd);
        let frame_len = bytes.len();
        bytes.extend_from_slice(&trailing);
        let comparable = |c: &Command| match c.serialize {
            SerializeType::Json => sorted_ext(c),
            SerializeType::RocketMq => c.clone(),
        };
        let want = comparable(&cmd);
        let (back, used) = frame::decode(&bytes, FRAME_MAX_DEFAULT)
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .ok_or_else(|| TestCaseError::fail("complete frame reported incomplete"))?;
        prop_assert_eq!(used, frame_len);
        prop_assert_eq!(comparable(&back), want.clone());
        let mut buf = BytesMut::from(&bytes[..]);
        let back = frame::decode_from(&mut buf, FRAME_MAX_DEFAULT)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back.as_ref().map(comparable), Some(want));
        prop_assert_eq!(&buf[..], &trailing[..]);
    }
}

proptest! {
    #![proptest_config(config("every_prefix_needs_more_bytes"))]

    /// (c) Every proper prefix of a frame is "need more bytes", never an error.
    #[test]
    fn every_prefix_needs_more_bytes(cmd in any_command()) {
        let bytes = encode(&cmd);
        for cut in 0..bytes.len() {
            let by_slice = frame::decode(&bytes[..cut], FRAME_MAX_DEFAULT);
            prop_assert_eq!(by_slice, Ok(None), "cut {}", cut);
            let mut buf = BytesMut::from(&bytes[..cut]);
            prop_assert_eq!(frame::decode_from(&mut buf, FRAME_MAX_DEFAULT), Ok(None));
        }
    }
}

/// A property string drawn from separators, their neighbours, short names and multi-byte
/// characters; long enough that pieces span the scanner's 8-byte words.
fn property_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            1 => Just('\u{0}'),
            1 => Just('\u{1}'),
            1 => Just('\u{2}'),
            1 => Just('\u{3}'),
            8 => Just('a'),
            2 => Just('K'),
            1 => Just('é'),
            1 => Just('字'),
        ],
        0..80,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(config("property_pairs_match_split"))]

    /// (b) The byte scanner of `properties::iter` yields what the plain definition (split at
    /// `\x02`, then at the first `\x01`, both sides non-empty) yields.
    #[test]
    fn property_pairs_match_split(props in property_string()) {
        use crate::message::properties::{self, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
        let expected: Vec<(&str, &str)> = props
            .split(PROPERTY_SEPARATOR)
            .filter_map(|pair| pair.split_once(NAME_VALUE_SEPARATOR))
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .collect();
        let got: Vec<(&str, &str)> = properties::iter(&props).collect();
        prop_assert_eq!(got, expected);
    }
}
