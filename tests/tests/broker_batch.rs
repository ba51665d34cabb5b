//! SEND_BATCH_MESSAGE (spec §4.6): each entry becomes its own record with consecutive queue
//! offsets, its own UNIQ_KEY and tag code; the response's msgId lists every offsetMsgId.
//! A batch to a `%RETRY%` topic is refused.

use ringmq_codec::codes::response;
use ringmq_codec::message::{decode_all, decode_offset_msg_id};
use ringmq_tests::Process;
use ringmq_tests::broker::{ext_i64, props, pull, send_batch, send_v2};

#[test]
fn a_batch_stores_consecutive_records() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut c = broker.client();
    assert_eq!(
        c.call(send_v2("Batch", 2, b"before", "")).code,
        response::SUCCESS
    );
    let entries: Vec<(&[u8], String)> = vec![
        (b"one", props(&[("TAGS", "A"), ("UNIQ_KEY", "U1")])),
        (b"two", props(&[("TAGS", "B"), ("UNIQ_KEY", "U2")])),
        (b"three", props(&[("TAGS", "A")])),
    ];
    let r = c.call(send_batch("Batch", 2, &entries));
    assert_eq!(r.code, response::SUCCESS, "{r:?}");
    assert_eq!(ext_i64(&r, "queueOffset"), 1);
    let ids: Vec<String> = r
        .ext
        .get("msgId")
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 3);
    let phys: Vec<i64> = ids
        .iter()
        .map(|id| decode_offset_msg_id(id).unwrap().1)
        .collect();
    assert!(phys.windows(2).all(|w| w[0] < w[1]), "{phys:?}");

    let r = c.call(pull("Batch", 2, 1, 32, 0, Some("A")));
    let msgs = decode_all(&r.body).0;
    let got: Vec<(&[u8], i64)> = msgs
        .iter()
        .map(|m| (m.body.as_slice(), m.queue_offset))
        .collect();
    assert_eq!(got, vec![(b"one".as_slice(), 1), (b"three".as_slice(), 3)]);
    assert_eq!(msgs[0].msg_id(), "U1");
    assert_eq!(
        msgs[1].property("UNIQ_KEY").map(str::len),
        Some(32),
        "generated for the entry"
    );
    assert_eq!(msgs[0].commit_log_offset, phys[0]);

    let r = c.call(send_batch("%RETRY%g", 0, &entries));
    assert_eq!(r.code, response::MESSAGE_ILLEGAL, "{r:?}");
}
