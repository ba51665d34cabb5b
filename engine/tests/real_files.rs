//! Real files on the machine's file system: a torn tail, a flipped bit in the last record and
//! a zero-filled tail are cut at the last good record by recovery; running out of space is a
//! clear error that loses nothing acknowledged. Run on both the io_uring and std backends.

mod common;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::*;
use ringmq_engine::disk::{Disk, StdDisk, SyncMethod, UringDisk};
use ringmq_engine::{Durability, Prealloc, Store, StoreConfig, SystemClock};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringmq-engine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(root: &Path) -> StoreConfig {
    let mut cfg = small_config(root.to_str().unwrap());
    cfg.prealloc = Prealloc::Create;
    cfg
}

/// Appends `n` synced messages, drops the store without closing (a crash after the syncs).
async fn write_and_crash<D: Disk>(disk: D, cfg: &StoreConfig, n: usize) -> Vec<u64> {
    let store = Store::open(disk, cfg.clone(), Rc::new(SystemClock))
        .await
        .unwrap();
    let mut ends = Vec::new();
    for i in 0..n {
        let body = vec![i as u8; 200];
        let r = store
            .append(req("T", 0, &body, "KEYS\u{1}k\u{2}", Durability::Synced))
            .await
            .unwrap();
        ends.push(r.phys_offset.0 + u64::from(r.size));
    }
    drop(store);
    ends
}

fn segment0(root: &Path) -> PathBuf {
    root.join("commitlog").join("00000000000000000000")
}

async fn reopen_and_count<D: Disk>(disk: D, cfg: &StoreConfig) -> (usize, Store<D>) {
    let store = Store::open(disk, cfg.clone(), Rc::new(SystemClock))
        .await
        .unwrap();
    (read_all(&store, "T", 0).await.len(), store)
}

async fn corruptions<D: Disk>(disk: D, name: &str) {
    // Torn tail: the file ends in the middle of the last record.
    let root = temp_dir(&format!("{name}-torn"));
    let cfg = config(&root);
    let ends = write_and_crash(disk.clone(), &cfg, 10).await;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment0(&root))
        .unwrap();
    f.set_len(ends[9] - 37).unwrap();
    let (n, store) = reopen_and_count(disk.clone(), &cfg).await;
    assert_eq!(n, 9, "{name}: torn last record dropped, the rest kept");
    // The log continues right after the last good record.
    let r = store
        .append(req("T", 0, b"next", "", Durability::Synced))
        .await
        .unwrap();
    assert_eq!(r.phys_offset.0, ends[8]);
    drop(store);
    assert_eq!(reopen_and_count(disk.clone(), &cfg).await.0, 10);

    // A flipped bit in the header of the last record (its body CRC would not notice).
    let root = temp_dir(&format!("{name}-flip"));
    let cfg = config(&root);
    let ends = write_and_crash(disk.clone(), &cfg, 10).await;
    let mut bytes = std::fs::read(segment0(&root)).unwrap();
    bytes[ends[8] as usize + 24] ^= 0x04; // inside QUEUEOFFSET
    std::fs::write(segment0(&root), &bytes).unwrap();
    assert_eq!(
        reopen_and_count(disk.clone(), &cfg).await.0,
        9,
        "{name}: flipped record dropped"
    );

    // A zero-filled tail: the last record's blocks were allocated but never written.
    let root = temp_dir(&format!("{name}-zero"));
    let cfg = config(&root);
    let ends = write_and_crash(disk.clone(), &cfg, 10).await;
    let mut bytes = std::fs::read(segment0(&root)).unwrap();
    for b in &mut bytes[ends[8] as usize..] {
        *b = 0;
    }
    bytes.resize(bytes.len() + 4096, 0);
    std::fs::write(segment0(&root), &bytes).unwrap();
    assert_eq!(
        reopen_and_count(disk.clone(), &cfg).await.0,
        9,
        "{name}: zeroed record dropped"
    );
}

#[test]
fn corrupt_tails_on_uring() {
    block_on(corruptions(
        UringDisk::new(SyncMethod::Uring).unwrap(),
        "uring",
    ));
}

#[test]
fn corrupt_tails_on_sync_thread() {
    block_on(corruptions(
        UringDisk::new(SyncMethod::Thread).unwrap(),
        "thread",
    ));
}

#[test]
fn corrupt_tails_on_std() {
    block_on(corruptions(StdDisk, "std"));
}

/// Fills a small file system; the failing append gets a disk-full error; every acknowledged
/// append is still served after `recover()` and after a restart.
async fn fill_up(root: &Path) {
    let mut cfg = config(root);
    cfg.segment_size = 128 * 1024;
    let disk = UringDisk::new(SyncMethod::Thread).unwrap();
    let store = Store::open(disk.clone(), cfg.clone(), Rc::new(SystemClock))
        .await
        .unwrap();
    let mut acked = 0;
    let err = loop {
        let body = vec![7u8; 4000];
        match store
            .append(req("T", 0, &body, "", Durability::Synced))
            .await
        {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the file system never filled up");
    };
    assert!(err.is_disk_full(), "expected a disk-full error, got: {err}");
    assert!(
        err.to_string().contains("No space left") || err.to_string().contains("disk full"),
        "{err}"
    );
    assert!(store.is_broken());
    assert_eq!(
        read_all(&store, "T", 0).await.len(),
        acked,
        "reads still served"
    );
    let _ = store.recover().await;
    assert_eq!(read_all(&store, "T", 0).await.len(), acked);
    drop(store);
    let store = Store::open(disk, cfg, Rc::new(SystemClock)).await.unwrap();
    let n = read_all(&store, "T", 0).await.len();
    assert!(n >= acked, "acknowledged appends lost: {n} < {acked}");
}

#[test]
fn enospc_is_a_clear_error_and_loses_nothing() {
    // A small tmpfs when this process may mount one (root here and in CI); otherwise a
    // RLIMIT_FSIZE-limited child process would be the fallback, which reports EFBIG instead.
    let root = temp_dir("enospc");
    let mnt = root.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let c_target = std::ffi::CString::new(mnt.to_str().unwrap()).unwrap();
    let mounted = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            c_target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"size=1m".as_ptr().cast(),
        )
    } == 0;
    if !mounted {
        eprintln!(
            "cannot mount a tmpfs here ({}); using a size-limited child",
            std::io::Error::last_os_error()
        );
        return enospc_with_rlimit(&root);
    }
    block_on(fill_up(&mnt));
    unsafe {
        libc::umount2(c_target.as_ptr(), libc::MNT_DETACH);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// The fallback: a child process of this test binary with RLIMIT_FSIZE set writes until the
/// kernel refuses (EFBIG); the parent then checks nothing acknowledged is lost.
fn enospc_with_rlimit(root: &Path) {
    if std::env::var("RINGMQ_FSIZE_CHILD").is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["--exact", "rlimit_child", "--nocapture"])
        .env("RINGMQ_FSIZE_CHILD", root)
        .status()
        .unwrap();
    assert!(status.success(), "child failed: {status}");
}

/// Not a test on its own: the entry point of the size-limited child process started by
/// [`enospc_with_rlimit`] (it does nothing unless `RINGMQ_FSIZE_CHILD` is set).
#[test]
fn rlimit_child() {
    let Ok(root) = std::env::var("RINGMQ_FSIZE_CHILD") else {
        return;
    };
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: 512 * 1024,
            rlim_max: 512 * 1024,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let root = PathBuf::from(root);
    block_on(async {
        let mut cfg = config(&root);
        cfg.segment_size = 1024 * 1024;
        let store = Store::open(StdDisk, cfg, Rc::new(SystemClock))
            .await
            .unwrap();
        let mut acked = 0;
        let err = loop {
            match store
                .append(req("T", 0, &[1u8; 4000], "", Durability::Synced))
                .await
            {
                Ok(_) => acked += 1,
                Err(e) => break e,
            }
        };
        eprintln!("size-limited append failed as expected: {err}");
        assert_eq!(read_all(&store, "T", 0).await.len(), acked);
    });
}

/// Recovery of a preallocated multi-chunk segment on real files: the read-ahead scan finds
/// every record, on every backend.
async fn multi_chunk_recovery<D: Disk>(disk: D, name: &str) {
    let root = temp_dir(&format!("{name}-chunks"));
    let mut cfg = config(&root);
    cfg.prealloc = Prealloc::Extend;
    cfg.segment_size = 1 << 20;
    cfg.recovery_chunk_bytes = 4096;
    let store = Store::open(disk.clone(), cfg.clone(), Rc::new(SystemClock))
        .await
        .unwrap();
    for i in 0..2000u32 {
        let body = vec![(i % 251) as u8; 300 + (i as usize * 7) % 900];
        store
            .append(req("T", 0, &body, "", Durability::Written))
            .await
            .unwrap();
    }
    drop(store);
    let (n, _store) = reopen_and_count(disk, &cfg).await;
    assert_eq!(n, 2000, "{name}");
}

#[test]
fn multi_chunk_recovery_on_all_backends() {
    block_on(multi_chunk_recovery(
        UringDisk::new(SyncMethod::Thread).unwrap(),
        "uring",
    ));
    block_on(multi_chunk_recovery(StdDisk, "std"));
}

/// `prepare_first_segment` with `Fill` (RocketMQ `warmMapedFileEnable`): when `open` returns,
/// a fresh log's first segment is written in full (allocated blocks, no hole), and appends
/// overwrite it and read back after a reopen.
#[test]
fn a_prepared_first_segment_is_written_before_open_returns() {
    use std::os::unix::fs::MetadataExt;
    let root = temp_dir("prepared-first");
    let mut cfg = config(&root);
    cfg.segment_size = 3 << 20;
    cfg.prealloc = Prealloc::Fill;
    cfg.prepare_first_segment = true;
    compio::runtime::Runtime::new().unwrap().block_on(async {
        let disk = UringDisk::new(SyncMethod::default()).unwrap();
        let ends = {
            let store = Store::open(disk.clone(), cfg.clone(), Rc::new(SystemClock))
                .await
                .unwrap();
            let meta = std::fs::metadata(segment0(&root)).unwrap();
            assert_eq!(meta.len(), cfg.segment_size);
            assert!(
                meta.blocks() * 512 >= cfg.segment_size,
                "{} bytes allocated of {}",
                meta.blocks() * 512,
                cfg.segment_size
            );
            store.close().await.unwrap();
            write_and_crash(disk.clone(), &cfg, 20).await
        };
        assert_eq!(ends.len(), 20);
        let (n, store) = reopen_and_count(disk, &cfg).await;
        assert_eq!(n, 20);
        assert_eq!(
            std::fs::metadata(segment0(&root)).unwrap().len(),
            cfg.segment_size
        );
        store.close().await.unwrap();
    });
    std::fs::remove_dir_all(&root).unwrap();
}
