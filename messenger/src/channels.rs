//! The channels we follow or run: each one's link (with its content secret), our keys if we
//! run it, the admin lists checked so far, how far we have read it, the newest posts as the
//! relay holds them (so one can be reported), counts and the operator's block. One record per
//! channel.
//!
//! Like topics, channels are read and written only on the anonymous line, and a subscriber is
//! counted under a random member token made for that channel alone: the relay ties no mailbox
//! to a channel. It still sees what any server sees: the IP address and timing of the
//! connection that reads or posts, and a stable token per follower and channel.

use crate::error::MessengerError;
use crate::records::{RecordKey, RecordWrite, encode};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use sotto_engine::channel::{ChannelKey, ChannelLink, check_list};
use sotto_engine::consts::ENVELOPE_TTL_SECS;
use sotto_shared::channel::{AdminList, ChannelId, ChannelPost, ChannelState};
use sotto_shared::limits::MAX_CHANNEL_LISTS;
use sotto_shared::{Address, ClientFrame, MessageId, TopicId};

/// The fragment prefix that marks a channel link.
pub const CHANNEL_LINK_PATH: &str = "#/channel/";
const LINK_FORMAT: u8 = 1;
/// Longest link payload read (a real one is about 150 characters plus the description).
const MAX_LINK_CHARS: usize = 2048;
/// Longest description a channel may have, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 500;
/// How many of the newest posts are kept as the relay holds them, so that one can be reported.
pub const REPORTABLE_POSTS: usize = 50;
/// Posts kept aside while the admin list they name has not arrived yet.
const MAX_UNCHECKED: usize = 256;

/// What we are to a channel.
#[derive(Clone, Serialize, Deserialize)]
pub enum ChannelRole {
    /// We made it: the owner key signs admin lists, the admin key posts.
    Owner {
        owner: ChannelKey,
        admin: ChannelKey,
    },
    Subscriber,
    /// Its owner made us an admin: we post with this key.
    Admin {
        admin: ChannelKey,
    },
}

/// A post of ours the relay has not confirmed yet, and the chat message it carries.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingChannelPost {
    pub post: ChannelPost,
    pub message: u64,
}

/// One channel as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct ChannelEntry {
    pub link: ChannelLink,
    pub role: ChannelRole,
    /// Admin lists checked against the owner key the link names, oldest first.
    pub lists: Vec<AdminList>,
    /// The last post read.
    pub cursor: u64,
    /// Our random member token for this channel (counted by the relay, naming nobody).
    pub member: [u8; 16],
    pub muted: bool,
    pub since_ms: u64,
    pub subscribers: u64,
    /// Views by post id, as the relay last counted them (lists, not maps: each map type costs
    /// the web app kilobytes of code).
    pub views: Vec<([u8; 16], u64)>,
    /// The newest posts read, by number, oldest first: `REPORTABLE_POSTS` at most.
    pub recent: Vec<(u64, ChannelPost)>,
    /// Set by the relay's operator: the reason given.
    pub blocked: Option<String>,
    /// We asked the relay for the channel's state (for a list a post names) and wait for it:
    /// one question at a time (in memory).
    #[serde(skip)]
    pub asked: bool,
    pub pending: Vec<PendingChannelPost>,
    /// Posts naming an admin list we have not seen yet, by number.
    pub unchecked: Vec<(u64, ChannelPost)>,
    /// If we own it: the admin keys we made for contacts, and whose each is (they get the new
    /// link when it rotates).
    pub admins: Vec<(ChannelKey, Address)>,
}

impl ChannelEntry {
    pub fn new(link: ChannelLink, role: ChannelRole, member: [u8; 16], since_ms: u64) -> ChannelEntry {
        ChannelEntry {
            link,
            role,
            lists: Vec::new(),
            cursor: 0,
            member,
            muted: false,
            since_ms,
            subscribers: 0,
            views: Vec::new(),
            recent: Vec::new(),
            blocked: None,
            asked: false,
            pending: Vec::new(),
            unchecked: Vec::new(),
            admins: Vec::new(),
        }
    }

    pub fn id(&self) -> ChannelId {
        self.link.id
    }

    pub fn is_owner(&self) -> bool {
        matches!(self.role, ChannelRole::Owner { .. })
    }

    /// The key we post with, if we may post.
    pub fn admin_key(&self) -> Option<&ChannelKey> {
        match &self.role {
            ChannelRole::Owner { admin, .. } | ChannelRole::Admin { admin } => Some(admin),
            ChannelRole::Subscriber => None,
        }
    }

    /// Whether the newest list we hold names our admin key.
    pub fn may_post(&self) -> bool {
        self.admin_key().is_some_and(|k| self.newest().is_some_and(|l| l.admins.contains(&k.public())))
    }

    pub fn write(&self) -> RecordWrite {
        (RecordKey::Channel(self.id()), Some(encode(self)))
    }

    pub fn subscribe_frame(&self) -> ClientFrame {
        ClientFrame::SubscribeChannel { channel: self.id(), after: self.cursor, member: self.member }
    }

    /// The newest list we checked.
    pub fn newest(&self) -> Option<&AdminList> {
        self.lists.last()
    }

    pub fn list(&self, version: u32) -> Option<&AdminList> {
        self.lists.iter().find(|l| l.version == version)
    }

    /// Takes the relay's view of the channel: lists that check against the owner the link
    /// names (a relay cannot make one up), counts and the block. Returns whether anything
    /// changed, and whether the lists did.
    pub fn take_state(&mut self, state: &ChannelState) -> (bool, bool) {
        self.asked = false;
        let newest = self.newest().map(|l| l.version);
        let before = (self.lists.len(), self.subscribers, self.blocked.clone(), self.views.clone());
        for list in &state.lists {
            if list.channel == self.id()
                && self.list(list.version).is_none()
                && check_list(list, &self.link.owner).is_ok()
            {
                let at = self.lists.partition_point(|l| l.version < list.version);
                self.lists.insert(at, list.clone());
            }
        }
        let over = self.lists.len().saturating_sub(MAX_CHANNEL_LISTS);
        self.lists.drain(..over);
        self.subscribers = state.subscribers;
        self.blocked = state.blocked.clone();
        self.views = (state.views.iter())
            .filter_map(|(seq, n)| self.recent.iter().find(|(s, _)| s == seq).map(|(_, p)| (p.nonce, *n)))
            .collect();
        let lists_changed = (self.lists.len(), newest) != (before.0, self.newest().map(|l| l.version));
        (
            before != (self.lists.len(), self.subscribers, self.blocked.clone(), self.views.clone()),
            lists_changed,
        )
    }

    /// Keeps a post read at `seq` as the relay holds it (the newest `REPORTABLE_POSTS`).
    pub fn remember(&mut self, seq: u64, post: ChannelPost) {
        // Posts come in order: a new one goes last.
        self.recent.push((seq, post));
        let over = self.recent.len().saturating_sub(REPORTABLE_POSTS);
        self.recent.drain(..over);
    }

    pub fn keep_unchecked(&mut self, seq: u64, post: ChannelPost) {
        if self.unchecked.len() < MAX_UNCHECKED && self.unchecked.iter().all(|(s, _)| *s != seq) {
            self.unchecked.push((seq, post));
        }
    }

    pub fn reportable(&self, id: &[u8; 16]) -> Option<&ChannelPost> {
        self.recent.iter().map(|(_, p)| p).find(|p| &p.nonce == id)
    }

    pub fn views_of(&self, id: &[u8; 16]) -> Option<u64> {
        self.views.iter().find(|(m, _)| m == id).map(|(_, n)| *n)
    }

    /// Moves the cursor past `seq`; `false` if it was read already.
    pub fn advance(&mut self, seq: u64) -> bool {
        if seq <= self.cursor {
            return false;
        }
        self.cursor = seq;
        true
    }

    /// Our post `id` is stored: the chat message it carries, if it was pending.
    pub fn settle(&mut self, id: &MessageId) -> Option<u64> {
        let at = self.pending.iter().position(|p| p.post.nonce == id.0)?;
        Some(self.pending.remove(at).message)
    }

    /// Our unconfirmed posts, signed again at `now_ms` (the relay refuses a post whose time is
    /// far from its clock, and these may have waited offline).
    pub fn pending_frames(&mut self, now_ms: u64) -> Vec<ClientFrame> {
        let Some(admin) = self.admin_key().cloned() else { return Vec::new() };
        (self.pending.iter_mut())
            .map(|p| {
                admin.restamp(&mut p.post, now_ms);
                ClientFrame::PublishPost { post: Box::new(p.post.clone()), ttl_secs: ENVELOPE_TTL_SECS }
            })
            .collect()
    }

    /// What an anonymous line that just came up sends for this channel: the newest admin list
    /// if we own it (the relay may never have taken it: sent offline, or refused for a while;
    /// the same list again is harmless), the subscription, our unconfirmed posts.
    fn resume(&mut self, now_ms: u64) -> Vec<ClientFrame> {
        let mut frames = Vec::new();
        if let (true, Some(list)) = (self.is_owner(), self.newest()) {
            frames.push(ClientFrame::ChannelAdmins { owner: self.link.owner, list: Box::new(list.clone()) });
        }
        frames.push(self.subscribe_frame());
        frames.extend(self.pending_frames(now_ms));
        frames
    }
}

/// Every channel (a person follows tens, not thousands: a list is enough).
#[derive(Default)]
pub struct Channels {
    all: Vec<ChannelEntry>,
    /// Each channel's topic, in the same order (derived once, not per post read).
    topics: Vec<TopicId>,
}

impl Channels {
    pub fn restore(&mut self, entry: ChannelEntry) {
        self.insert(entry);
    }

    pub fn insert(&mut self, entry: ChannelEntry) -> RecordWrite {
        let write = entry.write();
        match self.all.iter().position(|c| c.id() == entry.id()) {
            Some(i) => self.all[i] = entry,
            None => {
                self.topics.push(entry.id().topic());
                self.all.push(entry);
            }
        }
        write
    }

    pub fn remove(&mut self, id: &ChannelId) -> Option<ChannelEntry> {
        let i = self.all.iter().position(|c| c.id() == *id)?;
        self.topics.remove(i);
        Some(self.all.remove(i))
    }

    pub fn get(&self, id: &ChannelId) -> Option<&ChannelEntry> {
        self.all.iter().find(|c| c.id() == *id)
    }

    pub fn get_mut(&mut self, id: &ChannelId) -> Option<&mut ChannelEntry> {
        self.all.iter_mut().find(|c| c.id() == *id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ChannelEntry> {
        self.all.iter()
    }

    /// The channel whose posts live in `topic`.
    pub fn by_topic(&self, topic: &TopicId) -> Option<ChannelId> {
        self.topics.iter().position(|t| t == topic).map(|i| self.all[i].id())
    }

    /// The channel a pending post of ours is in.
    pub fn by_post(&self, id: &MessageId) -> Option<ChannelId> {
        self.all.iter().find(|c| c.pending.iter().any(|p| p.post.nonce == id.0)).map(ChannelEntry::id)
    }

    /// What an anonymous line that just came up sends for every channel (see
    /// [`ChannelEntry::resume`]).
    pub fn resume(&mut self, now_ms: u64) -> Vec<ClientFrame> {
        self.all.iter_mut().flat_map(|c| c.resume(now_ms)).collect()
    }

    /// Our post `id` again, signed at `now_ms`, if it is still unconfirmed.
    pub fn resend(&mut self, id: &MessageId, now_ms: u64) -> Option<ClientFrame> {
        let entry = self.all.iter_mut().find(|c| c.pending.iter().any(|p| p.post.nonce == id.0))?;
        let admin = entry.admin_key()?.clone();
        let pending = entry.pending.iter_mut().find(|p| p.post.nonce == id.0)?;
        admin.restamp(&mut pending.post, now_ms);
        Some(ClientFrame::PublishPost { post: Box::new(pending.post.clone()), ttl_secs: ENVELOPE_TTL_SECS })
    }

    pub fn pending(&self) -> usize {
        self.all.iter().map(|c| c.pending.len()).sum()
    }
}

/// A channel link's payload (after [`CHANNEL_LINK_PATH`]).
pub fn link_payload(link: &ChannelLink) -> String {
    let bytes = postcard::to_extend(link, vec![LINK_FORMAT]).unwrap_or_default();
    Base64UrlUnpadded::encode_string(&bytes)
}

/// Reads a channel link's payload.
pub fn read_link(payload: &str) -> Result<ChannelLink, MessengerError> {
    let payload = payload.strip_prefix(CHANNEL_LINK_PATH).unwrap_or(payload);
    if payload.len() > MAX_LINK_CHARS {
        return Err(MessengerError::BadChannelLink);
    }
    let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|_| MessengerError::BadChannelLink)?;
    let Some((&LINK_FORMAT, body)) = bytes.split_first() else { return Err(MessengerError::BadChannelLink) };
    let link: ChannelLink = postcard::from_bytes(body).map_err(|_| MessengerError::BadChannelLink)?;
    // The id must be of the owner key: then only the owner signs its admin lists.
    if ChannelId::of(&link.owner) != link.id || link.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(MessengerError::BadChannelLink);
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_engine::random::OsEntropy;

    #[test]
    fn links_read_back_and_refuse_a_foreign_id() {
        let mut e = OsEntropy;
        let owner = ChannelKey::generate(&mut e).unwrap();
        let link = ChannelLink::new("News", "Every morning", &owner, &mut e).unwrap();
        let back = read_link(&format!("{CHANNEL_LINK_PATH}{}", link_payload(&link))).unwrap();
        assert_eq!((back.id, back.name.as_str(), back.secret), (link.id, "News", link.secret));
        let mut forged = link.clone();
        forged.id = ChannelId([9; 16]);
        assert!(matches!(read_link(&link_payload(&forged)), Err(MessengerError::BadChannelLink)));
        assert!(matches!(read_link("%%%"), Err(MessengerError::BadChannelLink)));
    }
}
