//! One WebSocket connection: the reader, which checks each frame (rate, size, version) and
//! hands it to its handler (`handlers/`), and the writer task (`outbound`) that owns the
//! socket's sending half.

use crate::hub::{Control, Handle};
use crate::outbound::write_loop;
use crate::session::{MAX_IN_FLIGHT, Session, error, secs};
use crate::state::Relay;
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use sotto_shared::codec::SUPPORTED_VERSIONS;
use sotto_shared::{ClientFrame, DecodeError, ErrorCode, decode_client, encode_relay};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

pub async fn serve<S>(relay: Arc<Relay>, socket: WebSocketStream<S>, ip: IpAddr, origin: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, stream) = socket.split();
    let _slot = match relay.limits.admit(ip) {
        Ok(slot) => slot,
        Err(code) => {
            relay.metrics.error(code);
            let frame = error(code, "too many connections; try again later", None);
            // Boxed, like every rarely taken path below: a future's size is that of its largest
            // state, and tens of thousands of idle connections each hold one.
            Box::pin(async move {
                let _ = sink.send(Message::Binary(encode_relay(&frame).into())).await;
                let _ = sink.close().await;
            })
            .await;
            return;
        }
    };
    relay.metrics.connections.fetch_add(1, Relaxed);
    let handle = Arc::new(Handle::new(relay.connection_id()));
    let mut writer = tokio::spawn(write_loop(relay.clone(), sink, handle.clone()));

    let mut session = Session::new(relay.clone(), origin, ip, handle.clone());
    let writer_done = read_loop(&mut session, stream, &mut writer).await;

    if let Some(address) = session.address {
        relay.hub.detach(&address, handle.id);
        relay.metrics.authenticated.fetch_sub(1, Relaxed);
    }
    for topic in &session.topics {
        relay.subscriptions.unsubscribe(topic, handle.id);
    }
    // Every request read gets its answer before the socket closes (commits take milliseconds;
    // the bound only matters if the store hangs).
    let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
    let drain = secs(relay.config.timeouts.drain_secs);
    let _ = Box::pin(tokio::time::timeout(drain, session.in_flight.acquire_many(all))).await;
    handle.control(Control::Close);
    drop(session);
    if !writer_done {
        let _ = writer.await;
    }
    relay.metrics.connections.fetch_sub(1, Relaxed);
}

/// Reads until the client leaves, the relay stops, or the writer gives up on the socket
/// (then returns `true`: `writer` has finished and must not be awaited again).
async fn read_loop<S>(
    session: &mut Session,
    mut stream: SplitStream<WebSocketStream<S>>,
    writer: &mut JoinHandle<()>,
) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let max_frame = session.relay.config.limits.max_frame_bytes.min(sotto_shared::limits::MAX_FRAME_BYTES);
    let t = &session.relay.config.timeouts;
    let (hello, ping, idle) =
        (secs(t.hello_timeout_secs), secs(t.ping_interval_secs), secs(t.idle_timeout_secs));
    // Made once, not per frame: the relay stopping, or the writer giving up on the socket (a
    // reader that stopped reading).
    let mut stopping = session.relay.stopping.subscribe();
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    tokio::pin!(stop);
    let started = Instant::now();
    let mut last_heard = started;
    let mut pinged = false;
    // One timer, moved only when it fires: frames do not touch the timer wheel.
    let timer = tokio::time::sleep_until(started + hello.min(ping));
    tokio::pin!(timer);
    loop {
        let msg = tokio::select! {
            msg = stream.next() => msg,
            () = &mut timer => {
                let now = Instant::now();
                let greeted = session.challenge.is_some() || session.address.is_some();
                if !greeted && now >= started + hello {
                    let msg = format!("say hello within {} s", hello.as_secs());
                    session.reply(error(ErrorCode::Timeout, msg, None), None);
                    break;
                }
                if pinged && now >= last_heard + idle {
                    let msg = format!("nothing heard for {} s", idle.as_secs());
                    session.reply(error(ErrorCode::Timeout, msg, None), None);
                    break;
                }
                if !pinged && now >= last_heard + ping {
                    session.handle.control(Control::Ping);
                    pinged = true;
                }
                let next = if !greeted { started + hello } else if pinged { last_heard + idle } else { last_heard + ping };
                timer.as_mut().reset(next.max(now + Duration::from_millis(10)));
                continue;
            }
            () = &mut stop => break,
            _ = &mut *writer => return true,
        };
        let Some(msg) = msg else { break };
        last_heard = Instant::now();
        pinged = false;
        let Ok(permit) = session.in_flight.clone().acquire_owned().await else { break };
        let bytes = match msg {
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Text(_)) => {
                session.reply(
                    error(ErrorCode::Malformed, "text messages are not part of the protocol", None),
                    Some(permit),
                );
                continue;
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                // tungstenite refuses messages past its hard cap; say why before closing.
                let frame = error(ErrorCode::TooLarge, format!("connection closed: {e}"), None);
                session.reply(frame, Some(permit));
                break;
            }
        };
        session.relay.metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
        if session.rate.check().is_err() || !session.relay.limits.ip_allows(session.ip) {
            let id = match decode_client(&bytes) {
                Ok(ClientFrame::Send { id, .. } | ClientFrame::SendAsContact { id, .. }) => Some(id),
                _ => None,
            };
            session.reply(error(ErrorCode::RateLimited, "too many frames; slow down", id), Some(permit));
            continue;
        }
        if bytes.len() > max_frame {
            let msg = format!("frame of {} bytes exceeds the {max_frame}-byte limit", bytes.len());
            session.reply(error(ErrorCode::TooLarge, msg, None), Some(permit));
            continue;
        }
        match decode_client(&bytes) {
            Ok(frame) => {
                if !session.handle(frame, permit).await {
                    break;
                }
            }
            Err(DecodeError::UnsupportedVersion(v)) => {
                let msg = format!("version {v} is not supported; this relay speaks {SUPPORTED_VERSIONS:?}");
                session.reply(error(ErrorCode::UnsupportedVersion, msg, None), Some(permit));
                break;
            }
            Err(DecodeError::TooLarge(n)) => session.reply(
                error(ErrorCode::TooLarge, format!("frame of {n} bytes is too large"), None),
                Some(permit),
            ),
            Err(e) => session.reply(error(ErrorCode::Malformed, e.to_string(), None), Some(permit)),
        }
    }
    false
}
