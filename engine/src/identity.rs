//! A person's long-term identity: an Ed25519 signing key and an X25519 key signed by it.

use crate::EngineError;
use crate::primitives::{sha256, x25519_public};
use crate::random::{Entropy, OsEntropy};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sotto_shared::Address;
use sotto_shared::ClientFrame;
use sotto_shared::frames::{IdentityPublic, Signature, auth_message, identity_dh_message};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The secret identity. Both keys zeroize themselves on drop (dalek's `zeroize` features).
pub struct Identity {
    signing: SigningKey,
    dh: StaticSecret,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets; the address is enough to tell identities apart.
        write!(f, "Identity({:?})", self.address())
    }
}

/// The stored form of an identity (versioned). Zeroized on drop.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct StoredIdentity {
    v: u8,
    signing_seed: [u8; 32],
    dh_secret: [u8; 32],
}

impl Identity {
    /// A new identity from the system's randomness.
    pub fn generate() -> Result<Self, EngineError> {
        Self::generate_with(&mut OsEntropy)
    }

    pub fn generate_with(entropy: &mut dyn Entropy) -> Result<Self, EngineError> {
        let mut seed = entropy.bytes32()?;
        let mut dh = entropy.bytes32()?;
        let id = Self::from_seeds(&seed, &dh);
        seed.zeroize();
        dh.zeroize();
        Ok(id)
    }

    /// Deterministic construction from the two secrets.
    pub fn from_seeds(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        Identity { signing: SigningKey::from_bytes(signing_seed), dh: StaticSecret::from(*dh_secret) }
    }

    /// Versioned secret bytes, for the app's (encrypted) storage and backups.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let stored =
            StoredIdentity { v: 1, signing_seed: self.signing.to_bytes(), dh_secret: self.dh.to_bytes() };
        crate::wipe::encode(&[], &stored, 0).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let stored: StoredIdentity = postcard::from_bytes(bytes)?;
        if stored.v != 1 {
            return Err(EngineError::UnsupportedVersion(stored.v));
        }
        Ok(Self::from_seeds(&stored.signing_seed, &stored.dh_secret))
    }

    pub fn public(&self) -> IdentityPublic {
        let dh_key = x25519_public(&self.dh);
        IdentityPublic {
            signing_key: self.signing.verifying_key().to_bytes(),
            dh_key,
            dh_signature: self.sign(&identity_dh_message(&dh_key)),
        }
    }

    pub fn address(&self) -> Address {
        Address::from_identity_key(&self.signing.verifying_key().to_bytes())
    }

    /// The secret that lets contacts send to this identity's mailbox as contacts (the relay
    /// stores only its hash). Derived from the signing key, so it needs no storage of its own;
    /// it changes only with the identity.
    pub fn delivery_token(&self) -> Result<zeroize::Zeroizing<[u8; 32]>, EngineError> {
        let mut token = zeroize::Zeroizing::new([0u8; 32]);
        let seed = zeroize::Zeroizing::new(self.signing.to_bytes());
        crate::primitives::hkdf_sha256(
            &[0; 32],
            seed.as_slice(),
            b"sotto-delivery-token-v1",
            &mut token[..],
        )?;
        Ok(token)
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    /// The relay login for a `Welcome` challenge: the challenge signed, bound to the relay's
    /// origin.
    pub fn login_frame(&self, origin: &str, challenge: &[u8; 32]) -> ClientFrame {
        ClientFrame::Authenticate {
            identity: Box::new(self.public()),
            signature: self.sign(&auth_message(origin, challenge)),
        }
    }

    pub(crate) fn dh_secret(&self) -> &StaticSecret {
        &self.dh
    }
}

/// Checks that a public identity's X25519 key really is signed by its Ed25519 key.
pub fn verify_identity(id: &IdentityPublic) -> Result<(), EngineError> {
    verify(&id.signing_key, &identity_dh_message(&id.dh_key), &id.dh_signature)
        .map_err(|_| EngineError::BadSignature("identity key"))
}

/// Strict Ed25519 verification (RFC 8032 with canonical `S` and no small-order keys).
pub fn verify(key: &[u8; 32], message: &[u8], signature: &Signature) -> Result<(), EngineError> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| EngineError::InvalidKey("signing key"))?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &sig).map_err(|_| EngineError::BadSignature("signature"))
}

/// A short, human-comparable fingerprint of one identity key: 8 groups of 4 hex digits.
pub fn fingerprint(id: &IdentityPublic) -> String {
    let digest = sha256(&[b"sotto-fingerprint-v1", &id.signing_key]);
    digest[..16].chunks(2).map(|c| format!("{:02X}{:02X}", c[0], c[1])).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_verifies_and_round_trips() {
        let id = Identity::generate().unwrap();
        let public = id.public();
        verify_identity(&public).unwrap();
        assert_eq!(id.address(), Address::from_identity_key(&public.signing_key));
        assert_eq!(fingerprint(&public).len(), 39);
        let again = Identity::from_bytes(&id.to_bytes()).unwrap();
        assert_eq!(again.public(), public);
        // Debug shows the address only, never key material.
        assert_eq!(format!("{id:?}"), format!("Identity({:?})", id.address()));
    }

    #[test]
    fn forged_dh_signature_is_refused() {
        let a = Identity::generate().unwrap().public();
        let b = Identity::generate().unwrap().public();
        let forged = IdentityPublic { dh_key: b.dh_key, ..a };
        assert_eq!(verify_identity(&forged), Err(EngineError::BadSignature("identity key")));
    }

    #[test]
    fn unknown_stored_version_is_refused() {
        let mut bytes = Identity::generate().unwrap().to_bytes().to_vec();
        bytes[0] = 9;
        assert_eq!(Identity::from_bytes(&bytes).unwrap_err(), EngineError::UnsupportedVersion(9));
    }
}
