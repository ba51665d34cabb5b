//! The `ringmq-namesrv` command line: `--help` documents the settings, and a bad setting is
//! refused with an error naming the key. Being an integration test of ringmq-net, this file
//! also makes `cargo test --workspace` build the binaries the black-box tests in `tests/` run.

use std::process::Command;

const NAMESRV: &str = env!("CARGO_BIN_EXE_ringmq-namesrv");

#[test]
fn help_lists_the_settings() {
    let out = Command::new(NAMESRV).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "Usage: ringmq-namesrv [-c namesrv.conf] [key=value ...]",
        "listenPort",
        "bindAddress",
        "scanNotActiveBrokerInterval",
        "brokerExpiredTimeoutMillis",
    ] {
        assert!(text.contains(key), "--help lacks {key:?}:\n{text}");
    }
    let short = Command::new(NAMESRV).arg("-h").output().unwrap();
    assert_eq!(short.stdout, text.as_bytes());
}

#[test]
fn bad_settings_are_refused_naming_the_key() {
    for (args, needle) in [
        (vec!["listenPort=notaport"], "listenPort"),
        (
            vec!["-c", "/nonexistent/namesrv.conf"],
            "/nonexistent/namesrv.conf",
        ),
        (vec!["--bogus"], "--bogus"),
    ] {
        let out = Command::new(NAMESRV).args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle),
            "{args:?}: stderr lacks {needle:?}:\n{err}"
        );
    }
}
