//! The only place raw primitives are called. Everything else in the engine goes through these
//! small wrappers, which are checked against published vectors (tests/vectors.rs).

use crate::EngineError;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// Ed25519 (RFC 8032): the signature of `message` by the key made from `seed`.
pub fn ed25519_sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed).sign(message).to_bytes()
}

/// The Ed25519 public key of the key made from `seed`.
pub fn ed25519_public(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// HKDF-SHA256 (RFC 5869): extract with `salt`, expand `info` into `out`.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), EngineError> {
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, out)
        .map_err(|_| EngineError::Internal("HKDF output too long"))
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts every key length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time.
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag: &[u8; 32]) -> bool {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        }
        Err(_) => false,
    }
}

/// X25519 (RFC 7748). Refuses non-contributory results (low-order points give all zeros),
/// which would let a peer force a known shared secret.
pub fn x25519(secret: &StaticSecret, public: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, EngineError> {
    let shared = secret.diffie_hellman(&PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(EngineError::InvalidKey("low-order X25519 public key"));
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// The X25519 public key of a secret.
pub fn x25519_public(secret: &StaticSecret) -> [u8; 32] {
    PublicKey::from(secret).to_bytes()
}

/// ChaCha20-Poly1305 (RFC 8439) encryption; the 16-byte tag is appended.
pub fn seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EngineError> {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    cipher
        .encrypt(&Nonce::from(*nonce), Payload { msg: plaintext, aad })
        .map_err(|_| EngineError::Internal("message too long to encrypt"))
}

/// ChaCha20-Poly1305 decryption; any tampering with key, nonce, aad, text or tag fails.
pub fn open(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, EngineError> {
    let cipher = ChaCha20Poly1305::new(&(*key).into());
    cipher.decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad }).map_err(|_| EngineError::Tampered)
}

/// SHA-256 over data that comes in pieces (a file's chunks).
#[derive(Clone, Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    pub fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.0, data);
    }

    pub fn finish(self) -> [u8; 32] {
        sha2::Digest::finalize(self.0).into()
    }
}

/// SHA-256.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}
