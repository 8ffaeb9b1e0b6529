//! The `/ws` endpoint: WebSocket upgrade with a lean per-connection configuration, and the
//! per-connection protocol loop.

use crate::config::Config;
use futures_util::{SinkExt, StreamExt};
use sotto_shared::codec::{SUPPORTED_VERSIONS, WIRE_VERSION};
use sotto_shared::{ClientFrame, DecodeError, ErrorCode, RelayFrame, decode_client, encode_relay};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{debug, warn};
use warp::Filter;
use warp::http::{Response, StatusCode, header};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::Reply;

/// State shared by every connection.
pub struct Relay {
    pub config: Config,
}

impl Relay {
    pub fn new(config: Config) -> Self {
        Relay { config }
    }

    /// tungstenite's defaults give each connection 128 KiB read and write buffers; a relay
    /// holding tens of thousands of mostly idle connections wants them small.
    fn ws_config(&self) -> WebSocketConfig {
        let max = self.config.limits.max_frame_bytes.min(sotto_shared::limits::MAX_FRAME_BYTES);
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(0)
            .max_write_buffer_size(max * 4)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
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

/// `GET /ws` with a WebSocket handshake.
pub fn upgrade(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::optional::<String>("upgrade"))
        .and(warp::header::optional::<String>("sec-websocket-key"))
        .and(warp::header::optional::<String>("sec-websocket-version"))
        .and(warp::header::optional::<String>("host"))
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::addr::remote())
        .and_then(
            move |upgrade: Option<String>,
                  key: Option<String>,
                  version: Option<String>,
                  host: Option<String>,
                  on_upgrade: Option<OnUpgrade>,
                  peer: Option<SocketAddr>| {
                let relay = relay.clone();
                async move {
                    let is_ws = upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
                        && version.as_deref() == Some("13");
                    let (Some(key), Some(on_upgrade), true) = (key, on_upgrade, is_ws) else {
                        return Ok(not_websocket());
                    };
                    let origin = relay
                        .config
                        .public_origin
                        .clone()
                        .unwrap_or_else(|| format!("http://{}", host.unwrap_or_default()));
                    let config = relay.ws_config();
                    tokio::spawn(async move {
                        match on_upgrade.await {
                            Ok(upgraded) => {
                                let io = hyper_util::rt::TokioIo::new(upgraded);
                                let socket =
                                    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                                connection(relay, socket, peer, origin).await;
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

/// What the connection loop does after handling one frame.
enum Next {
    Continue,
    Close,
}

fn error_frame(code: ErrorCode, message: impl Into<String>) -> RelayFrame {
    RelayFrame::Error { code, message: message.into(), id: None }
}

async fn connection<S>(
    relay: Arc<Relay>,
    socket: WebSocketStream<S>,
    peer: Option<SocketAddr>,
    origin: String,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = (&relay, &origin);
    debug!(?peer, "connection opened");
    let (mut tx, mut rx) = socket.split();
    let mut greeted = false;
    while let Some(msg) = rx.next().await {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                debug!(?peer, "connection error: {e}");
                break;
            }
        };
        let (replies, next) = match msg {
            Message::Binary(bytes) => match decode_client(&bytes) {
                Ok(frame) => handle(frame, &mut greeted),
                Err(DecodeError::UnsupportedVersion(v)) => (
                    vec![error_frame(
                        ErrorCode::UnsupportedVersion,
                        format!("version {v} is not supported; this relay speaks {SUPPORTED_VERSIONS:?}"),
                    )],
                    Next::Close,
                ),
                Err(DecodeError::TooLarge(n)) => (
                    vec![error_frame(ErrorCode::TooLarge, format!("frame of {n} bytes is too large"))],
                    Next::Continue,
                ),
                Err(e) => (vec![error_frame(ErrorCode::Malformed, e.to_string())], Next::Continue),
            },
            Message::Text(_) => (
                vec![error_frame(ErrorCode::Malformed, "text frames are not part of the protocol")],
                Next::Continue,
            ),
            Message::Close(_) => break,
            _ => continue,
        };
        for frame in replies {
            if tx.send(Message::Binary(encode_relay(&frame).into())).await.is_err() {
                return;
            }
        }
        if let Next::Close = next {
            let _ = tx.close().await;
            break;
        }
    }
    debug!(?peer, "connection closed");
}

fn handle(frame: ClientFrame, greeted: &mut bool) -> (Vec<RelayFrame>, Next) {
    match frame {
        ClientFrame::Hello { .. } if *greeted => {
            (vec![error_frame(ErrorCode::Unexpected, "hello was already sent")], Next::Continue)
        }
        ClientFrame::Hello { .. } => {
            *greeted = true;
            let mut challenge = [0u8; 32];
            if getrandom::fill(&mut challenge).is_err() {
                warn!("no randomness for a challenge");
                return (vec![error_frame(ErrorCode::Internal, "relay has no randomness")], Next::Close);
            }
            (
                vec![RelayFrame::Welcome {
                    version: WIRE_VERSION,
                    relay: concat!("sotto-relay/", env!("CARGO_PKG_VERSION")).into(),
                    challenge,
                }],
                Next::Continue,
            )
        }
        ClientFrame::Ping { nonce } => (vec![RelayFrame::Pong { nonce }], Next::Continue),
        _ => (vec![error_frame(ErrorCode::NotAuthenticated, "say hello first")], Next::Continue),
    }
}
