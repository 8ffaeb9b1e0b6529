//! Who is in a group, and who may change that: membership changes are signed by their author
//! and numbered by the roster version they build on. Every device keeps the *set* of changes it
//! has seen and computes the roster by replaying them in one order all devices share (by
//! version, then by a digest of the signed change), applying each only if its author was an
//! admin on the roster it was made on (the roster before every change of its version) and still
//! is at that point of the replay. So two admins changing the group at once converge to the same
//! member list everywhere, whatever order the changes arrived in: a change whose author lost
//! their rights to an earlier one in the order (an admin removed by another at the same version)
//! is void on every device alike, and a concurrent promotion does not make valid what its author
//! could not do when they made it.

use crate::EngineError;
use crate::identity::{Identity, verify};
use crate::primitives::sha256;
use crate::sender_keys::GroupId;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, Signature};
use std::collections::BTreeMap;

const CHANGE_LABEL: &[u8] = b"sotto-group-change-v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Member,
    Admin,
}

/// What a change does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Starts the group: its author is its first admin (valid only as the first change).
    Create {
        name: String,
    },
    Add {
        member: IdentityPublic,
        role: Role,
    },
    Remove {
        member: [u8; 32],
    },
    SetRole {
        member: [u8; 32],
        role: Role,
    },
    Rename {
        name: String,
    },
    /// A member leaves (the only change a non-admin may make, and only about themself).
    Leave,
}

/// A signed change of a group's roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub group: GroupId,
    /// The roster version it was made on (the number of changes applied before it).
    pub version: u64,
    pub op: Op,
    /// The author's Ed25519 identity key.
    pub author: [u8; 32],
    pub signature: Signature,
}

impl Change {
    /// A change by `author` on the roster at `version`.
    pub fn new(author: &Identity, group: GroupId, version: u64, op: Op) -> Result<Change, EngineError> {
        let key = author.public().signing_key;
        let signature = author.sign(&signed_part(&group, version, &op, &key)?);
        Ok(Change { group, version, op, author: key, signature })
    }

    fn verify(&self) -> Result<(), EngineError> {
        let signed = signed_part(&self.group, self.version, &self.op, &self.author)?;
        verify(&self.author, &signed, &self.signature).map_err(|_| EngineError::BadSignature("group change"))
    }

    /// Where it stands in the order every device replays changes in.
    fn order_key(&self) -> Result<(u64, [u8; 32]), EngineError> {
        Ok((self.version, sha256(&[&postcard::to_allocvec(self)?])))
    }
}

fn signed_part(group: &GroupId, version: u64, op: &Op, author: &[u8; 32]) -> Result<Vec<u8>, EngineError> {
    let mut m = CHANGE_LABEL.to_vec();
    m.extend_from_slice(&group.0);
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(author);
    m.extend(postcard::to_allocvec(op)?);
    Ok(m)
}

/// A member as the roster has them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub identity: Option<IdentityPublic>,
    pub role: Role,
}

/// The roster as the replay of every known change leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    pub name: String,
    /// By Ed25519 identity key.
    pub members: BTreeMap<[u8; 32], Member>,
    /// How many changes were applied: the version a new change builds on.
    pub version: u64,
}

impl Roster {
    pub fn is_admin(&self, key: &[u8; 32]) -> bool {
        self.members.get(key).is_some_and(|m| m.role == Role::Admin)
    }

    /// Applies one change if its author may make it here (`before`: the roster it was made on);
    /// whether it did.
    fn apply(&mut self, c: &Change, before: &Roster) -> bool {
        let admin = before.is_admin(&c.author) && self.is_admin(&c.author);
        let applied = match &c.op {
            Op::Create { name } if self.version == 0 && self.members.is_empty() => {
                self.name = name.clone();
                self.members.insert(c.author, Member { identity: None, role: Role::Admin });
                true
            }
            Op::Create { .. } => false,
            Op::Add { member, role } if admin && !self.members.contains_key(&member.signing_key) => {
                self.members.insert(member.signing_key, Member { identity: Some(*member), role: *role });
                true
            }
            Op::Remove { member } if admin && self.members.contains_key(member) => {
                self.members.remove(member);
                true
            }
            Op::SetRole { member, role } if admin => match self.members.get_mut(member) {
                Some(m) => {
                    m.role = *role;
                    true
                }
                None => false,
            },
            Op::Rename { name } if admin => {
                self.name = name.clone();
                true
            }
            Op::Leave if before.members.contains_key(&c.author) && self.members.contains_key(&c.author) => {
                self.members.remove(&c.author);
                true
            }
            _ => false,
        };
        if applied {
            self.version += 1;
        }
        applied
    }
}

/// Every change of one group a device has seen (a set: the order they arrived in does not
/// matter), and the roster they make.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    group: Option<GroupId>,
    /// By their place in the replay order.
    known: BTreeMap<(u64, [u8; 32]), Change>,
}

/// Changes one group may have (each costs a replay step on every device).
pub const MAX_CHANGES: usize = 10_000;

impl Changes {
    /// Adds a change (its signature checked, for this group); `false` if it was known.
    pub fn add(&mut self, c: Change) -> Result<bool, EngineError> {
        c.verify()?;
        match self.group {
            Some(g) if g != c.group => {
                return Err(EngineError::BadEncoding("a change of another group".into()));
            }
            _ => self.group = Some(c.group),
        }
        if self.known.len() >= MAX_CHANGES {
            return Err(EngineError::BadEncoding("too many changes in this group".into()));
        }
        Ok(self.known.insert(c.order_key()?, c).is_none())
    }

    /// The roster: every change replayed in order, each applied only if valid at its point.
    pub fn roster(&self) -> Roster {
        let mut roster = Roster::default();
        // The roster before the changes of the version being replayed.
        let mut before = (0, Roster::default());
        for c in self.known.values() {
            if c.version != before.0 {
                before = (c.version, roster.clone());
            }
            roster.apply(c, &before.1);
        }
        roster
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn people(n: u8) -> Vec<Identity> {
        let e = &mut SeededEntropy::new([n; 32]);
        (0..n).map(|_| Identity::generate_with(e).unwrap()).collect()
    }

    const G: GroupId = GroupId([7; 16]);

    #[test]
    fn admins_change_the_group_and_members_cannot_forge_it() {
        let p = people(3);
        let (ada, bo, cy) = (&p[0], &p[1], &p[2]);
        let mut changes = Changes::default();
        changes.add(Change::new(ada, G, 0, Op::Create { name: "Club".into() }).unwrap()).unwrap();
        changes
            .add(Change::new(ada, G, 1, Op::Add { member: bo.public(), role: Role::Member }).unwrap())
            .unwrap();
        // Bo is no admin: his additions and renames are void.
        changes
            .add(Change::new(bo, G, 2, Op::Add { member: cy.public(), role: Role::Admin }).unwrap())
            .unwrap();
        changes.add(Change::new(bo, G, 2, Op::Rename { name: "Bo's".into() }).unwrap()).unwrap();
        let r = changes.roster();
        assert_eq!((r.name.as_str(), r.members.len(), r.version), ("Club", 2, 2));
        // A signature made by someone else, or over another change, is refused outright.
        let mut forged =
            Change::new(bo, G, 2, Op::SetRole { member: bo.public().signing_key, role: Role::Admin })
                .unwrap();
        forged.author = ada.public().signing_key;
        assert!(changes.add(forged).is_err());
        let other_group = Change::new(ada, GroupId([8; 16]), 2, Op::Rename { name: "x".into() }).unwrap();
        assert!(changes.add(other_group).is_err());
        // Promoted, Bo may; a member may leave.
        changes
            .add(
                Change::new(ada, G, 2, Op::SetRole { member: bo.public().signing_key, role: Role::Admin })
                    .unwrap(),
            )
            .unwrap();
        changes
            .add(Change::new(bo, G, 3, Op::Add { member: cy.public(), role: Role::Member }).unwrap())
            .unwrap();
        changes.add(Change::new(cy, G, 4, Op::Leave).unwrap()).unwrap();
        let r = changes.roster();
        assert!(r.is_admin(&bo.public().signing_key));
        assert!(!r.members.contains_key(&cy.public().signing_key));
        assert_eq!(r.version, 5);
    }

    /// Two admins remove each other at the same version: every device, whatever order the
    /// changes reach it in, ends with the same roster (exactly one of the two removals holds).
    #[test]
    fn concurrent_changes_by_two_admins_converge_everywhere() {
        let p = people(4);
        let (ada, bo, cy, dee) = (&p[0], &p[1], &p[2], &p[3]);
        let base = [
            Change::new(ada, G, 0, Op::Create { name: "Team".into() }).unwrap(),
            Change::new(ada, G, 1, Op::Add { member: bo.public(), role: Role::Admin }).unwrap(),
            Change::new(ada, G, 2, Op::Add { member: cy.public(), role: Role::Member }).unwrap(),
        ];
        let race = [
            Change::new(ada, G, 3, Op::Remove { member: bo.public().signing_key }).unwrap(),
            Change::new(bo, G, 3, Op::Remove { member: ada.public().signing_key }).unwrap(),
            Change::new(bo, G, 3, Op::Add { member: dee.public(), role: Role::Member }).unwrap(),
            Change::new(ada, G, 3, Op::Rename { name: "Ada's team".into() }).unwrap(),
        ];
        let mut rosters = Vec::new();
        // Every order of the racing changes, delivered after the base in any order too.
        let orders: [[usize; 4]; 6] =
            [[0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2], [0, 3, 2, 1]];
        for order in orders {
            let mut changes = Changes::default();
            for c in order.iter().map(|&i| race[i].clone()).chain(base.iter().rev().cloned()) {
                changes.add(c).unwrap();
            }
            rosters.push(changes.roster());
        }
        assert!(rosters.windows(2).all(|w| w[0] == w[1]), "the same roster on every device");
        let r = &rosters[0];
        let (ada_in, bo_in) = (
            r.members.contains_key(&ada.public().signing_key),
            r.members.contains_key(&bo.public().signing_key),
        );
        assert!(ada_in ^ bo_in, "exactly one removal holds: {r:?}");
        assert!(r.members.contains_key(&cy.public().signing_key));
        // Whichever admin remains had their other changes applied only if made before losing
        // their rights in the shared order; the roster says which, the same for everyone.
        assert!(r.version >= 4);
    }

    #[test]
    fn a_known_change_is_not_counted_twice_and_there_is_one_creation() {
        let p = people(2);
        let mut changes = Changes::default();
        let create = Change::new(&p[0], G, 0, Op::Create { name: "A".into() }).unwrap();
        assert!(changes.add(create.clone()).unwrap());
        assert!(!changes.add(create).unwrap(), "a redelivery");
        changes.add(Change::new(&p[1], G, 0, Op::Create { name: "B".into() }).unwrap()).unwrap();
        let r = changes.roster();
        assert_eq!(r.members.len(), 1, "the second creation is void");
        assert_eq!(r.version, 1);
    }
}
