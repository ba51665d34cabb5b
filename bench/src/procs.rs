//! The processes a suite drives: ringmq's namesrv and broker (restartable with another flush
//! mode), the rocketmq-rust peer, and what is read from them from outside: resident memory
//! from `/proc/<pid>/status`, counters from the broker's `/metrics` endpoint, and many idle
//! client connections that each sent one heartbeat.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_codec::body::heartbeat::{HeartbeatData, ProducerData};
use ringmq_codec::body::route::{ClusterInfo, MASTER_ID};
use ringmq_codec::codes::{request, response};
use ringmq_codec::frame;

/// How long a freshly started server may take to listen.
const LISTEN_WAIT: Duration = Duration::from_secs(60);

/// A child process killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    child: Child,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Proc, String> {
        let out = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: prctl is async-signal-safe. The child dies with the suite, even when the
        // suite itself is killed and cannot run its cleanup.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the process to stop (SIGTERM), waits up to `grace`, then kills it.
    pub fn stop(mut self, grace: Duration) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Fails if the process has already exited (it died at start-up, say).
    pub fn alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something accepts TCP connections on `addr`, while `proc` is alive.
pub fn wait_listening(proc: &mut Proc, addr: SocketAddr) -> Result<(), String> {
    let t = Instant::now();
    while t.elapsed() < LISTEN_WAIT {
        proc.alive()?;
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{} does not listen on {addr} after {LISTEN_WAIT:?}",
        proc.name
    ))
}

/// Resident memory of `pid` that is not page cache: `RssAnon + RssShmem` of
/// `/proc/<pid>/status`, in bytes (file-backed pages such as a mapped commit log are
/// excluded, as the kernel can drop them).
pub fn rss_anon_shmem(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    parse_rss(&text).ok_or_else(|| format!("{path} has no RssAnon/RssShmem lines"))
}

/// `RssAnon + RssShmem` (kB in the file) in bytes.
pub fn parse_rss(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("RssAnon:")? + field("RssShmem:")?) * 1024)
}

/// One GET of `http://addr/metrics`; the body.
pub fn scrape(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("no /metrics at {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("reading /metrics from {addr}: {e}"))?;
    if !text.starts_with("HTTP/1.0 200") && !text.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "/metrics at {addr} answered {}",
            text.lines().next().unwrap_or("")
        ));
    }
    Ok(text)
}

/// The sum over every label set of the samples named exactly `name` (Prometheus text).
pub fn metric_sum(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let metric = key.split('{').next().unwrap_or(key);
        if metric == name
            && let Ok(v) = value.trim().parse::<f64>()
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// Opens `n` connections spread round-robin over `addrs`; each sends one HEART_BEAT of its
/// own client id (a producer of `group`) and waits for the answer. The connections stay open
/// while the returned vector lives.
pub fn heartbeat_connections(
    addrs: &[SocketAddr],
    n: usize,
    group: &str,
) -> Result<Vec<TcpStream>, String> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let Some(addr) = addrs.get(i % addrs.len().max(1)) else {
            return Err("no broker address to connect to".into());
        };
        let mut s = TcpStream::connect_timeout(addr, Duration::from_secs(5))
            .map_err(|e| format!("connection {i} to {addr}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let body = HeartbeatData {
            client_id: format!("127.0.0.1@ringmq-bench-rss-{}-{i}", std::process::id()),
            producer_data_set: vec![ProducerData {
                group_name: group.to_owned(),
            }],
            ..HeartbeatData::default()
        };
        let mut cmd = ringmq_codec::Command::request(request::HEART_BEAT);
        cmd.opaque = i as i32;
        cmd.body = body.to_json().into();
        let code = call_blocking(&mut s, &cmd)
            .map_err(|e| format!("heartbeat {i}: {e}"))?
            .code;
        if code != response::SUCCESS {
            return Err(format!("heartbeat {i} answered code {code}"));
        }
        conns.push(s);
    }
    Ok(conns)
}

/// Writes one request and reads frames until its response.
fn call_blocking(
    s: &mut TcpStream,
    cmd: &ringmq_codec::Command,
) -> io::Result<ringmq_codec::Command> {
    let mut out = BytesMut::new();
    frame::encode(cmd, &mut out);
    s.write_all(&out)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match frame::decode(&buf, ringmq_codec::FRAME_MAX_DEFAULT) {
            Ok(Some((resp, _))) if resp.opaque == cmd.opaque => return Ok(resp),
            Ok(Some((_, used))) => {
                buf.drain(..used.min(buf.len()));
                continue;
            }
            Ok(None) => {}
            Err(e) => return Err(io::Error::other(e.to_string())),
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Waits until the name server at `ns` lists a master at every address of `want` (a broker
/// listens before its first registration lands).
pub fn wait_registered(ns: SocketAddr, want: &[SocketAddr]) -> Result<(), String> {
    let t = Instant::now();
    let mut last = String::new();
    while t.elapsed() < LISTEN_WAIT {
        match masters(ns) {
            Ok(have) if want.iter().all(|w| have.contains(w)) => return Ok(()),
            Ok(have) => last = format!("masters so far: {have:?}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "the name server {ns} does not list every shard {want:?} after {LISTEN_WAIT:?} ({last})"
    ))
}

/// Master addresses the name server knows (GET_BROKER_CLUSTER_INFO).
fn masters(ns: SocketAddr) -> Result<Vec<SocketAddr>, String> {
    let mut s =
        TcpStream::connect_timeout(&ns, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut cmd = ringmq_codec::Command::request(request::GET_BROKER_CLUSTER_INFO);
    cmd.opaque = 1;
    let resp = call_blocking(&mut s, &cmd).map_err(|e| e.to_string())?;
    if resp.code != response::SUCCESS {
        return Err(format!("GET_BROKER_CLUSTER_INFO answered {}", resp.code));
    }
    let info = ClusterInfo::from_json(&resp.body).map_err(|e| e.to_string())?;
    Ok(info
        .broker_addr_table
        .values()
        .filter_map(|b| b.broker_addrs.get(&MASTER_ID))
        .filter_map(|a| a.parse().ok())
        .collect())
}

/// Where and how the suite starts ringmq.
#[derive(Debug, Clone)]
pub struct RingmqSetup {
    pub bin_dir: PathBuf,
    pub work: PathBuf,
    pub namesrv_port: u16,
    pub broker_port: u16,
    pub shards: usize,
}

impl RingmqSetup {
    pub fn namesrv_addr(&self) -> String {
        format!("127.0.0.1:{}", self.namesrv_port)
    }

    pub fn metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.broker_port - 1))
    }

    /// The listen port of every shard (ports spaced by the broker's stride of 4).
    pub fn shard_addrs(&self) -> Vec<SocketAddr> {
        (0..self.shards)
            .map(|k| SocketAddr::from(([127, 0, 0, 1], self.broker_port + 4 * k as u16)))
            .collect()
    }

    pub fn start_namesrv(&self) -> Result<Proc, String> {
        let mut cmd = Command::new(self.bin_dir.join("ringmq-namesrv"));
        cmd.arg(format!("listenPort={}", self.namesrv_port));
        let mut p = Proc::spawn("ringmq-namesrv", cmd, &self.work.join("namesrv.log"))?;
        wait_listening(
            &mut p,
            SocketAddr::from(([127, 0, 0, 1], self.namesrv_port)),
        )?;
        Ok(p)
    }

    /// Starts a broker on a fresh store `store` with `flush` (ASYNC_FLUSH / SYNC_FLUSH).
    pub fn start_broker(&self, store: &str, flush: &str) -> Result<Proc, String> {
        let dir = self.work.join(store);
        let _ = std::fs::remove_dir_all(&dir);
        let mut cmd = Command::new(self.bin_dir.join("ringmq-broker"));
        cmd.args([
            "-n".to_owned(),
            self.namesrv_addr(),
            format!("listenPort={}", self.broker_port),
            "brokerIP1=127.0.0.1".into(),
            format!("storePathRootDir={}", dir.display()),
            format!("flushDiskType={flush}"),
            format!("shards={}", self.shards),
            // The pull row asks 256 messages per pull; Java's default cap of 32 would end
            // each pull at 32 KiB instead of at the 256 KiB byte cap.
            "maxTransferCountOnMessageInMemory=1024".into(),
        ]);
        if flush == "SYNC_FLUSH" {
            // A fresh store's first segment is only extended, so each of its group commits
            // also commits block allocation; every later segment is pre-written. Without
            // this the sync rows would measure a state a broker leaves after its first GiB
            // per shard, not its steady state (the broker writes the zeros before it listens).
            cmd.arg("warmMapedFileEnable=true");
        }
        let log = self.work.join(format!("broker-{store}.log"));
        let mut p = Proc::spawn("ringmq-broker", cmd, &log)?;
        for a in self.shard_addrs() {
            wait_listening(&mut p, a)?;
        }
        let ns = SocketAddr::from(([127, 0, 0, 1], self.namesrv_port));
        wait_registered(ns, &self.shard_addrs())?;
        Ok(p)
    }
}

/// Starts the rocketmq-rust name server and broker (crates.io 1.0.0 binaries in `bin_dir`)
/// with a store under `work/peer`, as bench/peer-compare.sh does. Returns (namesrv, broker,
/// namesrv address).
pub fn start_peer(
    bin_dir: &Path,
    work: &Path,
    ns_port: u16,
    broker_port: u16,
    flush: &str,
) -> Result<(Proc, Proc, String), String> {
    let home = work.join("peer");
    let conf = home.join("conf");
    std::fs::create_dir_all(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
    let ns = format!("127.0.0.1:{ns_port}");
    let store = home.join("store");
    let toml = format!(
        "[broker]\nnamesrvAddr = \"{ns}\"\nbrokerIp1 = \"127.0.0.1\"\nlistenPort = {broker_port}\n\
         storePathRootDir = \"{store}\"\n\n[broker.brokerServerConfig]\nbindAddress = \"127.0.0.1\"\n\n\
         [broker.brokerIdentity]\nbrokerName = \"peer-a\"\nbrokerClusterName = \"DefaultCluster\"\n\
         brokerId = 0\n\n[store]\nstoreType = \"LocalFile\"\nbrokerRole = \"ASYNC_MASTER\"\n\
         flushDiskType = \"{flush}\"\nstorePathRootDir = \"{store}\"\nhaListenAddress = \"127.0.0.1\"\n\
         haListenPort = {}\n",
        broker_port + 1,
        store = store.display()
    );
    let conf_file = conf.join("broker.toml");
    std::fs::write(&conf_file, toml).map_err(|e| format!("{}: {e}", conf_file.display()))?;
    let mut ncmd = Command::new(bin_dir.join("rocketmq-namesrv-rust"));
    ncmd.args([
        "--listenPort",
        &ns_port.to_string(),
        "--bindAddress",
        "127.0.0.1",
    ])
    .arg("--rocketmqHome")
    .arg(&home)
    .arg("--kvConfigPath")
    .arg(home.join("kv.json"))
    .env("ROCKETMQ_HOME", &home)
    .env("ROCKETMQ_SECURITY_PROFILE", "development-insecure-loopback");
    let mut n = Proc::spawn(
        "rocketmq-namesrv-rust",
        ncmd,
        &work.join("peer-namesrv.log"),
    )?;
    wait_listening(&mut n, SocketAddr::from(([127, 0, 0, 1], ns_port)))?;
    let mut bcmd = Command::new(bin_dir.join("rocketmq-broker-rust"));
    bcmd.arg("-c")
        .arg(&conf_file)
        .args(["-n", &ns])
        .env("ROCKETMQ_HOME", &home)
        .env("ROCKETMQ_SECURITY_PROFILE", "development-insecure-loopback");
    let mut b = Proc::spawn("rocketmq-broker-rust", bcmd, &work.join("peer-broker.log"))?;
    wait_listening(&mut b, SocketAddr::from(([127, 0, 0, 1], broker_port)))?;
    Ok((n, b, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_anon_plus_shmem() {
        let status = "Name:\tx\nVmRSS:\t  9000 kB\nRssAnon:\t  1000 kB\nRssFile:\t  7000 kB\n\
                      RssShmem:\t  24 kB\n";
        assert_eq!(parse_rss(status), Some(1024 * 1024));
        assert_eq!(parse_rss("VmRSS: 1 kB\n"), None);
        assert!(rss_anon_shmem(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn metric_sums_over_shards_and_ignores_comments_and_prefixes() {
        let text = "HTTP/1.0 200 OK\r\n\r\n# HELP a_total x\n# TYPE a_total counter\n\
                    a_total{shard=\"0\"} 3\na_total{shard=\"1\"} 4.5\na_total_more{shard=\"0\"} 100\n";
        assert_eq!(metric_sum(text, "a_total"), Some(7.5));
        assert_eq!(metric_sum(text, "b_total"), None);
    }
}
