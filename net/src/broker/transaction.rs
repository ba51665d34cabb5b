//! Transactional messages (spec §3.10, §4.9): half messages, their resolution, and the
//! broker's check-back.
//!
//! ```text
//!  send TRAN_MSG=true ─► RMQ_SYS_TRANS_HALF_TOPIC/0  (REAL_TOPIC, REAL_QID, __transactionId__,
//!                        │                          __RINGMQ_REAL_MARK; sysFlag NOT_TYPE)
//!                        ├─ END_TRANSACTION commit ─► real topic/queue (sysFlag COMMIT,
//!                        │                             preparedTransactionOffset = half phys)
//!                        ├─ END_TRANSACTION rollback
//!                        └─ check max reached ──────► TRANS_CHECK_MAX_TIME_TOPIC/0
//!                        then op record ───────────► RMQ_SYS_TRANS_OP_HALF_TOPIC/0, body
//!                                                    "<half queue offset>", TAGS=d
//!  each check-back ── first a check record ────────► RMQ_SYS_TRANS_OP_HALF_TOPIC/0, body
//!                                                    "<half queue offset>", TAGS=c
//! ```
//!
//! # State
//! The unresolved half messages ([`TxTable`]) are kept in memory, keyed by half-queue offset.
//! On open they are rebuilt from the logs: every half-queue entry whose offset no op record
//! names is unresolved ([`rebuild_pending`]).
//!
//! Check counts survive a restart. Java keeps the count as the `TRANSACTION_CHECK_TIMES`
//! property of a re-put copy of the half message (one full copy per check). Here a check
//! appends a small check record (tag `c`) to the op queue before the check is sent, and the
//! rebuild counts them per half offset ([`OpLog`]): same durability as the op records, no
//! copy of the body, and the half message keeps its offsets, so a late answer to an earlier
//! check still resolves it. A crash between the record and the send costs a check, never
//! grants an extra one. The check request and a parked message still carry
//! `TRANSACTION_CHECK_TIMES` for clients and operators.
//!
//! # Exactly-once commit
//! A half message leaves the table before the first await of its resolution, so two
//! END_TRANSACTIONs racing for it commit once. The commit record is written before the op
//! record; a crash between them leaves a committed half without an op. On rebuild such a
//! half is recognised by looking for its commit in the real queue from `__RINGMQ_REAL_MARK`
//! (the real queue's end when the half was stored: a commit can only come later), which
//! bounds the scan to what was appended to that queue since; the missing op is written then.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use ringmq_codec::Command;
use ringmq_codec::codes::request;
use ringmq_codec::filter::tag_code;
use ringmq_codec::headers::transaction::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader, commit_or_rollback,
};
use ringmq_codec::message::offset_msg_id;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::{RecordCrc, RecordFields, RecordView};
use ringmq_codec::message::sysflag;
use ringmq_codec::typed::Header;
use ringmq_engine::{AppendRequest, Durability, PhysOffset, QueueOffset};

use super::config::FlushDiskType;
use super::errors::BrokerError;
use super::schedule;
use super::shard::Shard;

pub const HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
pub const OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
pub const CHECK_MAX_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// The real queue's max offset when the half message was stored (see the module doc).
pub const REAL_MARK_KEY: &str = "__RINGMQ_REAL_MARK";
/// Tag of op records (Java's "d", for "delete").
pub const OP_TAG: &str = "d";
/// Tag of check records in the op queue (ringmq's; Java re-puts the half message instead).
pub const CHECK_TAG: &str = "c";
/// Most real-queue entries looked at per unresolved half on rebuild.
pub const REBUILD_SCAN_MAX: u64 = 100_000;

/// An unresolved half message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub phys: u64,
    pub store_ms: i64,
    pub born_ms: i64,
    /// CHECK_IMMUNITY_TIME_IN_SECONDS in ms, if the producer set it.
    pub immunity_ms: Option<i64>,
    pub group: String,
    pub checks: u32,
}

impl Pending {
    /// Whether the checker may ask about it at `now`: older than the timeout, or than the
    /// producer's immunity time when that is longer.
    pub fn is_checkable(&self, now_ms: i64, timeout_ms: u64) -> bool {
        let wait = i64::try_from(timeout_ms)
            .unwrap_or(i64::MAX)
            .max(self.immunity_ms.unwrap_or(0));
        now_ms.saturating_sub(self.store_ms) >= wait
    }
}

/// The unresolved half messages of a shard, by half-queue offset.
#[derive(Debug, Default)]
pub struct TxTable {
    pending: BTreeMap<u64, Pending>,
}

impl TxTable {
    pub fn add(&mut self, half_offset: u64, p: Pending) {
        self.pending.insert(half_offset, p);
    }

    /// Takes the half message out (it is being resolved); `None` when already resolved.
    pub fn take(&mut self, half_offset: u64) -> Option<Pending> {
        self.pending.remove(&half_offset)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The half offsets the checker should look at now, oldest first.
    pub fn checkable(&self, now_ms: i64, timeout_ms: u64) -> Vec<u64> {
        self.pending
            .iter()
            .filter(|(_, p)| p.is_checkable(now_ms, timeout_ms))
            .map(|(o, _)| *o)
            .collect()
    }

    pub fn get_mut(&mut self, half_offset: u64) -> Option<&mut Pending> {
        self.pending.get_mut(&half_offset)
    }
}

/// What the op queue says about half messages: which are resolved and how often each was
/// checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct OpLog {
    pub resolved: HashSet<u64>,
    pub checks: HashMap<u64, u32>,
}

impl OpLog {
    /// Folds in one op-queue record with tag `tag` and body `body`. Untagged records count as
    /// resolutions (every op record before check records existed was one).
    pub fn apply(&mut self, tag: Option<&str>, body: &[u8]) {
        let offsets = parse_op_body(body);
        if tag == Some(CHECK_TAG) {
            for o in offsets {
                let n = self.checks.entry(o).or_default();
                *n = n.saturating_add(1);
            }
        } else {
            self.resolved.extend(offsets);
        }
    }

    pub fn checks_of(&self, half_offset: u64) -> u32 {
        self.checks.get(&half_offset).copied().unwrap_or(0)
    }
}

/// The half offsets an op record's body names (comma-separated decimals; junk ignored).
pub fn parse_op_body(body: &[u8]) -> Vec<u64> {
    std::str::from_utf8(body)
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The unresolved half offsets: those in `halves` no op names.
pub fn rebuild_pending(halves: impl IntoIterator<Item = u64>, resolved: &HashSet<u64>) -> Vec<u64> {
    halves
        .into_iter()
        .filter(|o| !resolved.contains(o))
        .collect()
}

/// The half record's properties: the message's, with REAL_*, the transaction id and the real
/// queue's mark.
pub fn half_properties(props: &str, topic: &str, queue_id: i32, mark: u64) -> String {
    let (qid, mark) = (queue_id.to_string(), mark.to_string());
    let uniq = properties::find(props, keys::UNIQ_KEY)
        .unwrap_or("")
        .to_owned();
    let mut out = String::with_capacity(props.len() + 96);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| {
                ![
                    keys::REAL_TOPIC,
                    keys::REAL_QID,
                    keys::TRANSACTION_ID,
                    REAL_MARK_KEY,
                ]
                .contains(k)
            })
            .chain([
                (keys::REAL_TOPIC, topic),
                (keys::REAL_QID, qid.as_str()),
                (keys::TRANSACTION_ID, uniq.as_str()),
                (REAL_MARK_KEY, mark.as_str()),
            ]),
        &mut out,
    );
    out
}

/// The committed copy's properties: the half's minus REAL_*, TRAN_MSG and the mark.
pub fn committed_properties(props: &str) -> String {
    let mut out = String::with_capacity(props.len());
    properties::encode(
        properties::iter(props).filter(|(k, _)| {
            ![
                keys::REAL_TOPIC,
                keys::REAL_QID,
                keys::TRAN_MSG,
                REAL_MARK_KEY,
            ]
            .contains(k)
        }),
        &mut out,
    );
    out
}

fn durability(shard: &Shard) -> Durability {
    match shard.cfg.flush {
        FlushDiskType::Sync => Durability::Synced,
        FlushDiskType::Async => Durability::Written,
    }
}

/// What the table keeps of a half record with properties `props` stored at `phys`.
pub fn pending_of(props: &str, born_ms: i64, phys: u64, store_ms: i64) -> Pending {
    Pending {
        phys,
        store_ms,
        born_ms,
        immunity_ms: properties::find(props, keys::CHECK_IMMUNITY_TIME_IN_SECONDS)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .map(|s| s.saturating_mul(1000)),
        group: properties::find(props, keys::PGROUP)
            .unwrap_or("")
            .to_owned(),
        checks: 0,
    }
}

async fn read_record(shard: &Shard, phys: u64) -> Option<Vec<u8>> {
    shard.store.record_at(PhysOffset(phys)).await.ok().flatten()
}

/// Rebuilds the unresolved half messages from the half and op queues (module doc). Runs
/// before the shard serves.
pub async fn rebuild(shard: &Rc<Shard>) -> Result<(), String> {
    let mut ops = OpLog::default();
    let (min, max) = shard.store.queue_offsets(OP_TOPIC, 0);
    for off in min.0..max.0 {
        let Some(e) = shard.store.queue_entry(OP_TOPIC, 0, QueueOffset(off)) else {
            continue;
        };
        if let Some(bytes) = read_record(shard, e.phys).await
            && let Ok(v) = RecordView::parse(&bytes)
        {
            ops.apply(properties::find(v.properties, keys::TAGS), v.body);
        }
    }
    let (min, max) = shard.store.queue_offsets(HALF_TOPIC, 0);
    let open = rebuild_pending(min.0..max.0, &ops.resolved);
    let mut committed = 0usize;
    for off in open {
        let Some(e) = shard.store.queue_entry(HALF_TOPIC, 0, QueueOffset(off)) else {
            continue;
        };
        let Some(bytes) = read_record(shard, e.phys).await else {
            continue;
        };
        let Ok(v) = RecordView::parse(&bytes) else {
            continue;
        };
        if was_committed(shard, &v, e.phys).await {
            write_op(shard, off).await.map_err(|e| format!("{e:?}"))?;
            committed += 1;
            continue;
        }
        let mut p = pending_of(v.properties, v.born_timestamp, e.phys, v.store_timestamp);
        p.checks = ops.checks_of(off);
        shard.transactions.borrow_mut().add(off, p);
    }
    let n = shard.transactions.borrow().len();
    if n > 0 || committed > 0 {
        tracing::info!(
            shard = shard.index,
            unresolved = n,
            committed_without_op = committed,
            "transactional half messages recovered"
        );
    }
    Ok(())
}

/// Whether the real queue holds a commit of the half at `phys` after its mark.
async fn was_committed(shard: &Shard, v: &RecordView<'_>, phys: u64) -> bool {
    let real = properties::find(v.properties, keys::REAL_TOPIC);
    let qid = properties::find(v.properties, keys::REAL_QID).and_then(|s| s.parse::<i32>().ok());
    let mark = properties::find(v.properties, REAL_MARK_KEY).and_then(|s| s.parse::<u64>().ok());
    let (Some(real), Some(qid), Some(mark)) = (real, qid, mark) else {
        return false;
    };
    let (_, max) = shard.store.queue_offsets(real, qid);
    let end = max.0.min(mark.saturating_add(REBUILD_SCAN_MAX));
    for off in mark..end {
        let Some(e) = shard.store.queue_entry(real, qid, QueueOffset(off)) else {
            continue;
        };
        if let Some(bytes) = read_record(shard, e.phys).await
            && let Ok(c) = RecordView::parse(&bytes)
            && c.prepared_transaction_offset == phys as i64
            && sysflag::transaction_type(c.sys_flag) == sysflag::TRANSACTION_COMMIT_TYPE
        {
            return true;
        }
    }
    false
}

/// Records that the half at `half_offset` is resolved.
async fn write_op(shard: &Shard, half_offset: u64) -> Result<(), BrokerError> {
    write_op_record(shard, half_offset, OP_TAG).await
}

/// Records one check-back of the half at `half_offset` (counted by [`OpLog`] on rebuild).
async fn write_check(shard: &Shard, half_offset: u64) -> Result<(), BrokerError> {
    write_op_record(shard, half_offset, CHECK_TAG).await
}

async fn write_op_record(shard: &Shard, half_offset: u64, tag: &str) -> Result<(), BrokerError> {
    let body = half_offset.to_string();
    let mut props = String::new();
    properties::encode([(keys::TAGS, tag)], &mut props);
    shard
        .store
        .append(AppendRequest {
            topic: OP_TOPIC,
            queue_id: 0,
            body: body.as_bytes(),
            flag: 0,
            sys_flag: 0,
            born_timestamp: shard.now_ms(),
            born_host: shard.addr,
            properties: &props,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            tag_code: tag_code(Some(tag)),
            durability: durability(shard),
        })
        .await
        .map(|_| ())
        .map_err(BrokerError::Storage)
}

/// END_TRANSACTION (37). Oneway from clients: the answer is only sent to a two-way request.
pub async fn end_transaction(shard: Rc<Shard>, request: Command) -> Result<Command, BrokerError> {
    let h = EndTransactionRequestHeader::decode(&request.ext)?;
    let ok = Command::response_to(&request, ringmq_codec::codes::response::SUCCESS);
    let commit = match h.commit_or_rollback {
        commit_or_rollback::COMMIT => true,
        commit_or_rollback::ROLLBACK => false,
        _ => return Ok(ok),
    };
    let phys = u64::try_from(h.commit_log_offset).unwrap_or(u64::MAX);
    let bytes = read_record(&shard, phys).await.ok_or_else(|| {
        BrokerError::System("Find prepared transaction message failed".to_owned())
    })?;
    let v = RecordView::parse(&bytes)
        .map_err(|_| BrokerError::System("Find prepared transaction message failed".to_owned()))?;
    if v.topic != HALF_TOPIC
        || properties::find(v.properties, keys::PGROUP) != Some(h.producer_group.as_str())
        || v.queue_offset != h.tran_state_table_offset
        || v.phys_offset != h.commit_log_offset
    {
        return Err(BrokerError::System(
            "the transaction does not match its prepared message".to_owned(),
        ));
    }
    let half_offset = u64::try_from(v.queue_offset).unwrap_or(u64::MAX);
    if let Some(imm) = properties::find(v.properties, keys::CHECK_IMMUNITY_TIME_IN_SECONDS)
        .and_then(|s| s.trim().parse::<i64>().ok())
        && !h.from_transaction_check.unwrap_or(false)
        && shard.now_ms().saturating_sub(v.born_timestamp) > imm.saturating_mul(1000)
    {
        return Err(BrokerError::System(
            "the transaction's immunity time has passed; it is decided by a check".to_owned(),
        ));
    }
    let Some(pending) = shard.transactions.borrow_mut().take(half_offset) else {
        tracing::debug!(
            shard = shard.index,
            half_offset,
            "END_TRANSACTION for a resolved half message"
        );
        return Ok(ok);
    };
    if commit && let Err(e) = commit_half(&shard, &v, phys).await {
        shard.transactions.borrow_mut().add(half_offset, pending);
        return Err(e);
    }
    write_op(&shard, half_offset).await?;
    tracing::debug!(
        shard = shard.index,
        half_offset,
        commit,
        "transaction resolved"
    );
    Ok(ok)
}

/// Writes the committed copy of the half record `v` (at `phys`) to its real queue, through
/// its delay level or timer when it has one.
async fn commit_half(shard: &Shard, v: &RecordView<'_>, phys: u64) -> Result<(), BrokerError> {
    let real = properties::find(v.properties, keys::REAL_TOPIC)
        .ok_or_else(|| BrokerError::System("half message without REAL_TOPIC".to_owned()))?;
    let real_qid: i32 = properties::find(v.properties, keys::REAL_QID)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BrokerError::System("half message without REAL_QID".to_owned()))?;
    let mut props = committed_properties(v.properties);
    let mut topic = real.to_owned();
    let mut qid = real_qid;
    let mut tag = tag_code(properties::find(&props, keys::TAGS));
    if let Some(level) = schedule::level_of(
        properties::find(&props, keys::DELAY),
        shard.cfg.delay_levels_ms.len(),
    ) {
        let due = schedule::due_for_level(&shard.cfg.delay_levels_ms, level, shard.now_ms());
        props = schedule::schedule_properties(&props, real, real_qid, due);
        topic = schedule::SCHEDULE_TOPIC.to_owned();
        qid = level as i32 - 1;
        tag = due;
    } else {
        // A timer still ahead waits in the timer cascade; an unreadable one is delivered now
        // (the half message was accepted, so it is not refused here).
        let now = shard.now_ms();
        let at = schedule::timer_deliver_ms(&props, now, shard.cfg.timer_max_delay_ms);
        if let Ok(Some(at)) = at
            && let Some((k, hop_due)) = schedule::timer_hop(&shard.cfg, now, at)
        {
            props = schedule::timer_properties(&props, real, real_qid, at, hop_due);
            topic = schedule::TIMER_TOPIC.to_owned();
            qid = k as i32;
            tag = hop_due;
        }
    }
    shard
        .store
        .append(AppendRequest {
            topic: &topic,
            queue_id: qid,
            body: v.body,
            flag: v.flag,
            sys_flag: sysflag::with_transaction_type(v.sys_flag, sysflag::TRANSACTION_COMMIT_TYPE),
            born_timestamp: v.born_timestamp,
            born_host: v.born_host,
            properties: &props,
            reconsume_times: v.reconsume_times,
            prepared_transaction_offset: phys as i64,
            tag_code: tag,
            durability: durability(shard),
        })
        .await
        .map_err(BrokerError::Storage)?;
    shard.scheduler.note_due(&topic, qid, tag);
    Ok(())
}

/// `props` with `TRANSACTION_CHECK_TIMES` set to `checks`.
pub fn with_check_times(props: &str, checks: u32) -> String {
    let n = checks.to_string();
    let mut out = String::with_capacity(props.len() + 32);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| *k != keys::TRANSACTION_CHECK_TIMES)
            .chain([(keys::TRANSACTION_CHECK_TIMES, n.as_str())]),
        &mut out,
    );
    out
}

/// The CHECK_TRANSACTION_STATE request for the half record `v` at `phys`, checked for the
/// `checks`-th time: the header, and the record re-encoded with its real topic and queue
/// (spec §3.10) and `TRANSACTION_CHECK_TIMES`.
pub fn check_request(
    v: &RecordView<'_>,
    phys: u64,
    broker_name: &str,
    checks: u32,
) -> Option<Command> {
    let real = properties::find(v.properties, keys::REAL_TOPIC)?;
    let qid: i32 = properties::find(v.properties, keys::REAL_QID)?
        .parse()
        .ok()?;
    let uniq = properties::find(v.properties, keys::UNIQ_KEY).map(str::to_owned);
    let props = with_check_times(v.properties, checks);
    let fields = RecordFields {
        topic: real,
        queue_id: qid,
        flag: v.flag,
        queue_offset: v.queue_offset,
        phys_offset: v.phys_offset,
        sys_flag: v.sys_flag,
        born_timestamp: v.born_timestamp,
        born_host: v.born_host,
        store_timestamp: v.store_timestamp,
        store_host: v.store_host,
        reconsume_times: v.reconsume_times,
        prepared_transaction_offset: v.prepared_transaction_offset,
        body: v.body,
        properties: &props,
    };
    let mut body = Vec::new();
    fields.encode(RecordCrc::None, &mut body).ok()?;
    let mut cmd = Command::request(request::CHECK_TRANSACTION_STATE).with_body(body);
    CheckTransactionStateRequestHeader {
        topic: Some(real.to_owned()),
        tran_state_table_offset: v.queue_offset,
        commit_log_offset: phys as i64,
        msg_id: uniq.clone(),
        transaction_id: uniq,
        offset_msg_id: Some(offset_msg_id(v.store_host, phys as i64)),
        broker_name: Some(broker_name.to_owned()),
    }
    .encode(&mut cmd.ext);
    Some(cmd)
}

/// The shard's checker: every `transactionCheckInterval`, asks a live producer of the group
/// about each half message older than the timeout, and parks those asked
/// `transactionCheckMax` times in `TRANS_CHECK_MAX_TIME_TOPIC`.
pub async fn check_loop(shard: Rc<Shard>) {
    let interval = Duration::from_millis(shard.cfg.transaction_check_interval_ms);
    loop {
        compio::time::sleep(interval).await;
        if let Err(e) = check_round(&shard).await {
            tracing::warn!(shard = shard.index, error = ?e, "transaction check round failed");
        }
    }
}

async fn check_round(shard: &Rc<Shard>) -> Result<(), BrokerError> {
    let due = shard
        .transactions
        .borrow()
        .checkable(shard.now_ms(), shard.cfg.transaction_timeout_ms);
    for half_offset in due {
        let Some(p) = shard
            .transactions
            .borrow()
            .pending
            .get(&half_offset)
            .cloned()
        else {
            continue;
        };
        let Some(bytes) = read_record(shard, p.phys).await else {
            // Gone (retention): nothing left to decide.
            shard.transactions.borrow_mut().take(half_offset);
            continue;
        };
        let Ok(v) = RecordView::parse(&bytes) else {
            shard.transactions.borrow_mut().take(half_offset);
            continue;
        };
        if p.checks >= shard.cfg.transaction_check_max {
            if shard.transactions.borrow_mut().take(half_offset).is_none() {
                continue;
            }
            park_check_max(shard, &v, p.checks).await?;
            write_op(shard, half_offset).await?;
            tracing::info!(
                shard = shard.index,
                half_offset,
                checks = p.checks,
                "half message checked too often; parked in {CHECK_MAX_TOPIC}"
            );
            continue;
        }
        let conns = shard.clients.borrow().producer_conns(&p.group);
        let n = conns.len();
        let live = (0..n)
            .filter_map(|i| conns.get((i + p.checks as usize) % n))
            .find_map(|id| shard.connection(*id));
        let Some(conn) = live else {
            continue;
        };
        let checks = p.checks.saturating_add(1);
        let Some(cmd) = check_request(&v, p.phys, &shard.name, checks) else {
            continue;
        };
        // Counted durably before it is sent (module doc).
        write_check(shard, half_offset).await?;
        match shard.transactions.borrow_mut().get_mut(half_offset) {
            Some(p) => p.checks = checks,
            // Resolved while the check record was written: nothing to ask.
            None => continue,
        }
        if let Err(e) = conn.oneway(cmd) {
            tracing::debug!(peer = %conn.peer(), error = %e, "cannot send a transaction check");
        }
    }
    Ok(())
}

async fn park_check_max(shard: &Shard, v: &RecordView<'_>, checks: u32) -> Result<(), BrokerError> {
    let props = with_check_times(v.properties, checks);
    shard
        .store
        .append(AppendRequest {
            topic: CHECK_MAX_TOPIC,
            queue_id: 0,
            body: v.body,
            flag: v.flag,
            sys_flag: v.sys_flag,
            born_timestamp: v.born_timestamp,
            born_host: v.born_host,
            properties: &props,
            reconsume_times: v.reconsume_times,
            prepared_transaction_offset: v.phys_offset,
            tag_code: tag_code(properties::find(v.properties, keys::TAGS)),
            durability: durability(shard),
        })
        .await
        .map(|_| ())
        .map_err(BrokerError::Storage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(store_ms: i64, immunity_ms: Option<i64>) -> Pending {
        Pending {
            phys: 0,
            store_ms,
            born_ms: store_ms,
            immunity_ms,
            group: "g".into(),
            checks: 0,
        }
    }

    #[test]
    fn rebuild_keeps_what_no_op_resolved() {
        let resolved: HashSet<u64> = [1, 3, 7].into_iter().collect();
        assert_eq!(rebuild_pending(0..6, &resolved), vec![0, 2, 4, 5]);
        assert_eq!(parse_op_body(b"3"), vec![3]);
        assert_eq!(parse_op_body(b"1,2, 9,x"), vec![1, 2, 9]);
        assert!(parse_op_body(b"\xff").is_empty());
    }

    #[test]
    fn check_records_count_and_op_records_resolve() {
        let mut ops = OpLog::default();
        ops.apply(Some(CHECK_TAG), b"4");
        ops.apply(Some(CHECK_TAG), b"4");
        ops.apply(Some(CHECK_TAG), b"6");
        ops.apply(Some(OP_TAG), b"6");
        ops.apply(None, b"9");
        ops.apply(Some(CHECK_TAG), b"junk");
        assert_eq!(ops.checks_of(4), 2);
        assert_eq!(ops.checks_of(6), 1);
        assert_eq!(ops.checks_of(5), 0);
        let resolved: HashSet<u64> = [6, 9].into_iter().collect();
        assert_eq!(ops.resolved, resolved, "check records resolve nothing");
        assert_eq!(rebuild_pending(4..7, &ops.resolved), vec![4, 5]);
    }

    #[test]
    fn check_times_property_is_replaced() {
        let mut p = String::new();
        properties::encode([("PGROUP", "pg"), ("TRANSACTION_CHECK_TIMES", "1")], &mut p);
        let q = with_check_times(&p, 3);
        assert_eq!(
            properties::find(&q, keys::TRANSACTION_CHECK_TIMES),
            Some("3")
        );
        assert_eq!(properties::find(&q, "PGROUP"), Some("pg"));
        assert_eq!(properties::iter(&q).count(), 2);
    }

    #[test]
    fn checks_wait_for_timeout_or_immunity() {
        let mut t = TxTable::default();
        t.add(0, pending(1_000, None));
        t.add(1, pending(1_000, Some(20_000)));
        t.add(2, pending(5_000, None));
        assert!(t.checkable(6_999, 6_000).is_empty());
        assert_eq!(t.checkable(7_000, 6_000), vec![0]);
        assert_eq!(t.checkable(11_000, 6_000), vec![0, 2]);
        assert_eq!(t.checkable(21_000, 6_000), vec![0, 1, 2]);
        assert!(t.take(0).is_some());
        assert!(t.take(0).is_none(), "a half message resolves once");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn half_and_committed_properties() {
        let mut p = String::new();
        properties::encode(
            [
                ("TRAN_MSG", "true"),
                ("PGROUP", "pg"),
                ("UNIQ_KEY", "U"),
                ("TAGS", "A"),
            ],
            &mut p,
        );
        let h = half_properties(&p, "T", 2, 40);
        assert_eq!(properties::find(&h, keys::REAL_TOPIC), Some("T"));
        assert_eq!(properties::find(&h, keys::REAL_QID), Some("2"));
        assert_eq!(properties::find(&h, keys::TRANSACTION_ID), Some("U"));
        assert_eq!(properties::find(&h, REAL_MARK_KEY), Some("40"));
        let c = committed_properties(&h);
        assert_eq!(properties::find(&c, keys::REAL_TOPIC), None);
        assert_eq!(properties::find(&c, keys::TRAN_MSG), None);
        assert_eq!(properties::find(&c, REAL_MARK_KEY), None);
        assert_eq!(properties::find(&c, "PGROUP"), Some("pg"));
        assert_eq!(properties::find(&c, "UNIQ_KEY"), Some("U"));
    }
}
