//! Record layout tests: golden bytes written out by hand from spec §4.1, a field-by-field
//! decode, the CRC property, every truncated prefix, and a never-panics property test.

use std::net::SocketAddr;

use proptest::prelude::*;

use super::record::*;
use super::{properties, sysflag};

fn sample(props: &str) -> RecordFields<'_> {
    RecordFields {
        topic: "T",
        queue_id: 2,
        flag: 3,
        queue_offset: 4,
        phys_offset: 5,
        sys_flag: 0,
        born_timestamp: 6,
        born_host: "1.2.3.4:5".parse().unwrap(),
        store_timestamp: 7,
        store_host: "10.0.0.1:10911".parse().unwrap(),
        reconsume_times: 8,
        prepared_transaction_offset: 9,
        body: b"hi",
        properties: props,
    }
}

/// Spec §4.1, v1, IPv4: 91 + B(2) + T(1) + P(4) = 98 bytes, every field spelled out.
fn golden() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&[0, 0, 0, 98]); // TOTALSIZE
    v.extend_from_slice(&[0xDA, 0xA3, 0x20, 0xA7]); // MAGICCODE v1
    v.extend_from_slice(&0x5893_2AAC_u32.to_be_bytes()); // BODYCRC of "hi"
    v.extend_from_slice(&[0, 0, 0, 2]); // QUEUEID
    v.extend_from_slice(&[0, 0, 0, 3]); // FLAG
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 4]); // QUEUEOFFSET
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]); // PHYSICALOFFSET
    v.extend_from_slice(&[0, 0, 0, 0]); // SYSFLAG
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 6]); // BORNTIMESTAMP
    v.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, 5]); // BORNHOST
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 7]); // STORETIMESTAMP
    v.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0x2A, 0x9F]); // STOREHOST 10911
    v.extend_from_slice(&[0, 0, 0, 8]); // RECONSUMETIMES
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9]); // PREPAREDTRANSACTIONOFFSET
    v.extend_from_slice(&[0, 0, 0, 2]); // BODYLEN
    v.extend_from_slice(b"hi"); // BODY
    v.push(1); // TOPICLEN (i8)
    v.push(b'T'); // TOPIC
    v.extend_from_slice(&[0, 4]); // PROPLEN
    v.extend_from_slice(b"A\x01b\x02"); // PROPERTIES
    v
}

#[test]
fn golden_bytes_v1() {
    assert_eq!(super::body_crc(b"hi"), 0x5893_2AAC);
    let mut buf = Vec::new();
    let n = sample("A\u{1}b\u{2}")
        .encode(RecordCrc::None, &mut buf)
        .unwrap();
    assert_eq!(n, 98);
    assert_eq!(buf, golden());
}

#[test]
fn decodes_field_by_field() {
    let g = golden();
    let (m, len) = decode(&g).unwrap();
    assert_eq!(len, 98);
    assert_eq!(m.store_size, 98);
    assert_eq!(m.magic, MAGIC_V1);
    assert_eq!(m.body_crc, 0x5893_2AAC);
    assert_eq!(m.queue_id, 2);
    assert_eq!(m.flag, 3);
    assert_eq!(m.queue_offset, 4);
    assert_eq!(m.commit_log_offset, 5);
    assert_eq!(m.sys_flag, 0);
    assert_eq!(m.born_timestamp, 6);
    assert_eq!(m.born_host, "1.2.3.4:5".parse::<SocketAddr>().unwrap());
    assert_eq!(m.store_timestamp, 7);
    assert_eq!(
        m.store_host,
        "10.0.0.1:10911".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(m.reconsume_times, 8);
    assert_eq!(m.prepared_transaction_offset, 9);
    assert_eq!(m.body, b"hi");
    assert_eq!(m.topic, "T");
    assert_eq!(m.property("A"), Some("b"));
    assert_eq!(m.offset_msg_id(), "0A00000100002A9F0000000000000005");
    assert_eq!(peek_store_timestamp(&g), Some(7));
    assert_eq!(peek_offsets(&g), Some((4, 5)));
}

#[test]
fn record_crc_property() {
    let mut buf = Vec::new();
    // Properties without the trailing separator get one before the CRC pair.
    let n = sample("A\u{1}b")
        .encode(RecordCrc::Append, &mut buf)
        .unwrap();
    assert_eq!(n, 91 + 2 + 1 + 3 + 1 + RECORD_CRC_PROPERTY_LEN);
    assert_eq!(check_record_crc(&buf), RecordCrcCheck::Valid);
    let view = RecordView::parse(&buf).unwrap();
    view.verify_body_crc().unwrap();
    let props = properties::parse(view.properties);
    assert_eq!(props.len(), 2);
    assert_eq!(props[properties::keys::CRC32].len(), 10);
    // Any flipped bit before the digits breaks the CRC (or the digits themselves).
    for i in 0..buf.len() {
        let mut bad = buf.clone();
        bad[i] ^= 0x10;
        assert_ne!(check_record_crc(&bad), RecordCrcCheck::Valid, "byte {i}");
    }
    assert_eq!(check_record_crc(&golden()), RecordCrcCheck::Absent);
}

#[test]
fn ipv6_hosts_and_v2_topics() {
    let long_topic = "%RETRY%".to_owned() + &"g".repeat(130);
    let mut f = sample("");
    f.born_host = "[::1]:7".parse().unwrap();
    f.store_host = "[fe80::2]:10911".parse().unwrap();
    f.topic = &long_topic;
    f.sys_flag = sysflag::COMPRESSED;
    let mut buf = Vec::new();
    let n = f.encode(RecordCrc::Append, &mut buf).unwrap();
    assert_eq!(
        n,
        91 + 24 + 1 + 2 + long_topic.len() + RECORD_CRC_PROPERTY_LEN
    );
    let (m, _) = decode(&buf).unwrap();
    assert_eq!(m.magic, MAGIC_V2);
    assert_eq!(
        m.sys_flag,
        sysflag::COMPRESSED | sysflag::BORNHOST_V6 | sysflag::STOREHOST_V6
    );
    assert_eq!(m.born_host, f.born_host);
    assert_eq!(m.store_host, f.store_host);
    assert_eq!(m.topic, long_topic);
    assert_eq!(m.store_timestamp, 7);
    assert_eq!(peek_store_timestamp(&buf), Some(7));
    assert_eq!(check_record_crc(&buf), RecordCrcCheck::Valid);
}

#[test]
fn too_long_properties_are_refused() {
    let props = "A\u{1}".to_owned() + &"x".repeat(32_760);
    let mut buf = Vec::new();
    assert!(matches!(
        sample(&props).encode(RecordCrc::Append, &mut buf),
        Err(MessageError::TooLong {
            field: "properties",
            ..
        })
    ));
    assert!(buf.is_empty());
}

#[test]
fn every_truncated_prefix_is_an_error() {
    let g = golden();
    for n in 0..g.len() {
        assert!(decode(&g[..n]).is_err(), "prefix {n}");
    }
    let mut two = g.clone();
    two.extend_from_slice(&g[..50]);
    let (msgs, err) = decode_all(&two);
    assert_eq!(msgs.len(), 1);
    assert!(matches!(err, Some(MessageError::Truncated { .. })));
}

#[test]
fn blank_filler_is_recognised() {
    let mut buf = Vec::new();
    encode_blank(64, &mut buf);
    assert_eq!(buf.len(), 64);
    assert_eq!(decode(&buf).unwrap_err(), MessageError::Blank { len: 64 });
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_all(&bytes);
        let _ = check_record_crc(&bytes);
        let _ = super::decode_batch(&bytes);
    }

    #[test]
    fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..64),
                  topic in "[a-zA-Z0-9_%-]{1,140}", qo in any::<i64>(), po in any::<i64>()) {
        let mut f = sample("TAGS\u{1}t\u{2}");
        f.body = &body;
        f.topic = &topic;
        f.queue_offset = qo;
        f.phys_offset = po;
        let mut buf = Vec::new();
        f.encode(RecordCrc::Append, &mut buf).unwrap();
        let (m, n) = decode(&buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(m.body, body);
        prop_assert_eq!(m.topic, topic);
        prop_assert_eq!((m.queue_offset, m.commit_log_offset), (qo, po));
        prop_assert_eq!(check_record_crc(&buf), RecordCrcCheck::Valid);
    }
}
