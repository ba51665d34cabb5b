//! The broker's configuration: RocketMQ `broker.conf` property names read through
//! [`crate::config::Config`], plus ringmq's own `shards` and `metricsPort`.
//!
//! Every value is checked here, once, with an error naming the key; the rest of the broker
//! takes a [`BrokerConfig`] and never parses text again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::config::{Config, ConfigError};

/// Keys `ringmq-broker` understands, with what they do (printed by `--help`).
pub const KEYS: &[(&str, &str)] = &[
    ("brokerClusterName", "cluster name (default DefaultCluster)"),
    (
        "brokerName",
        "broker name; with several shards shard k is <brokerName>-<k> (default broker-a)",
    ),
    ("brokerId", "0 = master (ringmq runs masters only)"),
    (
        "listenPort",
        "main port of shard 0; shard k uses listenPort+4k, its VIP port is that minus 2 \
         (default 10911)",
    ),
    (
        "namesrvAddr",
        "name servers, `;`-separated host:port list (also `-n ADDR`)",
    ),
    (
        "storePathRootDir",
        "data root; shard k keeps its files in <root>/shard-<k> (default ./data)",
    ),
    (
        "flushDiskType",
        "ASYNC_FLUSH (ack after write) or SYNC_FLUSH (ack after fdatasync) (default ASYNC_FLUSH)",
    ),
    (
        "autoCreateTopicEnable",
        "create unknown topics on send from TBW102 (default true)",
    ),
    (
        "autoCreateSubscriptionGroup",
        "create unknown consumer groups on first use (default true)",
    ),
    (
        "brokerIP1",
        "address advertised to clients (default: first non-loopback IPv4 of the host)",
    ),
    (
        "fileReservedTime",
        "hours a commit-log segment is kept (default 72)",
    ),
    (
        "deleteWhen",
        "hours of day when expired segments are deleted, `;`-separated (default 04)",
    ),
    (
        "diskMaxUsedSpaceRatio",
        "percent of disk use above which expired segments go at any hour (default 75)",
    ),
    (
        "defaultTopicQueueNums",
        "queues of TBW102, the most an auto-created topic gets (default 8)",
    ),
    (
        "maxMessageSize",
        "largest message body in bytes (default 4194304)",
    ),
    (
        "mappedFileSizeCommitLog",
        "commit-log segment size in bytes (default 1073741824)",
    ),
    (
        "warmMapedFileEnable",
        "write zeros over every commit-log segment before it is used, the first one of a \
         fresh store included, which the broker writes before it starts serving; under \
         SYNC_FLUSH later segments are pre-written anyway (default false)",
    ),
    (
        "flushIntervalCommitLog",
        "ms between syncs of written data under ASYNC_FLUSH (default 500)",
    ),
    (
        "writeBehindBytes",
        "ringmq: under ASYNC_FLUSH, start the kernel's writeback of each this many written \
         bytes instead of leaving all to the periodic flush (default 1048576; 0 = off)",
    ),
    (
        "registerNameServerPeriod",
        "ms between registrations with the name servers (default 30000)",
    ),
    (
        "maxTransferCountOnMessageInMemory",
        "most messages one pull response carries, whatever maxMsgNums asks (default 32; \
         up to 1024)",
    ),
    (
        "maxTransferBytesOnMessageInMemory",
        "most bytes one pull response carries; at least one message is always returned \
         (default 262144)",
    ),
    (
        "longPollingEnable",
        "hold pulls that find nothing until a message arrives (default true)",
    ),
    (
        "shortPollingTimeMills",
        "hold time of a pull when long polling is off, ms (default 1000)",
    ),
    (
        "brokerPermission",
        "PermName bits: 6 read+write, 4 read-only, 2 write-only (default 6)",
    ),
    (
        "regionId",
        "MSG_REGION of send responses (default DefaultRegion)",
    ),
    ("traceOn", "TRACE_ON of send responses (default true)"),
    (
        "messageDelayLevel",
        "delay levels of the DELAY property, e.g. `1s 5s 10s 30s 1m ... 2h` (units s/m/h/d, \
         at most 18 levels; default 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h)",
    ),
    (
        "timerMaxDelaySec",
        "how far ahead a 5.x timer message may be set, s (default 604800 = 7 days)",
    ),
    (
        "transactionCheckInterval",
        "ms between two scans for unresolved transactional half messages (default 30000)",
    ),
    (
        "transactionTimeOut",
        "age in ms of a half message before the broker asks its producer (default 6000)",
    ),
    (
        "transactionCheckMax",
        "check-backs of a half message before it is discarded (default 15)",
    ),
    (
        "shards",
        "ringmq: shards (pinned threads, each a logical broker) (default: CPU count)",
    ),
    (
        "metricsPort",
        "ringmq: HTTP port of /metrics (Prometheus text); 0 disables (default listenPort-1)",
    ),
];

/// Java broker keys accepted from existing config files but without effect in ringmq.
pub const IGNORED_KEYS: &[&str] = &[
    "brokerRole",
    "brokerIP2",
    "haListenPort",
    "storePathCommitLog",
    "storePathConsumeQueue",
    "storePathIndex",
    "storeCheckpoint",
    "abortFile",
    "rocketmqHome",
    "namesrvAddrs",
    "sendMessageThreadPoolNums",
    "pullMessageThreadPoolNums",
    "useReentrantLockWhenPutMessage",
    "waitTimeMillsInSendQueue",
    "transientStorePoolEnable",
    "fetchNamesrvAddrByAddressServer",
    "enablePropertyFilter",
    "clusterTopicEnable",
    "brokerTopicEnable",
    "traceTopicEnable",
    "mappedFileSizeConsumeQueue",
    "slaveReadEnable",
    "aclEnable",
    "enableDLegerCommitLog",
];

/// When a send is acknowledged (RocketMQ `flushDiskType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    /// After the record is written to the page cache.
    Async,
    /// After an `fdatasync` covering the record (group commit).
    Sync,
}

/// The broker's configuration, every value checked.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub listen_port: u16,
    pub namesrv_addrs: Vec<SocketAddr>,
    pub store_root: PathBuf,
    pub flush: FlushDiskType,
    pub auto_create_topic: bool,
    pub auto_create_subscription_group: bool,
    pub broker_ip: IpAddr,
    pub file_reserved_time_hours: u64,
    pub delete_when_hours: Vec<u8>,
    /// Percent, 10–95 as Java clamps it.
    pub disk_max_used_space_ratio: u32,
    pub default_topic_queue_nums: i32,
    pub max_message_size: usize,
    pub segment_size: u64,
    /// `warmMapedFileEnable`: every segment zero-filled before use, the first one included.
    pub warm_mapped_file: bool,
    pub flush_interval_ms: u64,
    /// `writeBehindBytes` (ringmq): the engine's `write_behind_bytes`.
    pub write_behind_bytes: u64,
    pub register_period_ms: u64,
    /// `maxTransferCountOnMessageInMemory`: most messages in one pull response.
    pub pull_msgs_max: usize,
    /// `maxTransferBytesOnMessageInMemory`: most bytes in one pull response.
    pub pull_bytes_max: u64,
    pub long_polling: bool,
    pub short_polling_ms: u64,
    pub broker_permission: i32,
    pub region_id: String,
    pub trace_on: bool,
    pub shards: usize,
    /// `None` when `metricsPort=0`.
    pub metrics_port: Option<u16>,
    /// Delay of each DELAY level in ms (`messageDelayLevel`), level 1 first.
    pub delay_levels_ms: Vec<u64>,
    /// `timerMaxDelaySec` in ms.
    pub timer_max_delay_ms: i64,
    /// `transactionCheckInterval` (ms).
    pub transaction_check_interval_ms: u64,
    /// `transactionTimeOut` (ms).
    pub transaction_timeout_ms: u64,
    /// `transactionCheckMax`.
    pub transaction_check_max: u32,
}

/// Port distance between shards: each shard keeps `port − 2` (VIP) and `port + 1`
/// (replication) free of other shards' ports (DESIGN.md).
pub const SHARD_PORT_STRIDE: u16 = 4;

impl BrokerConfig {
    pub fn from_config(config: &Config) -> Result<BrokerConfig, ConfigError> {
        let shards = match config.get::<usize>("shards")? {
            Some(0) => return Err(config.invalid("shards", "at least 1")),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let listen_port: u16 = config.get_or("listenPort", 10911)?;
        let last = u32::from(listen_port) + u32::from(SHARD_PORT_STRIDE) * (shards as u32 - 1);
        if listen_port < 3 || last + 1 > u32::from(u16::MAX) {
            return Err(config.invalid(
                "listenPort",
                "a port from 3 up to where listenPort + 4 × (shards − 1) + 1 still fits 65535",
            ));
        }
        let broker_id: i64 = config.get_or("brokerId", 0)?;
        if broker_id != 0 {
            return Err(config.invalid("brokerId", "0 (ringmq runs masters only)"));
        }
        let metrics_port: u16 = config.get_or("metricsPort", listen_port - 1)?;
        let flush = match config.raw("flushDiskType").map(str::trim) {
            None | Some("ASYNC_FLUSH") => FlushDiskType::Async,
            Some("SYNC_FLUSH") => FlushDiskType::Sync,
            Some(_) => {
                return Err(config.invalid("flushDiskType", "ASYNC_FLUSH or SYNC_FLUSH"));
            }
        };
        Ok(BrokerConfig {
            cluster_name: name(config, "brokerClusterName", "DefaultCluster")?,
            broker_name: name(config, "brokerName", "broker-a")?,
            broker_id,
            listen_port,
            namesrv_addrs: namesrv_addrs(config)?,
            store_root: PathBuf::from(config.get_or("storePathRootDir", "./data".to_owned())?),
            flush,
            auto_create_topic: config.get_or("autoCreateTopicEnable", true)?,
            auto_create_subscription_group: config.get_or("autoCreateSubscriptionGroup", true)?,
            broker_ip: match config.get::<IpAddr>("brokerIP1")? {
                Some(ip) => ip,
                None => default_broker_ip(),
            },
            file_reserved_time_hours: config.get_or("fileReservedTime", 72)?,
            delete_when_hours: delete_when(config)?,
            disk_max_used_space_ratio: ratio(config)?,
            default_topic_queue_nums: positive(config, "defaultTopicQueueNums", 8, 1024)? as i32,
            max_message_size: positive(config, "maxMessageSize", 4 << 20, 16 << 20)? as usize,
            segment_size: segment_size(config)?,
            warm_mapped_file: config.get_or("warmMapedFileEnable", false)?,
            flush_interval_ms: positive(config, "flushIntervalCommitLog", 500, 60_000)? as u64,
            write_behind_bytes: config.get_or("writeBehindBytes", 1u64 << 20)?,
            register_period_ms: register_period(config)?,
            pull_msgs_max: positive(config, "maxTransferCountOnMessageInMemory", 32, 1024)?
                as usize,
            pull_bytes_max: u64::from(positive(
                config,
                "maxTransferBytesOnMessageInMemory",
                256 << 10,
                64 << 20,
            )?),
            long_polling: config.get_or("longPollingEnable", true)?,
            short_polling_ms: positive(config, "shortPollingTimeMills", 1000, 60_000)? as u64,
            broker_permission: permission(config)?,
            region_id: name(config, "regionId", "DefaultRegion")?,
            trace_on: config.get_or("traceOn", true)?,
            shards,
            metrics_port: (metrics_port != 0).then_some(metrics_port),
            timer_max_delay_ms: {
                let sec: u64 = config.get_or(
                    "timerMaxDelaySec",
                    super::schedule::DEFAULT_TIMER_MAX_DELAY_SEC,
                )?;
                if sec == 0 || sec > 365 * 24 * 3600 {
                    return Err(config.invalid("timerMaxDelaySec", "1 s up to one year"));
                }
                sec as i64 * 1000
            },
            transaction_check_interval_ms: positive(
                config,
                "transactionCheckInterval",
                30_000,
                3_600_000,
            )? as u64,
            transaction_timeout_ms: config.get_or("transactionTimeOut", 6_000)?,
            transaction_check_max: positive(config, "transactionCheckMax", 15, 1_000)?,
            delay_levels_ms: match config.raw("messageDelayLevel") {
                None => super::schedule::parse_delay_levels(super::schedule::DEFAULT_DELAY_LEVELS)
                    .unwrap_or_default(),
                Some(text) => super::schedule::parse_delay_levels(text).map_err(|_| {
                    config.invalid(
                        "messageDelayLevel",
                        "1 to 18 blank-separated durations such as `1s 5s 1m 2h` (units s/m/h/d)",
                    )
                })?,
            },
        })
    }

    /// Broker name of shard `k`: exactly `brokerName` with one shard, else `brokerName-k`.
    pub fn shard_name(&self, k: usize) -> String {
        if self.shards == 1 {
            self.broker_name.clone()
        } else {
            format!("{}-{k}", self.broker_name)
        }
    }

    /// Main port of shard `k` (checked in [`BrokerConfig::from_config`] to fit).
    pub fn shard_port(&self, k: usize) -> u16 {
        self.listen_port + SHARD_PORT_STRIDE * k as u16
    }

    /// The address shard `k` advertises to clients and stores as STOREHOST.
    pub fn shard_addr(&self, k: usize) -> SocketAddr {
        SocketAddr::new(self.broker_ip, self.shard_port(k))
    }

    /// Engine root of shard `k`.
    pub fn shard_dir(&self, k: usize) -> PathBuf {
        self.store_root.join(format!("shard-{k}"))
    }
}

/// A non-empty string value (names end up in routes and file names).
fn name(config: &Config, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = config.get_or(key, default.to_owned())?;
    if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == ';') {
        return Err(config.invalid(key, "a non-empty name without blanks or `;`"));
    }
    Ok(value)
}

fn positive(config: &Config, key: &str, default: u32, max: u32) -> Result<u32, ConfigError> {
    let v: u32 = config.get_or(key, default)?;
    if v == 0 || v > max {
        return Err(config.invalid(key, "a positive number within its range"));
    }
    Ok(v)
}

fn namesrv_addrs(config: &Config) -> Result<Vec<SocketAddr>, ConfigError> {
    let Some(text) = config.raw("namesrvAddr") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let addr = part
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.find(SocketAddr::is_ipv4).or_else(|| part.parse().ok()));
        match addr {
            Some(a) => out.push(a),
            None => {
                return Err(config.invalid(
                    "namesrvAddr",
                    "a `;`-separated list of host:port name server addresses",
                ));
            }
        }
    }
    Ok(out)
}

fn delete_when(config: &Config) -> Result<Vec<u8>, ConfigError> {
    let text = config.get_or("deleteWhen", "04".to_owned())?;
    let mut hours = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u8>() {
            Ok(h) if h < 24 => hours.push(h),
            _ => return Err(config.invalid("deleteWhen", "hours 0–23 separated by `;`")),
        }
    }
    Ok(hours)
}

fn ratio(config: &Config) -> Result<u32, ConfigError> {
    let v: u32 = config.get_or("diskMaxUsedSpaceRatio", 75)?;
    if v > 100 {
        return Err(config.invalid("diskMaxUsedSpaceRatio", "a percentage (0–100)"));
    }
    // Java clamps the ratio to 10..=95.
    Ok(v.clamp(10, 95))
}

fn segment_size(config: &Config) -> Result<u64, ConfigError> {
    let v: u64 = config.get_or("mappedFileSizeCommitLog", 1 << 30)?;
    if !(64 * 1024..=1 << 40).contains(&v) {
        return Err(config.invalid(
            "mappedFileSizeCommitLog",
            "a size in bytes from 65536 to 2^40",
        ));
    }
    Ok(v)
}

fn register_period(config: &Config) -> Result<u64, ConfigError> {
    let v: u64 = config.get_or("registerNameServerPeriod", 30_000)?;
    if !(1_000..=60_000).contains(&v) {
        return Err(config.invalid(
            "registerNameServerPeriod",
            "milliseconds from 1000 to 60000",
        ));
    }
    Ok(v)
}

fn permission(config: &Config) -> Result<i32, ConfigError> {
    let v: i32 = config.get_or("brokerPermission", 6)?;
    if !(0..=7).contains(&v) {
        return Err(config.invalid("brokerPermission", "PermName bits 0–7"));
    }
    Ok(v)
}

/// The first non-loopback IPv4 address of the host (getifaddrs), else 127.0.0.1: what a
/// client on another host can most likely reach.
pub fn default_broker_ip() -> IpAddr {
    first_non_loopback_ipv4().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4)
}

fn first_non_loopback_ipv4() -> Option<Ipv4Addr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned; it stays valid until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        if !up || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points at a sockaddr of the family it names.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        if !ip.is_loopback() && !ip.is_unspecified() {
            found = Some(ip);
            break;
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_config(&Config::from_args(args.iter().copied()).unwrap())
    }

    #[test]
    fn defaults() {
        let c = cfg(&["shards=2"]).unwrap();
        assert_eq!(c.cluster_name, "DefaultCluster");
        assert_eq!(c.listen_port, 10911);
        assert_eq!(c.flush, FlushDiskType::Async);
        assert_eq!(c.delete_when_hours, vec![4]);
        assert_eq!(c.metrics_port, Some(10910));
        assert_eq!(c.shard_name(0), "broker-a-0");
        assert_eq!(c.shard_port(1), 10915);
        assert_eq!(c.shard_dir(1), PathBuf::from("./data/shard-1"));
        assert!(c.namesrv_addrs.is_empty());
        assert!(!c.warm_mapped_file);
        let one = cfg(&["shards=1", "brokerName=b"]).unwrap();
        assert_eq!(one.shard_name(0), "b");
    }

    #[test]
    fn values_parse() {
        let c = cfg(&[
            "shards=1",
            "namesrvAddr=127.0.0.1:9876; 127.0.0.1:9877",
            "flushDiskType=SYNC_FLUSH",
            "brokerIP1=10.1.2.3",
            "deleteWhen=04;16",
            "metricsPort=0",
            "diskMaxUsedSpaceRatio=99",
            "warmMapedFileEnable=true",
        ])
        .unwrap();
        assert!(c.warm_mapped_file);
        assert_eq!(c.namesrv_addrs.len(), 2);
        assert_eq!(c.flush, FlushDiskType::Sync);
        assert_eq!(c.shard_addr(0), "10.1.2.3:10911".parse().unwrap());
        assert_eq!(c.delete_when_hours, vec![4, 16]);
        assert_eq!(c.metrics_port, None);
        assert_eq!(c.disk_max_used_space_ratio, 95);
    }

    #[test]
    fn failure_path_keys() {
        let d = cfg(&["shards=1"]).unwrap();
        assert_eq!(d.delay_levels_ms.len(), 18);
        assert_eq!(d.delay_levels_ms.last(), Some(&7_200_000));
        assert_eq!(d.timer_max_delay_ms, 7 * 86_400_000);
        assert_eq!(d.transaction_check_interval_ms, 30_000);
        assert_eq!(d.transaction_timeout_ms, 6_000);
        assert_eq!(d.transaction_check_max, 15);
        let c = cfg(&[
            "shards=1",
            "messageDelayLevel=1s 2s 1m",
            "timerMaxDelaySec=60",
            "transactionCheckInterval=500",
            "transactionTimeOut=1000",
            "transactionCheckMax=3",
        ])
        .unwrap();
        assert_eq!(c.delay_levels_ms, vec![1_000, 2_000, 60_000]);
        assert_eq!(c.timer_max_delay_ms, 60_000);
        assert_eq!(c.transaction_check_interval_ms, 500);
        assert_eq!(c.transaction_timeout_ms, 1_000);
        assert_eq!(c.transaction_check_max, 3);
    }

    #[test]
    fn bad_values_name_the_key() {
        for arg in [
            "flushDiskType=SOMETIMES",
            "listenPort=65535",
            "shards=0",
            "namesrvAddr=nowhere",
            "deleteWhen=25",
            "brokerPermission=9",
            "maxMessageSize=0",
            "brokerId=1",
            "autoCreateTopicEnable=maybe",
            "brokerName=a b",
            "registerNameServerPeriod=10",
            "messageDelayLevel=1s 2x",
            "messageDelayLevel=",
            "timerMaxDelaySec=0",
            "transactionCheckInterval=0",
            "transactionCheckMax=x",
        ] {
            let err = cfg(&["shards=2", arg]).unwrap_err().to_string();
            let key = arg.split('=').next().unwrap();
            assert!(err.contains(key), "{arg}: {err}");
        }
    }
}
