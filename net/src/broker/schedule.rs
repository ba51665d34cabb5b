//! Delay levels (spec §4.8): a send with `DELAY = n > 0` is stored in `SCHEDULE_TOPIC_XXXX`
//! queue `n − 1` with `REAL_TOPIC` / `REAL_QID`, and re-put to its real queue when due.
//!
//! # Why a queue per level is enough
//! Every message of level `n` waits the same time, so the schedule queue `n − 1` is ordered by
//! due time (append order = store order). The consume-queue tag slot of a schedule record holds
//! its due time in ms (the engine's `tag_code` is opaque; recovery recomputes it with
//! [`tag_code_of`] from the `__RINGMQ_DUE` property the send path writes). The whole in-memory
//! state is therefore one cursor per level: the next schedule-queue offset to deliver.
//!
//! ```text
//!  SCHEDULE_TOPIC_XXXX / queue L-1:  [due 10][due 12][due 15] ...
//!                                      ^ cursor[L-1]: entries before it are delivered
//! ```
//!
//! # Exactly once across kill -9: an intent record
//! The cursors live in `config/delayOffset.json`, written with `write_atomically` (fsync).
//! Before a batch of due messages of one level is re-put, the file is written with that level's
//! *intent*: the batch's range `[cursor, end)` and, for each real queue the batch writes to,
//! that queue's max offset at that moment (its *mark*). Each re-put copy carries the schedule
//! record's physical offset in `__RINGMQ_SCHEDULE_SRC`. After the batch the file is written
//! again with `cursor = end` and no intent. A crash between the two writes leaves an intent:
//! on open, for each real queue of the intent the entries from its mark to its current end are
//! read and their `__RINGMQ_SCHEDULE_SRC` values collected; the batch entries found there are
//! skipped, the others delivered. The scan is bounded by what was appended to those queues
//! after the mark — not by the queue length — and finds every copy because a copy can only
//! have been appended after its mark. This costs one small write per batch (not per
//! message; fsynced under SYNC_FLUSH) plus one per delivery pass for the cursors batches moved,
//! and no engine change; persisting the cursor in the same log write as the re-put would need
//! a multi-record atomic append in the engine.
//!
//! # Timers: a cascade of fixed-delay stages
//! A message with 5.x timer properties may be due at any time, so it cannot join a
//! fixed-delay queue for its whole wait. It hops instead through the [`TIMER_STAGES`] queues
//! of [`TIMER_TOPIC`], stage `k` waiting `100 ms × 2^k`: each hop picks the longest stage not
//! longer than the time left to `TIMER_OUT_MS` ([`stage_for`]), so each stage queue is again
//! ordered by due time and served by the same cursor/intent machinery, and a message never
//! arrives early. No stage is longer than half of `fileReservedTime` ([`max_stage`]), so
//! retention never deletes a record still waiting in its stage. A message is re-written about
//! `log2(delay / 100 ms)` times plus once per longest-stage span (≈ 26 hops for 7 days with
//! the 72 h default). Each hop's copy names its source, so hops are exactly once too.
//!
//! # Reference hops
//! Only the first stage record holds the whole message. A later hop writes a small record
//! with an empty body, the routing keys and a reference ([`REF_KEY`], [`REF_AT_KEY`]) to that
//! full record; the delivery reads the full record and re-puts it. 1 KiB timers hop about
//! five times on the way to a one-minute delay, so this cuts their re-put bytes about
//! fivefold. A hop whose due time lies more than half of `fileReservedTime` after the full
//! record was stored copies the message again instead ([`TimerRef::lasts_until`]), so
//! retention by age never deletes a message a timer still needs.
//!
//! # The last hop
//! A fixed stage makes a message wait its whole length, so a last hop through the 100 ms
//! stage 0 would arrive up to 100 ms late. Stage 0 entries are therefore due at their exact
//! delivery time (or 100 ms after the hop, when 100–200 ms remain: [`timer_hop`]). They are
//! due within 100 ms of their append, but not in queue order, so stage 0 is served as a
//! *window* ([`deliver_window`]): every due entry after the cursor is re-put, the re-put ones
//! are remembered in memory, and the cursor moves over the delivered prefix. The window's
//! intent also lists the records delivered ahead of the cursor before it was written
//! (`done`), so the skip set rebuilt after a crash covers them as well as the batch in flight.
//! `bench/run-suite --timers` (1 M timers due within one minute) went from p99 304 ms to
//! the figure in the README's performance section with this and the batched record reads.
//!
//! A re-put is acknowledged by the store (written for ASYNC_FLUSH, durable for SYNC_FLUSH)
//! before the cursor moves, so kill -9 never loses a message the cursor passed.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use ringmq_codec::filter::tag_code;
use ringmq_codec::message::properties::{self, keys};
use ringmq_codec::message::record::RecordView;
use ringmq_engine::queue::CqEntry;
use ringmq_engine::{AppendRequest, Durability, QueueOffset};
use serde::{Deserialize, Serialize};

use super::config::{BrokerConfig, FlushDiskType};
use super::longpoll::Signal;
use super::offsets::write_atomically;
use super::shard::Shard;

pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_DELAY_LEVELS: &str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// Most levels `messageDelayLevel` may list (the clients know 18).
pub const MAX_LEVELS: usize = 18;
/// Due time (ms) of a schedule record, the source of its consume-queue tag slot.
pub const DUE_KEY: &str = "__RINGMQ_DUE";
/// Physical offset of the schedule record a re-put copy came from.
pub const SOURCE_KEY: &str = "__RINGMQ_SCHEDULE_SRC";
pub const CURSORS_FILE: &str = "delayOffset.json";
/// Longest sleep of the delivery task: a message put while it sleeps is delivered at most this
/// late (the skew bound), without a wake-up from the send path.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Most messages of one level re-put between two cursor writes. Each batch costs two fsynced
/// cursor writes and one group-commit append, so the batch must be large enough for those to
/// keep up with a burst of due timers: at 64 a shard fired ~6 000 timers/s and fell 95 s
/// behind 1 M timers due within a minute (`bench/run-suite --timers`).
pub const BATCH_MAX: usize = 2048;
/// Most record bytes of one batch, so a batch of large messages stays a bounded append.
pub const BATCH_BYTES_MAX: usize = 8 << 20;

/// Parses `messageDelayLevel`: 1 to [`MAX_LEVELS`] blank-separated durations, each a positive
/// integer with unit `s`, `m`, `h` or `d`, into milliseconds.
pub fn parse_delay_levels(text: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for word in text.split_whitespace() {
        let split = word.len().saturating_sub(1);
        let (num, unit) = (
            word.get(..split).unwrap_or(""),
            word.get(split..).unwrap_or(""),
        );
        let unit_ms: u64 = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("`{word}` has no unit s, m, h or d")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{word}` is not a number with a unit"))?;
        if n == 0 {
            return Err(format!("`{word}` is not positive"));
        }
        out.push(
            n.checked_mul(unit_ms)
                .ok_or_else(|| format!("`{word}` is too long"))?,
        );
    }
    if out.is_empty() || out.len() > MAX_LEVELS {
        return Err(format!("{} levels; 1 to {MAX_LEVELS} expected", out.len()));
    }
    Ok(out)
}

/// The level a `DELAY` property value asks for, clamped to the `levels` configured; `None`
/// when the message is not delayed (absent, not a number, ≤ 0).
pub fn level_of(delay: Option<&str>, levels: usize) -> Option<usize> {
    let n = delay?.trim().parse::<i64>().ok()?;
    (n > 0 && levels > 0).then(|| (n as u64).min(levels as u64) as usize)
}

/// When a message sent at `now_ms` with delay `level` (1-based, already clamped by
/// [`level_of`]) is due, given the configured level delays.
pub fn due_for_level(delays_ms: &[u64], level: usize, now_ms: i64) -> i64 {
    let delay = delays_ms.get(level.saturating_sub(1)).copied().unwrap_or(0);
    now_ms.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
}

/// The engine's tag-code function: a schedule record's slot is its due time, every other
/// record's the TAGS hash (what the send path computes at append; used by recovery).
pub fn tag_code_of(view: &RecordView<'_>) -> i64 {
    if (view.topic == SCHEDULE_TOPIC || view.topic == TIMER_TOPIC)
        && let Some(due) = properties::find(view.properties, DUE_KEY).and_then(|v| v.parse().ok())
    {
        return due;
    }
    tag_code(properties::find(view.properties, keys::TAGS))
}

/// The schedule record's properties for a message of `topic`/`queue_id` due at `due_ms`.
pub fn schedule_properties(props: &str, topic: &str, queue_id: i32, due_ms: i64) -> String {
    let (qid, due) = (queue_id.to_string(), due_ms.to_string());
    let mut out = String::with_capacity(props.len() + 64);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| ![keys::REAL_TOPIC, keys::REAL_QID, DUE_KEY].contains(k))
            .chain([
                (keys::REAL_TOPIC, topic),
                (keys::REAL_QID, qid.as_str()),
                (DUE_KEY, due.as_str()),
            ]),
        &mut out,
    );
    out
}

/// The re-put copy's properties: without DELAY, the due time and timer keys (so it is not
/// delayed again), REAL_* kept (as RocketMQ does), with the schedule source offset.
pub fn delivered_properties(props: &str, source_phys: u64) -> String {
    const DROP: &[&str] = &[
        keys::DELAY,
        DUE_KEY,
        SOURCE_KEY,
        REF_KEY,
        REF_AT_KEY,
        keys::TIMER_DELIVER_MS,
        keys::TIMER_DELAY_SEC,
        keys::TIMER_DELAY_MS,
        keys::TIMER_OUT_MS,
    ];
    let src = source_phys.to_string();
    let mut out = String::with_capacity(props.len() + 32);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| !DROP.contains(k))
            .chain([(SOURCE_KEY, src.as_str())]),
        &mut out,
    );
    out
}

/// Timer messages (5.x `TIMER_DELIVER_MS` / `TIMER_DELAY_SEC` / `TIMER_DELAY_MS`) wait in
/// the stages of this topic (send-forbidden to clients, as every `rmq_sys_` topic).
pub const TIMER_TOPIC: &str = "rmq_sys_ringmq_timer";
/// Stage `k` holds a message for `STAGE0_MS << k` ms: 100 ms … 2^23 × 100 ms ≈ 9.7 days.
pub const TIMER_STAGES: usize = 24;
pub const STAGE0_MS: i64 = 100;
/// Default `timerMaxDelaySec`: how far ahead a timer may be set (7 days).
pub const DEFAULT_TIMER_MAX_DELAY_SEC: u64 = 7 * 24 * 3600;

/// The fixed wait of timer stage `k`.
pub fn stage_ms(k: usize) -> i64 {
    STAGE0_MS << k.min(TIMER_STAGES - 1)
}

/// The stage a timer message with `remaining_ms` to go waits in next: the longest stage not
/// longer than what remains (so a message never passes its time), the shortest one for less
/// than [`STAGE0_MS`]; `None` when it is due now.
pub fn stage_for(remaining_ms: i64) -> Option<usize> {
    if remaining_ms <= 0 {
        return None;
    }
    let k = (0..TIMER_STAGES)
        .rev()
        .find(|k| stage_ms(*k) <= remaining_ms)
        .unwrap_or(0);
    Some(k)
}

/// The longest stage a record may wait in without retention (`fileReservedTime`) deleting
/// its commit-log segment first: at most half the reserved time, so a long timer hops to a
/// fresh segment well before its old one may go.
pub fn max_stage(file_reserved_time_hours: u64) -> usize {
    let keep =
        i64::try_from(file_reserved_time_hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
    (0..TIMER_STAGES)
        .rev()
        .find(|k| stage_ms(*k).saturating_mul(2) <= keep)
        .unwrap_or(0)
}

/// [`stage_for`] capped at [`max_stage`] of the broker's config.
pub fn timer_stage(cfg: &BrokerConfig, remaining_ms: i64) -> Option<usize> {
    stage_for(remaining_ms).map(|k| k.min(max_stage(cfg.file_reserved_time_hours)))
}

/// Where a timer message to be delivered at `out_ms` waits next, seen at `now_ms`: the
/// stage and the hop's due time; `None` when it is due. A stage-0 hop is due at the
/// delivery time itself when that comes first (module doc, "The last hop").
pub fn timer_hop(cfg: &BrokerConfig, now_ms: i64, out_ms: i64) -> Option<(usize, i64)> {
    let k = timer_stage(cfg, out_ms.saturating_sub(now_ms))?;
    Some((k, now_ms.saturating_add(stage_ms(k)).min(out_ms)))
}

/// The delivery time a message's timer properties ask for (`TIMER_DELIVER_MS` absolute,
/// else `TIMER_DELAY_SEC` / `TIMER_DELAY_MS` from `now_ms`); `Ok(None)` without timer
/// properties; `Err` for a value that is not a number or lies beyond `max_delay_ms`.
pub fn timer_deliver_ms(
    props: &str,
    now_ms: i64,
    max_delay_ms: i64,
) -> Result<Option<i64>, String> {
    let num = |key: &str| -> Result<Option<i64>, String> {
        properties::find(props, key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{key}={v} is not a number"))
            })
            .transpose()
    };
    let at = if let Some(at) = num(keys::TIMER_DELIVER_MS)? {
        at
    } else if let Some(sec) = num(keys::TIMER_DELAY_SEC)? {
        now_ms.saturating_add(sec.saturating_mul(1000))
    } else if let Some(ms) = num(keys::TIMER_DELAY_MS)? {
        now_ms.saturating_add(ms)
    } else {
        return Ok(None);
    };
    if at.saturating_sub(now_ms) > max_delay_ms {
        return Err(format!(
            "the timer is set more than {} s ahead (timerMaxDelaySec)",
            max_delay_ms / 1000
        ));
    }
    Ok(Some(at))
}

/// The properties of a timer message's first stage record: REAL_*, `TIMER_OUT_MS` (the
/// delivery time) and the hop's due time.
pub fn timer_properties(
    props: &str,
    topic: &str,
    queue_id: i32,
    out_ms: i64,
    hop_due: i64,
) -> String {
    let out = out_ms.to_string();
    let mut with_out = String::with_capacity(props.len() + 32);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| *k != keys::TIMER_OUT_MS)
            .chain([(keys::TIMER_OUT_MS, out.as_str())]),
        &mut with_out,
    );
    schedule_properties(&with_out, topic, queue_id, hop_due)
}

/// A hop's copy to the next timer stage: new due time and source, the rest kept.
pub fn hop_properties(props: &str, source_phys: u64, hop_due: i64) -> String {
    let (src, due) = (source_phys.to_string(), hop_due.to_string());
    let mut out = String::with_capacity(props.len() + 32);
    properties::encode(
        properties::iter(props)
            .filter(|(k, _)| ![DUE_KEY, SOURCE_KEY, REF_KEY, REF_AT_KEY].contains(k))
            .chain([(DUE_KEY, due.as_str()), (SOURCE_KEY, src.as_str())]),
        &mut out,
    );
    out
}

/// On a reference hop: `phys:size` of the full record it stands for.
pub const REF_KEY: &str = "__RINGMQ_TIMER_REF";
/// On a reference hop: store time (ms) of that record.
pub const REF_AT_KEY: &str = "__RINGMQ_TIMER_REF_AT";

/// Where the full record of a timer message is: a hop after the first writes only this
/// reference and the routing keys, not the message again (module doc, "Reference hops").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerRef {
    pub phys: u64,
    pub size: u32,
    pub stored_ms: i64,
}

impl TimerRef {
    /// The reference a record's properties carry, if it is a reference hop.
    pub fn of(props: &str) -> Option<TimerRef> {
        let (phys, size) = properties::find(props, REF_KEY)?.split_once(':')?;
        Some(TimerRef {
            phys: phys.parse().ok()?,
            size: size.parse().ok()?,
            stored_ms: properties::find(props, REF_AT_KEY)?.parse().ok()?,
        })
    }

    /// Whether the record is still safely in the log when a hop due at `due_ms` is served:
    /// retention (`fileReservedTime`) deletes segments older than `keep_ms`; half of it is
    /// the same margin [`max_stage`] keeps.
    pub fn lasts_until(&self, due_ms: i64, keep_ms: i64) -> bool {
        due_ms.saturating_sub(self.stored_ms) <= keep_ms / 2
    }
}

/// The properties of a reference hop: the routing keys of `props` (a full timer record or
/// an earlier reference hop), the reference, the hop's due time and its source.
pub fn reference_properties(props: &str, r: TimerRef, source_phys: u64, hop_due: i64) -> String {
    let at = |k: &str| properties::find(props, k).unwrap_or("");
    let (reference, stored, src, due) = (
        format!("{}:{}", r.phys, r.size),
        r.stored_ms.to_string(),
        source_phys.to_string(),
        hop_due.to_string(),
    );
    let mut out = String::with_capacity(160);
    properties::encode(
        [
            (keys::REAL_TOPIC, at(keys::REAL_TOPIC)),
            (keys::REAL_QID, at(keys::REAL_QID)),
            (keys::TIMER_OUT_MS, at(keys::TIMER_OUT_MS)),
            (DUE_KEY, due.as_str()),
            (SOURCE_KEY, src.as_str()),
            (REF_KEY, reference.as_str()),
            (REF_AT_KEY, stored.as_str()),
        ],
        &mut out,
    );
    out
}

/// A batch being delivered: written before its first re-put (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub end: u64,
    /// (real topic, real queue id, max offset before the batch).
    pub marks: Vec<(String, i32, u64)>,
    /// Timer stage 0 only: physical offsets of the records in `[cursor, end)` re-put before
    /// this intent was written (delivered ahead of the cursor; module doc, "The last hop").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<u64>,
}

/// One level's persisted state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelCursor {
    pub cursor: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
}

/// The content of `delayOffset.json`: level (1-based) → cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursors {
    pub levels: BTreeMap<usize, LevelCursor>,
}

impl Cursors {
    pub fn decode(bytes: &[u8]) -> Result<Cursors, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("{CURSORS_FILE}: {e}"))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn cursor(&self, level: usize) -> u64 {
        self.levels.get(&level).map_or(0, |c| c.cursor)
    }
}

/// The per-shard scheduler state: cursors, the schedule records already re-put by a batch
/// that was cut by a crash (found at open, skipped once), and the last hop's window.
pub struct Scheduler {
    path: PathBuf,
    /// Whether cursor writes are fsynced: under SYNC_FLUSH only. Under ASYNC_FLUSH a re-put
    /// itself is acknowledged once written, not durable, so a synced cursor would promise
    /// nothing more against power loss, while the page cache already carries the write and
    /// its rename across kill -9.
    sync: bool,
    cursors: RefCell<Cursors>,
    /// In-memory cursors differ from the file (a batch finished since the last write).
    dirty: Cell<bool>,
    skip: RefCell<HashSet<u64>>,
    /// Timer stage 0: entries at or after its cursor already re-put, queue offset → physical
    /// offset.
    ahead: RefCell<BTreeMap<u64, u64>>,
    /// Earliest due time among the known undelivered entries of timer stage 0.
    window_due: Cell<i64>,
    /// When the delivery loop wakes by itself next, and the signal that wakes it sooner.
    wake_at: Cell<i64>,
    wake: RefCell<Rc<Signal>>,
}

impl Scheduler {
    /// Loads `config/delayOffset.json` (absent: every cursor 0).
    pub fn open(config_dir: &Path, sync: bool) -> Result<Scheduler, String> {
        let path = config_dir.join(CURSORS_FILE);
        let cursors = match std::fs::read(&path) {
            Ok(b) => Cursors::decode(&b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Cursors::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Scheduler {
            path,
            sync,
            cursors: RefCell::new(cursors),
            dirty: Cell::new(false),
            skip: RefCell::new(HashSet::new()),
            ahead: RefCell::new(BTreeMap::new()),
            window_due: Cell::new(i64::MIN),
            wake_at: Cell::new(i64::MIN),
            wake: RefCell::new(Signal::new()),
        })
    }

    /// Writes the cursors on a blocking-pool thread: a create and a rename wait for a
    /// journal handle, which ext4 hands out only after a running commit has written back
    /// its data, and that took up to 200 ms while the timer benchmark re-put ~100 MB/s;
    /// the shard thread would stall as long (seen as late timers in the slow-op tracing).
    async fn persist(&self) -> std::io::Result<()> {
        let bytes = self.cursors.borrow().encode();
        let (path, sync) = (self.path.clone(), self.sync);
        compio::runtime::spawn_blocking(move || write_atomically(&path, &bytes, sync))
            .await
            .map_err(|_| std::io::Error::other("the cursor write task failed"))??;
        self.dirty.set(false);
        Ok(())
    }

    /// A snapshot of the cursors (tests, metrics).
    pub fn cursors(&self) -> Cursors {
        self.cursors.borrow().clone()
    }

    /// A record due at `due_ms` was appended to `topic`/`queue_id`: wakes the delivery loop
    /// when it would otherwise sleep past that time (a short timer, or the last hop).
    pub fn note_due(&self, topic: &str, queue_id: i32, due_ms: i64) {
        if topic == TIMER_TOPIC && queue_id == 0 {
            self.window_due.set(self.window_due.get().min(due_ms));
        }
        if (topic == TIMER_TOPIC || topic == SCHEDULE_TOPIC) && due_ms < self.wake_at.get() {
            self.wake.borrow().fire();
        }
    }
}

/// What delivering a schedule entry needs, read from its record.
struct Due {
    phys: u64,
    /// Where the copy goes: the real queue, or the next timer stage.
    target_topic: String,
    target_qid: i32,
    /// For a hop to a timer stage: the hop's due time.
    hop_due: Option<i64>,
    /// The entry's record; for a copy of the message a reference hop stands for (the last
    /// hop, or a hop that must copy it again), that message's record.
    record: Vec<u8>,
    /// Set when the hop is written as a reference to this full record.
    reference: Option<TimerRef>,
}

/// A schedule queue and its key in the cursor file.
#[derive(Debug, Clone, Copy)]
struct Lane {
    key: usize,
    topic: &'static str,
    qid: i32,
}

/// Cursor-file key of timer stage `k` (delay levels use their level, 1..=18).
pub const TIMER_KEY_BASE: usize = 1000;

/// Timer stage 0, the last hop, delivered out of order ([`deliver_window`]).
const WINDOW: Lane = Lane {
    key: TIMER_KEY_BASE,
    topic: TIMER_TOPIC,
    qid: 0,
};

/// Most stage-0 entries one [`deliver_window`] pass looks at: about 100 ms of last hops
/// at 160 000 timers/s on one shard.
const WINDOW_SCAN_MAX: u64 = 16_384;

/// The fixed-delay lanes in the order a delivery pass serves them: the delay levels (their
/// re-puts are final), then the timer stages from the shortest (the nearer a hop is to its
/// delivery, the more its lateness shows). Stage 0 is the window, served between them.
fn lanes(levels: usize) -> impl Iterator<Item = Lane> {
    let delay = (1..=levels).map(|level| Lane {
        key: level,
        topic: SCHEDULE_TOPIC,
        qid: level as i32 - 1,
    });
    let timer = (1..TIMER_STAGES).map(|k| Lane {
        key: TIMER_KEY_BASE + k,
        topic: TIMER_TOPIC,
        qid: k as i32,
    });
    delay.chain(timer)
}

/// Finds the copies a crashed batch already re-put (module doc) and remembers them to skip.
pub async fn recover(shard: &Rc<Shard>) {
    let intents: Vec<(usize, LevelCursor)> = shard
        .scheduler
        .cursors
        .borrow()
        .levels
        .iter()
        .filter(|(_, c)| c.intent.is_some())
        .map(|(l, c)| (*l, c.clone()))
        .collect();
    for (level, lc) in intents {
        let Some(intent) = lc.intent else { continue };
        shard
            .scheduler
            .skip
            .borrow_mut()
            .extend(intent.done.iter().copied());
        collect_skips(shard, &intent).await;
        tracing::info!(
            shard = shard.index,
            level,
            from = lc.cursor,
            to = intent.end,
            already = shard.scheduler.skip.borrow().len(),
            "resuming a delayed-message batch cut by a crash"
        );
    }
}

/// Remembers, to skip them, the schedule records whose copies an interrupted batch already
/// appended after its marks.
async fn collect_skips(shard: &Shard, intent: &Intent) {
    for (topic, qid, mark) in &intent.marks {
        let (_, max) = shard.store.queue_offsets(topic, *qid);
        let entries: Vec<CqEntry> = (*mark..max.0)
            .filter_map(|off| shard.store.queue_entry(topic, *qid, QueueOffset(off)))
            .collect();
        let Ok(records) = shard.store.records_of(&entries).await else {
            continue;
        };
        for bytes in records.iter().flatten() {
            if let Ok(v) = RecordView::parse(bytes)
                && let Some(src) =
                    properties::find(v.properties, SOURCE_KEY).and_then(|s| s.parse::<u64>().ok())
            {
                shard.scheduler.skip.borrow_mut().insert(src);
            }
        }
    }
}

/// The delivery task of a shard: a pass re-puts every due message of every lane, then it
/// sleeps until the earliest due time it saw (at most [`POLL_INTERVAL`]) or until a send
/// notes an earlier one ([`Scheduler::note_due`]).
pub async fn delivery_loop(shard: Rc<Shard>) {
    recover(&shard).await;
    let sched = &shard.scheduler;
    loop {
        let signal = Signal::new();
        *sched.wake.borrow_mut() = Rc::clone(&signal);
        // A send during the pass may be due before the pass's own next wake-up.
        sched.wake_at.set(
            shard
                .now_ms()
                .saturating_add(POLL_INTERVAL.as_millis() as i64),
        );
        let mut next_due = i64::MAX;
        for lane in lanes(shard.cfg.delay_levels_ms.len()) {
            match deliver_lane(&shard, lane).await {
                Ok(Some(due)) => next_due = next_due.min(due),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(shard = shard.index, lane = lane.key, error = %e, "delayed delivery failed; retrying");
                }
            }
        }
        window_if_due(&shard).await;
        if sched.dirty.get()
            && let Err(e) = sched.persist().await
        {
            tracing::warn!(shard = shard.index, error = %e, "cannot write {CURSORS_FILE}; retrying");
        }
        next_due = next_due.min(sched.window_due.get());
        let now = shard.now_ms();
        if next_due <= now {
            // More is due than the pass's batches took: the next pass at once.
            continue;
        }
        let wait = next_due
            .saturating_sub(now)
            .min(POLL_INTERVAL.as_millis() as i64);
        sched.wake_at.set(now.saturating_add(wait));
        signal
            .wait_or_timeout(Duration::from_millis(wait as u64))
            .await;
    }
}

/// Serves the window when one of its entries is due: called between the batches of the
/// other lanes, so a burst in a long stage does not hold back the last hops.
async fn window_if_due(shard: &Rc<Shard>) {
    if shard.scheduler.window_due.get() > shard.now_ms() {
        return;
    }
    if let Err(e) = deliver_window(shard).await {
        tracing::warn!(shard = shard.index, error = %e, "timer delivery failed; retrying");
    }
}

/// Re-puts one batch of the due messages of a fixed-delay `lane` (up to [`BATCH_MAX`]).
/// Returns when the lane is due next: the due time of its first message not yet due, now
/// when more may be due than one batch took, `None` when it is empty. One batch per lane
/// and pass, so a burst in one lane does not hold back the others.
async fn deliver_lane(shard: &Rc<Shard>, lane: Lane) -> Result<Option<i64>, String> {
    let (intent, start) = {
        let c = shard.scheduler.cursors.borrow();
        let lc = c.levels.get(&lane.key).cloned().unwrap_or_default();
        (lc.intent, lc.cursor)
    };
    let (min, max) = shard.store.queue_offsets(lane.topic, lane.qid);
    // Entries removed by retention before delivery cannot be delivered any more.
    let start = start.max(min.0);
    let now = shard.now_ms();
    let end_limit = match &intent {
        Some(i) => i.end.min(max.0),
        None => (start + BATCH_MAX as u64).min(max.0),
    };
    let mut entries = Vec::new();
    let mut batch_bytes = 0usize;
    let mut next_due = None;
    for off in start..end_limit {
        // An intent's range is replayed whole; a fresh batch stops at the byte bound.
        if intent.is_none() && batch_bytes >= BATCH_BYTES_MAX {
            break;
        }
        let Some(e) = shard
            .store
            .queue_entry(lane.topic, lane.qid, QueueOffset(off))
        else {
            break;
        };
        if intent.is_none() && e.tag_code > now {
            next_due = Some(e.tag_code);
            break;
        }
        batch_bytes += e.size as usize;
        entries.push((off, e));
    }
    if entries.is_empty() {
        return Ok(next_due);
    }
    let batch = load(shard, lane, &entries, now).await?;
    let end = start + entries.len() as u64;
    let intent = match intent {
        Some(i) => i,
        None => {
            let i = Intent {
                end,
                marks: marks_of(shard, &batch),
                done: Vec::new(),
            };
            set_level(shard, lane.key, start, Some(i.clone()), true).await?;
            i
        }
    };
    let todo: Vec<&Due> = batch
        .iter()
        .flatten()
        .filter(|d| !shard.scheduler.skip.borrow_mut().remove(&d.phys))
        .collect();
    if let Err(e) = reput_all(shard, &todo).await {
        // The batch is retried from its intent: skip what it already wrote.
        collect_skips(shard, &intent).await;
        return Err(e);
    }
    // The intent on file covers the batch until the next write records the new cursor.
    set_level(shard, lane.key, end, None, false).await?;
    window_if_due(shard).await;
    Ok(next_due.or((end < max.0).then_some(now)))
}

/// Timer stage 0 holds the last hop of every timer: its entries are due at their exact
/// delivery time (or, with 100–200 ms to go, 100 ms after the hop), so they are due within
/// 100 ms of their append but not in queue order. A pass re-puts every due entry of the
/// window ahead of the cursor, remembers them in `ahead`, and moves the cursor over the
/// delivered prefix. Its intent lists, besides the marks of this batch, the records
/// delivered ahead before it (`done`), so a crash at any point is resumed exactly once.
async fn deliver_window(shard: &Rc<Shard>) -> Result<(), String> {
    let sched = &shard.scheduler;
    loop {
        let (intent, cursor) = {
            let c = sched.cursors.borrow();
            let lc = c.levels.get(&WINDOW.key).cloned().unwrap_or_default();
            (lc.intent, lc.cursor)
        };
        let (min, max) = shard.store.queue_offsets(WINDOW.topic, WINDOW.qid);
        let start = cursor.max(min.0);
        let now = shard.now_ms();
        // An earlier intent's range is scanned whole, so every record it re-put is found.
        let scan_end = (start + WINDOW_SCAN_MAX)
            .max(intent.as_ref().map_or(0, |i| i.end))
            .min(max.0);
        let mut entries = Vec::new();
        let (mut bytes, mut next_due, mut capped) = (0usize, i64::MAX, false);
        {
            let mut ahead = sched.ahead.borrow_mut();
            // Retention may have moved the queue's start past entries never delivered.
            *ahead = ahead.split_off(&start);
            let mut skip = sched.skip.borrow_mut();
            for off in start..scan_end {
                if ahead.contains_key(&off) {
                    continue;
                }
                let Some(e) = shard
                    .store
                    .queue_entry(WINDOW.topic, WINDOW.qid, QueueOffset(off))
                else {
                    break;
                };
                if skip.remove(&e.phys) {
                    ahead.insert(off, e.phys);
                } else if e.tag_code > now {
                    next_due = next_due.min(e.tag_code);
                } else if entries.len() >= BATCH_MAX || bytes >= BATCH_BYTES_MAX {
                    capped = true;
                } else {
                    bytes += e.size as usize;
                    entries.push((off, e));
                }
            }
        }
        sched.window_due.set(if capped { now } else { next_due });
        if !entries.is_empty() {
            let batch = load(shard, WINDOW, &entries, now).await?;
            let ahead_end = sched.ahead.borrow().keys().next_back().map_or(0, |o| o + 1);
            let end = entries
                .last()
                .map_or(start, |(off, _)| off + 1)
                .max(intent.as_ref().map_or(0, |i| i.end))
                .max(ahead_end);
            let done = sched.ahead.borrow().values().copied().collect();
            let i = Intent {
                end,
                marks: marks_of(shard, &batch),
                done,
            };
            set_level(shard, WINDOW.key, start, Some(i.clone()), true).await?;
            let todo: Vec<&Due> = batch.iter().flatten().collect();
            if let Err(e) = reput_all(shard, &todo).await {
                collect_skips(shard, &i).await;
                return Err(e);
            }
            sched
                .ahead
                .borrow_mut()
                .extend(entries.iter().map(|(off, e)| (*off, e.phys)));
        }
        let mut cursor_now = start;
        {
            let mut ahead = sched.ahead.borrow_mut();
            while ahead.remove(&cursor_now).is_some() {
                cursor_now += 1;
            }
        }
        // Nothing is written here: the intent on file stays valid for the records ahead of
        // the new cursor (in its range, found by its marks or listed in `done`), and the pass
        // writes the moved cursor at its end.
        let current = sched
            .cursors
            .borrow()
            .levels
            .get(&WINDOW.key)
            .cloned()
            .unwrap_or_default();
        let keep = current.intent.clone().filter(|i| cursor_now < i.end);
        if cursor_now != current.cursor || keep != current.intent {
            set_level(shard, WINDOW.key, cursor_now, keep, false).await?;
        }
        if !capped {
            return Ok(());
        }
    }
}

/// Reads the records of a batch of `lane` entries and decides where each goes (`None`: the
/// record is gone or has no real queue; it is skipped with a warning).
async fn load(
    shard: &Shard,
    lane: Lane,
    entries: &[(u64, CqEntry)],
    now: i64,
) -> Result<Vec<Option<Due>>, String> {
    let cq: Vec<CqEntry> = entries.iter().map(|(_, e)| *e).collect();
    let records = shard
        .store
        .records_of(&cq)
        .await
        .map_err(|e| e.to_string())?;
    let keep_ms = i64::try_from(shard.cfg.file_reserved_time_hours.saturating_mul(3_600_000))
        .unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(entries.len());
    // (index in `out`, where the full record of a reference is) for the copies that need it.
    let mut fetch: Vec<(usize, CqEntry)> = Vec::new();
    for ((off, e), bytes) in entries.iter().zip(records) {
        let skipped = |why: &str| {
            tracing::warn!(
                shard = shard.index,
                lane = lane.key,
                offset = off,
                "a delayed message {why}; skipped"
            );
        };
        let Some(bytes) = bytes else {
            skipped("is no longer in the log");
            out.push(None);
            continue;
        };
        let parsed = RecordView::parse(&bytes).ok().and_then(|v| {
            let topic = properties::find(v.properties, keys::REAL_TOPIC)?.to_owned();
            let qid = properties::find(v.properties, keys::REAL_QID)?
                .parse()
                .ok()?;
            let out = properties::find(v.properties, keys::TIMER_OUT_MS)
                .and_then(|s| s.parse::<i64>().ok());
            let own = TimerRef {
                phys: e.phys,
                size: e.size,
                stored_ms: v.store_timestamp,
            };
            Some((topic, qid, out, TimerRef::of(v.properties), own))
        });
        let Some((real_topic, real_qid, timer_out, reference, own)) = parsed else {
            skipped("has no REAL_TOPIC/REAL_QID");
            out.push(None);
            continue;
        };
        let hop = timer_out.and_then(|at| timer_hop(&shard.cfg, now, at));
        let full = reference.unwrap_or(own);
        // A hop refers to the full record while it lasts; the delivery, or a hop it would
        // not last for, needs the full record itself.
        let (target_topic, target_qid, hop_due, as_reference) = match hop {
            Some((k, due)) => {
                let lasts = full.lasts_until(due, keep_ms);
                (
                    TIMER_TOPIC.to_owned(),
                    k as i32,
                    Some(due),
                    lasts.then_some(full),
                )
            }
            None => (real_topic, real_qid, None, None),
        };
        if as_reference.is_none()
            && let Some(r) = reference
        {
            fetch.push((
                out.len(),
                CqEntry {
                    phys: r.phys,
                    size: r.size,
                    tag_code: 0,
                },
            ));
        }
        out.push(Some(Due {
            phys: e.phys,
            target_topic,
            target_qid,
            hop_due,
            record: bytes,
            reference: as_reference,
        }));
    }
    if !fetch.is_empty() {
        let cq: Vec<CqEntry> = fetch.iter().map(|(_, e)| *e).collect();
        let full = shard
            .store
            .records_of(&cq)
            .await
            .map_err(|e| e.to_string())?;
        for ((i, e), record) in fetch.iter().zip(full) {
            let Some(slot) = out.get_mut(*i) else {
                continue;
            };
            match record {
                Some(r) => {
                    if let Some(d) = slot {
                        d.record = r;
                    }
                }
                None => {
                    tracing::warn!(
                        shard = shard.index,
                        lane = lane.key,
                        phys = e.phys,
                        "the message a timer refers to is no longer in the log; skipped"
                    );
                    *slot = None;
                }
            }
        }
    }
    Ok(out)
}

/// The intent marks of a batch: each target queue's max offset before the batch.
fn marks_of(shard: &Shard, batch: &[Option<Due>]) -> Vec<(String, i32, u64)> {
    let mut marks: Vec<(String, i32, u64)> = Vec::new();
    for d in batch.iter().flatten() {
        if !marks
            .iter()
            .any(|(t, q, _)| *t == d.target_topic && *q == d.target_qid)
        {
            let (_, m) = shard.store.queue_offsets(&d.target_topic, d.target_qid);
            marks.push((d.target_topic.clone(), d.target_qid, m.0));
        }
    }
    marks
}

/// Sets a lane's cursor and intent in memory, and on file when `write` (an intent must be
/// on file before its batch is re-put; a finished batch is recorded by the next write).
async fn set_level(
    shard: &Shard,
    level: usize,
    cursor: u64,
    intent: Option<Intent>,
    write: bool,
) -> Result<(), String> {
    shard
        .scheduler
        .cursors
        .borrow_mut()
        .levels
        .insert(level, LevelCursor { cursor, intent });
    shard.scheduler.dirty.set(true);
    if !write {
        return Ok(());
    }
    shard
        .scheduler
        .persist()
        .await
        .map_err(|e| format!("cannot write {CURSORS_FILE}: {e}"))
}

/// Appends the copies of a batch of due schedule records to their real (or next stage)
/// queues as one group-commit append, in batch order: one write (and, under SYNC_FLUSH, one
/// fdatasync) for the whole batch instead of one round per message.
async fn reput_all(shard: &Shard, due: &[&Due]) -> Result<(), String> {
    if due.is_empty() {
        return Ok(());
    }
    let durability = match shard.cfg.flush {
        FlushDiskType::Sync => Durability::Synced,
        FlushDiskType::Async => Durability::Written,
    };
    let mut views = Vec::with_capacity(due.len());
    for d in due {
        let v = RecordView::parse(&d.record).map_err(|e| e.to_string())?;
        let props = match (d.hop_due, d.reference) {
            (Some(at), Some(r)) => reference_properties(v.properties, r, d.phys, at),
            (Some(at), None) => hop_properties(v.properties, d.phys, at),
            (None, _) => delivered_properties(v.properties, d.phys),
        };
        views.push((v, props));
    }
    let reqs: Vec<AppendRequest<'_>> = due
        .iter()
        .zip(&views)
        .map(|(d, (v, props))| AppendRequest {
            topic: &d.target_topic,
            queue_id: d.target_qid,
            body: if d.reference.is_some() { &[] } else { v.body },
            flag: v.flag,
            sys_flag: v.sys_flag,
            born_timestamp: v.born_timestamp,
            born_host: v.born_host,
            properties: props,
            reconsume_times: v.reconsume_times,
            prepared_transaction_offset: v.prepared_transaction_offset,
            tag_code: d
                .hop_due
                .unwrap_or_else(|| tag_code(properties::find(props, keys::TAGS))),
            durability,
        })
        .collect();
    shard
        .store
        .append_batch(&reqs)
        .await
        .map_err(|e| format!("re-put of {} due messages: {e}", reqs.len()))?;
    for d in due {
        if let Some(at) = d.hop_due {
            shard.scheduler.note_due(&d.target_topic, d.target_qid, at);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn due_time_of_a_level() {
        let delays = [1_000, 5_000, 10_000];
        assert_eq!(due_for_level(&delays, 1, 100), 1_100);
        assert_eq!(due_for_level(&delays, 3, 100), 10_100);
        assert_eq!(
            due_for_level(&delays, 9, 100),
            100,
            "beyond the table: no delay"
        );
        assert_eq!(due_for_level(&[u64::MAX], 1, 5), i64::MAX);
    }
    use super::*;

    #[test]
    fn levels_parse_with_units_and_limits() {
        let d = parse_delay_levels(DEFAULT_DELAY_LEVELS).unwrap();
        assert_eq!(d.len(), 18);
        assert_eq!(d[0], 1_000);
        assert_eq!(d[4], 60_000);
        assert_eq!(d[17], 7_200_000);
        assert_eq!(
            parse_delay_levels(" 1s  2m 3h 1d ").unwrap(),
            vec![1_000, 120_000, 10_800_000, 86_400_000]
        );
        for bad in ["", "1", "0s", "1x", "-1s", "s", "1.5s"] {
            assert!(parse_delay_levels(bad).is_err(), "{bad:?}");
        }
        let nineteen = vec!["1s"; 19].join(" ");
        assert!(parse_delay_levels(&nineteen).is_err());
    }

    #[test]
    fn levels_clamp_to_the_configured_count() {
        assert_eq!(level_of(Some("3"), 18), Some(3));
        assert_eq!(level_of(Some("40"), 18), Some(18));
        assert_eq!(level_of(Some("5"), 3), Some(3));
        assert_eq!(level_of(Some("0"), 18), None);
        assert_eq!(level_of(Some("-2"), 18), None);
        assert_eq!(level_of(Some("x"), 18), None);
        assert_eq!(level_of(None, 18), None);
    }

    #[test]
    fn schedule_and_delivered_properties_round_trip() {
        let mut orig = String::new();
        properties::encode(
            [("TAGS", "A"), ("DELAY", "2"), ("UNIQ_KEY", "U1")],
            &mut orig,
        );
        let s = schedule_properties(&orig, "T", 3, 12_345);
        assert_eq!(properties::find(&s, keys::REAL_TOPIC), Some("T"));
        assert_eq!(properties::find(&s, keys::REAL_QID), Some("3"));
        assert_eq!(properties::find(&s, DUE_KEY), Some("12345"));
        assert_eq!(properties::find(&s, "DELAY"), Some("2"));
        let d = delivered_properties(&s, 777);
        assert_eq!(properties::find(&d, "DELAY"), None);
        assert_eq!(properties::find(&d, DUE_KEY), None);
        assert_eq!(properties::find(&d, SOURCE_KEY), Some("777"));
        assert_eq!(properties::find(&d, "UNIQ_KEY"), Some("U1"));
        assert_eq!(properties::find(&d, "TAGS"), Some("A"));
        assert_eq!(properties::find(&d, keys::REAL_TOPIC), Some("T"));
        // Re-scheduling a delivered copy keeps one source, one due time.
        let again = delivered_properties(&schedule_properties(&d, "T", 3, 1), 778);
        assert_eq!(
            properties::iter(&again)
                .filter(|(k, _)| *k == SOURCE_KEY)
                .count(),
            1
        );
    }

    #[test]
    fn timer_stages_never_overshoot() {
        assert_eq!(stage_for(0), None);
        assert_eq!(stage_for(-5), None);
        assert_eq!(stage_for(1), Some(0));
        assert_eq!(stage_for(100), Some(0));
        assert_eq!(stage_for(250), Some(1));
        assert_eq!(stage_for(7 * 86_400_000), Some(22));
        assert_eq!(stage_for(i64::MAX), Some(TIMER_STAGES - 1));
        // Hopping from any remaining time reaches 0 within the stage count (+1 for < 100 ms),
        // each hop no longer than what remains (above 100 ms).
        for start in [1i64, 99, 101, 1_500, 2_000, 86_400_123, 7 * 86_400_000] {
            let (mut left, mut hops) = (start, 0);
            while let Some(k) = stage_for(left) {
                if left >= STAGE0_MS {
                    assert!(stage_ms(k) <= left, "{start}: stage {k} overshoots {left}");
                }
                left -= stage_ms(k);
                hops += 1;
                assert!(hops <= TIMER_STAGES + 1, "{start}: too many hops");
            }
        }
    }

    #[test]
    fn the_last_hop_is_due_at_the_delivery_time() {
        let args = crate::config::Config::from_args(std::iter::empty::<&str>()).unwrap();
        let cfg = BrokerConfig::from_config(&args).unwrap();
        assert_eq!(timer_hop(&cfg, 1_000, 1_000), None);
        assert_eq!(timer_hop(&cfg, 1_000, 1_040), Some((0, 1_040)));
        // 100–200 ms to go: one 100 ms hop in stage 0, then the exact last one.
        assert_eq!(timer_hop(&cfg, 1_000, 1_150), Some((0, 1_100)));
        assert_eq!(timer_hop(&cfg, 1_100, 1_150), Some((0, 1_150)));
        // Longer stages keep their fixed wait (their queues stay ordered by due time).
        assert_eq!(timer_hop(&cfg, 1_000, 1_250), Some((1, 1_200)));
        assert_eq!(timer_hop(&cfg, 0, 60_000), Some((9, 51_200)));
    }

    #[test]
    fn reference_hops_carry_routing_keys_and_the_reference() {
        let mut full = String::new();
        properties::encode(
            [
                ("TAGS", "A"),
                ("KEYS", "k1"),
                ("UNIQ_KEY", "U"),
                (keys::REAL_TOPIC, "T"),
                (keys::REAL_QID, "2"),
                (keys::TIMER_OUT_MS, "90000"),
                (DUE_KEY, "1000"),
            ],
            &mut full,
        );
        assert_eq!(TimerRef::of(&full), None);
        let r = TimerRef {
            phys: 4096,
            size: 1200,
            stored_ms: 500,
        };
        let hop = reference_properties(&full, r, 8192, 52_000);
        assert_eq!(TimerRef::of(&hop), Some(r));
        assert_eq!(properties::find(&hop, keys::REAL_TOPIC), Some("T"));
        assert_eq!(properties::find(&hop, keys::REAL_QID), Some("2"));
        assert_eq!(properties::find(&hop, keys::TIMER_OUT_MS), Some("90000"));
        assert_eq!(properties::find(&hop, DUE_KEY), Some("52000"));
        assert_eq!(properties::find(&hop, SOURCE_KEY), Some("8192"));
        // No user keys: the key index does not see hops.
        for k in ["TAGS", "KEYS", "UNIQ_KEY"] {
            assert_eq!(properties::find(&hop, k), None, "{k}");
        }
        // A hop of a hop keeps the original reference.
        let again = reference_properties(&hop, TimerRef::of(&hop).unwrap(), 9000, 60_000);
        assert_eq!(TimerRef::of(&again), Some(r));
        // A full copy or the delivery drops the reference.
        assert_eq!(TimerRef::of(&hop_properties(&hop, 1, 2)), None);
        assert_eq!(TimerRef::of(&delivered_properties(&hop, 1)), None);
        // Half of the retention is the limit.
        let keep = 72 * 3_600_000;
        assert!(r.lasts_until(500 + keep / 2, keep));
        assert!(!r.lasts_until(501 + keep / 2, keep));
        assert_eq!(TimerRef::of("__RINGMQ_TIMER_REF\u{1}x\u{2}"), None);
    }

    #[test]
    fn stages_stay_within_half_the_retention() {
        // 72 h: 100 ms << 20 ≈ 29 h is the longest stage ≤ 36 h.
        assert_eq!(max_stage(72), 20);
        assert_eq!(max_stage(0), 0);
        assert_eq!(max_stage(u64::MAX), TIMER_STAGES - 1);
        for h in [1u64, 24, 72, 168] {
            assert!(stage_ms(max_stage(h)) * 2 <= (h * 3_600_000) as i64);
        }
    }

    #[test]
    fn timer_properties_parse_and_limit() {
        let p = |pairs: &[(&str, &str)]| {
            let mut s = String::new();
            properties::encode(pairs.iter().copied(), &mut s);
            s
        };
        let max = 7 * 86_400_000;
        assert_eq!(timer_deliver_ms("", 1_000, max), Ok(None));
        assert_eq!(
            timer_deliver_ms(&p(&[("TIMER_DELAY_SEC", "2")]), 1_000, max),
            Ok(Some(3_000))
        );
        assert_eq!(
            timer_deliver_ms(&p(&[("TIMER_DELAY_MS", "250")]), 1_000, max),
            Ok(Some(1_250))
        );
        assert_eq!(
            timer_deliver_ms(
                &p(&[("TIMER_DELIVER_MS", "9000"), ("TIMER_DELAY_SEC", "1")]),
                1_000,
                max
            ),
            Ok(Some(9_000))
        );
        assert!(timer_deliver_ms(&p(&[("TIMER_DELAY_SEC", "x")]), 1_000, max).is_err());
        assert!(timer_deliver_ms(&p(&[("TIMER_DELAY_SEC", "604801")]), 0, max).is_err());
        assert_eq!(
            timer_deliver_ms(&p(&[("TIMER_DELAY_SEC", "604800")]), 0, max),
            Ok(Some(max))
        );
        let first = timer_properties(&p(&[("TAGS", "A")]), "T", 1, 5_000, 1_100);
        assert_eq!(properties::find(&first, keys::TIMER_OUT_MS), Some("5000"));
        assert_eq!(properties::find(&first, DUE_KEY), Some("1100"));
        let hop = hop_properties(&first, 42, 3_000);
        assert_eq!(properties::find(&hop, DUE_KEY), Some("3000"));
        assert_eq!(properties::find(&hop, SOURCE_KEY), Some("42"));
        assert_eq!(properties::find(&hop, keys::REAL_TOPIC), Some("T"));
        let done = delivered_properties(&hop, 43);
        assert_eq!(properties::find(&done, keys::TIMER_OUT_MS), None);
        assert_eq!(properties::find(&done, DUE_KEY), None);
    }

    #[test]
    fn cursors_encode_and_decode() {
        let mut c = Cursors::default();
        c.levels.insert(
            1,
            LevelCursor {
                cursor: 5,
                intent: None,
            },
        );
        c.levels.insert(
            3,
            LevelCursor {
                cursor: 7,
                intent: Some(Intent {
                    end: 9,
                    marks: vec![("T".into(), 0, 11)],
                    done: vec![4_096],
                }),
            },
        );
        let back = Cursors::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.cursor(1), 5);
        assert_eq!(back.cursor(2), 0);
        assert!(Cursors::decode(b"{").is_err());
    }
}
