//! The groups we are in: each one's engine state ([`Group`]), how far we have read its topics,
//! and our posts the relay has not confirmed yet. One record per group.
//!
//! Topics are read and written only on the anonymous line (the relay refuses them on a
//! logged-in connection), so the relay never ties our mailbox to a group.

use crate::doors::Door;
use crate::records::{RecordKey, RecordWrite, encode};
use serde::{Deserialize, Serialize};
use sotto_engine::consts::ENVELOPE_TTL_SECS;
use sotto_engine::group::Group;
use sotto_engine::group_link::JoinRequest;
use sotto_engine::handover::{Rekey, Welcome};
use sotto_engine::sender_keys::GroupId;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::limits::MAX_TOPICS_PER_SUBSCRIBE;
use sotto_shared::{Address, ClientFrame, MessageId, TopicId, WriteKey};
use std::collections::BTreeMap;

/// A post the relay has not confirmed yet: sent again each time the anonymous line comes up.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingPost {
    pub id: MessageId,
    pub topic: TopicId,
    pub write: WriteKey,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// The chat message it carries (its local sequence number), whose status follows it.
    pub message: Option<u64>,
    /// How long the relay may keep it (see `Message::envelope_ttl_secs`).
    pub ttl_secs: u32,
}

impl PendingPost {
    pub fn frame(&self) -> ClientFrame {
        ClientFrame::Post {
            id: self.id,
            topic: self.topic,
            write: self.write,
            ttl_secs: self.ttl_secs,
            payload: self.payload.clone(),
        }
    }
}

/// A pending post as record versions up to 5 stored it: every post lived as long as the relay
/// allows.
#[derive(Deserialize)]
struct PendingPostV5 {
    id: MessageId,
    topic: TopicId,
    write: WriteKey,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
    message: Option<u64>,
}

/// A group as record versions up to 5 stored it (its pending posts without their TTL).
#[derive(Deserialize)]
pub(crate) struct GroupEntryV5 {
    group: Group,
    cursors: Vec<(TopicId, u64)>,
    pending: Vec<PendingPostV5>,
    since_ms: u64,
    gone: bool,
    muted: bool,
    awaiting: Vec<([u8; 32], Owed)>,
    early: Vec<([u8; 32], Rekey)>,
    doors: Vec<Door>,
    names: Vec<([u8; 32], String)>,
    reads: Vec<([u8; 16], Vec<[u8; 32]>)>,
    admitting: Vec<JoinRequest>,
}

impl From<GroupEntryV5> for GroupEntry {
    fn from(g: GroupEntryV5) -> GroupEntry {
        let GroupEntryV5 {
            group,
            cursors,
            pending,
            since_ms,
            gone,
            muted,
            awaiting,
            early,
            doors,
            names,
            reads,
            admitting,
        } = g;
        let pending = pending
            .into_iter()
            .map(|p| PendingPost {
                id: p.id,
                topic: p.topic,
                write: p.write,
                payload: p.payload,
                message: p.message,
                ttl_secs: ENVELOPE_TTL_SECS,
            })
            .collect();
        GroupEntry {
            group,
            cursors,
            pending,
            since_ms,
            gone,
            muted,
            awaiting,
            early,
            doors,
            names,
            reads,
            admitting,
        }
    }
}

/// A stored group, of any record version.
pub fn decode_group(key: &RecordKey, bytes: &[u8]) -> Result<GroupEntry, crate::MessengerError> {
    let damaged = |e: postcard::Error| crate::MessengerError::Damaged(format!("{key}: {e}"));
    match bytes.split_first() {
        Some((1..=5, body)) => postcard::from_bytes::<GroupEntryV5>(body).map(Into::into).map_err(damaged),
        _ => crate::records::decode(key, bytes),
    }
}

/// What we owe a member we have no session with yet (not our contact): handed over once their
/// prekey bundle arrives.
#[derive(Clone, Serialize, Deserialize)]
pub enum Owed {
    /// They joined by a link of ours.
    Welcome(Welcome),
    /// Someone was removed or left.
    Rekey(Box<Rekey>),
}

/// One group as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct GroupEntry {
    pub group: Group,
    /// The last post read of each topic we read (the current epoch's, and the one before).
    cursors: Vec<(TopicId, u64)>,
    pending: Vec<PendingPost>,
    /// When we made or joined it.
    pub since_ms: u64,
    /// We left, or were removed: the chat stays, read-only.
    pub gone: bool,
    /// Its messages arrive without notifications.
    pub muted: bool,
    /// What members we have no session with yet (not our contacts) are owed: sent once their
    /// prekey bundle arrives.
    awaiting: Vec<([u8; 32], Owed)>,
    /// Rekeys that came before the posts they follow (a later epoch, or from an admin whose
    /// promotion we have not read yet), by their sender: tried again as the group moves on.
    early: Vec<([u8; 32], Rekey)>,
    /// Invite links we made into it (we are an admin): each door is a topic we read.
    pub doors: Vec<Door>,
    /// Names people gave when they asked to join by a link of ours (they are not our contacts).
    names: Vec<([u8; 32], String)>,
    /// Our latest messages, each with the members who said they read it (oldest first).
    reads: Vec<([u8; 16], Vec<[u8; 32]>)>,
    /// People a link of ours lets in, until their prekey bundle comes (see `admit_now`).
    admitting: Vec<JoinRequest>,
}

/// People being let in by our links at once, per group (each waits for their bundle).
const MAX_ADMITTING: usize = 32;

/// Our messages a group keeps read receipts for; older ones show no count. (Who read what
/// lives in the group's record, rewritten with every post: 50 × 100 readers × 32 bytes at most.)
const MAX_TRACKED_READS: usize = 50;

/// Groups up to this many members send read receipts: each receipt is a post every member
/// reads, so their cost grows with the square of the group.
pub const MAX_RECEIPT_MEMBERS: usize = 100;

/// Most message ids one group receipt names (a backlog read at once takes several).
pub const MAX_RECEIPT_IDS: usize = 1000;

/// Early rekeys a group keeps (a misbehaving admin could send any number).
const MAX_EARLY_REKEYS: usize = 16;

impl GroupEntry {
    pub fn new(group: Group, since_ms: u64) -> GroupEntry {
        GroupEntry {
            group,
            cursors: Vec::new(),
            pending: Vec::new(),
            since_ms,
            gone: false,
            muted: false,
            awaiting: Vec::new(),
            early: Vec::new(),
            doors: Vec::new(),
            names: Vec::new(),
            reads: Vec::new(),
            admitting: Vec::new(),
        }
    }

    pub fn id(&self) -> GroupId {
        self.group.id()
    }

    pub fn write(&self) -> RecordWrite {
        (RecordKey::Group(self.id()), Some(encode(self)))
    }

    /// The topics to read, each from where we stopped (none once we are gone): the epochs', and
    /// the doors of our links.
    fn topics(&self) -> Vec<(TopicId, WriteKey)> {
        if self.gone {
            return Vec::new();
        }
        let (_, topic, write) = self.group.topic();
        let doors = self.doors.iter().map(Door::topic);
        std::iter::once((topic, write)).chain(self.group.previous_topic()).chain(doors).collect()
    }

    /// The name someone gave when they asked to join by a link of ours.
    pub fn given_name(&self, key: &[u8; 32]) -> Option<&String> {
        self.names.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }

    /// Keeps the name someone gave when asking to join (one per member).
    pub fn remember_name(&mut self, key: [u8; 32], name: String) {
        self.names.retain(|(k, _)| *k != key);
        self.names.push((key, name));
    }

    /// Keeps someone we let in until their bundle comes (past the bound, the oldest goes).
    pub fn admit_later(&mut self, request: JoinRequest) {
        if self.admitting.len() >= MAX_ADMITTING {
            self.admitting.remove(0);
        }
        self.admitting.push(request);
    }

    /// Those waiting for the bundle of `address`, taken out.
    pub fn take_admitting(&mut self, address: &Address) -> Vec<JoinRequest> {
        let (theirs, rest) = std::mem::take(&mut self.admitting)
            .into_iter()
            .partition(|r| Address::from_identity_key(&r.identity.signing_key) == *address);
        self.admitting = rest;
        theirs
    }

    /// Stops reading the doors of our links (we left, or are no admin any more): the frames.
    pub fn close_doors(&mut self) -> Vec<ClientFrame> {
        let doors = std::mem::take(&mut self.doors);
        self.admitting.clear();
        doors.iter().map(|d| ClientFrame::Unsubscribe { topic: d.topic().0 }).collect()
    }

    /// Whether its members send read receipts (it is small enough, and we are in it).
    pub fn has_receipts(&self) -> bool {
        !self.gone && self.group.roster().members.len() <= MAX_RECEIPT_MEMBERS
    }

    /// Starts counting who reads our message `id`.
    pub fn track_reads(&mut self, id: [u8; 16]) {
        if self.reads.len() >= MAX_TRACKED_READS {
            self.reads.remove(0);
        }
        self.reads.push((id, Vec::new()));
    }

    /// `reader` read our message `id`; whether that is news.
    pub fn note_read(&mut self, id: &[u8; 16], reader: [u8; 32]) -> bool {
        match self.reads.iter_mut().find(|(m, _)| m == id) {
            Some((_, readers)) if !readers.contains(&reader) => {
                readers.push(reader);
                true
            }
            _ => false,
        }
    }

    /// How many of the members now in the group read our message `id`, of how many others
    /// there are; `None` for a message we do not count.
    pub fn reads(&self, id: &[u8; 16]) -> Option<(usize, usize)> {
        let (_, readers) = self.reads.iter().find(|(m, _)| m == id)?;
        let members = &self.group.roster().members;
        let read = readers.iter().filter(|r| members.contains_key(*r)).count();
        Some((read, members.len().saturating_sub(1)))
    }

    /// The door of ours that `topic` is, if any.
    pub fn door_mut(&mut self, topic: &TopicId) -> Option<&mut Door> {
        self.doors.iter_mut().find(|d| d.topic().0 == *topic)
    }

    /// Whether `topic` is the door of one of our links.
    pub fn has_door(&self, topic: &TopicId) -> bool {
        self.doors.iter().any(|d| d.topic().0 == *topic)
    }

    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.topics()
            .into_iter()
            .map(|(topic, write)| Subscription {
                topic,
                write_hash: topic_write_hash(&write),
                after: self.cursor(&topic),
            })
            .collect()
    }

    /// What to tell the relay after the group moved (or on first reading it): subscribe to the
    /// topics read now, and unsubscribe from those no longer read, so a long-lived connection
    /// does not pile up old epochs' topics.
    pub fn move_frames(&mut self) -> Vec<ClientFrame> {
        let read: Vec<TopicId> = self.topics().into_iter().map(|(t, _)| t).collect();
        let gone: Vec<TopicId> = self.cursors.iter().map(|(t, _)| *t).filter(|t| !read.contains(t)).collect();
        self.cursors.retain(|(t, _)| read.contains(t));
        let mut frames = vec![ClientFrame::Subscribe { topics: self.subscriptions() }];
        frames.extend(gone.into_iter().map(|topic| ClientFrame::Unsubscribe { topic }));
        frames
    }

    fn cursor(&self, topic: &TopicId) -> u64 {
        self.cursors.iter().find(|(t, _)| t == topic).map_or(0, |(_, c)| *c)
    }

    /// Notes that `topic` was read through `seq`; `false` if that was read already. Cursors of
    /// topics no longer read are dropped.
    pub fn advance(&mut self, topic: &TopicId, seq: u64) -> bool {
        let read: Vec<TopicId> = self.topics().into_iter().map(|(t, _)| t).collect();
        self.cursors.retain(|(t, _)| read.contains(t));
        match self.cursors.iter_mut().find(|(t, _)| t == topic) {
            Some((_, c)) if *c >= seq => false,
            Some((_, c)) => {
                *c = seq;
                true
            }
            None => {
                self.cursors.push((*topic, seq));
                true
            }
        }
    }

    /// Queues posts for `topic`, with the relay's TTL for them; returns the frame to send now,
    /// if any. The last carries `message`. A group's posts go one at a time, each once the one
    /// before is confirmed, so a post the relay refuses for a while is never overtaken and
    /// everyone reads them in the order they were written.
    pub fn queue(
        &mut self,
        topic: TopicId,
        write: WriteKey,
        (payloads, ttl_secs): (Vec<Vec<u8>>, u32),
        message: Option<u64>,
        ids: impl Iterator<Item = MessageId>,
    ) -> Vec<ClientFrame> {
        let n = payloads.len();
        let posts: Vec<PendingPost> = payloads
            .into_iter()
            .zip(ids)
            .enumerate()
            .map(|(i, (payload, id))| PendingPost {
                id,
                topic,
                write,
                payload,
                message: if i + 1 == n { message } else { None },
                ttl_secs,
            })
            .collect();
        let idle = self.pending.is_empty();
        self.pending.extend(posts);
        if idle { self.next_frame().into_iter().collect() } else { Vec::new() }
    }

    /// The frame of the first post waiting for the relay (the one to send, or send again).
    pub fn next_frame(&self) -> Option<ClientFrame> {
        self.pending.first().map(PendingPost::frame)
    }

    /// Our posts the relay has not confirmed, in order.
    pub fn pending(&self) -> impl Iterator<Item = &PendingPost> {
        self.pending.iter()
    }

    /// Keeps what a member is owed until we have a session with them.
    pub fn await_session(&mut self, member: [u8; 32], owed: Owed) {
        // A member owed several rekeys needs only the newest (after their welcome, if owed).
        if matches!(owed, Owed::Rekey(_)) {
            self.awaiting.retain(|(m, o)| *m != member || matches!(o, Owed::Welcome(_)));
        }
        self.awaiting.push((member, owed));
    }

    /// What is waiting for a session with `address`, taken out, in order.
    pub fn take_awaiting(&mut self, address: &Address) -> Vec<Owed> {
        let (theirs, rest) = std::mem::take(&mut self.awaiting)
            .into_iter()
            .partition(|(m, _)| Address::from_identity_key(m) == *address);
        self.awaiting = rest;
        theirs.into_iter().map(|(_, r)| r).collect()
    }

    /// Keeps a rekey that came too early, to try again later.
    pub fn keep_early(&mut self, from: [u8; 32], rekey: Rekey) {
        if self.early.len() >= MAX_EARLY_REKEYS {
            self.early.remove(0);
        }
        self.early.push((from, rekey));
    }

    /// The early rekeys, taken out (those that still do not apply are kept again).
    pub fn take_early(&mut self) -> Vec<([u8; 32], Rekey)> {
        std::mem::take(&mut self.early)
    }

    /// Drops the posts queued for `topic` (an epoch nobody else reads): the chat messages they
    /// carried, by local sequence number, to write again.
    pub fn drop_pending(&mut self, topic: &TopicId) -> Vec<u64> {
        let (dropped, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| p.topic == *topic);
        self.pending = kept;
        dropped.into_iter().filter_map(|p| p.message).collect()
    }

    /// The relay confirmed post `id`: it leaves the queue; returns the message it carried.
    pub fn settle(&mut self, id: MessageId) -> Option<Option<u64>> {
        let i = self.pending.iter().position(|p| p.id == id)?;
        Some(self.pending.remove(i).message)
    }
}

/// Every group we are in, by id.
#[derive(Default)]
pub struct Groups {
    by_id: BTreeMap<GroupId, GroupEntry>,
}

impl Groups {
    pub fn restore(&mut self, entry: GroupEntry) {
        self.by_id.insert(entry.id(), entry);
    }

    pub fn insert(&mut self, entry: GroupEntry) -> RecordWrite {
        let write = entry.write();
        self.by_id.insert(entry.id(), entry);
        write
    }

    pub fn get(&self, id: &GroupId) -> Option<&GroupEntry> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &GroupId) -> Option<&mut GroupEntry> {
        self.by_id.get_mut(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &GroupEntry> {
        self.by_id.values()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The group that reads `topic`.
    pub fn by_topic(&self, topic: &TopicId) -> Option<GroupId> {
        self.by_id.values().find(|g| g.topics().iter().any(|(t, _)| t == topic)).map(GroupEntry::id)
    }

    /// Members we wait for a session with (to hand them a rekey or a welcome), and people
    /// our links let in whose bundle we wait for.
    pub fn awaiting(&self) -> Vec<Address> {
        let mut all: Vec<Address> = self
            .by_id
            .values()
            .flat_map(|g| {
                let owed = g.awaiting.iter().map(|(m, _)| *m);
                owed.chain(g.admitting.iter().map(|r| r.identity.signing_key))
            })
            .map(|key| Address::from_identity_key(&key))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Takes out of each group what `take` takes from it (what waits for one member's keys):
    /// by group, the groups that gave something, and the writes of those groups.
    pub fn take_from_each<T>(
        &mut self,
        mut take: impl FnMut(&mut GroupEntry) -> Vec<T>,
    ) -> (Vec<(GroupId, Vec<T>)>, Vec<RecordWrite>) {
        let (mut taken, mut writes) = (Vec::new(), Vec::new());
        for entry in self.by_id.values_mut() {
            let items = take(entry);
            if !items.is_empty() {
                writes.push(entry.write());
                taken.push((entry.id(), items));
            }
        }
        (taken, writes)
    }

    /// The group whose post `id` is waiting for the relay.
    pub fn by_post(&self, id: MessageId) -> Option<GroupId> {
        self.by_id.values().find(|g| g.pending.iter().any(|p| p.id == id)).map(GroupEntry::id)
    }

    /// Subscribes (in frames of at most [`MAX_TOPICS_PER_SUBSCRIBE`]) to every topic we read.
    pub fn subscribe_all(&self) -> Vec<ClientFrame> {
        let all: Vec<Subscription> = self.by_id.values().flat_map(GroupEntry::subscriptions).collect();
        all.chunks(MAX_TOPICS_PER_SUBSCRIBE).map(|c| ClientFrame::Subscribe { topics: c.to_vec() }).collect()
    }

    /// The first post waiting for the relay in each group.
    pub fn pending_frames(&self) -> Vec<ClientFrame> {
        self.by_id.values().filter_map(GroupEntry::next_frame).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_engine::Identity;
    use sotto_engine::random::OsEntropy;
    use sotto_engine::roster::Role;

    /// Moving on two epochs leaves the oldest topic unread: the relay is told, and its cursor
    /// goes.
    #[test]
    fn topics_no_longer_read_are_unsubscribed() {
        let (ada, bo, cy) =
            (Identity::generate().unwrap(), Identity::generate().unwrap(), Identity::generate().unwrap());
        let mut entry = GroupEntry::new(Group::create(&ada, "Club", &mut OsEntropy).unwrap(), 0);
        let (_, first, _) = entry.group.topic();
        assert!(entry.advance(&first, 7));
        entry.group.add(&ada, bo.public(), Role::Member, &mut OsEntropy).unwrap();
        let frames = entry.move_frames();
        assert!(
            !frames.iter().any(|f| matches!(f, ClientFrame::Unsubscribe { .. })),
            "the epoch before is still read"
        );
        entry.group.add(&ada, cy.public(), Role::Member, &mut OsEntropy).unwrap();
        let frames = entry.move_frames();
        assert!(frames.contains(&ClientFrame::Unsubscribe { topic: first }));
        assert!(matches!(&frames[0], ClientFrame::Subscribe { topics } if topics.len() == 2));
        assert!(entry.subscriptions().iter().all(|s| s.topic != first));
    }

    /// A pending post keeps its TTL across a reload; a group stored before posts had one reads
    /// back with every pending post at the longest TTL.
    #[test]
    fn pending_posts_keep_their_ttl_and_old_records_still_read() {
        let ada = Identity::generate().unwrap();
        let mut entry = GroupEntry::new(Group::create(&ada, "Club", &mut OsEntropy).unwrap(), 0);
        let (_, topic, write) = entry.group.topic();
        let frames = entry.queue(
            topic,
            write,
            (vec![vec![1, 2, 3]], 86_405),
            Some(9),
            [MessageId([4; 16])].into_iter(),
        );
        assert!(matches!(frames[..], [ClientFrame::Post { ttl_secs: 86_405, .. }]));
        let (key, bytes) = entry.write();
        let again = decode_group(&key, &bytes.unwrap()).unwrap();
        assert_eq!(again.next_frame(), entry.next_frame());

        // The same group as version 5 wrote it: its pending post has no TTL.
        #[derive(Serialize)]
        struct OldPost<'a> {
            id: MessageId,
            topic: TopicId,
            write: WriteKey,
            #[serde(with = "serde_bytes")]
            payload: &'a [u8],
            message: Option<u64>,
        }
        let e = &entry;
        let p = &e.pending[0];
        let old_post =
            OldPost { id: p.id, topic: p.topic, write: p.write, payload: &p.payload, message: p.message };
        let old = (&e.group, &e.cursors, vec![old_post], e.since_ms, e.gone, e.muted, &e.awaiting, &e.early);
        let rest = (&e.doors, &e.names, &e.reads, &e.admitting);
        let mut bytes = vec![5];
        bytes.extend(postcard::to_allocvec(&(old, rest)).unwrap());
        let read = decode_group(&key, &bytes).unwrap();
        assert!(matches!(
            read.next_frame(),
            Some(ClientFrame::Post { ttl_secs: ENVELOPE_TTL_SECS, ref payload, .. }) if payload == &[1, 2, 3]
        ));
        assert_eq!(read.id(), entry.id());
    }
}
