//! The suite's table: one row per figure of issue 7, each the median of several runs, its
//! baseline measured in the same run, the ratio, the target and PASS / MISS.

use std::fmt::Write as _;

use serde::Serialize;

/// Which number a target bounds, and how.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "on")]
pub enum Target {
    /// value / baseline ≥ bound.
    RatioAtLeast { bound: f64 },
    /// value / baseline ≤ bound.
    RatioAtMost { bound: f64 },
    /// value ≤ bound (in the row's unit).
    ValueAtMost { bound: f64 },
    /// No target: shown for context.
    Info,
}

impl Target {
    fn text(&self) -> String {
        match self {
            Target::RatioAtLeast { bound } => format!(">= {bound}x"),
            Target::RatioAtMost { bound } => format!("<= {bound}x"),
            Target::ValueAtMost { bound } => format!("<= {bound}"),
            Target::Info => "-".into(),
        }
    }
}

/// One figure of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub figure: String,
    pub unit: String,
    /// Median of `runs`.
    pub value: Option<f64>,
    pub runs: Vec<f64>,
    pub baseline_label: String,
    pub baseline: Option<f64>,
    pub baseline_runs: Vec<f64>,
    pub ratio: Option<f64>,
    pub target: Target,
    /// PASS, MISS, INFO or ERROR.
    pub verdict: String,
    pub note: String,
}

/// The median (mean of the middle two for an even count); `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v.get(mid).copied()
    } else {
        Some((v.get(mid - 1)? + v.get(mid)?) / 2.0)
    }
}

impl Row {
    /// A row from its runs and its baseline's runs; computes medians, ratio and verdict.
    pub fn new(
        id: &str,
        figure: &str,
        unit: &str,
        runs: Vec<f64>,
        baseline_label: &str,
        baseline_runs: Vec<f64>,
        target: Target,
    ) -> Row {
        let value = median(&runs);
        let baseline = median(&baseline_runs);
        let ratio = match (value, baseline) {
            (Some(v), Some(b)) if b != 0.0 => Some(v / b),
            _ => None,
        };
        let verdict = match (target, ratio, value) {
            (Target::Info, ..) => "INFO",
            (Target::RatioAtLeast { bound }, Some(r), _) => pass(r >= bound),
            (Target::RatioAtMost { bound }, Some(r), _) => pass(r <= bound),
            (Target::ValueAtMost { bound }, _, Some(v)) => pass(v <= bound),
            _ => "ERROR",
        };
        Row {
            id: id.into(),
            figure: figure.into(),
            unit: unit.into(),
            value,
            runs,
            baseline_label: baseline_label.into(),
            baseline,
            baseline_runs,
            ratio,
            target,
            verdict: verdict.into(),
            note: String::new(),
        }
    }

    /// A row whose measurement failed.
    pub fn failed(id: &str, figure: &str, error: &str) -> Row {
        let mut r = Row::new(id, figure, "", Vec::new(), "", Vec::new(), Target::Info);
        r.verdict = "ERROR".into();
        r.note = error.into();
        r
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// A number in a short human form: 123456 → "123.5k", 0.42 → "0.42".
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The table as printed at the end of the suite.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<46} {:>18} {:>34} {:>8} {:>9} {:>7}",
        "figure (median of runs)", "measured", "baseline (same run)", "ratio", "target", "verdict"
    );
    for r in rows {
        let measured = r
            .value
            .map_or("-".into(), |v| format!("{} {}", short(v), r.unit));
        let base = match r.baseline {
            Some(b) => format!("{} {}", r.baseline_label, short(b)),
            None => r.baseline_label.clone(),
        };
        let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2}"));
        let _ = writeln!(
            out,
            "{:<46} {:>18} {:>34} {:>8} {:>9} {:>7}",
            r.figure,
            measured,
            base,
            ratio,
            r.target.text(),
            r.verdict
        );
        if !r.note.is_empty() {
            let _ = writeln!(out, "    {}", r.note);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn verdicts_follow_the_target() {
        let r = Row::new(
            "a",
            "async",
            "MB/s",
            vec![90.0, 100.0, 95.0],
            "raw",
            vec![100.0; 3],
            Target::RatioAtLeast { bound: 0.9 },
        );
        assert_eq!(
            (r.value, r.ratio, r.verdict.as_str()),
            (Some(95.0), Some(0.95), "PASS")
        );
        let r = Row::new(
            "p",
            "p99",
            "us",
            vec![500.0],
            "raw",
            vec![200.0],
            Target::RatioAtMost { bound: 2.0 },
        );
        assert_eq!(r.verdict, "MISS");
        let r = Row::new(
            "e",
            "e2e",
            "us",
            vec![800.0],
            "",
            vec![],
            Target::ValueAtMost { bound: 1000.0 },
        );
        assert_eq!((r.ratio, r.verdict.as_str()), (None, "PASS"));
        let r = Row::new(
            "x",
            "x",
            "",
            vec![],
            "",
            vec![1.0],
            Target::RatioAtLeast { bound: 1.0 },
        );
        assert_eq!(r.verdict, "ERROR");
        let text = render(&[r, Row::failed("y", "broken row", "it broke")]);
        assert!(
            text.contains("broken row") && text.contains("it broke"),
            "{text}"
        );
    }
}
