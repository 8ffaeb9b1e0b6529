//! One connection's state once its socket is open, and the one way a handler answers: a reply
//! now, or a write whose durable result becomes the reply (`submit`). The handlers of each
//! frame kind (`handlers/`) add their methods to [`Session`].

use crate::hub::{Control, Handle};
use crate::limits::ConnectionRate;
use crate::state::Relay;
use crate::store::{TopicKey, Write, WriteResult};
use bytes::Bytes;
use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use foldhash::{HashSet, HashSetExt};
use sotto_shared::frames::{IdentityPublic, Signature};
use sotto_shared::{Address, ErrorCode, MessageId, RelayFrame, encode_relay};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests one connection may have in progress; past this the relay stops reading from it,
/// which pushes back on the client through TCP instead of buffering.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;

pub(crate) struct Session {
    pub(crate) relay: Arc<Relay>,
    pub(crate) origin: String,
    pub(crate) ip: IpAddr,
    /// Where replies go: the connection's outbox, written by its writer task.
    pub(crate) handle: Arc<Handle>,
    pub(crate) challenge: Option<[u8; 32]>,
    pub(crate) identity: Option<IdentityPublic>,
    pub(crate) address: Option<Address>,
    pub(crate) rate: ConnectionRate,
    /// Bounds the requests in progress; all permits back means every request was answered.
    pub(crate) in_flight: Arc<Semaphore>,
    /// The last delivery token presented and its hash.
    pub(crate) last_token: Option<([u8; 32], [u8; 32])>,
    /// Topics this connection reads.
    pub(crate) topics: HashSet<TopicKey>,
    /// It has read or written a topic, so it may never log in.
    pub(crate) uses_topics: bool,
}

impl Session {
    pub(crate) fn new(relay: Arc<Relay>, origin: String, ip: IpAddr, handle: Arc<Handle>) -> Session {
        Session {
            rate: relay.limits.connection_rate(),
            relay,
            origin,
            ip,
            handle,
            challenge: None,
            identity: None,
            address: None,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            last_token: None,
            topics: HashSet::new(),
            uses_topics: false,
        }
    }

    pub(crate) fn reply(&self, frame: RelayFrame, permit: Option<OwnedSemaphorePermit>) {
        answer(&self.relay, &self.handle, &frame, permit);
    }

    /// Queues a write; once it is durable (or failed), `answer_for` turns the result into the
    /// reply, if any. The permit is held until then, so the request counts as in progress.
    pub(crate) fn submit(
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

    /// Answers a send refused at admission. Its permit went back with the dropped callback; the
    /// answer takes a new one, so a client that floods refused sends and reads nothing is held
    /// back like any other (reading stops at `MAX_IN_FLIGHT` unanswered requests).
    pub(crate) async fn refuse(&self, frame: RelayFrame) {
        let permit = self.in_flight.clone().acquire_owned().await.ok();
        self.reply(frame, permit);
    }
}

pub(crate) fn reply(frame: &RelayFrame, permit: Option<OwnedSemaphorePermit>) -> Control {
    Control::Frame(Bytes::from(encode_relay(frame)), permit)
}

/// Queues a reply on the connection, counting error frames in the metrics.
pub(crate) fn answer(
    relay: &Relay,
    handle: &Handle,
    frame: &RelayFrame,
    permit: Option<OwnedSemaphorePermit>,
) {
    if let RelayFrame::Error { code, .. } = frame {
        relay.metrics.error(*code);
    }
    handle.control(reply(frame, permit));
}

/// The answer when a login could not open the mailbox (too many new ones from one address, or
/// the storage budget), so nothing may be stored for it yet.
pub(crate) fn not_registered() -> RelayFrame {
    let msg = "this mailbox is not open yet (too many new mailboxes from your address, or the relay is full); log in again later";
    error(ErrorCode::RateLimited, msg, None)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n.max(1))
}

pub(crate) fn error(code: ErrorCode, message: impl Into<String>, id: Option<MessageId>) -> RelayFrame {
    RelayFrame::Error { code, message: message.into(), id }
}

/// Strict Ed25519 verification.
pub(crate) fn verify(key: &[u8; 32], message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else { return false };
    key.verify_strict(message, &DalekSignature::from_bytes(&signature.0)).is_ok()
}
