//! One remoting connection: a reader task, a writer task and the state they share.
//!
//! ```text
//!   socket ──► reader task ──► frame::decode_from ──► request?  ──► Handler::on_request(.., Reply)
//!                                                 └─► response? ──► wakes the matching call()
//!   Reply::send / Connection::call / oneway ──► outbox (encoded frames) ──► writer task ──► socket
//! ```
//!
//! Both directions of RPC use the same connection (spec §1.1): either side may send requests,
//! and frames are told apart by the response bit. State lives in an `Rc<RefCell<_>>` owned by
//! one thread; no borrow is ever held across an `.await`.
//!
//! The outbox is a queue of encoded bytes and [`FileSlice`]s: a response whose body lives in
//! files (a pull) is its encoded head followed by file ranges, which the writer moves to the
//! socket with splice ([`super::splice`]) instead of copying them through user space.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use ringmq_codec::command::{FLAG_ONEWAY, FLAG_RESPONSE};
use ringmq_codec::{Command, FrameError, SerializeType, frame};

pub use super::splice::{FileSlice, SpliceSource};

/// Identifies a connection within the process, e.g. the channel a broker registered over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Ids only need to be unique, not dense; one counter for all threads is touched once per
/// connection, never per request.
static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Limits of one connection.
#[derive(Debug, Clone)]
pub struct ConnOptions {
    /// Largest frame accepted, length prefix included (Java: 16 MiB).
    pub frame_max: usize,
    /// Bytes of unsent responses at which the reader stops reading requests, so a peer that
    /// sends without reading cannot grow our memory without bound.
    pub outbox_pause_bytes: usize,
    /// Close the connection after this long without a received byte (Java: 120 s).
    pub idle_timeout: Option<Duration>,
    /// Counts the bytes of [`FileSlice`]s sent by splice (the zero-copy path), so a server
    /// can show that the path is taken.
    pub spliced_bytes: Option<Arc<AtomicU64>>,
    /// Counts the bytes of [`FileSlice`]s copied from the page cache instead (the path for
    /// cached data, [`super::splice`]).
    pub copied_bytes: Option<Arc<AtomicU64>>,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions {
            frame_max: ringmq_codec::FRAME_MAX_DEFAULT,
            outbox_pause_bytes: OUTBOX_PAUSE_BYTES_DEFAULT,
            idle_timeout: Some(Duration::from_secs(120)),
            spliced_bytes: None,
            copied_bytes: None,
        }
    }
}

/// Default for [`ConnOptions::outbox_pause_bytes`].
pub const OUTBOX_PAUSE_BYTES_DEFAULT: usize = 4 * 1024 * 1024;

/// Read size bounds. A connection starts small (most carry a few small requests: thousands
/// of idle client connections must stay cheap) and doubles its read size while reads fill it.
/// A frame whose length is known is read into one allocation of its full size regardless.
const READ_CHUNK_MIN: usize = 4 * 1024;
const READ_CHUNK_MAX: usize = 64 * 1024;

/// What a peer's connection does with a request it receives.
///
/// Handlers run on the connection's thread and need not be `Send` or `Sync`: a
/// thread-per-core server builds one handler per thread. `on_request` must not block; work
/// that waits (a long-polled pull, a flush) keeps the [`Reply`] and answers later, from a
/// spawned task or from whatever event completes it. Requests on one connection are thus
/// answered in any order, and a slow one never holds up the next.
pub trait Handler: 'static {
    /// One request arrived. Answer with `reply.send(..)`, now or later; a oneway request's
    /// reply sends nothing. Dropping a reply unanswered leaves the peer to its timeout.
    fn on_request(&self, conn: &Connection, request: Command, reply: Reply);

    /// A connection was established. Called once, before its first `on_request`.
    fn on_open(&self, conn: &Connection) {
        let _ = conn;
    }

    /// The connection is gone (peer closed, I/O error, bad frame, idle, or `close()`).
    /// Called once, after the last `on_request`.
    fn on_close(&self, conn: &Connection) {
        let _ = conn;
    }
}

/// Why a call on a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// The connection closed before the response arrived.
    Closed,
    /// No response within the timeout.
    Timeout,
    /// The request would not fit in one frame of the connection's limit.
    TooLarge,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Closed => f.write_str("connection closed"),
            CallError::Timeout => f.write_str("no response within the timeout"),
            CallError::TooLarge => f.write_str("request too large for one frame"),
        }
    }
}

impl std::error::Error for CallError {}

/// A cheap handle on a live (or closed) connection; clones share it.
#[derive(Clone)]
pub struct Connection {
    shared: Rc<Shared>,
}

struct Shared {
    id: ConnId,
    peer: SocketAddr,
    /// Largest frame we send; the peer's limit is the same 16 MiB by default.
    frame_max: usize,
    state: RefCell<State>,
}

/// One item of the outbox.
pub(crate) enum Out {
    /// Encoded frames (or a frame's head, when file slices follow).
    Bytes(BytesMut),
    /// Body bytes that stay in a file until the writer splices them to the socket.
    File(FileSlice),
}

#[derive(Default)]
struct State {
    /// Encoded frames and file slices waiting for the writer, in wire order.
    out: VecDeque<Out>,
    /// Bytes in `out`, file slices included (the pause bound counts them).
    out_len: usize,
    /// Written buffers kept for reuse, so a busy connection does not allocate per batch.
    free: Vec<BytesMut>,
    writer: Option<Waker>,
    /// The reader, parked while `out` is over the pause bound.
    reader: Option<Waker>,
    /// No more frames will be queued; the writer flushes what it has and shuts the socket.
    closing: bool,
    /// The reader has stopped: no response can arrive any more.
    closed: bool,
    next_opaque: i32,
    calls: HashMap<i32, Call>,
}

/// A request we sent and whose response we await.
enum Call {
    Waiting(Option<Waker>),
    Answered(Command),
}

impl Connection {
    fn new(peer: SocketAddr, frame_max: usize) -> Connection {
        Connection {
            shared: Rc::new(Shared {
                id: ConnId(NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed)),
                peer,
                frame_max,
                state: RefCell::default(),
            }),
        }
    }

    pub fn id(&self) -> ConnId {
        self.shared.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.shared.peer
    }

    /// True once the connection has stopped reading; nothing sent now reaches the peer.
    pub fn is_closed(&self) -> bool {
        self.shared.state.borrow().closed
    }

    /// Queues one frame for the writer.
    fn queue(&self, cmd: &Command) -> Result<(), CallError> {
        // The codec asserts that a header fits its 24-bit length; a command echoing huge
        // input (a 16 MiB topic in a remark) must become an error here, not a panic there.
        if !fits_one_frame(cmd, self.shared.frame_max) {
            return Err(CallError::TooLarge);
        }
        self.queue_framed(|dst| frame::encode(cmd, dst))
    }

    /// Queues one frame whose body is `files`, in order, after `cmd`'s own body.
    fn queue_with_files(&self, cmd: &Command, files: Vec<FileSlice>) -> Result<(), CallError> {
        let file_len: usize = files.iter().map(|f| f.len as usize).sum();
        if !fits_one_frame_with(cmd, file_len, self.shared.frame_max) {
            return Err(CallError::TooLarge);
        }
        let mut st = self.shared.state.borrow_mut();
        if st.closing {
            return Err(CallError::Closed);
        }
        let st = &mut *st;
        // Room for the head and a copied body (plus a little for the head itself).
        let room = if file_len <= super::splice::COPY_MAX {
            file_len + cmd.body.len() + 512
        } else {
            0
        };
        let head = tail_bytes_for(&mut st.out, &mut st.free, room);
        let before = head.len();
        frame::encode_head(cmd, cmd.body.len() + file_len, head);
        head.extend_from_slice(&cmd.body);
        let added = head.len() - before;
        st.out_len += added + file_len;
        st.out.extend(files.into_iter().map(Out::File));
        if let Some(w) = st.writer.take() {
            w.wake();
        }
        Ok(())
    }

    fn next_opaque(&self) -> i32 {
        let mut st = self.shared.state.borrow_mut();
        let opaque = st.next_opaque;
        st.next_opaque = opaque.wrapping_add(1);
        opaque
    }

    /// Sends a oneway request (never answered) with a fresh opaque.
    pub fn oneway(&self, mut request: Command) -> Result<(), CallError> {
        request.opaque = self.next_opaque();
        request.flag = (request.flag & !FLAG_RESPONSE) | FLAG_ONEWAY;
        self.queue(&request)
    }

    /// Sends a request with a fresh opaque and waits for its response.
    ///
    /// Cancel-safe: dropping the future forgets the call, and a late response is dropped.
    pub async fn call(
        &self,
        mut request: Command,
        timeout: Duration,
    ) -> Result<Command, CallError> {
        let opaque = self.expect_response()?;
        let _forget = ForgetCall { conn: self, opaque };
        request.opaque = opaque;
        request.flag &= !(FLAG_RESPONSE | FLAG_ONEWAY);
        self.queue(&request)?;
        self.response(opaque, timeout).await
    }

    /// [`call`](Self::call) for a request its caller frames itself: `write` appends one
    /// whole request frame carrying the given opaque. A load generator keeps each stream's
    /// request as a template and only writes what changes (`ringmq-bench`). The frame is not
    /// checked beyond its size: a frame over the connection's limit is taken back and the
    /// call fails with [`CallError::TooLarge`].
    pub async fn call_framed(
        &self,
        write: impl FnOnce(i32, &mut BytesMut),
        timeout: Duration,
    ) -> Result<Command, CallError> {
        let opaque = self.expect_response()?;
        let _forget = ForgetCall { conn: self, opaque };
        self.queue_framed(|dst| write(opaque, dst))?;
        self.response(opaque, timeout).await
    }

    /// Takes a fresh opaque and registers it as awaiting a response.
    fn expect_response(&self) -> Result<i32, CallError> {
        let opaque = self.next_opaque();
        let mut st = self.shared.state.borrow_mut();
        if st.closing {
            return Err(CallError::Closed);
        }
        st.calls.insert(opaque, Call::Waiting(None));
        Ok(opaque)
    }

    /// Waits for the response to `opaque` (registered by [`Self::expect_response`]).
    async fn response(&self, opaque: i32, timeout: Duration) -> Result<Command, CallError> {
        let response = poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            let st = &mut *st;
            match st.calls.remove(&opaque) {
                Some(Call::Answered(cmd)) => Poll::Ready(Ok(cmd)),
                Some(Call::Waiting(_)) if st.closed => Poll::Ready(Err(CallError::Closed)),
                Some(Call::Waiting(_)) => {
                    st.calls
                        .insert(opaque, Call::Waiting(Some(cx.waker().clone())));
                    Poll::Pending
                }
                None => Poll::Ready(Err(CallError::Closed)),
            }
        });
        compio::time::timeout(timeout, response)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }

    /// Queues the frame `write` appends; one over the frame limit is taken back.
    fn queue_framed(&self, write: impl FnOnce(&mut BytesMut)) -> Result<(), CallError> {
        let mut st = self.shared.state.borrow_mut();
        if st.closing {
            return Err(CallError::Closed);
        }
        let st = &mut *st;
        let tail = tail_bytes(&mut st.out, &mut st.free);
        let before = tail.len();
        write(tail);
        let added = tail.len() - before;
        if added > self.shared.frame_max {
            tail.truncate(before);
            return Err(CallError::TooLarge);
        }
        st.out_len += added;
        if let Some(w) = st.writer.take() {
            w.wake();
        }
        Ok(())
    }

    /// Asks the connection to close: queued frames are still written, then the socket is
    /// shut down and the handler's `on_close` runs.
    pub fn close(&self) {
        let mut st = self.shared.state.borrow_mut();
        st.closing = true;
        if let Some(w) = st.writer.take() {
            w.wake();
        }
    }

    /// A response arrived: hand it to the waiting call, if any is still waiting.
    fn answer(&self, response: Command) {
        let mut st = self.shared.state.borrow_mut();
        match st.calls.get_mut(&response.opaque) {
            Some(call @ Call::Waiting(_)) => {
                if let Call::Waiting(Some(w)) = std::mem::replace(call, Call::Answered(response)) {
                    w.wake();
                }
            }
            _ => tracing::debug!(
                peer = %self.peer(),
                opaque = response.opaque,
                "dropping a response nobody waits for (timed out?)"
            ),
        }
    }

    /// The reader stopped: fail every waiting call and let the writer finish.
    fn mark_closed(&self) {
        let mut st = self.shared.state.borrow_mut();
        st.closed = true;
        st.closing = true;
        for call in st.calls.values_mut() {
            if let Call::Waiting(Some(w)) = call {
                w.wake_by_ref();
            }
        }
        if let Some(w) = st.writer.take() {
            w.wake();
        }
    }

    /// Keeps a written buffer for reuse: a small one on the connection, a large one (a
    /// gathered pull body) in the thread's pool, so thousands of idle connections do not
    /// each keep a pull's worth of memory.
    fn recycle(&self, mut buf: BytesMut) {
        const FREE_BUFFERS_MAX: usize = 2;
        buf.clear();
        if buf.capacity() > CONN_BUFFER_KEEP_MAX {
            give_pooled(buf);
            return;
        }
        let mut st = self.shared.state.borrow_mut();
        if st.free.len() < FREE_BUFFERS_MAX {
            st.free.push(buf);
        }
    }

    /// An empty buffer for at least `want` bytes, reused when possible.
    fn free_buffer(&self, want: usize) -> BytesMut {
        let mut st = self.shared.state.borrow_mut();
        take_buffer(&mut st.free, want)
    }

    /// Waits until the unsent bytes are under `limit` (or the connection is closing).
    async fn writable(&self, limit: usize) {
        poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            if st.out_len < limit || st.closing {
                Poll::Ready(())
            } else {
                st.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    /// Waits for frames to write and swaps them out for `spare` (an empty queue whose
    /// capacity is reused). `None` once closing and everything is written.
    async fn next_batch(&self, spare: &mut VecDeque<Out>) -> Option<VecDeque<Out>> {
        poll_fn(|cx| {
            let mut st = self.shared.state.borrow_mut();
            if !st.out.is_empty() {
                let batch = std::mem::replace(&mut st.out, std::mem::take(spare));
                st.out_len = 0;
                if let Some(w) = st.reader.take() {
                    w.wake();
                }
                Poll::Ready(Some(batch))
            } else if st.closing {
                Poll::Ready(None)
            } else {
                st.writer = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connection({} {})", self.id(), self.peer())
    }
}

/// Removes a call's entry when its future ends or is dropped.
struct ForgetCall<'a> {
    conn: &'a Connection,
    opaque: i32,
}

impl Drop for ForgetCall<'_> {
    fn drop(&mut self) {
        self.conn
            .shared
            .state
            .borrow_mut()
            .calls
            .remove(&self.opaque);
    }
}

/// The right to answer one request. Sets the response's opaque, response bit and
/// serialization (the request's, spec §1.3); for a oneway request it sends nothing.
pub struct Reply {
    conn: Connection,
    opaque: i32,
    serialize: SerializeType,
    oneway: bool,
}

impl Reply {
    pub fn is_oneway(&self) -> bool {
        self.oneway
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Queues the response. Nothing happens for a oneway request or a closed connection.
    pub fn send(self, response: Command) {
        self.send_with_files(response, Vec::new());
    }

    /// Queues the response with `files` appended to its body: the frame announces the whole
    /// length, and the writer splices each file range to the socket after the head (the
    /// zero-copy pull path). Nothing happens for a oneway request or a closed connection.
    pub fn send_with_files(self, mut response: Command, files: Vec<FileSlice>) {
        if self.oneway {
            return;
        }
        response.opaque = self.opaque;
        response.flag = (response.flag | FLAG_RESPONSE) & !FLAG_ONEWAY;
        response.serialize = self.serialize;
        let queued = if files.is_empty() {
            self.conn.queue(&response)
        } else {
            self.conn.queue_with_files(&response, files)
        };
        if queued == Err(CallError::TooLarge) {
            tracing::warn!(
                peer = %self.conn.peer(),
                code = response.code,
                body_len = response.body.len(),
                "response too large for one frame; answering SYSTEM_ERROR instead"
            );
            // Same opaque, flag and serialization as the response it replaces.
            let refusal =
                Command::response_to(&response, ringmq_codec::codes::response::SYSTEM_ERROR)
                    .with_remark("the response does not fit in one frame");
            let _ = self.conn.queue(&refusal);
        }
    }
}

/// Whether `cmd` certainly fits one frame of `frame_max` bytes. JSON escaping grows a byte
/// to at most six (`\u00XX`), so six times the text plus the fixed fields bounds the header
/// in either serialization.
fn fits_one_frame(cmd: &Command, frame_max: usize) -> bool {
    fits_one_frame_with(cmd, 0, frame_max)
}

/// [`fits_one_frame`] for a command whose body is followed by `extra_body` more bytes.
fn fits_one_frame_with(cmd: &Command, extra_body: usize, frame_max: usize) -> bool {
    let text: usize = cmd.remark.as_ref().map_or(0, String::len)
        + cmd
            .ext
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>();
    let header_bound = 256 + 6 * text;
    header_bound <= frame::HEADER_LEN_MAX
        && frame::FRAME_PREFIX_LEN + header_bound + cmd.body.len() + extra_body <= frame_max
}

/// The bytes buffer at the end of the outbox, appended (from `free` when possible) if the
/// last item is a file slice or there is none.
fn tail_bytes<'a>(out: &'a mut VecDeque<Out>, free: &mut Vec<BytesMut>) -> &'a mut BytesMut {
    tail_bytes_for(out, free, 0)
}

/// [`tail_bytes`] with room for `want` more bytes when a fresh buffer is taken: a pull's
/// head is encoded into it and its cached body is copied after it (`write_loop`), so a
/// pooled buffer of the right size avoids a reallocation per pull.
fn tail_bytes_for<'a>(
    out: &'a mut VecDeque<Out>,
    free: &mut Vec<BytesMut>,
    want: usize,
) -> &'a mut BytesMut {
    match out.back_mut() {
        Some(Out::Bytes(b)) if b.is_empty() && b.capacity() < want => {
            let small = std::mem::replace(b, take_buffer(free, want));
            if free.len() < 2 {
                free.push(small);
            }
        }
        Some(Out::Bytes(_)) => {}
        _ => out.push_back(Out::Bytes(take_buffer(free, want))),
    }
    match out.back_mut() {
        Some(Out::Bytes(b)) => b,
        _ => unreachable!("a bytes item was just ensured at the back"),
    }
}

/// Capacity above which a written buffer goes to the thread's pool instead of staying with
/// its connection.
const CONN_BUFFER_KEEP_MAX: usize = 64 * 1024;
/// Pooled buffers per thread, and the largest kept: a shard keeps at most ~16 MiB here.
const POOL_BUFFERS_MAX: usize = 8;
const POOL_BUFFER_CAPACITY_MAX: usize = 2 * 1024 * 1024;

thread_local! {
    /// Large write buffers shared by the connections of this thread (one shard).
    static POOL: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty buffer for at least `want` bytes: small ones from the connection's `free` list,
/// large ones from the thread's pool, a new one only when neither has one.
fn take_buffer(free: &mut Vec<BytesMut>, want: usize) -> BytesMut {
    if want <= CONN_BUFFER_KEEP_MAX
        && let Some(b) = free.pop()
    {
        return b;
    }
    if want > 0
        && let Some(b) = POOL.with_borrow_mut(|p| {
            let i = p.iter().position(|b| b.capacity() >= want)?;
            Some(p.swap_remove(i))
        })
    {
        return b;
    }
    BytesMut::with_capacity(want)
}

fn give_pooled(buf: BytesMut) {
    if buf.capacity() > POOL_BUFFER_CAPACITY_MAX {
        return;
    }
    POOL.with_borrow_mut(|p| {
        if p.len() < POOL_BUFFERS_MAX {
            p.push(buf);
        } else if let Some(smallest) = p.iter_mut().min_by_key(|b| b.capacity())
            && smallest.capacity() < buf.capacity()
        {
            *smallest = buf;
        }
    });
}

/// Starts the reader and writer tasks of an established stream on the current runtime.
pub(crate) fn start<H: Handler>(
    stream: TcpStream,
    peer: SocketAddr,
    handler: Rc<H>,
    opts: ConnOptions,
) -> Connection {
    let conn = Connection::new(peer, opts.frame_max);
    let reader = stream.clone();
    let splicer =
        super::splice::Splicer::new(opts.spliced_bytes.clone(), opts.copied_bytes.clone());
    handler.on_open(&conn);
    compio::runtime::spawn(write_loop(stream, conn.clone(), splicer)).detach();
    compio::runtime::spawn(read_loop(reader, conn.clone(), handler, opts)).detach();
    conn
}

/// Why the reader stopped.
enum End {
    PeerClosed,
    Io(std::io::Error),
    Frame(FrameError),
    Idle(Duration),
    Closing,
}

async fn read_loop<H: Handler>(
    stream: TcpStream,
    conn: Connection,
    handler: Rc<H>,
    opts: ConnOptions,
) {
    let end = read_frames(stream, &conn, &*handler, &opts).await;
    match &end {
        End::Frame(e) => {
            tracing::warn!(peer = %conn.peer(), error = %e, "closing connection: bad frame")
        }
        End::Io(e) => tracing::debug!(peer = %conn.peer(), error = %e, "connection read failed"),
        End::Idle(d) => tracing::info!(peer = %conn.peer(), "closing connection idle for {d:?}"),
        End::PeerClosed | End::Closing => {
            tracing::debug!(peer = %conn.peer(), "connection closed")
        }
    }
    conn.mark_closed();
    handler.on_close(&conn);
}

/// Reads and dispatches frames until the stream ends; returns why. Owns (and so drops) the
/// reader's clone of the socket.
async fn read_frames<H: Handler>(
    mut stream: TcpStream,
    conn: &Connection,
    handler: &H,
    opts: &ConnOptions,
) -> End {
    let mut buf = BytesMut::new();
    let mut chunk = READ_CHUNK_MIN;
    loop {
        loop {
            match frame::decode_from(&mut buf, opts.frame_max) {
                Ok(Some(cmd)) => dispatch(conn, handler, cmd),
                Ok(None) => break,
                Err(e) => return End::Frame(e),
            }
        }
        conn.writable(opts.outbox_pause_bytes).await;
        if conn.shared.state.borrow().closing {
            return End::Closing;
        }
        buf.reserve(missing_bytes(&buf).max(chunk));
        let spare = buf.capacity() - buf.len();
        let read = stream.append(buf);
        let BufResult(res, back) = match opts.idle_timeout {
            Some(idle) => match compio::time::timeout(idle, read).await {
                Ok(r) => r,
                Err(_) => return End::Idle(idle),
            },
            None => read.await,
        };
        buf = back;
        match res {
            Ok(0) => return End::PeerClosed,
            Ok(n) if n == spare => chunk = (chunk * 2).min(READ_CHUNK_MAX),
            Ok(_) => {}
            Err(e) => return End::Io(e),
        }
    }
}

/// Bytes still missing from the frame at the front of `buf`, once its length is known, so
/// a large frame is read into one allocation. `frame::check` has already bounded the length.
fn missing_bytes(buf: &[u8]) -> usize {
    match buf.first_chunk::<4>() {
        Some(len) => (4 + u32::from_be_bytes(*len) as usize).saturating_sub(buf.len()),
        None => 0,
    }
}

fn dispatch<H: Handler>(conn: &Connection, handler: &H, cmd: Command) {
    if cmd.is_response() {
        conn.answer(cmd);
        return;
    }
    let reply = Reply {
        conn: conn.clone(),
        opaque: cmd.opaque,
        serialize: cmd.serialize,
        oneway: cmd.is_oneway(),
    };
    handler.on_request(conn, cmd, reply);
}

/// Bytes gathered for one socket write before it is submitted: big enough that a busy
/// connection writes few times per batch, small enough to keep a few buffers per shard.
const WRITE_GATHER_MAX: usize = 512 * 1024;

/// Writes the outbox: consecutive byte items and cached file slices are gathered into one
/// buffer and written with one op; uncached slices are spliced between two writes.
async fn write_loop(mut stream: TcpStream, conn: Connection, mut splicer: super::splice::Splicer) {
    let mut spare = VecDeque::new();
    'batches: while let Some(mut batch) = conn.next_batch(&mut spare).await {
        let mut gathered: Option<BytesMut> = None;
        while let Some(item) = batch.pop_front() {
            let res = match item {
                Out::Bytes(bytes) => match &mut gathered {
                    None => {
                        gathered = Some(bytes);
                        Ok(())
                    }
                    Some(g) => {
                        g.extend_from_slice(&bytes);
                        conn.recycle(bytes);
                        Ok(())
                    }
                },
                Out::File(slice) => {
                    let g = gathered.get_or_insert_with(|| conn.free_buffer(slice.len as usize));
                    match splicer.copy_cached(&slice, g) {
                        Ok(n) if n == slice.len => Ok(()),
                        Ok(n) => match flush(&mut stream, &conn, gathered.take()).await {
                            Ok(()) => splicer.send(&mut stream, &slice.skip(n)).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    }
                }
            };
            let res = match res {
                Ok(())
                    if gathered
                        .as_ref()
                        .is_some_and(|g| g.len() >= WRITE_GATHER_MAX) =>
                {
                    flush(&mut stream, &conn, gathered.take()).await
                }
                other => other,
            };
            if let Err(e) = res {
                tracing::debug!(peer = %conn.peer(), error = %e, "connection write failed");
                conn.close();
                break 'batches;
            }
        }
        if let Err(e) = flush(&mut stream, &conn, gathered.take()).await {
            tracing::debug!(peer = %conn.peer(), error = %e, "connection write failed");
            conn.close();
            break 'batches;
        }
        spare = batch;
    }
    // Shutting down both directions wakes our reader (its recv sees end of stream) and tells
    // the peer we are gone, even while the reader's clone of the socket is still open.
    if let Err(e) = socket2::SockRef::from(&stream).shutdown(std::net::Shutdown::Both) {
        tracing::debug!(peer = %conn.peer(), error = %e, "socket shutdown failed");
    }
}

/// Writes the gathered bytes, if any, and recycles their buffer.
async fn flush(
    stream: &mut TcpStream,
    conn: &Connection,
    gathered: Option<BytesMut>,
) -> std::io::Result<()> {
    let Some(bytes) = gathered else {
        return Ok(());
    };
    if bytes.is_empty() {
        conn.recycle(bytes);
        return Ok(());
    }
    let BufResult(res, back) = stream.write_all(bytes).await;
    conn.recycle(back);
    res
}
