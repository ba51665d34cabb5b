//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::rc::Rc;

use ringmq_codec::filter::TagFilter;
use ringmq_engine::disk::{Disk, SimDisk};
use ringmq_engine::{AppendRequest, Durability, ManualClock, QueueOffset, Store, StoreConfig};

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

pub fn req<'a>(
    topic: &'a str,
    queue_id: i32,
    body: &'a [u8],
    props: &'a str,
    durability: Durability,
) -> AppendRequest<'a> {
    AppendRequest {
        topic,
        queue_id,
        body,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: "10.0.0.9:50000".parse().unwrap(),
        properties: props,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        tag_code: 0,
        durability,
    }
}

pub fn small_config(root: &str) -> StoreConfig {
    let mut cfg = StoreConfig::new(root);
    cfg.segment_size = 64 * 1024;
    cfg.cq_entries_per_file = 64;
    cfg.index_entries_per_file = 64;
    cfg.recovery_chunk_bytes = 16 * 1024;
    cfg.checkpoint_interval_ms = 3_600_000;
    cfg.retention_interval_ms = 3_600_000;
    cfg
}

pub async fn open_sim(disk: &SimDisk, cfg: &StoreConfig, clock: &ManualClock) -> Store<SimDisk> {
    Store::open(disk.clone(), cfg.clone(), Rc::new(clock.clone()))
        .await
        .unwrap()
}

/// Every visible message body of a queue, in order, with its physical offset.
pub async fn read_all<D: Disk>(
    store: &Store<D>,
    topic: &str,
    queue_id: i32,
) -> Vec<(u64, Vec<u8>)> {
    try_read_all(store, topic, queue_id).await.unwrap()
}

/// [`read_all`] that reports read errors.
pub async fn try_read_all<D: Disk>(
    store: &Store<D>,
    topic: &str,
    queue_id: i32,
) -> Result<Vec<(u64, Vec<u8>)>, ringmq_engine::StorageError> {
    let mut out = Vec::new();
    let (min, _) = store.queue_offsets(topic, queue_id);
    let mut from = min;
    loop {
        let r = store.read(topic, queue_id, from, 32, u64::MAX, &TagFilter::All);
        if r.message_count == 0 {
            break;
        }
        for range in &r.ranges {
            let bytes = store.read_range(range).await?;
            let (msgs, err) = ringmq_codec::message::decode_all(&bytes);
            assert!(
                err.is_none(),
                "pull body of {topic}/{queue_id} at {:?} len {} must decode: {err:?}",
                range.phys_offset,
                range.len
            );
            for m in msgs {
                out.push((m.commit_log_offset as u64, m.body));
            }
        }
        from = r.next_offset;
        if from == QueueOffset(u64::MAX) {
            break;
        }
    }
    Ok(out)
}
