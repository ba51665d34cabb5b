//! Transport behaviour over loopback sockets, server and client on one compio runtime:
//! out-of-order answers, oneway silence, serialization echo, bad frames closing only their
//! connection, call timeouts, and requests from server to client on the same connection.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::BytesMut;
use ringmq_codec::codes::response;
use ringmq_codec::{Command, SerializeType, frame};

use super::*;

const SLOW: i32 = 1;
const FAST: i32 = 2;
const CALL_BACK: i32 = 3;
const RELEASE: i32 = 4;
const HUGE: i32 = 5;
const ECHO: i32 = 6;
const FILE: i32 = 7;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Answers FAST at once, SLOW only when a RELEASE arrives, CALL_BACK by first calling the
/// client over the same connection; records closes.
#[derive(Default)]
struct TestHandler {
    closed: RefCell<Vec<ConnId>>,
    parked: RefCell<Vec<(Command, Reply)>>,
    /// FILE answers with these slices after a body of `head`.
    files: RefCell<Vec<FileSlice>>,
}

/// A real file as a splice source.
struct StdSource(std::fs::File);

impl SpliceSource for StdSource {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.0)
    }
}

impl Handler for TestHandler {
    fn on_request(&self, conn: &Connection, request: Command, reply: Reply) {
        match request.code {
            SLOW => self.parked.borrow_mut().push((request, reply)),
            RELEASE => {
                for (parked, parked_reply) in self.parked.borrow_mut().drain(..) {
                    parked_reply.send(Command::response_to(&parked, 0).with_remark("slow"));
                }
                reply.send(Command::response_to(&request, 0).with_remark("released"));
            }
            CALL_BACK => {
                let conn = conn.clone();
                compio::runtime::spawn(async move {
                    let back = conn.call(Command::request(FAST), TIMEOUT).await;
                    let remark = match back {
                        Ok(r) => format!("client said {}", r.remark.unwrap_or_default()),
                        Err(e) => format!("call back failed: {e}"),
                    };
                    reply.send(Command::response_to(&request, 0).with_remark(remark));
                })
                .detach();
            }
            FILE => {
                let files = self.files.borrow().clone();
                let r = Command::response_to(&request, 0).with_body(b"head:".to_vec());
                reply.send_with_files(r, files);
            }
            ECHO => {
                let body = request.body.clone();
                reply.send(Command::response_to(&request, 0).with_body(body));
            }
            HUGE => {
                let remark = "\u{1}".repeat(3 << 20);
                reply.send(Command::response_to(&request, 0).with_remark(remark));
            }
            _ => reply.send(Command::response_to(&request, 0).with_remark("fast")),
        }
    }

    fn on_close(&self, conn: &Connection) {
        self.closed.borrow_mut().push(conn.id());
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    compio::runtime::Runtime::new().unwrap().block_on(f)
}

fn start_server(handler: Rc<TestHandler>) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default()).unwrap();
    let addr = server.local_addr().unwrap();
    compio::runtime::spawn(server.serve(handler)).detach();
    addr
}

async fn client(addr: SocketAddr) -> Connection {
    connect(
        addr,
        TIMEOUT,
        Rc::new(TestHandler::default()),
        ConnOptions::default(),
    )
    .await
    .unwrap()
}

#[test]
fn slow_request_does_not_hold_up_a_fast_one() {
    run(async {
        let handler = Rc::new(TestHandler::default());
        let conn = client(start_server(handler.clone())).await;
        let order = Rc::new(RefCell::new(Vec::new()));
        let slow = {
            let (conn, order) = (conn.clone(), order.clone());
            compio::runtime::spawn(async move {
                let r = conn.call(Command::request(SLOW), TIMEOUT).await.unwrap();
                order.borrow_mut().push(r.remark.unwrap());
            })
        };
        while handler.parked.borrow().is_empty() {
            compio::time::sleep(Duration::from_millis(5)).await;
        }
        // SLOW is parked unanswered; FAST on the same connection still gets through.
        let fast = conn.call(Command::request(FAST), TIMEOUT).await.unwrap();
        order.borrow_mut().push(fast.remark.unwrap());
        conn.call(Command::request(RELEASE), TIMEOUT).await.unwrap();
        slow.await.unwrap();
        assert_eq!(*order.borrow(), vec!["fast", "slow"]);
    });
}

#[test]
fn responses_echo_the_request_serialization() {
    run(async {
        let conn = client(start_server(Rc::default())).await;
        let mut request = Command::request(FAST);
        request.serialize = SerializeType::RocketMq;
        let r = conn.call(request, TIMEOUT).await.unwrap();
        assert_eq!(r.serialize, SerializeType::RocketMq);
        assert!(r.is_response());
    });
}

#[test]
fn server_calls_the_client_over_the_same_connection() {
    run(async {
        let conn = client(start_server(Rc::default())).await;
        let r = conn
            .call(Command::request(CALL_BACK), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.remark.as_deref(), Some("client said fast"));
    });
}

#[test]
fn refuse_requests_answers_not_supported() {
    run(async {
        let server =
            Server::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default()).unwrap();
        let addr = server.local_addr().unwrap();
        compio::runtime::spawn(server.serve(Rc::new(RefuseRequests))).detach();
        let conn = client(addr).await;
        let r = conn.call(Command::request(77), TIMEOUT).await.unwrap();
        assert_eq!(r.code, response::REQUEST_CODE_NOT_SUPPORTED);
        assert_eq!(r.remark.as_deref(), Some(" request type 77 not supported"));
    });
}

/// Blocking raw socket helpers, run on a helper thread so the runtime keeps serving.
fn raw_exchange(addr: SocketAddr, bytes: Vec<u8>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(&bytes).unwrap();
        let mut got = Vec::new();
        // Reads until the server closes the connection.
        let _ = s.read_to_end(&mut got);
        got
    })
}

fn encoded(cmd: &Command) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame::encode(cmd, &mut buf);
    buf.to_vec()
}

async fn join_blocking<T: Send + 'static>(h: std::thread::JoinHandle<T>) -> T {
    while !h.is_finished() {
        compio::time::sleep(Duration::from_millis(5)).await;
    }
    h.join().unwrap()
}

#[test]
fn oneway_is_never_answered_and_a_bad_frame_closes_only_its_connection() {
    run(async {
        let handler = Rc::new(TestHandler::default());
        let addr = start_server(handler.clone());
        let healthy = client(addr).await;

        // A oneway request, a normal one, then a frame with serialization type 7.
        let mut oneway = Command::request(FAST);
        oneway.mark_oneway();
        oneway.opaque = 1;
        let mut normal = Command::request(FAST);
        normal.opaque = 2;
        let mut bytes = encoded(&oneway);
        bytes.extend_from_slice(&encoded(&normal));
        bytes.extend_from_slice(&[0, 0, 0, 8, 7, 0, 0, 4, b'{', b'}', b' ', b' ']);
        let got = join_blocking(raw_exchange(addr, bytes)).await;

        let (only, used) = frame::decode(&got, usize::MAX).unwrap().unwrap();
        assert_eq!(used, got.len(), "exactly one response, then the close");
        assert_eq!(only.opaque, 2);
        assert_eq!(handler.closed.borrow().len(), 1);

        let r = healthy.call(Command::request(FAST), TIMEOUT).await.unwrap();
        assert_eq!(r.remark.as_deref(), Some("fast"));
    });
}

#[test]
fn call_times_out_and_fails_when_the_peer_closes() {
    run(async {
        // A listener that accepts and never answers, then closes.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            drop(s);
        });
        let conn = client(addr).await;
        let r = conn
            .call(Command::request(FAST), Duration::from_millis(50))
            .await;
        assert_eq!(r, Err(CallError::Timeout));
        let r = conn.call(Command::request(FAST), TIMEOUT).await;
        assert_eq!(r, Err(CallError::Closed));
        assert!(conn.is_closed());
        assert_eq!(conn.oneway(Command::request(FAST)), Err(CallError::Closed));
        join_blocking(peer).await;
    });
}

#[test]
fn close_shuts_the_socket_and_reports_once() {
    run(async {
        let handler = Rc::new(TestHandler::default());
        let addr = start_server(handler.clone());
        let conn = connect(addr, TIMEOUT, handler.clone(), ConnOptions::default())
            .await
            .unwrap();
        conn.close();
        while !conn.is_closed() {
            compio::time::sleep(Duration::from_millis(5)).await;
        }
        // Our side and the server's side of the connection each report one close.
        while handler.closed.borrow().len() < 2 {
            compio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            handler
                .closed
                .borrow()
                .iter()
                .filter(|&&id| id == conn.id())
                .count(),
            1
        );
    });
}

#[test]
fn commands_too_large_for_a_frame_are_refused_not_panicked_on() {
    run(async {
        let conn = client(start_server(Rc::default())).await;
        // 3 Mi control characters escape to 18 MiB of JSON: more than a header may hold.
        let r = conn.call(Command::request(HUGE), TIMEOUT).await.unwrap();
        assert_eq!(r.code, response::SYSTEM_ERROR);
        assert_eq!(
            r.remark.as_deref(),
            Some("the response does not fit in one frame")
        );

        let big = Command::request(FAST).with_body(vec![0u8; 17 << 20]);
        assert_eq!(conn.call(big, TIMEOUT).await, Err(CallError::TooLarge));
        assert_eq!(
            conn.oneway(Command::request(FAST).with_remark("x".repeat(3 << 20))),
            Err(CallError::TooLarge)
        );
        // The connection is unharmed.
        let r = conn.call(Command::request(FAST), TIMEOUT).await.unwrap();
        assert_eq!(r.remark.as_deref(), Some("fast"));
    });
}

#[test]
fn large_frames_cross_many_reads_both_ways() {
    run(async {
        let conn = client(start_server(Rc::default())).await;
        let body: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
        let r = conn
            .call(Command::request(ECHO).with_body(body.clone()), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(r.body.len(), body.len());
        assert!(r.body == body, "echoed body differs");
    });
}

#[test]
/// A response with file slices: cached slices up to `COPY_MAX` are copied into the head's
/// write, a longer one is spliced; either way the bytes arrive in order after the head, the
/// next frame is intact, and the two counters together count every body byte.
fn file_slices_follow_the_head_on_the_wire_and_are_counted() {
    const BIG: u32 = super::splice::COPY_MAX as u32 + 4096;
    run(async {
        let path = std::env::temp_dir().join(format!("ringmq-splice-{}", std::process::id()));
        let content: Vec<u8> = (0..(BIG + 1000)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let source: Rc<dyn SpliceSource> = Rc::new(StdSource(std::fs::File::open(&path).unwrap()));
        std::fs::remove_file(&path).unwrap();
        let handler = Rc::new(TestHandler::default());
        // Two ranges out of order and one crossing several pipe-sized chunks.
        *handler.files.borrow_mut() = vec![
            FileSlice {
                source: source.clone(),
                offset: 10,
                len: 5,
            },
            FileSlice {
                source: source.clone(),
                offset: 1000,
                len: 200_000,
            },
            FileSlice {
                source: source.clone(),
                offset: 0,
                len: 3,
            },
            FileSlice {
                source,
                offset: 7,
                len: BIG,
            },
        ];
        let counter = Arc::new(AtomicU64::new(0));
        let copied = Arc::new(AtomicU64::new(0));
        let server = Server::bind(
            "127.0.0.1:0".parse().unwrap(),
            ServerOptions {
                conn: ConnOptions {
                    spliced_bytes: Some(counter.clone()),
                    copied_bytes: Some(copied.clone()),
                    ..ConnOptions::default()
                },
                ..ServerOptions::default()
            },
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        compio::runtime::spawn(server.serve(handler)).detach();
        let conn = client(addr).await;
        for _ in 0..2 {
            let slow = conn.call(Command::request(FILE), TIMEOUT);
            let fast = conn.call(Command::request(FAST), TIMEOUT);
            let (r, f) = (slow.await.unwrap(), fast.await.unwrap());
            let mut want = b"head:".to_vec();
            want.extend_from_slice(&content[10..15]);
            want.extend_from_slice(&content[1000..201_000]);
            want.extend_from_slice(&content[0..3]);
            want.extend_from_slice(&content[7..7 + BIG as usize]);
            assert_eq!(r.body.len(), want.len());
            assert!(r.body == want, "spliced body differs");
            assert_eq!(
                f.remark.as_deref(),
                Some("fast"),
                "frames after a spliced one stay intact"
            );
        }
        let spliced = counter.load(std::sync::atomic::Ordering::Relaxed);
        let copied = copied.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(spliced + copied, 2 * (200_008 + u64::from(BIG)));
        // The slice longer than COPY_MAX always takes the splice path.
        assert!(spliced >= 2 * u64::from(BIG), "spliced {spliced}");
    });
}
