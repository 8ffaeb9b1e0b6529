//! Our prekeys: a signed prekey (rotated, the previous one kept for late first messages) and
//! one-time prekeys, each used for at most one session. A one-time prekey remembers where it
//! went: to the relay (anyone may fetch it) or into one of our invite links (only those we gave
//! the link to hold it), so that a first message can tell an invited person from a stranger.

use crate::EngineError;
use crate::identity::{Identity, verify, verify_identity};
use crate::primitives::x25519_public;
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{OneTimePrekey, PrekeyBundle, SignedPrekey, signed_prekey_message};
use std::collections::BTreeMap;

use crate::consts::{
    ENVELOPE_TTL_SECS, MAX_INVITE_SECRETS, MAX_ONE_TIME_SECRETS, ONE_TIME_SECRET_MAX_AGE_SECS,
    SIGNED_PREKEYS_KEPT,
};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop};

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Secret {
    id: u32,
    secret: [u8; 32],
}

/// Where a one-time prekey's public half went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Uploaded to the relay, which hands it to whoever asks for our bundle.
    Relay,
    /// Carried by one of our invite links, forgotten once the link expires (Unix seconds).
    Invite { expires_at: u64 },
    /// Made before prekeys remembered their origin (record version 1). Most went to the relay,
    /// so they count as the relay's: someone who uses a link made before the upgrade arrives as
    /// a contact request, which the person can accept.
    Unknown,
}

impl Origin {
    pub fn is_invite(self) -> bool {
        matches!(self, Origin::Invite { .. })
    }
}

#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct OneTime {
    secret: [u8; 32],
    #[zeroize(skip)]
    origin: Origin,
    /// When the device first counted it (Unix seconds; stamped by the first `forget_old` after
    /// it was made, which is at most a session later), for aging out.
    #[zeroize(skip)]
    seen_at: Option<u64>,
}

/// A one-time secret as version 2 stored it (no age).
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct OneTimeV2 {
    secret: [u8; 32],
    #[zeroize(skip)]
    origin: Origin,
}

/// 3: one-time secrets carry when they were first counted; 2: their origin; 1: neither.
const PREKEYS_VERSION: u8 = 3;

/// Secret prekey material. Versioned when stored; zeroized on drop.
#[derive(Clone, Serialize, Deserialize)]
pub struct Prekeys {
    v: u8,
    /// Newest first.
    signed: Vec<Secret>,
    one_time: BTreeMap<u32, OneTime>,
    next_id: u32,
}

/// Prekeys as record version 1 stored them (one-time secrets without their origin).
#[derive(Deserialize)]
struct PrekeysV1 {
    _v: u8,
    signed: Vec<Secret>,
    one_time: BTreeMap<u32, [u8; 32]>,
    next_id: u32,
}

/// Prekeys as record version 2 stored them.
#[derive(Deserialize)]
struct PrekeysV2 {
    _v: u8,
    signed: Vec<Secret>,
    one_time: BTreeMap<u32, OneTimeV2>,
    next_id: u32,
}

impl Drop for PrekeysV1 {
    fn drop(&mut self) {
        self.one_time.values_mut().for_each(Zeroize::zeroize);
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
        let mut p = Prekeys { v: PREKEYS_VERSION, signed: Vec::new(), one_time: BTreeMap::new(), next_id: 1 };
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

    /// Makes `n` new one-time prekeys for the relay and returns their public halves (to upload).
    pub fn generate_one_time(
        &mut self,
        n: usize,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<OneTimePrekey>, EngineError> {
        self.generate(n, Origin::Relay, entropy)
    }

    fn generate(
        &mut self,
        n: usize,
        origin: Origin,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<OneTimePrekey>, EngineError> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let id = self.next_id();
            let secret = entropy.bytes32()?;
            out.push(OneTimePrekey { id, key: x25519_public(&StaticSecret::from(secret)) });
            self.one_time.insert(id, OneTime { secret, origin, seen_at: None });
        }
        // Each kind has its own bound, the oldest going first: a stranger who drains the relay
        // (and makes us top up) cannot push out the keys of links we gave out.
        for (is_invite, cap) in [(false, MAX_ONE_TIME_SECRETS), (true, MAX_INVITE_SECRETS)] {
            let ids: Vec<u32> = self
                .one_time
                .iter()
                .filter(|(_, k)| k.origin.is_invite() == is_invite)
                .map(|(&id, _)| id)
                .collect();
            for id in ids.iter().take(ids.len().saturating_sub(cap)) {
                self.one_time.remove(id);
            }
        }
        Ok(out)
    }

    /// A bundle carrying a fresh one-time prekey, for an invite link that expires at
    /// `expires_at` (Unix seconds).
    pub fn invite_bundle(
        &mut self,
        identity: &Identity,
        expires_at: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<PrekeyBundle, EngineError> {
        let one_time = self.generate(1, Origin::Invite { expires_at }, entropy)?.pop();
        Ok(PrekeyBundle {
            identity: identity.public(),
            signed_prekey: self.signed_public(identity),
            one_time_prekey: one_time,
        })
    }

    /// Makes the next ids start `n` further on (after a restore, see `Device::retire_sending`).
    pub fn skip_ids(&mut self, n: u32) {
        self.next_id = self.next_id.saturating_add(n).max(1);
    }

    #[cfg(test)]
    pub(crate) fn next_id_for_tests(&self) -> u32 {
        self.next_id
    }

    pub fn one_time_count(&self) -> usize {
        self.one_time.len()
    }

    /// Where one-time prekey `id` went, while we still hold it.
    pub fn origin(&self, id: u32) -> Option<Origin> {
        self.one_time.get(&id).map(|k| k.origin)
    }

    /// Forgets one-time secrets nobody can use any more; true if anything changed. An invite
    /// link's, once the link expired by more than an envelope can wait at the relay (an
    /// acceptance that reached the relay in time may still be queued until then). A relay
    /// key's, [`ONE_TIME_SECRET_MAX_AGE_SECS`] after it was first counted (the relay has
    /// dropped it by then). Keys not counted yet are stamped `now_secs`.
    pub fn forget_old(&mut self, now_secs: u64) -> bool {
        let before = self.one_time.len();
        let mut stamped = false;
        let grace = u64::from(ENVELOPE_TTL_SECS);
        self.one_time.retain(|_, k| {
            let seen = *k.seen_at.get_or_insert_with(|| {
                stamped = true;
                now_secs
            });
            match k.origin {
                Origin::Invite { expires_at } => expires_at.saturating_add(grace) >= now_secs,
                Origin::Relay | Origin::Unknown => {
                    seen.saturating_add(ONE_TIME_SECRET_MAX_AGE_SECS) >= now_secs
                }
            }
        });
        stamped || self.one_time.len() != before
    }

    pub(crate) fn signed_secret(&self, id: u32) -> Option<StaticSecret> {
        self.signed.iter().find(|s| s.id == id).map(|s| StaticSecret::from(s.secret))
    }

    pub(crate) fn one_time_secret(&self, id: u32) -> Option<StaticSecret> {
        self.one_time.get(&id).map(|k| StaticSecret::from(k.secret))
    }

    /// Deletes a one-time prekey once a session made with it has decrypted a message.
    pub(crate) fn consume_one_time(&mut self, id: u32) {
        self.one_time.remove(&id);
    }

    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        crate::wipe::encode(&[], self, 0).unwrap_or_default()
    }

    /// Prekeys an older record version held, in this version's form.
    fn upgraded(
        signed: Vec<Secret>,
        one_time: impl Iterator<Item = (u32, OneTime)>,
        next_id: u32,
    ) -> Prekeys {
        Prekeys { v: PREKEYS_VERSION, signed, one_time: one_time.collect(), next_id }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let p = match bytes.first() {
            Some(&PREKEYS_VERSION) => postcard::from_bytes::<Prekeys>(bytes)?,
            Some(2) => {
                let mut old: PrekeysV2 = postcard::from_bytes(bytes)?;
                let one_time = std::mem::take(&mut old.one_time)
                    .into_iter()
                    .map(|(id, k)| (id, OneTime { secret: k.secret, origin: k.origin, seen_at: None }));
                Prekeys::upgraded(std::mem::take(&mut old.signed), one_time, old.next_id)
            }
            Some(1) => {
                let mut old: PrekeysV1 = postcard::from_bytes(bytes)?;
                let one_time = std::mem::take(&mut old.one_time)
                    .into_iter()
                    .map(|(id, secret)| (id, OneTime { secret, origin: Origin::Unknown, seen_at: None }));
                Prekeys::upgraded(std::mem::take(&mut old.signed), one_time, old.next_id)
            }
            Some(&v) => return Err(EngineError::UnsupportedVersion(v)),
            None => return Err(EngineError::BadEncoding("empty prekeys record".into())),
        };
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

    #[test]
    fn a_drained_relay_does_not_push_out_the_keys_of_invite_links() {
        let mut e = OsEntropy;
        let mut p = Prekeys::new(&mut e).unwrap();
        let identity = Identity::generate().unwrap();
        let link = p.invite_bundle(&identity, 99, &mut e).unwrap().one_time_prekey.unwrap();
        for _ in 0..(MAX_ONE_TIME_SECRETS / 100 + 5) {
            p.generate_one_time(100, &mut e).unwrap();
        }
        assert_eq!(p.origin(link.id), Some(Origin::Invite { expires_at: 99 }));
        assert_eq!(p.one_time_count(), MAX_ONE_TIME_SECRETS + 1);
        for _ in 0..MAX_INVITE_SECRETS {
            p.invite_bundle(&identity, 99, &mut e).unwrap();
        }
        assert_eq!(p.origin(link.id), None, "links have their own bound, the oldest going first");
    }

    #[test]
    fn version_1_prekeys_load_with_their_origin_unknown() {
        #[derive(Serialize)]
        struct V1<'a> {
            v: u8,
            signed: &'a [Secret],
            one_time: BTreeMap<u32, [u8; 32]>,
            next_id: u32,
        }
        let mut e = OsEntropy;
        let p = Prekeys::new(&mut e).unwrap();
        let old = V1 { v: 1, signed: &p.signed, one_time: BTreeMap::from([(7, [9; 32])]), next_id: 8 };
        let loaded = Prekeys::from_bytes(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!(loaded.origin(7), Some(Origin::Unknown));
        assert!(!Origin::Unknown.is_invite(), "most went to the relay: whoever uses one asks first");
        assert_eq!(Prekeys::from_bytes(&loaded.to_bytes()).unwrap().origin(7), Some(Origin::Unknown));
        assert_eq!(Prekeys::from_bytes(&[9]).err(), Some(EngineError::UnsupportedVersion(9)));
    }

    /// Relay keys nobody took are forgotten once the relay has dropped them and no first
    /// message that used one can still be waiting; counted from when the device first saw them.
    #[test]
    fn unused_relay_secrets_age_out() {
        let mut e = OsEntropy;
        let mut p = Prekeys::new(&mut e).unwrap();
        let keys = p.generate_one_time(3, &mut e).unwrap();
        let t = 1_000_000;
        assert!(p.forget_old(t), "stamped: a change to save");
        assert!(!p.forget_old(t + ONE_TIME_SECRET_MAX_AGE_SECS), "kept while the relay may hand them out");
        let later = p.generate_one_time(1, &mut e).unwrap();
        assert!(p.forget_old(t + ONE_TIME_SECRET_MAX_AGE_SECS + 1));
        assert!(keys.iter().all(|k| p.origin(k.id).is_none()), "aged out");
        assert!(p.origin(later[0].id).is_some(), "counted later, kept longer");
        // Version 2 records load, their keys counted from the next pass.
        #[derive(Serialize)]
        struct V2<'a> {
            v: u8,
            signed: &'a [Secret],
            one_time: BTreeMap<u32, ([u8; 32], Origin)>,
            next_id: u32,
        }
        let old = V2 {
            v: 2,
            signed: &p.signed,
            one_time: BTreeMap::from([(5, ([1; 32], Origin::Relay))]),
            next_id: 6,
        };
        let mut loaded = Prekeys::from_bytes(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!(loaded.origin(5), Some(Origin::Relay));
        assert!(loaded.forget_old(t + 10 * ONE_TIME_SECRET_MAX_AGE_SECS), "stamped, not dropped");
        assert_eq!(loaded.origin(5), Some(Origin::Relay));
    }
}
