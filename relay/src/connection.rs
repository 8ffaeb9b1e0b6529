//! One WebSocket connection: a reader that handles client frames, and a writer that owns the
//! socket's sending half and interleaves replies with deliveries.

use crate::hub::{Control, Delivery, Handle, Outgoing};
use crate::limits::ConnectionRate;
use crate::state::{LOW_PREKEYS, Relay, unix_now};
use crate::store::{NewEnvelope, Write, WriteResult};
use crate::writer::{Admission, IDENTITY_COST, ONE_TIME_PREKEY_COST, Refusal};
use bytes::Bytes;
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use sotto_shared::codec::{SUPPORTED_VERSIONS, WIRE_VERSION};
use sotto_shared::frames::{
    IdentityPublic, Signature, auth_message, delivery_token_hash, identity_dh_message, signed_prekey_message,
};
use sotto_shared::limits::{MAX_ACK_IDS, MAX_ENVELOPE_BYTES, MAX_PREKEYS_PER_UPLOAD, MAX_TTL_SECS};
use sotto_shared::{
    Address, ClientFrame, DecodeError, ErrorCode, MessageId, RelayFrame, decode_client, encode_relay,
};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{Ordering, Ordering::Relaxed};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

/// Requests one connection may have in progress; past this the relay stops reading from it,
/// which pushes back on the client through TCP instead of buffering.
const MAX_IN_FLIGHT: usize = 1024;

struct Session {
    relay: Arc<Relay>,
    origin: String,
    ip: IpAddr,
    /// Where replies go: the connection's outbox, written by its writer task.
    handle: Arc<Handle>,
    challenge: Option<[u8; 32]>,
    identity: Option<IdentityPublic>,
    address: Option<Address>,
    rate: ConnectionRate,
    /// Bounds the requests in progress; all permits back means every request was answered.
    in_flight: Arc<Semaphore>,
    /// The last delivery token presented and its hash.
    last_token: Option<([u8; 32], [u8; 32])>,
}

fn reply(frame: &RelayFrame, permit: Option<OwnedSemaphorePermit>) -> Control {
    Control::Frame(Bytes::from(encode_relay(frame)), permit)
}

/// Queues a reply on the connection, counting error frames in the metrics.
fn answer(relay: &Relay, handle: &Handle, frame: &RelayFrame, permit: Option<OwnedSemaphorePermit>) {
    if let RelayFrame::Error { code, .. } = frame {
        relay.metrics.error(*code);
    }
    handle.control(reply(frame, permit));
}

/// The answer when a login could not open the mailbox (too many new ones from one address, or
/// the storage budget), so nothing may be stored for it yet.
fn not_registered() -> RelayFrame {
    let msg = "this mailbox is not open yet (too many new mailboxes from your address, or the relay is full); log in again later";
    error(ErrorCode::RateLimited, msg, None)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n.max(1))
}

fn error(code: ErrorCode, message: impl Into<String>, id: Option<MessageId>) -> RelayFrame {
    RelayFrame::Error { code, message: message.into(), id }
}

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

    let mut session = Session {
        rate: relay.limits.connection_rate(),
        relay: relay.clone(),
        origin,
        ip,
        handle: handle.clone(),
        challenge: None,
        identity: None,
        address: None,
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        last_token: None,
    };
    let writer_done = session.read_loop(stream, &mut writer).await;

    if let Some(address) = session.address {
        relay.hub.detach(&address, handle.id);
        relay.metrics.authenticated.fetch_sub(1, Relaxed);
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

impl Session {
    fn reply(&self, frame: RelayFrame, permit: Option<OwnedSemaphorePermit>) {
        answer(&self.relay, &self.handle, &frame, permit);
    }

    /// Queues a write; once it is durable (or failed), `answer_for` turns the result into the
    /// reply, if any. The permit is held until then, so the request counts as in progress.
    fn submit(
        &self,
        op: Write,
        permit: Option<OwnedSemaphorePermit>,
        answer_for: impl FnOnce(&Relay, Result<WriteResult, ()>) -> Option<RelayFrame> + Send + 'static,
    ) {
        let (relay, handle) = (self.relay.clone(), self.handle.clone());
        self.relay.writer.submit(
            op,
            Box::new(move |result| match answer_for(&relay, result) {
                Some(frame) => answer(&relay, &handle, &frame, permit),
                None => drop(permit),
            }),
        );
    }

    /// Reads until the client leaves, the relay stops, or the writer gives up on the socket
    /// (then returns `true`: `writer` has finished and must not be awaited again).
    async fn read_loop<S>(
        &mut self,
        mut stream: SplitStream<WebSocketStream<S>>,
        writer: &mut JoinHandle<()>,
    ) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let max_frame = self.relay.config.limits.max_frame_bytes.min(sotto_shared::limits::MAX_FRAME_BYTES);
        let t = &self.relay.config.timeouts;
        let (hello, ping, idle) =
            (secs(t.hello_timeout_secs), secs(t.ping_interval_secs), secs(t.idle_timeout_secs));
        // Made once, not per frame: the relay stopping, or the writer giving up on the socket (a
        // reader that stopped reading).
        let mut stopping = self.relay.stopping.subscribe();
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
                    let greeted = self.challenge.is_some() || self.address.is_some();
                    if !greeted && now >= started + hello {
                        let msg = format!("say hello within {} s", hello.as_secs());
                        self.reply(error(ErrorCode::Timeout, msg, None), None);
                        break;
                    }
                    if pinged && now >= last_heard + idle {
                        let msg = format!("nothing heard for {} s", idle.as_secs());
                        self.reply(error(ErrorCode::Timeout, msg, None), None);
                        break;
                    }
                    if !pinged && now >= last_heard + ping {
                        self.handle.control(Control::Ping);
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
            let Ok(permit) = self.in_flight.clone().acquire_owned().await else { break };
            let bytes = match msg {
                Ok(Message::Binary(bytes)) => bytes,
                Ok(Message::Text(_)) => {
                    self.reply(
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
                    self.reply(frame, Some(permit));
                    break;
                }
            };
            self.relay.metrics.bytes_in.fetch_add(bytes.len() as u64, Relaxed);
            if self.rate.check().is_err() || !self.relay.limits.ip_allows(self.ip) {
                let id = match decode_client(&bytes) {
                    Ok(ClientFrame::Send { id, .. } | ClientFrame::SendAsContact { id, .. }) => Some(id),
                    _ => None,
                };
                self.reply(error(ErrorCode::RateLimited, "too many frames; slow down", id), Some(permit));
                continue;
            }
            if bytes.len() > max_frame {
                let msg = format!("frame of {} bytes exceeds the {max_frame}-byte limit", bytes.len());
                self.reply(error(ErrorCode::TooLarge, msg, None), Some(permit));
                continue;
            }
            match decode_client(&bytes) {
                Ok(frame) => {
                    if !self.handle(frame, permit).await {
                        break;
                    }
                }
                Err(DecodeError::UnsupportedVersion(v)) => {
                    let msg =
                        format!("version {v} is not supported; this relay speaks {SUPPORTED_VERSIONS:?}");
                    self.reply(error(ErrorCode::UnsupportedVersion, msg, None), Some(permit));
                    break;
                }
                Err(DecodeError::TooLarge(n)) => self.reply(
                    error(ErrorCode::TooLarge, format!("frame of {n} bytes is too large"), None),
                    Some(permit),
                ),
                Err(e) => self.reply(error(ErrorCode::Malformed, e.to_string(), None), Some(permit)),
            }
        }
        false
    }

    /// Handles one frame; `false` ends the connection.
    async fn handle(&mut self, frame: ClientFrame, permit: OwnedSemaphorePermit) -> bool {
        let permit = Some(permit);
        match frame {
            ClientFrame::Hello { .. } if self.challenge.is_some() || self.address.is_some() => {
                self.reply(error(ErrorCode::Unexpected, "hello was already sent", None), permit);
            }
            ClientFrame::Hello { .. } => {
                let mut challenge = [0u8; 32];
                if getrandom::fill(&mut challenge).is_err() {
                    warn!("no randomness for a challenge");
                    self.reply(error(ErrorCode::Internal, "relay has no randomness", None), permit);
                    return false;
                }
                self.challenge = Some(challenge);
                let relay = concat!("sotto-relay/", env!("CARGO_PKG_VERSION")).to_string();
                self.reply(RelayFrame::Welcome { version: WIRE_VERSION, relay, challenge }, permit);
            }
            ClientFrame::Ping { nonce } => self.reply(RelayFrame::Pong { nonce }, permit),
            _ if self.challenge.is_none() && self.address.is_none() => {
                self.reply(error(ErrorCode::NotAuthenticated, "send hello first", None), permit);
            }
            ClientFrame::Authenticate { identity, signature } => {
                return Box::pin(self.authenticate(*identity, signature, permit)).await;
            }
            ClientFrame::Send { id, to, ttl_secs, payload } => {
                if let Some(refusal) = self.send(id, to, ttl_secs, None, payload, permit) {
                    self.refuse(refusal).await;
                }
            }
            ClientFrame::SendAsContact { id, to, ttl_secs, token, payload } => {
                let hash = self.token_hash(token);
                if let Some(refusal) = self.send(id, to, ttl_secs, Some(hash), payload, permit) {
                    self.refuse(refusal).await;
                }
            }
            ClientFrame::PublishDeliveryToken { hash } => self.publish_token(hash, permit),
            ClientFrame::Ack { ids } => self.ack(ids, permit),
            ClientFrame::UploadPrekeys { signed_prekey, one_time } => {
                self.upload(signed_prekey, one_time, permit)
            }
            ClientFrame::FetchBundle { address } => self.fetch_bundle(address, permit),
        }
        true
    }

    async fn authenticate(
        &mut self,
        identity: IdentityPublic,
        signature: Signature,
        permit: Option<OwnedSemaphorePermit>,
    ) -> bool {
        if self.address.is_some() {
            self.reply(error(ErrorCode::Unexpected, "already authenticated", None), permit);
            return true;
        }
        // A challenge is good for one attempt only.
        let Some(challenge) = self.challenge.take() else { return true };
        let ok =
            verify(&identity.signing_key, &identity_dh_message(&identity.dh_key), &identity.dh_signature)
                && verify(&identity.signing_key, &auth_message(&self.origin, &challenge), &signature);
        if !ok {
            self.reply(error(ErrorCode::AuthFailed, "the identity signature did not verify", None), permit);
            return false;
        }
        let address = Address::from_identity_key(&identity.signing_key);
        self.identity = Some(identity);
        self.address = Some(address);
        self.relay.metrics.authenticated.fetch_add(1, Relaxed);
        let store = self.relay.store.clone();
        let (queued, remaining, known) = tokio::task::spawn_blocking(move || {
            (
                store.queued(&address).map(|q| q.0).unwrap_or(0),
                store.prekeys_remaining(&address).ok().flatten(),
                store.mailbox_view(&address, &MessageId([0; 16])).is_ok_and(|v| v.exists),
            )
        })
        .await
        .unwrap_or((0, None, true));
        // Logging in opens the mailbox: from now on others may send to it.
        // New mailboxes cost storage that never expires: a bounded number per address.
        if !known
            && self.relay.writer.has_room(IDENTITY_COST)
            && self.relay.limits.new_mailbox_allowed(self.ip)
        {
            let _ = self.relay.writer.write(Write::Register { identity }).await;
        }
        self.reply(
            RelayFrame::Authenticated { address, queued: u32::try_from(queued).unwrap_or(u32::MAX) },
            permit,
        );
        if let Some(remaining) = remaining.filter(|r| *r < LOW_PREKEYS)
            && self.relay.limits.low_notice_due(&address)
        {
            self.reply(RelayFrame::PrekeysLow { remaining }, None);
            self.relay.limits.low_notice_sent(&address);
        }
        // Attach after the Authenticated reply is queued, so it precedes any delivery.
        let writer = &self.relay.writer;
        let delay = std::time::Duration::from_millis(self.relay.config.test_attach_delay_ms);
        self.relay.hub.attach(address, &self.handle, || writer.allocated(), delay).await;
        debug!(?address, "authenticated");
        true
    }

    /// The hash of a presented delivery token; a sender usually presents the same one again
    /// and again, so the last is remembered.
    fn token_hash(&mut self, token: [u8; 32]) -> [u8; 32] {
        match self.last_token {
            Some((t, h)) if t == token => h,
            _ => {
                let h = delivery_token_hash(&token);
                self.last_token = Some((token, h));
                h
            }
        }
    }

    fn publish_token(&self, hash: [u8; 32], permit: Option<OwnedSemaphorePermit>) {
        let Some(mailbox) = self.address else {
            let msg = "authenticate to publish a delivery token";
            return self.reply(error(ErrorCode::NotAuthenticated, msg, None), permit);
        };
        self.submit(Write::PublishToken { mailbox, hash }, permit, |_, result| {
            Some(match result {
                Ok(WriteResult::TokenPublished) => RelayFrame::DeliveryTokenPublished,
                Ok(WriteResult::NotRegistered) => not_registered(),
                _ => error(ErrorCode::Internal, "the relay could not store the token; retry", None),
            })
        });
    }

    /// `token_hash`: the hash of the delivery token the sender presented, if any. Returns the
    /// answer to a send refused at admission, for `refuse`.
    fn send(
        &self,
        id: MessageId,
        to: Address,
        ttl_secs: u32,
        token_hash: Option<[u8; 32]>,
        payload: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Option<RelayFrame> {
        if payload.len() > MAX_ENVELOPE_BYTES {
            let msg = format!("envelope of {} bytes exceeds {MAX_ENVELOPE_BYTES}", payload.len());
            self.reply(error(ErrorCode::TooLarge, msg, Some(id)), permit);
            return None;
        }
        if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
            let msg = format!("ttl must be between 1 and {MAX_TTL_SECS} seconds");
            self.reply(error(ErrorCode::InvalidRequest, msg, Some(id)), permit);
            return None;
        }
        if !self.relay.limits.ip_allows_bytes(self.ip, payload.len()) {
            let msg = "too much sent from your address; slow down";
            self.reply(error(ErrorCode::RateLimited, msg, Some(id)), permit);
            return None;
        }
        let now = unix_now();
        let deliver = Bytes::from(encode_relay(&RelayFrame::Deliver {
            id,
            received_at: now,
            payload: payload.clone(),
        }));
        let relay = self.relay.clone();
        let handle = self.handle.clone();
        let expires_at = now + u64::from(ttl_secs);
        let envelope = NewEnvelope { seq: 0, to, id, received_at: now, expires_at, payload, stranger: true };
        let done: crate::writer::Done = Box::new(move |result| {
            let frame = match result {
                Ok(WriteResult::Enqueued) => {
                    relay.metrics.envelopes_sent.fetch_add(1, Relaxed);
                    relay.metrics.envelopes_queued.fetch_add(1, Relaxed);
                    RelayFrame::Sent { id }
                }
                Ok(WriteResult::EnqueuedAndAcked) => {
                    relay.metrics.envelopes_sent.fetch_add(1, Relaxed);
                    relay.metrics.envelopes_acked.fetch_add(1, Relaxed);
                    RelayFrame::Sent { id }
                }
                Ok(WriteResult::Duplicate) => RelayFrame::Sent { id },
                Ok(WriteResult::MailboxFull) => {
                    error(ErrorCode::MailboxFull, "the recipient's mailbox is full", Some(id))
                }
                _ => error(ErrorCode::Internal, "the relay could not store this envelope; retry", Some(id)),
            };
            answer(&relay, &handle, &frame, permit);
        });
        // Admitted envelopes go to online recipients at once, without waiting for the disk,
        // pushed under the admission lock so that every connection sees them in sequence order.
        // If the commit then fails, the sender gets an error instead of `Sent` and resends; the
        // recipient drops the duplicate by id. The recipient's `Ack` is queued after this
        // envelope, so it finds it.
        let hub = &self.relay.hub;
        let metrics = &self.relay.metrics;
        let admission = self.relay.writer.enqueue(envelope, token_hash, done, |seq| {
            let pushed = hub.push(&to, Delivery { seq, frame: deliver });
            metrics.envelopes_pushed.fetch_add(pushed as u64, Relaxed);
        });
        if let Admission::Refused(refusal) = admission {
            let (code, msg) = match refusal {
                Refusal::UnknownMailbox => (ErrorCode::UnknownMailbox, "nobody has opened that mailbox"),
                Refusal::MailboxFull => (ErrorCode::MailboxFull, "the recipient's mailbox is full"),
                Refusal::StrangersFull => (
                    ErrorCode::MailboxFull,
                    "the recipient takes no more mail from senders it has not answered yet",
                ),
                Refusal::StoreFull => (ErrorCode::StoreFull, "the relay's storage is full; try again later"),
                Refusal::Unavailable => {
                    (ErrorCode::Internal, "the relay could not store this envelope; retry")
                }
            };
            return Some(error(code, msg, Some(id)));
        }
        None
    }

    /// Answers a send refused at admission. Its permit went back with the dropped callback; the
    /// answer takes a new one, so a client that floods refused sends and reads nothing is held
    /// back like any other (reading stops at `MAX_IN_FLIGHT` unanswered requests).
    async fn refuse(&self, frame: RelayFrame) {
        let permit = self.in_flight.clone().acquire_owned().await.ok();
        self.reply(frame, permit);
    }

    fn ack(&self, ids: Vec<MessageId>, permit: Option<OwnedSemaphorePermit>) {
        let Some(mailbox) = self.address else {
            return self
                .reply(error(ErrorCode::NotAuthenticated, "authenticate to read a mailbox", None), permit);
        };
        if ids.len() > MAX_ACK_IDS {
            let msg = format!("at most {MAX_ACK_IDS} ids per ack");
            return self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
        }
        // An ack has no answer.
        self.submit(Write::Ack { mailbox, ids }, permit, |relay, result| {
            if let Ok(WriteResult::Acked { removed, .. }) = result {
                relay.metrics.envelopes_acked.fetch_add(u64::from(removed), Relaxed);
                relay.metrics.envelopes_queued.fetch_sub(i64::from(removed), Relaxed);
            }
            None
        });
    }

    fn upload(
        &self,
        signed: sotto_shared::frames::SignedPrekey,
        one_time: Vec<sotto_shared::frames::OneTimePrekey>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(identity) = self.identity else {
            return self
                .reply(error(ErrorCode::NotAuthenticated, "authenticate to publish prekeys", None), permit);
        };
        if one_time.len() > MAX_PREKEYS_PER_UPLOAD {
            let msg = format!("at most {MAX_PREKEYS_PER_UPLOAD} one-time prekeys per upload");
            return self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
        }
        let mut ids: Vec<u32> = one_time.iter().map(|k| k.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            let msg = "an upload names the same one-time prekey id twice";
            return self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
        }
        let cost = IDENTITY_COST + one_time.len() as u64 * ONE_TIME_PREKEY_COST;
        if !self.relay.writer.has_room(cost) {
            let msg = "the relay's storage is full; try again later";
            return self.reply(error(ErrorCode::StoreFull, msg, None), permit);
        }
        if !verify(&identity.signing_key, &signed_prekey_message(signed.id, &signed.key), &signed.signature) {
            let msg = "the signed prekey's signature does not verify";
            return self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
        }
        self.submit(Write::PutPrekeys { identity, signed, one_time }, permit, |_, result| {
            Some(match result {
                Ok(WriteResult::PrekeysStored { one_time, .. }) => RelayFrame::PrekeysStored { one_time },
                Ok(WriteResult::NotRegistered) => not_registered(),
                Ok(WriteResult::TooManyPrekeys) => {
                    error(ErrorCode::InvalidRequest, "the relay keeps no more one-time prekeys for you", None)
                }
                _ => error(ErrorCode::Internal, "the relay could not store the prekeys; retry", None),
            })
        });
    }

    fn fetch_bundle(&self, address: Address, permit: Option<OwnedSemaphorePermit>) {
        if !self.relay.limits.bundle_allowed(self.ip) {
            let msg = "too many prekey bundles fetched; slow down";
            return self.reply(error(ErrorCode::RateLimited, msg, None), permit);
        }
        // Past the per-identity rate the bundle comes without a one-time prekey: X3DH still
        // works, and nobody can drain an identity's prekeys.
        let one_time = self.relay.limits.one_time_allowed(&address);
        self.submit(Write::TakeBundle { address, one_time }, permit, move |relay, result| {
            Some(match result {
                Ok(WriteResult::Bundle { bundle, remaining }) => {
                    if let Some(b) = &bundle {
                        relay.metrics.prekey_bundles.fetch_add(1, Relaxed);
                        if b.one_time_prekey.is_some()
                            && remaining < LOW_PREKEYS
                            && relay.limits.low_notice_due(&address)
                            && relay.hub.notify(&address, RelayFrame::PrekeysLow { remaining }) > 0
                        {
                            relay.limits.low_notice_sent(&address);
                        }
                    }
                    RelayFrame::Bundle { address, bundle }
                }
                _ => error(ErrorCode::Internal, "the relay could not read prekeys; retry", None),
            })
        });
    }
}

/// Strict Ed25519 verification.
fn verify(key: &[u8; 32], message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else { return false };
    key.verify_strict(message, &DalekSignature::from_bytes(&signature.0)).is_ok()
}

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

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
async fn write_loop<S>(relay: Arc<Relay>, mut sink: Sink<S>, handle: Arc<Handle>)
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
