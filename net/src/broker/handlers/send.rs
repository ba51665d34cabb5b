//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320), spec §3.3.
//!
//! [`prepare`] runs synchronously when the request arrives: header, permissions, topic name,
//! sizes, batches holding what a batch cannot (half, delayed or timer messages), topic
//! auto-creation, the `%RETRY%` → `%DLQ%` rule, the queue, UNIQ_KEY and tag code, and the
//! redirections: a transactional half message to `RMQ_SYS_TRANS_HALF_TOPIC` ([`transaction`]),
//! a delayed one (`DELAY > 0`, not a half message, not bound for the DLQ) to its level's queue
//! of `SCHEDULE_TOPIC_XXXX`, a 5.x timer message (no DELAY) to the first stage of the timer
//! cascade, each with its due time as tag code ([`schedule`]). It yields a [`Plan`] of owned records; a task then appends
//! them (one `append_batch` for a batch, so queue offsets are consecutive) and answers once
//! the store acknowledges: after the write (ASYNC_FLUSH) or the fdatasync (SYNC_FLUSH).
//!
//! Every send response carries `MSG_REGION` and `TRACE_ON`, errors included: Java clients
//! read them unguarded (spec §10 item 1).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ringmq_codec::body::topic_config::TopicConfig;
use ringmq_codec::codes::request;
use ringmq_codec::filter::tag_code;
use ringmq_codec::headers::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_codec::message::properties::{self, PROPERTIES_LEN_MAX, keys};
use ringmq_codec::message::{decode_batch, offset_msg_id, sysflag};
use ringmq_codec::{Command, Header};
use ringmq_engine::{AppendRequest, AppendResult, Durability};

use super::ok;
use crate::broker::config::FlushDiskType;
use crate::broker::errors::{BrokerError, error_response};
use crate::broker::shard::Shard;
use crate::broker::topics::{self, RETRY_PREFIX, is_writable, queue_count};
use crate::broker::{schedule, transaction};
use crate::remoting::{Connection, Reply};

/// One message to append, owned (the body is a slice of the request's body, not a copy).
#[derive(Debug)]
struct Record {
    body: Bytes,
    flag: i32,
    properties: String,
    tag_code: i64,
    durability: Durability,
}

/// What a send stores, decided before the first await.
#[derive(Debug)]
struct Plan {
    topic: String,
    queue_id: i32,
    /// The queue id the response names: `queue_id`, except for a delayed message, stored in
    /// a schedule queue but answered with its real queue (as RocketMQ does).
    answer_queue_id: i32,
    sys_flag: i32,
    born_timestamp: i64,
    born_host: SocketAddr,
    reconsume_times: i32,
    records: Vec<Record>,
    batch: bool,
    /// The message's UNIQ_KEY (a batch: the wrapper's, else the first entry's).
    transaction_id: Option<String>,
    /// A transactional half message: registered as unresolved once stored.
    half: bool,
}

pub fn handle(shard: &Rc<Shard>, conn: &Connection, request: Command, reply: Reply) {
    shard.metrics.send_requests.fetch_add(1, Relaxed);
    match prepare(shard, &request, conn.peer()) {
        Ok(plan) => {
            let shard = shard.clone();
            compio::runtime::spawn(async move {
                let response = store(&shard, &request, plan).await;
                reply.send(response);
            })
            .detach();
        }
        Err(e) => {
            shard.metrics.send_errors.fetch_add(1, Relaxed);
            tracing::debug!(code = request.code, error = ?e, "send refused");
            reply.send(with_region(shard, error_response(&request, &e)));
        }
    }
}

/// Adds `MSG_REGION` and `TRACE_ON` to a send response that lacks them.
fn with_region(shard: &Shard, mut response: Command) -> Command {
    if response.ext.get("MSG_REGION").is_none() {
        response
            .ext
            .insert("MSG_REGION", shard.cfg.region_id.as_str());
    }
    if response.ext.get("TRACE_ON").is_none() {
        response
            .ext
            .insert("TRACE_ON", shard.cfg.trace_on.to_string());
    }
    response
}

fn prepare(shard: &Shard, request: &Command, born_host: SocketAddr) -> Result<Plan, BrokerError> {
    let h = SendMessageRequestHeader::decode(&request.ext)?;
    let batch = request.code == request::SEND_BATCH_MESSAGE;
    if !is_writable(shard.cfg.broker_permission) {
        return Err(BrokerError::NoPermission(format!(
            "the broker[{}] sending message is forbidden",
            shard.name
        )));
    }
    topics::validate_name(&h.topic).map_err(BrokerError::InvalidParameter)?;
    if topics::is_send_forbidden(&h.topic) {
        return Err(BrokerError::NoPermission(format!(
            "sending message to topic[{}] is forbidden: it is reserved for the broker",
            h.topic
        )));
    }
    let max = shard.cfg.max_message_size;
    if request.body.len() > max {
        return Err(BrokerError::MessageIllegal(format!(
            "the message body size {} exceeds maxMessageSize {max}",
            request.body.len()
        )));
    }
    let props: &str = h.properties.as_deref().unwrap_or_default();
    check_properties(props)?;
    let sp = SendProps::of(props);
    let half = sp.is_half(h.sys_flag);
    if half && batch {
        return Err(BrokerError::MessageIllegal(
            "a batch cannot hold transactional messages".to_owned(),
        ));
    }
    let (cfg, to_dlq) = resolve_topic(shard, &h, batch)?;
    let queue_id = pick_queue(shard, &cfg, &h, to_dlq)?;
    let mut records = if batch {
        batch_records(shard, request)?
    } else {
        vec![single_record(shard, request, props, &sp, h.flag, to_dlq)?]
    };
    let (mut topic, mut stored_qid, mut sys_flag) = (cfg.topic_name, queue_id, h.sys_flag);
    if half {
        // Half message (spec §4.9): invisible in the half topic until resolved.
        let (_, mark) = shard.store.queue_offsets(&topic, queue_id);
        for r in &mut records {
            r.properties = transaction::half_properties(&r.properties, &topic, queue_id, mark.0);
        }
        topic = transaction::HALF_TOPIC.to_owned();
        stored_qid = 0;
        sys_flag = sysflag::with_transaction_type(sys_flag, sysflag::TRANSACTION_NOT_TYPE);
    }
    let level = schedule::level_of(sp.delay, shard.cfg.delay_levels_ms.len());
    if let (Some(level), false, false, false) = (level, batch, to_dlq, half) {
        // Delayed (spec §4.8): stored in the level's schedule queue, due time in the tag slot.
        let due = schedule::due_for_level(&shard.cfg.delay_levels_ms, level, shard.now_ms());
        for r in &mut records {
            // With a level, timer properties are dropped: the level wins (spec §4.8).
            let props = without_timer(&r.properties);
            r.properties = schedule::schedule_properties(&props, &topic, queue_id, due);
            r.tag_code = due;
        }
        topic = schedule::SCHEDULE_TOPIC.to_owned();
        stored_qid = level as i32 - 1;
    } else if sp.timer && !batch && !to_dlq && !half {
        // A 5.x timer: the first stage of the timer cascade (schedule.rs).
        let now = shard.now_ms();
        let at = schedule::timer_deliver_ms(props, now, shard.cfg.timer_max_delay_ms)
            .map_err(BrokerError::MessageIllegal)?;
        if let Some(at) = at
            && let Some((k, hop_due)) = schedule::timer_hop(&shard.cfg, now, at)
        {
            for r in &mut records {
                r.properties =
                    schedule::timer_properties(&r.properties, &topic, queue_id, at, hop_due);
                r.tag_code = hop_due;
            }
            topic = schedule::TIMER_TOPIC.to_owned();
            stored_qid = k as i32;
        }
    }
    let transaction_id = sp.uniq_key.map(str::to_owned).or_else(|| {
        records
            .first()
            .and_then(|r| properties::find(&r.properties, keys::UNIQ_KEY).map(str::to_owned))
    });
    Ok(Plan {
        topic,
        queue_id: stored_qid,
        answer_queue_id: queue_id,
        sys_flag,
        born_timestamp: h.born_timestamp_ms,
        born_host,
        reconsume_times: h.reconsume_times.unwrap_or(0),
        records,
        batch,
        transaction_id,
        half,
    })
}

const TIMER_KEYS: [&str; 3] = [
    keys::TIMER_DELIVER_MS,
    keys::TIMER_DELAY_SEC,
    keys::TIMER_DELAY_MS,
];

/// The properties a send looks at, found in one pass over the property string (the last
/// occurrence wins, as in `properties::find`). A lookup per key scanned a message's
/// properties about ten times on its way to the store.
#[derive(Debug, Default, Clone, Copy)]
struct SendProps<'a> {
    tran_msg: Option<&'a str>,
    delay: Option<&'a str>,
    /// Any of [`TIMER_KEYS`] is set.
    timer: bool,
    uniq_key: Option<&'a str>,
    wait: Option<&'a str>,
    tags: Option<&'a str>,
}

impl<'a> SendProps<'a> {
    fn of(props: &'a str) -> Self {
        let mut sp = SendProps::default();
        for (k, v) in properties::iter(props) {
            match k {
                keys::TRAN_MSG => sp.tran_msg = Some(v),
                keys::DELAY => sp.delay = Some(v),
                keys::UNIQ_KEY => sp.uniq_key = Some(v),
                keys::WAIT => sp.wait = Some(v),
                keys::TAGS => sp.tags = Some(v),
                k if TIMER_KEYS.contains(&k) => sp.timer = true,
                _ => {}
            }
        }
        sp
    }

    /// A transactional half message: `TRAN_MSG=true` or the PREPARED sysFlag bits.
    fn is_half(&self, sys_flag: i32) -> bool {
        self.tran_msg
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || sysflag::transaction_type(sys_flag) == sysflag::TRANSACTION_PREPARED_TYPE
    }

    /// DELAY > 0 asks for a delay level.
    fn wants_delay(&self) -> bool {
        schedule::level_of(self.delay, schedule::MAX_LEVELS).is_some()
    }

    /// What the producer waits for: the store's durability unless `WAIT=false`.
    fn durability(&self, shard: &Shard) -> Durability {
        let wait = self.wait.is_none_or(|v| !v.eq_ignore_ascii_case("false"));
        match shard.cfg.flush {
            FlushDiskType::Sync if wait => Durability::Synced,
            _ => Durability::Written,
        }
    }
}

fn without_timer(props: &str) -> String {
    let mut out = String::with_capacity(props.len());
    properties::encode(
        properties::iter(props).filter(|(k, _)| !TIMER_KEYS.contains(k)),
        &mut out,
    );
    out
}

fn check_properties(props: &str) -> Result<(), BrokerError> {
    if props.len() > PROPERTIES_LEN_MAX {
        return Err(BrokerError::MessageIllegal(format!(
            "the message properties are {} bytes long, more than {PROPERTIES_LEN_MAX}",
            props.len()
        )));
    }
    Ok(())
}

/// The topic to store in, creating it when needed; `true` when a `%RETRY%` send exceeded the
/// group's reconsume limit and goes to the group's `%DLQ%` topic instead (spec §3.3 step 5).
fn resolve_topic(
    shard: &Shard,
    h: &SendMessageRequestHeader,
    batch: bool,
) -> Result<(TopicConfig, bool), BrokerError> {
    let now = shard.now_ms();
    let Some(group) = h.topic.strip_prefix(RETRY_PREFIX) else {
        let r = shard.topics.borrow_mut().for_send(
            &h.topic,
            &h.default_topic,
            h.default_topic_queue_nums,
            now,
        );
        let (cfg, created) = r.map_err(|_| BrokerError::TopicNotExist(h.topic.clone()))?;
        shard.created(created);
        return Ok((cfg, false));
    };
    if batch {
        return Err(BrokerError::MessageIllegal(
            "batch messages cannot be sent to a retry topic".to_owned(),
        ));
    }
    let gcfg = shard
        .groups
        .borrow_mut()
        .find_or_create(group, now)
        .cloned()
        .ok_or_else(|| BrokerError::SubscriptionGroupNotExist(group.to_owned()))?;
    let max = h.max_reconsume_times.unwrap_or(gcfg.retry_max_times);
    // A group holding orderly locks gave up on the message (orderly give-up path, §7.4).
    let orderly = shard
        .locks
        .borrow()
        .group_holds_locks(group, shard.mono_ms());
    let to_dlq = h.reconsume_times.unwrap_or(0) > max || orderly;
    let created = if to_dlq {
        shard.topics.borrow_mut().ensure_dlq(group, now)
    } else {
        shard
            .topics
            .borrow_mut()
            .ensure_retry(group, gcfg.retry_queue_nums, now)
    };
    shard.created(created);
    let name = if to_dlq {
        topics::dlq_topic(group)
    } else {
        h.topic.clone()
    };
    let cfg = shard.topics.borrow().get(&name).cloned();
    let cfg = cfg.ok_or_else(|| BrokerError::System(format!("topic {name} vanished")))?;
    Ok((cfg, to_dlq))
}

fn pick_queue(
    shard: &Shard,
    cfg: &TopicConfig,
    h: &SendMessageRequestHeader,
    to_dlq: bool,
) -> Result<i32, BrokerError> {
    if !is_writable(cfg.perm) {
        return Err(BrokerError::NoPermission(format!(
            "the topic[{}] sending message is forbidden",
            cfg.topic_name
        )));
    }
    if to_dlq {
        return Ok(0);
    }
    if h.queue_id < 0 {
        let n = cfg.write_queue_nums.max(1) as u64;
        return Ok((shard.random() % n) as i32);
    }
    if h.queue_id >= queue_count(cfg) {
        return Err(BrokerError::InvalidParameter(format!(
            "request queueId[{}] is illegal, topic:[{}] topicConfig.writeQueueNums:[{}] \
             consumerQueueNums:[{}]",
            h.queue_id, cfg.topic_name, cfg.write_queue_nums, cfg.read_queue_nums
        )));
    }
    Ok(h.queue_id)
}

/// `props` with a UNIQ_KEY (generated unless `has_uniq_key`, spec §4.7), and without DELAY
/// when the message is redirected to the DLQ (Java stores no delay there).
fn stored_properties(shard: &Shard, props: &str, has_uniq_key: bool, strip_delay: bool) -> String {
    let mut out = String::with_capacity(props.len() + 48);
    if strip_delay {
        properties::encode(
            properties::iter(props).filter(|(k, _)| *k != keys::DELAY),
            &mut out,
        );
    } else {
        out.push_str(props);
    }
    if !has_uniq_key {
        let id = shard.next_uniq_key();
        if !out.is_empty() && !out.ends_with(properties::PROPERTY_SEPARATOR) {
            out.push(properties::PROPERTY_SEPARATOR);
        }
        properties::encode([(keys::UNIQ_KEY, id.as_str())], &mut out);
    }
    out
}

/// A record storing `properties`, whose WAIT and TAGS are those of `sp`.
fn record(shard: &Shard, body: Bytes, flag: i32, sp: &SendProps<'_>, properties: String) -> Record {
    Record {
        durability: sp.durability(shard),
        body,
        flag,
        tag_code: tag_code(sp.tags),
        properties,
    }
}

fn single_record(
    shard: &Shard,
    request: &Command,
    props: &str,
    sp: &SendProps<'_>,
    flag: i32,
    to_dlq: bool,
) -> Result<Record, BrokerError> {
    // Adding a UNIQ_KEY, dropping DELAY or setting the DLQ_ORIGIN_* pairs changes neither
    // WAIT nor TAGS: `sp` still holds for the stored string.
    let mut stored = stored_properties(shard, props, sp.uniq_key.is_some(), to_dlq);
    if to_dlq {
        stored = super::send_back::dlq_properties(&stored);
    }
    Ok(record(shard, request.body.clone(), flag, sp, stored))
}

/// The entries of a batch body (spec §4.6), each its own record.
fn batch_records(shard: &Shard, request: &Command) -> Result<Vec<Record>, BrokerError> {
    let entries = decode_batch(&request.body)
        .map_err(|e| BrokerError::MessageIllegal(format!("the batch body does not decode: {e}")))?;
    if entries.is_empty() {
        return Err(BrokerError::MessageIllegal(
            "the batch has no messages".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        check_properties(e.properties)?;
        let sp = SendProps::of(e.properties);
        if sp.is_half(0) {
            return Err(BrokerError::MessageIllegal(
                "a batch cannot hold transactional messages".to_owned(),
            ));
        }
        if sp.wants_delay() || sp.timer {
            return Err(BrokerError::MessageIllegal(
                "a batch cannot hold delayed (DELAY level or timer) messages".to_owned(),
            ));
        }
        let body = request.body.slice_ref(e.body);
        let stored = stored_properties(shard, e.properties, sp.uniq_key.is_some(), false);
        out.push(record(shard, body, e.flag, &sp, stored));
    }
    Ok(out)
}

/// Appends the plan and builds the response.
async fn store(shard: &Rc<Shard>, request: &Command, plan: Plan) -> Command {
    let reqs: Vec<AppendRequest<'_>> = plan
        .records
        .iter()
        .map(|r| AppendRequest {
            topic: &plan.topic,
            queue_id: plan.queue_id,
            body: &r.body,
            flag: r.flag,
            sys_flag: plan.sys_flag,
            born_timestamp: plan.born_timestamp,
            born_host: plan.born_host,
            properties: &r.properties,
            reconsume_times: plan.reconsume_times,
            prepared_transaction_offset: 0,
            tag_code: r.tag_code,
            durability: r.durability,
        })
        .collect();
    let result = match reqs.as_slice() {
        [one] if !plan.batch => shard.store.append(*one).await.map(|r| vec![r]),
        many => shard.store.append_batch(many).await,
    };
    match result {
        Ok(results) => {
            let bytes: usize = plan.records.iter().map(|r| r.body.len()).sum();
            shard
                .metrics
                .send_messages
                .fetch_add(results.len() as u64, Relaxed);
            shard.metrics.send_bytes.fetch_add(bytes as u64, Relaxed);
            if plan.half {
                let mut t = shard.transactions.borrow_mut();
                for (r, rec) in results.iter().zip(&plan.records) {
                    let p = transaction::pending_of(
                        &rec.properties,
                        plan.born_timestamp,
                        r.phys_offset.0,
                        r.store_timestamp,
                    );
                    t.add(r.queue_offset.0, p);
                }
            }
            if (plan.topic == schedule::SCHEDULE_TOPIC || plan.topic == schedule::TIMER_TOPIC)
                && let Some(due) = plan.records.iter().map(|r| r.tag_code).min()
            {
                shard.scheduler.note_due(&plan.topic, plan.queue_id, due);
            }
            success(shard, request, &plan, &results)
        }
        Err(e) => {
            shard.metrics.send_errors.fetch_add(1, Relaxed);
            tracing::warn!(shard = shard.index, topic = %plan.topic, error = %e, "send failed in the store");
            with_region(shard, error_response(request, &BrokerError::Storage(e)))
        }
    }
}

fn success(shard: &Shard, request: &Command, plan: &Plan, results: &[AppendResult]) -> Command {
    let first = results.first().map_or(0, |r| r.queue_offset.0 as i64);
    let mut header =
        SendMessageResponseHeader::new(msg_ids(shard, results), plan.answer_queue_id, first);
    header.transaction_id = plan.transaction_id.clone();
    header.msg_region = shard.cfg.region_id.clone();
    header.trace_on = shard.cfg.trace_on;
    let mut response = ok(request);
    header.encode(&mut response.ext);
    response
}

/// The offset message ids of `results`, comma-separated (spec §3.3): one string, no
/// intermediate vector (a batch of 16 used to allocate 17 strings and a vector per send).
fn msg_ids(shard: &Shard, results: &[AppendResult]) -> String {
    match results {
        [one] => offset_msg_id(shard.addr, one.phys_offset.0 as i64),
        many => {
            let mut out = String::with_capacity(many.len() * 33);
            for (i, r) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&offset_msg_id(shard.addr, r.phys_offset.0 as i64));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> String {
        let mut out = String::new();
        properties::encode(pairs.iter().copied(), &mut out);
        out
    }

    #[test]
    fn one_pass_finds_what_each_lookup_finds() {
        let p = props(&[
            ("TAGS", "A"),
            ("WAIT", "false"),
            ("UNIQ_KEY", "U1"),
            ("DELAY", "2"),
            ("TRAN_MSG", "true"),
            ("TIMER_DELAY_MS", "5"),
        ]);
        // A repeated key: the last occurrence wins, as in `properties::find`.
        let p = format!("{p}TAGS\u{1}B\u{2}");
        let sp = SendProps::of(&p);
        assert_eq!(sp.tags, properties::find(&p, keys::TAGS));
        assert_eq!(sp.tags, Some("B"));
        assert_eq!(sp.wait, properties::find(&p, keys::WAIT));
        assert_eq!(sp.uniq_key, properties::find(&p, keys::UNIQ_KEY));
        assert_eq!(sp.delay, properties::find(&p, keys::DELAY));
        assert_eq!(sp.tran_msg, properties::find(&p, keys::TRAN_MSG));
        assert!(sp.timer);
        assert_eq!(SendProps::of("").tags, None);
    }

    #[test]
    fn message_kinds_and_sizes() {
        assert!(check_properties(&props(&[("TAGS", "A"), ("KEYS", "k")])).is_ok());
        assert!(SendProps::of(&props(&[("TRAN_MSG", "true")])).is_half(0));
        assert!(SendProps::of("").is_half(sysflag::TRANSACTION_PREPARED_TYPE));
        assert!(!SendProps::of(&props(&[("TRAN_MSG", "false")])).is_half(0));
        assert!(SendProps::of(&props(&[("TIMER_DELAY_SEC", "1")])).timer);
        assert!(!SendProps::of(&props(&[("TAGS", "A")])).timer);
        let stripped = without_timer(&props(&[("TIMER_DELAY_MS", "5"), ("TAGS", "A")]));
        assert_eq!(stripped, props(&[("TAGS", "A")]));
        let bad = props(&[("K", &"v".repeat(PROPERTIES_LEN_MAX))]);
        let err = check_properties(&bad).unwrap_err();
        assert!(matches!(err, BrokerError::MessageIllegal(_)), "{err:?}");
        assert!(check_properties(&props(&[("TRAN_MSG", "false")])).is_ok());
    }

    #[test]
    fn delay_levels() {
        assert!(SendProps::of(&props(&[("DELAY", "3")])).wants_delay());
        assert!(!SendProps::of(&props(&[("DELAY", "0")])).wants_delay());
        assert!(!SendProps::of(&props(&[("DELAY", "-1")])).wants_delay());
        assert!(!SendProps::of(&props(&[("DELAY", "x")])).wants_delay());
        assert!(!SendProps::of("").wants_delay());
    }
}
