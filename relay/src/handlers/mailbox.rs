//! What the owner does with its mailbox: acknowledge what it stored (`Ack`) and publish the
//! hash of the token its contacts present (`PublishDeliveryToken`).

use crate::session::{Session, error, not_registered};
use crate::store::{Write, WriteResult};
use sotto_shared::limits::MAX_ACK_IDS;
use sotto_shared::{ErrorCode, MessageId, RelayFrame};
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::OwnedSemaphorePermit;

impl Session {
    pub(crate) fn publish_token(&self, hash: [u8; 32], permit: Option<OwnedSemaphorePermit>) {
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

    pub(crate) fn ack(&self, ids: Vec<MessageId>, permit: Option<OwnedSemaphorePermit>) {
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
}
