//! The writer task of one connection: it owns the socket's sending half and interleaves
//! replies with deliveries (in store order, re-read from the store after a lag).

use crate::hub::{Control, Handle, Outgoing};
use crate::session::secs;
use crate::state::{Relay, unix_now};
use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use sotto_shared::{Address, RelayFrame, encode_relay};
use std::sync::Arc;
use std::sync::atomic::{Ordering, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tracing::warn;

pub(crate) type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

/// Why the writer stopped writing.
enum Stop {
    Socket,
    Store,
}

/// Queues a frame on the socket; a reader that takes nothing for `stall` is given up on.
async fn feed<S>(sink: &mut Sink<S>, msg: Message, stall: Duration) -> Result<(), Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(stall, sink.feed(msg)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Stop::Socket),
    }
}

async fn flush<S>(sink: &mut Sink<S>, stall: Duration) -> Result<(), Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(stall, sink.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Stop::Socket),
    }
}

/// Owns the socket's sending half. Replies and notices go first; deliveries follow in
/// store order; after a lag, the missed envelopes are re-read from the store.
pub(crate) async fn write_loop<S>(relay: Arc<Relay>, mut sink: Sink<S>, handle: Arc<Handle>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // However this task ends (even by a panic), the outbox closes: what waits in it is
    // released (the permits of unsent replies, which the reader's drain waits for) and nothing
    // more is queued.
    let _closes = CloseOnDrop(handle.clone());
    let batch = relay.config.limits.max_outbound_frames.max(1);
    let stall = secs(relay.config.timeouts.write_stall_secs);
    let mut committed = relay.writer.committed();
    let mut mailbox: Option<Address> = None;
    let mut last_sent = 0u64;
    loop {
        // While lagging, nothing from the queue goes out before the store has been re-read:
        // the store holds everything queued (committed before it was pushed), in order.
        if let Some(mb) = mailbox
            && handle.lagging.swap(false, Ordering::SeqCst)
        {
            // What was dropped may still be on its way to the disk: wait until it is committed.
            let target = handle.lag_seq.load(Ordering::SeqCst);
            let caught_up = Box::pin(async {
                if committed.wait_for(|c| *c >= target).await.is_err() {
                    return Err(Stop::Socket);
                }
                refill(&relay, &mut sink, mb, &mut last_sent, batch, stall).await
            });
            match caught_up.await {
                Ok(()) => {}
                Err(Stop::Socket) => break,
                Err(Stop::Store) => {
                    // Keep the flag so the next wake-up tries again.
                    handle.lagging.store(true, Ordering::SeqCst);
                    Box::pin(tokio::time::sleep(Duration::from_millis(200))).await;
                    handle.control(Control::Kick);
                }
            }
            continue;
        }
        // Nothing is delivered before the writer knows its mailbox and has read the backlog.
        let out = match handle.next(mailbox.is_some()).await {
            Outgoing::Control(Control::Frame(bytes, _permit)) => Some(Message::Binary(bytes)),
            Outgoing::Control(Control::Ping) => Some(Message::Ping(Bytes::new())),
            Outgoing::Control(Control::Post(bytes)) => Some(Message::Binary(bytes)),
            Outgoing::Control(Control::Attach(a)) => {
                mailbox = Some(a);
                None
            }
            Outgoing::Control(Control::Kick) => None,
            Outgoing::Control(Control::Close) | Outgoing::Closed => break,
            Outgoing::Delivery(d) if d.seq > last_sent => {
                last_sent = d.seq;
                Some(Message::Binary(d.frame))
            }
            Outgoing::Delivery(_) => None,
        };
        if let Some(msg) = out {
            relay.metrics.bytes_out.fetch_add(msg.len() as u64, Relaxed);
            // Queue the frame; flush (one syscall for many frames) once nothing else is ready.
            if feed(&mut sink, msg, stall).await.is_err() {
                break;
            }
        }
        if handle.is_idle(mailbox.is_some()) && flush(&mut sink, stall).await.is_err() {
            break;
        }
    }
    // Nothing more will be written: release what is queued before the last flush.
    handle.close();
    // Replies queued before `Close` went out above, in order; flush them before closing.
    let _ = flush(&mut sink, stall).await;
    let _ = tokio::time::timeout(stall, sink.close()).await;
}

struct CloseOnDrop(Arc<Handle>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

async fn refill<S>(
    relay: &Arc<Relay>,
    sink: &mut Sink<S>,
    mailbox: Address,
    last_sent: &mut u64,
    batch: usize,
    stall: Duration,
) -> Result<(), Stop>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let store = relay.store.clone();
        let after = *last_sent;
        let envelopes =
            tokio::task::spawn_blocking(move || store.backlog(&mailbox, after, unix_now(), batch))
                .await
                .map_err(|_| Stop::Store)?
                .map_err(|e| {
                    warn!("backlog read failed: {e}");
                    Stop::Store
                })?;
        let n = envelopes.len();
        for e in envelopes {
            let frame = encode_relay(&RelayFrame::Deliver {
                id: e.id,
                received_at: e.received_at,
                payload: e.payload,
            });
            relay.metrics.bytes_out.fetch_add(frame.len() as u64, Relaxed);
            relay.metrics.envelopes_pushed.fetch_add(1, Relaxed);
            feed(sink, Message::Binary(frame.into()), stall).await?;
            *last_sent = e.seq;
        }
        flush(sink, stall).await?;
        if n < batch {
            return Ok(());
        }
    }
}
