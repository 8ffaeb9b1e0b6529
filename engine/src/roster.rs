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
//!
//! Backdating: each author's changes form a chain (a count and the digest of the previous one),
//! and removing or demoting an admin names the last of their changes the remover had seen. A
//! change of theirs that is not on that chain and comes before the cut in the order is void: so
//! an admin, once removed, cannot sign a change claiming a version from when they were still
//! one. A removal of an admin who already left still cuts their chain: after an admin leaves,
//! the senior admin signs such a removal, so a departure is as final as a removal.

use crate::EngineError;
use crate::consts::MAX_CHANGES;
use crate::identity::{Identity, verify};
use crate::primitives::sha256;
use crate::random::Entropy;
use crate::sender_keys::GroupId;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, Signature};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

const CHANGE_LABEL: &[u8] = b"sotto-group-change-v1";
const GROUP_ID_LABEL: &[u8] = b"sotto-group-id-v1";

/// A group's id: bound to its creator's identity key (and a random salt), so nobody else can
/// sign a creation of the same group and take it over.
pub fn group_id(creator: &[u8; 32], salt: &[u8; 16]) -> GroupId {
    let digest = sha256(&[GROUP_ID_LABEL, creator, salt]);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    GroupId(id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Member,
    Admin,
}

/// What a change does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Starts the group: its author is its first admin (valid only as the first change, and
    /// only by the creator the group id names, see [`group_id`]).
    Create {
        name: String,
        salt: [u8; 16],
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
    /// The group's short description (empty: none).
    Describe {
        text: String,
    },
}

/// A place on one author's chain of changes: their `seq`-th change (from 1) and its digest
/// (for a change's own link: the digest of the author's previous change). `seq` 0 with a zero
/// digest is the start, before any change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub seq: u32,
    pub digest: [u8; 32],
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
    /// This is the author's `seq`-th change; `digest` is that of their previous one.
    pub chain: Link,
    /// For a removal or a change of role: the last change of the member concerned that the
    /// author had seen.
    pub acked: Link,
    pub signature: Signature,
}

impl Change {
    /// A change by `author` on the roster at `version`, at `chain` on the author's own chain,
    /// acknowledging `acked` of the member it concerns. [`Changes::make`] fills these in.
    pub fn new(
        author: &Identity,
        group: GroupId,
        version: u64,
        op: Op,
        chain: Link,
        acked: Link,
    ) -> Result<Change, EngineError> {
        let key = author.public().signing_key;
        let mut c = Change { group, version, op, author: key, chain, acked, signature: Signature([0; 64]) };
        c.signature = author.sign(&c.signed_part()?);
        Ok(c)
    }

    fn signed_part(&self) -> Result<Vec<u8>, EngineError> {
        let mut m = CHANGE_LABEL.to_vec();
        m.extend_from_slice(&self.group.0);
        m.extend_from_slice(&self.version.to_be_bytes());
        m.extend_from_slice(&self.author);
        m.extend(postcard::to_allocvec(&(&self.op, &self.chain, &self.acked))?);
        Ok(m)
    }

    fn verify(&self) -> Result<(), EngineError> {
        verify(&self.author, &self.signed_part()?, &self.signature)
            .map_err(|_| EngineError::BadSignature("group change"))
    }

    /// Where it stands in the order every device replays changes in: its version, then its
    /// digest (which also names it on its author's chain).
    fn order_key(&self) -> Result<(u64, [u8; 32]), EngineError> {
        Ok((self.version, sha256(&[&postcard::to_allocvec(self)?])))
    }
}

/// A member as the roster has them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub identity: Option<IdentityPublic>,
    pub role: Role,
    /// For an admin: the roster version at which they became one. An admin may remove or
    /// demote only admins who became admins after them.
    pub admin_since: u64,
}

impl Member {
    fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// The roster as the replay of every known change leaves it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    pub name: String,
    pub description: String,
    /// By Ed25519 identity key.
    pub members: BTreeMap<[u8; 32], Member>,
    /// How many changes were applied: the version a new change builds on.
    pub version: u64,
    /// Members who left or were removed, as they last were (a removal of someone who already
    /// left still cuts their chain, see `Changes::replay`).
    pub former: BTreeMap<[u8; 32], Member>,
    /// Those an admin removed (and nobody added back since): they do not come back by a link.
    pub removed: BTreeSet<[u8; 32]>,
}

impl Roster {
    pub fn is_admin(&self, key: &[u8; 32]) -> bool {
        self.members.get(key).is_some_and(|m| m.role == Role::Admin)
    }

    /// Whether `author` may remove or demote `subject`: anyone an admin may, but an admin only
    /// if `author` became an admin first. So two admins can never remove each other, and a
    /// removed admin has no counter-removal to sign.
    fn outranks(&self, author: &[u8; 32], subject: &[u8; 32]) -> bool {
        let subject = self.members.get(subject).or_else(|| self.former.get(subject));
        match (self.members.get(author), subject) {
            (Some(a), Some(s)) => !s.is_admin() || a.admin_since < s.admin_since,
            _ => false,
        }
    }

    /// Takes a member out, remembering how they were.
    fn drop_member(&mut self, key: &[u8; 32]) -> bool {
        match self.members.remove(key) {
            Some(m) => {
                self.former.insert(*key, m);
                true
            }
            None => false,
        }
    }

    /// Applies one change if its author may make it here (`before`: the roster it was made on,
    /// if not this one);
    /// whether it did.
    fn apply(&mut self, c: &Change, before: Option<&Roster>) -> bool {
        let before = before.unwrap_or(self);
        let (was_admin, was_member) = (before.is_admin(&c.author), before.members.contains_key(&c.author));
        let admin = was_admin && self.is_admin(&c.author);
        let applied = match &c.op {
            Op::Create { name, salt }
                if c.version == 0
                    && self.version == 0
                    && self.members.is_empty()
                    && group_id(&c.author, salt) == c.group =>
            {
                self.name = name.clone();
                let creator = Member { identity: None, role: Role::Admin, admin_since: 0 };
                self.members.insert(c.author, creator);
                true
            }
            Op::Create { .. } => false,
            Op::Add { member, role } if admin && !self.members.contains_key(&member.signing_key) => {
                let added = Member { identity: Some(*member), role: *role, admin_since: self.version };
                self.members.insert(member.signing_key, added);
                self.former.remove(&member.signing_key);
                self.removed.remove(&member.signing_key);
                true
            }
            Op::Remove { member } if admin && self.outranks(&c.author, member) => {
                // An admin acknowledging someone who left (see `Group::rekey_after`) bars nobody.
                let removed = self.drop_member(member);
                if removed {
                    self.removed.insert(*member);
                }
                removed
            }
            Op::SetRole { member, role: Role::Member } if admin && self.outranks(&c.author, member) => {
                self.members.get_mut(member).is_some_and(|m| {
                    m.role = Role::Member;
                    true
                })
            }
            Op::SetRole { member, role: Role::Admin } if admin => {
                let version = self.version;
                self.members.get_mut(member).is_some_and(|m| {
                    if m.role != Role::Admin {
                        (m.role, m.admin_since) = (Role::Admin, version);
                    }
                    true
                })
            }
            Op::Rename { name } if admin => {
                self.name = name.clone();
                true
            }
            Op::Describe { text } if admin => {
                self.description = text.clone();
                true
            }
            Op::Leave if was_member && self.members.contains_key(&c.author) => self.drop_member(&c.author),
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
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Changes {
    group: Option<GroupId>,
    /// By their place in the replay order.
    known: BTreeMap<(u64, [u8; 32]), Change>,
}

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
        if let Op::Create { salt, .. } = &c.op
            && group_id(&c.author, salt) != c.group
        {
            return Err(EngineError::ForgedSender);
        }
        let key = c.order_key()?;
        if self.known.contains_key(&key) {
            return Ok(false);
        }
        if self.known.len() >= MAX_CHANGES {
            return Err(EngineError::BadEncoding("too many changes in this group".into()));
        }
        self.known.insert(key, c);
        Ok(true)
    }

    /// The roster: every change replayed in order, each applied only if valid at its point.
    /// A replay that meets a cut voiding changes it already applied starts again without them
    /// (void changes stay void, so this ends).
    pub fn roster(&self) -> Roster {
        let by_digest: HashMap<[u8; 32], &Change> = self.known.iter().map(|((_, d), c)| (*d, c)).collect();
        let mut void = HashSet::new();
        loop {
            match self.replay(&by_digest, &void) {
                Ok(roster) => return roster,
                Err(voided) => void.extend(voided),
            }
        }
    }

    /// One replay; `Err` with the changes a cut voids that were applied before it.
    fn replay(
        &self,
        by_digest: &HashMap<[u8; 32], &Change>,
        void: &HashSet<[u8; 32]>,
    ) -> Result<Roster, Vec<[u8; 32]>> {
        let mut roster = Roster::default();
        let live: Vec<(&[u8; 32], &Change)> =
            self.known.iter().filter(|((_, d), _)| !void.contains(d)).map(|((_, d), c)| (d, c)).collect();
        // The roster before the changes of the version being replayed: a copy only while
        // several changes share that version (concurrent ones); otherwise the roster as it
        // stands, so a replay costs no copy per change.
        let mut before: Option<(u64, Roster)> = None;
        for (i, &(digest, c)) in live.iter().enumerate() {
            if before.as_ref().is_none_or(|(v, _)| *v != c.version) {
                let shared = live.get(i + 1).is_some_and(|(_, next)| next.version == c.version);
                before = shared.then(|| (c.version, roster.clone()));
            }
            let earlier = before.as_ref().map(|(_, r)| r);
            // A cut ends an admin's rights: a removal or demotion by an admin who outranks them
            // (even if they already left: a departure backdated after the removal must not
            // escape it), or their own departure.
            let admin_author = earlier.unwrap_or(&roster).is_admin(&c.author) && roster.is_admin(&c.author);
            let cut = match &c.op {
                Op::Remove { member } | Op::SetRole { member, role: Role::Member } => {
                    let was_admin = roster.members.get(member).or_else(|| roster.former.get(member));
                    (admin_author
                        && was_admin.is_some_and(Member::is_admin)
                        && roster.outranks(&c.author, member))
                    .then_some((*member, c.acked))
                }
                // A departure cuts nothing itself (a forked one must not void what others
                // acknowledged): the senior admin acknowledges a departed admin's chain with a
                // removal, which cuts it like any other.
                _ => None,
            };
            roster.apply(c, earlier);
            if let Some((subject, acked)) = cut {
                // Every change of theirs up to this version that the cut does not acknowledge is
                // void, applied yet or not: one restart per cut at most.
                let kept = chain(by_digest, &subject, acked);
                let voided: Vec<[u8; 32]> = self
                    .known
                    .iter()
                    .filter(|((v, d), other)| {
                        other.author == subject
                            && *v <= c.version
                            && d != digest
                            && !kept.contains(d)
                            && !void.contains(d)
                    })
                    .map(|((_, d), _)| *d)
                    .collect();
                if !voided.is_empty() {
                    return Err(voided);
                }
            }
        }
        Ok(roster)
    }

    /// Every change, in replay order.
    pub fn all(&self) -> Vec<Change> {
        self.known.values().cloned().collect()
    }

    /// The last change `author` made of those known (the head of their chain).
    fn head(&self, author: &[u8; 32]) -> Link {
        self.known
            .iter()
            .filter(|(_, c)| c.author == *author)
            .map(|((_, d), c)| Link { seq: c.chain.seq, digest: *d })
            .max_by_key(|l| l.seq)
            .unwrap_or_default()
    }

    /// A change by `author` on the roster as it is now, next on their chain, acknowledging
    /// every change seen of the member it removes or demotes.
    pub fn make(&self, author: &Identity, group: GroupId, op: Op) -> Result<Change, EngineError> {
        let key = author.public().signing_key;
        let head = self.head(&key);
        let chain = Link { seq: head.seq + 1, digest: head.digest };
        let acked = match &op {
            Op::Remove { member } | Op::SetRole { member, .. } => self.head(member),
            _ => Link::default(),
        };
        Change::new(author, group, self.roster().version, op, chain, acked)
    }

    /// Starts a group: its id (bound to `author`) and its creation.
    pub fn create(
        author: &Identity,
        name: &str,
        e: &mut dyn Entropy,
    ) -> Result<(GroupId, Change), EngineError> {
        let mut salt = [0u8; 16];
        e.fill(&mut salt)?;
        let id = group_id(&author.public().signing_key, &salt);
        let change = Changes::default().make(author, id, Op::Create { name: name.into(), salt })?;
        Ok((id, change))
    }

    /// How many changes are known.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The group these changes are of (once one is known).
    pub fn group(&self) -> Option<GroupId> {
        self.group
    }
}

/// The digests of `author`'s changes on their chain up to `last` (following each change's link
/// to its predecessor). A link to a change this device lacks ends the walk early: the changes
/// before it count as unacknowledged until it arrives.
fn chain(by_digest: &HashMap<[u8; 32], &Change>, author: &[u8; 32], last: Link) -> HashSet<[u8; 32]> {
    let mut kept = HashSet::new();
    let mut at = last;
    while at.seq > 0 {
        let Some(c) = by_digest.get(&at.digest).filter(|c| c.author == *author && c.chain.seq == at.seq)
        else {
            break;
        };
        if !kept.insert(at.digest) {
            break;
        }
        at = Link { seq: c.chain.seq - 1, digest: c.chain.digest };
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn people(n: u8) -> Vec<Identity> {
        let e = &mut SeededEntropy::new([n; 32]);
        (0..n).map(|_| Identity::generate_with(e).unwrap()).collect()
    }

    /// The id of the group `creator` makes in these tests.
    fn gid(creator: &Identity) -> GroupId {
        group_id(&creator.public().signing_key, &[0; 16])
    }

    fn key(p: &Identity) -> [u8; 32] {
        p.public().signing_key
    }

    /// Makes a change on `changes` as they are and adds it.
    fn change(changes: &mut Changes, author: &Identity, op: Op) -> Change {
        let group = match &op {
            Op::Create { salt, .. } => group_id(&author.public().signing_key, salt),
            _ => changes.group().unwrap(),
        };
        let c = changes.make(author, group, op).unwrap();
        changes.add(c.clone()).unwrap();
        c
    }

    #[test]
    fn admins_change_the_group_and_members_cannot_forge_it() {
        let p = people(3);
        let (ada, bo, cy) = (&p[0], &p[1], &p[2]);
        let mut changes = Changes::default();
        change(&mut changes, ada, Op::Create { name: "Club".into(), salt: [0; 16] });
        change(&mut changes, ada, Op::Add { member: bo.public(), role: Role::Member });
        // Bo is no admin: his additions and renames are void.
        let bo_adds =
            changes.make(bo, gid(&p[0]), Op::Add { member: cy.public(), role: Role::Admin }).unwrap();
        let bo_renames = changes.make(bo, gid(&p[0]), Op::Rename { name: "Bo's".into() }).unwrap();
        changes.add(bo_adds).unwrap();
        changes.add(bo_renames).unwrap();
        let r = changes.roster();
        assert_eq!((r.name.as_str(), r.members.len(), r.version), ("Club", 2, 2));
        // A signature made by someone else, or over another change, is refused outright.
        let mut forged =
            changes.make(bo, gid(&p[0]), Op::SetRole { member: key(bo), role: Role::Admin }).unwrap();
        forged.author = key(ada);
        assert!(changes.add(forged).is_err());
        let mut moved = changes.make(ada, gid(&p[0]), Op::Rename { name: "x".into() }).unwrap();
        moved.version += 1;
        assert!(changes.add(moved).is_err());
        let other_group = changes.make(ada, GroupId([8; 16]), Op::Rename { name: "x".into() }).unwrap();
        assert!(changes.add(other_group).is_err());
        // Promoted, Bo may; a member may leave.
        change(&mut changes, ada, Op::SetRole { member: key(bo), role: Role::Admin });
        change(&mut changes, bo, Op::Add { member: cy.public(), role: Role::Member });
        change(&mut changes, cy, Op::Leave);
        let r = changes.roster();
        assert!(r.is_admin(&key(bo)));
        assert!(!r.members.contains_key(&key(cy)));
        assert_eq!(r.version, 5);
    }

    /// Two admins remove each other at the same version: every device, whatever order the
    /// changes reach it in, ends with the same roster, and the senior admin's removal holds.
    #[test]
    fn concurrent_changes_by_two_admins_converge_everywhere() {
        let p = people(4);
        let (ada, bo, cy, dee) = (&p[0], &p[1], &p[2], &p[3]);
        let mut base = Changes::default();
        change(&mut base, ada, Op::Create { name: "Team".into(), salt: [0; 16] });
        change(&mut base, ada, Op::Add { member: bo.public(), role: Role::Admin });
        change(&mut base, ada, Op::Add { member: cy.public(), role: Role::Member });
        // Made at once on two devices that both hold the base.
        let race = [
            base.make(ada, gid(&p[0]), Op::Remove { member: key(bo) }).unwrap(),
            base.make(bo, gid(&p[0]), Op::Remove { member: key(ada) }).unwrap(),
            base.make(bo, gid(&p[0]), Op::Add { member: dee.public(), role: Role::Member }).unwrap(),
            base.make(ada, gid(&p[0]), Op::Rename { name: "Ada's team".into() }).unwrap(),
        ];
        let base: Vec<Change> = base.known.values().cloned().collect();
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
        // Ada became an admin first: her removal of Bo holds, his of her never can.
        assert!(r.members.contains_key(&key(ada)) && !r.members.contains_key(&key(bo)), "{r:?}");
        // What Bo did at the same moment, which Ada had not seen, is void with him.
        assert!(!r.members.contains_key(&key(dee)));
        assert!(r.members.contains_key(&key(cy)));
        assert!(r.version >= 4);
    }

    /// An admin who was removed (or left) signs changes claiming a version from when they were
    /// still an admin: void, in every order, while what they did before and the remover had
    /// seen stays.
    #[test]
    fn a_removed_admin_cannot_backdate_changes() {
        let p = people(5);
        let (ada, bo, cy, dee, eve) = (&p[0], &p[1], &p[2], &p[3], &p[4]);
        let mut changes = Changes::default();
        change(&mut changes, ada, Op::Create { name: "Club".into(), salt: [0; 16] });
        change(&mut changes, ada, Op::Add { member: bo.public(), role: Role::Admin });
        let before_removal = changes.clone();
        change(&mut changes, bo, Op::Add { member: cy.public(), role: Role::Member });
        change(&mut changes, ada, Op::Remove { member: key(bo) });
        // Afterwards Bo signs changes on the roster as it was when he was an admin: next on his
        // chain, and forked off it.
        let mut backdated = vec![];
        let mut bo_view = before_removal.clone();
        change(&mut bo_view, bo, Op::Add { member: cy.public(), role: Role::Member });
        backdated.push(bo_view.make(bo, gid(&p[0]), Op::Remove { member: key(ada) }).unwrap());
        backdated
            .push(bo_view.make(bo, gid(&p[0]), Op::Add { member: eve.public(), role: Role::Admin }).unwrap());
        backdated.push(before_removal.make(bo, gid(&p[0]), Op::Remove { member: key(ada) }).unwrap());
        backdated.push(
            before_removal
                .make(bo, gid(&p[0]), Op::Add { member: dee.public(), role: Role::Member })
                .unwrap(),
        );
        // A departure backdated to when he was an admin would end his rights on his own terms
        // (his chain, his cut): the removal still cuts it.
        backdated.push(bo_view.make(bo, gid(&p[0]), Op::Leave).unwrap());
        backdated.push(before_removal.make(bo, gid(&p[0]), Op::Leave).unwrap());
        let honest = changes.roster();
        assert!(honest.members.contains_key(&key(cy)), "Bo's change Ada had seen stays");
        assert!(!honest.members.contains_key(&key(bo)));
        let base: Vec<Change> = changes.known.values().cloned().collect();
        for n in 0..backdated.len() {
            let mut order: Vec<Change> =
                backdated.iter().cloned().cycle().skip(n).take(backdated.len()).collect();
            order.extend(base.iter().cloned());
            order.rotate_left(n);
            let mut device = Changes::default();
            for c in order {
                device.add(c).unwrap();
            }
            assert_eq!(device.roster(), honest, "backdated changes are void");
        }
        // An admin who left, once the senior admin acknowledged his chain with a removal,
        // cannot backdate either.
        let mut changes = before_removal.clone();
        let bo_later =
            changes.make(bo, gid(&p[0]), Op::Add { member: eve.public(), role: Role::Admin }).unwrap();
        change(&mut changes, bo, Op::Add { member: cy.public(), role: Role::Member });
        change(&mut changes, bo, Op::Leave);
        let acknowledged = changes.make(ada, gid(&p[0]), Op::Remove { member: key(bo) }).unwrap();
        changes.add(acknowledged).unwrap();
        let after_leaving = changes.roster();
        assert!(
            after_leaving.members.contains_key(&key(cy)) && !after_leaving.members.contains_key(&key(bo))
        );
        changes.add(bo_later).unwrap();
        assert_eq!(changes.roster(), after_leaving);
    }

    #[test]
    fn a_known_change_is_not_counted_twice_and_there_is_one_creation() {
        let p = people(2);
        let mut changes = Changes::default();
        let create = changes.make(&p[0], gid(&p[0]), Op::Create { name: "A".into(), salt: [0; 16] }).unwrap();
        assert!(changes.add(create.clone()).unwrap());
        assert!(!changes.add(create).unwrap(), "a redelivery");
        // Someone else cannot sign a creation of this group (and take it over): its id names
        // its creator.
        let takeover = Changes::default()
            .make(&p[1], gid(&p[0]), Op::Create { name: "B".into(), salt: [0; 16] })
            .unwrap();
        assert_eq!(changes.add(takeover), Err(EngineError::ForgedSender));
        let r = changes.roster();
        assert_eq!(r.members.len(), 1);
        assert_eq!(r.version, 1);
    }

    /// Who an admin removed stays barred (from links) whatever they signed before, until an
    /// admin adds them again; someone who left is not barred.
    #[test]
    fn the_roster_remembers_who_an_admin_removed() {
        let p = people(3);
        let (ada, bo, cy) = (&p[0], &p[1], &p[2]);
        let mut changes = Changes::default();
        change(&mut changes, ada, Op::Create { name: "Club".into(), salt: [0; 16] });
        change(&mut changes, ada, Op::Add { member: bo.public(), role: Role::Member });
        change(&mut changes, ada, Op::Add { member: cy.public(), role: Role::Member });
        // Bo signs a departure dated back to the start (it never applies), then is removed.
        let backdated =
            Change::new(bo, gid(ada), 0, Op::Leave, Link { seq: 1, digest: [0; 32] }, Link::default())
                .unwrap();
        changes.add(backdated).unwrap();
        change(&mut changes, ada, Op::Remove { member: key(bo) });
        change(&mut changes, cy, Op::Leave);
        let r = changes.roster();
        assert!(r.removed.contains(&key(bo)), "removed, whatever he signed before");
        assert!(!r.removed.contains(&key(cy)), "Cy left");
        change(&mut changes, ada, Op::Add { member: bo.public(), role: Role::Member });
        assert!(!changes.roster().removed.contains(&key(bo)), "added again");
    }
}
