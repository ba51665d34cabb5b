//! Latency histograms, percentiles, error counts, and HdrHistogram percentile files.
//!
//! Every worker thread records into its own [`Latency`] histograms (no sharing on the hot
//! path); the main thread merges them at the end. Values are recorded in nanoseconds with
//! 3 significant digits from 1 ns to one hour, and reported in microseconds.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use ringmq_codec::codes::response;
use serde::{Deserialize, Serialize};

/// Highest latency tracked; anything above is recorded as this (and shows as the max).
pub const LATENCY_MAX_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    hist: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    pub fn new() -> Latency {
        // Bounds and precision are constants known to be valid for the crate.
        let hist = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .unwrap_or_else(|e| unreachable!("constant histogram bounds rejected: {e}"));
        Latency { hist }
    }

    pub fn record_ns(&mut self, ns: u64) {
        self.hist.saturating_record(ns.clamp(1, LATENCY_MAX_NS));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    pub fn clear(&mut self) {
        self.hist.reset();
    }

    pub fn value_at_quantile_ns(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    pub fn summary(&self) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        let q = |q: f64| us(self.hist.value_at_quantile(q));
        if self.hist.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.hist.len(),
            mean: self.hist.mean() / 1000.0,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            p999: q(0.999),
            p9999: q(0.9999),
            max: us(self.hist.max()),
        }
    }

    /// The HdrHistogram percentile-distribution text (the `.hgrm` format HdrHistogram's
    /// plotter reads), values in microseconds, 5 ticks per half distance as Java prints it.
    pub fn hgrm(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        let mut total = 0u64;
        for v in self.hist.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            s.mean,
            self.hist.stdev() / 1000.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:12.3}, Total count    = {:12}]",
            s.max,
            self.hist.len()
        );
        // Sub-buckets per bucket: the power of two holding 2 × 10^sigfig (2048 for 3 digits).
        let sub_buckets = (2 * 10u64.pow(u32::from(self.hist.sigfig()))).next_power_of_two();
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            self.hist.buckets(),
            sub_buckets
        );
        out
    }
}

/// Percentiles of one histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

/// Client-side failures that have no response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientError {
    Timeout,
    ConnectionClosed,
    TooLarge,
    /// A response whose header we could not read.
    BadResponse,
}

impl ClientError {
    pub fn name(self) -> &'static str {
        match self {
            ClientError::Timeout => "CLIENT_TIMEOUT",
            ClientError::ConnectionClosed => "CLIENT_CONNECTION_CLOSED",
            ClientError::TooLarge => "CLIENT_REQUEST_TOO_LARGE",
            ClientError::BadResponse => "CLIENT_BAD_RESPONSE",
        }
    }
}

/// Errors by name: the RocketMQ response code's Java name, `CODE_<n>` for codes without one,
/// or a [`ClientError`] name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Errors(pub BTreeMap<String, u64>);

impl Errors {
    pub fn code(&mut self, code: i32) {
        let name = response::name(code).map_or_else(|| format!("CODE_{code}"), str::to_owned);
        *self.0.entry(name).or_default() += 1;
    }

    pub fn client(&mut self, e: ClientError) {
        *self.0.entry(e.name().to_owned()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Errors) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Latency::new();
        // 1..=10_000 µs, one each.
        for us in 1..=10_000u64 {
            h.record_ns(us * 1000);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50, 5000.0), "{}", s.p50);
        assert!(close(s.p90, 9000.0), "{}", s.p90);
        assert!(close(s.p99, 9900.0), "{}", s.p99);
        assert!(close(s.p999, 9990.0), "{}", s.p999);
        assert!(close(s.p9999, 9999.0), "{}", s.p9999);
        assert!(close(s.max, 10_000.0), "{}", s.max);
        assert!(close(s.mean, 5000.5), "{}", s.mean);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Latency::new(), Latency::new(), Latency::new());
        for i in 0..1000u64 {
            let v = 1 + i * i * 37 % 5_000_000;
            if i % 3 == 0 { &mut a } else { &mut b }.record_ns(v);
            all.record_ns(v);
        }
        a.merge(&b);
        assert_eq!(a.summary(), all.summary());
    }

    #[test]
    fn out_of_range_values_saturate() {
        let mut h = Latency::new();
        h.record_ns(0);
        h.record_ns(u64::MAX);
        let s = h.summary();
        assert_eq!(s.count, 2);
        assert!(s.max >= LATENCY_MAX_NS as f64 / 1000.0 * 0.999);
        assert_eq!(Latency::new().summary(), Percentiles::default());
    }

    #[test]
    fn hgrm_has_the_hdrhistogram_shape() {
        let mut h = Latency::new();
        for us in [100u64, 200, 300, 400, 1000] {
            h.record_ns(us * 1000);
        }
        let text = h.hgrm();
        let mut lines = text.lines();
        let head = lines.next().unwrap();
        assert!(head.contains("Value") && head.contains("1/(1-Percentile)"));
        assert_eq!(lines.next(), Some(""));
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .skip(2)
            .collect();
        let first: Vec<&str> = rows[0].split_whitespace().collect();
        assert_eq!(first[0], "100.031", "value in µs at the bucket's upper end");
        assert_eq!(first[2], "1");
        let last: Vec<&str> = rows.last().unwrap().split_whitespace().collect();
        assert_eq!(last[1], "1.000000000000");
        assert_eq!(last[2], "5");
        assert_eq!(last.len(), 3, "the 100% row has no 1/(1-p) column");
        assert!(text.contains("#[Max     ="));
        assert!(text.contains("Total count    =            5]"));
        assert!(text.contains("SubBuckets     =         2048]"), "{text}");
    }

    #[test]
    fn errors_are_named_and_merged() {
        let mut e = Errors::default();
        e.code(response::SYSTEM_BUSY);
        e.code(response::SYSTEM_BUSY);
        e.code(4242);
        e.client(ClientError::Timeout);
        let mut f = Errors::default();
        f.code(response::SYSTEM_BUSY);
        f.merge(&e);
        assert_eq!(f.0["SYSTEM_BUSY"], 3);
        assert_eq!(f.0["CODE_4242"], 1);
        assert_eq!(f.0["CLIENT_TIMEOUT"], 1);
        assert_eq!(f.total(), 5);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"CLIENT_TIMEOUT":1,"CODE_4242":1,"SYSTEM_BUSY":2}"#
        );
    }
}
