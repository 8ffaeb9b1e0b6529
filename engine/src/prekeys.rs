//! Our prekeys: a signed prekey (rotated, the previous one kept for late first messages) and
//! one-time prekeys, each used for at most one session.

use crate::EngineError;
use crate::identity::{Identity, verify, verify_identity};
use crate::primitives::x25519_public;
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{OneTimePrekey, PrekeyBundle, SignedPrekey, signed_prekey_message};
use std::collections::BTreeMap;

use crate::consts::{MAX_ONE_TIME_SECRETS, SIGNED_PREKEYS_KEPT};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Secret {
    id: u32,
    secret: [u8; 32],
}

/// Secret prekey material. Versioned when stored; zeroized on drop.
#[derive(Clone, Serialize, Deserialize)]
pub struct Prekeys {
    v: u8,
    /// Newest first.
    signed: Vec<Secret>,
    one_time: BTreeMap<u32, [u8; 32]>,
    next_id: u32,
}

impl Drop for Prekeys {
    fn drop(&mut self) {
        for key in self.one_time.values_mut() {
            key.zeroize();
        }
    }
}

impl std::fmt::Debug for Prekeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Prekeys {{ signed: {}, one_time: {} }}", self.signed.len(), self.one_time.len())
    }
}

impl Prekeys {
    /// Fresh prekeys with one signed prekey and no one-time prekeys.
    pub fn new(entropy: &mut dyn Entropy) -> Result<Self, EngineError> {
        let mut p = Prekeys { v: 1, signed: Vec::new(), one_time: BTreeMap::new(), next_id: 1 };
        p.rotate_signed(entropy)?;
        Ok(p)
    }

    fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Makes a new signed prekey current; the previous one still answers late first messages.
    pub fn rotate_signed(&mut self, entropy: &mut dyn Entropy) -> Result<(), EngineError> {
        let id = self.next_id();
        self.signed.insert(0, Secret { id, secret: entropy.bytes32()? });
        self.signed.truncate(SIGNED_PREKEYS_KEPT);
        Ok(())
    }

    /// The current signed prekey, signed by `identity`.
    pub fn signed_public(&self, identity: &Identity) -> SignedPrekey {
        let current = &self.signed[0];
        let key = x25519_public(&StaticSecret::from(current.secret));
        SignedPrekey {
            id: current.id,
            key,
            signature: identity.sign(&signed_prekey_message(current.id, &key)),
        }
    }

    /// Makes `n` new one-time prekeys and returns their public halves (to upload).
    pub fn generate_one_time(
        &mut self,
        n: usize,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<OneTimePrekey>, EngineError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.next_id();
            let secret = entropy.bytes32()?;
            out.push(OneTimePrekey { id, key: x25519_public(&StaticSecret::from(secret)) });
            self.one_time.insert(id, secret);
        }
        while self.one_time.len() > MAX_ONE_TIME_SECRETS {
            if let Some((_, mut oldest)) = self.one_time.pop_first() {
                oldest.zeroize();
            }
        }
        Ok(out)
    }

    /// A bundle carrying a fresh one-time prekey, for an invite link.
    pub fn invite_bundle(
        &mut self,
        identity: &Identity,
        entropy: &mut dyn Entropy,
    ) -> Result<PrekeyBundle, EngineError> {
        let one_time = self.generate_one_time(1, entropy)?.pop();
        Ok(PrekeyBundle {
            identity: identity.public(),
            signed_prekey: self.signed_public(identity),
            one_time_prekey: one_time,
        })
    }

    pub fn one_time_count(&self) -> usize {
        self.one_time.len()
    }

    pub(crate) fn signed_secret(&self, id: u32) -> Option<StaticSecret> {
        self.signed.iter().find(|s| s.id == id).map(|s| StaticSecret::from(s.secret))
    }

    pub(crate) fn one_time_secret(&self, id: u32) -> Option<StaticSecret> {
        self.one_time.get(&id).map(|s| StaticSecret::from(*s))
    }

    /// Deletes a one-time prekey once a session made with it has decrypted a message.
    pub(crate) fn consume_one_time(&mut self, id: u32) {
        if let Some(mut s) = self.one_time.remove(&id) {
            s.zeroize();
        }
    }

    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(postcard::to_allocvec(self).unwrap_or_default())
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let p: Prekeys = postcard::from_bytes(bytes)?;
        if p.v != 1 {
            return Err(EngineError::UnsupportedVersion(p.v));
        }
        if p.signed.is_empty() {
            return Err(EngineError::BadEncoding("no signed prekey".into()));
        }
        Ok(p)
    }
}

/// Checks every signature in a bundle before anything uses it.
/// Checks an invite link: its bundle, and the inviter's signature over everything it says.
pub fn verify_invite(invite: &sotto_shared::invite::Invite) -> Result<(), EngineError> {
    verify_bundle(&invite.bundle)?;
    verify(&invite.bundle.identity.signing_key, &invite.signed_message(), &invite.signature)
        .map_err(|_| EngineError::BadSignature("invite"))
}

pub fn verify_bundle(bundle: &PrekeyBundle) -> Result<(), EngineError> {
    verify_identity(&bundle.identity)?;
    let spk = &bundle.signed_prekey;
    verify(&bundle.identity.signing_key, &signed_prekey_message(spk.id, &spk.key), &spk.signature)
        .map_err(|_| EngineError::BadSignature("signed prekey"))
}

#[cfg(test)]
mod cap_tests {
    use super::*;
    use crate::random::OsEntropy;

    #[test]
    fn a_device_keeps_a_bounded_number_of_one_time_secrets_the_newest() {
        let mut e = OsEntropy;
        let mut p = Prekeys::new(&mut e).unwrap();
        let mut last = Vec::new();
        for _ in 0..(MAX_ONE_TIME_SECRETS / 100 + 5) {
            last = p.generate_one_time(100, &mut e).unwrap();
        }
        assert_eq!(p.one_time_count(), MAX_ONE_TIME_SECRETS);
        assert!(last.iter().all(|k| p.one_time_secret(k.id).is_some()), "the newest are kept");
        assert!(p.one_time_secret(1).is_none() && p.one_time_secret(2).is_none(), "the oldest went first");
    }
}
