//! The name server: an in-memory route table served over the remoting transport.
//!
//! # Layout
//! - [`route`]: the pure route table (register, unregister, heartbeat, expiry, routes,
//!   cluster info, topic lists, KV config); time is an argument.
//! - [`server`]: the request handler on the transport, the expiry scan task, KV persistence.
//! - this file: the process configuration ([`NamesrvConfig`]) and [`run`].
//!
//! # Invariants
//! - The route table is only touched from the namesrv's single thread.
//! - Every registration change is logged at info, one line each.
//! - A broker is dropped when its connection closes, or when it has not registered (or sent
//!   BROKER_HEARTBEAT) for its timeout: `heartbeatTimeoutMillis` from its registration, else
//!   `brokerExpiredTimeoutMillis` (120 s). The scan runs every `scanNotActiveBrokerInterval`.

pub mod route;
pub mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::remoting::{ConnOptions, Server, ServerOptions};

pub use route::RouteTable;
pub use server::{Namesrv, NamesrvSettings};

/// Keys `ringmq-namesrv` understands, with RocketMQ's names where RocketMQ has one.
pub const KEYS: &[(&str, &str)] = &[
    ("listenPort", "TCP port to listen on (default 9876)"),
    ("bindAddress", "address to bind (default 0.0.0.0)"),
    (
        "scanNotActiveBrokerInterval",
        "milliseconds between expiry scans (default 5000)",
    ),
    (
        "brokerExpiredTimeoutMillis",
        "ringmq extension: expiry for brokers that give no heartbeatTimeoutMillis \
         (default 120000)",
    ),
    (
        "serverChannelMaxIdleTimeSeconds",
        "close a connection idle this long; 0 = never (default 120)",
    ),
    (
        "kvConfigPath",
        "file persisting the KV config (default $HOME/namesrv/kvConfig.json)",
    ),
    (
        "enableAllTopicList",
        "answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER (default true)",
    ),
];

/// Java namesrv keys accepted from existing config files but without effect here.
pub const IGNORED_KEYS: &[&str] = &[
    "rocketmqHome",
    "configStorePath",
    "productEnvName",
    "clusterTest",
    "orderMessageEnable",
    "serverWorkerThreads",
    "serverCallbackExecutorThreads",
    "serverSelectorThreads",
    "serverOnewaySemaphoreValue",
    "serverAsyncSemaphoreValue",
    "serverSocketSndBufSize",
    "serverSocketRcvBufSize",
    "serverPooledByteBufAllocatorEnable",
    "useEpollNativeSelector",
];

/// The namesrv's configuration, read from `-c FILE` and `key=value` arguments.
#[derive(Debug, Clone)]
pub struct NamesrvConfig {
    pub listen: SocketAddr,
    pub scan_interval: Duration,
    pub broker_expired_ms: u64,
    pub idle_timeout: Option<Duration>,
    pub kv_config_path: Option<PathBuf>,
    pub enable_all_topic_list: bool,
}

impl NamesrvConfig {
    pub fn from_config(config: &Config) -> Result<NamesrvConfig, ConfigError> {
        let port: u16 = config.get_or("listenPort", 9876)?;
        let ip: IpAddr = config.get_or("bindAddress", IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
        let scan_ms: u64 = config.get_or("scanNotActiveBrokerInterval", 5000)?;
        if scan_ms == 0 {
            return Err(config.invalid(
                "scanNotActiveBrokerInterval",
                "a positive number of milliseconds",
            ));
        }
        let idle_s: u64 = config.get_or("serverChannelMaxIdleTimeSeconds", 120)?;
        let kv_config_path = match config.get::<String>("kvConfigPath")? {
            Some(path) => Some(PathBuf::from(path)),
            None => std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join("namesrv").join("kvConfig.json")),
        };
        Ok(NamesrvConfig {
            listen: SocketAddr::new(ip, port),
            scan_interval: Duration::from_millis(scan_ms),
            broker_expired_ms: config.get_or(
                "brokerExpiredTimeoutMillis",
                route::BROKER_EXPIRED_DEFAULT_MS,
            )?,
            idle_timeout: (idle_s > 0).then(|| Duration::from_secs(idle_s)),
            kv_config_path,
            enable_all_topic_list: config.get_or("enableAllTopicList", true)?,
        })
    }
}

/// Binds, then serves until the returned future is dropped (the caller races it with a
/// shutdown signal). Fails only if the listener or the KV config cannot be set up.
pub async fn run(cfg: NamesrvConfig) -> Result<(), String> {
    let mut table = RouteTable::new(cfg.broker_expired_ms);
    if let Some(path) = &cfg.kv_config_path {
        table.kv_load(server::load_kv(path)?);
    }
    let opts = ServerOptions {
        conn: ConnOptions {
            idle_timeout: cfg.idle_timeout,
            ..ConnOptions::default()
        },
        ..ServerOptions::default()
    };
    let server = Server::bind(cfg.listen, opts)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = server
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(
        "ringmq-namesrv listening on {local} (broker expiry {} ms, scan every {:?})",
        cfg.broker_expired_ms,
        cfg.scan_interval
    );
    let namesrv = Rc::new(Namesrv::new(
        table,
        NamesrvSettings {
            kv_config_path: cfg.kv_config_path.clone(),
            all_topic_list_disabled: !cfg.enable_all_topic_list,
        },
    ));
    compio::runtime::spawn(server::scan_loop(namesrv.clone(), cfg.scan_interval)).detach();
    server.serve(namesrv).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let cfg = NamesrvConfig::from_config(&Config::default()).unwrap();
        assert_eq!(cfg.listen, "0.0.0.0:9876".parse().unwrap());
        assert_eq!(cfg.scan_interval, Duration::from_millis(5000));
        assert_eq!(cfg.broker_expired_ms, 120_000);
        assert_eq!(cfg.idle_timeout, Some(Duration::from_secs(120)));
        assert!(cfg.enable_all_topic_list);

        let config = Config::from_args([
            "listenPort=1234",
            "bindAddress=127.0.0.1",
            "brokerExpiredTimeoutMillis=1000",
            "serverChannelMaxIdleTimeSeconds=0",
            "kvConfigPath=/tmp/kv.json",
        ])
        .unwrap();
        let cfg = NamesrvConfig::from_config(&config).unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:1234".parse().unwrap());
        assert_eq!(cfg.broker_expired_ms, 1000);
        assert_eq!(cfg.idle_timeout, None);
        assert_eq!(cfg.kv_config_path, Some(PathBuf::from("/tmp/kv.json")));
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        for arg in [
            "listenPort=70000",
            "scanNotActiveBrokerInterval=0",
            "bindAddress=nowhere",
        ] {
            let config = Config::from_args([arg]).unwrap();
            let err = NamesrvConfig::from_config(&config).unwrap_err().to_string();
            let key = arg.split('=').next().unwrap();
            assert!(err.contains(key), "{err}");
        }
    }
}
