//! What a group admin hands a member over their pairwise session (inside a message body): a
//! welcome into the group, or the next epoch's secret after someone left. See `group.rs` for
//! how they are made and taken.

use crate::EngineError;
use crate::consts::{MAX_WELCOME_PARTS, WELCOME_PART_BYTES};
use crate::roster::Change;
use crate::sender_keys::GroupId;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// What an admin gives a member they add, over their pairwise session: the group's changes
/// and the epoch that starts with the addition.
///
/// A big group's changes do not fit one message (a thousand members' take about 300 KiB), so
/// a welcome travels in parts ([`Welcome::split`]): each carries the epoch and a run of the
/// changes, `part` of `parts`; the newcomer puts them together ([`Welcome::assemble`]) before
/// joining.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Welcome {
    #[zeroize(skip)]
    pub group: GroupId,
    #[zeroize(skip)]
    pub changes: Vec<Change>,
    pub epoch: u32,
    pub secret: [u8; 32],
    /// Which part this is (from 0), and of how many.
    pub part: u16,
    pub parts: u16,
}

impl Welcome {
    /// A whole welcome (one part, all the changes).
    pub fn new(group: GroupId, changes: Vec<Change>, epoch: u32, secret: [u8; 32]) -> Welcome {
        Welcome { group, changes, epoch, secret, part: 0, parts: 1 }
    }

    /// The welcome in parts whose changes take at most [`WELCOME_PART_BYTES`] each (one part
    /// if they fit).
    pub fn split(&self) -> Result<Vec<Welcome>, EngineError> {
        let mut runs: Vec<Vec<Change>> = vec![Vec::new()];
        let mut size = 0;
        for c in &self.changes {
            // (The encoder every change already goes through, not a second one to measure.)
            let len = postcard::to_allocvec(c)?.len();
            if size + len > WELCOME_PART_BYTES && size > 0 {
                runs.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(run) = runs.last_mut() {
                run.push(c.clone());
            }
        }
        let parts = u16::try_from(runs.len())
            .ok()
            .filter(|n| usize::from(*n) <= MAX_WELCOME_PARTS)
            .ok_or_else(|| EngineError::BadEncoding("too many changes for a welcome".into()))?;
        Ok(runs
            .into_iter()
            .zip(0..)
            .map(|(changes, part)| Welcome {
                changes,
                part,
                parts,
                ..Welcome::new(self.group, vec![], self.epoch, self.secret)
            })
            .collect())
    }

    /// Whether this is a well-formed part of a welcome in several (a whole one is joined as
    /// it is).
    pub fn is_part(&self) -> bool {
        (2..=MAX_WELCOME_PARTS).contains(&usize::from(self.parts)) && self.part < self.parts
    }

    /// Whether `other` is a part of the same welcome as this one.
    pub fn same_welcome(&self, other: &Welcome) -> bool {
        (self.group, self.epoch, self.secret, self.parts)
            == (other.group, other.epoch, other.secret, other.parts)
    }

    /// The whole welcome from its parts (in any order); `None` while one is missing. Parts of
    /// another welcome, or a part twice, are refused.
    pub fn assemble(parts: &[Welcome]) -> Result<Option<Welcome>, EngineError> {
        let Some(first) = parts.first() else { return Ok(None) };
        let mut seen = vec![None; usize::from(first.parts)];
        for p in parts {
            let slot = seen.get_mut(usize::from(p.part)).filter(|s| s.is_none());
            match slot {
                Some(slot) if first.same_welcome(p) && usize::from(p.parts) <= MAX_WELCOME_PARTS => {
                    *slot = Some(&p.changes);
                }
                _ => return Err(EngineError::BadEncoding("a welcome's parts do not match".into())),
            }
        }
        if seen.iter().any(Option::is_none) {
            return Ok(None);
        }
        let changes = seen.into_iter().flatten().flatten().cloned().collect();
        Ok(Some(Welcome::new(first.group, changes, first.epoch, first.secret)))
    }
}

/// What an admin gives each remaining member after a removal or a departure, over their
/// pairwise session: the change and the epoch that starts with it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Rekey {
    #[zeroize(skip)]
    pub group: GroupId,
    #[zeroize(skip)]
    pub change: Change,
    pub epoch: u32,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for Welcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Welcome {{ changes: {}, epoch: {}, part: {}/{} }}",
            self.changes.len(),
            self.epoch,
            self.part.saturating_add(1),
            self.parts
        )
    }
}

impl std::fmt::Debug for Rekey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rekey {{ epoch: {} }}", self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::Group;
    use crate::identity::Identity;
    use crate::random::SeededEntropy;
    use crate::roster::Role;

    /// A thousand members' welcome travels in parts that each fit a message, and is put
    /// together again whatever order they come in; parts of two welcomes never mix.
    #[test]
    fn a_big_groups_welcome_travels_in_parts() {
        let mut e = SeededEntropy::new([3; 32]);
        let ada = Identity::generate_with(&mut e).unwrap();
        let mut group = Group::create(&ada, "Big", &mut e).unwrap();
        for _ in 0..1000 {
            let someone = Identity::generate_with(&mut e).unwrap();
            group.add(&ada, someone.public(), Role::Member, &mut e).unwrap();
        }
        let newcomer = Identity::generate_with(&mut e).unwrap();
        let (_, welcome) = group.add(&ada, newcomer.public(), Role::Member, &mut e).unwrap();
        let mut parts = welcome.split().unwrap();
        assert!(parts.len() > 1, "{} parts", parts.len());
        for p in &parts {
            let body = crate::message::Body::GroupWelcome(Box::new(p.clone()));
            assert!(postcard::to_allocvec(&body).unwrap().len() < WELCOME_PART_BYTES + 1024);
        }
        // The whole welcome is not joined before it is put together.
        assert!(Group::join(&newcomer, &ada.public().signing_key, &parts[0], &mut e).is_err());
        parts.reverse();
        assert_eq!(Welcome::assemble(&parts[1..]).unwrap(), None, "one part missing");
        let whole = Welcome::assemble(&parts).unwrap().unwrap();
        assert!(whole == welcome);
        let joined = Group::join(&newcomer, &ada.public().signing_key, &whole, &mut e).unwrap();
        assert_eq!(joined.roster().members.len(), 1002);
        // A message costs its sender the same upload whatever the group's size: one post (the
        // epoch's number, a varint in the clear, is all that differs: 1,001 takes a byte more).
        let text = crate::message::Message {
            v: crate::message::VERSION,
            id: [1; 16],
            sent_at_ms: 1,
            expires_after_secs: None,
            body: crate::message::Body::Text("see you at eight".into()),
        };
        let mut small = Group::create(&ada, "Small", &mut e).unwrap();
        small.add(&ada, newcomer.public(), Role::Member, &mut e).unwrap();
        let sizes = |g: &mut Group, e: &mut SeededEntropy| -> Vec<usize> {
            g.send(&ada, &text, e).unwrap().iter().map(Vec::len).collect()
        };
        let (big, small) = (sizes(&mut group, &mut e), sizes(&mut small, &mut e));
        assert_eq!(big.len(), small.len(), "chain post, then the message");
        assert!(big.iter().zip(&small).all(|(b, s)| b.abs_diff(*s) <= 1), "{big:?} {small:?}");

        // A part twice, or a part of another welcome, is refused.
        let twice = [parts[0].clone(), parts[0].clone()];
        assert!(Welcome::assemble(&twice).is_err());
        let mut other = parts[1].clone();
        other.epoch += 1;
        assert!(Welcome::assemble(&[parts[0].clone(), other]).is_err());
        // A small group's welcome is one part, as it was.
        let small = Welcome::new(welcome.group, welcome.changes[..3].to_vec(), 1, [1; 32]);
        assert_eq!(small.split().unwrap().len(), 1);
    }
}
