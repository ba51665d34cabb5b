//! Bad input on the broker port. Broken frames (oversized, header length beyond the frame,
//! unknown serialization, unparsable header) close only their connection; everything else
//! is an error response with a readable remark and the connection goes on: missing or
//! malformed ext fields, unknown codes (3), bodies over 4 MiB (MESSAGE_ILLEGAL), bad topic
//! names (INVALID_PARAMETER), reserved topics (NO_PERMISSION), queue ids out of range,
//! unknown groups, unsupported message kinds. Lenient input (JSON numbers and booleans in
//! ext, no `language`/`remark`/`serializeTypeCurrentRPC`) is accepted.

use ringmq_codec::Command;
use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::broker::{BrokerProcess, props, pull, send_v2};

fn frame_with_header(word_type: u8, header: &[u8], body: &[u8]) -> Vec<u8> {
    let total = 4 + header.len() as u32 + body.len() as u32;
    let mut v = total.to_be_bytes().to_vec();
    v.extend_from_slice(&((u32::from(word_type) << 24) | header.len() as u32).to_be_bytes());
    v.extend_from_slice(header);
    v.extend_from_slice(body);
    v
}

fn start() -> (Process, BrokerProcess) {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    (ns, broker)
}

#[test]
fn broken_frames_close_only_their_connection() {
    let (_ns, broker) = start();
    let mut bystander = broker.client();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized frame", vec![0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        (
            "header length beyond the frame",
            vec![0, 0, 0, 8, 0, 0, 1, 0, 1, 2, 3, 4],
        ),
        (
            "unknown serialization type",
            frame_with_header(5, b"{}", b""),
        ),
        (
            "unparsable JSON header",
            frame_with_header(0, b"{\"code\":", b""),
        ),
        (
            "truncated binary header",
            frame_with_header(1, &[0, 105, 0], b""),
        ),
    ];
    for (what, bytes) in &cases {
        let mut conn = broker.client();
        conn.send_raw(bytes);
        conn.expect_closed();
        let r = bystander.call(send_v2("Bystander", 0, b"still here", ""));
        assert_eq!(r.code, response::SUCCESS, "after {what}");
    }
}

#[test]
fn bad_requests_get_error_codes_with_readable_remarks() {
    let (_ns, broker) = start();
    let mut c = broker.client();
    let check = |c: &mut ringmq_tests::RawClient, cmd: Command, code: i32, needle: &str| {
        let r = c.call(cmd);
        assert_eq!(r.code, code, "{r:?}");
        let remark = r.remark.clone().unwrap_or_default();
        assert!(
            remark.contains(needle),
            "remark {remark:?} lacks {needle:?}"
        );
        r
    };
    // Missing and malformed header fields.
    let mut no_topic = send_v2("T", 0, b"x", "");
    no_topic.ext.remove("b");
    let r = check(&mut c, no_topic, response::SYSTEM_ERROR, "b (topic)");
    assert!(
        r.ext.get("MSG_REGION").is_some() && r.ext.get("TRACE_ON").is_some(),
        "{r:?}"
    );
    let mut bad_queue = pull("T", 0, 0, 32, 0, Some("*"));
    bad_queue.ext.insert("queueId", "zero");
    check(&mut c, bad_queue, response::SYSTEM_ERROR, "queueId");
    check(
        &mut c,
        Command::request(request::GET_CONSUMER_LIST_BY_GROUP),
        response::SYSTEM_ERROR,
        "consumerGroup",
    );
    // Unknown code.
    check(
        &mut c,
        Command::request(9999),
        response::REQUEST_CODE_NOT_SUPPORTED,
        "9999",
    );
    // Sizes.
    let big = vec![7u8; 4 * 1024 * 1024 + 1];
    let r = check(
        &mut c,
        send_v2("Big", 0, &big, ""),
        response::MESSAGE_ILLEGAL,
        "maxMessageSize",
    );
    assert!(r.ext.get("MSG_REGION").is_some());
    let long_props = props(&[("K", &"v".repeat(40_000))]);
    check(
        &mut c,
        send_v2("Big", 0, b"x", &long_props),
        response::MESSAGE_ILLEGAL,
        "properties",
    );
    // Topic names and reserved topics.
    check(
        &mut c,
        send_v2("bad topic", 0, b"x", ""),
        response::INVALID_PARAMETER,
        "illegal",
    );
    check(
        &mut c,
        send_v2(&"t".repeat(128), 0, b"x", ""),
        response::INVALID_PARAMETER,
        "127",
    );
    check(
        &mut c,
        send_v2("SCHEDULE_TOPIC_XXXX", 0, b"x", ""),
        response::NO_PERMISSION,
        "forbidden",
    );
    check(
        &mut c,
        pull("bad topic", 0, 0, 32, 0, Some("*")),
        response::TOPIC_NOT_EXIST,
        "bad topic",
    );
    // Queue ids out of range.
    assert_eq!(
        c.call(send_v2("Queues", 0, b"x", "")).code,
        response::SUCCESS
    );
    check(
        &mut c,
        send_v2("Queues", 4, b"x", ""),
        response::INVALID_PARAMETER,
        "queueId[4]",
    );
    check(
        &mut c,
        pull("Queues", 4, 0, 32, 0, Some("*")),
        response::INVALID_PARAMETER,
        "queueId[4]",
    );
    check(
        &mut c,
        pull("Queues", -1, 0, 32, 0, Some("*")),
        response::INVALID_PARAMETER,
        "queueId[-1]",
    );
    // Unknown group: no consumer.
    check(
        &mut c,
        Command::request(request::GET_CONSUMER_LIST_BY_GROUP).with_ext("consumerGroup", "nobody"),
        response::SYSTEM_ERROR,
        "no consumer for this group, nobody",
    );
    // Timer properties that cannot be honoured are refused, not delivered at the wrong time.
    check(
        &mut c,
        send_v2("Kinds", 0, b"x", &props(&[("TIMER_DELAY_SEC", "soon")])),
        response::MESSAGE_ILLEGAL,
        "TIMER_DELAY_SEC",
    );
    check(
        &mut c,
        send_v2("Kinds", 0, b"x", &props(&[("TIMER_DELAY_SEC", "99999999")])),
        response::MESSAGE_ILLEGAL,
        "timerMaxDelaySec",
    );
    // A body that is not a batch.
    let mut batch = send_v2("Kinds", 0, b"\x00\x00\x00\x05junk", "");
    batch.code = request::SEND_BATCH_MESSAGE;
    check(&mut c, batch, response::MESSAGE_ILLEGAL, "batch");
    // Heartbeat with a body that is not JSON.
    check(
        &mut c,
        Command::request(request::HEART_BEAT).with_body(b"{oops".to_vec()),
        response::SYSTEM_ERROR,
        "HeartbeatData",
    );
    // The connection survived all of it.
    assert_eq!(
        c.call(send_v2("Queues", 1, b"ok", "")).code,
        response::SUCCESS
    );
}

#[test]
fn lenient_json_headers_are_accepted() {
    let (_ns, broker) = start();
    let mut c = broker.client();
    // JSON numbers and booleans as ext values, no language, remark or serializeTypeCurrentRPC,
    // an unknown language name.
    let header = br#"{"code":310,"extFields":{"a":"pg","b":"Lenient","c":"TBW102","d":4,"e":0,"f":0,"g":1700000000000,"h":0,"k":false,"m":false},"flag":0,"opaque":77,"version":401}"#;
    c.send_raw(&frame_with_header(0, header, b"body"));
    let r = c.read_frame().unwrap().expect("an answer");
    assert_eq!((r.opaque, r.code), (77, response::SUCCESS), "{r:?}");
    let header = br#"{"code":30,"language":"KOTLIN","extFields":{"topic":"Lenient","queueId":0},"opaque":78}"#;
    c.send_raw(&frame_with_header(0, header, b""));
    let r = c.read_frame().unwrap().expect("an answer");
    assert_eq!((r.opaque, r.ext.get("offset")), (78, Some("1")), "{r:?}");
}

#[test]
fn auto_creation_can_be_turned_off() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(
        ns.addr(),
        &[
            "shards=1",
            "autoCreateTopicEnable=false",
            "autoCreateSubscriptionGroup=false",
        ],
    );
    let mut c = broker.client();
    let r = c.call(send_v2("NotThere", 0, b"x", ""));
    assert_eq!(r.code, response::TOPIC_NOT_EXIST, "{r:?}");
    assert!(r.ext.get("MSG_REGION").is_some());
    assert_eq!(
        c.call(ringmq_tests::broker::create_topic("Made", 1, 6))
            .code,
        response::SUCCESS
    );
    assert_eq!(c.call(send_v2("Made", 0, b"x", "")).code, response::SUCCESS);
    let r = c.call(pull("Made", 0, 0, 32, 0, Some("*")));
    assert_eq!(r.code, response::SUBSCRIPTION_GROUP_NOT_EXIST, "{r:?}");
}
