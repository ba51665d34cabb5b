//! Long polling (spec §3.4 step 6): a pull that finds nothing is held, a request behind it
//! on the same connection is still answered, and the held pull is answered when a matching
//! message arrives, with that message. A pull whose filter the arrival does not match stays
//! held until its suspend time and then answers PULL_NOT_FOUND with the full header.

use ringmq_codec::codes::{request, response};
use ringmq_codec::message::decode_all;
use ringmq_tests::Process;
use ringmq_tests::broker::{ext_i64, props, pull, pull_flag, queue_request, send_v2};

#[test]
fn a_held_pull_wakes_on_arrival_and_does_not_block_its_connection() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut producer = broker.client();
    // Create the topic with one message, and consume it so the puller is caught up.
    let r = producer.call(send_v2("LongPoll", 0, b"first", &props(&[("TAGS", "A")])));
    assert_eq!(r.code, response::SUCCESS);

    let mut consumer = broker.client();
    let mut held = pull("LongPoll", 0, 1, 32, pull_flag::SUSPEND, Some("A"));
    held.opaque = 1000;
    consumer.send(&held);
    // Another request on the same connection is answered while the pull is held.
    let mut max = queue_request(request::GET_MAX_OFFSET, "LongPoll", 0);
    max.opaque = 1001;
    consumer.send(&max);
    let first = consumer.read_frame().unwrap().expect("an answer");
    assert_eq!(
        first.opaque, 1001,
        "the held pull must not block the connection: {first:?}"
    );
    assert_eq!(ext_i64(&first, "offset"), 1);

    // A message with another tag does not wake it; one with its tag does.
    let r = producer.call(send_v2("LongPoll", 0, b"other", &props(&[("TAGS", "B")])));
    assert_eq!(r.code, response::SUCCESS);
    let r = producer.call(send_v2("LongPoll", 0, b"second", &props(&[("TAGS", "A")])));
    assert_eq!(r.code, response::SUCCESS);
    let woken = consumer
        .read_frame()
        .unwrap()
        .expect("the held pull's answer");
    assert_eq!(woken.opaque, 1000);
    assert_eq!(woken.code, response::SUCCESS, "{woken:?}");
    let (msgs, _) = decode_all(&woken.body);
    let bodies: Vec<&[u8]> = msgs.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(
        bodies,
        vec![b"second".as_slice()],
        "the TagB message is filtered out"
    );
    assert_eq!(ext_i64(&woken, "nextBeginOffset"), 3);
}

#[test]
fn a_held_pull_times_out_with_not_found_and_the_full_header() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut conn = broker.client();
    let r = conn.call(send_v2("Quiet", 0, b"only", ""));
    assert_eq!(r.code, response::SUCCESS);
    let mut held = pull("Quiet", 0, 1, 32, pull_flag::SUSPEND, Some("*"));
    held.ext.insert("suspendTimeoutMillis", "300");
    let r = conn.call(held);
    assert_eq!(r.code, response::PULL_NOT_FOUND, "{r:?}");
    assert_eq!(ext_i64(&r, "nextBeginOffset"), 1);
    assert_eq!(ext_i64(&r, "minOffset"), 0);
    assert_eq!(ext_i64(&r, "maxOffset"), 1);
    assert_eq!(ext_i64(&r, "suggestWhichBrokerId"), 0);
}

#[test]
fn a_pull_on_a_new_queue_wakes_when_its_first_message_arrives() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut admin = broker.client();
    let r = admin.call(ringmq_tests::broker::create_topic("Fresh", 2, 6));
    assert_eq!(r.code, response::SUCCESS);
    let mut consumer = broker.client();
    let mut held = pull("Fresh", 1, 0, 32, pull_flag::SUSPEND, Some("*"));
    held.opaque = 7;
    consumer.send(&held);
    // Make sure the pull is parked before sending: the waiter gauge shows it.
    ringmq_tests::wait_until(
        std::time::Duration::from_secs(10),
        "the pull is parked",
        || broker.metric("ringmq_long_poll_waiters", 0) >= 1.0,
    );
    let r = admin.call(send_v2("Fresh", 1, b"hello", ""));
    assert_eq!(r.code, response::SUCCESS);
    let woken = consumer.read_frame().unwrap().expect("answer");
    assert_eq!(woken.code, response::SUCCESS, "{woken:?}");
    assert_eq!(decode_all(&woken.body).0[0].body, b"hello");
}
