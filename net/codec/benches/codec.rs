//! Codec micro-benchmark: the header work of one produce round trip, as the load generator
//! and a broker do it per message. `cargo bench -p ringmq-codec` (plain `std::time`, no
//! harness crate). Each stage runs `RINGMQ_BENCH_ITERS` (200 000) times per round; the best
//! of 7 rounds is printed in ns per operation, which filters out a noisy shared machine.
//!
//! Stages: build a SEND_MESSAGE_V2 request from its typed header and frame it (client),
//! decode that frame and its typed header (broker), build and frame the send response
//! (broker), decode the response frame and header (client). Two more stages time the
//! broker's own per-message work beside the round trip: encoding the stored record of a
//! 1 KiB body (both CRCs), and four property lookups in a typical property string.

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use ringmq_codec::frame::{self, FRAME_MAX_DEFAULT};
use ringmq_codec::headers::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::{RecordCrc, RecordFields};
use ringmq_codec::{Command, Header};

const ROUNDS: usize = 7;

fn request_header(i: i64) -> SendMessageRequestHeader {
    SendMessageRequestHeader {
        producer_group: "ringmq-bench-producer".into(),
        topic: "ringmq-bench-0".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: (i % 16) as i32,
        sys_flag: 0,
        born_timestamp_ms: 1_763_800_000_000 + i,
        flag: 0,
        properties: Some(
            "UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}WAIT\u{1}true\u{2}".into(),
        ),
        reconsume_times: Some(0),
        unit_mode: false,
        max_reconsume_times: None,
        batch: false,
        broker_name: None,
    }
}

fn request_frame(i: i64, out: &mut BytesMut) {
    let mut cmd = Command::request(310);
    request_header(i).encode(&mut cmd.ext);
    cmd.opaque = i as i32;
    frame::encode(&cmd, out);
}

fn response_frame(req: &Command, out: &mut BytesMut) {
    let h = SendMessageResponseHeader::new("7F00000100002A9F0000000000ABCDEF", 3, 12345);
    let mut cmd = Command::response_to(req, 0);
    h.encode(&mut cmd.ext);
    frame::encode(&cmd, out);
}

fn best_ns(iters: usize, mut f: impl FnMut(usize)) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for i in 0..iters {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let iters = std::env::var("RINGMQ_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut out = BytesMut::with_capacity(4096);
    let mut req_bytes = BytesMut::new();
    request_frame(1, &mut req_bytes);
    let (req, _) = frame::decode(&req_bytes, FRAME_MAX_DEFAULT)
        .unwrap()
        .unwrap();
    let mut resp_bytes = BytesMut::new();
    response_frame(&req, &mut resp_bytes);

    let enc_req = best_ns(iters, |i| {
        out.clear();
        request_frame(i as i64, &mut out);
        black_box(&out);
    });
    let dec_req = best_ns(iters, |_| {
        let mut buf = req_bytes.clone();
        let cmd = frame::decode_from(&mut buf, FRAME_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        black_box(SendMessageRequestHeader::decode(&cmd.ext).unwrap());
    });
    let enc_resp = best_ns(iters, |_| {
        out.clear();
        response_frame(&req, &mut out);
        black_box(&out);
    });
    let dec_resp = best_ns(iters, |_| {
        let mut buf = resp_bytes.clone();
        let cmd = frame::decode_from(&mut buf, FRAME_MAX_DEFAULT)
            .unwrap()
            .unwrap();
        black_box(SendMessageResponseHeader::decode(&cmd.ext).unwrap());
    });
    let body = vec![0x5Au8; 1024];
    let host = std::net::SocketAddr::from(([127, 0, 0, 1], 10911));
    let mut record = Vec::with_capacity(4096);
    let enc_record = best_ns(iters, |i| {
        record.clear();
        let fields = RecordFields {
            topic: "ringmq-bench-0",
            queue_id: (i % 16) as i32,
            flag: 0,
            queue_offset: i as i64,
            phys_offset: (i * 1200) as i64,
            sys_flag: 0,
            born_timestamp: 1_763_800_000_000,
            born_host: host,
            store_timestamp: 1_763_800_000_001,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}",
        };
        black_box(fields.encode(RecordCrc::Append, &mut record).unwrap());
    });
    // What a broker looks up in a produced message's properties before storing it.
    let props = "KEYS\u{1}order-42\u{2}TAGS\u{1}TagA\u{2}WAIT\u{1}true\u{2}\
                 UNIQ_KEY\u{1}7F00000100002A9F0000000000000001\u{2}";
    let lookups = best_ns(iters, |_| {
        let p = black_box(props);
        black_box(properties::find(p, keys::TAGS));
        black_box(properties::find(p, keys::DELAY));
        black_box(properties::find(p, keys::UNIQ_KEY));
        black_box(properties::business_keys(p).count());
    });
    println!("codec round trip, best of {ROUNDS} x {iters}, ns per op");
    println!("  request  encode (typed -> frame)   {enc_req:8.1}");
    println!("  request  decode (frame -> typed)   {dec_req:8.1}");
    println!("  response encode (typed -> frame)   {enc_resp:8.1}");
    println!("  response decode (frame -> typed)   {dec_resp:8.1}");
    println!(
        "  total per produced message          {:8.1}",
        enc_req + dec_req + enc_resp + dec_resp
    );
    println!(
        "  stored record encode, 1 KiB body   {enc_record:8.1}  (broker, per append: both CRCs)"
    );
    println!("  4 property lookups (find x3, KEYS)  {lookups:8.1}  (broker, per message)");
}
