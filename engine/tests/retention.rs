//! Retention end to end on the simulated disk: expired segments go at the delete hour,
//! consume queues and the key index follow, and above the hard disk ratio appends are refused
//! with a disk-full error while reads go on.

mod common;

use common::*;
use ringmq_codec::filter::TagFilter;
use ringmq_engine::disk::SimDisk;
use ringmq_engine::{Durability, ManualClock, QueueOffset, ReadStatus, StorageError};

const HOUR: i64 = 3_600_000;

#[test]
fn expired_segments_go_and_queues_follow() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1_700_000_000_000);
        let mut cfg = small_config("/ret");
        cfg.segment_size = 8192;
        cfg.cq_entries_per_file = 4;
        cfg.retention.file_reserved_time_hours = 1;
        cfg.retention.delete_when_hours = (0..24).collect();
        let store = open_sim(&disk, &cfg, &clock).await;
        for i in 0..60u32 {
            clock.advance(HOUR / 10);
            let body = vec![1u8; 900];
            let props = format!("UNIQ_KEY\u{1}U{i}\u{2}");
            store
                .append(req("T", 0, &body, &props, Durability::Synced))
                .await
                .unwrap();
        }
        store.checkpoint().await.unwrap();
        let before = disk.files().len();
        let deleted = store.run_retention().await.unwrap();
        assert!(!deleted.is_empty(), "expired segments deleted");
        assert_eq!(deleted[0], 0);
        assert_eq!(store.min_phys_offset(), deleted.last().unwrap() + 8192);
        assert!(disk.files().len() < before);
        let (min, max) = store.queue_offsets("T", 0);
        assert!(min.0 > 0 && max.0 == 60);
        let r = store.read("T", 0, QueueOffset(0), 1, u64::MAX, &TagFilter::All);
        assert_eq!(r.status, ReadStatus::OffsetTooSmall);
        assert_eq!(r.next_offset, min);
        assert!(
            store
                .query_by_key("T", "U0", 0, i64::MAX, 4)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .query_by_key("T", "U59", 0, i64::MAX, 4)
                .await
                .unwrap()
                .len(),
            1
        );
        let kept = read_all(&store, "T", 0).await.len() as u64;
        assert_eq!(kept, 60 - min.0);
        // After a restart, clean or not, the queue starts at the same min offset.
        store.close().await.unwrap();
        drop(store);
        let store = open_sim(&disk, &cfg, &clock).await;
        assert_eq!(store.queue_offsets("T", 0), (min, QueueOffset(60)));
        drop(store);
        disk.crash(ringmq_engine::disk::CrashMode::DurableOnly);
        let store = open_sim(&disk, &cfg, &clock).await;
        assert_eq!(store.queue_offsets("T", 0), (min, QueueOffset(60)));
        assert_eq!(read_all(&store, "T", 0).await.len() as u64, kept);
    });
}

#[test]
fn above_the_hard_ratio_appends_are_refused_and_reads_served() {
    block_on(async {
        let disk = SimDisk::new();
        let clock = ManualClock::new(1_700_000_000_000);
        let mut cfg = small_config("/full");
        cfg.segment_size = 8192;
        let store = open_sim(&disk, &cfg, &clock).await;
        for _ in 0..10 {
            store
                .append(req("T", 0, &[2u8; 500], "", Durability::Synced))
                .await
                .unwrap();
        }
        // Nothing is expired, so retention cannot help: the disk is 95 % full.
        let used: u64 = disk
            .files()
            .iter()
            .map(|p| disk.contents(p).unwrap().len() as u64)
            .sum();
        disk.set_capacity(Some(used * 100 / 95));
        store.run_retention().await.unwrap();
        assert!(store.is_disk_full());
        let err = store
            .append(req("T", 0, b"x", "", Durability::Synced))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::DiskFull { .. }), "{err}");
        assert!(err.is_disk_full());
        assert!(err.to_string().contains("disk full"));
        assert_eq!(read_all(&store, "T", 0).await.len(), 10);
        // Space comes back: appends resume after the next pass.
        disk.set_capacity(None);
        store.run_retention().await.unwrap();
        store
            .append(req("T", 0, b"x", "", Durability::Synced))
            .await
            .unwrap();
    });
}
