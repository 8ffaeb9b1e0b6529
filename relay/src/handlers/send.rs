//! `Send` and `SendAsContact`: admission, the push to an online recipient and the durable
//! answer; `SendLive`: a contact's envelope for an online recipient only, never stored.

use crate::hub::Delivery;
use crate::session::{Session, answer, error};
use crate::state::unix_now;
use crate::store::{NewEnvelope, WriteResult};
use crate::writer::{Admission, Refusal};
use bytes::Bytes;
use sotto_shared::frames::delivery_token_hash;
use sotto_shared::limits::{MAX_ENVELOPE_BYTES, MAX_LIVE_BYTES, MAX_TTL_SECS};
use sotto_shared::{Address, ErrorCode, MessageId, RelayFrame, encode_relay};
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

impl Session {
    /// The hash of a presented delivery token; a sender usually presents the same one again
    /// and again, so the last is remembered.
    pub(crate) fn token_hash(&mut self, token: [u8; 32]) -> [u8; 32] {
        match self.last_token {
            Some((t, h)) if t == token => h,
            _ => {
                let h = delivery_token_hash(&token);
                self.last_token = Some((token, h));
                h
            }
        }
    }

    /// Passes a contact's envelope to `to`'s open connections, or drops it: never stored, never
    /// answered (but for a malformed one), so it says nothing about whether `to` is online.
    pub(crate) fn send_live(
        &mut self,
        to: Address,
        token: [u8; 32],
        payload: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        if payload.len() > MAX_LIVE_BYTES {
            let msg = format!("a live envelope of {} bytes exceeds {MAX_LIVE_BYTES}", payload.len());
            self.reply(error(ErrorCode::TooLarge, msg, None), permit);
            return;
        }
        let hash = self.token_hash(token);
        if !self.relay.limits.ip_allows_bytes(self.ip, payload.len())
            || self.relay.writer.delivery_token_hash(&to) != Some(hash)
        {
            return;
        }
        self.relay.hub.notify(&to, RelayFrame::Live { payload });
    }

    /// `token_hash`: the hash of the delivery token the sender presented, if any. Returns the
    /// answer to a send refused at admission, for `refuse`.
    pub(crate) fn send(
        &self,
        id: MessageId,
        to: Address,
        ttl_secs: u32,
        token_hash: Option<[u8; 32]>,
        payload: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Option<RelayFrame> {
        // Which connection sent to which mailbox: what the relay can know, in debug logs only.
        // The test that sends are anonymous reads these lines.
        debug!(conn = self.handle.id, ?to, "send");
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
}
