//! KV config: PUT / GET / DELETE / GET_KVLIST_BY_NAMESPACE, QUERY_NOT_FOUND for missing
//! entries, persisted to `kvConfigPath` and read back by a restarted namesrv.

use ringmq_codec::codes::{request, response};
use ringmq_tests::Process;
use ringmq_tests::namesrv::{json, plain_request};

fn put(ns: &str, key: &str, value: &str) -> ringmq_codec::Command {
    plain_request(request::PUT_KV_CONFIG)
        .with_ext("namespace", ns)
        .with_ext("key", key)
        .with_ext("value", value)
}

fn get(ns: &str, key: &str) -> ringmq_codec::Command {
    plain_request(request::GET_KV_CONFIG)
        .with_ext("namespace", ns)
        .with_ext("key", key)
}

#[test]
fn kv_config_round_trip_and_persistence() {
    let kv_dir = ringmq_tests::TempDir::new("kv");
    let kv_file = kv_dir.path().join("kv.json");
    let setting = format!("kvConfigPath={}", kv_file.display());

    let ns = Process::namesrv(&[&setting]);
    let mut conn = ns.client();
    let r = conn.call(get("NS", "k"));
    assert_eq!(r.code, response::QUERY_NOT_FOUND);
    assert_eq!(
        r.remark.as_deref(),
        Some("No config item, Namespace: NS Key: k")
    );

    assert_eq!(conn.call(put("NS", "k", "v")).code, response::SUCCESS);
    assert_eq!(conn.call(put("NS", "gone", "x")).code, response::SUCCESS);
    let r = conn.call(get("NS", "k"));
    assert_eq!(r.code, response::SUCCESS);
    assert_eq!(r.ext.get("value"), Some("v"));

    let del = plain_request(request::DELETE_KV_CONFIG)
        .with_ext("namespace", "NS")
        .with_ext("key", "gone");
    assert_eq!(conn.call(del).code, response::SUCCESS);

    let list =
        conn.call(plain_request(request::GET_KVLIST_BY_NAMESPACE).with_ext("namespace", "NS"));
    assert_eq!(list.code, response::SUCCESS);
    assert_eq!(json(&list), serde_json::json!({"table": {"k": "v"}}));
    let missing =
        conn.call(plain_request(request::GET_KVLIST_BY_NAMESPACE).with_ext("namespace", "None"));
    assert_eq!(missing.code, response::QUERY_NOT_FOUND);
    drop(conn);
    drop(ns);

    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&kv_file).unwrap()).unwrap();
    assert_eq!(file, serde_json::json!({"configTable": {"NS": {"k": "v"}}}));

    let again = Process::namesrv(&[&setting]);
    let r = again.client().call(get("NS", "k"));
    assert_eq!(r.ext.get("value"), Some("v"), "{r:?}");
}
