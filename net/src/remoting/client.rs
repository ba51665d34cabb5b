//! The connect side: open a connection to a remoting server (a broker registering with a
//! namesrv, the bench driving a broker) and use it through [`Connection`].

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use compio::net::TcpStream;
use ringmq_codec::Command;
use ringmq_codec::codes::response;

use super::conn::{self, ConnOptions, Connection, Handler, Reply};

/// Connects to `addr` within `timeout` and starts the connection on the current runtime.
/// Requests the server sends us (check-back, notifications) go to `handler`.
pub async fn connect<H: Handler>(
    addr: SocketAddr,
    timeout: Duration,
    handler: Rc<H>,
    opts: ConnOptions,
) -> io::Result<Connection> {
    let stream = compio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} took longer than {timeout:?}"),
            )
        })??;
    stream.set_nodelay(true)?;
    Ok(conn::start(stream, addr, handler, opts))
}

/// A handler for clients that expect no requests from the server: it answers each with
/// REQUEST_CODE_NOT_SUPPORTED, as Java does for a code it has no processor for.
#[derive(Debug, Default)]
pub struct RefuseRequests;

impl Handler for RefuseRequests {
    fn on_request(&self, _conn: &Connection, request: Command, reply: Reply) {
        let remark = format!(" request type {} not supported", request.code);
        reply.send(
            Command::response_to(&request, response::REQUEST_CODE_NOT_SUPPORTED)
                .with_remark(remark),
        );
    }
}
