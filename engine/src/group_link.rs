//! Group invite links. A link carries the group's id and name, a random secret and the public
//! half of an X25519 "door key" only the admin who made it holds. From the secret come a relay
//! topic (the "door") and its write key. Whoever holds the link posts a **join request** to the
//! door: their identity and name, signed by their identity, sealed to the door key (an
//! ephemeral X25519 key, HKDF, ChaCha20-Poly1305), so neither the relay nor anyone else holding
//! the link reads who asked. The admin who made the link reads the door, and adds whoever asks
//! (or whom they approve) with an ordinary addition and welcome.

use crate::EngineError;
use crate::identity::{Identity, verify};
use crate::padding::{padded, unpadded};
use crate::primitives::{hkdf_sha256, open, seal, x25519, x25519_public};
use crate::random::Entropy;
use crate::sender_keys::GroupId;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, Signature};
use sotto_shared::{TopicId, WriteKey};
use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const LINK_INFO: &[u8] = b"sotto-group-link-v1";
const SEAL_INFO: &[u8] = b"sotto-group-join-seal-v1";
const REQUEST_LABEL: &[u8] = b"sotto-group-join-request-v1";
const REQUEST_VERSION: u8 = 1;

/// What a group invite link says. Never printed (the secret opens the door).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct GroupLink {
    #[zeroize(skip)]
    pub group: GroupId,
    #[zeroize(skip)]
    pub name: String,
    pub secret: [u8; 32],
    /// The door key's public half.
    #[zeroize(skip)]
    pub door_key: [u8; 32],
    /// The identity key of the admin whose device reads the door: the asker takes a welcome
    /// that follows from nobody else.
    #[zeroize(skip)]
    pub admin: [u8; 32],
}

/// The secret half of a link's door key: only the admin who made the link holds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct DoorSecret([u8; 32]);

impl std::fmt::Debug for DoorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DoorSecret")
    }
}

impl std::fmt::Debug for GroupLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GroupLink {{ name: {:?} }}", self.name)
    }
}

/// Someone asking to join, as the admin reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub identity: IdentityPublic,
    /// The name they go by (theirs to choose: clean it before showing it).
    pub name: String,
    /// When they asked, by their clock: a request is good for a while only, so an old one
    /// posted again (by the relay, or anyone holding the link) does not bring back someone
    /// removed since.
    pub at_ms: u64,
    pub signature: Signature,
}

/// A request as posted: sealed to the door key.
#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u8,
    /// The asker's ephemeral X25519 public key.
    ephemeral: [u8; 32],
    nonce: [u8; 12],
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

impl GroupLink {
    /// A new link into `group`, named `name` (as the link shows it before joining), and the
    /// door key's secret half for the admin who keeps it.
    pub fn new(
        group: GroupId,
        name: &str,
        admin: [u8; 32],
        e: &mut dyn Entropy,
    ) -> Result<(GroupLink, DoorSecret), EngineError> {
        let door = DoorSecret(e.bytes32()?);
        let door_key = x25519_public(&StaticSecret::from(door.0));
        Ok((GroupLink { group, name: name.into(), secret: e.bytes32()?, door_key, admin }, door))
    }

    /// The door: the topic requests are posted to, and its write key.
    pub fn door(&self) -> Result<(TopicId, WriteKey), EngineError> {
        let mut okm = Zeroizing::new([0u8; 64]);
        hkdf_sha256(&self.group.0, &self.secret, LINK_INFO, okm.as_mut())?;
        let (mut topic, mut write) = ([0u8; 32], [0u8; 32]);
        topic.copy_from_slice(&okm[..32]);
        write.copy_from_slice(&okm[32..]);
        Ok((TopicId(topic), WriteKey(write)))
    }

    /// The key a request with `ephemeral` is sealed under, from their shared secret.
    fn seal_key(&self, shared: &[u8; 32], ephemeral: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, EngineError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let info = [SEAL_INFO, ephemeral, &self.door_key].concat();
        hkdf_sha256(&self.group.0, shared, &info, key.as_mut())?;
        Ok(key)
    }

    /// The post that asks, as `me` named `name`, to join.
    pub fn request(
        &self,
        me: &Identity,
        name: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        let (topic, _) = self.door()?;
        let identity = me.public();
        let signature = me.sign(&signed(&topic, &identity, name, now_ms)?);
        let request = JoinRequest { identity, name: name.into(), at_ms: now_ms, signature };
        let secret = StaticSecret::from(e.bytes32()?);
        let ephemeral = x25519_public(&secret);
        let key = self.seal_key(&*x25519(&secret, &self.door_key)?, &ephemeral)?;
        let mut nonce = [0u8; 12];
        e.fill(&mut nonce)?;
        let sealed = seal(&key, &nonce, &topic.0, &padded(&request)?)?;
        Ok(postcard::to_allocvec(&Sealed { v: REQUEST_VERSION, ephemeral, nonce, sealed })?)
    }

    /// Opens a post read at the door (we hold its `door` secret): a request signed by the
    /// identity it names.
    pub fn open_request(&self, door: &DoorSecret, payload: &[u8]) -> Result<JoinRequest, EngineError> {
        let (topic, _) = self.door()?;
        let post: Sealed = postcard::from_bytes(payload)?;
        if post.v != REQUEST_VERSION {
            return Err(EngineError::UnsupportedVersion(post.v));
        }
        let shared = x25519(&StaticSecret::from(door.0), &post.ephemeral)?;
        let key = self.seal_key(&shared, &post.ephemeral)?;
        let plain = Zeroizing::new(open(&key, &post.nonce, &topic.0, &post.sealed)?);
        let request: JoinRequest = unpadded(&plain)?;
        let message = signed(&topic, &request.identity, &request.name, request.at_ms)?;
        verify(&request.identity.signing_key, &message, &request.signature)
            .map_err(|_| EngineError::BadSignature("join request"))?;
        crate::identity::verify_identity(&request.identity)?;
        Ok(request)
    }
}

fn signed(
    topic: &TopicId,
    identity: &IdentityPublic,
    name: &str,
    at_ms: u64,
) -> Result<Vec<u8>, EngineError> {
    let mut m = [REQUEST_LABEL, &topic.0].concat();
    m.extend(postcard::to_allocvec(&(identity, name, at_ms))?);
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    #[test]
    fn a_request_opens_only_with_the_link_and_only_as_signed() {
        let mut e = SeededEntropy::new([5; 32]);
        let bo = Identity::generate_with(&mut e).unwrap();
        let (link, door) = GroupLink::new(GroupId([1; 16]), "Club", [9; 32], &mut e).unwrap();
        let post = link.request(&bo, "Bo", 42, &mut e).unwrap();
        let request = link.open_request(&door, &post).unwrap();
        assert_eq!((request.identity, request.name.as_str(), request.at_ms), (bo.public(), "Bo", 42));
        // Another link's door key opens nothing; nor does a tampered post.
        let (other, other_door) = GroupLink::new(GroupId([1; 16]), "Club", [9; 32], &mut e).unwrap();
        assert!(other.open_request(&other_door, &post).is_err());
        assert!(link.open_request(&other_door, &post).is_err(), "holding the link is not enough");
        assert_ne!(other.door().unwrap().0, link.door().unwrap().0);
        let mut tampered = post.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(link.open_request(&door, &tampered).is_err());
        // A request in someone else's name (signed by another key) is refused.
        let mallory = Identity::generate_with(&mut e).unwrap();
        let forged = {
            let (topic, _) = link.door().unwrap();
            let signature = mallory.sign(&signed(&topic, &bo.public(), "Bo", 1).unwrap());
            let r = JoinRequest { identity: bo.public(), name: "Bo".into(), at_ms: 1, signature };
            let secret = StaticSecret::from([7; 32]);
            let ephemeral = x25519_public(&secret);
            let key = link.seal_key(&x25519(&secret, &link.door_key).unwrap(), &ephemeral).unwrap();
            let sealed = seal(&key, &[0; 12], &topic.0, &padded(&r).unwrap()).unwrap();
            postcard::to_allocvec(&Sealed { v: REQUEST_VERSION, ephemeral, nonce: [0; 12], sealed }).unwrap()
        };
        assert_eq!(link.open_request(&door, &forged), Err(EngineError::BadSignature("join request")));
        // Debug shows no secret.
        let shown = format!("{link:?} {door:?}");
        assert!(!shown.contains(&format!("{:?}", link.secret)) && !shown.contains(&format!("{:?}", door.0)));
    }
}
