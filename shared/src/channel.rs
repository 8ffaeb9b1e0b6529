//! Broadcast channels on the wire: the channel's id, the owner-signed admin list and a post as
//! the relay stores and checks it. The exact bytes each signature covers are defined here, once;
//! the signing and checking are the engine's (`engine/src/channel.rs`), which the relay uses.

use crate::ids::TopicId;
use crate::signature::Signature;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of [`ChannelPost`].
pub const CHANNEL_POST_VERSION: u8 = 1;

/// A channel, by an id bound to its owner key ([`ChannelId::of`]), so nobody else can sign an
/// admin list for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub [u8; 16]);

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

impl ChannelId {
    /// The id of the channel whose owner key is `owner`: `SHA-256("sotto-channel-id-v1" ||
    /// owner)[..16]`.
    pub fn of(owner: &[u8; 32]) -> ChannelId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&sha256(&[b"sotto-channel-id-v1", owner])[..16]);
        ChannelId(id)
    }

    /// The relay topic that holds the channel's posts: `SHA-256("sotto-channel-topic-v1" ||
    /// id)`. Anyone may compute it; only `SubscribeChannel` reads it (which checks blocks) and
    /// only `PublishPost` writes it (which checks the admin list).
    pub fn topic(&self) -> TopicId {
        TopicId(sha256(&[b"sotto-channel-topic-v1", &self.0]))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<ChannelId> {
        crate::ids::unhex(text).map(ChannelId)
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
    /// What the owner signs: `"sotto-channel-admins-v1" || channel || version BE || each key`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m =
            [b"sotto-channel-admins-v1".as_slice(), &self.channel.0, &self.version.to_be_bytes()].concat();
        for a in &self.admins {
            m.extend_from_slice(a);
        }
        m
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
    /// The content secret it is sealed under (which link reads it).
    pub epoch: u32,
    /// The admin list it was posted under: a post stays checkable after its admin is removed,
    /// against the list of its time.
    pub list: u32,
    /// The admin key that signed it.
    pub author: [u8; 32],
    /// By the author's clock: a relay refuses a post far from its own clock, and a nonce it
    /// holds, so an old post cannot come back as new.
    pub posted_at_ms: u64,
    /// Random; names the post (its message id) and derives its key.
    pub nonce: [u8; 16],
    /// SHA-256 of the post's own key (ChaCha20-Poly1305 does not commit to its key): a report
    /// must come with the very key the admin sealed under.
    pub commit: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
    pub signature: Signature,
}

impl ChannelPost {
    /// What the author signs: `"sotto-channel-post-v1" || v || channel || epoch BE || list BE
    /// || author || posted_at_ms BE || nonce || commit || SHA-256(sealed)`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = [b"sotto-channel-post-v1".as_slice(), &[self.v], &self.channel.0].concat();
        m.extend_from_slice(&self.epoch.to_be_bytes());
        m.extend_from_slice(&self.list.to_be_bytes());
        m.extend_from_slice(&self.author);
        m.extend_from_slice(&self.posted_at_ms.to_be_bytes());
        m.extend_from_slice(&self.nonce);
        m.extend_from_slice(&self.commit);
        m.extend_from_slice(&sha256(&[&self.sealed]));
        m
    }

    /// The associated data its sealing binds: `v || channel || epoch BE || author || nonce`.
    pub fn associated_data(&self) -> Vec<u8> {
        let mut ad = [&[self.v][..], &self.channel.0].concat();
        ad.extend_from_slice(&self.epoch.to_be_bytes());
        ad.extend_from_slice(&self.author);
        ad.extend_from_slice(&self.nonce);
        ad
    }

    /// The id the post travels and is stored under: its nonce.
    pub fn id(&self) -> crate::MessageId {
        crate::MessageId(self.nonce)
    }
}

/// What the relay tells a channel's reader: the owner's admin lists it keeps (oldest first), an
/// approximate count of subscribers, approximate views of recent posts, and whether the
/// operator blocked the channel (with the reason given).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub channel: ChannelId,
    pub lists: Vec<AdminList>,
    pub subscribers: u64,
    /// `(seq, views)` of the newest posts.
    pub views: Vec<(u64, u64)>,
    pub blocked: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bound_and_round_trip() {
        let a = ChannelId::of(&[1; 32]);
        assert_ne!(a, ChannelId::of(&[2; 32]));
        assert_eq!(ChannelId::from_hex(&a.to_hex()), Some(a));
        assert_eq!(ChannelId::from_hex("zz"), None);
        assert_ne!(a.topic(), ChannelId::of(&[2; 32]).topic());
    }
}
