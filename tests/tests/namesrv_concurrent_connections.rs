//! 500 connections open at the same time, each doing a request: every one is answered.
//! Method: 10 threads open 50 connections each, all are held open until every thread has
//! connected, then each connection sends one request and reads its answer.

use std::sync::{Arc, Barrier};

use ringmq_codec::SerializeType;
use ringmq_codec::codes::response;
use ringmq_tests::namesrv::{Broker, route_request};
use ringmq_tests::{Process, RawClient};

const THREADS: usize = 10;
const PER_THREAD: usize = 50;

#[test]
fn five_hundred_concurrent_connections() {
    let ns = Process::namesrv(&[]);
    let mut broker = ns.client();
    let r =
        broker.call(Broker::new("broker-a", "127.0.0.1:10911", 0).register(SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS);

    let addr = ns.addr();
    let all_connected = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let all_connected = all_connected.clone();
            std::thread::spawn(move || {
                let mut conns: Vec<RawClient> =
                    (0..PER_THREAD).map(|_| RawClient::connect(addr)).collect();
                all_connected.wait();
                // Send on every connection first, then read: the requests are in flight together.
                let ser = if t % 2 == 0 {
                    SerializeType::Json
                } else {
                    SerializeType::RocketMq
                };
                for (i, c) in conns.iter_mut().enumerate() {
                    let mut req = route_request("TopicTest", ser);
                    req.opaque = i32::try_from(i).unwrap();
                    c.send(&req);
                }
                let mut ok = 0;
                for (i, c) in conns.iter_mut().enumerate() {
                    let r = c.read_frame().unwrap().expect("a response");
                    assert_eq!(r.opaque, i32::try_from(i).unwrap());
                    assert_eq!(r.code, response::SUCCESS, "{r:?}");
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let answered: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(answered, THREADS * PER_THREAD);

    // The server is still healthy afterwards.
    let r = broker.call(route_request("TopicTest", SerializeType::Json));
    assert_eq!(r.code, response::SUCCESS);
}
