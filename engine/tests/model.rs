//! Model-based test: random append / read / checkpoint / restart / crash / fault sequences on
//! the simulated disk, checked against a model of what was acknowledged.
//!
//! Method: every message body carries its id; the model remembers each message's queue and
//! what its append returned. After every crash (synced bytes plus a torn or scattered part
//! of the rest survive) and every recovery, the store must serve every append acknowledged as
//! synced, and must serve a gap-free log: no acknowledged message below the highest served
//! offset may be missing (nothing after a corrupt record is served). Seeds are printed;
//! `RINGMQ_SEED` replays one run, `RINGMQ_ITERATIONS` sets the number of runs (default 40;
//! ≥ 10 000 for a long soak).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use common::*;
use ringmq_engine::disk::{CrashMode, SimDisk};
use ringmq_engine::{Durability, FlushMode, ManualClock, Store, StoreConfig};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    Synced,
    Written,
    Failed,
}

#[derive(Debug)]
struct Msg {
    topic: &'static str,
    queue_id: i32,
    len: usize,
    ack: Ack,
    /// Physical offset while the message is part of the log.
    phys: Option<u64>,
}

const TOPICS: [&str; 3] = ["A", "B", "%RETRY%group"];

fn body_of(id: u64, len: usize) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.resize(len.max(8), (id % 251) as u8);
    b
}

fn config(rng: &mut Rng) -> StoreConfig {
    let mut cfg = small_config("/m");
    cfg.segment_size = 8192;
    cfg.cq_entries_per_file = 8;
    cfg.index_entries_per_file = 16;
    cfg.recovery_chunk_bytes = 3000;
    cfg.flush.batch_bytes_max = 1 << (10 + rng.below(6));
    cfg.flush_mode = if rng.below(2) == 0 {
        FlushMode::Async
    } else {
        FlushMode::Sync
    };
    cfg.prealloc = [
        ringmq_engine::Prealloc::Create,
        ringmq_engine::Prealloc::Extend,
        ringmq_engine::Prealloc::Fill,
    ][rng.below(3) as usize];
    cfg.prepare_first_segment = rng.below(2) == 0;
    cfg
}

/// Reads every queue and checks it against the model; then makes the model match what the
/// store serves.
async fn check(
    store: &Store<SimDisk>,
    disk: &SimDisk,
    msgs: &mut BTreeMap<u64, Msg>,
    after_crash: bool,
    seed: u64,
) {
    let mut served: HashMap<u64, u64> = HashMap::new();
    for topic in TOPICS {
        for qid in 0..3 {
            // An injected fault may hit a read: the read fails, a retry succeeds.
            let all = match try_read_all(store, topic, qid).await {
                Ok(all) => all,
                Err(_) => {
                    disk.clear_failure();
                    read_all(store, topic, qid).await
                }
            };
            for (phys, body) in all {
                let id = u64::from_be_bytes(body[..8].try_into().unwrap());
                let m = msgs
                    .get(&id)
                    .unwrap_or_else(|| panic!("seed {seed}: served unknown message {id}"));
                assert_eq!(
                    (m.topic, m.queue_id, m.len.max(8)),
                    (topic, qid, body.len()),
                    "seed {seed}: message {id}"
                );
                assert_eq!(body, body_of(id, m.len), "seed {seed}: body of {id}");
                assert!(
                    served.insert(id, phys).is_none(),
                    "seed {seed}: {id} served twice"
                );
            }
        }
    }
    let max_phys = served.values().copied().max();
    let visible_upto = match store.config().flush_mode {
        FlushMode::Sync => store.durable_offset(),
        FlushMode::Async => u64::MAX,
    };
    for (id, m) in msgs.iter() {
        let present = served.contains_key(id);
        if m.ack == Ack::Synced {
            assert!(
                present,
                "seed {seed}: acknowledged synced message {id} lost"
            );
        }
        // Under FlushMode::Sync a message is visible only once durable.
        let visible = m.phys.is_some_and(|p| p < visible_upto);
        if m.ack == Ack::Written && !after_crash && visible {
            assert!(
                present,
                "seed {seed}: written message {id} not served without a crash"
            );
        }
        if let (Some(p), Some(maxp)) = (m.phys, max_phys)
            && m.ack != Ack::Failed
            && p < maxp
        {
            assert!(
                present,
                "seed {seed}: message {id} at {p} missing below served {maxp}: a gap"
            );
        }
    }
    for (id, m) in msgs.iter_mut() {
        m.phys = served.get(id).copied();
        if m.phys.is_none() {
            // Lost for good (never synced) or never written: it can no longer be required.
            m.ack = Ack::Failed;
        }
    }
}

async fn reopen(disk: &SimDisk, cfg: &StoreConfig, clock: &ManualClock) -> Store<SimDisk> {
    for _ in 0..3 {
        match Store::open(disk.clone(), cfg.clone(), Rc::new(clock.clone())).await {
            Ok(s) => return s,
            Err(e) => {
                if std::env::var("RINGMQ_TRACE").is_ok() {
                    eprintln!("  open failed: {e}");
                }
                disk.clear_failure()
            }
        }
    }
    Store::open(disk.clone(), cfg.clone(), Rc::new(clock.clone()))
        .await
        .unwrap()
}

async fn run(seed: u64) {
    let mut rng = Rng(seed | 1);
    let disk = SimDisk::new();
    let clock = ManualClock::new(1_700_000_000_000);
    let cfg = config(&mut rng);
    let mut store = Rc::new(reopen(&disk, &cfg, &clock).await);
    let mut msgs: BTreeMap<u64, Msg> = BTreeMap::new();
    let mut next_id = 0u64;
    let trace = std::env::var("RINGMQ_TRACE").is_ok();
    for step in 0..30 {
        clock.advance(rng.below(50) as i64);
        let op = rng.below(20);
        if trace {
            eprintln!(
                "step {step}: op {op} broken={} appended={} written={} durable={}",
                store.is_broken(),
                store.appended_offset(),
                store.written_offset(),
                store.durable_offset()
            );
        }
        match op {
            0..=11 => {
                let n = 1 + rng.below(8);
                let mut handles = Vec::new();
                for _ in 0..n {
                    let id = next_id;
                    next_id += 1;
                    let topic = TOPICS[rng.below(3) as usize];
                    let queue_id = rng.below(3) as i32;
                    let len = rng.below(700) as usize;
                    let durability = if rng.below(2) == 0 {
                        Durability::Synced
                    } else {
                        Durability::Written
                    };
                    msgs.insert(
                        id,
                        Msg {
                            topic,
                            queue_id,
                            len,
                            ack: Ack::Failed,
                            phys: None,
                        },
                    );
                    let s = store.clone();
                    let props = format!("KEYS\u{1}key{id}\u{2}UNIQ_KEY\u{1}U{id}\u{2}");
                    handles.push((
                        id,
                        durability,
                        compio::runtime::spawn(async move {
                            let body = body_of(id, len);
                            s.append(req(topic, queue_id, &body, &props, durability))
                                .await
                        }),
                    ));
                }
                for (id, durability, h) in handles {
                    let res = h.await.unwrap();
                    if trace {
                        eprintln!("  append {id} {durability:?}: {res:?}");
                    }
                    if let Ok(r) = res {
                        let m = msgs.get_mut(&id).unwrap();
                        m.ack = if durability == Durability::Synced {
                            Ack::Synced
                        } else {
                            Ack::Written
                        };
                        m.phys = Some(r.phys_offset.0);
                    }
                }
            }
            12 | 13 => {
                if !store.is_broken() {
                    check(&store, &disk, &mut msgs, false, seed).await;
                }
            }
            14 => {
                let _ = store.checkpoint().await;
            }
            15 => {
                disk.fail_call(1 + rng.below(6));
            }
            16 => {
                if store.is_broken() {
                    disk.clear_failure();
                    while store.recover().await.is_err() {
                        disk.clear_failure();
                    }
                    check(&store, &disk, &mut msgs, false, seed).await;
                }
            }
            17 => {
                let closed = if store.is_broken() {
                    None
                } else {
                    Some(store.close().await)
                };
                if trace {
                    eprintln!("  close: {closed:?}");
                }
                let clean = matches!(closed, Some(Ok(())));
                drop(store);
                disk.clear_failure();
                store = Rc::new(reopen(&disk, &cfg, &clock).await);
                check(&store, &disk, &mut msgs, !clean, seed).await;
            }
            _ => {
                drop(store);
                // Let in-flight I/O tasks of the dropped store finish (or fail) first.
                for _ in 0..4 {
                    compio::time::sleep(std::time::Duration::ZERO).await;
                }
                let mode = match rng.below(3) {
                    0 => CrashMode::DurableOnly,
                    1 => CrashMode::TornPrefix { seed: rng.next() },
                    _ => CrashMode::Scattered { seed: rng.next() },
                };
                disk.crash(mode);
                store = Rc::new(reopen(&disk, &cfg, &clock).await);
                check(&store, &disk, &mut msgs, true, seed).await;
                // Keys of surviving messages are still found.
                if let Some((id, m)) = msgs.iter().find(|(_, m)| m.phys.is_some()) {
                    let found = store
                        .query_by_key(m.topic, &format!("U{id}"), 0, i64::MAX, 4)
                        .await
                        .unwrap();
                    if trace && found.len() != 1 {
                        for f in disk.files() {
                            eprintln!(
                                "file {} {:?}",
                                f.display(),
                                disk.contents(&f).map(|c| c.len())
                            );
                        }
                        let k = store
                            .query_by_key(m.topic, &format!("key{id}"), 0, i64::MAX, 4)
                            .await
                            .unwrap();
                        eprintln!("{id} {} at {:?}: by key {}", m.topic, m.phys, k.len());
                    }
                    assert_eq!(found.len(), 1, "seed {seed}: key of {id} after crash");
                }
            }
        }
    }
    if trace {
        disk.clear_failure();
        if !store.is_broken() {
            check(&store, &disk, &mut msgs, false, seed).await;
            eprintln!("final pre-crash check ok");
        }
    }
    drop(store);
    disk.crash(CrashMode::TornPrefix { seed: rng.next() });
    let store = reopen(&disk, &cfg, &clock).await;
    if trace {
        for (id, m) in msgs.iter().filter(|(_, m)| m.ack == Ack::Synced) {
            let at = store
                .record_at(ringmq_engine::PhysOffset(m.phys.unwrap()))
                .await;
            eprintln!(
                "synced {id} {}/{} at {:?}: record {:?} offsets {:?}",
                m.topic,
                m.queue_id,
                m.phys,
                at.map(|r| r.map(|b| b.len())),
                store.queue_offsets(m.topic, m.queue_id)
            );
        }
        eprintln!("after crash appended={}", store.appended_offset());
    }
    check(&store, &disk, &mut msgs, true, seed).await;
}

#[test]
fn random_operations_against_the_model() {
    let iterations: u64 = std::env::var("RINGMQ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let fixed: Option<u64> = std::env::var("RINGMQ_SEED")
        .ok()
        .and_then(|v| v.parse().ok());
    let base = fixed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let runs = if fixed.is_some() { 1 } else { iterations };
    println!("model test: base seed {base} (replay one run with RINGMQ_SEED=<seed>), {runs} runs");
    let rt = compio::runtime::Runtime::new().unwrap();
    for i in 0..runs {
        let seed = base.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(run(seed))));
        if let Err(e) = result {
            eprintln!(
                "model test failed with seed {seed}: RINGMQ_SEED={seed} cargo test -p ringmq-engine --test model"
            );
            std::panic::resume_unwind(e);
        }
    }
}
