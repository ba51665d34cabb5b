//! SIGTERM stops the namesrv cleanly: it logs the shutdown and exits with status 0.

use std::time::Duration;

use ringmq_tests::Process;

#[test]
fn sigterm_exits_cleanly() {
    let mut ns = Process::namesrv(&[]);
    let _conn = ns.client();
    ns.terminate();
    let status = ns
        .wait_exit(Duration::from_secs(20))
        .expect("ringmq-namesrv exits after SIGTERM");
    assert!(
        status.success(),
        "exit status {status}; stderr:\n{}",
        ns.stderr()
    );
    assert!(ns.stderr().contains("SIGTERM received"), "{}", ns.stderr());
}
