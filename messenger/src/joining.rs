//! Getting into groups: our requests to join by a group's link (kept until we are welcomed),
//! and welcomes that come in parts (a big group's changes do not fit one message): the parts
//! received so far, one record each, until the welcome is whole and we join.

use crate::doors::Asked;
use crate::records::{RecordKey, RecordWrite, encode};
use serde::{Deserialize, Serialize};
use sotto_engine::EngineError;
use sotto_engine::handover::Welcome;
use sotto_engine::sender_keys::GroupId;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{ClientFrame, MessageId};
use std::collections::BTreeMap;

/// Welcomes being put together at once; past it the one that started first is dropped (only
/// contacts who are a group's admins send them, but one could send many).
const MAX_JOINING: usize = 8;

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
        RecordKey::Joining(self.welcome.group, self.welcome.part)
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
    by_group: BTreeMap<GroupId, Vec<StoredPart>>,
    asked: BTreeMap<GroupId, Asked>,
}

impl Joining {
    pub fn restore(&mut self, part: StoredPart) {
        self.by_group.entry(part.welcome.group).or_default().push(part);
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

    /// Forgets our request to join `group` (we are in, or the link is closed).
    pub fn drop_asked(&mut self, group: &GroupId) -> Option<RecordWrite> {
        self.asked.remove(group).map(|_| (RecordKey::Asked(*group), None))
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

    /// Notes that we open `group`'s door ourselves; `false` if we did already.
    pub fn open_door(&mut self, group: &GroupId) -> bool {
        self.asked.get_mut(group).is_some_and(|a| !std::mem::replace(&mut a.opened, true))
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

    /// Takes a part from `from`. Parts of one welcome must all come from the same admin; a part
    /// of a later epoch's welcome replaces what was kept of an earlier one, a part of an
    /// earlier one is ignored.
    pub fn take(&mut self, from: [u8; 32], welcome: Welcome, now_ms: u64) -> Result<Taken, EngineError> {
        let group = welcome.group;
        let mut writes = Vec::new();
        let kept = self.by_group.get(&group).and_then(|parts| parts.first());
        let since_ms = match kept {
            Some(k) if k.from == from && k.welcome.same_welcome(&welcome) => k.since_ms,
            Some(k) if welcome.epoch <= k.welcome.epoch => return Ok(Taken::Waiting(writes)),
            _ => {
                writes.extend(self.drop_group(&group));
                if self.by_group.len() >= MAX_JOINING {
                    let oldest = self.by_group.iter().min_by_key(|(_, p)| p.first().map(|p| p.since_ms));
                    if let Some(oldest) = oldest.map(|(g, _)| *g) {
                        writes.extend(self.drop_group(&oldest));
                    }
                }
                now_ms
            }
        };
        let parts = self.by_group.entry(group).or_default();
        if parts.iter().any(|p| p.welcome.part == welcome.part) {
            return Ok(Taken::Waiting(writes));
        }
        let part = StoredPart { from, welcome, since_ms };
        writes.push((part.key(), Some(encode(&part))));
        parts.push(part);
        let all: Vec<Welcome> = parts.iter().map(|p| p.welcome.clone()).collect();
        match Welcome::assemble(&all)? {
            Some(welcome) => {
                writes.extend(self.drop_group(&group));
                Ok(Taken::Whole { welcome, writes })
            }
            None => Ok(Taken::Waiting(writes)),
        }
    }

    /// Forgets what was kept of a welcome into `group`: the records to delete.
    fn drop_group(&mut self, group: &GroupId) -> Vec<RecordWrite> {
        let parts = self.by_group.remove(group).unwrap_or_default();
        parts.iter().map(|p| (p.key(), None)).collect()
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
        // The same part again writes nothing; one from someone else is ignored.
        assert!(waiting(j.take([1; 32], part(1, 3, 0, 3), 11).unwrap()).is_empty());
        assert!(waiting(j.take([2; 32], part(1, 3, 1, 3), 11).unwrap()).is_empty());
        // A later epoch's welcome replaces it: the kept part's record goes.
        let writes = waiting(j.take([2; 32], part(1, 4, 1, 2), 12).unwrap());
        assert_eq!(writes.iter().filter(|(_, v)| v.is_none()).count(), 1);
        let Taken::Whole { welcome, writes } = j.take([2; 32], part(1, 4, 0, 2), 13).unwrap() else {
            panic!("whole")
        };
        assert_eq!((welcome.epoch, welcome.parts), (4, 1));
        assert_eq!(writes.iter().filter(|(_, v)| v.is_none()).count(), 2, "both parts deleted");
        assert!(j.by_group.is_empty());
    }

    #[test]
    fn at_most_a_few_welcomes_wait_at_once() {
        let mut j = Joining::default();
        for g in 0..=MAX_JOINING as u8 {
            j.take([1; 32], part(g, 1, 0, 2), u64::from(g)).unwrap();
        }
        assert_eq!(j.by_group.len(), MAX_JOINING);
        assert!(!j.by_group.contains_key(&GroupId([0; 16])), "the oldest went");
    }
}
