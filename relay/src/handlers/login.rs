//! `Authenticate`: the signed answer to the challenge opens (and on first sight registers) the
//! identity's mailbox.

use crate::session::{Session, error, verify};
use crate::state::LOW_PREKEYS;
use crate::store::Write;
use crate::writer::IDENTITY_COST;
use sotto_shared::frames::{IdentityPublic, Signature, auth_message, identity_dh_message};
use sotto_shared::{Address, ErrorCode, MessageId, RelayFrame};
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

impl Session {
    pub(crate) async fn authenticate(
        &mut self,
        identity: IdentityPublic,
        signature: Signature,
        permit: Option<OwnedSemaphorePermit>,
    ) -> bool {
        if self.address.is_some() {
            self.reply(error(ErrorCode::Unexpected, "already authenticated", None), permit);
            return true;
        }
        if self.uses_topics {
            // Logging in here would tie this identity to the groups this connection reads.
            let msg = "this connection reads or writes topics; log in on another one";
            self.reply(error(ErrorCode::Unexpected, msg, None), permit);
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
        debug!(conn = self.handle.id, ?address, "authenticated");
        true
    }
}
