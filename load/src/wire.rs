//! Speaking the relay's protocol from native load clients: connecting (optionally behind a
//! forwarded address), logging in as the app does, and framed sends and receives.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sotto_engine::Identity;
use sotto_messenger::{Connection, Received};
use sotto_shared::frames::delivery_token_hash;
use sotto_shared::{Address, ClientFrame, MessageId, RelayFrame, decode_relay, encode_client};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Tx = SplitSink<Ws, Message>;
pub type Rx = SplitStream<Ws>;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub async fn send(ws: &mut Tx, frame: &ClientFrame) -> Result<()> {
    ws.send(Message::Binary(encode_client(frame).into())).await?;
    Ok(())
}

pub async fn recv(ws: &mut Rx) -> Result<RelayFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(decode_relay(&b)?),
            Some(Ok(Message::Close(_))) | None => return Err("connection closed".into()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

/// Whether connections name their own client address (`--forwarded-clients`), and the next one.
pub static FORWARDED_CLIENTS: AtomicBool = AtomicBool::new(false);
static NEXT_CLIENT: AtomicU64 = AtomicU64::new(1);

/// Connects and says hello; returns both halves, the relay's challenge still unread.
pub async fn connect(url: &str, origin: &str) -> Result<(Tx, Rx, Connection)> {
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)?;
    if FORWARDED_CLIENTS.load(Relaxed) {
        let n = NEXT_CLIENT.fetch_add(1, Relaxed);
        let ip = std::net::Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8);
        request.headers_mut().insert("x-forwarded-for", ip.to_string().parse()?);
    }
    // tungstenite zero-fills its whole read buffer (128 KiB by default) on every read: with
    // thousands of small frames a second that memset was half the tool's CPU, competing with
    // the relay for the same two cores and inflating every latency it measured.
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    let (mut tx, rx) = ws.split();
    let mut link = Connection::new(origin, "sotto-load");
    send(&mut tx, &link.opened(0)).await?;
    Ok((tx, rx, link))
}

/// An anonymous connection (a sealed sender), greeted.
pub async fn open(url: &str, origin: &str) -> Result<(Tx, Rx)> {
    let (tx, mut rx, _) = connect(url, origin).await?;
    match recv(&mut rx).await? {
        RelayFrame::Welcome { .. } => Ok((tx, rx)),
        other => Err(format!("expected Welcome, got {other:?}").into()),
    }
}

/// Connects, authenticates as `identity` and publishes its delivery token, as the app does.
pub async fn login(url: &str, origin: &str, identity: &Identity) -> Result<(Tx, Rx)> {
    let (mut tx, mut rx, mut link) = connect(url, origin).await?;
    // The login goes through the messenger's connection machine, as the app's does.
    loop {
        match link.received(recv(&mut rx).await?, 0, |o, c| identity.login_frame(o, c)) {
            Received::Reply(login) => send(&mut tx, &login).await?,
            Received::LoggedIn(_) => break,
            Received::Done | Received::Pass(RelayFrame::PrekeysLow { .. }) => {}
            Received::Ready => return Err("the connection did not ask to log in".into()),
            Received::Pass(other) | Received::Refused(other) => {
                return Err(format!("expected Authenticated, got {other:?}").into());
            }
        }
    }
    let hash = delivery_token_hash(&*identity.delivery_token()?);
    send(&mut tx, &ClientFrame::PublishDeliveryToken { hash }).await?;
    loop {
        match recv(&mut rx).await? {
            RelayFrame::DeliveryTokenPublished => return Ok((tx, rx)),
            RelayFrame::PrekeysLow { .. } => continue,
            other => return Err(format!("expected DeliveryTokenPublished, got {other:?}").into()),
        }
    }
}

/// A send as the recipient's contact (holding its delivery token), as the app sends.
pub fn contact_send(to: Address, token: [u8; 32], payload: Vec<u8>) -> ClientFrame {
    ClientFrame::SendAsContact { id: random_id(), to, ttl_secs: 600, token, payload }
}

pub fn random_id() -> MessageId {
    let mut id = [0u8; 16];
    let _ = sotto_engine::random::fill(&mut id);
    MessageId(id)
}

/// A payload of `size` bytes starting with the send time in microseconds since `epoch`.
pub fn stamped(size: usize, epoch: Instant) -> Vec<u8> {
    let mut p = vec![0x5a; size.max(8)];
    p[..8].copy_from_slice(&(epoch.elapsed().as_micros() as u64).to_be_bytes());
    p
}
