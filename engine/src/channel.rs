//! Broadcast channels (issue 13, first part: the cryptography; no relay or messenger use yet).
//!
//! A channel is read by whoever holds its link and written only by its admins:
//! - The link carries the channel's id, name, the **owner key** (public half) and a random
//!   **content secret**. The relay never sees the secret.
//! - Each post is sealed under a key of its own, derived from the content secret and the post's
//!   random nonce, and signed by an **admin key**: an Ed25519 key made for this channel alone,
//!   so neither the relay nor subscribers learn who the admins are.
//! - The owner signs the list of admin keys, with a version; the relay keeps the newest list and
//!   refuses posts signed by any other key (it checks the signature over the ciphertext, which
//!   needs no secret).
//! - A subscriber **reports** a post by handing the operator the post and its own key: the
//!   operator can check that the post is genuine (signed by a listed admin of that channel) and
//!   read that one post, and nothing else of the channel. A report cannot be forged, and a real
//!   post cannot be denied.
//! - Rotating the content secret (a new link) cuts off old links from what is posted after.

use crate::EngineError;
use crate::identity::verify;
use crate::message::{padded, unpadded};
use crate::primitives::{ed25519_public, ed25519_sign, hkdf_sha256, open, seal, sha256};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::Signature;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const POST_KEY_INFO: &[u8] = b"sotto-channel-post-key-v1";
const POST_LABEL: &[u8] = b"sotto-channel-post-v1";
const ADMINS_LABEL: &[u8] = b"sotto-channel-admins-v1";
const POST_VERSION: u8 = 1;

/// A channel, by a random id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub [u8; 16]);

/// What a channel's link says. Never printed (the secret reads every post).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ChannelLink {
    #[zeroize(skip)]
    pub id: ChannelId,
    #[zeroize(skip)]
    pub name: String,
    /// The owner key's public half: it signs the admin list.
    #[zeroize(skip)]
    pub owner: [u8; 32],
    pub secret: [u8; 32],
}

impl std::fmt::Debug for ChannelLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelLink {{ name: {:?} }}", self.name)
    }
}

/// A signing key made for one channel (the owner's, or an admin's). Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ChannelKey([u8; 32]);

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelKey")
    }
}

impl ChannelKey {
    pub fn generate(e: &mut dyn Entropy) -> Result<ChannelKey, EngineError> {
        Ok(ChannelKey(e.bytes32()?))
    }

    pub fn public(&self) -> [u8; 32] {
        ed25519_public(&self.0)
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(ed25519_sign(&self.0, message))
    }
}

/// The admin keys that may post, signed by the owner; a newer version replaces an older one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminList {
    pub channel: ChannelId,
    pub version: u32,
    pub admins: Vec<[u8; 32]>,
    pub signature: Signature,
}

impl AdminList {
    /// A list signed by `owner`.
    pub fn new(owner: &ChannelKey, channel: ChannelId, version: u32, admins: Vec<[u8; 32]>) -> AdminList {
        let mut list = AdminList { channel, version, admins, signature: Signature([0; 64]) };
        list.signature = owner.sign(&list.signed());
        list
    }

    fn signed(&self) -> Vec<u8> {
        let mut m = [ADMINS_LABEL, &self.channel.0, &self.version.to_be_bytes()].concat();
        for a in &self.admins {
            m.extend_from_slice(a);
        }
        m
    }

    /// Checks the owner's signature (`owner`: the key the link names).
    pub fn verify(&self, owner: &[u8; 32]) -> Result<(), EngineError> {
        verify(owner, &self.signed(), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel admin list"))
    }
}

/// A post as the relay stores it: sealed under its own key, signed by an admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPost {
    pub v: u8,
    pub channel: ChannelId,
    /// The admin key that signed it.
    pub author: [u8; 32],
    pub nonce: [u8; 16],
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    pub signature: Signature,
}

impl ChannelPost {
    fn signed(&self) -> Vec<u8> {
        let digest = sha256(&[&self.sealed]);
        [POST_LABEL, &self.channel.0, &self.author, &self.nonce, &digest].concat()
    }

    /// What the relay checks before it stores a post: signed by one of the `admins`. Needs no
    /// secret.
    pub fn verify(&self, admins: &AdminList) -> Result<(), EngineError> {
        if self.v != POST_VERSION {
            return Err(EngineError::UnsupportedVersion(self.v));
        }
        if admins.channel != self.channel || !admins.admins.contains(&self.author) {
            return Err(EngineError::ForgedSender);
        }
        verify(&self.author, &self.signed(), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel post"))
    }
}

/// A post's own key: from the channel's content secret and the post's nonce. Handing it over
/// opens that post and no other.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PostKey([u8; 32]);

impl std::fmt::Debug for PostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostKey")
    }
}

impl ChannelLink {
    /// A new channel named `name`, owned by `owner`.
    pub fn new(name: &str, owner: &ChannelKey, e: &mut dyn Entropy) -> Result<ChannelLink, EngineError> {
        let mut id = [0u8; 16];
        e.fill(&mut id)?;
        Ok(ChannelLink { id: ChannelId(id), name: name.into(), owner: owner.public(), secret: e.bytes32()? })
    }

    /// The same channel under a new content secret (a new link): holders of the old one read
    /// nothing posted after.
    pub fn rotated(&self, e: &mut dyn Entropy) -> Result<ChannelLink, EngineError> {
        Ok(ChannelLink { id: self.id, name: self.name.clone(), owner: self.owner, secret: e.bytes32()? })
    }

    fn post_key(&self, nonce: &[u8; 16]) -> Result<PostKey, EngineError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&self.id.0, &self.secret, &[POST_KEY_INFO, nonce].concat(), key.as_mut())?;
        Ok(PostKey(*key))
    }

    /// A post of `plaintext` by the admin holding `admin`.
    pub fn post(
        &self,
        admin: &ChannelKey,
        plaintext: &[u8],
        e: &mut dyn Entropy,
    ) -> Result<ChannelPost, EngineError> {
        let mut nonce = [0u8; 16];
        e.fill(&mut nonce)?;
        let key = self.post_key(&nonce)?;
        let author = admin.public();
        let body = padded(&serde_bytes::Bytes::new(plaintext))?;
        let sealed = seal(&key.0, &[0; 12], &ad(&self.id, &author), &body)?;
        let mut post = ChannelPost {
            v: POST_VERSION,
            channel: self.id,
            author,
            nonce,
            sealed,
            signature: Signature([0; 64]),
        };
        post.signature = admin.sign(&post.signed());
        Ok(post)
    }

    /// Reads a post: signed by one of `admins` (as the owner signed them), and sealed for this
    /// channel.
    pub fn read(&self, post: &ChannelPost, admins: &AdminList) -> Result<Vec<u8>, EngineError> {
        admins.verify(&self.owner)?;
        post.verify(admins)?;
        open_with(&self.post_key(&post.nonce)?, post)
    }

    /// A report of `post` for the relay's operator: the post and its own key.
    pub fn report(&self, post: &ChannelPost) -> Result<Report, EngineError> {
        Ok(Report { post: post.clone(), key: self.post_key(&post.nonce)? })
    }
}

fn ad(channel: &ChannelId, author: &[u8; 32]) -> Vec<u8> {
    [&channel.0[..], author].concat()
}

fn open_with(key: &PostKey, post: &ChannelPost) -> Result<Vec<u8>, EngineError> {
    let plain = Zeroizing::new(open(&key.0, &[0; 12], &ad(&post.channel, &post.author), &post.sealed)?);
    let body: serde_bytes::ByteBuf = unpadded(&plain)?;
    Ok(body.into_vec())
}

/// A post a subscriber reports, with the key that opens it (and only it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub post: ChannelPost,
    pub key: PostKey,
}

impl Report {
    /// What the operator checks: the post is signed by an admin the channel's owner listed,
    /// and the key opens it. Returns what it says.
    pub fn verify(&self, admins: &AdminList, owner: &[u8; 32]) -> Result<Vec<u8>, EngineError> {
        admins.verify(owner)?;
        self.post.verify(admins)?;
        open_with(&self.key, &self.post)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    struct Setup {
        e: SeededEntropy,
        owner: ChannelKey,
        admin: ChannelKey,
        link: ChannelLink,
        admins: AdminList,
    }

    fn setup() -> Setup {
        let mut e = SeededEntropy::new([4; 32]);
        let owner = ChannelKey::generate(&mut e).unwrap();
        let admin = ChannelKey::generate(&mut e).unwrap();
        let link = ChannelLink::new("News", &owner, &mut e).unwrap();
        let admins = AdminList::new(&owner, link.id, 1, vec![owner.public(), admin.public()]);
        Setup { e, owner, admin, link, admins }
    }

    #[test]
    fn admins_post_subscribers_read_and_nobody_else_writes() {
        let Setup { mut e, owner, admin, link, admins } = setup();
        let post = link.post(&admin, b"first edition", &mut e).unwrap();
        // The relay checks the signature without any secret.
        post.verify(&admins).unwrap();
        assert_eq!(link.read(&post, &admins).unwrap(), b"first edition");
        // Someone not on the list, or a list the owner did not sign, or a tampered post: refused.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let forged = link.post(&stranger, b"fake news", &mut e).unwrap();
        assert_eq!(forged.verify(&admins), Err(EngineError::ForgedSender));
        let self_listed = AdminList::new(&stranger, link.id, 2, vec![stranger.public()]);
        assert!(link.read(&forged, &self_listed).is_err());
        let mut tampered = post.clone();
        tampered.sealed[0] ^= 1;
        assert!(tampered.verify(&admins).is_err());
        // A removed admin's new posts are refused once the owner lists without them.
        let fewer = AdminList::new(&owner, link.id, 2, vec![owner.public()]);
        let late = link.post(&admin, b"after removal", &mut e).unwrap();
        assert_eq!(late.verify(&fewer), Err(EngineError::ForgedSender));
        // Posts carry no admin identity, only the per-channel key; Debug shows no secret.
        let shown = format!("{link:?} {admin:?}");
        assert!(!shown.contains(&format!("{:?}", link.secret)));
    }

    #[test]
    fn a_report_opens_one_post_and_cannot_be_forged() {
        let Setup { mut e, admin, link, admins, .. } = setup();
        let one = link.post(&admin, b"reported", &mut e).unwrap();
        let other = link.post(&admin, b"not reported", &mut e).unwrap();
        let report = link.report(&one).unwrap();
        assert_eq!(report.verify(&admins, &link.owner).unwrap(), b"reported");
        // The key opens that post only.
        let swapped = Report { post: other.clone(), key: report.key.clone() };
        assert!(swapped.verify(&admins, &link.owner).is_err());
        // A made-up post under a made-up key is refused: it is signed by no admin.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let fake = link.post(&stranger, b"they said this", &mut e).unwrap();
        assert!(link.report(&fake).unwrap().verify(&admins, &link.owner).is_err());
        // A post altered after its admin signed it is refused, whatever key comes with it.
        let mut altered = report.clone();
        altered.post.sealed[3] ^= 1;
        assert!(altered.verify(&admins, &link.owner).is_err());
    }

    #[test]
    fn a_new_link_cuts_off_the_old_one() {
        let Setup { mut e, admin, link, admins, .. } = setup();
        let rotated = link.rotated(&mut e).unwrap();
        let after = rotated.post(&admin, b"for the new link only", &mut e).unwrap();
        assert_eq!(rotated.read(&after, &admins).unwrap(), b"for the new link only");
        assert!(link.read(&after, &admins).is_err(), "the old link reads nothing posted after");
        assert_eq!(rotated.id, link.id);
    }
}
