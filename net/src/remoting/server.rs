//! The accept side: bind a listener, accept connections, start one connection per socket.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use compio::net::TcpListener;
use socket2::{Domain, Protocol, Socket, Type};

use super::conn::{self, ConnOptions, Handler};

/// How a server listens.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub conn: ConnOptions,
    /// Pending-connection queue of the listening socket (Java: 1024). The kernel caps it at
    /// `net.core.somaxconn`.
    pub backlog: i32,
    /// Set SO_REUSEPORT so each thread of a thread-per-core server can bind its own listener
    /// on the same port and let the kernel spread connections.
    pub reuse_port: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            conn: ConnOptions::default(),
            backlog: 1024,
            reuse_port: false,
        }
    }
}

/// A bound listener, not yet accepting.
pub struct Server {
    listener: TcpListener,
    opts: ServerOptions,
}

/// Pause after a failed accept (e.g. EMFILE), so a full fd table does not spin the thread.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

impl Server {
    /// Binds `addr` on the current thread's runtime (port 0 picks a free port).
    pub fn bind(addr: SocketAddr, opts: ServerOptions) -> io::Result<Server> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if opts.reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(opts.backlog)?;
        let listener = TcpListener::from_std(socket.into())?;
        Ok(Server { listener, opts })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections forever, each served by `handler` on this thread.
    pub async fn serve<H: Handler>(self, handler: Rc<H>) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    // Request/response over a Nagle-delayed socket costs a delayed-ACK round
                    // trip (~40 ms) per exchange (DESIGN.md).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::warn!(%peer, error = %e, "cannot set TCP_NODELAY");
                    }
                    tracing::debug!(%peer, "connection accepted");
                    conn::start(stream, peer, handler.clone(), self.opts.conn.clone());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying shortly");
                    compio::time::sleep(ACCEPT_RETRY_DELAY).await;
                }
            }
        }
    }
}
