//! Durability under SYNC_FLUSH: every send the broker acknowledged survives `kill -9`.
//!
//! Method: a broker with `flushDiskType=SYNC_FLUSH` (2 shards) takes a load of synchronous
//! sends from 4 threads; once a random number of sends (seeded) has been acknowledged this
//! round, and after a random extra few milliseconds, the broker is killed with SIGKILL in the
//! middle of the load and restarted on the same store. "Acknowledged" = the client's send
//! returned SEND_OK, which under SYNC_FLUSH the broker may only answer after the data is
//! durable (broker-design.md, Flush). After the last round, a new consumer group reads the
//! topic from the first offset and must find every acknowledged body. Sends that failed
//! (in flight at the kill, or sent while the broker was down) may or may not be there, and
//! duplicates of them are fine.
//!
//! `RINGMQ_ITERATIONS` sets the number of kill/restart rounds (default 3; the issue asks that
//! 20 or more work); `RINGMQ_SEED` replays a run (the seed is printed).

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Cluster, Env, Inbox, PushOpts, create_topic, message, start_producer, start_push, unique,
    wait_topic_route,
};
use rocketmq_client_rust::SendStatus;

const SENDERS: usize = 4;
const QUEUES: i32 = 4;
const SHARDS: u32 = 2;

/// splitmix64: a tiny deterministic generator for the kill points.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn acknowledged_sync_flush_sends_survive_kill9() {
    let seed = env_u64("RINGMQ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let iterations = env_u64("RINGMQ_ITERATIONS").unwrap_or(3).max(1);
    eprintln!(
        "durability_kill9: RINGMQ_SEED={seed} RINGMQ_ITERATIONS={iterations} (set them to replay)"
    );
    let mut rng = Rng(seed);

    let mut cluster = Cluster::start(SHARDS, &["flushDiskType=SYNC_FLUSH"]);
    let ns = cluster.namesrv_addr();
    let env = Env::new("kill9");
    let topic = unique("Durable");
    create_topic(&env, &cluster, &topic, QUEUES);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();

    let started = Instant::now();
    for round in 0..iterations {
        if round > 0 {
            cluster.start_broker();
            wait_topic_route(&cluster.namesrv, &topic, SHARDS as usize, QUEUES);
        }
        eprintln!(
            "durability_kill9: round {round}: broker up at {:?}",
            started.elapsed()
        );
        let mut producer = start_producer(&env, &ns, &unique("kill9_producer"));
        let target = rng.range(20, 300) as usize;
        let jitter = Duration::from_millis(rng.range(0, 40));
        let before = acked.lock().expect("acked").len();
        let stop = AtomicBool::new(false);
        let failed = AtomicUsize::new(0);
        let not_ok = AtomicUsize::new(0);

        std::thread::scope(|s| {
            for t in 0..SENDERS {
                let (env, producer, topic) = (&env, &producer, &topic);
                let (stop, failed, not_ok, acked) = (&stop, &failed, &not_ok, &acked);
                s.spawn(move || {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let body = format!("r{round}-t{t}-{seq}");
                        seq += 1;
                        let msg = message(topic, Some("Durable"), Some(&body), &body);
                        match env.block_on(producer.send_with_timeout(msg, 3_000)) {
                            Ok(Some(r)) if r.send_status == SendStatus::SendOk => {
                                acked.lock().expect("acked").push(body);
                            }
                            Ok(_) => {
                                not_ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
            let end = Instant::now() + Duration::from_secs(60);
            while acked.lock().expect("acked").len() - before < target {
                if Instant::now() > end {
                    stop.store(true, Ordering::Relaxed);
                    panic!(
                        "round {round}: only {} of {target} sends acknowledged within 60 s \
                         ({} failed, {} not SEND_OK)",
                        acked.lock().expect("acked").len() - before,
                        failed.load(Ordering::Relaxed),
                        not_ok.load(Ordering::Relaxed)
                    );
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(jitter);
            cluster.kill9_broker();
            stop.store(true, Ordering::Relaxed);
        });
        eprintln!(
            "durability_kill9: round {round}: killed at {:?}",
            started.elapsed()
        );
        env.block_on(producer.shutdown());
        eprintln!(
            "durability_kill9: round {round}: killed after {} acknowledged sends (target {target}, \
             +{jitter:?}); {} failed, {} not SEND_OK",
            acked.lock().expect("acked").len() - before,
            failed.load(Ordering::Relaxed),
            not_ok.load(Ordering::Relaxed)
        );
    }

    cluster.start_broker();
    wait_topic_route(&cluster.namesrv, &topic, SHARDS as usize, QUEUES);
    let want: BTreeSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    let inbox = Inbox::default();
    let mut consumer = start_push(
        &env,
        &ns,
        PushOpts::clustering(&unique("kill9_verify"), &topic),
        &inbox,
    );
    let deadline = Duration::from_secs(60 + want.len() as u64 / 100);
    inbox.wait_for_all(&want, deadline, "verification after the last kill -9");
    env.block_on(consumer.shutdown());
    eprintln!(
        "durability_kill9: all {} acknowledged messages present ({} distinct bodies stored)",
        want.len(),
        inbox.distinct_bodies().len()
    );
}
