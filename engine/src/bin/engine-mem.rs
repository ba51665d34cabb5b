//! engine-mem: how much anonymous memory one shard's store keeps per queue and per message.
//!
//! ```text
//! engine-mem [--dir /tmp/ringmq-mem] [--topics 100] [--queues-per-topic 100]
//!            [--messages 4000000] [--body 1024] [--appenders 256]
//! ```
//! Phases, each followed by a reading of `VmRSS` and `RssAnon` from `/proc/self/status`:
//! 1. `open` of an empty store;
//! 2. one message in every queue (10 000 by default): the fixed cost of a queue;
//! 3. `--messages` messages round-robin over all queues (each with TAGS and a UNIQ_KEY, so
//!    every message has a consume-queue and a key-index entry), before any checkpoint;
//! 4. after `Store::checkpoint` (entries persisted to their files);
//! 5. `close`, then a child process opens the store again and reports its own readings
//!    (what a restarted broker holds).
//!
//! Prints one final line `RESULT {json}`. Page cache is not counted in `RssAnon`; it is in
//! `VmRSS` only for mapped files, and the engine maps none.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use ringmq_engine::disk::{SyncMethod, UringDisk};
use ringmq_engine::{AppendRequest, Durability, FlushMode, Store, StoreConfig, SystemClock};
use serde_json::{Value, json};

struct Args {
    dir: PathBuf,
    topics: usize,
    queues_per_topic: usize,
    messages: u64,
    body: usize,
    appenders: usize,
}

fn parse_args() -> Option<Args> {
    let mut a = Args {
        dir: PathBuf::from("/tmp/ringmq-mem"),
        topics: 100,
        queues_per_topic: 100,
        messages: 4_000_000,
        body: 1024,
        appenders: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(val()),
            "--topics" => a.topics = val().parse().unwrap(),
            "--queues-per-topic" => a.queues_per_topic = val().parse().unwrap(),
            "--messages" => a.messages = val().parse().unwrap(),
            "--body" => a.body = val().parse().unwrap(),
            "--appenders" => a.appenders = val().parse().unwrap(),
            "--child-open" => {
                child_open(&PathBuf::from(val()));
                return None;
            }
            "--help" | "-h" => {
                println!("see the doc comment of engine/src/bin/engine-mem.rs");
                return None;
            }
            other => panic!("unknown option {other}"),
        }
    }
    Some(a)
}

/// (VmRSS, RssAnon) in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn reading(phase: &str, start: Instant) -> Value {
    let (vm, anon) = rss();
    println!(
        "{phase:>28}: VmRSS {:>8.1} MiB, RssAnon {:>8.1} MiB ({:.1} s)",
        vm as f64 / 1048576.0,
        anon as f64 / 1048576.0,
        start.elapsed().as_secs_f64()
    );
    json!({"vm_rss": vm, "rss_anon": anon})
}

fn config(dir: &Path) -> StoreConfig {
    let mut cfg = StoreConfig::new(dir);
    cfg.flush_mode = FlushMode::Async;
    cfg
}

async fn open(dir: &Path) -> Store<UringDisk> {
    Store::open(
        UringDisk::new(SyncMethod::default()).unwrap(),
        config(dir),
        Rc::new(SystemClock),
    )
    .await
    .unwrap()
}

/// Appends messages `from..to` round-robin over the queues with `appenders` tasks.
async fn fill(store: &Rc<Store<UringDisk>>, a: &Args, names: &Rc<Vec<String>>, from: u64, to: u64) {
    let body = Rc::new(vec![0x42u8; a.body]);
    let next = Rc::new(std::cell::Cell::new(from));
    let queues = (a.topics * a.queues_per_topic) as u64;
    let per_topic = a.queues_per_topic as u64;
    let mut tasks = Vec::new();
    for _ in 0..a.appenders {
        let (store, body, next, names) = (store.clone(), body.clone(), next.clone(), names.clone());
        tasks.push(compio::runtime::spawn(async move {
            loop {
                let i = next.get();
                if i >= to {
                    break;
                }
                next.set(i + 1);
                let q = i % queues;
                let props = format!("TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}{i:032X}\u{2}");
                let req = AppendRequest {
                    topic: &names[(q / per_topic) as usize],
                    queue_id: (q % per_topic) as i32,
                    body: &body,
                    flag: 0,
                    sys_flag: 0,
                    born_timestamp: 0,
                    born_host: "127.0.0.1:40000".parse().unwrap(),
                    properties: &props,
                    reconsume_times: 0,
                    prepared_transaction_offset: 0,
                    tag_code: 0,
                    durability: Durability::Written,
                };
                store.append(req).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The child: opens the store, reports, exits without closing.
fn child_open(dir: &Path) {
    let rt = compio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let store = open(dir).await;
        let (vm, anon) = rss();
        println!(
            "REOPEN {} {} {} {}",
            vm,
            anon,
            store.queue_count(),
            start.elapsed().as_secs_f64()
        );
        std::io::stdout().flush().unwrap();
        std::mem::forget(store);
    });
}

fn main() {
    let Some(a) = parse_args() else { return };
    let _ = std::fs::remove_dir_all(&a.dir);
    std::fs::create_dir_all(&a.dir).unwrap();
    let queues = (a.topics * a.queues_per_topic) as u64;
    let rt = compio::runtime::Runtime::new().unwrap();
    let start = Instant::now();
    let base = reading("process start", start);
    let mut out = rt.block_on(async {
        let store = Rc::new(open(&a.dir).await);
        let opened = reading("open (empty)", start);
        let names: Rc<Vec<String>> =
            Rc::new((0..a.topics).map(|t| format!("MemTopic{t:03}")).collect());
        fill(&store, &a, &names, 0, queues).await;
        let one_each = reading("one message per queue", start);
        fill(&store, &a, &names, queues, queues + a.messages).await;
        let filled = reading("all messages", start);
        // The checkpoint persists entries below the durable end: let the periodic flush
        // make everything durable first (async flush mode), so the reading shows what stays
        // in memory once the files are up to date.
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while store.durable_offset() < store.written_offset() && Instant::now() < deadline {
            compio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        store.checkpoint().await.unwrap();
        let checkpointed = reading("after checkpoint", start);
        // What the allocator keeps of freed memory is not the store's: trim to tell apart.
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe { libc::malloc_trim(0) };
        let trimmed = reading("after checkpoint + malloc_trim", start);
        store.close().await.unwrap();
        let per_queue = one_each["rss_anon"].as_u64().unwrap() as f64
            - opened["rss_anon"].as_u64().unwrap() as f64;
        let per_msg_filled = (filled["rss_anon"].as_u64().unwrap() as f64
            - one_each["rss_anon"].as_u64().unwrap() as f64)
            / a.messages as f64;
        let per_msg_cp = (trimmed["rss_anon"].as_u64().unwrap() as f64
            - one_each["rss_anon"].as_u64().unwrap() as f64)
            / a.messages as f64;
        json!({
            "queues": queues,
            "messages": a.messages,
            "body_bytes": a.body,
            "log_bytes": store.written_offset(),
            "start": base,
            "open": opened,
            "one_message_per_queue": one_each,
            "all_messages": filled,
            "after_checkpoint": checkpointed,
            "after_checkpoint_trimmed": trimmed,
            "anon_bytes_per_queue": per_queue / queues as f64,
            "anon_bytes_per_message_before_checkpoint": per_msg_filled,
            "anon_bytes_per_message_after_checkpoint": per_msg_cp,
        })
    });
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--child-open", a.dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.wait().unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.first() == Some(&"REOPEN") && f.len() == 5 {
        let vm: u64 = f[1].parse().unwrap();
        let anon: u64 = f[2].parse().unwrap();
        println!(
            "{:>28}: VmRSS {:>8.1} MiB, RssAnon {:>8.1} MiB ({} queues, open {} s)",
            "reopened (child process)",
            vm as f64 / 1048576.0,
            anon as f64 / 1048576.0,
            f[3],
            f[4]
        );
        out["reopen"] = json!({"vm_rss": vm, "rss_anon": anon, "queues": f[3].parse::<u64>().unwrap(), "open_seconds": f[4].parse::<f64>().unwrap()});
    }
    println!("RESULT {out}");
}
