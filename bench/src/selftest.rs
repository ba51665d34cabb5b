//! `self-test`: the generator's own ceiling. A minimal responder (one thread per worker,
//! SO_REUSEPORT on one loopback port) answers every SEND_MESSAGE / SEND_MESSAGE_V2 /
//! SEND_BATCH_MESSAGE with a valid send response at once, storing nothing; the normal
//! producer code drives it. What the producers achieve is the most the bench can measure on
//! this host with these options, since a real broker can only be slower than a responder that
//! does no work. (Both share the cores, as a broker under test on the same host would.)

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use ringmq_codec::codes::{request, response};
use ringmq_codec::headers::offset::OffsetResponseHeader;
use ringmq_codec::headers::send::{SendMessageRequestHeader, SendMessageResponseHeader};
use ringmq_codec::message::{decode_batch, offset_msg_id};
use ringmq_codec::{Command, Header};
use ringmq_net::remoting::{Connection, Handler, Reply, Server, ServerOptions};

use crate::local::{Stop, first};

/// Answers sends; counts queue offsets per (topic, queue) like a broker would.
pub struct Responder {
    addr: Cell<Option<SocketAddr>>,
    offsets: RefCell<HashMap<(String, i32), i64>>,
    phys: Cell<i64>,
}

impl Responder {
    pub fn new() -> Responder {
        Responder {
            addr: Cell::new(None),
            offsets: RefCell::new(HashMap::new()),
            phys: Cell::new(0),
        }
    }

    fn answer_send(&self, req: &Command) -> Command {
        let Ok(h) = SendMessageRequestHeader::decode(&req.ext) else {
            return Command::response_to(req, response::INVALID_PARAMETER)
                .with_remark("bad send header");
        };
        let count = if req.code == request::SEND_BATCH_MESSAGE {
            decode_batch(&req.body).map_or(0, |b| b.len() as i64)
        } else {
            1
        };
        let mut offsets = self.offsets.borrow_mut();
        let slot = offsets.entry((h.topic, h.queue_id)).or_default();
        let first_offset = *slot;
        *slot += count;
        let phys = self.phys.get();
        self.phys.set(phys + req.body.len() as i64);
        let host = self
            .addr
            .get()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let resp =
            SendMessageResponseHeader::new(offset_msg_id(host, phys), h.queue_id, first_offset);
        let mut cmd = Command::response_to(req, response::SUCCESS);
        resp.encode(&mut cmd.ext);
        cmd
    }
}

impl Default for Responder {
    fn default() -> Self {
        Responder::new()
    }
}

impl Handler for Responder {
    fn on_request(&self, _conn: &Connection, req: Command, reply: Reply) {
        let resp = match req.code {
            request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                self.answer_send(&req)
            }
            request::GET_MAX_OFFSET | request::GET_MIN_OFFSET => {
                let mut cmd = Command::response_to(&req, response::SUCCESS);
                OffsetResponseHeader { offset: 0 }.encode(&mut cmd.ext);
                cmd
            }
            code => Command::response_to(&req, response::REQUEST_CODE_NOT_SUPPORTED)
                .with_remark(format!(" request type {code} not supported")),
        };
        reply.send(resp);
    }
}

/// Responder threads on one loopback port; stop them with [`Responders::stop`].
pub struct Responders {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Responders {
    /// Starts `threads` responder threads pinned like the workers (thread k on core k).
    pub fn start(threads: usize, cores: usize) -> Result<Responders, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        for k in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel();
            let stop = stop.clone();
            let bind = addr;
            let cpu = k % cores.max(1);
            handles.push(std::thread::spawn(move || serve(bind, cpu, stop, tx)));
            addr = rx
                .recv()
                .map_err(|_| "the self-test responder thread died".to_owned())??;
        }
        Ok(Responders {
            addr,
            stop,
            threads: handles,
        })
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn serve(
    bind: SocketAddr,
    cpu: usize,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Result<SocketAddr, String>>,
) {
    let mut b = compio::runtime::RuntimeBuilder::new();
    b.thread_affinity(std::collections::HashSet::from([cpu]));
    let rt = match b.build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.send(Err(format!("self-test runtime: {e}")));
            return;
        }
    };
    rt.block_on(async move {
        let opts = ServerOptions {
            reuse_port: true,
            ..ServerOptions::default()
        };
        let server = match Server::bind(bind, opts) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(format!("self-test responder cannot bind {bind}: {e}")));
                return;
            }
        };
        let addr = server.local_addr().unwrap_or(bind);
        let responder = Rc::new(Responder::new());
        responder.addr.set(Some(addr));
        let _ = tx.send(Ok(addr));
        let halt = Stop::new();
        let watcher = {
            let halt = halt.clone();
            async move {
                while !stop.load(Ordering::Acquire) {
                    compio::time::sleep(Duration::from_millis(50)).await;
                }
                halt.set();
            }
        };
        compio::runtime::spawn(watcher).detach();
        let _ = first(server.serve(responder), halt.wait()).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringmq_codec::Command;
    use ringmq_codec::message::batch::{BatchEntry, encode_entry};

    #[test]
    fn responder_answers_sends_with_a_full_header_and_running_offsets() {
        let r = Responder::new();
        let h = SendMessageRequestHeader {
            topic: "T".into(),
            queue_id: 3,
            ..SendMessageRequestHeader::default()
        };
        let mut req = Command::request(request::SEND_MESSAGE_V2);
        h.encode(&mut req.ext);
        req.body = bytes::Bytes::from_static(b"x");
        let a = r.answer_send(&req);
        let b = r.answer_send(&req);
        let ha = SendMessageResponseHeader::decode(&a.ext).unwrap();
        let hb = SendMessageResponseHeader::decode(&b.ext).unwrap();
        assert_eq!((a.code, ha.queue_id, ha.queue_offset), (0, 3, 0));
        assert_eq!(hb.queue_offset, 1);
        assert_eq!(ha.msg_region, "DefaultRegion");

        let mut body = Vec::new();
        for _ in 0..4 {
            let e = BatchEntry {
                flag: 0,
                body: b"m",
                properties: "",
            };
            encode_entry(&e, &mut body).unwrap();
        }
        let mut batch = Command::request(request::SEND_BATCH_MESSAGE);
        h.encode(&mut batch.ext);
        batch.body = body.into();
        let c = SendMessageResponseHeader::decode(&r.answer_send(&batch).ext).unwrap();
        assert_eq!(c.queue_offset, 2);
        let d = SendMessageResponseHeader::decode(&r.answer_send(&req).ext).unwrap();
        assert_eq!(d.queue_offset, 6, "the batch took four offsets");
    }
}
