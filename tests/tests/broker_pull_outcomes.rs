//! The outcome table of spec §3.4 step 4, seen by a client: SUCCESS with `maxMsgNums`
//! honoured, PULL_RETRY_IMMEDIATELY when the tag filter matches nothing, PULL_NOT_FOUND when
//! caught up or on an empty queue at 0, PULL_OFFSET_MOVED only for truly invalid offsets —
//! each with the full header and the right `nextBeginOffset`.

use ringmq_codec::Command;
use ringmq_codec::codes::response;
use ringmq_codec::message::decode_all;
use ringmq_tests::Process;
use ringmq_tests::broker::{create_topic, ext_i64, props, pull, send_v2};

#[test]
fn pull_outcomes_follow_the_spec_table() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    assert_eq!(c.call(create_topic("Table", 2, 6)).code, response::SUCCESS);
    for i in 0..5 {
        let tag = if i % 2 == 0 { "Even" } else { "Odd" };
        let r = c.call(send_v2(
            "Table",
            0,
            format!("m{i}").as_bytes(),
            &props(&[("TAGS", tag)]),
        ));
        assert_eq!(r.code, response::SUCCESS);
    }
    let outcome =
        |c: &mut ringmq_tests::RawClient, queue: i32, offset: i64, max: i32, sub: &str| {
            let r = c.call(pull("Table", queue, offset, max, 0, Some(sub)));
            for key in [
                "suggestWhichBrokerId",
                "nextBeginOffset",
                "minOffset",
                "maxOffset",
            ] {
                assert!(r.ext.get(key).is_some(), "{key} missing from {r:?}");
            }
            let bodies: Vec<String> = decode_all(&r.body)
                .0
                .iter()
                .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                .collect();
            (r.code, ext_i64(&r, "nextBeginOffset"), bodies)
        };
    assert_eq!(
        outcome(&mut c, 0, 0, 2, "*"),
        (response::SUCCESS, 2, vec!["m0".into(), "m1".into()])
    );
    assert_eq!(
        outcome(&mut c, 0, 1, 32, "Even"),
        (response::SUCCESS, 5, vec!["m2".into(), "m4".into()])
    );
    assert_eq!(
        outcome(&mut c, 0, 4, 32, "Odd"),
        (response::PULL_RETRY_IMMEDIATELY, 5, vec![])
    );
    assert_eq!(
        outcome(&mut c, 0, 5, 32, "*"),
        (response::PULL_NOT_FOUND, 5, vec![])
    );
    assert_eq!(
        outcome(&mut c, 0, 9, 32, "*"),
        (response::PULL_OFFSET_MOVED, 5, vec![])
    );
    assert_eq!(
        outcome(&mut c, 0, -3, 32, "*"),
        (response::PULL_OFFSET_MOVED, 0, vec![])
    );
    // Queue 1 has no messages: offset 0 is "no new message", anything else moved to 0.
    assert_eq!(
        outcome(&mut c, 1, 0, 32, "*"),
        (response::PULL_NOT_FOUND, 0, vec![])
    );
    assert_eq!(
        outcome(&mut c, 1, 3, 32, "*"),
        (response::PULL_OFFSET_MOVED, 0, vec![])
    );
    // A tag expression with several tags.
    assert_eq!(
        outcome(&mut c, 0, 0, 32, "Odd || Nope").2,
        vec!["m1".to_owned(), "m3".into()]
    );
}

#[test]
fn a_response_is_capped_at_32_messages() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    for i in 0..40 {
        assert_eq!(
            c.call(send_v2("Many", 0, format!("{i}").as_bytes(), ""))
                .code,
            response::SUCCESS
        );
    }
    let r = c.call(pull("Many", 0, 0, 64, 0, Some("*")));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(decode_all(&r.body).0.len(), 32);
    assert_eq!(ext_i64(&r, "nextBeginOffset"), 32);
    assert_eq!(ext_i64(&r, "maxOffset"), 40);
}

/// The two Java keys that cap a response are honoured: the count cap raised, then the byte
/// cap lowered below it (a response still carries at least one message).
#[test]
fn the_response_caps_follow_the_broker_config() {
    let r = pull_after_sends("maxTransferCountOnMessageInMemory=64", "Many", 100, 80);
    assert_eq!(decode_all(&r.body).0.len(), 64);
    assert_eq!(ext_i64(&r, "nextBeginOffset"), 64);

    let r = pull_after_sends("maxTransferBytesOnMessageInMemory=1", "Few", 3, 32);
    assert_eq!(decode_all(&r.body).0.len(), 1);
    assert_eq!(ext_i64(&r, "nextBeginOffset"), 1);
}

/// On a fresh one-shard broker with `setting`: sends `sent` small messages to queue 0 of
/// `topic`, then answers one pull from offset 0 asking `ask` messages (asserted a success).
fn pull_after_sends(setting: &str, topic: &str, sent: usize, ask: i32) -> Command {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1", setting]);
    let mut c = broker.client();
    for i in 0..sent {
        let body = format!("{i:04}");
        let r = c.call(send_v2(topic, 0, body.as_bytes(), ""));
        assert_eq!(r.code, response::SUCCESS);
    }
    let r = c.call(pull(topic, 0, 0, ask, 0, Some("*")));
    assert_eq!(r.code, response::SUCCESS);
    r
}
