//! The `/ws` endpoint: the WebSocket upgrade, with a lean per-connection configuration.

use crate::peer::{self, Peer};
use crate::state::Relay;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::debug;
use warp::Filter;
use warp::http::{Response, StatusCode, header};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Reply;

/// tungstenite's defaults give each connection 128 KiB read and write buffers; a relay holding
/// tens of thousands of mostly idle connections wants them small. The hard message cap sits a
/// little above the protocol's limit so that a slightly oversized frame gets a polite
/// `TooLarge` error frame (see `connection.rs`) rather than a dropped connection.
fn ws_config() -> WebSocketConfig {
    let hard_cap = sotto_shared::limits::MAX_FRAME_BYTES + 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        // Frames are fed in bursts and flushed once: 16 KiB batches them into few syscalls. The
        // buffer grows only as far as a connection actually writes, so idle ones stay small.
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(hard_cap * 4)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap))
}

/// A plain HTTP request to `/ws`: 426, naming the protocol it wants.
fn not_websocket() -> warp::reply::Response {
    let mut res =
        warp::reply::with_status("This endpoint speaks WebSocket only.", StatusCode::UPGRADE_REQUIRED)
            .into_response();
    res.headers_mut().insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    res
}

/// Turns a rejection into a plain-text error with the right status.
pub async fn recover(err: warp::Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, text) = if err.is_not_found() {
        (StatusCode::NOT_FOUND, "Not found")
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
    } else {
        (StatusCode::BAD_REQUEST, "Bad request")
    };
    Ok(warp::reply::with_status(text, status).into_response())
}

/// The client's address as the per-IP limits count it: the TCP peer, or for a trusted reverse
/// proxy the client it names.
pub fn client_ip(trusted: Vec<ipnet::IpNet>) -> impl Filter<Extract = (IpAddr,), Error = Infallible> + Clone {
    warp::ext::optional::<Peer>().and(warp::header::headers_cloned()).map(
        move |peer: Option<Peer>, headers: warp::http::HeaderMap| {
            let lines: Vec<&str> =
                headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
            peer::client_ip(tcp_peer(peer), &lines, &trusted)
        },
    )
}

/// The TCP peer itself, never what a header says (for decisions a proxy must not open, such as
/// loopback-only `/metrics`).
pub fn tcp_peer(peer: Option<Peer>) -> IpAddr {
    peer.map(|p| peer::canonical(p.0.ip())).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn forbidden(text: &'static str) -> warp::reply::Response {
    warp::reply::with_status(text, StatusCode::FORBIDDEN).into_response()
}

/// `GET /ws` with a WebSocket handshake.
pub fn upgrade(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::optional::<String>("upgrade"))
        .and(warp::header::optional::<String>("sec-websocket-key"))
        .and(warp::header::optional::<String>("sec-websocket-version"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::ext::optional::<OnUpgrade>())
        .and(client_ip(relay.config.trusted_proxy.clone()))
        .and_then(
            move |upgrade: Option<String>,
                  key: Option<String>,
                  version: Option<String>,
                  host: Option<String>,
                  origin: Option<String>,
                  on_upgrade: Option<OnUpgrade>,
                  ip: IpAddr| {
                let relay = relay.clone();
                async move {
                    let is_ws = upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                        && version.as_deref() == Some("13");
                    let (Some(key), Some(on_upgrade), true) = (key, on_upgrade, is_ws) else {
                        return Ok(not_websocket());
                    };
                    // Browsers always send `Origin`: a page of another site may not open a socket.
                    let login_origin = match origin {
                        Some(o) if relay.origins.contains(&o) => o,
                        Some(_) => return Ok(forbidden("This origin may not use this relay.")),
                        // Native clients: the origin they reached, if it is one of ours.
                        None => {
                            let reached = format!("http://{}", host.unwrap_or_default());
                            if relay.origins.contains(&reached) { reached } else { relay.origins[0].clone() }
                        }
                    };
                    let config = ws_config();
                    tokio::spawn(async move {
                        match on_upgrade.await {
                            Ok(upgraded) => {
                                let io = hyper_util::rt::TokioIo::new(upgraded);
                                let socket =
                                    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                                crate::connection::serve(relay, socket, ip, login_origin).await;
                            }
                            Err(e) => debug!("websocket upgrade failed: {e}"),
                        }
                    });
                    let accept = derive_accept_key(key.as_bytes());
                    let res = Response::builder()
                        .status(StatusCode::SWITCHING_PROTOCOLS)
                        .header(header::CONNECTION, "upgrade")
                        .header(header::UPGRADE, "websocket")
                        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
                        .body(warp::hyper::body::Bytes::new())
                        .map(Reply::into_response)
                        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
                    Ok::<_, warp::Rejection>(res)
                }
            },
        )
}
