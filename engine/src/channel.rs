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
const COMMIT_LABEL: &[u8] = b"sotto-channel-post-commit-v1";
const POST_LABEL: &[u8] = b"sotto-channel-post-v1";
const ADMINS_LABEL: &[u8] = b"sotto-channel-admins-v1";
const ID_LABEL: &[u8] = b"sotto-channel-id-v1";
const POST_VERSION: u8 = 1;
/// Most admin keys a list names.
pub const MAX_CHANNEL_ADMINS: usize = 64;

/// A channel, by an id bound to its owner key (see [`ChannelId::of`]), so nobody else can sign
/// an admin list for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub [u8; 16]);

impl ChannelId {
    /// The id of the channel whose owner key is `owner`.
    pub fn of(owner: &[u8; 32]) -> ChannelId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&sha256(&[ID_LABEL, owner])[..16]);
        ChannelId(id)
    }
}

/// What a channel's link says. Never printed (the secret reads every post of its epoch).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ChannelLink {
    #[zeroize(skip)]
    pub id: ChannelId,
    #[zeroize(skip)]
    pub name: String,
    /// The owner key's public half: it signs the admin list.
    #[zeroize(skip)]
    pub owner: [u8; 32],
    /// Which content secret this is: each rotation starts the next (posts name theirs).
    #[zeroize(skip)]
    pub epoch: u32,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for ChannelLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChannelLink {{ name: {:?}, epoch: {} }}", self.name, self.epoch)
    }
}

/// A signing key made for one channel (the owner's, or an admin's). Never printed.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
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

    /// Checks the owner's signature (`owner`: the key the link names, which the channel's id
    /// must be of) and the list's size.
    pub fn verify(&self, owner: &[u8; 32]) -> Result<(), EngineError> {
        if ChannelId::of(owner) != self.channel || self.admins.len() > MAX_CHANNEL_ADMINS {
            return Err(EngineError::ForgedSender);
        }
        verify(owner, &self.signed(), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel admin list"))
    }

    /// Whether this list may replace `older` (the newest kept so far): the same channel, a
    /// later version. A relay or reader keeps the newest list it checked, so an old one cannot
    /// come back.
    pub fn replaces(&self, older: &AdminList) -> bool {
        self.channel == older.channel && self.version > older.version
    }
}

/// A post as the relay stores it: sealed under its own key, signed by an admin key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPost {
    pub v: u8,
    pub channel: ChannelId,
    /// The content secret it is sealed under (see [`ChannelLink::epoch`]).
    pub epoch: u32,
    /// The admin list it was posted under: a post stays checkable after its admin is removed,
    /// against the list of its time (the relay keeps every list, and takes new posts only
    /// under the newest).
    pub list: u32,
    /// The admin key that signed it.
    pub author: [u8; 32],
    /// By the author's clock: a relay refuses a post far from its own clock, and a nonce it
    /// has seen, so an old post cannot come back as new.
    pub posted_at_ms: u64,
    pub nonce: [u8; 16],
    /// SHA-256 of the post's own key (ChaCha20-Poly1305 does not commit to its key): a report
    /// must come with the very key the admin sealed under.
    pub commit: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    pub signature: Signature,
}

impl ChannelPost {
    fn signed(&self) -> Vec<u8> {
        let mut m = [POST_LABEL, &[self.v], &self.channel.0].concat();
        m.extend_from_slice(&self.epoch.to_be_bytes());
        m.extend_from_slice(&self.list.to_be_bytes());
        m.extend_from_slice(&self.author);
        m.extend_from_slice(&self.posted_at_ms.to_be_bytes());
        m.extend_from_slice(&self.nonce);
        m.extend_from_slice(&self.commit);
        m.extend_from_slice(&sha256(&[&self.sealed]));
        m
    }

    /// The associated data its sealing binds: what names it, but the ciphertext.
    fn ad(&self) -> Vec<u8> {
        let mut ad = [&[self.v][..], &self.channel.0].concat();
        ad.extend_from_slice(&self.epoch.to_be_bytes());
        ad.extend_from_slice(&self.author);
        ad.extend_from_slice(&self.nonce);
        ad
    }

    /// What the relay checks before it stores a post: signed by one of the `admins` of the
    /// list it names. Needs no secret.
    pub fn verify(&self, admins: &AdminList) -> Result<(), EngineError> {
        if self.v != POST_VERSION {
            return Err(EngineError::UnsupportedVersion(self.v));
        }
        if admins.channel != self.channel
            || admins.version != self.list
            || !admins.admins.contains(&self.author)
        {
            return Err(EngineError::ForgedSender);
        }
        verify(&self.author, &self.signed(), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel post"))
    }
}

/// A post's own key: from the channel's content secret, its epoch and the post's nonce.
/// Handing it over opens that post and no other.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct PostKey([u8; 32]);

impl std::fmt::Debug for PostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostKey")
    }
}

impl PostKey {
    fn commit(&self) -> [u8; 32] {
        sha256(&[COMMIT_LABEL, &self.0])
    }
}

impl ChannelLink {
    /// A new channel named `name`, owned by `owner` (its id is bound to the owner key).
    pub fn new(name: &str, owner: &ChannelKey, e: &mut dyn Entropy) -> Result<ChannelLink, EngineError> {
        let owner = owner.public();
        Ok(ChannelLink {
            id: ChannelId::of(&owner),
            name: name.into(),
            owner,
            epoch: 0,
            secret: e.bytes32()?,
        })
    }

    /// The same channel under the next content secret (a new link): holders of the old one read
    /// nothing posted after.
    pub fn rotated(&self, e: &mut dyn Entropy) -> Result<ChannelLink, EngineError> {
        let epoch = self.epoch.checked_add(1).ok_or(EngineError::Internal("no epoch after this one"))?;
        Ok(ChannelLink {
            id: self.id,
            name: self.name.clone(),
            owner: self.owner,
            epoch,
            secret: e.bytes32()?,
        })
    }

    fn post_key(&self, nonce: &[u8; 16]) -> Result<PostKey, EngineError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let info = [POST_KEY_INFO, &self.epoch.to_be_bytes(), nonce].concat();
        hkdf_sha256(&self.id.0, &self.secret, &info, key.as_mut())?;
        Ok(PostKey(*key))
    }

    /// A post of `plaintext` by the admin holding `admin`, under admin list `list`, at `now_ms`.
    pub fn post(
        &self,
        admin: &ChannelKey,
        list: u32,
        plaintext: &[u8],
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<ChannelPost, EngineError> {
        let mut nonce = [0u8; 16];
        e.fill(&mut nonce)?;
        let key = self.post_key(&nonce)?;
        let mut post = ChannelPost {
            v: POST_VERSION,
            channel: self.id,
            epoch: self.epoch,
            list,
            author: admin.public(),
            posted_at_ms: now_ms,
            nonce,
            commit: key.commit(),
            sealed: Vec::new(),
            signature: Signature([0; 64]),
        };
        let body = padded(&serde_bytes::Bytes::new(plaintext))?;
        post.sealed = seal(&key.0, &[0; 12], &post.ad(), &body)?;
        post.signature = admin.sign(&post.signed());
        Ok(post)
    }

    /// Reads a post of this link's epoch: signed by one of `admins` (as the owner the link names
    /// signed them), and sealed for this channel.
    pub fn read(&self, post: &ChannelPost, admins: &AdminList) -> Result<Vec<u8>, EngineError> {
        if ChannelId::of(&self.owner) != self.id || post.epoch != self.epoch {
            return Err(EngineError::ForgedSender);
        }
        admins.verify(&self.owner)?;
        post.verify(admins)?;
        open_with(&self.post_key(&post.nonce)?, post)
    }

    /// A report of `post` for the relay's operator: the post and its own key.
    pub fn report(&self, post: &ChannelPost) -> Result<Report, EngineError> {
        Ok(Report { post: post.clone(), key: self.post_key(&post.nonce)? })
    }
}

/// Opens `post` with `key`, which must be the one its admin committed to.
fn open_with(key: &PostKey, post: &ChannelPost) -> Result<Vec<u8>, EngineError> {
    if key.commit() != post.commit {
        return Err(EngineError::Tampered);
    }
    let plain = Zeroizing::new(open(&key.0, &[0; 12], &post.ad(), &post.sealed)?);
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
    /// What the operator checks: the post is signed by an admin the channel's owner listed
    /// (`admins` and `owner` from the relay's own records, never from the report, and the post
    /// matched against the relay's stored copy), and the key is the one the admin committed to
    /// and opens it. Returns what it says.
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
        let post = link.post(&admin, 1, b"first edition", 10, &mut e).unwrap();
        // The relay checks the signature without any secret.
        post.verify(&admins).unwrap();
        assert_eq!(link.read(&post, &admins).unwrap(), b"first edition");
        // Someone not on the list, or a list the owner did not sign, or a tampered post: refused.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let forged = link.post(&stranger, 1, b"fake news", 10, &mut e).unwrap();
        assert_eq!(forged.verify(&admins), Err(EngineError::ForgedSender));
        let self_listed = AdminList::new(&stranger, link.id, 2, vec![stranger.public()]);
        assert!(link.read(&forged, &self_listed).is_err());
        let mut tampered = post.clone();
        tampered.sealed[0] ^= 1;
        assert!(tampered.verify(&admins).is_err());
        // A removed admin's new posts are refused once the owner lists without them.
        let fewer = AdminList::new(&owner, link.id, 2, vec![owner.public()]);
        let late = link.post(&admin, 2, b"after removal", 10, &mut e).unwrap();
        assert_eq!(late.verify(&fewer), Err(EngineError::ForgedSender));
        // Posts carry no admin identity, only the per-channel key; Debug shows no secret.
        let shown = format!("{link:?} {admin:?}");
        assert!(!shown.contains(&format!("{:?}", link.secret)));
    }

    #[test]
    fn a_report_opens_one_post_and_cannot_be_forged() {
        let Setup { mut e, admin, link, admins, .. } = setup();
        let one = link.post(&admin, 1, b"reported", 10, &mut e).unwrap();
        let other = link.post(&admin, 1, b"not reported", 10, &mut e).unwrap();
        let report = link.report(&one).unwrap();
        assert_eq!(report.verify(&admins, &link.owner).unwrap(), b"reported");
        // The key opens that post only.
        let swapped = Report { post: other.clone(), key: report.key.clone() };
        assert!(swapped.verify(&admins, &link.owner).is_err());
        // A made-up post under a made-up key is refused: it is signed by no admin.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let fake = link.post(&stranger, 1, b"they said this", 10, &mut e).unwrap();
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
        let after = rotated.post(&admin, 1, b"for the new link only", 10, &mut e).unwrap();
        assert_eq!(rotated.read(&after, &admins).unwrap(), b"for the new link only");
        assert!(link.read(&after, &admins).is_err(), "the old link reads nothing posted after");
        assert_eq!(rotated.id, link.id);
    }

    /// What the review of the first version asked for: the id bound to the owner, lists that
    /// cannot be rolled back, old posts checkable against the list of their time, the post key
    /// committed to, and posts naming their epoch.
    #[test]
    fn lists_ids_keys_and_epochs_are_bound() {
        let Setup { mut e, owner, admin, link, admins } = setup();
        // Nobody but the owner signs a list for this channel, even naming its id.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let squatted = AdminList::new(&stranger, link.id, 9, vec![stranger.public()]);
        assert_eq!(squatted.verify(&stranger.public()), Err(EngineError::ForgedSender));
        // A newer list replaces an older one, never the other way round.
        let newer = AdminList::new(&owner, link.id, 2, vec![owner.public()]);
        assert!(newer.replaces(&admins) && !admins.replaces(&newer) && !admins.replaces(&admins));
        // A post made under list 1 stays readable after its admin is removed in list 2.
        let before = link.post(&admin, 1, b"kept", 10, &mut e).unwrap();
        assert_eq!(link.read(&before, &admins).unwrap(), b"kept");
        assert_eq!(before.verify(&newer), Err(EngineError::ForgedSender), "not under list 2");
        // A report with any key but the committed one is refused.
        let mut report = link.report(&before).unwrap();
        report.key = link.rotated(&mut e).unwrap().report(&before).unwrap().key;
        assert_eq!(report.verify(&admins, &link.owner), Err(EngineError::Tampered));
        // A post names its epoch: the next link does not even try an old one.
        let next = link.rotated(&mut e).unwrap();
        assert_eq!(next.read(&before, &admins), Err(EngineError::ForgedSender));
        // The signature covers the time: changing it is refused.
        let mut moved = before.clone();
        moved.posted_at_ms += 1;
        assert!(moved.verify(&admins).is_err());
    }
}
