//! `ringmq-broker`: the RocketMQ-compatible broker, one pinned shard per core.
//!
//! ```text
//! ringmq-broker [-c broker.conf] [-n namesrvAddr] [key=value ...]
//! ```
//!
//! The main thread reads the configuration, starts one thread per shard (each with its own
//! compio runtime, pinned to a CPU), the `/metrics` thread and a signal thread, then waits.
//! On SIGTERM or SIGINT every shard stops cleanly (unregisters from the name servers,
//! answers parked pulls, flushes and checkpoints its store, persists offsets) and the
//! process exits 0. A shard that fails to start stops the others and the process exits 1.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc;

use ringmq_net::broker::config::{BrokerConfig, IGNORED_KEYS, KEYS};
use ringmq_net::broker::metrics::{self, ShardMetrics};
use ringmq_net::broker::shard;
use ringmq_net::broker::stop::StopSignal;
use ringmq_net::config::Config;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn help() -> String {
    let mut text = String::from(
        "ringmq-broker: RocketMQ-compatible broker (thread-per-core, io_uring)\n\n\
         Usage: ringmq-broker [-c broker.conf] [-n namesrvAddr] [key=value ...]\n\n\
         -c FILE        read settings from a RocketMQ broker.conf (Java .properties)\n\
         -n ADDR        name servers, `;`-separated (same as namesrvAddr=ADDR)\n\
         key=value      override a setting; applied after the file\n\
         -h, --help     print this help\n\
         -V, --version  print the version\n\nSettings:\n",
    );
    for (key, what) in KEYS {
        text.push_str(&format!("  {key:<30}{what}\n"));
    }
    text.push_str(
        "\nLogging goes to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change the level.\n",
    );
    text
}

/// `-n ADDR` / `-nADDR` become `namesrvAddr=ADDR`; everything else goes to [`Config`].
fn translate_args(args: Vec<String>) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-n" {
            let addr = it
                .next()
                .ok_or("`-n` needs the name server address: `-n 127.0.0.1:9876`")?;
            out.push(format!("namesrvAddr={addr}"));
        } else if let Some(addr) = arg.strip_prefix("-n").filter(|a| !a.is_empty()) {
            out.push(format!("namesrvAddr={addr}"));
        } else {
            out.push(arg);
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", help());
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "-V" || a == "--version") {
        println!("ringmq-broker {VERSION}");
        return ExitCode::SUCCESS;
    }
    ringmq_net::init_logging();
    let config =
        match translate_args(args).and_then(|a| Config::from_args(a).map_err(|e| e.to_string())) {
            Ok(c) => c,
            Err(e) => return fail(&format!("{e} (see ringmq-broker --help)")),
        };
    let cfg = match BrokerConfig::from_config(&config) {
        Ok(cfg) => Arc::new(cfg),
        Err(e) => return fail(&e.to_string()),
    };
    config.log_unused_keys(KEYS, IGNORED_KEYS);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("ringmq-broker: {message}");
    ExitCode::FAILURE
}

/// What the main thread waits for.
enum Event {
    Ready(usize, Result<(), String>),
    Exited(usize, Result<(), String>),
    Signal(&'static str),
}

/// CPUs this process may run on (its affinity mask), in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is a plain bitset filled by sched_getaffinity for this thread.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        set
    };
    // SAFETY: CPU_ISSET only reads the initialized set.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread started after), and
/// starts a thread that waits for them with sigwait and reports the first.
fn watch_signals(events: mpsc::Sender<Event>) -> Result<(), String> {
    // SAFETY: plain libc signal-set manipulation on a local set.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(format!("cannot block signals: error {rc}"));
        }
        set
    };
    std::thread::Builder::new()
        .name("ringmq-signals".into())
        .spawn(move || {
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` holds blocked signals; sigwait stores the one received in `sig`.
            let rc = unsafe { libc::sigwait(&set, &mut sig) };
            let name = match (rc, sig) {
                (0, libc::SIGINT) => "SIGINT",
                _ => "SIGTERM",
            };
            let _ = events.send(Event::Signal(name));
            // A second signal while stopping means "now": exit without the clean stop.
            // SAFETY: as above.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                eprintln!("ringmq-broker: second signal, exiting without a clean stop");
                std::process::exit(130);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

fn run(cfg: Arc<BrokerConfig>) -> Result<(), String> {
    let (events, inbox) = mpsc::channel();
    watch_signals(events.clone())?;
    let cpus = allowed_cpus();
    let mut shards = Vec::new();
    for k in 0..cfg.shards {
        let metrics = Arc::new(ShardMetrics::default());
        let stop = Arc::new(StopSignal::default());
        let cpu = cpus.get(k % cpus.len().max(1)).copied();
        let handle = start_shard(
            cfg.clone(),
            k,
            cpu,
            metrics.clone(),
            stop.clone(),
            events.clone(),
        )?;
        shards.push((cfg.shard_name(k), metrics, stop, handle));
    }
    let mut startup_error = None;
    let mut ready = 0;
    while ready < cfg.shards && startup_error.is_none() {
        match inbox.recv() {
            Ok(Event::Ready(_, Ok(()))) => ready += 1,
            Ok(Event::Ready(k, Err(e))) | Ok(Event::Exited(k, Err(e))) => {
                startup_error = Some(format!("shard {k} failed to start: {e}"))
            }
            Ok(Event::Exited(k, Ok(()))) => {
                startup_error = Some(format!("shard {k} exited during start"))
            }
            Ok(Event::Signal(name)) => {
                startup_error = Some(format!("{name} received during start"))
            }
            Err(_) => startup_error = Some("every shard thread is gone".to_owned()),
        }
    }
    if startup_error.is_none()
        && let Some(port) = cfg.metrics_port
    {
        let list = shards
            .iter()
            .map(|(n, m, _, _)| (n.clone(), m.clone()))
            .collect();
        match metrics::serve(port, list) {
            Ok(addr) => tracing::info!("metrics on http://{addr}/metrics"),
            Err(e) => {
                startup_error = Some(format!(
                    "cannot listen on metricsPort {port}: {e} (metricsPort=0 disables it)"
                ))
            }
        }
    }
    if let Some(e) = startup_error {
        stop_all(&shards);
        join_all(shards, &inbox);
        return Err(e);
    }
    tracing::info!(
        shards = cfg.shards, cluster = %cfg.cluster_name, first_port = cfg.listen_port,
        flush = ?cfg.flush, namesrv = ?cfg.namesrv_addrs,
        "ringmq-broker {VERSION} started"
    );
    let outcome = loop {
        match inbox.recv() {
            Ok(Event::Signal(name)) => {
                tracing::info!("{name} received, stopping every shard");
                break Ok(());
            }
            Ok(Event::Exited(k, r)) => {
                break Err(format!(
                    "shard {k} stopped unexpectedly: {}",
                    r.err().unwrap_or_default()
                ));
            }
            Ok(Event::Ready(..)) => {}
            Err(_) => break Err("every shard thread is gone".to_owned()),
        }
    };
    stop_all(&shards);
    let failures = join_all(shards, &inbox);
    outcome?;
    if failures.is_empty() {
        tracing::info!("ringmq-broker stopped cleanly");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

type ShardEntry = (
    String,
    Arc<ShardMetrics>,
    Arc<StopSignal>,
    std::thread::JoinHandle<()>,
);

fn stop_all(shards: &[ShardEntry]) {
    for (_, _, stop, _) in shards {
        stop.stop();
    }
}

/// Waits for every shard thread; returns what went wrong (panics, failed clean stops).
fn join_all(shards: Vec<ShardEntry>, inbox: &mpsc::Receiver<Event>) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, _, _, handle) in shards {
        if handle.join().is_err() {
            failures.push(format!("shard {name} panicked"));
        }
    }
    while let Ok(event) = inbox.try_recv() {
        if let Event::Exited(_, Err(e)) = event {
            failures.push(e);
        }
    }
    failures
}

fn start_shard(
    cfg: Arc<BrokerConfig>,
    k: usize,
    cpu: Option<usize>,
    metrics: Arc<ShardMetrics>,
    stop: Arc<StopSignal>,
    events: mpsc::Sender<Event>,
) -> Result<std::thread::JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(format!("ringmq-shard-{k}"))
        .spawn(move || {
            let mut builder = compio::runtime::RuntimeBuilder::new();
            if let Some(cpu) = cpu {
                builder.thread_affinity(HashSet::from([cpu]));
            }
            let runtime = match builder.build() {
                Ok(rt) => rt,
                Err(e) => {
                    let msg = format!(
                        "cannot start the io_uring runtime: {e} (check kernel.io_uring_disabled \
                         and RLIMIT_MEMLOCK, see tuning/)"
                    );
                    let _ = events.send(Event::Ready(k, Err(msg)));
                    return;
                }
            };
            let ready_events = events.clone();
            let result = runtime.block_on(shard::run(cfg, k, metrics, stop, move |r| {
                let _ = ready_events.send(Event::Ready(k, r));
            }));
            let _ = events.send(Event::Exited(k, result));
        })
        .map_err(|e| format!("cannot start the thread of shard {k}: {e}"))
}
