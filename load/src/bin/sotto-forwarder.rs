//! `sotto-forwarder`: the floor the relay is measured against, not a relay. It speaks just
//! enough of the protocol for `sotto-load` (hello, login, delivery token, send, ack) and
//! forwards each envelope from memory to the recipient's open connection: no signature check,
//! no store, no limits, nothing kept for offline mailboxes. Same WebSocket stack and buffer
//! sizes as the relay, so the difference between the two is what the relay does per message.
//! See docs/benchmarks.md (`scripts/bench-relay.sh forwarder`).

#![forbid(unsafe_code)]

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use sotto_shared::{Address, ClientFrame, RelayFrame, decode_client, encode_relay};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(Parser)]
#[command(name = "sotto-forwarder", about = "Memory-only forwarder: the baseline for relay latency")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: String,
}

type Online = Arc<Mutex<HashMap<Address, UnboundedSender<Vec<u8>>>>>;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let listener = TcpListener::bind(&cli.listen).await?;
    println!("forwarding on {}", listener.local_addr()?);
    let online: Online = Arc::default();
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(serve(socket, online.clone()));
    }
}

async fn serve(socket: TcpStream, online: Online) {
    let config = WebSocketConfig::default().read_buffer_size(2 * 1024).write_buffer_size(16 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(socket, Some(config)).await else { return };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = unbounded_channel::<Vec<u8>>();
    // Writes are fed as they come and flushed when nothing more is waiting, as the relay does.
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.feed(Message::Binary(frame.into())).await.is_err() {
                return;
            }
            while let Ok(frame) = rx.try_recv() {
                if sink.feed(Message::Binary(frame.into())).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    let reply = |frame: &RelayFrame| {
        let _ = tx.send(encode_relay(frame));
    };
    let mut me = None;
    while let Some(Ok(message)) = stream.next().await {
        let Message::Binary(bytes) = message else { continue };
        let Ok(frame) = decode_client(&bytes) else { break };
        match frame {
            ClientFrame::Hello { .. } => reply(&RelayFrame::Welcome {
                version: sotto_shared::codec::WIRE_VERSION,
                relay: "forwarder".into(),
                challenge: [0; 32],
            }),
            ClientFrame::Authenticate { identity, .. } => {
                let address = Address::from_identity_key(&identity.signing_key);
                if let Ok(mut online) = online.lock() {
                    online.insert(address, tx.clone());
                }
                me = Some(address);
                reply(&RelayFrame::Authenticated { address, queued: 0 });
            }
            ClientFrame::PublishDeliveryToken { .. } => reply(&RelayFrame::DeliveryTokenPublished),
            ClientFrame::Send { id, to, payload, .. }
            | ClientFrame::SendAsContact { id, to, payload, .. } => {
                let recipient = online.lock().ok().and_then(|online| online.get(&to).cloned());
                if let Some(recipient) = recipient {
                    let _ =
                        recipient.send(encode_relay(&RelayFrame::Deliver { id, received_at: 0, payload }));
                }
                reply(&RelayFrame::Sent { id });
            }
            _ => {}
        }
    }
    if let (Some(address), Ok(mut online)) = (me, online.lock()) {
        online.remove(&address);
    }
}
