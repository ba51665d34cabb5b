//! `ringmq-bench compare A.json B.json`: the two runs side by side, with B/A ratios.

use std::fmt::Write as _;

use crate::report::{Report, us};
use crate::stats::Percentiles;

/// How a row's values print.
#[derive(Clone, Copy)]
enum Unit {
    Rate,
    Mb,
    Micros,
    Count,
}

fn fmt(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Rate => format!("{v:.0}"),
        Unit::Mb => format!("{v:.2}"),
        Unit::Micros => us(v),
        Unit::Count => format!("{v:.0}"),
    }
}

fn ratio(a: f64, b: f64) -> String {
    if a == 0.0 && b == 0.0 {
        "=".into()
    } else if a == 0.0 {
        "n/a".into()
    } else {
        format!("{:.2}x", b / a)
    }
}

/// Reads one percentile.
type Pick = fn(&Percentiles) -> f64;

fn latency_rows(label: &str, a: Option<&Percentiles>, b: Option<&Percentiles>) -> Vec<Row> {
    // An empty histogram (e.g. no end-to-end latency in a catch-up read) has no percentiles.
    let pick = |p: Option<&Percentiles>, f: Pick| p.filter(|p| p.count > 0).map(f);
    let rows: [(&str, Pick); 6] = [
        ("p50", |p| p.p50),
        ("p90", |p| p.p90),
        ("p99", |p| p.p99),
        ("p99.9", |p| p.p999),
        ("p99.99", |p| p.p9999),
        ("max", |p| p.max),
    ];
    rows.iter()
        .map(|(name, f)| Row {
            label: format!("{label} {name}"),
            unit: Unit::Micros,
            a: pick(a, *f),
            b: pick(b, *f),
        })
        .collect()
}

struct Row {
    label: String,
    unit: Unit,
    a: Option<f64>,
    b: Option<f64>,
}

fn rows(a: &Report, b: &Report) -> Vec<Row> {
    let row = |label: &str, unit, a: Option<f64>, b: Option<f64>| Row {
        label: label.to_owned(),
        unit,
        a,
        b,
    };
    let (pa, pb) = (a.results.produce.as_ref(), b.results.produce.as_ref());
    let (ca, cb) = (a.results.consume.as_ref(), b.results.consume.as_ref());
    let mut out = vec![
        row(
            "send msgs/s",
            Unit::Rate,
            pa.map(|p| p.msgs_per_s),
            pb.map(|p| p.msgs_per_s),
        ),
        row(
            "send MB/s",
            Unit::Mb,
            pa.map(|p| p.mb_per_s),
            pb.map(|p| p.mb_per_s),
        ),
    ];
    out.extend(latency_rows(
        "send",
        pa.map(|p| &p.send_latency_us),
        pb.map(|p| &p.send_latency_us),
    ));
    out.push(row(
        "send errors",
        Unit::Count,
        pa.map(|p| p.errors.total() as f64),
        pb.map(|p| p.errors.total() as f64),
    ));
    out.push(row(
        "recv msgs/s",
        Unit::Rate,
        ca.map(|c| c.msgs_per_s),
        cb.map(|c| c.msgs_per_s),
    ));
    out.push(row(
        "recv MB/s",
        Unit::Mb,
        ca.map(|c| c.mb_per_s),
        cb.map(|c| c.mb_per_s),
    ));
    out.extend(latency_rows(
        "e2e",
        ca.map(|c| &c.e2e_latency_us),
        cb.map(|c| &c.e2e_latency_us),
    ));
    for (label, f) in [
        (
            "lost",
            (|c| c.lost) as fn(&crate::report::ConsumeResults) -> u64,
        ),
        ("duplicated", |c| c.duplicated),
        ("reordered", |c| c.reordered),
    ] {
        out.push(row(
            label,
            Unit::Count,
            ca.map(|c| f(c) as f64),
            cb.map(|c| f(c) as f64),
        ));
    }
    out.retain(|r| r.a.is_some() || r.b.is_some());
    out
}

/// A description of a run for the table heading.
fn describe(r: &Report) -> String {
    let m = &r.manifest;
    format!(
        "{} {} | {} {} | {} loop | flush {} | {}",
        m.target.language.as_deref().unwrap_or("?"),
        m.target.version_name.as_deref().unwrap_or("?"),
        m.scenario,
        m.params.send_label(),
        m.mode,
        m.flush_label.as_deref().unwrap_or("?"),
        m.target.brokers.join(",")
    )
}

/// The comparison table, B relative to A.
pub fn compare(a: &Report, b: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "A: {}", describe(a));
    let _ = writeln!(out, "B: {}", describe(b));
    let mut notes = Vec::new();
    if a.manifest.host != b.manifest.host {
        notes.push("the runs are from different hosts".to_owned());
    }
    let (pa, pb) = (&a.manifest.params, &b.manifest.params);
    if (pa.size, pa.batch, pa.send, pa.rate) != (pb.size, pb.batch, pb.send, pb.rate) {
        notes.push("size, batch, send mode or rate differ between the runs".to_owned());
    }
    if a.manifest.flush_label != b.manifest.flush_label {
        notes.push("the brokers' flush modes differ (or are not stated)".to_owned());
    }
    for n in notes {
        let _ = writeln!(out, "note: {n}");
    }
    let _ = writeln!(out, "{:<16} {:>14} {:>14} {:>9}", "", "A", "B", "B/A");
    for r in rows(a, b) {
        let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| fmt(r.unit, v));
        let q = match (r.a, r.b) {
            (Some(x), Some(y)) => ratio(x, y),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:>14} {:>14} {:>9}",
            r.label,
            cell(r.a),
            cell(r.b),
            q
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_report;

    #[test]
    fn table_has_ratios_and_notes() {
        let a = sample_report();
        let mut b = sample_report();
        if let Some(p) = b.results.produce.as_mut() {
            p.msgs_per_s = 2500.0;
            p.send_latency_us.p99 = 150.0;
        }
        if let Some(c) = b.results.consume.as_mut() {
            c.lost = 3;
        }
        b.manifest.flush_label = Some("SYNC_FLUSH".into());
        let t = compare(&a, &b);
        let line = |label: &str| {
            t.lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no row {label} in\n{t}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(line("send msgs/s")[2..], ["1000", "2500", "2.50x"]);
        assert_eq!(line("send p99 ")[2..], ["300.0us", "150.0us", "0.50x"]);
        assert_eq!(line("lost")[1..], ["0", "3", "n/a"]);
        assert_eq!(line("reordered")[1..], ["0", "0", "="]);
        assert!(t.contains("flush modes differ"), "{t}");
        assert!(
            t.starts_with("A: RUST V5_3_3 | produce-consume async"),
            "{t}"
        );
    }

    #[test]
    fn missing_sections_print_dashes() {
        let a = sample_report();
        let mut b = sample_report();
        b.results.consume = None;
        let t = compare(&a, &b);
        let e2e: Vec<&str> = t
            .lines()
            .find(|l| l.starts_with("e2e p50"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(e2e[2..], ["200.0us", "-", "-"]);
    }
}
