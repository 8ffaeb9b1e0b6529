//! `UploadPrekeys` and `FetchBundle`: the keys others start a session with.

use crate::session::{Session, error, not_registered, verify};
use crate::state::LOW_PREKEYS;
use crate::store::{Write, WriteResult};
use crate::writer::{IDENTITY_COST, ONE_TIME_PREKEY_COST};
use sotto_shared::frames::signed_prekey_message;
use sotto_shared::limits::MAX_PREKEYS_PER_UPLOAD;
use sotto_shared::{Address, ErrorCode, RelayFrame};
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

impl Session {
    pub(crate) fn upload(
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
        let now = crate::state::unix_now();
        self.submit(Write::PutPrekeys { identity, signed, one_time, now }, permit, |_, result| {
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

    pub(crate) fn fetch_bundle(&self, address: Address, permit: Option<OwnedSemaphorePermit>) {
        debug!(conn = self.handle.id, ?address, "bundle fetch");
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
