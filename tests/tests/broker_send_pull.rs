//! A message sent with SEND_MESSAGE_V2 (JSON header) and SEND_MESSAGE (binary header) comes
//! back from PULL_MESSAGE exactly as a client decodes it: every stored field checked, the
//! send response's ext (msgId = a real offsetMsgId, MSG_REGION, TRACE_ON), and the pull
//! header on every response.

use ringmq_codec::SerializeType;
use ringmq_codec::codes::{request, response};
use ringmq_codec::message::{decode_all, decode_offset_msg_id};
use ringmq_tests::Process;
use ringmq_tests::broker::{ext_i64, props, pull, pull_flag, send_v1, send_v2};

#[test]
fn send_then_pull_round_trip_in_both_serializations() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    for (i, serialize) in [SerializeType::Json, SerializeType::RocketMq]
        .into_iter()
        .enumerate()
    {
        let mut conn = broker.client();
        let topic = format!("RoundTrip{i}");
        let p = props(&[
            ("TAGS", "TagA"),
            ("KEYS", "k1 k2"),
            ("UNIQ_KEY", "ABCDEF0123"),
        ]);
        let mut send = if i == 0 {
            send_v2(&topic, 1, b"hello ringmq", &p)
        } else {
            send_v1(&topic, 1, b"hello ringmq", &p)
        };
        send.serialize = serialize;
        send.ext.insert("h", "7");
        send.ext.insert("flag", "7");
        let r = conn.call(send);
        assert_eq!(r.code, response::SUCCESS, "{r:?}");
        assert_eq!(
            r.serialize, serialize,
            "answered in the request's serialization"
        );
        assert_eq!(r.ext.get("MSG_REGION"), Some("DefaultRegion"));
        assert_eq!(r.ext.get("TRACE_ON"), Some("true"));
        assert_eq!(r.ext.get("queueId"), Some("1"));
        assert_eq!(ext_i64(&r, "queueOffset"), 0);
        assert_eq!(r.ext.get("transactionId"), Some("ABCDEF0123"));
        let msg_id = r.ext.get("msgId").expect("msgId").to_owned();
        let (host, phys) = decode_offset_msg_id(&msg_id).expect("msgId is an offsetMsgId");
        assert_eq!(host, broker.shard_addr(0));

        let mut pl = pull(&topic, 1, 0, 32, pull_flag::SUSPEND, Some("*"));
        pl.serialize = serialize;
        let r = conn.call(pl);
        assert_eq!(r.code, response::SUCCESS, "{r:?}");
        assert_eq!(ext_i64(&r, "nextBeginOffset"), 1);
        assert_eq!(ext_i64(&r, "minOffset"), 0);
        assert_eq!(ext_i64(&r, "maxOffset"), 1);
        assert_eq!(ext_i64(&r, "suggestWhichBrokerId"), 0);
        let (msgs, err) = decode_all(&r.body);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(m.topic, topic);
        assert_eq!(m.queue_id, 1);
        assert_eq!(m.queue_offset, 0);
        assert_eq!(m.commit_log_offset, phys);
        assert_eq!(m.body, b"hello ringmq");
        assert_eq!(m.flag, 7);
        assert_eq!(m.born_timestamp, 1_700_000_000_000);
        assert_eq!(m.born_host.ip(), conn_ip());
        assert_eq!(m.store_host, broker.shard_addr(0));
        assert!(m.store_timestamp > 1_700_000_000_000);
        assert_eq!(m.reconsume_times, 0);
        assert_eq!(m.tags(), Some("TagA"));
        assert_eq!(m.property("KEYS"), Some("k1 k2"));
        assert_eq!(m.msg_id(), "ABCDEF0123");
        assert_eq!(m.offset_msg_id(), msg_id);
        m.properties
            .get("__CRC32#")
            .expect("the engine's record CRC property");

        // Caught up, no suspend: PULL_NOT_FOUND with the full header.
        let r = conn.call(pull(&topic, 1, 1, 32, 0, Some("*")));
        assert_eq!(r.code, response::PULL_NOT_FOUND);
        assert_eq!(ext_i64(&r, "nextBeginOffset"), 1);
        assert_eq!(ext_i64(&r, "maxOffset"), 1);

        // VIEW_MESSAGE_BY_ID resolves the offsetMsgId.
        let view = ringmq_codec::Command::request(request::VIEW_MESSAGE_BY_ID)
            .with_ext("offset", phys.to_string());
        let r = conn.call(view);
        assert_eq!(r.code, response::SUCCESS);
        assert_eq!(decode_all(&r.body).0[0].body, b"hello ringmq");
    }
}

fn conn_ip() -> std::net::IpAddr {
    std::net::Ipv4Addr::LOCALHOST.into()
}

#[test]
fn a_missing_uniq_key_is_generated_and_broker_picks_the_queue() {
    let ns = Process::namesrv(&[]);
    let broker = Process::broker(ns.addr(), &["shards=1"]);
    let mut conn = broker.client();
    let r = conn.call(send_v2("NoKey", -1, b"x", ""));
    assert_eq!(r.code, response::SUCCESS, "{r:?}");
    let q: i32 = r.ext.get("queueId").unwrap().parse().unwrap();
    assert!(
        (0..4).contains(&q),
        "auto-created with min(4, 8) queues: {q}"
    );
    let uniq = r
        .ext
        .get("transactionId")
        .expect("generated UNIQ_KEY")
        .to_owned();
    assert_eq!(uniq.len(), 32);
    let r = conn.call(pull("NoKey", q, 0, 32, 0, Some("*")));
    let (msgs, _) = decode_all(&r.body);
    assert_eq!(msgs[0].property("UNIQ_KEY"), Some(uniq.as_str()));
}
