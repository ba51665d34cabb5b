//! Test harness: start real ringmq processes on free ports and talk to them over TCP.
//!
//! # Layout
//! - this file: finding the built binaries, [`Process`] (spawn on a free port with a temp
//!   data dir, wait until it accepts, kill on drop, print its stderr tail when a test
//!   fails), [`wait_until`], and [`RawClient`], a blocking remoting client on
//!   `std::net::TcpStream` that sends a `Command` and reads frames back.
//! - [`namesrv`]: request builders for the name server (broker registration in JSON,
//!   binary and compressed form, route queries).
//! - [`broker`]: [`broker::BrokerProcess`] (`Process::broker`: a broker on free ports with
//!   a temp store, registered with a namesrv; kill -9 and restart on the same store) and
//!   request builders for the broker (send, pull, heartbeat, offsets, admin).
//!
//! # Invariants
//! - Tests wait on conditions with deadlines ([`wait_until`]), never on fixed sleeps, and
//!   never assert on timings.
//! - Every process is killed when its [`Process`] drops, even when the test panics.

pub mod broker;
pub mod namesrv;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ringmq_codec::{Command, frame};

/// How long a process may take to start accepting connections.
pub const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long a raw client waits for a response before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The path of a ringmq binary built next to this test executable (`target/<profile>/`),
/// or in `$RINGMQ_BIN_DIR`.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("RINGMQ_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // target/<profile>/deps/<test>-<hash>  →  target/<profile>/
            let exe = std::env::current_exe().expect("path of the test executable");
            let deps = exe.parent().expect("test executable has a directory");
            deps.parent().unwrap_or(deps).to_owned()
        }
    };
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{name} is not built: expected it at {}. Build it with `cargo build -p ringmq-net --bins` \
         (`cargo test --workspace` builds it too), or point RINGMQ_BIN_DIR at its directory.",
        path.display()
    );
    path
}

/// A port that was free a moment ago on 127.0.0.1. Another process may still take it before
/// ours binds; [`Process::start`] retries with a new port when that happens.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

/// A fresh directory under the system temp dir, removed on drop unless the test failed.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ringmq-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A running ringmq process listening on 127.0.0.1.
pub struct Process {
    name: String,
    child: Child,
    addr: SocketAddr,
    stderr_path: PathBuf,
    dir: TempDir,
    /// How it was started, for [`Process::restart`].
    bin: PathBuf,
    args: Vec<String>,
}

impl Process {
    /// Starts `ringmq-namesrv` on a free port with `extra` `key=value` settings; the KV
    /// config goes to the temp data dir.
    pub fn namesrv(extra: &[&str]) -> Process {
        Process::start("ringmq-namesrv", "listenPort", |dir| {
            let mut args = vec![
                "bindAddress=127.0.0.1".to_owned(),
                format!("kvConfigPath={}", dir.join("kvConfig.json").display()),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            args
        })
    }

    /// Starts binary `name` with `args(data_dir)` plus `port_key=<free port>`, and waits
    /// until the port accepts connections. A port taken by someone else in between is
    /// retried with a new one.
    pub fn start(name: &str, port_key: &str, args: impl Fn(&Path) -> Vec<String>) -> Process {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let dir = TempDir::new(name.trim_start_matches("ringmq-"));
            let port = free_port();
            let mut all = args(dir.path());
            all.push(format!("{port_key}={port}"));
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match Process::spawn(name, all, dir, addr) {
                Ok(process) => return process,
                Err(e) => last_err = e,
            }
        }
        panic!("{name} did not start: {last_err}");
    }

    /// Starts binary `name` with exactly `args` in `dir` (its working directory, which
    /// holds `stderr.log`) and waits until `addr` accepts connections.
    pub fn spawn(
        name: &str,
        args: Vec<String>,
        dir: TempDir,
        addr: SocketAddr,
    ) -> Result<Process, String> {
        let bin = binary(name);
        let stderr_path = dir.path().join("stderr.log");
        let child = spawn_child(&bin, &args, dir.path(), &stderr_path);
        let mut process = Process {
            name: name.to_owned(),
            child,
            addr,
            stderr_path,
            dir,
            bin,
            args,
        };
        process.wait_accepting()?;
        Ok(process)
    }

    /// Sends SIGKILL and reaps the process: no clean stop, as in a crash. Then waits until
    /// its port refuses connections: the kernel tears a dead process's io_uring down
    /// asynchronously, and until then a listening socket held by an in-flight accept still
    /// completes handshakes (and later resets them).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        wait_refused(self.addr);
    }

    /// Starts the same binary again with the same arguments and data dir (after
    /// [`Process::kill9`] or a clean stop; a live process is killed first) and waits until
    /// it accepts connections. Its stderr is appended to the same log.
    pub fn restart(&mut self) -> Result<(), String> {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill9();
        }
        self.child = spawn_child(&self.bin, &self.args, self.dir.path(), &self.stderr_path);
        self.wait_accepting()
    }

    /// Whether the process has exited (without reaping a live one).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_accepting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "exited with {status} before accepting; stderr:\n{}",
                    self.stderr()
                ));
            }
            if let Ok(s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) {
                // A connect to a local port nobody listens on yet can succeed by itself: when
                // the kernel picks that same port as the source (the ports come from the
                // ephemeral range), TCP's simultaneous open connects the socket to itself.
                // That is not the server; the next connect would be refused.
                if s.local_addr().ok() != s.peer_addr().ok() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(format!(
                    "not accepting on {} after {START_DEADLINE:?}; stderr:\n{}",
                    self.addr,
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has written to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with a valid signal number has no memory-safety preconditions.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}: {}", io::Error::last_os_error());
    }

    /// Waits for the process to exit, up to `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A new raw client connected to this process.
    pub fn client(&self) -> RawClient {
        RawClient::connect(self.addr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.stderr();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines
                .get(lines.len().saturating_sub(60)..)
                .unwrap_or_default();
            eprintln!(
                "---- last {} stderr lines of {} ({}) ----\n{}\n---- end of {} stderr ----",
                tail.len(),
                self.name,
                self.stderr_path.display(),
                tail.join("\n"),
                self.name
            );
        }
    }
}

/// Waits (up to [`START_DEADLINE`]) until nothing accepts connections on `addr`.
pub fn wait_refused(addr: SocketAddr) {
    wait_until(
        START_DEADLINE,
        &format!("{addr} refuses connections"),
        || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
    );
}

/// Spawns `bin` in `dir` with stderr appended to `stderr_path`.
fn spawn_child(bin: &Path, args: &[String], dir: &Path, stderr_path: &Path) -> Child {
    let stderr = File::options()
        .create(true)
        .append(true)
        .open(stderr_path)
        .expect("open the stderr log");
    std::process::Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()))
}

/// Polls `condition` until it holds; panics naming `what` after `deadline`.
pub fn wait_until(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while !condition() {
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A blocking remoting client: one TCP connection, frames encoded with ringmq-codec.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    next_opaque: i32,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        RawClient {
            stream,
            buf: BytesMut::new(),
            next_opaque: 1,
        }
    }

    /// Sends `request` with a fresh opaque and returns the response with that opaque.
    pub fn call(&mut self, mut request: Command) -> Command {
        request.opaque = self.next_opaque;
        self.next_opaque += 1;
        self.send(&request);
        loop {
            let cmd = self
                .read_frame()
                .expect("read a response")
                .unwrap_or_else(|| {
                    panic!(
                        "connection closed before the response to code {}",
                        request.code
                    )
                });
            if cmd.is_response() && cmd.opaque == request.opaque {
                return cmd;
            }
        }
    }

    /// Sends one command as is.
    pub fn send(&mut self, cmd: &Command) {
        let mut out = BytesMut::new();
        frame::encode(cmd, &mut out);
        self.send_raw(&out);
    }

    /// Writes raw bytes to the connection.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// Reads one frame; `Ok(None)` when the server closed the connection.
    pub fn read_frame(&mut self) -> io::Result<Option<Command>> {
        loop {
            match frame::decode(&self.buf, usize::MAX) {
                Ok(Some((cmd, used))) => {
                    let _ = self.buf.split_to(used);
                    return Ok(Some(cmd));
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Asserts that the server closes the connection without sending anything more.
    pub fn expect_closed(&mut self) {
        match self.read_frame() {
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
            Ok(Some(cmd)) => panic!("expected the connection to close, got a frame: {cmd:?}"),
            Err(e) => panic!("expected the connection to close, got: {e}"),
        }
    }
}
