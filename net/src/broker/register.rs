//! Registration with the name servers (spec §3.1, §5.5): each shard sends REGISTER_BROKER
//! to every namesrv at start, every `registerNameServerPeriod`, and at once when its topic
//! table changes; UNREGISTER_BROKER when it stops.
//!
//! Every namesrv is called concurrently with a timeout, so one that is down never holds up
//! the shard or the others. A namesrv whose last attempt failed is retried sooner than the
//! period (1 s, doubling up to the period): a broker started just before its namesrv shows
//! up within seconds, as does one after a namesrv restart.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use ringmq_codec::body::topic_config::{RegisterBrokerBody, perm};
use ringmq_codec::codes::{request, response};
use ringmq_codec::headers::namesrv::{RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader};
use ringmq_codec::{Command, Header};

use super::shard::Shard;
use crate::remoting::{ConnOptions, Connection, RefuseRequests, connect};

/// Timeout of a connect and of a call to a namesrv.
pub const NAMESRV_TIMEOUT: Duration = Duration::from_secs(3);
/// First retry delay after a failed registration.
const RETRY_MIN: Duration = Duration::from_secs(1);

/// A repeatable wake-up within one thread: `kick` sets it, `wait` consumes it.
#[derive(Default)]
pub struct Kick {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Kick {
    pub fn kick(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once kicked since the last `wait`.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

/// One namesrv and our connection to it.
pub struct NamesrvLink {
    pub addr: SocketAddr,
    conn: RefCell<Option<Connection>>,
    /// Delay before retrying after a failure; zero while registrations succeed.
    backoff: Cell<Duration>,
    /// The last registration succeeded (only changes of this are logged at info/warn).
    registered: Cell<bool>,
}

impl NamesrvLink {
    pub fn new(addr: SocketAddr) -> NamesrvLink {
        NamesrvLink {
            addr,
            conn: RefCell::new(None),
            backoff: Cell::new(Duration::ZERO),
            registered: Cell::new(false),
        }
    }

    async fn connection(&self) -> Result<Connection, String> {
        if let Some(c) = self.conn.borrow().as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let opts = ConnOptions {
            idle_timeout: None,
            ..ConnOptions::default()
        };
        let conn = connect(self.addr, NAMESRV_TIMEOUT, Rc::new(RefuseRequests), opts)
            .await
            .map_err(|e| e.to_string())?;
        *self.conn.borrow_mut() = Some(conn.clone());
        Ok(conn)
    }

    async fn call(&self, cmd: Command) -> Result<Command, String> {
        let conn = self.connection().await?;
        conn.call(cmd, NAMESRV_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
    }
}

fn register_command(shard: &Shard) -> Command {
    let header = RegisterBrokerRequestHeader {
        broker_name: shard.name.clone(),
        broker_addr: shard.addr.to_string(),
        cluster_name: shard.cfg.cluster_name.clone(),
        ha_server_addr: format!("{}:{}", shard.addr.ip(), shard.addr.port() + 1),
        broker_id: shard.cfg.broker_id,
        enable_acting_master: Some(false),
        compressed: Some(false),
        ..RegisterBrokerRequestHeader::default()
    };
    let mut wrapper = shard.topics.borrow().wrapper();
    // A read-only or write-only broker shows it in every topic's perm, as Java does, so
    // clients route accordingly.
    let broker_perm = shard.cfg.broker_permission;
    if broker_perm & (perm::READ | perm::WRITE) != perm::READ | perm::WRITE {
        for t in wrapper.topic_config_table.values_mut() {
            t.perm &= broker_perm;
        }
    }
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: wrapper,
        filter_server_list: Vec::new(),
    };
    let mut cmd = Command::request(request::REGISTER_BROKER);
    header.encode(&mut cmd.ext);
    cmd.with_body(body.to_json())
}

fn unregister_command(shard: &Shard) -> Command {
    let header = UnregisterBrokerRequestHeader {
        broker_name: shard.name.clone(),
        broker_addr: shard.addr.to_string(),
        cluster_name: shard.cfg.cluster_name.clone(),
        broker_id: shard.cfg.broker_id,
    };
    let mut cmd = Command::request(request::UNREGISTER_BROKER);
    header.encode(&mut cmd.ext);
    cmd
}

/// Sends `cmd` to every namesrv at once; returns, per namesrv, the outcome.
async fn call_all(shard: &Rc<Shard>, cmd: &Command) -> Vec<Result<(), String>> {
    let mut tasks = Vec::new();
    for i in 0..shard.namesrvs.len() {
        let (shard, cmd) = (shard.clone(), cmd.clone());
        tasks.push(compio::runtime::spawn(async move {
            let Some(link) = shard.namesrvs.get(i) else {
                return Err("no such namesrv".to_owned());
            };
            match link.call(cmd).await {
                Ok(r) if r.code == response::SUCCESS => Ok(()),
                Ok(r) => Err(format!(
                    "answered code {}: {}",
                    r.code,
                    r.remark.unwrap_or_default()
                )),
                Err(e) => Err(e),
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|_| Err("registration task failed".to_owned())),
        );
    }
    out
}

/// One registration round with every namesrv (the loop's, or an admin change's before it
/// answers); updates each link's backoff and logs changes of state.
pub async fn register_once(shard: &Rc<Shard>) {
    let cmd = register_command(shard);
    let results = call_all(shard, &cmd).await;
    let period = Duration::from_millis(shard.cfg.register_period_ms);
    for (link, result) in shard.namesrvs.iter().zip(results) {
        match result {
            Ok(()) => {
                if !link.registered.replace(true) {
                    tracing::info!(shard = shard.index, broker = %shard.name, namesrv = %link.addr, "registered with the name server");
                }
                link.backoff.set(Duration::ZERO);
            }
            Err(e) => {
                let was_failing = !link.backoff.get().is_zero();
                link.registered.set(false);
                if !was_failing {
                    tracing::warn!(shard = shard.index, broker = %shard.name, namesrv = %link.addr, error = %e, "registration failed; retrying");
                }
                let next = (link.backoff.get() * 2).clamp(RETRY_MIN, period);
                link.backoff.set(next);
                // A fresh connection next time: this one may be half-dead.
                link.conn.borrow_mut().take();
            }
        }
    }
}

/// Registers now and then every period, or at once when the topic table changes.
pub async fn registration_loop(shard: Rc<Shard>) {
    if shard.namesrvs.is_empty() {
        tracing::warn!(
            shard = shard.index,
            "no namesrvAddr configured: clients cannot find this broker (set namesrvAddr or -n)"
        );
        return;
    }
    let period = Duration::from_millis(shard.cfg.register_period_ms);
    loop {
        register_once(&shard).await;
        let wait = shard
            .namesrvs
            .iter()
            .map(|l| l.backoff.get())
            .filter(|b| !b.is_zero())
            .min()
            .unwrap_or(period);
        let sleep = pin!(compio::time::sleep(wait));
        let kick = pin!(shard.register_now.wait());
        first_of(sleep, kick).await;
    }
}

/// Completes when either future does.
async fn first_of<A: Future<Output = ()>, B: Future<Output = ()>>(
    mut a: std::pin::Pin<&mut A>,
    mut b: std::pin::Pin<&mut B>,
) {
    poll_fn(|cx| {
        if a.as_mut().poll(cx).is_ready() || b.as_mut().poll(cx).is_ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// UNREGISTER_BROKER to every namesrv (at stop), each bounded by [`NAMESRV_TIMEOUT`].
pub async fn unregister_all(shard: &Rc<Shard>) {
    if shard.namesrvs.is_empty() {
        return;
    }
    let results = call_all(shard, &unregister_command(shard)).await;
    for (link, r) in shard.namesrvs.iter().zip(results) {
        match r {
            Ok(()) => {
                tracing::info!(shard = shard.index, broker = %shard.name, namesrv = %link.addr, "unregistered from the name server")
            }
            Err(e) => {
                tracing::warn!(shard = shard.index, broker = %shard.name, namesrv = %link.addr, error = %e, "unregistration failed")
            }
        }
    }
}
