//! Route table behaviour, one scenario per test, with time passed in as numbers: first
//! registration, re-registration with the same and a changed DataVersion, slaves, id switch,
//! expiry (default and broker-given timeout), channel close, unregistration, KV config.

use ringmq_codec::body::topic_config::TopicConfig;

use super::*;

const CLUSTER: &str = "DefaultCluster";
const ADDR_A0: &str = "10.0.0.1:10911";
const ADDR_A1: &str = "10.0.0.2:10911";
const ADDR_B0: &str = "10.0.0.3:10911";

fn topic(name: &str, queues: i32, perm: i32) -> TopicConfig {
    TopicConfig {
        topic_name: name.to_owned(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        perm,
        ..TopicConfig::default()
    }
}

fn wrapper(counter: i64, topics: &[TopicConfig]) -> TopicConfigSerializeWrapper {
    TopicConfigSerializeWrapper {
        topic_config_table: topics
            .iter()
            .map(|t| (t.topic_name.clone(), t.clone()))
            .collect(),
        data_version: DataVersion {
            state_version: 0,
            timestamp: 1_700_000_000_000,
            counter,
        },
        ..Default::default()
    }
}

fn standard_topics() -> Vec<TopicConfig> {
    vec![topic("TBW102", 8, 7), topic("TopicTest", 4, 6)]
}

fn reg(name: &str, addr: &str, id: i64, counter: i64, channel: u64) -> Registration {
    Registration {
        cluster: CLUSTER.to_owned(),
        broker_name: name.to_owned(),
        broker_addr: addr.to_owned(),
        broker_id: id,
        ha_server_addr: format!("{addr}-ha"),
        zone_name: None,
        heartbeat_timeout_ms: None,
        enable_acting_master: None,
        topics: wrapper(counter, &standard_topics()),
        channel: ConnId(channel),
    }
}

fn key(addr: &str) -> BrokerAddrKey {
    BrokerAddrKey {
        cluster: CLUSTER.to_owned(),
        addr: addr.to_owned(),
    }
}

fn queue(table: &RouteTable, topic: &str, broker: &str) -> Option<QueueData> {
    table
        .route(topic)?
        .queue_datas
        .into_iter()
        .find(|q| q.broker_name == broker)
}

fn addrs(table: &RouteTable, broker: &str) -> Vec<(i64, String)> {
    table
        .cluster_info()
        .broker_addr_table
        .get(broker)
        .map(|d| d.broker_addrs.clone().into_iter().collect())
        .unwrap_or_default()
}

#[test]
fn first_registration_creates_routes_and_cluster() {
    let mut t = RouteTable::default();
    let r = t.register(reg("broker-a", ADDR_A0, 0, 1, 7), 1000).unwrap();
    assert!(r.new_broker && r.topics_changed);
    assert_eq!(r.topic_count, 2);
    assert_eq!((r.master_addr, r.ha_server_addr), (None, None));

    let route = t.route("TopicTest").unwrap();
    assert_eq!(
        route.queue_datas,
        vec![QueueData {
            broker_name: "broker-a".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }]
    );
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].cluster, CLUSTER);
    assert_eq!(addrs(&t, "broker-a"), vec![(0, ADDR_A0.to_owned())]);
    assert!(route.filter_server_table.is_empty());

    let info = t.cluster_info();
    assert_eq!(
        info.cluster_addr_table
            .get(CLUSTER)
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec!["broker-a"]
    );
    let live = t.live_broker(&key(ADDR_A0)).unwrap();
    assert_eq!(live.last_update_ms, 1000);
    assert_eq!(live.timeout_ms, BROKER_EXPIRED_DEFAULT_MS);
    assert_eq!(live.channel, ConnId(7));
}

#[test]
fn tbw102_route_keeps_its_inherit_perm() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let q = queue(&t, "TBW102", "broker-a").unwrap();
    assert_eq!((q.perm, q.write_queue_nums), (7, 8));
}

#[test]
fn unknown_topic_has_no_route() {
    let mut t = RouteTable::default();
    assert!(t.route("Nope").is_none());
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    assert!(t.route("Nope").is_none());
}

#[test]
fn reregistration_with_same_version_keeps_queue_data() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut again = reg("broker-a", ADDR_A0, 0, 1, 1);
    // Same DataVersion but different content: Java trusts the version and skips the rewrite.
    again.topics = wrapper(1, &[topic("TBW102", 8, 7), topic("TopicTest", 16, 6)]);
    let r = t.register(again, 30_000).unwrap();
    assert!(!r.new_broker && !r.topics_changed);
    assert_eq!(
        queue(&t, "TopicTest", "broker-a").unwrap().write_queue_nums,
        4
    );
    assert_eq!(t.live_broker(&key(ADDR_A0)).unwrap().last_update_ms, 30_000);
}

#[test]
fn reregistration_with_changed_version_rewrites_queue_data() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut again = reg("broker-a", ADDR_A0, 0, 2, 1);
    again.topics = wrapper(
        2,
        &[
            topic("TBW102", 8, 7),
            topic("TopicTest", 16, 6),
            topic("New", 2, 6),
        ],
    );
    let r = t.register(again, 30_000).unwrap();
    assert!(!r.new_broker && r.topics_changed);
    assert_eq!(
        queue(&t, "TopicTest", "broker-a").unwrap().write_queue_nums,
        16
    );
    assert_eq!(queue(&t, "New", "broker-a").unwrap().write_queue_nums, 2);
}

#[test]
fn new_topic_under_same_version_is_still_added() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut again = reg("broker-a", ADDR_A0, 0, 1, 1);
    again.topics = wrapper(1, &[topic("TBW102", 8, 7), topic("Late", 3, 6)]);
    t.register(again, 1).unwrap();
    assert_eq!(queue(&t, "Late", "broker-a").unwrap().read_queue_nums, 3);
}

#[test]
fn deleted_topics_stay_until_the_broker_leaves() {
    // Java's deleteTopicWithBrokerRegistration defaults to false: a topic missing from a
    // later registration keeps its route.
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut again = reg("broker-a", ADDR_A0, 0, 2, 1);
    again.topics = wrapper(2, &[topic("TBW102", 8, 7), topic("Other", 1, 6)]);
    t.register(again, 1).unwrap();
    assert!(t.route("TopicTest").is_some());
}

#[test]
fn slave_adds_an_address_but_not_queue_data() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut slave = reg("broker-a", ADDR_A1, 1, 1, 2);
    slave.topics = wrapper(1, &[topic("TBW102", 8, 7), topic("TopicTest", 99, 6)]);
    let r = t.register(slave, 5).unwrap();
    assert!(r.new_broker);
    assert_eq!(r.master_addr.as_deref(), Some(ADDR_A0));
    assert_eq!(r.ha_server_addr, Some(format!("{ADDR_A0}-ha")));
    assert_eq!(
        addrs(&t, "broker-a"),
        vec![(0, ADDR_A0.to_owned()), (1, ADDR_A1.to_owned())]
    );
    assert_eq!(
        queue(&t, "TopicTest", "broker-a").unwrap().write_queue_nums,
        4
    );
}

#[test]
fn slave_alone_is_listed_but_hosts_no_topic() {
    let mut t = RouteTable::default();
    let r = t.register(reg("broker-a", ADDR_A1, 1, 1, 1), 0).unwrap();
    assert_eq!(r.master_addr, None);
    assert!(t.route("TopicTest").is_none());
    assert_eq!(addrs(&t, "broker-a"), vec![(1, ADDR_A1.to_owned())]);
}

#[test]
fn acting_master_prime_slave_registers_read_only_queues() {
    let mut t = RouteTable::default();
    let mut slave = reg("broker-a", ADDR_A1, 1, 1, 1);
    slave.enable_acting_master = Some(true);
    t.register(slave, 0).unwrap();
    let q = queue(&t, "TopicTest", "broker-a").unwrap();
    assert_eq!(q.perm, 6 & !perm::WRITE);
    assert!(t.cluster_info().broker_addr_table["broker-a"].enable_acting_master);
}

#[test]
fn same_address_switching_id_keeps_one_entry() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A1, 1, 1, 1), 0).unwrap();
    // The slave is promoted: same address, id 0.
    t.register(reg("broker-a", ADDR_A1, 0, 2, 1), 10).unwrap();
    assert_eq!(addrs(&t, "broker-a"), vec![(0, ADDR_A1.to_owned())]);
    assert_eq!(queue(&t, "TopicTest", "broker-a").unwrap().perm, 6);
}

#[test]
fn single_topic_registration_needs_a_full_one_first() {
    let mut t = RouteTable::default();
    let mut single = reg("broker-a", ADDR_A0, 0, 1, 1);
    single.topics = wrapper(1, &[topic("Only", 4, 6)]);
    let err = t.register(single.clone(), 0).unwrap_err();
    assert!(matches!(
        err,
        RegisterError::SingleTopicBeforeFull { broker_id: 0, .. }
    ));
    assert!(err.to_string().contains("broker-a"), "{err}");
    // Nothing was left behind by the refused registration.
    assert!(t.cluster_info().broker_addr_table.is_empty());
    assert!(t.cluster_info().cluster_addr_table.is_empty());

    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    single.topics.data_version.counter = 2;
    t.register(single, 1).unwrap();
    assert!(t.route("Only").is_some());
}

#[test]
fn registration_with_older_state_version_is_refused() {
    let mut t = RouteTable::default();
    let mut holder = reg("broker-a", ADDR_A0, 0, 1, 1);
    holder.topics.data_version.state_version = 5;
    t.register(holder, 0).unwrap();
    let mut stale = reg("broker-a", ADDR_B0, 0, 1, 2);
    stale.topics.data_version.state_version = 4;
    let err = t.register(stale, 1).unwrap_err();
    assert!(matches!(err, RegisterError::StaleStateVersion { .. }));
    assert_eq!(addrs(&t, "broker-a"), vec![(0, ADDR_A0.to_owned())]);
    assert!(t.live_broker(&key(ADDR_B0)).is_none());
}

#[test]
fn two_brokers_share_a_topic() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    t.register(reg("broker-b", ADDR_B0, 0, 1, 2), 0).unwrap();
    let route = t.route("TopicTest").unwrap();
    let names: Vec<&str> = route
        .queue_datas
        .iter()
        .map(|q| q.broker_name.as_str())
        .collect();
    assert_eq!(names, vec!["broker-a", "broker-b"]);
    assert_eq!(route.broker_datas.len(), 2);
}

#[test]
fn expiry_after_default_timeout() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 1_000)
        .unwrap();
    assert!(t.expire(1_000 + BROKER_EXPIRED_DEFAULT_MS).is_empty());
    let expired = t.expire(1_000 + BROKER_EXPIRED_DEFAULT_MS + 1);
    assert_eq!(expired.len(), 1);
    let (gone, silent_ms) = &expired[0];
    assert_eq!(gone.key, key(ADDR_A0));
    assert_eq!(gone.broker_name.as_deref(), Some("broker-a"));
    assert_eq!(gone.broker_id, Some(0));
    assert!(gone.broker_name_removed);
    assert_eq!(*silent_ms, BROKER_EXPIRED_DEFAULT_MS + 1);
    assert!(t.route("TopicTest").is_none());
    assert!(t.all_topics().topic_list.is_empty());
    assert!(t.cluster_info().cluster_addr_table.is_empty());
    assert!(t.live_broker(&key(ADDR_A0)).is_none());
}

#[test]
fn expiry_uses_the_broker_given_timeout() {
    let mut t = RouteTable::new(60_000);
    let mut short = reg("broker-a", ADDR_A0, 0, 1, 1);
    short.heartbeat_timeout_ms = Some(10_000);
    t.register(short, 0).unwrap();
    let mut bogus = reg("broker-b", ADDR_B0, 0, 1, 2);
    bogus.heartbeat_timeout_ms = Some(-5);
    t.register(bogus, 0).unwrap();
    assert_eq!(t.live_broker(&key(ADDR_B0)).unwrap().timeout_ms, 60_000);

    assert!(t.expire(10_000).is_empty());
    let expired = t.expire(10_001);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].0.key, key(ADDR_A0));
    assert_eq!(t.expire(60_001).len(), 1);
}

#[test]
fn heartbeat_and_reregistration_postpone_expiry() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    t.register(reg("broker-b", ADDR_B0, 0, 1, 2), 0).unwrap();
    assert!(t.heartbeat(&key(ADDR_A0), 100_000));
    t.register(reg("broker-b", ADDR_B0, 0, 1, 2), 100_000)
        .unwrap();
    assert!(!t.heartbeat(&key("nowhere:1"), 100_000));
    assert!(t.expire(200_000).is_empty());
    assert_eq!(t.expire(220_001).len(), 2);
}

#[test]
fn channel_close_unregisters_only_its_brokers() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    t.register(reg("broker-a", ADDR_A1, 1, 1, 1), 0).unwrap();
    t.register(reg("broker-b", ADDR_B0, 0, 1, 2), 0).unwrap();
    let gone = t.channel_closed(ConnId(1));
    assert_eq!(gone.len(), 2);
    assert!(gone.last().unwrap().broker_name_removed);
    assert!(!t.cluster_info().broker_addr_table.contains_key("broker-a"));
    let route = t.route("TopicTest").unwrap();
    assert_eq!(route.broker_datas.len(), 1);
    assert_eq!(route.broker_datas[0].broker_name, "broker-b");
    assert!(t.channel_closed(ConnId(1)).is_empty());
    assert!(t.channel_closed(ConnId(99)).is_empty());
}

#[test]
fn reregistering_over_a_new_channel_moves_ownership() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 2), 10).unwrap();
    assert!(t.channel_closed(ConnId(1)).is_empty());
    assert!(t.route("TopicTest").is_some());
    assert_eq!(t.channel_closed(ConnId(2)).len(), 1);
}

#[test]
fn unregistering_the_master_keeps_the_slave() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    t.register(reg("broker-a", ADDR_A1, 1, 1, 2), 0).unwrap();
    let gone = t.unregister(&key(ADDR_A0), "broker-a", Some(0)).unwrap();
    assert!(!gone.broker_name_removed);
    assert_eq!(addrs(&t, "broker-a"), vec![(1, ADDR_A1.to_owned())]);
    // Java keeps the queue data: clients see no master, so nothing to write to.
    let route = t.route("TopicTest").unwrap();
    assert_eq!(route.queue_datas[0].perm, 6);
    assert!(!route.broker_datas[0].broker_addrs.contains_key(&0));

    let gone = t.unregister(&key(ADDR_A1), "broker-a", Some(1)).unwrap();
    assert!(gone.broker_name_removed);
    assert!(t.route("TopicTest").is_none());
    assert!(t.unregister(&key(ADDR_A1), "broker-a", Some(1)).is_none());
}

#[test]
fn query_data_version_compares_and_refreshes() {
    let mut t = RouteTable::default();
    let v1 = reg("broker-a", ADDR_A0, 0, 1, 1).topics.data_version;
    let (changed, stored) = t.query_data_version(&key(ADDR_A0), &v1, 0);
    assert!(changed);
    assert_eq!(stored, None);
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    assert_eq!(
        t.query_data_version(&key(ADDR_A0), &v1, 50_000),
        (false, Some(v1))
    );
    assert_eq!(t.live_broker(&key(ADDR_A0)).unwrap().last_update_ms, 50_000);
    let v2 = v1.next(1);
    assert_eq!(
        t.query_data_version(&key(ADDR_A0), &v2, 50_000),
        (true, Some(v1))
    );
}

#[test]
fn topic_lists() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 1), 0).unwrap();
    let mut other = reg("broker-x", "10.9.9.9:10911", 0, 1, 2);
    other.cluster = "OtherCluster".into();
    other.topics = wrapper(1, &[topic("TBW102", 8, 7), topic("XOnly", 1, 6)]);
    t.register(other, 0).unwrap();
    let all: Vec<String> = t.all_topics().topic_list.into_iter().collect();
    assert_eq!(all, vec!["TBW102", "TopicTest", "XOnly"]);
    let mine: Vec<String> = t
        .topics_of_cluster(CLUSTER)
        .topic_list
        .into_iter()
        .collect();
    assert_eq!(mine, vec!["TBW102", "TopicTest"]);
    assert!(t.topics_of_cluster("Unknown").topic_list.is_empty());
}

#[test]
fn kv_config() {
    let mut t = RouteTable::default();
    assert_eq!(t.kv_get("ns", "k"), None);
    assert_eq!(t.kv_put("ns", "k", "v1"), None);
    assert_eq!(t.kv_put("ns", "k", "v2").as_deref(), Some("v1"));
    t.kv_put("ns", "k2", "x");
    assert_eq!(t.kv_get("ns", "k"), Some("v2"));
    assert_eq!(t.kv_namespace("ns").unwrap().len(), 2);
    assert_eq!(t.kv_delete("ns", "k").as_deref(), Some("v2"));
    assert_eq!(t.kv_delete("ns", "k2").as_deref(), Some("x"));
    assert!(t.kv_namespace("ns").is_none());
    assert_eq!(t.kv_delete("nope", "k"), None);
}

#[test]
fn delete_topic_by_cluster_or_everywhere() {
    let mut t = RouteTable::default();
    t.register(reg("broker-a", ADDR_A0, 0, 1, 7), 1000).unwrap();
    let mut other = reg("broker-x", "10.0.0.9:10911", 0, 1, 8);
    other.cluster = "OtherCluster".to_owned();
    t.register(other, 1000).unwrap();
    assert!(!t.delete_topic("NoSuchTopic", None));
    assert!(!t.delete_topic("TopicTest", Some("NoCluster")));
    // One cluster's brokers lose the topic, the other cluster keeps it.
    assert!(t.delete_topic("TopicTest", Some(CLUSTER)));
    assert!(queue(&t, "TopicTest", "broker-a").is_none());
    assert!(queue(&t, "TopicTest", "broker-x").is_some());
    assert!(t.delete_topic("TopicTest", None));
    assert!(t.route("TopicTest").is_none());
    assert!(!t.all_topics().topic_list.contains("TopicTest"));
    // The broker's next registration with a changed version brings it back.
    t.register(reg("broker-a", ADDR_A0, 0, 2, 7), 2000).unwrap();
    assert!(queue(&t, "TopicTest", "broker-a").is_some());
}
