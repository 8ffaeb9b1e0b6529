//! Broadcast channels: their keys, posts and reports (the wire forms are in
//! `sotto_shared::channel`, which defines the bytes each signature covers).
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
use crate::padding::{padded, unpadded};
use crate::primitives::{ed25519_public, ed25519_sign, hkdf_sha256, open, seal, sha256};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::channel::{AdminList, CHANNEL_POST_VERSION, ChannelId, ChannelPost};
use sotto_shared::frames::Signature;
use sotto_shared::limits::MAX_CHANNEL_ADMINS;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const POST_KEY_INFO: &[u8] = b"sotto-channel-post-key-v1";
const COMMIT_LABEL: &[u8] = b"sotto-channel-post-commit-v1";
const GRANT_LABEL: &[u8] = b"sotto-channel-grant-v1";
const LINK_LABEL: &[u8] = b"sotto-channel-link-v1";

/// What a channel's link says. Never printed (the secret reads every post of its epoch).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ChannelLink {
    #[zeroize(skip)]
    pub id: ChannelId,
    #[zeroize(skip)]
    pub name: String,
    /// What the channel is about (not signed, like the name).
    #[zeroize(skip)]
    pub description: String,
    /// The owner key's public half: it signs the admin list.
    #[zeroize(skip)]
    pub owner: [u8; 32],
    /// Which content secret this is: each rotation starts the next (posts name theirs).
    #[zeroize(skip)]
    pub epoch: u32,
    pub secret: [u8; 32],
    /// The owner key's signature over the rest (see [`ChannelLink::verify`]): only the owner
    /// makes a link, so nobody holding one can pass off a later epoch or another name.
    #[zeroize(skip)]
    pub signature: Signature,
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

    /// Signs our `post` again at `now_ms` (the same nonce, key and ciphertext): for a post
    /// resent after a while, which the relay would refuse as too far from its clock.
    pub fn restamp(&self, post: &mut ChannelPost, now_ms: u64) {
        post.posted_at_ms = now_ms;
        post.signature = self.sign(&post.signed_bytes());
    }

    fn sign(&self, message: &[u8]) -> Signature {
        Signature(ed25519_sign(&self.0, message))
    }
}

/// A list signed by `owner`.
pub fn sign_list(owner: &ChannelKey, channel: ChannelId, version: u32, admins: Vec<[u8; 32]>) -> AdminList {
    let mut list = AdminList { channel, version, admins, signature: Signature([0; 64]) };
    list.signature = owner.sign(&list.signed_bytes());
    list
}

/// Checks an admin list against `owner` (the key the link names, which the channel's id must
/// be of): the owner's signature and the list's size.
pub fn check_list(list: &AdminList, owner: &[u8; 32]) -> Result<(), EngineError> {
    if ChannelId::of(owner) != list.channel || list.admins.len() > MAX_CHANNEL_ADMINS {
        return Err(EngineError::ForgedSender);
    }
    verify(owner, &list.signed_bytes(), &list.signature)
        .map_err(|_| EngineError::BadSignature("channel admin list"))
}

/// What the relay checks before it stores a post: signed by one of the admins of `list`, the
/// list it names. Needs no secret.
pub fn check_post(post: &ChannelPost, list: &AdminList) -> Result<(), EngineError> {
    if post.v != CHANNEL_POST_VERSION {
        return Err(EngineError::UnsupportedVersion(post.v));
    }
    if list.channel != post.channel || list.version != post.list || !list.admins.contains(&post.author) {
        return Err(EngineError::ForgedSender);
    }
    verify(&post.author, &post.signed_bytes(), &post.signature)
        .map_err(|_| EngineError::BadSignature("channel post"))
}

/// What a channel's owner hands a new admin over their pairwise session: the link (the content
/// secret to seal under) and an admin key made for them, which the owner lists. Signed by the
/// owner key over `"sotto-channel-grant-v1" || id || epoch BE || SHA-256(secret) || admin
/// public key`, so that nobody else (another admin, a contact who knows the link) can hand
/// out a link or a key for the channel.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChannelGrant {
    pub link: ChannelLink,
    pub admin: ChannelKey,
    pub signature: Signature,
}

impl ChannelGrant {
    fn signed(link: &ChannelLink, admin: &[u8; 32]) -> Vec<u8> {
        let mut m = [GRANT_LABEL, &link.id.0, &link.epoch.to_be_bytes()].concat();
        m.extend_from_slice(&sha256(&[&link.secret]));
        m.extend_from_slice(admin);
        m
    }

    /// A grant of `admin` with `link`, signed by the channel's `owner` key.
    pub fn new(owner: &ChannelKey, link: ChannelLink, admin: ChannelKey) -> ChannelGrant {
        let signature = owner.sign(&Self::signed(&link, &admin.public()));
        ChannelGrant { link, admin, signature }
    }

    /// Checks that the owner the link names made this grant (and the link's id is of it).
    pub fn verify(&self) -> Result<(), EngineError> {
        self.link.verify()?;
        verify(&self.link.owner, &Self::signed(&self.link, &self.admin.public()), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel grant"))
    }
}

/// The same grant: the same channel, epoch and admin key (compared by their public parts).
impl PartialEq for ChannelGrant {
    fn eq(&self, other: &Self) -> bool {
        (self.link.id, self.link.epoch, self.admin.public())
            == (other.link.id, other.link.epoch, other.admin.public())
    }
}

impl Eq for ChannelGrant {}

/// What a channel post says: its plaintext, padded and sealed. Variants are only appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostBody {
    Text(String),
    /// A file, photo or voice message with its caption.
    File(Box<crate::attachment::Attachment>),
}

impl PostBody {
    /// The words an operator or reader sees (a file's caption).
    pub fn text(&self) -> &str {
        match self {
            PostBody::Text(t) => t,
            PostBody::File(a) => &a.caption,
        }
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
    pub fn new(
        name: &str,
        description: &str,
        owner: &ChannelKey,
        e: &mut dyn Entropy,
    ) -> Result<ChannelLink, EngineError> {
        let public = owner.public();
        let mut link = ChannelLink {
            id: ChannelId::of(&public),
            name: name.into(),
            description: description.into(),
            owner: public,
            epoch: 0,
            secret: e.bytes32()?,
            signature: Signature([0; 64]),
        };
        link.signature = owner.sign(&link.signed());
        Ok(link)
    }

    /// What the owner signs: `"sotto-channel-link-v1" || id || epoch BE || SHA-256(secret) ||
    /// u16 BE len || name || u16 BE len || description`.
    fn signed(&self) -> Vec<u8> {
        let mut m = [LINK_LABEL, &self.id.0, &self.epoch.to_be_bytes()].concat();
        m.extend_from_slice(&sha256(&[&self.secret]));
        for text in [&self.name, &self.description] {
            let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(&text.as_bytes()[..usize::from(len)]);
        }
        m
    }

    /// Checks that the owner the link names made it, and that the channel's id is of that key.
    pub fn verify(&self) -> Result<(), EngineError> {
        if ChannelId::of(&self.owner) != self.id {
            return Err(EngineError::ForgedSender);
        }
        verify(&self.owner, &self.signed(), &self.signature)
            .map_err(|_| EngineError::BadSignature("channel link"))
    }

    /// The same channel under the next content secret (a new link): holders of the old one read
    /// nothing posted after.
    pub fn rotated(&self, owner: &ChannelKey, e: &mut dyn Entropy) -> Result<ChannelLink, EngineError> {
        let epoch = self.epoch.checked_add(1).ok_or(EngineError::Internal("no epoch after this one"))?;
        let mut link = ChannelLink {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            owner: self.owner,
            epoch,
            secret: e.bytes32()?,
            signature: Signature([0; 64]),
        };
        link.signature = owner.sign(&link.signed());
        Ok(link)
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
        body: &PostBody,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<ChannelPost, EngineError> {
        if let PostBody::File(a) = body {
            a.check()?;
        }
        let mut nonce = [0u8; 16];
        e.fill(&mut nonce)?;
        let key = self.post_key(&nonce)?;
        let mut post = ChannelPost {
            v: CHANNEL_POST_VERSION,
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
        let body = padded(body)?;
        post.sealed = seal(&key.0, &[0; 12], &post.associated_data(), &body)?;
        post.signature = admin.sign(&post.signed_bytes());
        Ok(post)
    }

    /// Reads a post of this link's epoch: signed by one of `admins` (as the owner the link names
    /// signed them), and sealed for this channel.
    pub fn read(&self, post: &ChannelPost, admins: &AdminList) -> Result<PostBody, EngineError> {
        if ChannelId::of(&self.owner) != self.id || post.epoch != self.epoch {
            return Err(EngineError::ForgedSender);
        }
        check_list(admins, &self.owner)?;
        check_post(post, admins)?;
        open_with(&self.post_key(&post.nonce)?, post)
    }

    /// A report of `post` for the relay's operator: the post and its own key.
    pub fn report(&self, post: &ChannelPost) -> Result<Report, EngineError> {
        Ok(Report { post: post.clone(), key: self.post_key(&post.nonce)? })
    }
}

/// Opens `post` with `key`, which must be the one its admin committed to.
fn open_with(key: &PostKey, post: &ChannelPost) -> Result<PostBody, EngineError> {
    if key.commit() != post.commit {
        return Err(EngineError::Tampered);
    }
    let plain = Zeroizing::new(open(&key.0, &[0; 12], &post.associated_data(), &post.sealed)?);
    let body: PostBody = unpadded(&plain)?;
    if let PostBody::File(a) = &body {
        a.check()?;
    }
    Ok(body)
}

/// A post a subscriber reports, with the key that opens it (and only it).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub post: ChannelPost,
    pub key: PostKey,
}

impl Report {
    /// A report as it came over the wire (`ReportPost`).
    pub fn from_wire(post: ChannelPost, key: [u8; 32]) -> Report {
        Report { post, key: PostKey(key) }
    }

    /// The key as it goes over the wire, to the operator alone.
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.0
    }

    /// What the operator checks: the post is signed by an admin the channel's owner listed
    /// (`admins` and `owner` from the relay's own records, never from the report, and the post
    /// matched against the relay's stored copy), and the key is the one the admin committed to
    /// and opens it. Returns what it says.
    pub fn verify(&self, admins: &AdminList, owner: &[u8; 32]) -> Result<PostBody, EngineError> {
        check_list(admins, owner)?;
        check_post(&self.post, admins)?;
        open_with(&self.key, &self.post)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn t(text: &str) -> PostBody {
        PostBody::Text(text.into())
    }

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
        let link = ChannelLink::new("News", "Daily", &owner, &mut e).unwrap();
        let admins = sign_list(&owner, link.id, 1, vec![owner.public(), admin.public()]);
        Setup { e, owner, admin, link, admins }
    }

    #[test]
    fn admins_post_subscribers_read_and_nobody_else_writes() {
        let Setup { mut e, owner, admin, link, admins } = setup();
        let post = link.post(&admin, 1, &t("first edition"), 10, &mut e).unwrap();
        // The relay checks the signature without any secret.
        check_post(&post, &admins).unwrap();
        assert_eq!(link.read(&post, &admins).unwrap(), t("first edition"));
        // Someone not on the list, or a list the owner did not sign, or a tampered post: refused.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let forged = link.post(&stranger, 1, &t("fake news"), 10, &mut e).unwrap();
        assert_eq!(check_post(&forged, &admins), Err(EngineError::ForgedSender));
        let self_listed = sign_list(&stranger, link.id, 2, vec![stranger.public()]);
        assert!(link.read(&forged, &self_listed).is_err());
        let mut tampered = post.clone();
        tampered.sealed[0] ^= 1;
        assert!(check_post(&tampered, &admins).is_err());
        // A removed admin's new posts are refused once the owner lists without them.
        let fewer = sign_list(&owner, link.id, 2, vec![owner.public()]);
        let late = link.post(&admin, 2, &t("after removal"), 10, &mut e).unwrap();
        assert_eq!(check_post(&late, &fewer), Err(EngineError::ForgedSender));
        // Posts carry no admin identity, only the per-channel key; Debug shows no secret.
        let shown = format!("{link:?} {admin:?}");
        assert!(!shown.contains(&format!("{:?}", link.secret)));
    }

    #[test]
    fn a_report_opens_one_post_and_cannot_be_forged() {
        let Setup { mut e, admin, link, admins, .. } = setup();
        let one = link.post(&admin, 1, &t("reported"), 10, &mut e).unwrap();
        let other = link.post(&admin, 1, &t("not reported"), 10, &mut e).unwrap();
        let report = link.report(&one).unwrap();
        assert_eq!(report.verify(&admins, &link.owner).unwrap(), t("reported"));
        // The key opens that post only.
        let swapped = Report { post: other.clone(), key: report.key.clone() };
        assert!(swapped.verify(&admins, &link.owner).is_err());
        // A made-up post under a made-up key is refused: it is signed by no admin.
        let stranger = ChannelKey::generate(&mut e).unwrap();
        let fake = link.post(&stranger, 1, &t("they said this"), 10, &mut e).unwrap();
        assert!(link.report(&fake).unwrap().verify(&admins, &link.owner).is_err());
        // A post altered after its admin signed it is refused, whatever key comes with it.
        let mut altered = report.clone();
        altered.post.sealed[3] ^= 1;
        assert!(altered.verify(&admins, &link.owner).is_err());
    }

    #[test]
    fn only_the_owner_grants() {
        let Setup { mut e, owner, admin, link, .. } = setup();
        let grant = ChannelGrant::new(&owner, link.clone(), admin.clone());
        grant.verify().unwrap();
        // Another admin (or anyone holding the link) cannot hand out a key or a new link.
        let forged = ChannelGrant::new(&admin, link.clone(), ChannelKey::generate(&mut e).unwrap());
        assert!(forged.verify().is_err());
        // Links: only the owner makes one; a later epoch or another name made by anyone else
        // does not check.
        link.verify().unwrap();
        let mut renamed = link.clone();
        renamed.name = "Not news".into();
        assert!(renamed.verify().is_err());
        let mut later = link.clone();
        later.epoch = u32::MAX;
        assert!(later.verify().is_err());
        assert!(link.rotated(&admin, &mut e).unwrap().verify().is_err());
        let mut swapped = grant.clone();
        swapped.link = link.rotated(&owner, &mut e).unwrap();
        assert!(swapped.verify().is_err(), "the secret is bound");
    }

    #[test]
    fn a_new_link_cuts_off_the_old_one() {
        let Setup { mut e, owner, admin, link, admins } = setup();
        let rotated = link.rotated(&owner, &mut e).unwrap();
        let after = rotated.post(&admin, 1, &t("for the new link only"), 10, &mut e).unwrap();
        assert_eq!(rotated.read(&after, &admins).unwrap(), t("for the new link only"));
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
        let squatted = sign_list(&stranger, link.id, 9, vec![stranger.public()]);
        assert_eq!(check_list(&squatted, &stranger.public()), Err(EngineError::ForgedSender));
        // A newer list replaces an older one, never the other way round.
        let newer = sign_list(&owner, link.id, 2, vec![owner.public()]);
        assert!(newer.replaces(&admins) && !admins.replaces(&newer) && !admins.replaces(&admins));
        // A post made under list 1 stays readable after its admin is removed in list 2.
        let before = link.post(&admin, 1, &t("kept"), 10, &mut e).unwrap();
        assert_eq!(link.read(&before, &admins).unwrap(), t("kept"));
        assert_eq!(check_post(&before, &newer), Err(EngineError::ForgedSender), "not under list 2");
        // A report with any key but the committed one is refused.
        let mut report = link.report(&before).unwrap();
        report.key = link.rotated(&owner, &mut e).unwrap().report(&before).unwrap().key;
        assert_eq!(report.verify(&admins, &link.owner), Err(EngineError::Tampered));
        // A post names its epoch: the next link does not even try an old one.
        let next = link.rotated(&owner, &mut e).unwrap();
        assert_eq!(next.read(&before, &admins), Err(EngineError::ForgedSender));
        // The signature covers the time: changing it is refused.
        let mut moved = before.clone();
        moved.posted_at_ms += 1;
        assert!(check_post(&moved, &admins).is_err());
    }
}
