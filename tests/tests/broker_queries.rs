//! Offset and message queries (spec §3.7, §3.9): GET_MAX/MIN_OFFSET, GET_EARLIEST_MSG_STORETIME
//! (−1 for an empty queue), SEARCH_OFFSET_BY_TIMESTAMP with and without boundaryType,
//! QUERY_MESSAGE by key and by unique key, VIEW_MESSAGE_BY_ID for a bad offset.

use ringmq_codec::Command;
use ringmq_codec::codes::{request, response};
use ringmq_codec::message::decode_all;
use ringmq_tests::Process;
use ringmq_tests::broker::{ext_i64, props, queue_request, send_v2};

#[test]
fn offsets_times_and_keys() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    let r = c.call(queue_request(request::GET_EARLIEST_MSG_STORETIME, "Q", 0));
    assert_eq!((r.code, ext_i64(&r, "timestamp")), (response::SUCCESS, -1));
    assert_eq!(
        ext_i64(
            &c.call(queue_request(request::GET_MAX_OFFSET, "Q", 0)),
            "offset"
        ),
        0
    );
    let mut ids = Vec::new();
    for i in 0..4 {
        let p = props(&[
            ("KEYS", &format!("order-{i} common")),
            ("UNIQ_KEY", &format!("UNIQ{i}")),
        ]);
        let r = c.call(send_v2("Q", 0, format!("q{i}").as_bytes(), &p));
        ids.push(r.ext.get("msgId").unwrap().to_owned());
        std::thread::sleep(std::time::Duration::from_millis(3));
    }
    assert_eq!(
        ext_i64(
            &c.call(queue_request(request::GET_MAX_OFFSET, "Q", 0)),
            "offset"
        ),
        4
    );
    assert_eq!(
        ext_i64(
            &c.call(queue_request(request::GET_MIN_OFFSET, "Q", 0)),
            "offset"
        ),
        0
    );
    let first_ts = ext_i64(
        &c.call(queue_request(request::GET_EARLIEST_MSG_STORETIME, "Q", 0)),
        "timestamp",
    );
    assert!(first_ts > 1_700_000_000_000);

    let search = |c: &mut ringmq_tests::RawClient, ts: i64, boundary: Option<&str>| {
        let mut cmd = queue_request(request::SEARCH_OFFSET_BY_TIMESTAMP, "Q", 0)
            .with_ext("timestamp", ts.to_string());
        if let Some(b) = boundary {
            cmd.ext.insert("boundaryType", b);
        }
        ext_i64(&c.call(cmd), "offset")
    };
    assert_eq!(search(&mut c, 0, None), 0);
    assert_eq!(search(&mut c, first_ts, Some("LOWER")), 0);
    assert_eq!(
        search(&mut c, i64::MAX / 2, Some("LOWER")),
        4,
        "all older: max offset"
    );
    assert_eq!(
        search(&mut c, i64::MAX / 2, None),
        3,
        "closest: the last entry"
    );
    assert_eq!(search(&mut c, first_ts, Some("UPPER")), 0);

    let query = |c: &mut ringmq_tests::RawClient, key: &str, unique: bool| {
        let mut cmd = Command::request(request::QUERY_MESSAGE)
            .with_ext("topic", "Q")
            .with_ext("key", key)
            .with_ext("maxNum", "32")
            .with_ext("beginTimestamp", "0")
            .with_ext("endTimestamp", i64::MAX.to_string());
        if unique {
            cmd.ext.insert("_UNIQUE_KEY_QUERY", "true");
        }
        c.call(cmd)
    };
    let r = query(&mut c, "order-2", false);
    assert_eq!(r.code, response::SUCCESS);
    assert!(
        r.ext.get("indexLastUpdateTimestamp").is_some()
            && r.ext.get("indexLastUpdatePhyoffset").is_some()
    );
    assert_eq!(decode_all(&r.body).0[0].body, b"q2");
    assert_eq!(decode_all(&query(&mut c, "common", false).body).0.len(), 4);
    assert_eq!(
        decode_all(&query(&mut c, "UNIQ3", true).body).0[0].offset_msg_id(),
        ids[3]
    );
    let r = query(&mut c, "absent", false);
    assert_eq!(r.code, response::QUERY_NOT_FOUND);
    assert!(
        r.ext.get("indexLastUpdateTimestamp").is_some(),
        "header sent with QUERY_NOT_FOUND"
    );

    let r = c.call(Command::request(request::VIEW_MESSAGE_BY_ID).with_ext("offset", "7"));
    assert_eq!(r.code, response::SYSTEM_ERROR);
    assert!(
        r.remark
            .unwrap()
            .contains("can not find message by the offset")
    );
}
