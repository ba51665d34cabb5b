//! Frame and header tests: the spec's golden bytes, round trips in both serializations, and
//! every truncated prefix of a frame.

use bytes::{Bytes, BytesMut};

use crate::command::{Command, LanguageCode, SerializeType};
use crate::frame::{self, FRAME_MAX_DEFAULT, FrameError};

/// Spec §1.4: GET_ROUTEINFO_BY_TOPIC with a 131-byte JSON header.
const GOLDEN_JSON_HEADER: &str = r#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;

fn golden_json_frame() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x00, 0x87, 0x00, 0x00, 0x00, 0x83];
    v.extend_from_slice(GOLDEN_JSON_HEADER.as_bytes());
    v
}

/// Spec §1.5: the same request with a 41-byte binary header.
fn golden_binary_frame() -> Vec<u8> {
    let mut v = vec![0x00, 0x00, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29];
    v.extend_from_slice(&[0x00, 0x69, 0x00, 0x01, 0xdf, 0, 0, 0, 1, 0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(&[0, 0, 0, 0x14, 0x00, 0x05]);
    v.extend_from_slice(b"topic");
    v.extend_from_slice(&[0, 0, 0, 9]);
    v.extend_from_slice(b"TopicTest");
    v
}

fn route_request(ser: SerializeType) -> Command {
    let mut cmd = Command::request(105).with_ext("topic", "TopicTest");
    cmd.language = LanguageCode::JAVA;
    cmd.opaque = 1;
    cmd.serialize = ser;
    cmd
}

fn encode(cmd: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode(cmd, &mut buf);
    buf.to_vec()
}

#[test]
fn golden_json_decodes_and_reencodes_byte_for_byte() {
    let bytes = golden_json_frame();
    assert_eq!(GOLDEN_JSON_HEADER.len(), 131);
    let (cmd, used) = frame::decode(&bytes, FRAME_MAX_DEFAULT).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(cmd, route_request(SerializeType::Json));
    assert_eq!(encode(&cmd), bytes);
}

#[test]
fn golden_binary_decodes_and_reencodes_byte_for_byte() {
    let bytes = golden_binary_frame();
    assert_eq!(bytes.len(), 4 + 0x2d);
    let (cmd, used) = frame::decode(&bytes, FRAME_MAX_DEFAULT).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    assert_eq!(cmd, route_request(SerializeType::RocketMq));
    assert_eq!(encode(&cmd), bytes);
}

fn sample(ser: SerializeType) -> Command {
    let mut cmd = Command::request(310)
        .with_ext("a", "group")
        .with_ext("b", "Topic\"with\\quotes\n")
        .with_ext("i", "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}")
        .with_remark("héllo \u{0007} wörld")
        .with_body(Bytes::from_static(b"\x00\x01body bytes\xff"));
    cmd.opaque = -7;
    cmd.flag = 2;
    cmd.version = 401;
    cmd.serialize = ser;
    cmd
}

#[test]
fn round_trip_both_serializations() {
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        let cmd = sample(ser);
        let bytes = encode(&cmd);
        let (back, used) = frame::decode(&bytes, FRAME_MAX_DEFAULT).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(back, cmd, "{ser:?}");
        let mut buf = BytesMut::from(&bytes[..]);
        buf.extend_from_slice(b"next");
        let back = frame::decode_from(&mut buf, FRAME_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!(back, cmd);
        assert_eq!(&buf[..], b"next");
    }
}

#[test]
fn every_truncated_prefix_needs_more_bytes() {
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        let bytes = encode(&sample(ser));
        for cut in 0..bytes.len() {
            assert_eq!(
                frame::decode(&bytes[..cut], FRAME_MAX_DEFAULT),
                Ok(None),
                "{ser:?} {cut}"
            );
        }
    }
}

#[test]
fn oversized_frame_is_refused_from_its_length_alone() {
    let mut bytes = vec![0x01, 0x00, 0x00, 0x00]; // total_len = 16 MiB: 4 + 16 MiB > limit
    assert!(matches!(
        frame::decode(&bytes, FRAME_MAX_DEFAULT),
        Err(FrameError::TooLarge { .. })
    ));
    bytes = vec![0, 0, 0, 100];
    assert!(matches!(
        frame::decode(&bytes, 64),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn header_length_beyond_frame_is_an_error() {
    let bytes = [0, 0, 0, 10, 0, 0, 0, 7, b'{', b'}', 0, 0, 0, 0];
    assert_eq!(
        frame::decode(&bytes, FRAME_MAX_DEFAULT),
        Err(FrameError::HeaderTooLong {
            header_len: 7,
            total_len: 10
        })
    );
}

#[test]
fn unknown_serialize_type_is_an_error() {
    let bytes = [0, 0, 0, 6, 2, 0, 0, 2, b'{', b'}'];
    assert_eq!(
        frame::decode(&bytes, FRAME_MAX_DEFAULT),
        Err(FrameError::UnknownSerializeType(2))
    );
}

#[test]
fn length_too_small_for_header_word() {
    let bytes = [0, 0, 0, 3, 0, 0, 0];
    assert_eq!(
        frame::decode(&bytes, FRAME_MAX_DEFAULT),
        Err(FrameError::LengthTooSmall { total_len: 3 })
    );
}

fn json_frame(header: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(4 + header.len() as u32).to_be_bytes());
    v.extend_from_slice(&(header.len() as u32).to_be_bytes());
    v.extend_from_slice(header.as_bytes());
    v
}

#[test]
fn json_header_leniency() {
    // Missing optional keys, numeric/boolean ext values, null remark, ordinal language.
    let h = r#"{"code":34,"opaque":9,"language":9,"remark":null,"extFields":{"queueId":3,"batch":true,"n":null,"s":"x"},"unknownKey":[1,2]}"#;
    let (cmd, _) = frame::decode(&json_frame(h), FRAME_MAX_DEFAULT)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.code, 34);
    assert_eq!(cmd.opaque, 9);
    assert_eq!(cmd.language, LanguageCode::GO);
    assert_eq!(cmd.version, 0);
    assert_eq!(cmd.remark, None);
    assert_eq!(cmd.ext.get("queueId"), Some("3"));
    assert_eq!(cmd.ext.get("batch"), Some("true"));
    assert_eq!(cmd.ext.get("n"), None);
    assert_eq!(cmd.ext.get("s"), Some("x"));
    let (cmd, _) = frame::decode(&json_frame(r#"{"code":105}"#), FRAME_MAX_DEFAULT)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.language, LanguageCode::JAVA);
    assert!(cmd.ext.is_empty());
    let (cmd, _) = frame::decode(&json_frame(r#"{"code":1,"language":"KLINGON"}"#), 1 << 20)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.language, LanguageCode::OTHER);
}

#[test]
fn unparsable_json_header_is_an_error() {
    for h in [
        "{",
        "[]",
        "{\"code\":\"x\"}",
        "{\"opaque\":1}",
        "{\"code\":99999999999}",
        "nul",
    ] {
        let r = frame::decode(&json_frame(h), FRAME_MAX_DEFAULT);
        assert!(matches!(r, Err(FrameError::BadHeader(_))), "{h}: {r:?}");
    }
}

#[test]
fn binary_header_with_bad_lengths_is_an_error() {
    // remark_len larger than the header.
    let mut h = vec![0, 105, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    h.extend_from_slice(&1000i32.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&(4 + h.len() as u32).to_be_bytes());
    f.extend_from_slice(&(0x0100_0000 | h.len() as u32).to_be_bytes());
    f.extend_from_slice(&h);
    assert!(matches!(
        frame::decode(&f, FRAME_MAX_DEFAULT),
        Err(FrameError::BadHeader(_))
    ));
}

#[test]
fn encode_head_leaves_room_for_a_body_sent_separately() {
    let cmd = sample(SerializeType::Json);
    let mut head = BytesMut::new();
    frame::encode_head(&cmd, cmd.body.len(), &mut head);
    head.extend_from_slice(&cmd.body);
    assert_eq!(head.to_vec(), encode(&cmd));
}

/// Regression (found by the codec engineer): ext pairs were de-duplicated with a scan per key,
/// so a binary header with 160 000 distinct keys (2 MB) took 73 s to decode. Decoding is now
/// linear; a repeated key keeps its last value, as Java's HashMap does.
#[test]
fn many_ext_keys_decode_in_linear_time_and_last_duplicate_wins() {
    let mut h = vec![0, 105, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut area = Vec::new();
    let mut put = |k: &str, v: &str| {
        area.extend_from_slice(&(k.len() as i16).to_be_bytes());
        area.extend_from_slice(k.as_bytes());
        area.extend_from_slice(&(v.len() as i32).to_be_bytes());
        area.extend_from_slice(v.as_bytes());
    };
    for i in 0..200_000 {
        put(&format!("k{i}"), "v");
    }
    put("k7", "last");
    h.extend_from_slice(&(area.len() as i32).to_be_bytes());
    h.extend_from_slice(&area);
    let mut f = Vec::new();
    f.extend_from_slice(&(4 + h.len() as u32).to_be_bytes());
    f.extend_from_slice(&(0x0100_0000 | h.len() as u32).to_be_bytes());
    f.extend_from_slice(&h);
    let (cmd, _) = frame::decode(&f, FRAME_MAX_DEFAULT).unwrap().unwrap();
    assert_eq!(cmd.ext.len(), 200_000);
    assert_eq!(cmd.ext.get("k7"), Some("last"));
}

#[test]
fn ext_equality_ignores_order_and_huge_remarks_are_cut() {
    let a: crate::ExtFields = [("x", "1"), ("y", "2")].into_iter().collect();
    let b: crate::ExtFields = [("y", "2"), ("x", "1")].into_iter().collect();
    assert_eq!(a, b);
    let mut cmd = Command::request(1).with_remark("é".repeat(100_000));
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        cmd.serialize = ser;
        let (back, _) = frame::decode(&encode(&cmd), FRAME_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        assert!(back.remark.unwrap().len() <= 64 * 1024);
    }
}
