//! The Double Ratchet, as in Signal's specification (revision 4), with:
//! - KDF_RK: HKDF-SHA256(salt = root key, ikm = DH output, info = "sotto-ratchet-root-v1") → 64
//!   bytes: new root key || chain key;
//! - KDF_CK: message key = HMAC-SHA256(ck, 0x01), next chain key = HMAC-SHA256(ck, 0x02);
//! - ENCRYPT: key || nonce = HKDF-SHA256(salt = 0×32, ikm = message key,
//!   info = "sotto-message-keys-v1") (32 + 12 bytes), ChaCha20-Poly1305 with
//!   AD = session AD || encoded header.
//!
//! Bounds (see docs/protocol.md): a message may skip at most [`MAX_SKIP`] keys of one chain;
//! at most [`MAX_STORED_SKIPPED`] skipped keys are kept, oldest evicted first; the last
//! [`PREVIOUS_CHAINS`] remote ratchet keys are remembered to recognise replays of old chains.
//! A failed decryption leaves the state exactly as it was.

use crate::EngineError;
use crate::primitives::{hkdf_sha256, hmac_sha256, open, seal, x25519, x25519_public};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

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
    key: [u8; 32],
}

/// One side of a Double Ratchet session. Serializable (the session layer versions it).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Ratchet {
    ad: Vec<u8>,
    root: [u8; 32],
    dhs_secret: [u8; 32],
    dhs_public: [u8; 32],
    dhr: Option<[u8; 32]>,
    cks: Option<[u8; 32]>,
    ckr: Option<[u8; 32]>,
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

fn kdf_rk(root: &[u8; 32], dh_out: &[u8; 32]) -> Result<([u8; 32], [u8; 32]), EngineError> {
    let mut out = Zeroizing::new([0u8; 64]);
    hkdf_sha256(root, dh_out, b"sotto-ratchet-root-v1", &mut out[..])?;
    let (mut rk, mut ck) = ([0u8; 32], [0u8; 32]);
    rk.copy_from_slice(&out[..32]);
    ck.copy_from_slice(&out[32..]);
    Ok((rk, ck))
}

fn kdf_ck(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac_sha256(ck, &[0x02]), hmac_sha256(ck, &[0x01]))
}

fn message_keys(mk: &[u8; 32]) -> Result<Zeroizing<[u8; 44]>, EngineError> {
    let mut out = Zeroizing::new([0u8; 44]);
    hkdf_sha256(&[0u8; 32], mk, b"sotto-message-keys-v1", &mut out[..])?;
    Ok(out)
}

fn split(keys: &[u8; 44]) -> ([u8; 32], [u8; 12]) {
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&keys[..32]);
    nonce.copy_from_slice(&keys[32..]);
    (key, nonce)
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
        let (root, cks) = kdf_rk(shared, &*x25519(&secret, &remote_ratchet_key)?)?;
        Ok(Self::with(ad, root, dhs_secret, Some(remote_ratchet_key), Some(cks)))
    }

    /// The responder (Bob): knows SK and its own signed prekey pair.
    pub fn init_responder(shared: &[u8; 32], ad: Vec<u8>, signed_prekey: &StaticSecret) -> Self {
        Self::with(ad, *shared, signed_prekey.to_bytes(), None, None)
    }

    fn with(
        ad: Vec<u8>,
        root: [u8; 32],
        dhs_secret: [u8; 32],
        dhr: Option<[u8; 32]>,
        cks: Option<[u8; 32]>,
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
        let (next, mut mk) = kdf_ck(ck);
        *ck = next;
        let header = Header { dh: self.dhs_public, pn: self.pn, n: self.ns };
        self.ns = self.ns.checked_add(1).ok_or(EngineError::Internal("sending chain exhausted"))?;
        let keys = message_keys(&mk)?;
        mk.zeroize();
        let (mut key, nonce) = split(&keys);
        let aad = [self.ad.as_slice(), &header.encode()].concat();
        let ciphertext = seal(&key, &nonce, &aad, plaintext);
        key.zeroize();
        Ok(RatchetMessage { header, ciphertext: ciphertext? })
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
            let key = self.skipped.remove(i);
            return self.open_with(&key.key, message);
        }
        if self.dhr != Some(h.dh) {
            if self.previous_dhr.contains(&h.dh) {
                // An old chain whose key for this number is gone: used before, or evicted.
                return Err(EngineError::Duplicate);
            }
            self.skip_until(h.pn)?;
            self.dh_step(&h, entropy)?;
        }
        if h.n < self.nr {
            return Err(EngineError::Duplicate);
        }
        self.skip_until(h.n)?;
        let ck = self.ckr.as_mut().ok_or(EngineError::Tampered)?;
        let (next, mk) = kdf_ck(ck);
        *ck = next;
        self.nr += 1;
        let result = self.open_with(&mk, message);
        let mut mk = mk;
        mk.zeroize();
        result
    }

    fn open_with(&self, mk: &[u8; 32], message: &RatchetMessage) -> Result<Vec<u8>, EngineError> {
        let keys = message_keys(mk)?;
        let (mut key, nonce) = split(&keys);
        let aad = [self.ad.as_slice(), &message.header.encode()].concat();
        let result = open(&key, &nonce, &aad, &message.ciphertext);
        key.zeroize();
        result
    }

    fn skip_until(&mut self, until: u32) -> Result<(), EngineError> {
        let (Some(mut ck), Some(dh)) = (self.ckr, self.dhr) else { return Ok(()) };
        if until > self.nr.saturating_add(MAX_SKIP) {
            return Err(EngineError::TooManySkipped);
        }
        while self.nr < until {
            let (next, key) = kdf_ck(&ck);
            ck = next;
            self.skipped.push(Skipped { dh, n: self.nr, key });
            self.nr += 1;
        }
        if self.skipped.len() > MAX_STORED_SKIPPED {
            let excess = self.skipped.len() - MAX_STORED_SKIPPED;
            self.skipped.drain(..excess);
        }
        self.ckr = Some(ck);
        ck.zeroize();
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
        let (root, ckr) = kdf_rk(&self.root, &*x25519(&StaticSecret::from(self.dhs_secret), &h.dh)?)?;
        self.dhs_secret = entropy.bytes32()?;
        let secret = StaticSecret::from(self.dhs_secret);
        self.dhs_public = x25519_public(&secret);
        let (root, cks) = kdf_rk(&root, &*x25519(&secret, &h.dh)?)?;
        self.root = root;
        self.ckr = Some(ckr);
        self.cks = Some(cks);
        Ok(())
    }
}
