//! The store end to end on the simulated disk: append, read as pull bodies, look up, restart
//! clean and after a crash, group commit, failure handling.

mod common;

use std::rc::Rc;

use common::*;
use ringmq_codec::filter::{TagFilter, tag_code};
use ringmq_codec::message::decode_all;
use ringmq_engine::disk::{CrashMode, SimDisk};
use ringmq_engine::{
    Durability, FlushMode, ManualClock, PhysOffset, QueueOffset, ReadStatus, Store, TimeBoundary,
};

#[test]
fn append_read_restart() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1_000);
        let cfg = small_config("/data");
        let store = open_sim(&disk, &cfg, &clock).await;
        let mut results = Vec::new();
        for i in 0..10u8 {
            clock.advance(10);
            let body = vec![i; 100];
            let props = format!(
                "TAGS\u{1}T{}\u{2}KEYS\u{1}k{i} common\u{2}UNIQ_KEY\u{1}U{i}\u{2}",
                i % 2
            );
            let mut r = req("TopicA", (i % 2) as i32, &body, &props, Durability::Synced);
            r.tag_code = tag_code(Some(&format!("T{}", i % 2)));
            results.push(store.append(r).await.unwrap());
        }
        assert_eq!(results[0].phys_offset, PhysOffset(0));
        assert_eq!(results[2].queue_offset, QueueOffset(1));
        assert_eq!(
            store.queue_offsets("TopicA", 0),
            (QueueOffset(0), QueueOffset(5))
        );
        let r = store.read("TopicA", 0, QueueOffset(1), 2, u64::MAX, &TagFilter::All);
        assert_eq!(r.status, ReadStatus::Found);
        assert_eq!(r.message_count, 2);
        assert_eq!(r.next_offset, QueueOffset(3));
        let body = store.read_range(&r.ranges[0]).await.unwrap();
        let (msgs, err) = decode_all(&body);
        assert!(err.is_none());
        assert_eq!(msgs[0].body, vec![2u8; 100]);
        assert_eq!(msgs[0].queue_offset, 1);
        assert_eq!(msgs[0].store_timestamp, 1_030);
        assert_eq!(
            store
                .read("TopicA", 0, QueueOffset(5), 2, u64::MAX, &TagFilter::All)
                .status,
            ReadStatus::OffsetOverflowOne
        );
        assert_eq!(
            store
                .read("TopicA", 0, QueueOffset(9), 2, u64::MAX, &TagFilter::All)
                .status,
            ReadStatus::OffsetOverflowBadly
        );
        assert_eq!(
            store
                .read("Nope", 0, QueueOffset(0), 2, u64::MAX, &TagFilter::All)
                .status,
            ReadStatus::NoMessageInQueue
        );
        // Tag filtering at the consume-queue level.
        let f = TagFilter::parse(Some("T1"));
        let r = store.read("TopicA", 0, QueueOffset(0), 32, u64::MAX, &f);
        assert_eq!(r.status, ReadStatus::NoMatchedMessage);
        assert_eq!(r.next_offset, QueueOffset(5));
        // Lookups.
        let rec = store
            .record_at(results[3].phys_offset)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(decode_all(&rec).0[0].body, vec![3u8; 100]);
        assert!(store.record_at(PhysOffset(1)).await.unwrap().is_none());
        // Batched lookups: queue order, not log order; a wrong entry reads as None.
        let mut entries: Vec<_> = (0..5)
            .rev()
            .map(|o| store.queue_entry("TopicA", 1, QueueOffset(o)).unwrap())
            .collect();
        let mut bogus = entries[0];
        bogus.phys += 1;
        entries.push(bogus);
        let recs = store.records_of(&entries).await.unwrap();
        let bodies: Vec<u8> = recs[..5]
            .iter()
            .map(|r| decode_all(r.as_ref().unwrap()).0[0].body[0])
            .collect();
        assert_eq!(bodies, vec![9, 7, 5, 3, 1]);
        assert!(recs[5].is_none());
        let found = store
            .query_by_key("TopicA", "k4", 0, i64::MAX, 10)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].phys_offset, results[4].phys_offset);
        assert_eq!(
            store
                .query_by_key("TopicA", "common", 0, i64::MAX, 3)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            store
                .query_by_key("TopicA", "U7", 0, i64::MAX, 32)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .query_by_key("TopicB", "U7", 0, i64::MAX, 32)
                .await
                .unwrap()
                .len(),
            0
        );
        // Offsets by time: queue 0 holds store times 1010, 1030, 1050, 1070, 1090.
        let q = |ts, b| store.offset_by_time("TopicA", 0, ts, b);
        assert_eq!(q(1030, TimeBoundary::Lower).await.unwrap(), QueueOffset(1));
        assert_eq!(q(1031, TimeBoundary::Lower).await.unwrap(), QueueOffset(2));
        assert_eq!(q(9999, TimeBoundary::Lower).await.unwrap(), QueueOffset(5));
        assert_eq!(q(1030, TimeBoundary::Upper).await.unwrap(), QueueOffset(1));
        assert_eq!(q(1049, TimeBoundary::Upper).await.unwrap(), QueueOffset(1));
        assert_eq!(q(0, TimeBoundary::Upper).await.unwrap(), QueueOffset(0));
        assert_eq!(
            q(1041, TimeBoundary::Closest).await.unwrap(),
            QueueOffset(2)
        );
        assert_eq!(
            q(1039, TimeBoundary::Closest).await.unwrap(),
            QueueOffset(1)
        );
        assert_eq!(
            q(9999, TimeBoundary::Closest).await.unwrap(),
            QueueOffset(4)
        );
        assert_eq!(
            store.earliest_store_time("TopicA", 1).await.unwrap(),
            Some(1_020)
        );

        store.close().await.unwrap();
        drop(store);
        let calls_before = disk.calls();
        let store = open_sim(&disk, &cfg, &clock).await;
        assert!(
            disk.calls() - calls_before < 100,
            "a clean open reads no log"
        );
        assert_eq!(read_all(&store, "TopicA", 0).await.len(), 5);
        assert_eq!(read_all(&store, "TopicA", 1).await.len(), 5);
        assert_eq!(
            store
                .query_by_key("TopicA", "k4", 0, i64::MAX, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        let next = store
            .append(req("TopicA", 0, b"after", "", Durability::Synced))
            .await
            .unwrap();
        assert_eq!(next.queue_offset, QueueOffset(5));
        drop(store);
        // Crash: only synced data survives; everything acknowledged as synced is there.
        disk.crash(CrashMode::DurableOnly);
        let store = open_sim(&disk, &cfg, &clock).await;
        let q0 = read_all(&store, "TopicA", 0).await;
        assert_eq!(q0.len(), 6);
        assert_eq!(q0[5].1, b"after");
        assert_eq!(
            store
                .query_by_key("TopicA", "U9", 0, i64::MAX, 32)
                .await
                .unwrap()
                .len(),
            1
        );
    });
}

#[test]
fn group_commit_one_sync_for_many_appenders() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let store = Rc::new(open_sim(&disk, &small_config("/g"), &clock).await);
        let syncs_before = disk.syncs();
        let mut handles = Vec::new();
        for i in 0..64 {
            let s = store.clone();
            handles.push(compio::runtime::spawn(async move {
                let body = [i as u8; 64];
                s.append(req("G", i % 4, &body, "", Durability::Synced))
                    .await
                    .unwrap()
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let syncs = disk.syncs() - syncs_before;
        assert!(syncs <= 3, "64 concurrent sync appends took {syncs} syncs");
        assert_eq!(store.durable_offset(), store.appended_offset());
    });
}

/// Lets background tasks (the next segment's pre-creation) finish, so the disk calls counted
/// by `fail_call` are the append's own. On the simulated disk they complete in one poll, and
/// every ready task runs before a timer fires.
async fn background_settles() {
    compio::time::sleep(std::time::Duration::from_millis(1)).await;
}

#[test]
fn failed_write_fails_affected_appends_and_blocks_until_recovered() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let mut cfg = small_config("/f");
        cfg.flush_mode = FlushMode::Sync;
        let store = Rc::new(open_sim(&disk, &cfg, &clock).await);
        store
            .append(req("F", 0, b"one", "", Durability::Synced))
            .await
            .unwrap();
        background_settles().await;
        disk.fail_call(1); // the next call is the write
        let err = store
            .append(req("F", 0, b"two", "", Durability::Synced))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("simulated"), "{err}");
        assert!(store.is_broken());
        let refused = store
            .append(req("F", 0, b"three", "", Durability::Synced))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ringmq_engine::StorageError::Broken { .. }),
            "{refused}"
        );
        // Reads still work and show only the durable message.
        assert_eq!(read_all(&*store, "F", 0).await.len(), 1);
        store.recover().await.unwrap();
        let r = store
            .append(req("F", 0, b"four", "", Durability::Synced))
            .await
            .unwrap();
        let all = read_all(&*store, "F", 0).await;
        assert_eq!(
            all.iter().map(|m| m.1.clone()).collect::<Vec<_>>(),
            [b"one".to_vec(), b"four".to_vec()]
        );
        assert_eq!(r.queue_offset, QueueOffset(1));
    });
}

#[test]
fn failed_sync_fails_sync_appends_only() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let store = Rc::new(open_sim(&disk, &small_config("/s"), &clock).await);
        store
            .append(req("S", 0, b"one", "", Durability::Synced))
            .await
            .unwrap();
        background_settles().await;
        disk.fail_call(2); // write succeeds, sync fails
        let err = store
            .append(req("S", 0, b"two", "", Durability::Synced))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("fdatasync"), "{err}");
        drop(store);
        disk.crash(CrashMode::DurableOnly);
        let store = open_sim(&disk, &small_config("/s"), &clock).await;
        assert_eq!(read_all(&store, "S", 0).await.len(), 1);
    });
}

#[test]
fn segments_roll_with_fillers_and_batches_are_consecutive() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let cfg = small_config("/r");
        let store = open_sim(&disk, &cfg, &clock).await;
        let body = vec![7u8; 3000];
        let mut last = None;
        for _ in 0..60 {
            last = Some(
                store
                    .append(req("R", 0, &body, "", Durability::Written))
                    .await
                    .unwrap(),
            );
        }
        assert!(last.unwrap().phys_offset.0 > 2 * cfg.segment_size);
        let reqs: Vec<_> = (0..5)
            .map(|_| req("R", 1, b"b", "", Durability::Synced))
            .collect();
        let res = store.append_batch(&reqs).await.unwrap();
        for (i, r) in res.iter().enumerate() {
            assert_eq!(r.queue_offset, QueueOffset(i as u64));
        }
        assert_eq!(read_all(&store, "R", 0).await.len(), 60);
        store.close().await.unwrap();
        drop(store);
        disk.crash(CrashMode::DurableOnly);
        let store = Store::open(disk.clone(), cfg.clone(), Rc::new(clock.clone()))
            .await
            .unwrap();
        assert_eq!(read_all(&store, "R", 0).await.len(), 60);
        assert_eq!(read_all(&store, "R", 1).await.len(), 5);
    });
}

/// Long polling wakes on arrivals: the hook hears each queue's new max offset once the data
/// is visible (written under async flush, durable under sync flush).
#[test]
fn arrivals_are_reported_when_visible() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let mut cfg = small_config("/arr");
        cfg.flush_mode = FlushMode::Sync;
        let store = Rc::new(open_sim(&disk, &cfg, &clock).await);
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let s2 = seen.clone();
        store.set_arrival_hook(Box::new(move |a| {
            s2.borrow_mut().push((
                a.topic.to_string(),
                a.queue_id,
                a.max_offset,
                a.last_tag_code,
            ))
        }));
        let mut r = req("W", 3, b"x", "", Durability::Synced);
        r.tag_code = 42;
        store.append(r).await.unwrap();
        store.append(r).await.unwrap();
        let got = seen.borrow().clone();
        assert_eq!(got.last(), Some(&("W".to_owned(), 3, QueueOffset(2), 42)));
        // A written-only append under sync flush is invisible (and unannounced) until durable.
        let before = seen.borrow().len();
        store
            .append(req("W", 3, b"y", "", Durability::Written))
            .await
            .unwrap();
        assert_eq!(store.queue_offsets("W", 3).1, QueueOffset(2));
        assert_eq!(seen.borrow().len(), before);
        store
            .append(req("W", 4, b"z", "", Durability::Synced))
            .await
            .unwrap();
        assert_eq!(store.queue_offsets("W", 3).1, QueueOffset(3));
        let got = seen.borrow().clone();
        assert!(got.contains(&("W".to_owned(), 3, QueueOffset(3), 0)));
        assert!(got.contains(&("W".to_owned(), 4, QueueOffset(1), 0)));
    });
}

/// The recovery scan reads ahead in chunks that overlap by the largest record; records cut by
/// a chunk's end are found whole in the next chunk, and a corrupt one still ends the log.
#[test]
fn recovery_scan_reads_ahead_in_overlapping_chunks() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1);
        let mut cfg = small_config("/chunks");
        cfg.segment_size = 1 << 20;
        cfg.max_message_size = 2000;
        cfg.recovery_chunk_bytes = 4096; // chunks of 2 × (max record) ≈ 130 KiB
        let store = open_sim(&disk, &cfg, &clock).await;
        let mut offsets = Vec::new();
        for i in 0..1500u32 {
            let body = vec![(i % 251) as u8; 100 + (i as usize * 37) % 1900];
            offsets.push(
                store
                    .append(req("C", 0, &body, "", Durability::Synced))
                    .await
                    .unwrap(),
            );
        }
        drop(store);
        disk.crash(CrashMode::DurableOnly);
        let store = open_sim(&disk, &cfg, &clock).await;
        assert_eq!(read_all(&store, "C", 0).await.len(), 1500);
        drop(store);
        // Corrupt a record that straddles the 2nd chunk boundary (past 130 KiB).
        let victim = offsets
            .iter()
            .position(|r| r.phys_offset.0 > 140_000)
            .unwrap();
        let seg = std::path::Path::new("/chunks/commitlog/00000000000000000000");
        assert!(disk.poke(seg, offsets[victim].phys_offset.0 + 30, &[0xFF]));
        disk.crash(CrashMode::DurableOnly);
        let store = open_sim(&disk, &cfg, &clock).await;
        assert_eq!(read_all(&store, "C", 0).await.len(), victim);
    });
}

/// Under async flush, each `write_behind_bytes` of written whole pages go to the kernel's
/// writeback as they are written, contiguously, one segment at a time; under sync flush none
/// do (every write is made durable at once).
#[test]
fn write_behind_hands_whole_pages_over_as_the_log_grows() {
    block_on(async {
        for (mode, durability) in [
            (FlushMode::Async, Durability::Written),
            (FlushMode::Sync, Durability::Synced),
        ] {
            let disk = SimDisk::new();
            let clock = ManualClock::new(1_000);
            let mut cfg = small_config("/data");
            cfg.flush_mode = mode;
            cfg.write_behind_bytes = 8192;
            let store = open_sim(&disk, &cfg, &clock).await;
            let body = vec![7u8; 1000];
            // ~150 KB: more than two 64 KiB segments.
            for _ in 0..140 {
                store
                    .append(req("T", 0, &body, "", durability))
                    .await
                    .unwrap();
            }
            let wb = disk.writebacks();
            if mode == FlushMode::Sync {
                assert!(wb.is_empty(), "sync flush started writebacks: {wb:?}");
                continue;
            }
            assert!(wb.len() >= 10, "too few writebacks: {wb:?}");
            let files: std::collections::BTreeSet<_> = wb.iter().map(|w| w.0.clone()).collect();
            assert!(files.len() >= 2, "writebacks stayed in one segment: {wb:?}");
            for pair in wb.windows(2) {
                let ((fa, _, ta), (fb, from_b, _)) = (&pair[0], &pair[1]);
                if fa == fb {
                    assert_eq!(ta, from_b, "a gap or overlap in one segment: {wb:?}");
                } else {
                    assert_eq!(*from_b, 0, "a new segment starts at its beginning: {wb:?}");
                }
            }
            for (_, from, to) in &wb {
                assert_eq!(to % 4096, 0, "a partial page was handed over: {wb:?}");
                assert!(to - from >= 8192 && *to <= cfg.segment_size, "{wb:?}");
            }
        }
    });
}
