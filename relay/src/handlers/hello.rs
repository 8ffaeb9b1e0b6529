//! `Hello` (a challenge to sign) and `Ping`, the two frames a connection may send before it
//! logs in.

use crate::session::{Session, error};
use sotto_shared::codec::WIRE_VERSION;
use sotto_shared::{ErrorCode, RelayFrame};
use tokio::sync::OwnedSemaphorePermit;
use tracing::warn;

impl Session {
    /// `false` ends the connection.
    pub(crate) fn hello(&mut self, permit: Option<OwnedSemaphorePermit>) -> bool {
        if self.challenge.is_some() || self.address.is_some() {
            self.reply(error(ErrorCode::Unexpected, "hello was already sent", None), permit);
            return true;
        }
        let mut challenge = [0u8; 32];
        if getrandom::fill(&mut challenge).is_err() {
            warn!("no randomness for a challenge");
            self.reply(error(ErrorCode::Internal, "relay has no randomness", None), permit);
            return false;
        }
        self.challenge = Some(challenge);
        let relay = concat!("sotto-relay/", env!("CARGO_PKG_VERSION")).to_string();
        self.reply(RelayFrame::Welcome { version: WIRE_VERSION, relay, challenge }, permit);
        true
    }

    pub(crate) fn ping(&self, nonce: u64, permit: Option<OwnedSemaphorePermit>) {
        self.reply(RelayFrame::Pong { nonce }, permit);
    }
}
