//! Bad frames close only their own connection, as Java does, and are logged; the server
//! keeps serving fresh connections: an oversized frame, a header length beyond the frame,
//! an unknown serialization type, an unparsable JSON header, a truncated binary header.

use std::time::Duration;

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::namesrv::route_request;
use ringmq_tests::{Process, wait_until};

fn frame_with_header(word_type: u8, header: &[u8]) -> Vec<u8> {
    let total = 4 + header.len() as u32;
    let mut v = total.to_be_bytes().to_vec();
    v.extend_from_slice(&((u32::from(word_type) << 24) | header.len() as u32).to_be_bytes());
    v.extend_from_slice(header);
    v
}

#[test]
fn bad_frames_close_their_connection_only() {
    let ns = Process::namesrv(&[]);
    let mut bystander = ns.client();

    let cases: Vec<(&str, Vec<u8>)> = vec![
        // 2 GiB announced; the server must refuse before reading (or allocating) it.
        ("oversized frame", vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        // total_len 8 but the header word claims 256 header bytes.
        (
            "header length beyond the frame",
            vec![0, 0, 0, 8, 0, 0, 1, 0, 1, 2, 3, 4],
        ),
        ("unknown serialization type", frame_with_header(5, b"{}")),
        (
            "unparsable JSON header",
            frame_with_header(0, b"{\"code\":"),
        ),
        (
            "truncated binary header",
            frame_with_header(1, &[0, 105, 0]),
        ),
    ];
    for (what, bytes) in &cases {
        let mut conn = ns.client();
        conn.send_raw(bytes);
        conn.expect_closed();
        // The server still serves everyone else.
        let r = bystander.call(route_request("Nope", SerializeType::Json));
        assert_eq!(r.code, response::TOPIC_NOT_EXIST, "after {what}");
        let r = ns
            .client()
            .call(route_request("Nope", SerializeType::RocketMq));
        assert_eq!(
            r.code,
            response::TOPIC_NOT_EXIST,
            "fresh connection after {what}"
        );
    }
    wait_until(Duration::from_secs(10), "every bad frame is logged", || {
        ns.stderr().matches("closing connection: bad frame").count() == cases.len()
    });
    let log = ns.stderr();
    assert!(log.contains("frame limit"), "{log}");
    assert!(log.contains("bad header length"), "{log}");
    assert!(log.contains("unknown header serialization type 5"), "{log}");
    assert!(log.contains("peer=127.0.0.1:"), "{log}");
}

#[test]
fn a_request_after_a_valid_one_in_the_same_write_is_still_served() {
    // Two requests in one TCP write, then a bad frame: both answers arrive before the close.
    let ns = Process::namesrv(&[]);
    let mut conn = ns.client();
    let mut bytes = Vec::new();
    for opaque in [10, 11] {
        let mut cmd = route_request("Nope", SerializeType::Json);
        cmd.opaque = opaque;
        let mut buf = bytes::BytesMut::new();
        ringmq_codec::frame::encode(&cmd, &mut buf);
        bytes.extend_from_slice(&buf);
    }
    bytes.extend_from_slice(&frame_with_header(9, b"x"));
    conn.send_raw(&bytes);
    let mut opaques = Vec::new();
    for _ in 0..2 {
        let r = conn
            .read_frame()
            .unwrap()
            .expect("a response before the close");
        assert_eq!(r.code, response::TOPIC_NOT_EXIST);
        opaques.push(r.opaque);
    }
    opaques.sort();
    assert_eq!(opaques, [10, 11]);
    conn.expect_closed();
}
