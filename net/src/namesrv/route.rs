//! The namesrv's route table: which brokers are alive, what topics they serve, and the KV
//! config (Java `RouteInfoManager` + `KVConfigManager`, spec §3.1 and §5.5).
//!
//! Pure: no I/O, no clock. Every method that depends on time takes `now_ms`, so tests drive
//! expiry by passing numbers. Methods report what changed; the server logs it.
//!
//! Tables (all keyed by name, iteration order sorted so answers are stable):
//!
//! ```text
//! topics   : topic       → broker name → QueueData      (from the master's registration)
//! brokers  : broker name → BrokerData {cluster, id → addr}
//! clusters : cluster     → {broker name}
//! live     : (cluster, broker addr) → {last update, timeout, DataVersion, channel, HA addr}
//! kv       : namespace   → key → value
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ringmq_codec::body::route::{
    BrokerData, ClusterInfo, MASTER_ID, QueueData, TopicList, TopicRouteData,
};
use ringmq_codec::body::topic_config::{DataVersion, TopicConfigSerializeWrapper, perm};

use crate::remoting::ConnId;

/// Java's `DEFAULT_BROKER_CHANNEL_EXPIRED_TIME`: a broker that has not registered for this
/// long is dropped (it registers every 30 s).
pub const BROKER_EXPIRED_DEFAULT_MS: u64 = 120_000;

/// Identity of a live broker: its cluster and address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddrKey {
    pub cluster: String,
    pub addr: String,
}

impl std::fmt::Display for BrokerAddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.addr, self.cluster)
    }
}

/// Liveness of one registered broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    pub last_update_ms: u64,
    pub timeout_ms: u64,
    pub data_version: DataVersion,
    /// The connection it registered over; closing it unregisters the broker.
    pub channel: ConnId,
    pub ha_server_addr: String,
}

/// One REGISTER_BROKER request, decoded.
#[derive(Debug, Clone)]
pub struct Registration {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub broker_id: i64,
    pub ha_server_addr: String,
    pub zone_name: Option<String>,
    /// Broker-given liveness timeout; `None` (or not positive) means the table's default.
    pub heartbeat_timeout_ms: Option<i64>,
    /// `None` marks a pre-5.0 broker.
    pub enable_acting_master: Option<bool>,
    pub topics: TopicConfigSerializeWrapper,
    pub channel: ConnId,
}

/// What a successful registration changed, and what the broker is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// This address was not live before.
    pub new_broker: bool,
    /// The broker's DataVersion differs from the one it last registered (or it is new).
    pub topics_changed: bool,
    /// Number of topics in the registration.
    pub topic_count: usize,
    /// For a slave whose master is live: the master's address and HA address.
    pub master_addr: Option<String>,
    pub ha_server_addr: Option<String>,
}

/// Why a registration was refused (SYSTEM_ERROR "register broker failed", as Java).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterError {
    /// A registration with exactly one topic (Java's "register single topic") before this
    /// broker id ever registered fully.
    SingleTopicBeforeFull { broker_name: String, broker_id: i64 },
    /// Another address holds this broker id with a newer state version.
    StaleStateVersion {
        broker_name: String,
        broker_id: i64,
        holder_addr: String,
    },
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegisterError::SingleTopicBeforeFull {
                broker_name,
                broker_id,
            } => write!(
                f,
                "register broker failed: a single-topic registration of {broker_name} id \
                 {broker_id} must follow a full registration"
            ),
            RegisterError::StaleStateVersion {
                broker_name,
                broker_id,
                holder_addr,
            } => write!(
                f,
                "register broker failed: {broker_name} id {broker_id} is held by {holder_addr} \
                 with a newer state version"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

/// A broker address that left the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unregistered {
    pub key: BrokerAddrKey,
    pub broker_name: Option<String>,
    pub broker_id: Option<i64>,
    /// It was the broker name's last address: the name and its queues are gone.
    pub broker_name_removed: bool,
}

/// The route table. See the module docs.
#[derive(Debug, Clone)]
pub struct RouteTable {
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    brokers: BTreeMap<String, BrokerData>,
    clusters: BTreeMap<String, BTreeSet<String>>,
    live: HashMap<BrokerAddrKey, LiveBroker>,
    kv: BTreeMap<String, BTreeMap<String, String>>,
    expired_default_ms: u64,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::new(BROKER_EXPIRED_DEFAULT_MS)
    }
}

impl RouteTable {
    /// An empty table whose brokers expire after `expired_default_ms` without registering,
    /// unless they give their own timeout.
    pub fn new(expired_default_ms: u64) -> RouteTable {
        RouteTable {
            topics: BTreeMap::new(),
            brokers: BTreeMap::new(),
            clusters: BTreeMap::new(),
            live: HashMap::new(),
            kv: BTreeMap::new(),
            expired_default_ms,
        }
    }

    /// REGISTER_BROKER: records the broker's address, its liveness, and — for a master —
    /// its topics' queue data when its DataVersion changed.
    pub fn register(
        &mut self,
        reg: Registration,
        now_ms: u64,
    ) -> Result<Registered, RegisterError> {
        let key = BrokerAddrKey {
            cluster: reg.cluster.clone(),
            addr: reg.broker_addr.clone(),
        };
        self.check_registration(&reg, &key)?;

        self.clusters
            .entry(reg.cluster.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let first_of_name = !self.brokers.contains_key(&reg.broker_name);
        let data = self
            .brokers
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: reg.cluster.clone(),
                broker_name: reg.broker_name.clone(),
                ..BrokerData::default()
            });
        let pre_5_broker = reg.enable_acting_master.is_none();
        data.enable_acting_master = reg.enable_acting_master.unwrap_or(false);
        data.zone_name = reg.zone_name.clone();
        // One address has one id: a slave promoted to master re-registers with id 0 from
        // the same address, and its old id must go.
        data.broker_addrs
            .retain(|&id, addr| !(*addr == reg.broker_addr && id != reg.broker_id));
        let old_addr = data
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone());
        let register_first = first_of_name || old_addr.is_none_or(|a| a.is_empty());

        let is_master = reg.broker_id == MASTER_ID;
        let is_prime_slave =
            !pre_5_broker && !is_master && data.broker_addrs.keys().next() == Some(&reg.broker_id);
        let wipe_write = is_prime_slave && data.enable_acting_master;
        let master_addr = data.broker_addrs.get(&MASTER_ID).cloned();

        let version = reg.topics.data_version;
        let version_changed = self
            .live
            .get(&key)
            .is_none_or(|l| l.data_version != version);
        if is_master || is_prime_slave {
            for config in reg.topics.topic_config_table.values() {
                let known = self
                    .topics
                    .get(&config.topic_name)
                    .is_some_and(|m| m.contains_key(&reg.broker_name));
                if register_first || version_changed || !known {
                    let mut perm = config.perm;
                    if wipe_write {
                        // Slave acting master: readable, never writable.
                        perm &= !perm::WRITE;
                    }
                    self.topics
                        .entry(config.topic_name.clone())
                        .or_default()
                        .insert(
                            reg.broker_name.clone(),
                            QueueData {
                                broker_name: reg.broker_name.clone(),
                                read_queue_nums: config.read_queue_nums,
                                write_queue_nums: config.write_queue_nums,
                                perm,
                                topic_sys_flag: config.topic_sys_flag,
                            },
                        );
                }
            }
        }

        let timeout_ms = reg
            .heartbeat_timeout_ms
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .unwrap_or(self.expired_default_ms);
        let previous = self.live.insert(
            key,
            LiveBroker {
                last_update_ms: now_ms,
                timeout_ms,
                data_version: version,
                channel: reg.channel,
                ha_server_addr: reg.ha_server_addr.clone(),
            },
        );

        let mut registered = Registered {
            new_broker: previous.is_none(),
            topics_changed: version_changed,
            topic_count: reg.topics.topic_config_table.len(),
            master_addr: None,
            ha_server_addr: None,
        };
        if let Some(master_addr) = master_addr.filter(|_| !is_master) {
            let master_key = BrokerAddrKey {
                cluster: reg.cluster.clone(),
                addr: master_addr.clone(),
            };
            if let Some(master) = self.live.get(&master_key) {
                registered.ha_server_addr = Some(master.ha_server_addr.clone());
                registered.master_addr = Some(master_addr);
            }
        }
        Ok(registered)
    }

    /// The refusals of Java's `registerBroker`, checked before anything changes.
    fn check_registration(
        &mut self,
        reg: &Registration,
        key: &BrokerAddrKey,
    ) -> Result<(), RegisterError> {
        let holder = self
            .brokers
            .get(&reg.broker_name)
            .and_then(|d| d.broker_addrs.get(&reg.broker_id));
        if let Some(holder_addr) = holder.filter(|a| **a != reg.broker_addr) {
            let holder_key = BrokerAddrKey {
                cluster: reg.cluster.clone(),
                addr: holder_addr.clone(),
            };
            let newer = self.live.get(&holder_key).is_some_and(|l| {
                l.data_version.state_version > reg.topics.data_version.state_version
            });
            if newer {
                let err = RegisterError::StaleStateVersion {
                    broker_name: reg.broker_name.clone(),
                    broker_id: reg.broker_id,
                    holder_addr: holder_addr.clone(),
                };
                self.live.remove(key);
                return Err(err);
            }
        }
        if holder.is_none() && reg.topics.topic_config_table.len() == 1 {
            return Err(RegisterError::SingleTopicBeforeFull {
                broker_name: reg.broker_name.clone(),
                broker_id: reg.broker_id,
            });
        }
        Ok(())
    }

    /// UNREGISTER_BROKER: removes the address; a broker name left without addresses leaves
    /// its cluster and every topic's queue data, and topics left without queues disappear.
    /// `None` if nothing was registered under that address.
    pub fn unregister(
        &mut self,
        key: &BrokerAddrKey,
        broker_name: &str,
        broker_id: Option<i64>,
    ) -> Option<Unregistered> {
        let was_live = self.live.remove(key).is_some();
        let mut removed_addr = false;
        let mut name_removed = false;
        if let Some(data) = self.brokers.get_mut(broker_name) {
            let before = data.broker_addrs.len();
            data.broker_addrs.retain(|_, addr| *addr != key.addr);
            removed_addr = data.broker_addrs.len() != before;
            if data.broker_addrs.is_empty() {
                self.brokers.remove(broker_name);
                name_removed = true;
            }
        }
        if name_removed {
            if let Some(names) = self.clusters.get_mut(&key.cluster) {
                names.remove(broker_name);
                if names.is_empty() {
                    self.clusters.remove(&key.cluster);
                }
            }
            self.topics.retain(|_, queues| {
                queues.remove(broker_name);
                !queues.is_empty()
            });
        } else if removed_addr {
            self.wipe_write_if_masterless(broker_name);
        }
        (was_live || removed_addr).then(|| Unregistered {
            key: key.clone(),
            broker_name: Some(broker_name.to_owned()),
            broker_id,
            broker_name_removed: name_removed,
        })
    }

    /// In slave-acting-master mode, a broker name whose master left keeps serving reads
    /// only (Java `cleanTopicByUnRegisterRequests`).
    fn wipe_write_if_masterless(&mut self, broker_name: &str) {
        let Some(data) = self.brokers.get(broker_name) else {
            return;
        };
        if !data.enable_acting_master || data.broker_addrs.contains_key(&MASTER_ID) {
            return;
        }
        for queues in self.topics.values_mut() {
            if let Some(q) = queues.get_mut(broker_name) {
                q.perm &= !perm::WRITE;
            }
        }
    }

    /// Unregisters an address whose broker name and id we look up (expiry, channel close).
    fn unregister_addr(&mut self, key: &BrokerAddrKey) -> Unregistered {
        let found = self.brokers.values().find_map(|d| {
            if d.cluster != key.cluster {
                return None;
            }
            d.broker_addrs
                .iter()
                .find(|(_, addr)| **addr == key.addr)
                .map(|(&id, _)| (d.broker_name.clone(), id))
        });
        match found {
            Some((name, id)) => self
                .unregister(key, &name, Some(id))
                .unwrap_or(Unregistered {
                    key: key.clone(),
                    broker_name: Some(name),
                    broker_id: Some(id),
                    broker_name_removed: false,
                }),
            None => {
                self.live.remove(key);
                Unregistered {
                    key: key.clone(),
                    broker_name: None,
                    broker_id: None,
                    broker_name_removed: false,
                }
            }
        }
    }

    /// The expiry scan: unregisters every broker whose last registration is older than its
    /// timeout. Returns them with how long they had been silent.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(Unregistered, u64)> {
        let mut expired: Vec<(BrokerAddrKey, u64)> = self
            .live
            .iter()
            .filter(|(_, l)| l.last_update_ms.saturating_add(l.timeout_ms) < now_ms)
            .map(|(k, l)| (k.clone(), now_ms - l.last_update_ms))
            .collect();
        expired.sort();
        expired
            .into_iter()
            .map(|(key, silent_ms)| (self.unregister_addr(&key), silent_ms))
            .collect()
    }

    /// A connection closed: unregisters every broker address registered over it.
    pub fn channel_closed(&mut self, channel: ConnId) -> Vec<Unregistered> {
        let mut keys: Vec<BrokerAddrKey> = self
            .live
            .iter()
            .filter(|(_, l)| l.channel == channel)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys.iter().map(|k| self.unregister_addr(k)).collect()
    }

    /// BROKER_HEARTBEAT: refreshes liveness only. False if the broker is not registered.
    pub fn heartbeat(&mut self, key: &BrokerAddrKey, now_ms: u64) -> bool {
        match self.live.get_mut(key) {
            Some(l) => {
                l.last_update_ms = now_ms;
                true
            }
            None => false,
        }
    }

    /// QUERY_DATA_VERSION: whether `version` differs from the stored one (true when none is
    /// stored), and the stored one. Refreshes liveness like a heartbeat.
    pub fn query_data_version(
        &mut self,
        key: &BrokerAddrKey,
        version: &DataVersion,
        now_ms: u64,
    ) -> (bool, Option<DataVersion>) {
        let stored = self.live.get(key).map(|l| l.data_version);
        self.heartbeat(key, now_ms);
        (stored.as_ref() != Some(version), stored)
    }

    /// GET_ROUTEINFO_BY_TOPIC: `None` when no live broker hosts the topic (TOPIC_NOT_EXIST).
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topics.get(topic)?;
        let broker_datas: Vec<BrokerData> = queues
            .keys()
            .filter_map(|name| self.brokers.get(name).cloned())
            .collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas: queues.values().cloned().collect(),
            broker_datas,
            filter_server_table: BTreeMap::new(),
        })
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.brokers.clone(),
            cluster_addr_table: self.clusters.clone(),
        }
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub fn all_topics(&self) -> TopicList {
        TopicList {
            topic_list: self.topics.keys().cloned().collect(),
            broker_addr: None,
        }
    }

    /// GET_TOPICS_BY_CLUSTER: topics with a queue on any broker of `cluster`.
    pub fn topics_of_cluster(&self, cluster: &str) -> TopicList {
        let names = self.clusters.get(cluster);
        let topic_list = self
            .topics
            .iter()
            .filter(|(_, queues)| names.is_some_and(|n| queues.keys().any(|b| n.contains(b))))
            .map(|(t, _)| t.clone())
            .collect();
        TopicList {
            topic_list,
            broker_addr: None,
        }
    }

    /// DELETE_TOPIC_IN_NAMESRV: forgets `topic`'s queues on the brokers of `cluster`, or on
    /// every broker without one; a topic left without queues disappears. Returns whether
    /// any queue data was removed. A broker that still has the topic brings it back with
    /// its next registration, as in RocketMQ (the admin deletes it on the brokers first).
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) -> bool {
        let Some(queues) = self.topics.get_mut(topic) else {
            return false;
        };
        let removed = match cluster {
            Some(cluster) => {
                let names = self.clusters.get(cluster);
                let before = queues.len();
                queues.retain(|broker, _| !names.is_some_and(|n| n.contains(broker)));
                queues.len() != before
            }
            None => {
                queues.clear();
                true
            }
        };
        if queues.is_empty() {
            self.topics.remove(topic);
        }
        removed
    }

    /// The liveness entry of an address, for inspection.
    pub fn live_broker(&self, key: &BrokerAddrKey) -> Option<&LiveBroker> {
        self.live.get(key)
    }

    /// PUT_KV_CONFIG. Returns the previous value.
    pub fn kv_put(&mut self, namespace: &str, key: &str, value: &str) -> Option<String> {
        self.kv
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned())
    }

    /// GET_KV_CONFIG.
    pub fn kv_get(&self, namespace: &str, key: &str) -> Option<&str> {
        self.kv.get(namespace)?.get(key).map(String::as_str)
    }

    /// DELETE_KV_CONFIG. Returns the removed value; an emptied namespace disappears.
    pub fn kv_delete(&mut self, namespace: &str, key: &str) -> Option<String> {
        let table = self.kv.get_mut(namespace)?;
        let old = table.remove(key);
        if table.is_empty() {
            self.kv.remove(namespace);
        }
        old
    }

    /// GET_KVLIST_BY_NAMESPACE: `None` for an unknown namespace.
    pub fn kv_namespace(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.kv.get(namespace)
    }

    /// Every namespace, for persisting.
    pub fn kv_all(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.kv
    }

    /// Replaces the KV config (loaded from disk at start-up).
    pub fn kv_load(&mut self, kv: BTreeMap<String, BTreeMap<String, String>>) {
        self.kv = kv;
    }
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
