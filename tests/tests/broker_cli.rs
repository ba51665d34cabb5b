//! The `ringmq-broker` command line: `--help` lists the broker.conf keys, `--version`
//! prints the version (start.sh relies on it), a bad value is refused with a message naming
//! the key, an unknown key is warned about, and `-c broker.conf` with Java's property names
//! (and `-n`) is read.

use std::process::Command;

use ringmq_codec::codes::response;
use ringmq_tests::broker::send_v2;
use ringmq_tests::{Process, TempDir, binary};

#[test]
fn help_version_and_bad_values() {
    let bin = binary("ringmq-broker");
    let out = Command::new(&bin).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "namesrvAddr",
        "flushDiskType",
        "storePathRootDir",
        "shards",
        "metricsPort",
        "-n ADDR",
    ] {
        assert!(text.contains(key), "--help lacks {key}:\n{text}");
    }
    let out = Command::new(&bin).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ringmq-broker "));
    for (arg, key) in [
        ("flushDiskType=SOMETIMES", "flushDiskType"),
        ("listenPort=http", "listenPort"),
        ("shards=0", "shards"),
        ("namesrvAddr=nowhere", "namesrvAddr"),
    ] {
        let out = Command::new(&bin).arg(arg).output().unwrap();
        assert!(!out.status.success(), "{arg} must be refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{arg}: {err}");
    }
}

#[test]
fn a_broker_conf_file_is_read_and_unknown_keys_are_warned_about() {
    let ns = Process::namesrv(&[]);
    let conf_dir = TempDir::new("broker-conf");
    let conf = conf_dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        "# a Java broker.conf\nbrokerClusterName = ConfCluster\nbrokerName = conf-b\nbrokerId = 0\n\
         deleteWhen = 04\nfileReservedTime = 48\nbrokerRole = ASYNC_MASTER\nflushDiskType = ASYNC_FLUSH\n",
    )
    .unwrap();
    let conf_arg = conf.display().to_string();
    let broker = Process::broker(
        ns.addr(),
        &[
            "-c",
            &conf_arg,
            "shards=1",
            "brokerName=conf-b",
            "brokerClusterName=ConfCluster",
            "bogusKey=1",
        ],
    );
    let info = broker.cluster_info();
    assert_eq!(
        info["clusterAddrTable"]["ConfCluster"][0], "conf-b",
        "{info}"
    );
    let log = broker.stderr();
    assert!(log.contains("unknown config key `bogusKey`"), "{log}");
    assert!(
        log.contains("`brokerRole` is accepted for compatibility"),
        "{log}"
    );
    assert_eq!(
        broker.client().call(send_v2("Conf", 0, b"x", "")).code,
        response::SUCCESS
    );
}
