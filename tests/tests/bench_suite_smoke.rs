//! `ringmq-bench suite` runs every row of the performance table end to end against a broker it
//! starts itself, with tiny sizes, one run per row and one shard, and writes a table in which
//! every row has a measurement. Nothing here looks at how fast anything was.

use std::process::Command;

use ringmq_tests::{TempDir, binary, free_port};

/// Row ids the suite must produce (bench/src/suite.rs).
const ROWS: &[&str] = &[
    "raw-fdatasync-p99",
    "async-produce",
    "e2e-p99",
    "pull",
    "queues-rate",
    "queues-p99",
    "rss",
    "catchup",
    "self-test",
    "sync-produce",
    "raw-sync-16k",
    "raw-sync-64k",
    "raw-sync-256k",
    "sync-p99",
];

#[test]
fn suite_measures_every_row() {
    let bench = binary("ringmq-bench");
    let bin_dir = binary("ringmq-broker")
        .parent()
        .expect("binary directory")
        .to_owned();
    let work = TempDir::new("bench-suite");
    let json = work.path().join("table.json");
    let out = Command::new(&bench)
        .arg("suite")
        .args([
            "--quick",
            "--runs",
            "1",
            "--duration",
            "300ms",
            "--shards",
            "1",
        ])
        .args([
            "--pull-backlog",
            "2MiB",
            "--backlog",
            "2MiB",
            "--connections",
            "20",
        ])
        .args(["--queues", "200"])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--work")
        .arg(work.path().join("w"))
        .args(["--namesrv-port", &free_port().to_string()])
        .args(["--broker-port", &free_port().to_string()])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run ringmq-bench suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "suite failed:\n{stdout}\n{stderr}");
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the table JSON")).expect("JSON");
    let rows = table["rows"].as_array().expect("rows");
    // SAFETY: geteuid(2) has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    for id in ROWS {
        let row = rows
            .iter()
            .find(|r| r["id"] == *id)
            .unwrap_or_else(|| panic!("row {id} missing:\n{stdout}"));
        // Dropping the page cache needs root; without it the catch-up row says so.
        if *id == "catchup" && !root {
            continue;
        }
        assert_ne!(row["verdict"], "ERROR", "row {id}: {row}\n{stderr}");
        let value = row["value"].as_f64().unwrap_or(0.0);
        assert!(value > 0.0, "row {id} has no measurement: {row}");
        assert!(stdout.contains(row["figure"].as_str().unwrap_or("?")));
    }
    assert_eq!(table["realtime_priority"], false);
}
