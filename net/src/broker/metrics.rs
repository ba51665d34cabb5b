//! Per-shard counters and the `/metrics` endpoint (Prometheus text format 0.0.4).
//!
//! Each shard owns one cache-line-aligned [`ShardMetrics`] and bumps its relaxed atomics on
//! its own thread; only the metrics thread reads them, so no two cores write the same line.
//! The endpoint is a tiny HTTP/1.0 server on its own std thread: scrapes are rare and must
//! never touch a shard's runtime.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the fsync latency buckets, microseconds (the last bucket is +Inf).
pub const FSYNC_BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// A latency histogram with fixed buckets, written by one thread.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Count per bucket of [`FSYNC_BUCKETS_US`], plus one for +Inf (not cumulative).
    buckets: [AtomicU64; FSYNC_BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = FSYNC_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(FSYNC_BUCKETS_US.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(us, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// Counters of one shard. Aligned to a cache line so shards never share one.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ShardMetrics {
    pub send_requests: AtomicU64,
    pub send_messages: AtomicU64,
    pub send_bytes: AtomicU64,
    pub send_errors: AtomicU64,
    pub pull_requests: AtomicU64,
    pub pull_messages: AtomicU64,
    pub pull_bytes: AtomicU64,
    /// Bytes of pull bodies moved file → socket by splice (the zero-copy path). Shared with
    /// the transport, which counts them as they leave.
    pub zero_copy_bytes: Arc<AtomicU64>,
    /// Bytes of pull bodies copied into memory and written: from the page cache by the
    /// transport (the faster path for cached data, `remoting::splice`), or read by the store
    /// (no fd, or splice unavailable). Shared with the transport.
    pub copied_bytes: Arc<AtomicU64>,
    pub long_poll_waiters: AtomicU64,
    pub connections: AtomicU64,
    pub fsync: Histogram,
}

impl ShardMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// One metric family: name, type, help, and how to read it from a shard.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    read: fn(&ShardMetrics) -> u64,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "ringmq_send_requests_total",
        kind: "counter",
        help: "Send requests (10, 310, 320) received.",
        read: |m| m.send_requests.load(Relaxed),
    },
    Family {
        name: "ringmq_send_messages_total",
        kind: "counter",
        help: "Messages stored by sends.",
        read: |m| m.send_messages.load(Relaxed),
    },
    Family {
        name: "ringmq_send_bytes_total",
        kind: "counter",
        help: "Message body bytes stored by sends.",
        read: |m| m.send_bytes.load(Relaxed),
    },
    Family {
        name: "ringmq_send_errors_total",
        kind: "counter",
        help: "Send requests answered with an error code.",
        read: |m| m.send_errors.load(Relaxed),
    },
    Family {
        name: "ringmq_pull_requests_total",
        kind: "counter",
        help: "Pull requests (11, 361) answered.",
        read: |m| m.pull_requests.load(Relaxed),
    },
    Family {
        name: "ringmq_pull_messages_total",
        kind: "counter",
        help: "Messages returned by pulls.",
        read: |m| m.pull_messages.load(Relaxed),
    },
    Family {
        name: "ringmq_pull_bytes_total",
        kind: "counter",
        help: "Stored-record bytes returned by pulls.",
        read: |m| m.pull_bytes.load(Relaxed),
    },
    Family {
        name: "ringmq_pull_zero_copy_bytes_total",
        kind: "counter",
        help: "Pull body bytes sent file to socket by splice.",
        read: |m| m.zero_copy_bytes.load(Relaxed),
    },
    Family {
        name: "ringmq_pull_copied_bytes_total",
        kind: "counter",
        help: "Pull body bytes sent through a user-space copy (cached data; no splice).",
        read: |m| m.copied_bytes.load(Relaxed),
    },
    Family {
        name: "ringmq_long_poll_waiters",
        kind: "gauge",
        help: "Pulls parked until a message arrives.",
        read: |m| m.long_poll_waiters.load(Relaxed),
    },
    Family {
        name: "ringmq_connections",
        kind: "gauge",
        help: "Open client connections.",
        read: |m| m.connections.load(Relaxed),
    },
];

/// The exposition text for all shards; `names[k]` labels shard k.
pub fn render(shards: &[(String, Arc<ShardMetrics>)]) -> String {
    let mut out = String::new();
    for f in FAMILIES {
        let _ = writeln!(
            out,
            "# HELP {} {}\n# TYPE {} {}",
            f.name, f.help, f.name, f.kind
        );
        for (k, (name, m)) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}{{shard=\"{k}\",broker=\"{name}\"}} {}",
                f.name,
                (f.read)(m)
            );
        }
    }
    let h = "ringmq_fsync_seconds";
    let _ = writeln!(
        out,
        "# HELP {h} Commit-log fdatasync latency (a durable write: write and sync together).\n# TYPE {h} histogram"
    );
    for (k, (name, m)) in shards.iter().enumerate() {
        let labels = format!("shard=\"{k}\",broker=\"{name}\"");
        let mut cumulative = 0;
        for (i, b) in m.fsync.buckets.iter().enumerate() {
            cumulative += b.load(Relaxed);
            let le = FSYNC_BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{h}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = m.fsync.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{h}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{h}_count{{{labels}}} {}", m.fsync.count());
    }
    out
}

/// Binds `0.0.0.0:port` and serves `/metrics` on a new thread until the process exits.
pub fn serve(port: u16, shards: Vec<(String, Arc<ShardMetrics>)>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("ringmq-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &shards) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
        })?;
    Ok(addr)
}

/// Reads one request head (bounded) and answers it.
fn answer(mut stream: TcpStream, shards: &[(String, Arc<ShardMetrics>)]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || head.len() > 16 * 1024 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) =
        if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render(shards),
            )
        } else {
            (
                "404 Not Found",
                "text/plain",
                "ringmq serves /metrics only\n".to_owned(),
            )
        };
    let header = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes())?;
    stream.write_all(body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let m = Arc::new(ShardMetrics::default());
        m.send_messages.fetch_add(3, Relaxed);
        m.zero_copy_bytes.fetch_add(4096, Relaxed);
        m.fsync.observe(Duration::from_micros(700));
        m.fsync.observe(Duration::from_secs(3));
        let text = render(&[("b-0".into(), m.clone()), ("b-1".into(), Arc::default())]);
        assert!(
            text.contains("ringmq_send_messages_total{shard=\"0\",broker=\"b-0\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("ringmq_pull_zero_copy_bytes_total{shard=\"0\",broker=\"b-0\"} 4096")
        );
        assert!(text.contains("ringmq_send_messages_total{shard=\"1\",broker=\"b-1\"} 0"));
        assert!(
            text.contains(
                "ringmq_fsync_seconds_bucket{shard=\"0\",broker=\"b-0\",le=\"0.0005\"} 0"
            )
        );
        assert!(
            text.contains("ringmq_fsync_seconds_bucket{shard=\"0\",broker=\"b-0\",le=\"0.001\"} 1")
        );
        assert!(
            text.contains("ringmq_fsync_seconds_bucket{shard=\"0\",broker=\"b-0\",le=\"+Inf\"} 2")
        );
        assert!(text.contains("ringmq_fsync_seconds_count{shard=\"0\",broker=\"b-0\"} 2"));
        assert!(text.contains("# TYPE ringmq_long_poll_waiters gauge"));
    }

    #[test]
    fn http_endpoint() {
        let m = Arc::new(ShardMetrics::default());
        m.pull_requests.fetch_add(7, Relaxed);
        let addr = serve(0, vec![("b".into(), m)]).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        };
        let ok = get("/metrics");
        assert!(ok.starts_with("HTTP/1.0 200 OK"), "{ok}");
        assert!(ok.contains("ringmq_pull_requests_total{shard=\"0\",broker=\"b\"} 7"));
        assert!(get("/other").starts_with("HTTP/1.0 404"));
    }
}
