//! The namesrv request handler: decode the typed header, call the route table with the
//! current time, encode the answer. All protocol decisions live in [`RouteTable`]; this file
//! only translates (spec §3.1).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_codec::body::kv::{KvTable, NAMESPACE_ORDER_TOPIC_CONFIG};
use ringmq_codec::body::lenient::{self, JsonBodyError};
use ringmq_codec::body::topic_config::{DataVersion, RegisterBodyError, RegisterBrokerBody};
use ringmq_codec::codes::{request as req, response as resp};
use ringmq_codec::headers::namesrv::*;
use ringmq_codec::message::crc::crc32_masked;
use ringmq_codec::{Command, FieldError, Header};

use super::route::{BrokerAddrKey, RegisterError, Registration, RouteTable, Unregistered};
use crate::remoting::{ConnId, Connection, Handler, Reply};

/// Why a request could not be served. Expected outcomes (unknown topic, missing KV entry,
/// unknown code) are ordinary responses, not errors.
#[derive(Debug)]
pub enum RequestError {
    Header(FieldError),
    Body(String),
    /// `bodyCrc32` does not match the body.
    Crc {
        expected: i32,
        actual: i32,
    },
    Register(RegisterError),
    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER while `enableAllTopicList=false`.
    Disabled,
}

impl From<FieldError> for RequestError {
    fn from(e: FieldError) -> Self {
        RequestError::Header(e)
    }
}

impl From<JsonBodyError> for RequestError {
    fn from(e: JsonBodyError) -> Self {
        RequestError::Body(e.to_string())
    }
}

impl From<RegisterBodyError> for RequestError {
    fn from(e: RegisterBodyError) -> Self {
        RequestError::Body(e.to_string())
    }
}

/// The one place a failed request becomes a response code and a remark. Java answers all of
/// these with SYSTEM_ERROR (its handlers throw, or refuse with that code).
fn error_response(request: &Command, err: &RequestError) -> Command {
    let remark = match err {
        RequestError::Header(e) => format!("bad request header: {e}"),
        RequestError::Body(e) => format!("bad request body: {e}"),
        RequestError::Crc { expected, actual } => {
            format!("crc32 not match: bodyCrc32 {expected}, body has {actual}")
        }
        RequestError::Register(e) => e.to_string(),
        RequestError::Disabled => "disable".to_owned(),
    };
    Command::response_to(request, resp::SYSTEM_ERROR).with_remark(remark)
}

/// What the server needs besides the table.
#[derive(Debug, Clone, Default)]
pub struct NamesrvSettings {
    /// Where PUT/DELETE_KV_CONFIG persist the KV config (`kvConfigPath`); `None` keeps it in
    /// memory only.
    pub kv_config_path: Option<PathBuf>,
    /// `enableAllTopicList`: answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub all_topic_list_disabled: bool,
}

/// The namesrv: one route table, served on one thread.
pub struct Namesrv {
    table: RefCell<RouteTable>,
    settings: NamesrvSettings,
    started: Instant,
}

impl Namesrv {
    pub fn new(table: RouteTable, settings: NamesrvSettings) -> Namesrv {
        Namesrv {
            table: RefCell::new(table),
            settings,
            started: Instant::now(),
        }
    }

    /// The route table's clock: monotonic milliseconds since start, so a wall-clock step
    /// never expires every broker at once.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One expiry scan (spec §5.5); the server runs it every `scanNotActiveBrokerInterval`.
    pub fn scan_expired(&self) {
        let expired = self.table.borrow_mut().expire(self.now_ms());
        for (gone, silent_ms) in expired {
            tracing::info!(
                broker = %gone.key,
                name = %gone.broker_name.as_deref().unwrap_or("?"),
                id = gone.broker_id.unwrap_or(-1),
                silent_ms,
                name_removed = gone.broker_name_removed,
                "broker expired"
            );
        }
    }

    /// Answers one request.
    pub fn handle(&self, channel: ConnId, request: &Command) -> Command {
        let result = match request.code {
            req::REGISTER_BROKER => self.register_broker(channel, request),
            req::UNREGISTER_BROKER => self.unregister_broker(request),
            req::BROKER_HEARTBEAT => self.broker_heartbeat(request),
            req::QUERY_DATA_VERSION => self.query_data_version(request),
            req::GET_ROUTEINFO_BY_TOPIC => self.route(request),
            req::GET_BROKER_CLUSTER_INFO => {
                Ok(ok(request).with_body(self.table.borrow().cluster_info().to_json()))
            }
            req::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => self.all_topics(request),
            req::GET_TOPICS_BY_CLUSTER => self.topics_by_cluster(request),
            req::PUT_KV_CONFIG => self.put_kv(request),
            req::GET_KV_CONFIG => self.get_kv(request),
            req::DELETE_KV_CONFIG => self.delete_kv(request),
            req::GET_KVLIST_BY_NAMESPACE => self.kv_namespace(request),
            req::DELETE_TOPIC_IN_NAMESRV => self.delete_topic(request),
            code => Ok(
                Command::response_to(request, resp::REQUEST_CODE_NOT_SUPPORTED)
                    .with_remark(format!(" request type {code} not supported")),
            ),
        };
        result.unwrap_or_else(|e| {
            tracing::debug!(code = request.code, error = ?e, "request failed");
            error_response(request, &e)
        })
    }

    fn register_broker(&self, channel: ConnId, request: &Command) -> Result<Command, RequestError> {
        let h = RegisterBrokerRequestHeader::decode(&request.ext)?;
        if let Some(expected) = h.body_crc32.filter(|&c| c != 0) {
            let actual = crc32_masked(&request.body);
            if actual != expected {
                return Err(RequestError::Crc { expected, actual });
            }
        }
        let body = RegisterBrokerBody::decode(
            &request.body,
            h.compressed.unwrap_or(false),
            request.version,
        )?;
        let registration = Registration {
            cluster: h.cluster_name,
            broker_name: h.broker_name,
            broker_addr: h.broker_addr,
            broker_id: h.broker_id,
            ha_server_addr: h.ha_server_addr,
            zone_name: h.zone_name,
            heartbeat_timeout_ms: h.heartbeat_timeout_millis,
            enable_acting_master: h.enable_acting_master,
            topics: body.topic_config_serialize_wrapper,
            channel,
        };
        let (cluster, name, addr, id) = (
            registration.cluster.clone(),
            registration.broker_name.clone(),
            registration.broker_addr.clone(),
            registration.broker_id,
        );
        let now = self.now_ms();
        let outcome = self.table.borrow_mut().register(registration, now);
        let registered = outcome.map_err(|e| {
            tracing::warn!(%cluster, %name, id, %addr, error = %e, "broker registration refused");
            RequestError::Register(e)
        })?;
        if registered.new_broker {
            tracing::info!(%cluster, %name, id, %addr, topics = registered.topic_count, %channel, "broker registered");
        } else if registered.topics_changed {
            tracing::info!(%cluster, %name, id, %addr, topics = registered.topic_count, "broker re-registered with changed topics");
        } else {
            tracing::debug!(%cluster, %name, id, %addr, "broker re-registered");
        }
        let header = RegisterBrokerResponseHeader {
            ha_server_addr: registered.ha_server_addr,
            master_addr: registered.master_addr,
        };
        let mut response = ok(request);
        header.encode(&mut response.ext);
        // Java sends the ORDER_TOPIC_CONFIG namespace back, or no body when it is empty.
        if let Some(table) = self
            .table
            .borrow()
            .kv_namespace(NAMESPACE_ORDER_TOPIC_CONFIG)
        {
            response.body = KvTable {
                table: table.clone(),
            }
            .to_json()
            .into();
        }
        Ok(response)
    }

    fn unregister_broker(&self, request: &Command) -> Result<Command, RequestError> {
        let h = UnregisterBrokerRequestHeader::decode(&request.ext)?;
        let key = BrokerAddrKey {
            cluster: h.cluster_name,
            addr: h.broker_addr,
        };
        let gone = self
            .table
            .borrow_mut()
            .unregister(&key, &h.broker_name, Some(h.broker_id));
        if let Some(gone) = gone {
            log_unregistered(&gone, "broker unregistered");
        }
        Ok(ok(request))
    }

    fn broker_heartbeat(&self, request: &Command) -> Result<Command, RequestError> {
        let h = BrokerHeartbeatRequestHeader::decode(&request.ext)?;
        let key = BrokerAddrKey {
            cluster: h.cluster_name,
            addr: h.broker_addr,
        };
        if !self.table.borrow_mut().heartbeat(&key, self.now_ms()) {
            tracing::debug!(broker = %key, "heartbeat from a broker that is not registered");
        }
        Ok(ok(request))
    }

    fn query_data_version(&self, request: &Command) -> Result<Command, RequestError> {
        let h = QueryDataVersionRequestHeader::decode(&request.ext)?;
        if request.body.is_empty() {
            return Err(RequestError::Body(
                "QUERY_DATA_VERSION needs a DataVersion body".into(),
            ));
        }
        let version: DataVersion = lenient::from_slice("DataVersion", &request.body)?;
        let key = BrokerAddrKey {
            cluster: h.cluster_name,
            addr: h.broker_addr,
        };
        let (changed, stored) =
            self.table
                .borrow_mut()
                .query_data_version(&key, &version, self.now_ms());
        let mut response = ok(request);
        QueryDataVersionResponseHeader { changed }.encode(&mut response.ext);
        if let Some(stored) = stored {
            response.body = lenient::to_json(&stored).into();
        }
        Ok(response)
    }

    fn route(&self, request: &Command) -> Result<Command, RequestError> {
        let h = GetRouteInfoRequestHeader::decode(&request.ext)?;
        Ok(match self.table.borrow().route(&h.topic) {
            Some(route) => ok(request).with_body(route.to_json()),
            None => Command::response_to(request, resp::TOPIC_NOT_EXIST).with_remark(format!(
                "No topic route info in name server for the topic: {}",
                h.topic
            )),
        })
    }

    fn all_topics(&self, request: &Command) -> Result<Command, RequestError> {
        if self.settings.all_topic_list_disabled {
            return Err(RequestError::Disabled);
        }
        Ok(ok(request).with_body(self.table.borrow().all_topics().to_json()))
    }

    fn topics_by_cluster(&self, request: &Command) -> Result<Command, RequestError> {
        let h = GetTopicsByClusterRequestHeader::decode(&request.ext)?;
        let list = self.table.borrow().topics_of_cluster(&h.cluster);
        Ok(ok(request).with_body(list.to_json()))
    }

    fn delete_topic(&self, request: &Command) -> Result<Command, RequestError> {
        let h = DeleteTopicFromNamesrvRequestHeader::decode(&request.ext)?;
        let cluster = h.cluster_name.as_deref().filter(|c| !c.is_empty());
        if self.table.borrow_mut().delete_topic(&h.topic, cluster) {
            tracing::info!(topic = %h.topic, cluster = cluster.unwrap_or("*"), "topic deleted");
        }
        Ok(ok(request))
    }

    fn put_kv(&self, request: &Command) -> Result<Command, RequestError> {
        let h = PutKvConfigRequestHeader::decode(&request.ext)?;
        let old = self
            .table
            .borrow_mut()
            .kv_put(&h.namespace, &h.key, &h.value);
        if old.as_deref() != Some(h.value.as_str()) {
            tracing::info!(namespace = %h.namespace, key = %h.key, value = %h.value, "KV config put");
            self.persist_kv();
        }
        Ok(ok(request))
    }

    fn get_kv(&self, request: &Command) -> Result<Command, RequestError> {
        let h = GetKvConfigRequestHeader::decode(&request.ext)?;
        let table = self.table.borrow();
        Ok(match table.kv_get(&h.namespace, &h.key) {
            Some(value) => {
                let mut response = ok(request);
                GetKvConfigResponseHeader {
                    value: Some(value.to_owned()),
                }
                .encode(&mut response.ext);
                response
            }
            None => Command::response_to(request, resp::QUERY_NOT_FOUND).with_remark(format!(
                "No config item, Namespace: {} Key: {}",
                h.namespace, h.key
            )),
        })
    }

    fn delete_kv(&self, request: &Command) -> Result<Command, RequestError> {
        let h = DeleteKvConfigRequestHeader::decode(&request.ext)?;
        if self
            .table
            .borrow_mut()
            .kv_delete(&h.namespace, &h.key)
            .is_some()
        {
            tracing::info!(namespace = %h.namespace, key = %h.key, "KV config deleted");
            self.persist_kv();
        }
        Ok(ok(request))
    }

    fn kv_namespace(&self, request: &Command) -> Result<Command, RequestError> {
        let h = GetKvListByNamespaceRequestHeader::decode(&request.ext)?;
        Ok(match self.table.borrow().kv_namespace(&h.namespace) {
            Some(table) => ok(request).with_body(
                KvTable {
                    table: table.clone(),
                }
                .to_json(),
            ),
            None => Command::response_to(request, resp::QUERY_NOT_FOUND)
                .with_remark(format!("No config item, Namespace: {}", h.namespace)),
        })
    }

    /// Writes the KV config as Java does (`{"configTable":{ns:{k:v}}}`), through a temporary
    /// file and a rename so a crash never leaves half a file. KV writes are rare admin
    /// operations, so a blocking write on the server thread is acceptable here.
    fn persist_kv(&self) {
        let Some(path) = &self.settings.kv_config_path else {
            return;
        };
        let json = lenient::to_json(&KvConfigFile {
            config_table: self.table.borrow().kv_all().clone(),
        });
        if let Err(e) = write_atomically(path, &json) {
            tracing::warn!(path = %path.display(), error = %e, "cannot persist the KV config");
        }
    }
}

/// The KV config file (Java `KVConfigSerializeWrapper`).
#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KvConfigFile {
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    config_table: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads a KV config file written by us or by a Java namesrv. A missing file is empty.
pub fn load_kv(
    path: &std::path::Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
        Ok(bytes) => lenient::from_slice::<KvConfigFile>("KV config", &bytes)
            .map(|f| f.config_table)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn ok(request: &Command) -> Command {
    Command::response_to(request, resp::SUCCESS)
}

fn log_unregistered(gone: &Unregistered, what: &'static str) {
    tracing::info!(
        broker = %gone.key,
        name = %gone.broker_name.as_deref().unwrap_or("?"),
        id = gone.broker_id.unwrap_or(-1),
        name_removed = gone.broker_name_removed,
        "{what}"
    );
}

impl Handler for Namesrv {
    fn on_request(&self, conn: &Connection, request: Command, reply: Reply) {
        let response = self.handle(conn.id(), &request);
        reply.send(response);
    }

    fn on_close(&self, conn: &Connection) {
        let gone = self.table.borrow_mut().channel_closed(conn.id());
        for g in &gone {
            log_unregistered(g, "broker unregistered: its connection closed");
        }
    }
}

/// Runs the expiry scan every `interval` (not zero) until the runtime stops.
pub async fn scan_loop(namesrv: Rc<Namesrv>, interval: Duration) {
    let mut ticks = compio::time::interval_at(Instant::now() + interval, interval);
    loop {
        ticks.tick().await;
        namesrv.scan_expired();
    }
}
