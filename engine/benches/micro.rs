//! Micro benchmarks: record encode, body/record CRC, append on the simulated disk, key-index
//! lookup, consume-queue read. `cargo bench -p ringmq-engine --bench micro` runs them at full
//! size; `tests/micro_smoke.rs` runs the same code with tiny parameters so it cannot rot.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::rc::Rc;
use std::time::Instant;

use ringmq_codec::filter::TagFilter;
use ringmq_codec::message::record::{RecordCrc, RecordFields, check_record_crc};
use ringmq_engine::disk::SimDisk;
use ringmq_engine::index::{IndexEntry, KeyIndex, key_hash};
use ringmq_engine::{AppendRequest, Durability, ManualClock, QueueOffset, Store, StoreConfig};

/// Runs every micro benchmark `n` times; returns (name, ns per op).
pub fn run(n: u64) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    let body = vec![7u8; 1024];
    let props = "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}0A0000010000000000000000000000AB\u{2}";
    let fields = RecordFields {
        topic: "BenchTopic",
        queue_id: 1,
        flag: 0,
        queue_offset: 1,
        phys_offset: 1,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_timestamp: 1,
        store_host: "127.0.0.1:2".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: &body,
        properties: props,
    };
    let mut buf = Vec::with_capacity(4096);
    let t = Instant::now();
    for _ in 0..n {
        buf.clear();
        fields.encode(RecordCrc::Append, &mut buf).unwrap();
    }
    out.push((
        "encode 1 KiB record (+CRCs)",
        t.elapsed().as_nanos() as f64 / n as f64,
    ));
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(check_record_crc(&buf));
    }
    out.push((
        "verify record CRC",
        t.elapsed().as_nanos() as f64 / n as f64,
    ));

    let mut ix = KeyIndex::new();
    for i in 0..n {
        ix.add(
            IndexEntry {
                key_hash: key_hash("T", &i.to_string()),
                phys: i,
                store_timestamp: 0,
            },
            false,
        );
    }
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(ix.candidates("T", &(i % 1000).to_string(), 0, i64::MAX, 4));
    }
    out.push(("index lookup", t.elapsed().as_nanos() as f64 / n as f64));

    let rt = compio::runtime::Runtime::new().unwrap();
    let (append_ns, read_ns) = rt.block_on(async {
        let store = Rc::new(
            Store::open(
                SimDisk::new(),
                StoreConfig::new("/micro"),
                Rc::new(ManualClock::new(1)),
            )
            .await
            .unwrap(),
        );
        let t = Instant::now();
        let batch = 64;
        for _ in 0..n.div_ceil(batch) {
            let mut hs = Vec::new();
            for q in 0..batch {
                let (s, b) = (store.clone(), body.clone());
                hs.push(compio::runtime::spawn(async move {
                    let req = AppendRequest {
                        topic: "BenchTopic",
                        queue_id: (q % 8) as i32,
                        body: &b,
                        flag: 0,
                        sys_flag: 0,
                        born_timestamp: 1,
                        born_host: "127.0.0.1:1".parse().unwrap(),
                        properties: "TAGS\u{1}TagA\u{2}",
                        reconsume_times: 0,
                        prepared_transaction_offset: 0,
                        tag_code: 0,
                        durability: Durability::Written,
                    };
                    s.append(req).await.unwrap();
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
        }
        let append = t.elapsed().as_nanos() as f64 / (n.div_ceil(batch) * batch) as f64;
        let t = Instant::now();
        for i in 0..n {
            let r = store.read(
                "BenchTopic",
                (i % 8) as i32,
                QueueOffset(0),
                32,
                256 * 1024,
                &TagFilter::All,
            );
            std::hint::black_box(r.ranges.len());
        }
        (append, t.elapsed().as_nanos() as f64 / n as f64)
    });
    out.push(("append on SimDisk (64 concurrent)", append_ns));
    out.push(("consume-queue read of 32 messages", read_ns));
    out
}

#[allow(dead_code)]
fn main() {
    let n = if std::env::args().any(|a| a == "--bench") {
        200_000
    } else {
        1_000
    };
    for (name, ns) in run(n) {
        println!("{name:40} {ns:10.1} ns/op");
    }
}
