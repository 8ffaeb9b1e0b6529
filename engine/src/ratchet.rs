//! The Double Ratchet, as in Signal's specification (revision 4), with:
//! - KDF_RK: HKDF-SHA256(salt = root key, ikm = DH output, info = "sotto-ratchet-root-v1") → 64
//!   bytes: new root key || chain key;
//! - KDF_CK: message key = HMAC-SHA256(ck, 0x01), next chain key = HMAC-SHA256(ck, 0x02);
//! - ENCRYPT: key || nonce = HKDF-SHA256(salt = 0×32, ikm = message key,
//!   info = "sotto-message-keys-v1") (32 + 12 bytes), ChaCha20-Poly1305 with
//!   AD = session AD || encoded header.
//!
//! Each key is its own type (`keys`: [`RootKey`], [`ChainKey`], [`MessageKey`]) carrying the
//! one derivation it takes part in.
//!
//! Bounds (see docs/protocol.md): a message may skip at most [`MAX_SKIP`] keys in all;
//! at most [`MAX_STORED_SKIPPED`] skipped keys are kept, oldest evicted first; the last
//! [`PREVIOUS_CHAINS`] remote ratchet keys are remembered to recognise replays of old chains.
//! A failed decryption leaves the state exactly as it was.

mod keys;

use crate::EngineError;
use crate::primitives::{x25519, x25519_public};
use crate::random::Entropy;
use keys::{ChainKey, MessageKey, RootKey};
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::consts::{MAX_SKIP, MAX_STORED_SKIPPED, PREVIOUS_CHAINS};

/// The ratchet header, sent in the clear (authenticated as associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub dh: [u8; 32],
    /// Messages in the sender's previous sending chain.
    pub pn: u32,
    /// This message's number in its chain.
    pub n: u32,
}

impl Header {
    /// Fixed 40-byte encoding used as associated data: dh || pn (BE) || n (BE).
    pub fn encode(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[..32].copy_from_slice(&self.dh);
        out[32..36].copy_from_slice(&self.pn.to_be_bytes());
        out[36..].copy_from_slice(&self.n.to_be_bytes());
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatchetMessage {
    pub header: Header,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Skipped {
    dh: [u8; 32],
    n: u32,
    key: MessageKey,
}

/// One side of a Double Ratchet session. Serializable (the session layer versions it).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Ratchet {
    ad: Vec<u8>,
    root: RootKey,
    dhs_secret: [u8; 32],
    dhs_public: [u8; 32],
    dhr: Option<[u8; 32]>,
    cks: Option<ChainKey>,
    ckr: Option<ChainKey>,
    ns: u32,
    nr: u32,
    pn: u32,
    /// Oldest first.
    skipped: Vec<Skipped>,
    previous_dhr: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Ratchet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Ratchet {{ ns: {}, nr: {}, pn: {}, skipped: {} }}",
            self.ns,
            self.nr,
            self.pn,
            self.skipped.len()
        )
    }
}

impl Ratchet {
    /// The initiator (Alice): knows SK and the responder's signed prekey.
    pub fn init_initiator(
        shared: &[u8; 32],
        ad: Vec<u8>,
        remote_ratchet_key: [u8; 32],
        entropy: &mut dyn Entropy,
    ) -> Result<Self, EngineError> {
        let dhs_secret = entropy.bytes32()?;
        let secret = StaticSecret::from(dhs_secret);
        let (root, cks) = RootKey::new(*shared).advance(&*x25519(&secret, &remote_ratchet_key)?)?;
        Ok(Self::with(ad, root, dhs_secret, Some(remote_ratchet_key), Some(cks)))
    }

    /// The responder (Bob): knows SK and its own signed prekey pair.
    pub fn init_responder(shared: &[u8; 32], ad: Vec<u8>, signed_prekey: &StaticSecret) -> Self {
        Self::with(ad, RootKey::new(*shared), signed_prekey.to_bytes(), None, None)
    }

    fn with(
        ad: Vec<u8>,
        root: RootKey,
        dhs_secret: [u8; 32],
        dhr: Option<[u8; 32]>,
        cks: Option<ChainKey>,
    ) -> Self {
        Ratchet {
            ad,
            root,
            dhs_public: x25519_public(&StaticSecret::from(dhs_secret)),
            dhs_secret,
            dhr,
            cks,
            ckr: None,
            ns: 0,
            nr: 0,
            pn: 0,
            skipped: Vec::new(),
            previous_dhr: Vec::new(),
        }
    }

    pub fn can_send(&self) -> bool {
        self.cks.is_some()
    }

    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<RatchetMessage, EngineError> {
        let ck = self.cks.as_mut().ok_or(EngineError::NoSession)?;
        let (next, mk) = ck.step();
        *ck = next;
        let header = Header { dh: self.dhs_public, pn: self.pn, n: self.ns };
        self.ns = self.ns.checked_add(1).ok_or(EngineError::Internal("sending chain exhausted"))?;
        let aad = [self.ad.as_slice(), &header.encode()].concat();
        Ok(RatchetMessage { header, ciphertext: mk.seal(&aad, plaintext)? })
    }

    /// Decrypts, or fails leaving the state untouched.
    pub fn decrypt(
        &mut self,
        message: &RatchetMessage,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        let mut next = self.clone();
        let plaintext = next.decrypt_in_place(message, entropy)?;
        *self = next;
        Ok(plaintext)
    }

    fn decrypt_in_place(
        &mut self,
        message: &RatchetMessage,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        let h = message.header;
        if let Some(i) = self.skipped.iter().position(|s| s.dh == h.dh && s.n == h.n) {
            let skipped = self.skipped.remove(i);
            return self.open_with(&skipped.key, message);
        }
        // One budget for the whole message: the rest of the old chain and the new one together.
        let mut budget = MAX_SKIP;
        if self.dhr != Some(h.dh) {
            if self.previous_dhr.contains(&h.dh) {
                // An old chain whose key for this number is gone: used before, or evicted.
                return Err(EngineError::Duplicate);
            }
            self.skip_until(h.pn, &mut budget)?;
            self.dh_step(&h, entropy)?;
        }
        if h.n < self.nr {
            return Err(EngineError::Duplicate);
        }
        self.skip_until(h.n, &mut budget)?;
        let ck = self.ckr.as_mut().ok_or(EngineError::Tampered)?;
        let (next, mk) = ck.step();
        *ck = next;
        self.nr += 1;
        self.open_with(&mk, message)
    }

    fn open_with(&self, mk: &MessageKey, message: &RatchetMessage) -> Result<Vec<u8>, EngineError> {
        let aad = [self.ad.as_slice(), &message.header.encode()].concat();
        mk.open(&aad, &message.ciphertext)
    }

    /// Derives and keeps the keys of the current receiving chain up to `until`, spending
    /// `budget`.
    fn skip_until(&mut self, until: u32, budget: &mut u32) -> Result<(), EngineError> {
        let (Some(ck), Some(dh)) = (self.ckr.as_mut(), self.dhr) else { return Ok(()) };
        let skipping = until.saturating_sub(self.nr);
        *budget = budget.checked_sub(skipping).ok_or(EngineError::TooManySkipped)?;
        while self.nr < until {
            let (next, key) = ck.step();
            *ck = next;
            self.skipped.push(Skipped { dh, n: self.nr, key });
            self.nr += 1;
        }
        if self.skipped.len() > MAX_STORED_SKIPPED {
            let excess = self.skipped.len() - MAX_STORED_SKIPPED;
            self.skipped.drain(..excess);
        }
        Ok(())
    }

    fn dh_step(&mut self, h: &Header, entropy: &mut dyn Entropy) -> Result<(), EngineError> {
        if let Some(old) = self.dhr {
            self.previous_dhr.push(old);
            if self.previous_dhr.len() > PREVIOUS_CHAINS {
                self.previous_dhr.remove(0);
            }
        }
        self.pn = self.ns;
        self.ns = 0;
        self.nr = 0;
        self.dhr = Some(h.dh);
        let (root, ckr) = self.root.advance(&*x25519(&StaticSecret::from(self.dhs_secret), &h.dh)?)?;
        self.dhs_secret = entropy.bytes32()?;
        let secret = StaticSecret::from(self.dhs_secret);
        self.dhs_public = x25519_public(&secret);
        let (root, cks) = root.advance(&*x25519(&secret, &h.dh)?)?;
        self.root = root;
        self.ckr = Some(ckr);
        self.cks = Some(cks);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn pair() -> (Ratchet, Ratchet, SeededEntropy) {
        let mut e = SeededEntropy::new([5; 32]);
        let bob_prekey = StaticSecret::from(e.bytes32().unwrap());
        let bob_public = x25519_public(&bob_prekey);
        let alice = Ratchet::init_initiator(&[9; 32], b"ad".to_vec(), bob_public, &mut e).unwrap();
        let bob = Ratchet::init_responder(&[9; 32], b"ad".to_vec(), &bob_prekey);
        (alice, bob, e)
    }

    /// The skip budget covers a whole message: the rest of the sender's previous chain and
    /// its new one together (each alone within the budget once was accepted, costing the
    /// receiver twice the work).
    #[test]
    fn one_message_skips_at_most_max_skip_keys_in_all() {
        let (mut alice, mut bob, mut e) = pair();
        let first = alice.encrypt(b"hello").unwrap();
        bob.decrypt(&first, &mut e).unwrap();
        let half = MAX_SKIP * 3 / 4;
        for _ in 0..half {
            alice.encrypt(b"lost on the old chain").unwrap();
        }
        let reply = bob.encrypt(b"reply").unwrap();
        alice.decrypt(&reply, &mut e).unwrap();
        for _ in 0..half {
            alice.encrypt(b"lost on the new chain").unwrap();
        }
        let far = alice.encrypt(b"far ahead").unwrap();
        assert_eq!((far.header.pn, far.header.n), (half + 1, half));
        let before = format!("{bob:?}");
        assert_eq!(bob.decrypt(&far, &mut e), Err(EngineError::TooManySkipped));
        assert_eq!(format!("{bob:?}"), before, "a refused message changes nothing");

        // Within the budget in all, the same shape is read.
        let (mut alice, mut bob, mut e) = pair();
        bob.decrypt(&alice.encrypt(b"hello").unwrap(), &mut e).unwrap();
        let quarter = MAX_SKIP / 4;
        for _ in 0..quarter {
            alice.encrypt(b"lost").unwrap();
        }
        alice.decrypt(&bob.encrypt(b"reply").unwrap(), &mut e).unwrap();
        for _ in 0..quarter {
            alice.encrypt(b"lost").unwrap();
        }
        assert_eq!(bob.decrypt(&alice.encrypt(b"read").unwrap(), &mut e).unwrap(), b"read");
    }
}
