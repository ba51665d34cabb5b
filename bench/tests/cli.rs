//! The `ringmq-bench` command line: `--help` names every scenario, and a flag it does not know
//! is refused with an error naming it. Being an integration test of ringmq-bench, this file
//! also makes `cargo test --workspace` build the binary that `tests/bench_suite_smoke.rs` runs.

use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_ringmq-bench");

#[test]
fn help_names_every_scenario() {
    let out = Command::new(BENCH).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for scenario in [
        "produce",
        "consume",
        "produce-consume",
        "self-test",
        "compare",
        "suite",
        "timers",
    ] {
        assert!(
            text.contains(&format!("ringmq-bench {scenario} ")),
            "--help lacks {scenario:?}:\n{text}"
        );
    }
}

#[test]
fn an_unknown_flag_is_refused_by_name() {
    let out = Command::new(BENCH)
        .args(["produce", "--no-such-flag"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-such-flag"), "stderr: {err}");
}
