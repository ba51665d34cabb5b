//! Consumer offsets (spec §3.6) and what survives a stop: QUERY_CONSUMER_OFFSET's rules
//! (stored, else 0 while the queue is untruncated, QUERY_NOT_FOUND when asked not to
//! default), commits by UPDATE_CONSUMER_OFFSET (oneway, never answered) and by the pull's
//! piggy-back, and that a SIGTERM stop then restart keeps topics, offsets and messages
//! (and a kill -9 keeps the messages).

use ringmq_codec::codes::{request, response};
use ringmq_codec::message::decode_all;
use ringmq_tests::Process;
use ringmq_tests::broker::{
    ext_i64, pull, pull_flag, query_offset, queue_request, send_v2, update_offset,
};

#[test]
fn offsets_topics_and_messages_survive_a_clean_restart() {
    let ns = Process::namesrv(&[]);
    let mut broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    for i in 0..3 {
        assert_eq!(
            c.call(send_v2("Keep", 2, format!("k{i}").as_bytes(), ""))
                .code,
            response::SUCCESS
        );
    }
    // No stored offset, queue never truncated: 0. Asked not to default: not found.
    let r = c.call(query_offset("Keep", 2));
    assert_eq!((r.code, ext_i64(&r, "offset")), (response::SUCCESS, 0));
    let mut strict = query_offset("Keep", 2);
    strict.ext.insert("setZeroIfNotFound", "false");
    assert_eq!(c.call(strict).code, response::QUERY_NOT_FOUND);

    // A oneway update is stored and not answered: the next answer is the query's.
    let mut up = update_offset("Keep", 2, 2);
    up.mark_oneway();
    up.opaque = 50;
    c.send(&up);
    let r = c.call(query_offset("Keep", 2));
    assert_eq!(ext_i64(&r, "offset"), 2);
    // The pull's piggy-backed commit.
    let mut pl = pull("Keep", 1, 0, 32, pull_flag::COMMIT_OFFSET, Some("*"));
    pl.ext.insert("commitOffset", "0");
    c.call(pl);
    let mut pl = pull("Keep", 2, 3, 32, pull_flag::COMMIT_OFFSET, Some("*"));
    pl.ext.insert("commitOffset", "3");
    assert_eq!(c.call(pl).code, response::PULL_NOT_FOUND);
    assert_eq!(ext_i64(&c.call(query_offset("Keep", 2)), "offset"), 3);
    // An update on an unknown topic or queue is refused when answered.
    assert_eq!(
        c.call(update_offset("Nope", 0, 1)).code,
        response::TOPIC_NOT_EXIST
    );
    assert_eq!(
        c.call(update_offset("Keep", 9, 1)).code,
        response::INVALID_PARAMETER
    );

    broker.stop_cleanly();
    assert!(broker.stderr().contains("store flushed and checkpointed"));
    broker.restart();
    let mut c = broker.client();
    assert_eq!(ext_i64(&c.call(query_offset("Keep", 2)), "offset"), 3);
    assert_eq!(
        ext_i64(
            &c.call(queue_request(request::GET_MAX_OFFSET, "Keep", 2)),
            "offset"
        ),
        3
    );
    let r = c.call(pull("Keep", 2, 0, 32, 0, Some("*")));
    let bodies: Vec<Vec<u8>> = decode_all(&r.body).0.into_iter().map(|m| m.body).collect();
    assert_eq!(bodies, vec![b"k0".to_vec(), b"k1".to_vec(), b"k2".to_vec()]);
    // The topic kept its queue count (4, auto-created): queue 3 exists, 4 does not.
    assert_eq!(c.call(send_v2("Keep", 3, b"x", "")).code, response::SUCCESS);
    assert_eq!(
        c.call(send_v2("Keep", 4, b"x", "")).code,
        response::INVALID_PARAMETER
    );
}

#[test]
fn acknowledged_messages_survive_kill_9() {
    let ns = Process::namesrv(&[]);
    let mut broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    for i in 0..20 {
        assert_eq!(
            c.call(send_v2("Crash", 0, format!("c{i}").as_bytes(), ""))
                .code,
            response::SUCCESS
        );
    }
    broker.kill9();
    broker.restart();
    let mut c = broker.client();
    let r = c.call(pull("Crash", 0, 0, 32, 0, Some("*")));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(decode_all(&r.body).0.len(), 20);
    // Appends continue after the recovered end.
    let r = c.call(send_v2("Crash", 0, b"after", ""));
    assert_eq!(ext_i64(&r, "queueOffset"), 20);
}
