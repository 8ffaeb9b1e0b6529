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

use crate::consts::{MAX_SESSIONS, SEEN_KEPT};
use crate::primitives::sha256;

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
    /// Never sends again: it came back from a backup, and the copy the backup was made from
    /// may have used its chains. It still receives.
    retired: bool,
    /// The latest messages it opened, to tell a redelivery (dropped quietly) from a different
    /// message under a number already used (a key used twice: reported).
    seen: Vec<Seen>,
}

/// A message a session opened: its ratchet key (first bytes), number and ciphertext digest.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Seen {
    dh: [u8; 8],
    n: u32,
    digest: [u8; 16],
}

impl Seen {
    fn of(m: &RatchetMessage) -> Seen {
        let mut dh = [0u8; 8];
        dh.copy_from_slice(&m.header.dh[..8]);
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&sha256(&[&m.ciphertext])[..16]);
        Seen { dh, n: m.header.n, digest }
    }
}

impl Session {
    /// Decrypts with this session's ratchet; a number already used for another message is
    /// `KeyReused`, not a duplicate.
    fn decrypt(&mut self, m: &RatchetMessage, entropy: &mut dyn Entropy) -> Result<Vec<u8>, EngineError> {
        let seen = Seen::of(m);
        match self.ratchet.decrypt(m, entropy) {
            Ok(pt) => {
                self.seen.push(seen);
                let excess = self.seen.len().saturating_sub(SEEN_KEPT);
                self.seen.drain(..excess);
                Ok(pt)
            }
            Err(EngineError::Duplicate)
                if self.seen.iter().any(|s| s.dh == seen.dh && s.n == seen.n && s.digest != seen.digest) =>
            {
                Err(EngineError::KeyReused)
            }
            Err(e) => Err(e),
        }
    }
}

/// A session as conversation version 2 stored it (before it kept what it had seen).
#[derive(Deserialize)]
struct SessionV2 {
    ratchet: Ratchet,
    initiator: [u8; 32],
    base_key: [u8; 32],
    pending: Option<X3dhHeader>,
    retired: bool,
}

#[derive(Deserialize)]
struct ConversationV2 {
    _v: u8,
    remote: IdentityPublic,
    sessions: Vec<SessionV2>,
}

impl From<SessionV2> for Session {
    fn from(s: SessionV2) -> Session {
        let SessionV2 { ratchet, initiator, base_key, pending, retired } = s;
        Session { ratchet, initiator, base_key, pending, retired, seen: Vec::new() }
    }
}

impl From<SessionV1> for SessionV2 {
    fn from(s: SessionV1) -> SessionV2 {
        let SessionV1 { ratchet, initiator, base_key, pending } = s;
        SessionV2 { ratchet, initiator, base_key, pending, retired: false }
    }
}

/// A session as conversation version 1 stored it (before sessions could be retired).
#[derive(Deserialize)]
struct SessionV1 {
    ratchet: Ratchet,
    initiator: [u8; 32],
    base_key: [u8; 32],
    pending: Option<X3dhHeader>,
}

#[derive(Deserialize)]
struct ConversationV1 {
    _v: u8,
    remote: IdentityPublic,
    sessions: Vec<SessionV1>,
}

/// 3: sessions keep what they have seen; 2: they carry `retired`.
const CONVERSATION_VERSION: u8 = 3;

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
        let mut c = Conversation { v: CONVERSATION_VERSION, remote: bundle.identity, sessions: Vec::new() };
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
            retired: false,
            seen: Vec::new(),
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
        let mut c = Conversation { v: CONVERSATION_VERSION, remote: *sender, sessions: Vec::new() };
        let plaintext = c.decrypt(me, prekeys, sender, message, entropy)?;
        Ok((c, plaintext))
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether any session can send.
    pub fn can_send(&self) -> bool {
        self.sending_index().is_some()
    }

    /// After a restore from a backup: none of the sessions sends again (a new one is started);
    /// they still receive.
    pub fn retire_sending(&mut self) {
        for s in &mut self.sessions {
            s.retired = true;
            s.pending = None;
        }
    }

    /// The peer restored from a backup and started the session with base key `base_key`:
    /// keep only that one, so both sides send on it (the others may be stale on the peer's
    /// side, which can no longer read them). A session of ours still waiting for its answer
    /// stays too: if both sides renewed at once, each keeps both new sessions and the tie-break
    /// makes them agree.
    pub fn keep_only(&mut self, base_key: &[u8; 32]) {
        if self.sessions.iter().any(|s| s.base_key == *base_key) {
            self.sessions.retain(|s| s.base_key == *base_key || (s.pending.is_some() && !s.retired));
        }
    }

    /// The session used for sending (see the module doc for the tie-break).
    fn sending_index(&self) -> Option<usize> {
        self.sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| s.ratchet.can_send() && !s.retired)
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
                    let pt = s.decrypt(message, entropy)?;
                    s.pending = None;
                    return Ok(pt);
                }
                let (agreement, spk) = x3dh::respond(me, prekeys, header)?;
                let mut ratchet = Ratchet::init_responder(&agreement.shared, agreement.ad, &spk);
                let pt = ratchet.decrypt(message, entropy)?;
                let seen = vec![Seen::of(message)];
                // Only a message that decrypted may use up the one-time prekey.
                if let Some(id) = header.one_time_prekey_id {
                    prekeys.consume_one_time(id);
                }
                self.push(Session {
                    ratchet,
                    initiator: header.identity.signing_key,
                    base_key: header.base_key,
                    pending: None,
                    retired: false,
                    seen,
                });
                Ok(pt)
            }
            WireMessage::Normal(m) => {
                // Try each session; a failure leaves each untouched. Report the most telling error.
                let mut last = EngineError::NoSession;
                for s in &mut self.sessions {
                    match s.decrypt(m, entropy) {
                        Ok(pt) => {
                            s.pending = None;
                            return Ok(pt);
                        }
                        Err(EngineError::KeyReused) => return Err(EngineError::KeyReused),
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
        crate::wipe::encode(&[], self, 0).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        match bytes.first() {
            Some(&CONVERSATION_VERSION) => Ok(postcard::from_bytes(bytes)?),
            Some(2) => {
                let old: ConversationV2 = postcard::from_bytes(bytes)?;
                let sessions = old.sessions.into_iter().map(Session::from).collect();
                Ok(Conversation { v: CONVERSATION_VERSION, remote: old.remote, sessions })
            }
            Some(1) => {
                let old: ConversationV1 = postcard::from_bytes(bytes)?;
                let sessions = old.sessions.into_iter().map(|s| Session::from(SessionV2::from(s))).collect();
                Ok(Conversation { v: CONVERSATION_VERSION, remote: old.remote, sessions })
            }
            Some(&v) => Err(EngineError::UnsupportedVersion(v)),
            None => Err(EngineError::BadEncoding("empty session record".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prekeys::Prekeys;
    use crate::random::SeededEntropy;
    use serde::Serialize;

    /// What version 1 wrote: the same sessions without `retired`.
    #[derive(Serialize)]
    struct SessionV1Form<'a> {
        ratchet: &'a Ratchet,
        initiator: [u8; 32],
        base_key: [u8; 32],
        pending: &'a Option<X3dhHeader>,
    }

    #[derive(Serialize)]
    struct ConversationV1Form<'a> {
        v: u8,
        remote: IdentityPublic,
        sessions: Vec<SessionV1Form<'a>>,
    }

    #[test]
    fn version_1_sessions_load_and_still_send() {
        let e = &mut SeededEntropy::new([3; 32]);
        let (alice, bob) = (Identity::generate_with(e).unwrap(), Identity::generate_with(e).unwrap());
        let mut prekeys = Prekeys::new(e).unwrap();
        let bundle = prekeys.invite_bundle(&bob, u64::MAX, e).unwrap();
        let c = Conversation::initiate(&alice, &bundle, e).unwrap();
        let old = ConversationV1Form {
            v: 1,
            remote: c.remote,
            sessions: c
                .sessions
                .iter()
                .map(|s| SessionV1Form {
                    ratchet: &s.ratchet,
                    initiator: s.initiator,
                    base_key: s.base_key,
                    pending: &s.pending,
                })
                .collect(),
        };
        let mut loaded = Conversation::from_bytes(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!(*loaded.to_bytes(), *c.to_bytes(), "the same state, now version 2");
        assert!(loaded.can_send());
        loaded.retire_sending();
        assert!(!loaded.can_send());
        let reopened = Conversation::from_bytes(&loaded.to_bytes()).unwrap();
        assert!(!reopened.can_send(), "retirement is stored");
        assert_eq!(Conversation::from_bytes(&[9]).err(), Some(EngineError::UnsupportedVersion(9)));
    }

    #[derive(Serialize)]
    struct SessionV2Form<'a> {
        ratchet: &'a Ratchet,
        initiator: [u8; 32],
        base_key: [u8; 32],
        pending: &'a Option<X3dhHeader>,
        retired: bool,
    }

    #[test]
    fn version_2_sessions_load() {
        let e = &mut SeededEntropy::new([5; 32]);
        let (alice, bob) = (Identity::generate_with(e).unwrap(), Identity::generate_with(e).unwrap());
        let mut prekeys = Prekeys::new(e).unwrap();
        let bundle = prekeys.invite_bundle(&bob, u64::MAX, e).unwrap();
        let mut c = Conversation::initiate(&alice, &bundle, e).unwrap();
        c.retire_sending();
        let sessions: Vec<SessionV2Form> = c
            .sessions
            .iter()
            .map(|s| SessionV2Form {
                ratchet: &s.ratchet,
                initiator: s.initiator,
                base_key: s.base_key,
                pending: &s.pending,
                retired: s.retired,
            })
            .collect();
        let bytes = postcard::to_allocvec(&(2u8, c.remote, sessions)).unwrap();
        let loaded = Conversation::from_bytes(&bytes).unwrap();
        assert_eq!(*loaded.to_bytes(), *c.to_bytes(), "the same state, now version 3");
        assert!(!loaded.can_send(), "still retired");
    }

    /// A redelivered message is a quiet duplicate; a different message under a number already
    /// used (a key used twice, as two running copies of one identity would) is reported.
    #[test]
    fn a_key_used_twice_is_reported_not_dropped_as_a_duplicate() {
        let e = &mut SeededEntropy::new([4; 32]);
        let (alice, bob) = (Identity::generate_with(e).unwrap(), Identity::generate_with(e).unwrap());
        let mut prekeys = Prekeys::new(e).unwrap();
        let bundle = prekeys.invite_bundle(&alice, u64::MAX, e).unwrap();
        let mut from_bob = Conversation::initiate(&bob, &bundle, e).unwrap();
        let first = from_bob.encrypt(b"hello").unwrap();
        let (mut at_alice, _) =
            Conversation::respond(&alice, &mut prekeys, &bob.public(), &first, e).unwrap();
        // Bob's state copied (a second running copy), then both send their next message.
        let mut copy = from_bob.clone();
        let one = from_bob.encrypt(b"one").unwrap();
        let other = copy.encrypt(b"another").unwrap();
        assert_eq!(at_alice.decrypt(&alice, &mut prekeys, &bob.public(), &one, e).unwrap(), b"one");
        assert_eq!(
            at_alice.decrypt(&alice, &mut prekeys, &bob.public(), &one, e),
            Err(EngineError::Duplicate)
        );
        assert_eq!(
            at_alice.decrypt(&alice, &mut prekeys, &bob.public(), &other, e),
            Err(EngineError::KeyReused)
        );
        // What it remembers is stored, and bounded.
        let reopened = Conversation::from_bytes(&at_alice.to_bytes()).unwrap();
        assert_eq!(reopened.sessions[0].seen.len(), 2);
    }
}
