//! `/metrics` serves Prometheus text with per-shard counters, and every byte of a pull's body is
//! counted on the path it took to the socket: spliced from the commit-log file (zero copy) or,
//! when the page cache holds it and it is small, copied into the response head's write.

use ringmq_codec::codes::response;
use ringmq_tests::Process;
use ringmq_tests::broker::{pull, send_v2};

#[test]
fn pull_body_bytes_are_counted_by_path() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    for _ in 0..10 {
        assert_eq!(
            c.call(send_v2("ZeroCopy", 0, &[1u8; 1000], "")).code,
            response::SUCCESS
        );
    }
    let sent = |b: &ringmq_tests::broker::BrokerProcess| {
        b.metric("ringmq_pull_zero_copy_bytes_total", 0)
            + b.metric("ringmq_pull_copied_bytes_total", 0)
    };
    let before = sent(&broker);
    let r = c.call(pull("ZeroCopy", 0, 0, 32, 0, Some("*")));
    assert_eq!(r.code, response::SUCCESS);
    let body = r.body.len() as f64;
    assert!(body > 10_000.0);
    ringmq_tests::wait_until(
        std::time::Duration::from_secs(10),
        "the counter shows the body",
        || sent(&broker) >= before + body,
    );
    let text = broker.metrics_text();
    assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
    for name in [
        "ringmq_send_requests_total",
        "ringmq_send_messages_total",
        "ringmq_pull_requests_total",
        "ringmq_pull_bytes_total",
        "ringmq_long_poll_waiters",
        "ringmq_connections",
        "ringmq_fsync_seconds_bucket",
        "ringmq_fsync_seconds_count",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert_eq!(broker.metric("ringmq_send_messages_total", 0), 10.0);
    assert!(broker.metric("ringmq_connections", 0) >= 1.0);
}
