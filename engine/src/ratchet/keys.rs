//! The ratchet's keys, each its own type, so that a root key is never used as a chain key or a
//! message key as either: only the step the specification defines turns one into the next.
//! They serialize as their 32 bytes (the stored session format is unchanged), zeroize on drop
//! and never print.

use crate::EngineError;
use crate::primitives::{hkdf_sha256, hmac_sha256, open, seal};
use serde::{Deserialize, Serialize};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

macro_rules! secret_debug {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($t), "(..)"))
            }
        }
    };
}

/// The root key: mixed with each DH output into the next root key and a chain key.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct RootKey([u8; 32]);
secret_debug!(RootKey);

impl RootKey {
    /// The shared secret the handshake agreed on is the first root key.
    pub fn new(shared: [u8; 32]) -> RootKey {
        RootKey(shared)
    }

    /// KDF_RK: HKDF-SHA256(salt = root key, ikm = DH output, info = "sotto-ratchet-root-v1"),
    /// 64 bytes: the new root key, then the new chain key.
    pub fn advance(&self, dh_out: &[u8; 32]) -> Result<(RootKey, ChainKey), EngineError> {
        let mut out = Zeroizing::new([0u8; 64]);
        hkdf_sha256(&self.0, dh_out, b"sotto-ratchet-root-v1", &mut out[..])?;
        let (mut root, mut chain) = ([0u8; 32], [0u8; 32]);
        root.copy_from_slice(&out[..32]);
        chain.copy_from_slice(&out[32..]);
        Ok((RootKey(root), ChainKey(chain)))
    }
}

/// A sending or receiving chain key.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct ChainKey([u8; 32]);
secret_debug!(ChainKey);

impl ChainKey {
    /// KDF_CK: the next chain key is HMAC-SHA256(ck, 0x02), this step's message key
    /// HMAC-SHA256(ck, 0x01).
    pub fn step(&self) -> (ChainKey, MessageKey) {
        (ChainKey(hmac_sha256(&self.0, &[0x02])), MessageKey(hmac_sha256(&self.0, &[0x01])))
    }
}

/// The key of one message; used once, then dropped (or kept as a skipped key until used).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct MessageKey([u8; 32]);
secret_debug!(MessageKey);

impl MessageKey {
    /// ChaCha20-Poly1305 key and nonce: HKDF-SHA256(salt = 32 zero bytes, ikm = message key,
    /// info = "sotto-message-keys-v1"), 32 + 12 bytes.
    fn aead(&self) -> Result<(Zeroizing<[u8; 32]>, [u8; 12]), EngineError> {
        let mut out = Zeroizing::new([0u8; 44]);
        hkdf_sha256(&[0u8; 32], &self.0, b"sotto-message-keys-v1", &mut out[..])?;
        let (mut key, mut nonce) = (Zeroizing::new([0u8; 32]), [0u8; 12]);
        key.copy_from_slice(&out[..32]);
        nonce.copy_from_slice(&out[32..]);
        Ok((key, nonce))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EngineError> {
        let (key, nonce) = self.aead()?;
        seal(&key, &nonce, aad, plaintext)
    }

    pub fn open(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, EngineError> {
        let (key, nonce) = self.aead()?;
        open(&key, &nonce, aad, ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print_and_serialize_as_their_bytes() {
        let root = RootKey::new([7; 32]);
        let (next, chain) = root.advance(&[9; 32]).unwrap();
        let (_, message) = chain.step();
        for shown in [format!("{root:?}"), format!("{next:?}"), format!("{chain:?}"), format!("{message:?}")]
        {
            assert!(!shown.contains('7') && !shown.contains("9,") && shown.ends_with("(..)"), "{shown}");
        }
        let bytes = postcard::to_allocvec(&root).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&[7u8; 32]).unwrap(), "the stored format is the bytes");
        let back: RootKey = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.0, [7; 32]);
    }

    #[test]
    fn a_message_key_opens_what_it_sealed_and_nothing_else() {
        let (_, chain) = RootKey::new([1; 32]).advance(&[2; 32]).unwrap();
        let (chain2, mk) = chain.step();
        let sealed = mk.seal(b"ad", b"hello").unwrap();
        assert_eq!(mk.open(b"ad", &sealed).unwrap(), b"hello");
        assert!(mk.open(b"other ad", &sealed).is_err());
        let (_, mk2) = chain2.step();
        assert!(mk2.open(b"ad", &sealed).is_err(), "the next key is another key");
    }
}
