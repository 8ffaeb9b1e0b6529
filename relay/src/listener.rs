//! Accepting HTTP connections. warp's own server gives hyper no timer, so a client that sends
//! half a request (or nothing) holds its socket forever; this loop serves each connection with
//! hyper's HTTP/1.1 server and a header-read deadline, and tells the routes who the peer is.

use crate::peer::Peer;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{debug, error, info};
use warp::Filter;

/// A listening socket with TCP_NODELAY, which Linux passes on to accepted connections: small
/// frames must leave at once, not wait for Nagle's algorithm and delayed ACKs (40 ms stalls).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Raises the open-file limit to its hard maximum (every connection is a file descriptor) and
/// returns the limit in force.
pub fn raise_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            error!("cannot raise the open-file limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    }
}

/// Serves `routes` on `listener` until `stop` resolves; then stops accepting.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone + Send + Sync + 'static,
{
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, typically: wait for some to close.
                    error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = warp::service(routes.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    let mut service = service.clone();
                    tower_service::Service::call(&mut service, req)
                });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                debug!(%peer, "http connection ended: {e}");
            }
        });
    }
    info!("stopped accepting connections");
}
