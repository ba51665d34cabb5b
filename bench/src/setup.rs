//! Before the load: find the brokers through the name server, create the topics, and list the
//! queues to write and read — the way a RocketMQ client does it (spec §7.1, §7.6), so the same
//! run drives ringmq, Apache RocketMQ or rocketmq-rust unchanged.
//!
//! 1. GET_BROKER_CLUSTER_INFO (106) → every master (broker id 0) of the cluster(s).
//! 2. UPDATE_AND_CREATE_TOPIC (17) on each master, `--queues` read and write queues, perm 6
//!    (skipped with `--no-create`).
//! 3. GET_ROUTEINFO_BY_TOPIC (105) until every master shows the topic (brokers register the
//!    change with the name server asynchronously).
//! 4. Queues to write: `0..writeQueueNums` of every broker with WRITE perm and a master; to
//!    read: `0..readQueueNums` of every broker with READ perm.

use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::{Duration, Instant};

use ringmq_codec::body::route::{ClusterInfo, MASTER_ID, TopicRouteData};
use ringmq_codec::codes::{request, response};
use ringmq_codec::headers::admin::CreateTopicRequestHeader;
use ringmq_codec::headers::namesrv::GetRouteInfoRequestHeader;
use ringmq_codec::headers::offset::{
    GetMaxOffsetRequestHeader, OffsetResponseHeader, QueueRequestHeader,
};
use ringmq_codec::{Command, Header, SerializeType};
use ringmq_net::remoting::{ConnOptions, Connection, RefuseRequests, connect};

use crate::cli::{HeaderEncoding, Params};
use crate::report::{Target, version_name};
use crate::verify::QueueKey;

/// PermName bits (spec §5.7).
const PERM_READ: i32 = 4;
const PERM_WRITE: i32 = 2;

/// How long the name server may take to show a topic just created (a broker that registers
/// only on its 30 s timer needs up to that).
const ROUTE_WAIT: Duration = Duration::from_secs(40);

/// Why setup failed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

fn fail<T>(msg: impl Into<String>) -> Result<T, SetupError> {
    Err(SetupError(msg.into()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub name: String,
    pub addr: SocketAddr,
}

/// One queue of the plan, by index into the plan's topics and brokers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueRef {
    pub topic: usize,
    pub broker: usize,
    pub queue_id: i32,
}

/// Everything the workers need to know about the target.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub topics: Vec<String>,
    pub brokers: Vec<Broker>,
    pub write_queues: Vec<QueueRef>,
    pub read_queues: Vec<QueueRef>,
    pub target: Target,
}

impl Plan {
    pub fn queue_key(&self, q: &QueueRef) -> QueueKey {
        QueueKey {
            topic: self.topics.get(q.topic).cloned().unwrap_or_default(),
            broker: self
                .brokers
                .get(q.broker)
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            queue_id: q.queue_id,
        }
    }
}

pub fn encoding(p: &Params) -> SerializeType {
    match p.serialize {
        HeaderEncoding::Json => SerializeType::Json,
        HeaderEncoding::Rocketmq => SerializeType::RocketMq,
    }
}

/// A request of `code` with `header`, in the run's header encoding.
pub fn request_with(p: &Params, code: i32, header: &impl Header) -> Command {
    let mut cmd = Command::request(code);
    header.encode(&mut cmd.ext);
    cmd.serialize = encoding(p);
    cmd
}

pub async fn open(addr: SocketAddr, timeout: Duration) -> Result<Connection, SetupError> {
    let opts = ConnOptions {
        idle_timeout: None,
        ..ConnOptions::default()
    };
    connect(addr, timeout, Rc::new(RefuseRequests), opts)
        .await
        .map_err(|e| SetupError(format!("cannot connect to {addr}: {e}")))
}

pub fn resolve(text: &str) -> Result<SocketAddr, SetupError> {
    // A RocketMQ namesrvAddr may list several servers; one is enough for the bench.
    let first = text.split(';').next().unwrap_or(text).trim();
    first
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| SetupError(format!("`{first}` is not a host:port address")))
}

async fn call(conn: &Connection, cmd: Command, timeout: Duration) -> Result<Command, SetupError> {
    let code = cmd.code;
    conn.call(cmd, timeout).await.map_err(|e| {
        SetupError(format!(
            "{} to {} failed: {e}",
            request::name(code).unwrap_or("request"),
            conn.peer()
        ))
    })
}

fn refused(what: &str, resp: &Command) -> SetupError {
    SetupError(format!(
        "{what}: {} {}",
        response::name(resp.code).unwrap_or("code"),
        resp.remark.as_deref().unwrap_or("")
    ))
}

/// GET_MAX_OFFSET (30) or GET_MIN_OFFSET (31) of one queue.
pub async fn queue_offset(
    p: &Params,
    conn: &Connection,
    code: i32,
    topic: &str,
    queue_id: i32,
) -> Result<(i64, Command), SetupError> {
    let cmd = if code == request::GET_MAX_OFFSET {
        request_with(
            p,
            code,
            &GetMaxOffsetRequestHeader {
                topic: topic.to_owned(),
                queue_id,
                committed: None,
            },
        )
    } else {
        request_with(
            p,
            code,
            &QueueRequestHeader {
                topic: topic.to_owned(),
                queue_id,
            },
        )
    };
    let timeout = Duration::from_millis(p.timeout_ms);
    let resp = call(conn, cmd, timeout).await?;
    if resp.code != response::SUCCESS {
        return Err(refused(&format!("offset of {topic}:{queue_id}"), &resp));
    }
    let h = OffsetResponseHeader::decode(&resp.ext).map_err(|e| {
        SetupError(format!(
            "offset response of {} lacks a usable offset: {e}",
            conn.peer()
        ))
    })?;
    Ok((h.offset, resp))
}

/// Masters of the chosen cluster(s): name and address.
async fn masters(p: &Params, ns: &Connection) -> Result<Vec<Broker>, SetupError> {
    let timeout = Duration::from_millis(p.timeout_ms);
    let mut cmd = Command::request(request::GET_BROKER_CLUSTER_INFO);
    cmd.serialize = encoding(p);
    let resp = call(ns, cmd, timeout).await?;
    if resp.code != response::SUCCESS {
        return Err(refused("GET_BROKER_CLUSTER_INFO", &resp));
    }
    let info = ClusterInfo::from_json(&resp.body)
        .map_err(|e| SetupError(format!("cluster info from the name server: {e}")))?;
    let mut out = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        if p.cluster.as_ref().is_some_and(|c| c != cluster) {
            continue;
        }
        for name in names {
            let master = info
                .broker_addr_table
                .get(name)
                .and_then(|b| b.broker_addrs.get(&MASTER_ID));
            if let Some(addr) = master {
                out.push(Broker {
                    name: name.clone(),
                    addr: resolve(addr)?,
                });
            }
        }
    }
    if out.is_empty() {
        return fail(format!(
            "the name server {} knows no master broker{}: start a broker with -n {} first",
            ns.peer(),
            p.cluster
                .as_ref()
                .map(|c| format!(" in cluster {c}"))
                .unwrap_or_default(),
            ns.peer()
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

async fn create_topics(p: &Params, masters: &[Broker]) -> Result<(), SetupError> {
    let timeout = Duration::from_millis(p.timeout_ms);
    for b in masters {
        let conn = open(b.addr, timeout).await?;
        for topic in p.topic_names() {
            let h = CreateTopicRequestHeader {
                topic: topic.clone(),
                default_topic: "TBW102".into(),
                read_queue_nums: p.queues as i32,
                write_queue_nums: p.queues as i32,
                perm: PERM_READ | PERM_WRITE,
                topic_filter_type: "SINGLE_TAG".into(),
                topic_sys_flag: Some(0),
                order: false,
                attributes: None,
                force: None,
            };
            let resp = call(
                &conn,
                request_with(p, request::UPDATE_AND_CREATE_TOPIC, &h),
                timeout,
            )
            .await?;
            if resp.code != response::SUCCESS {
                return Err(refused(
                    &format!("creating topic {topic} on {} ({})", b.name, b.addr),
                    &resp,
                ));
            }
        }
        conn.close();
    }
    Ok(())
}

async fn route(
    p: &Params,
    ns: &Connection,
    topic: &str,
) -> Result<Option<TopicRouteData>, SetupError> {
    let h = GetRouteInfoRequestHeader {
        topic: topic.to_owned(),
        accept_standard_json_only: Some(true),
    };
    let resp = call(
        ns,
        request_with(p, request::GET_ROUTEINFO_BY_TOPIC, &h),
        Duration::from_millis(p.timeout_ms),
    )
    .await?;
    match resp.code {
        response::SUCCESS => TopicRouteData::from_json(&resp.body)
            .map(Some)
            .map_err(|e| SetupError(format!("route of {topic}: {e}"))),
        response::TOPIC_NOT_EXIST => Ok(None),
        _ => Err(refused(&format!("route of {topic}"), &resp)),
    }
}

/// True when every expected broker shows the topic with at least `queues` queues.
fn route_complete(r: &TopicRouteData, expect: &[Broker], queues: i32) -> bool {
    expect.iter().all(|b| {
        r.queue_datas
            .iter()
            .any(|q| q.broker_name == b.name && q.write_queue_nums >= queues)
    })
}

/// Adds a route's queues to the plan.
fn add_route(plan: &mut Plan, topic: usize, r: &TopicRouteData) -> Result<(), SetupError> {
    let mut qds = r.queue_datas.clone();
    qds.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    for qd in &qds {
        let Some(master) = r
            .broker_datas
            .iter()
            .find(|b| b.broker_name == qd.broker_name)
            .and_then(|b| b.broker_addrs.get(&MASTER_ID))
        else {
            continue;
        };
        let addr = resolve(master)?;
        let broker = match plan.brokers.iter().position(|b| b.name == qd.broker_name) {
            Some(i) => i,
            None => {
                plan.brokers.push(Broker {
                    name: qd.broker_name.clone(),
                    addr,
                });
                plan.brokers.len() - 1
            }
        };
        if qd.perm & PERM_WRITE != 0 {
            for queue_id in 0..qd.write_queue_nums {
                plan.write_queues.push(QueueRef {
                    topic,
                    broker,
                    queue_id,
                });
            }
        }
        if qd.perm & PERM_READ != 0 {
            for queue_id in 0..qd.read_queue_nums {
                plan.read_queues.push(QueueRef {
                    topic,
                    broker,
                    queue_id,
                });
            }
        }
    }
    Ok(())
}

/// Runs steps 1–4 and probes each broker once for its version and language.
pub async fn setup(p: &Params) -> Result<Plan, SetupError> {
    let timeout = Duration::from_millis(p.timeout_ms);
    let ns_addr = resolve(&p.namesrv)?;
    let ns = open(ns_addr, timeout).await.map_err(|e| {
        SetupError(format!(
            "{e}; is a name server running there? (--namesrv host:port)"
        ))
    })?;
    let expect = if p.create_topics {
        let m = masters(p, &ns).await?;
        create_topics(p, &m).await?;
        m
    } else {
        Vec::new()
    };
    let mut plan = Plan {
        topics: p.topic_names(),
        target: Target {
            namesrv: ns_addr.to_string(),
            ..Target::default()
        },
        ..Plan::default()
    };
    let deadline = Instant::now() + ROUTE_WAIT;
    for (i, topic) in plan.topics.clone().iter().enumerate() {
        let mut told = false;
        loop {
            let r = route(p, &ns, topic).await?;
            match r {
                Some(r) if route_complete(&r, &expect, p.queues as i32) => {
                    add_route(&mut plan, i, &r)?;
                    break;
                }
                _ if Instant::now() >= deadline => {
                    return fail(format!(
                        "the name server has no complete route for topic {topic} after {ROUTE_WAIT:?}{}",
                        if p.create_topics {
                            ": the brokers did not register the new topic"
                        } else {
                            " (it must exist with --no-create)"
                        }
                    ));
                }
                _ => {
                    if !told && Instant::now() + ROUTE_WAIT - deadline > Duration::from_secs(2) {
                        eprintln!("ringmq-bench: waiting for the route of {topic} ...");
                        told = true;
                    }
                    compio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    ns.close();
    if plan.write_queues.is_empty() && p.scenario.produces() {
        return fail("no writable queue in the routes (perm lacks WRITE or no master)");
    }
    if plan.read_queues.is_empty() && p.scenario.consumes() {
        return fail("no readable queue in the routes (perm lacks READ)");
    }
    probe(p, &mut plan).await?;
    Ok(plan)
}

/// One GET_MAX_OFFSET per broker: the response's version and language name the target.
async fn probe(p: &Params, plan: &mut Plan) -> Result<(), SetupError> {
    let timeout = Duration::from_millis(p.timeout_ms);
    let topic = plan.topics.first().cloned().unwrap_or_default();
    for b in &plan.brokers {
        let conn = open(b.addr, timeout).await?;
        let (_, resp) = queue_offset(p, &conn, request::GET_MAX_OFFSET, &topic, 0).await?;
        conn.close();
        let lang = resp.language.name().map(str::to_owned);
        if plan.target.version.is_some_and(|v| v != resp.version) {
            eprintln!(
                "ringmq-bench: brokers report different versions ({} and {})",
                plan.target.version.unwrap_or_default(),
                resp.version
            );
        }
        plan.target.version = Some(resp.version);
        plan.target.version_name = Some(version_name(resp.version));
        plan.target.language = lang;
        plan.target.brokers.push(format!("{}@{}", b.name, b.addr));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_codec::body::route::{BrokerData, QueueData};

    fn route(brokers: &[(&str, i32, i32)]) -> TopicRouteData {
        TopicRouteData {
            queue_datas: brokers
                .iter()
                .map(|(n, q, perm)| QueueData {
                    broker_name: (*n).into(),
                    read_queue_nums: *q,
                    write_queue_nums: *q,
                    perm: *perm,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .enumerate()
                .map(|(i, (n, _, _))| BrokerData {
                    cluster: "C".into(),
                    broker_name: (*n).into(),
                    broker_addrs: [(0, format!("127.0.0.1:{}", 10911 + 4 * i))]
                        .into_iter()
                        .collect(),
                    ..BrokerData::default()
                })
                .collect(),
            ..TopicRouteData::default()
        }
    }

    #[test]
    fn plan_lists_writable_and_readable_queues_per_broker() {
        let mut plan = Plan {
            topics: vec!["t0".into(), "t1".into()],
            ..Plan::default()
        };
        add_route(&mut plan, 0, &route(&[("b-1", 2, 6), ("b-0", 3, 4)])).unwrap();
        add_route(&mut plan, 1, &route(&[("b-1", 1, 6)])).unwrap();
        assert_eq!(
            plan.brokers
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>(),
            ["b-0", "b-1"]
        );
        // b-0 is read-only: nothing to write there.
        assert_eq!(plan.write_queues.len(), 3);
        assert!(plan.write_queues.iter().all(|q| q.broker == 1));
        assert_eq!(plan.read_queues.len(), 6);
        let k = plan.queue_key(&plan.write_queues[2]);
        assert_eq!(
            (k.topic.as_str(), k.broker.as_str(), k.queue_id),
            ("t1", "b-1", 0)
        );
    }

    #[test]
    fn route_is_complete_only_with_every_broker_and_enough_queues() {
        let b = |n: &str| Broker {
            name: n.into(),
            addr: "127.0.0.1:1".parse().unwrap(),
        };
        let r = route(&[("a", 8, 6), ("b", 4, 6)]);
        assert!(route_complete(&r, &[b("a")], 8));
        assert!(!route_complete(&r, &[b("a"), b("b")], 8));
        assert!(!route_complete(&r, &[b("c")], 1));
        assert!(route_complete(&r, &[], 8));
    }

    #[test]
    fn resolve_takes_the_first_of_a_list() {
        assert_eq!(
            resolve("127.0.0.1:9876;127.0.0.1:9877").unwrap(),
            "127.0.0.1:9876".parse().unwrap()
        );
        assert!(resolve("nonsense").is_err());
    }
}
