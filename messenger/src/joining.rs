//! Getting into groups: our requests to join by a group's link (kept until we are welcomed),
//! and welcomes that come in parts (a big group's changes do not fit one message): the parts
//! received so far, one record each, until the welcome is whole and we join.

use crate::doors::{Asked, REQUEST_LIFETIME_MS};
use crate::records::{RecordKey, RecordWrite, encode};
use serde::{Deserialize, Serialize};
use sotto_engine::EngineError;
use sotto_engine::handover::Welcome;
use sotto_engine::sender_keys::GroupId;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{ClientFrame, MessageId};
use std::collections::HashMap;

/// Welcomes being put together at once, and from any one sender; past either, the oldest of
/// whoever has most waiting goes (only contacts, and the admin of a link we asked by, send them,
/// but one could send many: never enough to push out another's).
const MAX_JOINING: usize = 16;
const MAX_PER_SENDER: usize = 2;

/// A welcome whose first part came this long ago and is still not whole is dropped (an admin
/// sends every part at once).
const PART_LIFETIME_MS: u64 = 24 * 3600 * 1000;

/// One part as stored: who sent it (their identity key, as their session authenticated them)
/// and the part.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredPart {
    pub from: [u8; 32],
    pub welcome: Welcome,
    /// When the first part of its welcome arrived.
    pub since_ms: u64,
}

impl StoredPart {
    fn key(&self) -> RecordKey {
        RecordKey::Joining(self.welcome.group, self.from, self.welcome.part)
    }
}

/// What a part did.
pub enum Taken {
    /// Kept (or known already): more parts are to come.
    Waiting(Vec<RecordWrite>),
    /// The last part: the whole welcome (all parts from the one who sent this); the writes
    /// delete the parts.
    Whole { welcome: Welcome, writes: Vec<RecordWrite> },
}

#[derive(Default)]
pub struct Joining {
    // Hash maps: the app has their code already (a B-tree map costs new code per type).
    /// By group and sender: one admin's parts never mix with, nor push out, another's.
    by_welcome: HashMap<(GroupId, [u8; 32]), Vec<StoredPart>>,
    asked: HashMap<GroupId, Asked>,
}

impl Joining {
    pub fn restore(&mut self, part: StoredPart) {
        self.by_welcome.entry((part.welcome.group, part.from)).or_default().push(part);
    }

    pub fn restore_asked(&mut self, asked: Asked) {
        self.asked.insert(asked.link.group, asked);
    }

    /// Keeps a request of ours to join (replacing an earlier one into the same group).
    pub fn ask(&mut self, asked: Asked) -> RecordWrite {
        let write = (RecordKey::Asked(asked.link.group), Some(encode(&asked)));
        self.asked.insert(asked.link.group, asked);
        write
    }

    /// Whether we asked to join `group` by its link.
    pub fn has_asked(&self, group: &GroupId) -> bool {
        self.asked.contains_key(group)
    }

    /// Whether `from` is the admin whose link we asked to join `group` by: the one stranger
    /// whose welcome into it we take.
    pub fn asked_admin_is(&self, group: &GroupId, from: &[u8; 32]) -> bool {
        self.asked.get(group).is_some_and(|a| a.link.admin == *from)
    }

    /// Forgets our request to join `group` (we are in, or the link is closed): the frame that
    /// stops reading its door if we opened it, and the record to delete.
    pub fn drop_asked(&mut self, group: &GroupId) -> (Option<ClientFrame>, Option<RecordWrite>) {
        let unsubscribe = self.let_go_of_door(group);
        (unsubscribe, self.asked.remove(group).map(|_| (RecordKey::Asked(*group), None)))
    }

    /// Drops our requests too old for any admin to answer: the frames and records, as above.
    pub fn expire_asked(&mut self, now_ms: u64) -> (Vec<ClientFrame>, Vec<RecordWrite>) {
        let old: Vec<GroupId> = self
            .asked
            .values()
            .filter(|a| now_ms.saturating_sub(a.at_ms) > REQUEST_LIFETIME_MS)
            .map(|a| a.link.group)
            .collect();
        let (mut frames, mut writes) = (Vec::new(), Vec::new());
        for group in old {
            let (f, w) = self.drop_asked(&group);
            frames.extend(f);
            writes.extend(w);
        }
        (frames, writes)
    }

    /// The group whose request is post `id`.
    pub fn asked_by_post(&self, id: MessageId) -> Option<GroupId> {
        self.asked.values().find(|a| a.post.as_ref().is_some_and(|(p, _)| *p == id)).map(|a| a.link.group)
    }

    /// The relay stored our request: it is not posted again.
    pub fn asked_posted(&mut self, group: &GroupId) -> Option<RecordWrite> {
        let asked = self.asked.get_mut(group)?;
        asked.post = None;
        Some((RecordKey::Asked(*group), Some(encode(asked))))
    }

    /// Notes that we open `group`'s door ourselves (the record to write); `None` if we did
    /// already.
    pub fn open_door(&mut self, group: &GroupId) -> Option<RecordWrite> {
        let asked = self.asked.get_mut(group).filter(|a| !a.opened)?;
        asked.opened = true;
        Some((RecordKey::Asked(*group), Some(encode(asked))))
    }

    /// Whether we opened `group`'s door ourselves.
    pub fn door_opened(&self, group: &GroupId) -> bool {
        self.asked.get(group).is_some_and(|a| a.opened)
    }

    /// Reading `group`'s door from now on (which opens its topic at the relay).
    pub fn door_subscription(&self, group: &GroupId) -> Option<ClientFrame> {
        let (topic, write) = self.asked.get(group)?.link.door().ok()?;
        let topics = vec![Subscription { topic, write_hash: topic_write_hash(&write), after: u64::MAX }];
        Some(ClientFrame::Subscribe { topics })
    }

    /// Stops reading `group`'s door, if we opened it.
    pub fn let_go_of_door(&self, group: &GroupId) -> Option<ClientFrame> {
        let asked = self.asked.get(group).filter(|a| a.opened)?;
        let (topic, _) = asked.link.door().ok()?;
        Some(ClientFrame::Unsubscribe { topic })
    }

    /// Requests the relay has not confirmed yet: posted again when the line comes up.
    pub fn asked_frames(&self) -> Vec<ClientFrame> {
        self.asked.values().filter_map(Asked::frame).collect()
    }

    /// The frame that posts our request into `group` again, if it is still unconfirmed.
    pub fn asked_frame(&self, group: &GroupId) -> Option<ClientFrame> {
        self.asked.get(group).and_then(Asked::frame)
    }

    /// The groups we asked to join, with their names (from the links).
    pub fn asked(&self) -> impl Iterator<Item = &Asked> {
        self.asked.values()
    }

    /// Takes a part from `from`. Parts of one welcome all come from the same admin; a part of a
    /// later epoch's welcome from them replaces what was kept of an earlier one, a part of an
    /// earlier one is ignored. A malformed part, or one that does not fit those kept, is
    /// refused and changes nothing.
    pub fn take(&mut self, from: [u8; 32], welcome: Welcome, now_ms: u64) -> Result<Taken, EngineError> {
        if !welcome.is_part() {
            return Err(EngineError::BadEncoding("a malformed part of a welcome".into()));
        }
        let key = (welcome.group, from);
        let mut writes = self.expire(now_ms);
        let kept = self.by_welcome.get(&key).and_then(|parts| parts.first());
        let since_ms = match kept {
            Some(k) if k.welcome.same_welcome(&welcome) => k.since_ms,
            Some(k) if welcome.epoch <= k.welcome.epoch => return Ok(Taken::Waiting(writes)),
            _ => {
                writes.extend(self.drop(|k| *k == key));
                writes.extend(self.make_room(&from));
                now_ms
            }
        };
        let mut parts = self.by_welcome.get(&key).cloned().unwrap_or_default();
        if parts.iter().any(|p| p.welcome.part == welcome.part) {
            return Ok(Taken::Waiting(writes));
        }
        parts.push(StoredPart { from, welcome, since_ms });
        let all: Vec<Welcome> = parts.iter().map(|p| p.welcome.clone()).collect();
        let whole = Welcome::assemble(&all)?;
        if let Some(welcome) = whole {
            writes.extend(self.drop_group(&key.0));
            return Ok(Taken::Whole { welcome, writes });
        }
        if let Some(part) = parts.last() {
            writes.push((part.key(), Some(encode(part))));
        }
        self.by_welcome.insert(key, parts);
        Ok(Taken::Waiting(writes))
    }

    /// Drops welcomes that never came whole.
    fn expire(&mut self, now_ms: u64) -> Vec<RecordWrite> {
        let old: Vec<_> = self
            .by_welcome
            .iter()
            .filter(|(_, p)| p.first().is_some_and(|p| now_ms.saturating_sub(p.since_ms) > PART_LIFETIME_MS))
            .map(|(k, _)| *k)
            .collect();
        self.drop(|k| old.contains(k))
    }

    /// Room for one more welcome from `from`: past the bounds, the oldest of whoever has most
    /// waiting goes.
    fn make_room(&mut self, from: &[u8; 32]) -> Vec<RecordWrite> {
        let count = |s: &[u8; 32], all: &HashMap<(GroupId, [u8; 32]), Vec<StoredPart>>| {
            all.keys().filter(|(_, f)| f == s).count()
        };
        let sender = if count(from, &self.by_welcome) >= MAX_PER_SENDER {
            *from
        } else if self.by_welcome.len() >= MAX_JOINING {
            match self.by_welcome.keys().map(|(_, f)| *f).max_by_key(|f| count(f, &self.by_welcome)) {
                Some(f) => f,
                None => return Vec::new(),
            }
        } else {
            return Vec::new();
        };
        let oldest = self
            .by_welcome
            .iter()
            .filter(|((_, f), _)| *f == sender)
            .min_by_key(|(_, p)| p.first().map(|p| p.since_ms))
            .map(|(k, _)| *k);
        self.drop(|k| Some(*k) == oldest)
    }

    /// Forgets every welcome kept into `group` (we are in it): the records to delete.
    pub fn drop_group(&mut self, group: &GroupId) -> Vec<RecordWrite> {
        self.drop(|(g, _)| g == group)
    }

    fn drop(&mut self, which: impl Fn(&(GroupId, [u8; 32])) -> bool) -> Vec<RecordWrite> {
        let keys: Vec<_> = self.by_welcome.keys().filter(|k| which(k)).copied().collect();
        let parts = keys.iter().flat_map(|k| self.by_welcome.remove(k).unwrap_or_default());
        parts.map(|p| (p.key(), None)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(group: u8, epoch: u32, part: u16, parts: u16) -> Welcome {
        let mut w = Welcome::new(GroupId([group; 16]), vec![], epoch, [epoch as u8; 32]);
        (w.part, w.parts) = (part, parts);
        w
    }

    fn waiting(t: Taken) -> Vec<RecordWrite> {
        match t {
            Taken::Waiting(w) => w,
            Taken::Whole { .. } => panic!("not whole yet"),
        }
    }

    #[test]
    fn parts_are_kept_until_whole_and_a_later_welcome_replaces_an_earlier_one() {
        let mut j = Joining::default();
        let writes = waiting(j.take([1; 32], part(1, 3, 0, 3), 10).unwrap());
        assert_eq!(writes.len(), 1);
        // The same part again writes nothing.
        assert!(waiting(j.take([1; 32], part(1, 3, 0, 3), 11).unwrap()).is_empty());
        // Someone else's parts for the same group neither mix with nor push out the first
        // sender's, whatever epoch they claim.
        let writes = waiting(j.take([2; 32], part(1, u32::MAX, 1, 2), 11).unwrap());
        assert_eq!(writes.len(), 1);
        assert_eq!(j.by_welcome.len(), 2);
        // A later epoch's welcome from the same sender replaces theirs: the kept part goes.
        let writes = waiting(j.take([1; 32], part(1, 4, 1, 2), 12).unwrap());
        assert_eq!(writes.iter().filter(|(_, v)| v.is_none()).count(), 1);
        let Taken::Whole { welcome, writes } = j.take([1; 32], part(1, 4, 0, 2), 13).unwrap() else {
            panic!("whole")
        };
        assert_eq!((welcome.epoch, welcome.parts), (4, 1));
        assert_eq!(
            writes.iter().filter(|(_, v)| v.is_none()).count(),
            2,
            "the kept parts of both senders go"
        );
        assert!(j.by_welcome.is_empty());
    }

    #[test]
    fn malformed_parts_are_refused_and_change_nothing() {
        let mut j = Joining::default();
        for (p, of) in [(2, 2), (0, 1), (0, 0), (0, 200)] {
            assert!(j.take([1; 32], part(1, 1, p, of), 0).is_err(), "{p} of {of}");
        }
        j.take([1; 32], part(1, 1, 0, 3), 0).unwrap();
        // A part claiming the same epoch under another secret is ignored: nothing kept.
        let mut other = part(1, 1, 1, 3);
        other.secret = [9; 32];
        assert!(matches!(j.take([1; 32], other, 0).unwrap(), Taken::Waiting(_)), "another epoch's");
        assert_eq!(j.by_welcome.values().map(Vec::len).sum::<usize>(), 1);
    }

    #[test]
    fn no_sender_pushes_out_anothers_welcome_and_stale_ones_expire() {
        let mut j = Joining::default();
        j.take([7; 32], part(99, 1, 0, 2), 0).unwrap();
        // One sender floods: they only ever hold their own few.
        for g in 0..50u8 {
            j.take([1; 32], part(g, 1, 0, 2), u64::from(g) + 1).unwrap();
        }
        assert!(j.by_welcome.contains_key(&(GroupId([99; 16]), [7; 32])), "the first sender's stays");
        assert_eq!(j.by_welcome.keys().filter(|(_, f)| *f == [1; 32]).count(), MAX_PER_SENDER);
        // A day later, what never came whole is gone.
        j.take([3; 32], part(5, 1, 0, 2), PART_LIFETIME_MS + 100).unwrap();
        assert_eq!(j.by_welcome.len(), 1);
    }
}
