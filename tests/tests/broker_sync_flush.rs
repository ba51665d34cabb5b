//! SYNC_FLUSH: sends are acknowledged after an fdatasync (the fsync histogram counts them),
//! consumers see only durable messages, and acknowledged ones survive kill -9.

use ringmq_codec::codes::{request, response};
use ringmq_codec::message::decode_all;
use ringmq_tests::Process;
use ringmq_tests::broker::{props, pull, queue_request, send_v2};

#[test]
fn sync_flush_acknowledges_after_fdatasync() {
    let ns = Process::namesrv(&[]);
    let mut broker = Process::broker(ns.addr(), &["shards=1", "flushDiskType=SYNC_FLUSH"]);
    let mut c = broker.client();
    for i in 0..5 {
        let r = c.call(send_v2("Durable", 0, format!("d{i}").as_bytes(), ""));
        assert_eq!(r.code, response::SUCCESS, "{r:?}");
    }
    // WAIT=false: acknowledged after the write, still stored.
    let r = c.call(send_v2(
        "Durable",
        0,
        b"nowait",
        &props(&[("WAIT", "false")]),
    ));
    assert_eq!(r.code, response::SUCCESS);
    assert!(
        broker.metric("ringmq_fsync_seconds_count", 0) >= 5.0,
        "{}",
        broker.metrics_text()
    );
    // Under SYNC_FLUSH consumers see only durable data: the WAIT=false message shows once
    // the periodic flush has synced it.
    let r = c.call(pull("Durable", 0, 0, 32, 0, Some("*")));
    assert_eq!(
        decode_all(&r.body).0.len(),
        5,
        "the synced messages are visible at once"
    );
    ringmq_tests::wait_until(
        std::time::Duration::from_secs(10),
        "the unsynced message becomes durable and visible",
        || {
            let r = c.call(queue_request(request::GET_MAX_OFFSET, "Durable", 0));
            r.ext.get("offset") == Some("6")
        },
    );
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    let r = c.call(pull("Durable", 0, 0, 32, 0, Some("*")));
    let bodies: Vec<Vec<u8>> = decode_all(&r.body).0.into_iter().map(|m| m.body).collect();
    assert!(
        bodies.len() >= 5,
        "every acknowledged synced message survives: {bodies:?}"
    );
    assert_eq!(
        bodies[..5],
        [
            b"d0".to_vec(),
            b"d1".to_vec(),
            b"d2".to_vec(),
            b"d3".to_vec(),
            b"d4".to_vec()
        ]
    );
}
