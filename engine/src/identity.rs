//! A person's long-term identity: an Ed25519 signing key and an X25519 key signed by it.

use crate::{EngineError, random};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use sotto_shared::Address;
use sotto_shared::frames::{IdentityPublic, Signature, identity_dh_message};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

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

impl Identity {
    /// A new identity from the system's randomness.
    pub fn generate() -> Result<Self, EngineError> {
        let mut seed = random::bytes32()?;
        let mut dh = random::bytes32()?;
        let id = Self::from_seeds(&seed, &dh);
        seed.zeroize();
        dh.zeroize();
        Ok(id)
    }

    /// Deterministic construction, for storage round-trips and pinned test vectors.
    pub fn from_seeds(signing_seed: &[u8; 32], dh_secret: &[u8; 32]) -> Self {
        Identity { signing: SigningKey::from_bytes(signing_seed), dh: StaticSecret::from(*dh_secret) }
    }

    pub fn public(&self) -> IdentityPublic {
        let dh_key = PublicKey::from(&self.dh).to_bytes();
        IdentityPublic {
            signing_key: self.signing.verifying_key().to_bytes(),
            dh_key,
            dh_signature: self.sign(&identity_dh_message(&dh_key)),
        }
    }

    pub fn address(&self) -> Address {
        Address::from_identity_key(&self.signing.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }

    #[allow(dead_code)] // used by X3DH (next)
    pub(crate) fn dh_secret(&self) -> &StaticSecret {
        &self.dh
    }
}

/// Checks that a public identity's X25519 key really is signed by its Ed25519 key.
pub fn verify_identity(id: &IdentityPublic) -> Result<(), EngineError> {
    verify(&id.signing_key, &identity_dh_message(&id.dh_key), &id.dh_signature)
        .map_err(|_| EngineError::BadSignature("identity key"))
}

/// Strict Ed25519 verification (rejects small-order keys and non-canonical signatures).
pub fn verify(key: &[u8; 32], message: &[u8], signature: &Signature) -> Result<(), EngineError> {
    let key = VerifyingKey::from_bytes(key).map_err(|_| EngineError::InvalidKey("signing key"))?;
    let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(message, &sig).map_err(|_| EngineError::BadSignature("signature"))?;
    Ok(())
}

/// A short, human-comparable fingerprint of one identity key: 8 groups of 4 hex digits.
pub fn fingerprint(id: &IdentityPublic) -> String {
    let digest = Sha256::new_with_prefix(b"sotto-fingerprint-v1").chain_update(id.signing_key).finalize();
    digest[..16].chunks(2).map(|c| format!("{:02X}{:02X}", c[0], c[1])).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identity_verifies() {
        let id = Identity::generate().unwrap();
        let public = id.public();
        verify_identity(&public).unwrap();
        assert_eq!(id.address(), Address::from_identity_key(&public.signing_key));
        assert_eq!(fingerprint(&public).len(), 39);
        assert!(!format!("{id:?}").contains(&format!("{:?}", id.dh_secret().to_bytes())));
    }

    #[test]
    fn forged_dh_signature_is_refused() {
        let a = Identity::generate().unwrap().public();
        let b = Identity::generate().unwrap().public();
        let forged = IdentityPublic { dh_key: b.dh_key, ..a };
        assert_eq!(verify_identity(&forged), Err(EngineError::BadSignature("identity key")));
    }
}
