//! A conversation with one contact: X3DH to start, the Double Ratchet after.
//!
//! The initiator attaches its X3DH header to every message until the first reply arrives (a
//! "prekey message"), so the responder can set up the session from whichever arrives first.
//!
//! Both people may start at once (each fetched the other's bundle). Then each holds two
//! sessions; both keep receiving on either, and both send on the one started by the identity
//! whose Ed25519 key sorts lower, so they converge without talking about it.

use crate::EngineError;
use crate::identity::Identity;
use crate::prekeys::Prekeys;
use crate::random::Entropy;
use crate::ratchet::{Ratchet, RatchetMessage};
use crate::x3dh::{self, X3dhHeader};
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, PrekeyBundle};

use crate::consts::MAX_SESSIONS;

/// What travels inside the sealed envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireMessage {
    PreKey { x3dh: X3dhHeader, message: RatchetMessage },
    Normal(RatchetMessage),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Session {
    ratchet: Ratchet,
    /// Ed25519 key of whoever started this session (tie-break for simultaneous starts).
    initiator: [u8; 32],
    /// The initiator's X3DH base key: identifies the session in prekey messages.
    base_key: [u8; 32],
    /// Sent with each message until the peer has answered (initiator only).
    pending: Option<X3dhHeader>,
}

/// Every session with one contact. Versioned when stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conversation {
    v: u8,
    remote: IdentityPublic,
    sessions: Vec<Session>,
}

impl Conversation {
    /// Starts a conversation from the contact's bundle (from the relay or an invite link).
    pub fn initiate(
        me: &Identity,
        bundle: &PrekeyBundle,
        entropy: &mut dyn Entropy,
    ) -> Result<Self, EngineError> {
        let mut c = Conversation { v: 1, remote: bundle.identity, sessions: Vec::new() };
        c.add_outbound(me, bundle, entropy)?;
        Ok(c)
    }

    /// Adds a fresh outbound session (e.g. to start over after a reset), keeping the others.
    pub fn add_outbound(
        &mut self,
        me: &Identity,
        bundle: &PrekeyBundle,
        entropy: &mut dyn Entropy,
    ) -> Result<(), EngineError> {
        if bundle.identity.signing_key != self.remote.signing_key {
            return Err(EngineError::IdentityMismatch);
        }
        let (agreement, header) = x3dh::initiate(me, bundle, entropy)?;
        let ratchet =
            Ratchet::init_initiator(&agreement.shared, agreement.ad, bundle.signed_prekey.key, entropy)?;
        self.push(Session {
            ratchet,
            initiator: header.identity.signing_key,
            base_key: header.base_key,
            pending: Some(header),
        });
        Ok(())
    }

    fn push(&mut self, s: Session) {
        self.sessions.insert(0, s);
        self.sessions.truncate(MAX_SESSIONS);
    }

    pub fn remote(&self) -> &IdentityPublic {
        &self.remote
    }

    /// Answers the first message of a conversation someone else started.
    pub fn respond(
        me: &Identity,
        prekeys: &mut Prekeys,
        sender: &IdentityPublic,
        message: &WireMessage,
        entropy: &mut dyn Entropy,
    ) -> Result<(Self, Vec<u8>), EngineError> {
        let mut c = Conversation { v: 1, remote: *sender, sessions: Vec::new() };
        let plaintext = c.decrypt(me, prekeys, sender, message, entropy)?;
        Ok((c, plaintext))
    }

    /// The session used for sending (see the module doc for the tie-break).
    fn sending_index(&self) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ratchet.can_send())
            .min_by_key(|(i, s)| (s.initiator, *i))
            .map(|(i, _)| i)
    }

    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<WireMessage, EngineError> {
        let i = self.sending_index().ok_or(EngineError::NoSession)?;
        let s = &mut self.sessions[i];
        let message = s.ratchet.encrypt(plaintext)?;
        Ok(match &s.pending {
            Some(x3dh) => WireMessage::PreKey { x3dh: x3dh.clone(), message },
            None => WireMessage::Normal(message),
        })
    }

    /// Decrypts a message from `sender` (already authenticated by the sealed envelope layer as
    /// the claimed identity; the ratchet's AD binds it again).
    pub fn decrypt(
        &mut self,
        me: &Identity,
        prekeys: &mut Prekeys,
        sender: &IdentityPublic,
        message: &WireMessage,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        if sender.signing_key != self.remote.signing_key {
            return Err(EngineError::IdentityMismatch);
        }
        match message {
            WireMessage::PreKey { x3dh: header, message } => {
                if header.identity != *sender {
                    return Err(EngineError::IdentityMismatch);
                }
                if let Some(s) = self.sessions.iter_mut().find(|s| s.base_key == header.base_key) {
                    let pt = s.ratchet.decrypt(message, entropy)?;
                    s.pending = None;
                    return Ok(pt);
                }
                let (agreement, spk) = x3dh::respond(me, prekeys, header)?;
                let mut ratchet = Ratchet::init_responder(&agreement.shared, agreement.ad, &spk);
                let pt = ratchet.decrypt(message, entropy)?;
                // Only a message that decrypted may use up the one-time prekey.
                if let Some(id) = header.one_time_prekey_id {
                    prekeys.consume_one_time(id);
                }
                self.push(Session {
                    ratchet,
                    initiator: header.identity.signing_key,
                    base_key: header.base_key,
                    pending: None,
                });
                Ok(pt)
            }
            WireMessage::Normal(m) => {
                // Try each session; a failure leaves each untouched. Report the most telling error.
                let mut last = EngineError::NoSession;
                for s in &mut self.sessions {
                    match s.ratchet.decrypt(m, entropy) {
                        Ok(pt) => {
                            s.pending = None;
                            return Ok(pt);
                        }
                        Err(e @ (EngineError::Duplicate | EngineError::TooManySkipped)) => last = e,
                        Err(e) if last == EngineError::NoSession => last = e,
                        Err(_) => {}
                    }
                }
                Err(last)
            }
        }
    }

    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(postcard::to_allocvec(self).unwrap_or_default())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let c: Conversation = postcard::from_bytes(bytes)?;
        if c.v != 1 {
            return Err(EngineError::UnsupportedVersion(c.v));
        }
        Ok(c)
    }
}
