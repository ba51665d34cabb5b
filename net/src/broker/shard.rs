//! One shard: a logical RocketMQ broker on one pinned thread, with its own compio runtime
//! (its own io_uring), listeners, store, topic/group tables, client registry, consumer
//! offsets and long-poll table. Nothing here is shared with another shard.
//!
//! ```text
//!  thread "ringmq-shard-k" (pinned to CPU k % ncpu)
//!   runtime ── main listener (listenPort+4k) ─┐
//!           ── VIP listener  (listenPort+4k−2)┴─► ShardHandler ─► dispatch ─► handlers/*
//!           ── registration loop (namesrvs)      │                    │
//!           ── offsets/groups persist (5 s)      └── Shard (RefCells) ┴─► Store (engine)
//!           ── client expiry scan (10 s)
//!           ── delayed-message delivery (schedule.rs)
//!           ── transaction check-back (transaction.rs)
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use ringmq_codec::message::UniqKeyGenerator;

use super::clients::ClientRegistry;
use super::config::{BrokerConfig, FlushDiskType};
use super::groups::GroupTable;
use super::handlers::heartbeat::notify_changed as heartbeat_notify;
use super::locks::LockTable;
use super::longpoll::{Signal, Waiters};
use super::metrics::ShardMetrics;
use super::offsets::{OffsetTable, write_atomically};
use super::register::{Kick, NamesrvLink};
use super::schedule::Scheduler;
use super::stop::StopSignal;
use super::storage::{self, ShardStore};
use super::topics::{Created, TopicSettings, TopicTable};
use super::transaction::TxTable;
use super::{dispatch, register};
use crate::remoting::{ConnOptions, Connection, Handler, Reply, Server, ServerOptions};
use ringmq_codec::Command;

pub const TOPICS_FILE: &str = "topics.json";
pub const OFFSETS_FILE: &str = "consumerOffset.json";
pub const GROUPS_FILE: &str = "subscriptionGroup.json";

/// How often consumer offsets and group configs are written when changed (Java: 5 s).
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5);
/// How often silent clients are looked for (Java: 10 s).
pub const CLIENT_SCAN_INTERVAL: Duration = Duration::from_secs(10);

/// The state of one shard. Owned by its thread; every table is a `RefCell` borrowed only
/// between awaits.
pub struct Shard {
    pub index: usize,
    /// Broker name this shard registers as.
    pub name: String,
    /// The client-reachable address (brokerIP1 : main port), also STOREHOST.
    pub addr: SocketAddr,
    pub cfg: Arc<BrokerConfig>,
    pub store: ShardStore,
    pub topics: RefCell<TopicTable>,
    pub groups: RefCell<GroupTable>,
    pub clients: RefCell<ClientRegistry>,
    pub offsets: RefCell<OffsetTable>,
    pub locks: RefCell<LockTable>,
    /// Shared with the store's arrival hook, which fires the parked pulls' signals.
    pub waiters: Rc<RefCell<Waiters<Rc<Signal>>>>,
    /// Live connections by id, for broker → client requests.
    pub conns: RefCell<HashMap<u64, Connection>>,
    pub metrics: Arc<ShardMetrics>,
    pub namesrvs: Vec<NamesrvLink>,
    /// Wakes the registration loop to register now (a topic changed).
    pub register_now: Kick,
    /// Delay-level cursors (`config/delayOffset.json`).
    pub scheduler: Scheduler,
    /// Unresolved transactional half messages (rebuilt from the logs at open).
    pub transactions: RefCell<TxTable>,
    uniq: RefCell<UniqKeyGenerator>,
    rng: Cell<u64>,
    started: Instant,
    config_dir: PathBuf,
    config_writer: ConfigWriter,
}

/// Writes the shard's config files (`config/*.json`) on a thread of its own, in order.
///
/// Why: a small file write + rename took 10–12 ms on the shard thread while the commit log
/// was being written hard (the `slow blocking work` debug lines, `ringmq-bench produce
/// --send batch`), and every request of the shard waited that long. The periodic persist
/// now hands its bytes over and goes on; a caller that needs the file on disk before it
/// answers (topic changes, offset resets, stop) still waits for its write. One thread per
/// shard keeps the writes of a file in order and never races on its temporary file.
struct ConfigWriter {
    jobs: std::sync::mpsc::Sender<ConfigJob>,
}

struct ConfigJob {
    path: PathBuf,
    bytes: Vec<u8>,
    sync: bool,
    /// Present when the caller waits for the write.
    done: Option<std::sync::mpsc::SyncSender<std::io::Result<()>>>,
}

/// Whether a config write must be on disk before the caller goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// Wait for the write (and with `sync`, the fsync).
    Wait,
    /// Queue the write and go on (the periodic persist).
    Background,
}

impl ConfigWriter {
    fn start(shard: usize) -> std::io::Result<ConfigWriter> {
        let (jobs, rx) = std::sync::mpsc::channel::<ConfigJob>();
        std::thread::Builder::new()
            .name(format!("ringmq-config-{shard}"))
            .spawn(move || {
                for job in rx {
                    let start = Instant::now();
                    let r = write_atomically(&job.path, &job.bytes, job.sync);
                    note_blocking(shard, "config write (own thread)", &job.path.display().to_string(), job.bytes.len(), start);
                    match job.done {
                        Some(done) => {
                            let _ = done.send(r);
                        }
                        None => {
                            if let Err(e) = r {
                                tracing::error!(shard, path = %job.path.display(), error = %e, "cannot persist broker state");
                            }
                        }
                    }
                }
            })?;
        Ok(ConfigWriter { jobs })
    }

    fn write(
        &self,
        path: PathBuf,
        bytes: Vec<u8>,
        sync: bool,
        how: Persist,
    ) -> std::io::Result<()> {
        let (done, wait) = match how {
            Persist::Wait => {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                (Some(tx), Some(rx))
            }
            Persist::Background => (None, None),
        };
        let job = ConfigJob {
            path,
            bytes,
            sync,
            done,
        };
        if self.jobs.send(job).is_err() {
            return Err(std::io::Error::other("the config writer thread is gone"));
        }
        match wait {
            Some(rx) => rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("the config writer thread is gone"))),
            None => Ok(()),
        }
    }
}

impl Shard {
    /// Wall-clock milliseconds (store times, DataVersion, subscription versions).
    pub fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Monotonic milliseconds since the shard started (client liveness: a wall-clock step
    /// must not expire every client).
    pub fn mono_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A UNIQ_KEY for a message that came without one (spec §4.7).
    pub fn next_uniq_key(&self) -> String {
        self.uniq.borrow_mut().next_id(self.now_ms())
    }

    /// A pseudo-random number (xorshift): the broker's pick of a queue for `queueId < 0`.
    pub fn random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }

    /// A topic was created, changed or deleted: persist the table and register at once in
    /// the background (spec §10 item 16).
    pub fn topics_changed(&self, what: &str) {
        self.topics_persist(what);
        self.register_now.kick();
    }

    /// Persists a changed topic table; the caller registers.
    pub fn topics_persist(&self, what: &str) {
        tracing::info!(shard = self.index, broker = %self.name, "{what}; registering with the name servers");
        self.persist_topics(false);
    }

    pub fn created(&self, created: Option<Created>) {
        if let Some(Created(cfg)) = created {
            self.topics_changed(&format!(
                "topic {} created with {} queues, perm {}",
                cfg.topic_name, cfg.write_queue_nums, cfg.perm
            ));
        }
    }

    fn persist_topics(&self, sync: bool) {
        let start = Instant::now();
        let bytes = self.topics.borrow().encode();
        note_blocking(
            self.index,
            "topic table encode",
            TOPICS_FILE,
            bytes.len(),
            start,
        );
        self.write_config(TOPICS_FILE, bytes, sync, Persist::Wait);
    }

    /// Writes changed offsets and group configs, waiting for the writes.
    pub fn persist_tables(&self, sync: bool) {
        self.persist_tables_as(sync, Persist::Wait);
    }

    /// Writes changed offsets and group configs, waiting or not as `how` says.
    fn persist_tables_as(&self, sync: bool, how: Persist) {
        let offsets = {
            let mut t = self.offsets.borrow_mut();
            (sync || t.is_dirty()).then(|| t.take_snapshot())
        };
        if let Some(bytes) = offsets {
            self.write_config(OFFSETS_FILE, bytes, sync, how);
        }
        let groups = {
            let mut t = self.groups.borrow_mut();
            (sync || t.is_dirty()).then(|| t.take_snapshot())
        };
        if let Some(bytes) = groups {
            self.write_config(GROUPS_FILE, bytes, sync, how);
        }
    }

    /// A small config file, written through a temporary and a rename by the shard's config
    /// writer thread ([`ConfigWriter`]).
    fn write_config(&self, file: &str, bytes: Vec<u8>, sync: bool, how: Persist) {
        let start = Instant::now();
        let len = bytes.len();
        let path = self.config_dir.join(file);
        if let Err(e) = self.config_writer.write(path.clone(), bytes, sync, how) {
            tracing::error!(shard = self.index, path = %path.display(), error = %e, "cannot persist broker state");
        }
        note_blocking(self.index, "config write", file, len, start);
    }

    pub fn connection(&self, id: u64) -> Option<Connection> {
        self.conns.borrow().get(&id).cloned()
    }
}

/// Blocking work on the shard thread slower than this is logged at debug level (the same
/// bound as the store's slow operations, [`storage::SLOW_OP`]).
const SLOW_BLOCKING: Duration = storage::SLOW_OP;

/// Logs blocking work on the shard thread that took longer than [`SLOW_BLOCKING`]: every
/// request on the shard waited that long.
pub fn note_blocking(shard: usize, what: &str, detail: &str, bytes: usize, start: Instant) {
    let took = start.elapsed();
    if took > SLOW_BLOCKING {
        tracing::debug!(
            shard,
            what,
            detail,
            bytes,
            took_ms = took.as_secs_f64() * 1e3,
            "slow blocking work on the shard thread"
        );
    }
}

/// How often the stall watchdog looks at the clock.
const WATCHDOG_TICK: Duration = Duration::from_millis(10);

/// Logs (debug) each time the shard thread comes back to its timer more than
/// [`SLOW_BLOCKING`] late: something held the thread (a long handler, a blocking call) or the
/// host gave the core to someone else. Cheap: one timer per 10 ms. Read together with the
/// "slow store operation" and "slow blocking work" lines, it tells a stall on the thread
/// from a slow I/O completion.
async fn stall_watchdog(shard: usize) {
    loop {
        let start = Instant::now();
        compio::time::sleep(WATCHDOG_TICK).await;
        let late = start.elapsed().saturating_sub(WATCHDOG_TICK);
        if late > SLOW_BLOCKING {
            tracing::debug!(
                shard,
                late_ms = late.as_secs_f64() * 1e3,
                "shard thread stalled (timer fired late)"
            );
        }
    }
}

/// The transport's view of a shard.
pub struct ShardHandler(pub Rc<Shard>);

impl Handler for ShardHandler {
    fn on_open(&self, conn: &Connection) {
        self.0.conns.borrow_mut().insert(conn.id().0, conn.clone());
        self.0.metrics.connections.fetch_add(1, Relaxed);
    }

    fn on_request(&self, conn: &Connection, request: Command, reply: Reply) {
        let start = Instant::now();
        let code = request.code;
        dispatch::dispatch(&self.0, conn, request, reply);
        if start.elapsed() > SLOW_BLOCKING {
            note_blocking(self.0.index, "request handler", &code.to_string(), 0, start);
        }
    }

    fn on_close(&self, conn: &Connection) {
        self.0.conns.borrow_mut().remove(&conn.id().0);
        self.0.metrics.connections.fetch_sub(1, Relaxed);
        let changed = self.0.clients.borrow_mut().connection_closed(conn.id().0);
        heartbeat_notify(&self.0, &changed);
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Opens shard `k`: store, tables from `config/`, metrics.
async fn open(
    cfg: Arc<BrokerConfig>,
    k: usize,
    metrics: Arc<ShardMetrics>,
) -> Result<Rc<Shard>, String> {
    let config_dir = cfg.shard_dir(k).join("config");
    std::fs::create_dir_all(&config_dir)
        .map_err(|e| format!("cannot create {}: {e}", config_dir.display()))?;
    let store = storage::open(&cfg, k, metrics.clone()).await?;
    let name = cfg.shard_name(k);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let settings = TopicSettings {
        cluster_name: cfg.cluster_name.clone(),
        broker_name: name.clone(),
        auto_create: cfg.auto_create_topic,
        default_queue_nums: cfg.default_topic_queue_nums,
        broker_permission: cfg.broker_permission,
    };
    let load = |file: &str| read_optional(&config_dir.join(file));
    let topics = TopicTable::open(&settings, load(TOPICS_FILE)?.as_deref(), now_ms)
        .map_err(|e| format!("shard {k}: {TOPICS_FILE}: {e}"))?;
    let groups = GroupTable::open(
        cfg.auto_create_subscription_group,
        load(GROUPS_FILE)?.as_deref(),
    )
    .map_err(|e| format!("shard {k}: {GROUPS_FILE}: {e}"))?;
    let offsets = match load(OFFSETS_FILE)? {
        Some(bytes) => OffsetTable::decode(&bytes).map_err(|e| format!("shard {k}: {e}"))?,
        None => OffsetTable::default(),
    };
    let scheduler = Scheduler::open(&config_dir, cfg.flush == FlushDiskType::Sync)
        .map_err(|e| format!("shard {k}: {e}"))?;
    let config_writer = ConfigWriter::start(k)
        .map_err(|e| format!("shard {k}: cannot start the config writer thread: {e}"))?;
    let addr = cfg.shard_addr(k);
    let seed = (now_ms as u64) ^ ((k as u64 + 1) << 32) ^ u64::from(std::process::id());
    let shard = Rc::new(Shard {
        index: k,
        name,
        addr,
        namesrvs: cfg
            .namesrv_addrs
            .iter()
            .map(|a| NamesrvLink::new(*a))
            .collect(),
        cfg: cfg.clone(),
        store,
        topics: RefCell::new(topics),
        groups: RefCell::new(groups),
        clients: RefCell::new(ClientRegistry::default()),
        offsets: RefCell::new(offsets),
        locks: RefCell::new(LockTable::default()),
        waiters: Rc::new(RefCell::new(Waiters::default())),
        conns: RefCell::new(HashMap::new()),
        metrics,
        register_now: Kick::default(),
        scheduler,
        transactions: RefCell::new(TxTable::default()),
        uniq: RefCell::new(UniqKeyGenerator::new(
            cfg.broker_ip,
            std::process::id(),
            seed as i32,
        )),
        rng: Cell::new(seed | 1),
        started: Instant::now(),
        config_dir,
        config_writer,
    });
    let waiters = shard.waiters.clone();
    let m = shard.metrics.clone();
    shard.store.set_arrival_hook(Box::new(move |a| {
        let woken = waiters.borrow_mut().on_arrival(
            &a.topic,
            a.queue_id,
            a.max_offset.0 as i64,
            a.last_tag_code,
        );
        if !woken.is_empty() {
            m.long_poll_waiters.fetch_sub(woken.len() as u64, Relaxed);
        }
        for signal in woken {
            signal.fire();
        }
    }));
    shard.persist_topics(true);
    Ok(shard)
}

/// How long a port still in use is retried at start. After a crash (kill -9) the kernel
/// tears the dead process's io_uring down asynchronously, and its listening sockets stay
/// bound until then; a restart right away must wait for them, not fail.
const BIND_RETRY_FOR: Duration = Duration::from_secs(10);

/// Binds a listener of the shard, retrying while the port is still in use.
async fn bind(shard: &Rc<Shard>, port: u16) -> std::io::Result<Server> {
    let opts = ServerOptions {
        conn: ConnOptions {
            spliced_bytes: Some(shard.metrics.zero_copy_bytes.clone()),
            copied_bytes: Some(shard.metrics.copied_bytes.clone()),
            ..ConnOptions::default()
        },
        ..ServerOptions::default()
    };
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let deadline = Instant::now() + BIND_RETRY_FOR;
    let mut warned = false;
    loop {
        match Server::bind(addr, opts.clone()) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !std::mem::replace(&mut warned, true) {
                    tracing::warn!(
                        shard = shard.index,
                        port,
                        "port in use; retrying for up to {BIND_RETRY_FOR:?} (a crashed broker's sockets may still be closing)"
                    );
                }
                compio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

/// Runs shard `k` until `stop` fires: opens it, reports readiness through `ready`, serves,
/// then stops cleanly (unregister, answer parked pulls, close the store, persist).
pub async fn run(
    cfg: Arc<BrokerConfig>,
    k: usize,
    metrics: Arc<ShardMetrics>,
    stop: Arc<StopSignal>,
    ready: impl FnOnce(Result<(), String>),
) -> Result<(), String> {
    let started = async {
        let shard = open(cfg.clone(), k, metrics).await?;
        super::transaction::rebuild(&shard)
            .await
            .map_err(|e| format!("shard {k}: rebuilding transactions: {e}"))?;
        let port = cfg.shard_port(k);
        let main = bind(&shard, port)
            .await
            .map_err(|e| format!("shard {k}: cannot listen on port {port}: {e}"))?;
        Ok::<_, String>((shard, main))
    };
    let (shard, main) = match started.await {
        Ok(v) => v,
        Err(e) => {
            ready(Err(e.clone()));
            return Err(e);
        }
    };
    let handler = Rc::new(ShardHandler(shard.clone()));
    let mut listeners = vec![compio::runtime::spawn(main.serve(handler.clone()))];
    let vip = cfg.shard_port(k) - 2;
    let (vip_shard, vip_handler) = (shard.clone(), handler.clone());
    listeners.push(compio::runtime::spawn(async move {
        match bind(&vip_shard, vip).await {
            Ok(server) => server.serve(vip_handler).await,
            Err(e) => tracing::warn!(shard = k, port = vip, error = %e, "cannot listen on the VIP port (used by clients ≤ 4.5.0); going on without it"),
        }
    }));
    tracing::info!(
        shard = k, broker = %shard.name, addr = %shard.addr, vip_port = vip,
        store = %cfg.shard_dir(k).display(), topics = shard.topics.borrow().len(),
        "shard serving"
    );
    let background = vec![
        compio::runtime::spawn(register::registration_loop(shard.clone())),
        compio::runtime::spawn(persist_loop(shard.clone())),
        compio::runtime::spawn(client_scan_loop(shard.clone())),
        compio::runtime::spawn(super::schedule::delivery_loop(shard.clone())),
        compio::runtime::spawn(super::transaction::check_loop(shard.clone())),
    ];
    let watchdog =
        tracing::enabled!(tracing::Level::DEBUG).then(|| compio::runtime::spawn(stall_watchdog(k)));
    ready(Ok(()));
    stop.wait().await;
    tracing::info!(shard = k, broker = %shard.name, "stopping");
    drop(background);
    drop(watchdog);
    register::unregister_all(&shard).await;
    drop(listeners);
    release_parked_pulls(&shard).await;
    let closed = shard.store.close().await;
    shard.persist_tables(true);
    shard.persist_topics(true);
    for conn in shard.conns.borrow().values() {
        conn.close();
    }
    match closed {
        Ok(()) => {
            tracing::info!(shard = k, broker = %shard.name, "stopped: store flushed and checkpointed");
            Ok(())
        }
        Err(e) => Err(format!("shard {k}: closing the store failed: {e}")),
    }
}

/// Fires every parked pull so it answers (PULL_NOT_FOUND with the full header) before the
/// shard goes, then gives those answers a moment to be written.
async fn release_parked_pulls(shard: &Rc<Shard>) {
    let parked = shard.waiters.borrow_mut().drain(None);
    shard.metrics.long_poll_waiters.store(0, Relaxed);
    let n = parked.len();
    for s in parked {
        s.fire();
    }
    if n > 0 {
        compio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn persist_loop(shard: Rc<Shard>) {
    loop {
        compio::time::sleep(PERSIST_INTERVAL).await;
        shard.persist_tables_as(false, Persist::Background);
    }
}

async fn client_scan_loop(shard: Rc<Shard>) {
    loop {
        compio::time::sleep(CLIENT_SCAN_INTERVAL).await;
        shard.locks.borrow_mut().expire(shard.mono_ms());
        let changed = shard
            .clients
            .borrow_mut()
            .expire(shard.mono_ms(), super::clients::CHANNEL_EXPIRED_TIMEOUT_MS);
        if !changed.is_empty() {
            tracing::info!(shard = shard.index, groups = ?changed, "expired silent consumers");
        }
        heartbeat_notify(&shard, &changed);
    }
}
