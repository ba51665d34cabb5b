//! Command line: scenario names, flags, defaults, validation. Hand-written: the grammar is
//! `ringmq-bench <scenario> [--flag value | --switch]...`, which does not need a parser crate.

use serde::{Deserialize, Serialize};

use crate::body::BODY_HEADER_LEN;

/// Largest message body a RocketMQ broker accepts by default (`maxMessageSize`, spec §5.7);
/// also the limit of a whole batch body.
pub const MESSAGE_SIZE_MAX: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    Produce,
    Consume,
    ProduceConsume,
    SelfTest,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Produce => "produce",
            Scenario::Consume => "consume",
            Scenario::ProduceConsume => "produce-consume",
            Scenario::SelfTest => "self-test",
        }
    }

    pub fn produces(self) -> bool {
        self != Scenario::Consume
    }

    pub fn consumes(self) -> bool {
        matches!(self, Scenario::Consume | Scenario::ProduceConsume)
    }
}

/// How a producer sends (spec §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SendMode {
    /// One request in flight per connection, like `producer.send(msg)`.
    Sync,
    /// Pipelined: up to `--inflight` requests per connection, like `send(msg, callback)`.
    Async,
    /// No response; every [`ONEWAY_BARRIER`]-th message is sent as a normal request so the
    /// client cannot run ahead of what the broker has read.
    Oneway,
}

/// In oneway mode one message in this many is sent with a response to wait for.
pub const ONEWAY_BARRIER: u64 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartFrom {
    /// GET_MAX_OFFSET: only messages stored after the start.
    Tail,
    /// GET_MIN_OFFSET: the whole backlog (catch-up read).
    Start,
}

/// Header serialization of our requests (spec §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeaderEncoding {
    Json,
    Rocketmq,
}

/// Every parameter of a run; written whole into the report manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub scenario: Scenario,
    pub namesrv: String,
    pub workers: usize,
    pub producers: usize,
    pub consumers: usize,
    pub topics: usize,
    pub topic_prefix: String,
    pub queues: u32,
    pub create_topics: bool,
    pub cluster: Option<String>,
    pub size: usize,
    pub batch: usize,
    pub send: SendMode,
    pub inflight: usize,
    /// Target messages/s over all producers: open loop when set, closed loop otherwise.
    pub rate: Option<f64>,
    /// Open loop: a producer's scheduler wakes at most once per this many µs (0: at every
    /// intended time).
    pub tick_us: u64,
    pub duration_ms: Option<u64>,
    pub messages: Option<u64>,
    pub warmup_ms: u64,
    pub from: StartFrom,
    pub tags: Vec<String>,
    pub flush_label: Option<String>,
    pub json: Option<String>,
    pub hgrm: Option<String>,
    pub timeout_ms: u64,
    pub pull_batch: u32,
    pub suspend_ms: u64,
    pub drain_ms: u64,
    pub serialize: HeaderEncoding,
    pub ceiling_file: Option<String>,
    pub producer_group: String,
    pub consumer_group: String,
    /// The WAIT property of every message (`waitStoreMsgOK`; false: a sync-flush broker may
    /// answer before the flush).
    #[serde(default = "yes")]
    pub wait_store: bool,
    /// self-test: responders standing in for this many brokers.
    #[serde(default = "one")]
    pub brokers: usize,
    /// `timers`: when each message asks to be delivered (set by `ringmq-bench timers`, not a
    /// flag of the other scenarios).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<crate::timers::TimerLoad>,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

impl Params {
    pub fn defaults(scenario: Scenario, cores: usize) -> Params {
        let cores = cores.max(1);
        Params {
            scenario,
            namesrv: "127.0.0.1:9876".into(),
            workers: cores,
            producers: cores,
            consumers: cores,
            topics: 1,
            topic_prefix: "ringmq-bench".into(),
            queues: 8,
            create_topics: true,
            cluster: None,
            size: 1024,
            batch: 1,
            send: SendMode::Async,
            inflight: 16,
            rate: None,
            duration_ms: Some(10_000),
            messages: None,
            warmup_ms: 0,
            from: StartFrom::Tail,
            tags: Vec::new(),
            flush_label: None,
            json: None,
            hgrm: None,
            timeout_ms: 3_000,
            tick_us: TICK_US_DEFAULT,
            pull_batch: 32,
            suspend_ms: 20_000,
            drain_ms: 10_000,
            serialize: HeaderEncoding::Json,
            ceiling_file: None,
            producer_group: "ringmq-bench-producer".into(),
            consumer_group: "ringmq-bench-consumer".into(),
            brokers: 1,
            wait_store: true,
            timer: None,
        }
    }

    pub fn open_loop(&self) -> bool {
        self.rate.is_some()
    }

    pub fn mode_name(&self) -> &'static str {
        if self.open_loop() { "open" } else { "closed" }
    }

    /// `sync`, `async`, `oneway`, or `async-batch16`.
    pub fn send_label(&self) -> String {
        let mode = match self.send {
            SendMode::Sync => "sync",
            SendMode::Async => "async",
            SendMode::Oneway => "oneway",
        };
        if self.batch > 1 {
            format!("{mode}-batch{}", self.batch)
        } else {
            mode.to_owned()
        }
    }

    pub fn topic_names(&self) -> Vec<String> {
        (0..self.topics)
            .map(|i| format!("{}-{i}", self.topic_prefix))
            .collect()
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Box<Params>),
    Compare { a: String, b: String },
    Help,
}

pub const USAGE: &str = "\
ringmq-bench: load generator for any RocketMQ-remoting broker (ringmq, Apache RocketMQ,
rocketmq-rust), driven through its name server.

Usage:
  ringmq-bench produce          [flags]   send messages (--send sync|async|oneway|batch)
  ringmq-bench consume          [flags]   pull and verify (--from tail|start)
  ringmq-bench produce-consume  [flags]   both, with end-to-end latency (born -> delivered)
  ringmq-bench self-test        [flags]   the generator's own ceiling against a built-in
                                          responder on loopback (no broker needed);
                                          --brokers N responders (match the target's brokers)
  ringmq-bench compare A.json B.json      side-by-side table with ratios B/A
  ringmq-bench suite   [--quick] ...      issue 7's performance table in one run, with raw
                                          baselines (starts its own broker; suite --help)
  ringmq-bench timers  [--count N] ...    pending-timer RSS and firing skew (timers --help)
Aliases: send-sync, send-async, send-oneway, send-async-batch (produce), pull-tail,
pull-catchup (consume).

Target:
  --namesrv ADDR        name server host:port                      [127.0.0.1:9876]
  --topics N            topics, named PREFIX-0 .. PREFIX-(N-1)      [1]
  --topic-prefix S                                                 [ringmq-bench]
  --queues N            queues per topic per broker (created so)    [8]
  --no-create           do not create the topics (they must exist)
  --cluster NAME        create topics on this cluster's masters only [all clusters]
  --flush-label S       the broker's flush mode as configured, for the report (the wire
                        does not tell), e.g. ASYNC_FLUSH or SYNC_FLUSH
Load:
  --workers N           threads, one io_uring runtime each, pinned  [cores]
  --producers N         producers; each has its own connection per broker [cores]
  --consumers N         consumers; queues are split among them      [cores]
  --send MODE           sync | async | oneway | batch                [async]
  --batch N             messages per SEND_BATCH_MESSAGE             [1; 16 with --send batch]
  --inflight N          closed loop: requests in flight per connection [16; sync: 1]
  --rate R              open loop at R messages/s in total (k, m suffixes); latency is
                        measured from each send's intended time
  --tick D              open loop: wake at most once per D and send what is due (us, ms
                        suffixes; 0: wake at every intended time)  [100us]
  --size BYTES          message body size, >= 32 (k, KiB, m suffixes) [1024]
  --tags a,b,...        TAGS property, cycled per message           [none]
  --no-wait             WAIT=false on every message (Java waitStoreMsgOK=false) [WAIT=true]
  --duration D          how long to produce (s, ms, m suffixes)     [10s]
  --messages N          send N messages in total instead of a duration
  --warmup D            run this long before recording              [0]
  --from tail|start     where consumers start                       [tail]
  --pull-batch N        maxMsgNums per pull                         [32]
  --suspend D           long-poll hold asked of the broker (lite pull) [20s]
  --drain D             after producing, stop consuming once nothing arrived for D [10s]
  --timeout D           per-request timeout                         [3s]
  --serialize json|rocketmq  header encoding of our requests         [json]
  --producer-group S / --consumer-group S
Output:
  --json FILE           write the JSON report (manifest + results)
  --hgrm DIR            write HdrHistogram percentile files (send.hgrm, e2e.hgrm)
  --ceiling-file FILE   where self-test stores, and runs read, the generator's ceiling
                        [$XDG_CACHE_HOME or ~/.cache /ringmq-bench/ceiling.json]
  -h, --help
";

/// A bad command line, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (see ringmq-bench --help)", self.0)
    }
}

impl std::error::Error for CliError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CliError> {
    Err(CliError(msg.into()))
}

/// Parses `args` (without the program name). `cores` supplies the per-core defaults.
pub fn parse(args: &[String], cores: usize) -> Result<Command, CliError> {
    let Some(first) = args.first() else {
        return Ok(Command::Help);
    };
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help);
    }
    let rest = args.get(1..).unwrap_or_default();
    let (scenario, send_alias, from_alias) = match first.as_str() {
        "compare" => {
            return match rest {
                [a, b] => Ok(Command::Compare {
                    a: a.clone(),
                    b: b.clone(),
                }),
                _ => err("compare takes exactly two report files: compare A.json B.json"),
            };
        }
        "produce" => (Scenario::Produce, None, None),
        "send-sync" => (Scenario::Produce, Some("sync"), None),
        "send-async" => (Scenario::Produce, Some("async"), None),
        "send-oneway" => (Scenario::Produce, Some("oneway"), None),
        "send-async-batch" | "send-batch" => (Scenario::Produce, Some("batch"), None),
        "consume" => (Scenario::Consume, None, None),
        "pull-tail" => (Scenario::Consume, None, Some(StartFrom::Tail)),
        "pull-catchup" => (Scenario::Consume, None, Some(StartFrom::Start)),
        "produce-consume" => (Scenario::ProduceConsume, None, None),
        "self-test" => (Scenario::SelfTest, None, None),
        other => return err(format!("unknown scenario `{other}`")),
    };
    let mut p = Params::defaults(scenario, cores);
    if let Some(f) = from_alias {
        p.from = f;
    }
    let mut send: Option<String> = send_alias.map(str::to_owned);
    let mut batch: Option<usize> = None;
    let mut inflight: Option<usize> = None;
    let mut producers_set = false;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| CliError(format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--namesrv" => p.namesrv = value()?,
            "--workers" => p.workers = count(flag, &value()?)?,
            "--producers" => {
                p.producers = count(flag, &value()?)?;
                producers_set = true;
            }
            "--consumers" => p.consumers = count(flag, &value()?)?,
            "--topics" => p.topics = count(flag, &value()?)?,
            "--topic-prefix" => p.topic_prefix = value()?,
            "--queues" => p.queues = u32::try_from(count(flag, &value()?)?).unwrap_or(u32::MAX),
            "--no-create" => p.create_topics = false,
            "--cluster" => p.cluster = Some(value()?),
            "--flush-label" => p.flush_label = Some(value()?),
            "--send" => send = Some(value()?),
            "--batch" => batch = Some(count(flag, &value()?)?),
            "--inflight" => inflight = Some(count(flag, &value()?)?),
            "--rate" => p.rate = Some(rate(&value()?)?),
            "--tick" => p.tick_us = duration_us(&value()?)?,
            "--size" => p.size = size(&value()?)?,
            "--tags" => {
                p.tags = value()?
                    .split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--duration" => {
                p.duration_ms = Some(duration_ms(&value()?)?);
                p.messages = None;
            }
            "--messages" => {
                p.messages = Some(count(flag, &value()?)? as u64);
                p.duration_ms = None;
            }
            "--warmup" => p.warmup_ms = duration_ms(&value()?)?,
            "--from" => {
                p.from = match value()?.as_str() {
                    "tail" | "last" => StartFrom::Tail,
                    "start" | "first" | "catch-up" | "catchup" => StartFrom::Start,
                    other => return err(format!("--from {other}: use tail or start")),
                }
            }
            "--pull-batch" => {
                p.pull_batch = u32::try_from(count(flag, &value()?)?).unwrap_or(u32::MAX)
            }
            "--suspend" => p.suspend_ms = duration_ms(&value()?)?,
            "--drain" => p.drain_ms = duration_ms(&value()?)?,
            "--timeout" => p.timeout_ms = duration_ms(&value()?)?,
            "--serialize" => {
                p.serialize = match value()?.to_ascii_lowercase().as_str() {
                    "json" => HeaderEncoding::Json,
                    "rocketmq" | "binary" => HeaderEncoding::Rocketmq,
                    other => return err(format!("--serialize {other}: use json or rocketmq")),
                }
            }
            "--json" => p.json = Some(value()?),
            "--hgrm" => p.hgrm = Some(value()?),
            "--ceiling-file" => p.ceiling_file = Some(value()?),
            "--producer-group" => p.producer_group = value()?,
            "--consumer-group" => p.consumer_group = value()?,
            "--brokers" => p.brokers = count(flag, &value()?)?,
            "--no-wait" => p.wait_store = false,
            other => return err(format!("unknown flag `{other}`")),
        }
    }
    match send.as_deref() {
        None | Some("async") => p.send = SendMode::Async,
        Some("sync") => p.send = SendMode::Sync,
        Some("oneway") => p.send = SendMode::Oneway,
        Some("batch") => {
            p.send = SendMode::Async;
            p.batch = 16;
        }
        Some(other) => return err(format!("--send {other}: use sync, async, oneway or batch")),
    }
    if let Some(b) = batch {
        p.batch = b;
    }
    match (p.send, inflight) {
        (SendMode::Sync, Some(n)) if n != 1 => {
            return err(format!(
                "--send sync keeps one request in flight; use --send async --inflight {n}"
            ));
        }
        (SendMode::Sync, _) => p.inflight = 1,
        (_, Some(n)) => p.inflight = n,
        (_, None) => {}
    }
    if !producers_set && p.scenario == Scenario::SelfTest {
        p.producers = p.workers;
    }
    validate(&p)?;
    Ok(Command::Run(Box::new(p)))
}

fn validate(p: &Params) -> Result<(), CliError> {
    if p.size < BODY_HEADER_LEN {
        return err(format!(
            "--size {}: the smallest message is {BODY_HEADER_LEN} bytes (the verification header)",
            p.size
        ));
    }
    if p.size.saturating_mul(p.batch) > MESSAGE_SIZE_MAX {
        return err(format!(
            "--size {} x --batch {} exceeds the 4 MiB message limit of RocketMQ brokers",
            p.size, p.batch
        ));
    }
    if p.queues > 1024 {
        return err("--queues above 1024 is not a sensible benchmark");
    }
    if p.scenario == Scenario::Consume && p.messages.is_some() {
        return err("--messages applies to producers; consume runs for --duration");
    }
    if p.messages.is_some() && p.warmup_ms > 0 {
        return err("--warmup applies to --duration runs (a --messages run counts every message)");
    }
    if p.send == SendMode::Oneway && p.batch > 1 {
        return err("--send oneway with --batch is not supported; use --send batch");
    }
    Ok(())
}

fn count(flag: &str, text: &str) -> Result<usize, CliError> {
    match scaled(text, 1000.0) {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= usize::MAX as f64 => Ok(n as usize),
        _ => err(format!("{flag} {text}: expected a positive whole number")),
    }
}

fn rate(text: &str) -> Result<f64, CliError> {
    match scaled(text.trim_end_matches("/s"), 1000.0) {
        Some(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => err(format!("--rate {text}: expected messages per second > 0")),
    }
}

/// A number with an optional k/m/g suffix, each step `step` (1000 or 1024).
fn scaled(text: &str, step: f64) -> Option<f64> {
    let units = [("k", step), ("m", step * step), ("g", step * step * step)];
    with_unit(&text.to_ascii_lowercase(), &units, 1.0)
}

fn size(text: &str) -> Result<usize, CliError> {
    let lower = text.trim().to_ascii_lowercase();
    let base = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    match scaled(base, 1024.0) {
        Some(n) if n.fract() == 0.0 && n <= MESSAGE_SIZE_MAX as f64 => Ok(n as usize),
        _ => err(format!(
            "--size {text}: expected bytes, e.g. 1024, 4k, 1MiB"
        )),
    }
}

/// Default of `--tick`: at 15k sends/s per producer a wake per send (a timer, an io_uring
/// wait, one socket write per message) cost the generator ~30 µs of CPU per message.
pub const TICK_US_DEFAULT: u64 = 100;

/// `text` as a non-negative number with an optional unit suffix (the first of `units` it ends
/// with; checked in order, so `ms` must come before `s`), times that unit's factor, or
/// `bare`'s without a suffix.
fn with_unit(text: &str, units: &[(&str, f64)], bare: f64) -> Option<f64> {
    let t = text.trim();
    let (num, mult) = units
        .iter()
        .find_map(|(suffix, mult)| t.strip_suffix(suffix).map(|n| (n, *mult)))
        .unwrap_or((t, bare));
    let v = num.trim().parse::<f64>().ok()?;
    (v >= 0.0 && v.is_finite()).then_some(v * mult)
}

/// A short duration in µs: `250us`, `0.5ms`, or a bare number of µs.
pub(crate) fn duration_us(text: &str) -> Result<u64, CliError> {
    match with_unit(text, &[("us", 1.0), ("ms", 1000.0)], 1.0) {
        Some(v) if v <= 1e6 => Ok(v.round() as u64),
        _ => err(format!(
            "duration {text}: expected e.g. 100us or 0.5ms (at most 1 s)"
        )),
    }
}

pub(crate) fn duration_ms(text: &str) -> Result<u64, CliError> {
    let units = [
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    match with_unit(text, &units, 1000.0) {
        Some(v) => Ok(v.round() as u64),
        None => err(format!("duration {text}: expected e.g. 10s, 500ms, 2m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_takes_microseconds_and_milliseconds() {
        assert_eq!(duration_us("250us").unwrap(), 250);
        assert_eq!(duration_us("0.5ms").unwrap(), 500);
        assert_eq!(duration_us("40").unwrap(), 40);
        assert_eq!(duration_us("0").unwrap(), 0);
        assert!(duration_us("2s").is_err());
        assert!(duration_us("-1us").is_err());
        assert_eq!(run("produce --rate 10k --tick 1ms").unwrap().tick_us, 1000);
        assert_eq!(run("produce --rate 10k").unwrap().tick_us, TICK_US_DEFAULT);
    }

    fn run(line: &str) -> Result<Params, CliError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        match parse(&args, 4)? {
            Command::Run(p) => Ok(*p),
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_closed_loop_async_for_ten_seconds() {
        let p = run("produce-consume").unwrap();
        assert_eq!(p, Params::defaults(Scenario::ProduceConsume, 4));
        assert_eq!((p.workers, p.producers, p.consumers), (4, 4, 4));
        assert_eq!(p.mode_name(), "closed");
        assert_eq!(p.send, SendMode::Async);
        assert_eq!(p.duration_ms, Some(10_000));
        assert_eq!(p.topic_names(), ["ringmq-bench-0"]);
    }

    #[test]
    fn every_flag_parses() {
        let p = run("produce --namesrv 10.0.0.1:9876 --workers 2 --producers 3 --consumers 5 \
             --topics 2 --topic-prefix t --queues 4 --no-create --cluster C --flush-label SYNC_FLUSH \
             --send async --batch 8 --inflight 64 --rate 50k --size 4KiB --tags a,b \
             --messages 1m --from start --brokers 3 --no-wait --pull-batch 16 --suspend 2s --drain 1m \
             --timeout 1500ms --serialize rocketmq --json r.json --hgrm h --ceiling-file c.json \
             --producer-group pg --consumer-group cg")
            .unwrap();
        assert_eq!(p.namesrv, "10.0.0.1:9876");
        assert_eq!((p.workers, p.producers, p.consumers), (2, 3, 5));
        assert_eq!((p.topics, p.queues), (2, 4));
        assert_eq!(p.topic_names(), ["t-0", "t-1"]);
        assert!(!p.create_topics);
        assert_eq!(p.cluster.as_deref(), Some("C"));
        assert_eq!(p.flush_label.as_deref(), Some("SYNC_FLUSH"));
        assert_eq!((p.send, p.batch, p.inflight), (SendMode::Async, 8, 64));
        assert_eq!(p.rate, Some(50_000.0));
        assert_eq!(p.mode_name(), "open");
        assert_eq!(p.size, 4096);
        assert_eq!(p.tags, ["a", "b"]);
        assert_eq!((p.messages, p.duration_ms), (Some(1_000_000), None));
        assert_eq!((p.brokers, p.wait_store), (3, false));
        let w = run("produce --warmup 500ms --duration 2s").unwrap();
        assert_eq!((w.warmup_ms, w.duration_ms), (500, Some(2000)));
        assert_eq!(p.from, StartFrom::Start);
        assert_eq!((p.pull_batch, p.suspend_ms, p.drain_ms), (16, 2000, 60_000));
        assert_eq!(p.timeout_ms, 1500);
        assert_eq!(p.serialize, HeaderEncoding::Rocketmq);
        assert_eq!(p.json.as_deref(), Some("r.json"));
        assert_eq!(p.hgrm.as_deref(), Some("h"));
        assert_eq!(p.ceiling_file.as_deref(), Some("c.json"));
        assert_eq!(
            (p.producer_group.as_str(), p.consumer_group.as_str()),
            ("pg", "cg")
        );
    }

    #[test]
    fn send_modes_and_aliases() {
        let p = run("produce --send sync").unwrap();
        assert_eq!((p.send, p.inflight), (SendMode::Sync, 1));
        let p = run("produce --send batch").unwrap();
        assert_eq!((p.send, p.batch), (SendMode::Async, 16));
        let p = run("send-async-batch --batch 4").unwrap();
        assert_eq!((p.scenario, p.batch), (Scenario::Produce, 4));
        let p = run("send-oneway").unwrap();
        assert_eq!(p.send, SendMode::Oneway);
        let p = run("pull-catchup").unwrap();
        assert_eq!((p.scenario, p.from), (Scenario::Consume, StartFrom::Start));
        let p = run("pull-tail --duration 2").unwrap();
        assert_eq!((p.from, p.duration_ms), (StartFrom::Tail, Some(2000)));
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        let bad = [
            ("produce --size 16", "smallest message"),
            ("produce --size 1m --batch 8", "4 MiB"),
            (
                "produce --send sync --inflight 8",
                "--send async --inflight 8",
            ),
            ("produce --send fast", "--send fast"),
            ("produce --rate 0", "--rate 0"),
            ("produce --workers", "needs a value"),
            ("produce --workers 0", "positive whole number"),
            ("produce --bogus", "unknown flag"),
            ("fly", "unknown scenario"),
            ("consume --messages 5", "--messages"),
            ("produce --messages 5 --warmup 1s", "--warmup applies"),
            ("produce --duration soon", "duration soon"),
            ("compare a.json", "exactly two"),
        ];
        for (line, want) in bad {
            let e = run(line).map(|_| ()).unwrap_err_or_compare(line);
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    trait UnwrapErr {
        fn unwrap_err_or_compare(self, line: &str) -> String;
    }

    impl UnwrapErr for Result<(), CliError> {
        fn unwrap_err_or_compare(self, line: &str) -> String {
            match self {
                Ok(()) => panic!("{line}: accepted"),
                Err(e) => e.to_string(),
            }
        }
    }

    #[test]
    fn compare_and_help() {
        let args: Vec<String> = ["compare", "a.json", "b.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            parse(&args, 2).unwrap(),
            Command::Compare {
                a: "a.json".into(),
                b: "b.json".into()
            }
        );
        assert_eq!(parse(&[], 2).unwrap(), Command::Help);
        assert_eq!(
            parse(&["produce".into(), "--help".into()], 2).unwrap(),
            Command::Help
        );
    }

    #[test]
    fn number_suffixes() {
        assert_eq!(size("1k"), Ok(1024));
        assert_eq!(size("2KiB"), Ok(2048));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("100b"), Ok(100));
        assert_eq!(rate("2.5k/s"), Ok(2500.0));
        assert_eq!(duration_ms("1.5s"), Ok(1500));
        assert_eq!(duration_ms("2m"), Ok(120_000));
        assert_eq!(duration_ms("30"), Ok(30_000));
        assert_eq!(count("--x", "10k"), Ok(10_000));
    }
}
