//! Runs the micro benchmarks and `engine-bench --smoke` with tiny parameters, so neither rots.
//! Asserts only that they run and report, never on timings.

#[path = "../benches/micro.rs"]
mod micro;

#[test]
fn micro_benchmarks_run() {
    let results = micro::run(200);
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|(_, ns)| ns.is_finite() && *ns > 0.0));
}

#[test]
fn engine_bench_smoke_prints_a_result_line() {
    let dir =
        std::env::temp_dir().join(format!("ringmq-engine-bench-smoke-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_engine-bench"))
        .args(["--smoke", "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let json: serde_json::Value =
        serde_json::from_str(last.strip_prefix("RESULT ").unwrap()).unwrap();
    for key in [
        "async_vs_raw_1mib",
        "sync_throughput_vs_raw",
        "sync_p99_vs_raw_p99",
        "many_queues_vs_8",
    ] {
        assert!(
            json["ratios"][key].as_f64().is_some(),
            "missing ratio {key}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
