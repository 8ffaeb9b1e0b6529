//! One member's view of a group: its roster (signed changes), the current **epoch** and every
//! member's sending chain in it. Sans-IO like the rest of the engine: the caller posts what
//! this returns to the epoch's relay topic, and sends welcomes and rekeys over pairwise
//! sessions.
//!
//! An epoch is a random 32-byte secret every current member holds. From it come the relay
//! topic (its id is the read capability), the topic's write key, and a control key that seals
//! every post, so the relay sees neither what kind of post it carries nor who sent it. Each
//! member sends under a sender-key chain of its own for the epoch, whose state it posts once
//! (signed by its identity) before its first message in the epoch.
//!
//! Membership moves the group to a new epoch, so that:
//! - a member **added** reads from their addition on and nothing before: the adder posts the next
//!   epoch's secret under the current one (for those already in) and gives it to the newcomer
//!   in a welcome; every member then sends under a fresh chain in the new epoch;
//! - a member **removed** (or who left) reads nothing after: the next secret goes to each
//!   remaining member over its pairwise session (a rekey), never to the topic they can read.

use crate::EngineError;
use crate::consts::{CHANGES_KEPT_FOR_LEAVING, MAX_CHANGES};
use crate::handover::{Rekey, Welcome};
use crate::identity::{Identity, verify};
use crate::message::Message;
use crate::primitives::{hkdf_sha256, open, seal, sha256};
use crate::random::Entropy;
use crate::roster::{Change, Changes, Op, Role, Roster};
use crate::sender_keys::{Distribution, GroupId, GroupMessage, ReceiverChain, SenderChain};
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, Signature};
use sotto_shared::{TopicId, WriteKey};
use std::collections::BTreeMap;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const POST_VERSION: u8 = 1;
const EPOCH_INFO: &[u8] = b"sotto-group-epoch-v1";
const POST_AD: &[u8] = b"sotto-group-post-v1";
const DISTRIBUTION_LABEL: &[u8] = b"sotto-group-distribution-v1";
const NEXT_EPOCH_LABEL: &[u8] = b"sotto-group-next-epoch-v1";

/// The keys of one epoch, all derived from its secret (HKDF-SHA256, salt = group id, info =
/// label || epoch number).
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Epoch {
    number: u32,
    secret: [u8; 32],
    topic: [u8; 32],
    write: [u8; 32],
    control: [u8; 32],
}

impl Epoch {
    fn derive(group: &GroupId, number: u32, secret: [u8; 32]) -> Result<Epoch, EngineError> {
        let mut okm = Zeroizing::new([0u8; 96]);
        let info = [EPOCH_INFO, &number.to_be_bytes()].concat();
        hkdf_sha256(&group.0, &secret, &info, okm.as_mut())?;
        let part = |i: usize| {
            let mut k = [0u8; 32];
            k.copy_from_slice(&okm[32 * i..32 * (i + 1)]);
            k
        };
        Ok(Epoch { number, secret, topic: part(0), write: part(1), control: part(2) })
    }
}

/// A post's payload as the relay stores it: the epoch in the clear (the topic tells it anyway),
/// the rest sealed under the epoch's control key.
#[derive(Serialize, Deserialize)]
struct Post {
    v: u8,
    epoch: u32,
    nonce: [u8; 12],
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

/// The next epoch's secret, signed by the admin who made the change that starts it.
#[derive(Clone, Serialize, Deserialize)]
struct NextEpoch {
    number: u32,
    secret: [u8; 32],
    signature: Signature,
}

/// What a post holds once opened.
#[derive(Serialize, Deserialize)]
enum Inner {
    /// A member's text (or other body), under their chain; `from` names whose chain (only that
    /// one is tried, so nobody's message is read as another's).
    Message { from: [u8; 32], message: GroupMessage },
    /// A member's chain for this epoch, signed by their identity.
    Chain { member: [u8; 32], distribution: Distribution, signature: Signature },
    /// A roster change; an addition carries the next epoch (for those already in).
    Change { change: Box<Change>, next: Option<NextEpoch> },
}

/// Rekeys to send after a removal or departure: one per remaining member, over their pairwise
/// session.
pub type Rekeys = Vec<([u8; 32], Rekey)>;

/// What a received post did.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A member's message.
    Message { from: [u8; 32], message: Message },
    /// A member's chain for the epoch: their messages can be read from now on.
    Chain { from: [u8; 32] },
    /// The roster changed (and, after an addition, the group moved to a new epoch).
    Changed { change: Box<Change>, new_epoch: bool },
    /// Another admin's addition reached the topic before ours, both starting the same epoch:
    /// everyone follows theirs, so we did too. Whom we added (`ours`) must be welcomed into it
    /// again ([`Group::welcome_again`]), and `forward` posted to it: our addition again, for
    /// those who joined by the other one and never read the epoch before.
    Superseded { change: Box<Change>, ours: IdentityPublic, forward: Vec<u8> },
}

/// An epoch we started by an addition of ours, until our post of it comes back from the topic:
/// if another admin's addition starting the same epoch comes back first, theirs is the one
/// everyone follows.
#[derive(Clone, Serialize, Deserialize)]
struct Claim {
    /// The digest of our change.
    change: [u8; 32],
    member: IdentityPublic,
}

/// One member's state of one group. Serialized whole into the member's store; never printed.
#[derive(Clone, Serialize, Deserialize)]
pub struct Group {
    id: GroupId,
    /// Our identity key.
    me: [u8; 32],
    changes: Changes,
    /// What `changes` make (a replay costs a step per change; kept, not redone per post).
    roster: Roster,
    epoch: Epoch,
    /// The epoch before, kept to read posts made in it by members who had not moved on yet.
    previous: Option<(Epoch, BTreeMap<[u8; 32], ReceiverChain>)>,
    sending: SenderChain,
    /// Whether our chain's state was posted in this epoch.
    announced: bool,
    receiving: BTreeMap<[u8; 32], ReceiverChain>,
    /// Someone was removed or left in this epoch and the rekey has not come yet: we neither
    /// send nor add anyone (the one who went still reads this epoch).
    stale: bool,
    /// The epoch we started by an addition, until our post of it is read back.
    claim: Option<Claim>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Group {{ epoch: {}, chains: {} }}", self.epoch.number, self.receiving.len())
    }
}

impl Group {
    /// A new group with us as its only member and admin.
    pub fn create(me: &Identity, name: &str, e: &mut dyn Entropy) -> Result<Group, EngineError> {
        let (id, creation) = Changes::create(me, name, e)?;
        let mut changes = Changes::default();
        changes.add(creation)?;
        Group::start(me.public().signing_key, id, changes, 0, e.bytes32()?, e)
    }

    fn start(
        me: [u8; 32],
        id: GroupId,
        changes: Changes,
        number: u32,
        secret: [u8; 32],
        e: &mut dyn Entropy,
    ) -> Result<Group, EngineError> {
        Ok(Group {
            id,
            me,
            roster: changes.roster(),
            changes,
            epoch: Epoch::derive(&id, number, secret)?,
            previous: None,
            sending: SenderChain::new(id, e)?,
            announced: false,
            receiving: BTreeMap::new(),
            stale: false,
            claim: None,
        })
    }

    /// Joins a group from the welcome an admin (`from`, their identity key, as the pairwise
    /// session authenticated them) sent us.
    pub fn join(
        me: &Identity,
        from: &[u8; 32],
        w: &Welcome,
        e: &mut dyn Entropy,
    ) -> Result<Group, EngineError> {
        if w.parts != 1 {
            return Err(EngineError::Internal("a welcome is joined once its parts are put together"));
        }
        let mut changes = Changes::default();
        for c in &w.changes {
            changes.add(c.clone())?;
        }
        let roster = changes.roster();
        let key = me.public().signing_key;
        // The changes must be of the group the welcome names, start with its creation, and
        // have us in it; the one who welcomes us must be one of its admins.
        if changes.group() != Some(w.group)
            || roster.version == 0
            || !roster.members.contains_key(&key)
            || !roster.is_admin(from)
        {
            return Err(EngineError::ForgedSender);
        }
        Group::start(key, w.group, changes, w.epoch, w.secret, e)
    }

    pub fn id(&self) -> GroupId {
        self.id
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// Every change known, to hand to someone joining.
    pub fn changes(&self) -> Vec<Change> {
        self.changes.all()
    }

    /// The current epoch's number, topic and write key.
    pub fn topic(&self) -> (u32, TopicId, WriteKey) {
        (self.epoch.number, TopicId(self.epoch.topic), WriteKey(self.epoch.write))
    }

    /// The previous epoch's topic and write key while it is kept (to finish reading it).
    pub fn previous_topic(&self) -> Option<(TopicId, WriteKey)> {
        self.previous.as_ref().map(|(e, _)| (TopicId(e.topic), WriteKey(e.write)))
    }

    /// Our identity key.
    pub fn me(&self) -> [u8; 32] {
        self.me
    }

    fn seal(&self, inner: &Inner, e: &mut dyn Entropy) -> Result<Vec<u8>, EngineError> {
        let plain = crate::padding::padded(inner)?;
        let mut nonce = [0u8; 12];
        e.fill(&mut nonce)?;
        let sealed = seal(&self.epoch.control, &nonce, &self.post_ad(self.epoch.number), &plain)?;
        Ok(postcard::to_allocvec(&Post { v: POST_VERSION, epoch: self.epoch.number, nonce, sealed })?)
    }

    fn post_ad(&self, epoch: u32) -> Vec<u8> {
        [POST_AD, &self.id.0, &epoch.to_be_bytes()].concat()
    }

    /// Posts that send `message` to the group (for the current epoch's topic, in order): our
    /// chain's state first if this epoch has not seen it yet. Commit the group before posting.
    pub fn send(
        &mut self,
        me: &Identity,
        message: &Message,
        e: &mut dyn Entropy,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        if !self.roster.members.contains_key(&self.me) {
            return Err(EngineError::NoSession);
        }
        if self.stale {
            return Err(EngineError::RekeyPending);
        }
        let mut posts = Vec::new();
        if !self.announced {
            let distribution = self.sending.distribution();
            let signature = me.sign(&distribution_signed(&self.id, self.epoch.number, &distribution)?);
            posts.push(self.seal(&Inner::Chain { member: self.me, distribution, signature }, e)?);
            self.announced = true;
        }
        let sealed = self.sending.encrypt(&message.encode()?)?;
        posts.push(self.seal(&Inner::Message { from: self.me, message: sealed }, e)?);
        Ok(posts)
    }

    /// Adds `member` (we must be an admin): the post for the current topic (the change, with the
    /// next epoch for those already in) and the welcome for the newcomer. We move to the new
    /// epoch at once.
    pub fn add(
        &mut self,
        me: &Identity,
        member: IdentityPublic,
        role: Role,
        e: &mut dyn Entropy,
    ) -> Result<(Vec<u8>, Welcome), EngineError> {
        if self.stale {
            return Err(EngineError::RekeyPending);
        }
        if self.changes.len() >= MAX_CHANGES - CHANGES_KEPT_FOR_LEAVING {
            return Err(EngineError::GroupFull);
        }
        // While our last addition may still lose a race to another admin's, another one would
        // build on an epoch that may go (alone as an admin, nobody can race us).
        let other_admins = self.roster.members.iter().any(|(k, m)| *k != self.me && m.role == Role::Admin);
        if self.claim.is_some() && other_admins {
            return Err(EngineError::AdditionPending);
        }
        let change = self.change(me, Op::Add { member, role })?;
        let number = self.next_number()?;
        let secret = e.bytes32()?;
        let signature = me.sign(&next_epoch_signed(&self.id, &change, number, &secret)?);
        let claim = Claim { change: sha256(&[&postcard::to_allocvec(&change)?]), member };
        let post = self.seal(
            &Inner::Change { change: Box::new(change), next: Some(NextEpoch { number, secret, signature }) },
            e,
        )?;
        self.enter(number, secret, e)?;
        self.claim = Some(claim);
        let welcome = Welcome::new(self.id, self.changes(), number, secret);
        Ok((post, welcome))
    }

    /// Removes `member` (we must be an admin and outrank them): the post for the current topic
    /// (so everyone, the removed member too, learns of it) and a rekey for each member who
    /// stays, to send over their pairwise sessions. We move to the new epoch at once.
    pub fn remove(
        &mut self,
        me: &Identity,
        member: &[u8; 32],
        e: &mut dyn Entropy,
    ) -> Result<(Vec<u8>, Rekeys), EngineError> {
        let change = self.change(me, Op::Remove { member: *member })?;
        let post = self.seal(&Inner::Change { change: Box::new(change.clone()), next: None }, e)?;
        let rekeys = self.rekey(change, e)?;
        Ok((post, rekeys))
    }

    /// A change that moves nobody in or out (a rename, a change of role; we must be allowed to
    /// make it): the post for the current topic.
    pub fn change_post(
        &mut self,
        me: &Identity,
        op: Op,
        e: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        if matches!(op, Op::Add { .. } | Op::Remove { .. } | Op::Leave | Op::Create { .. }) {
            return Err(EngineError::Internal("membership changes have their own calls"));
        }
        let change = self.change(me, op)?;
        self.seal(&Inner::Change { change: Box::new(change), next: None }, e)
    }

    /// Leaves the group: the post for the current topic. An admin who stays rekeys the others
    /// when it arrives ([`Group::rekey_after`]).
    pub fn leave(&mut self, me: &Identity, e: &mut dyn Entropy) -> Result<Vec<u8>, EngineError> {
        let change = self.change(me, Op::Leave)?;
        self.seal(&Inner::Change { change: Box::new(change), next: None }, e)
    }

    /// After a departure we saw (`change`, a `Leave`), the senior admin moves everyone else to a
    /// new epoch: a rekey for each remaining member. `None` if that is someone else's job.
    pub fn rekey_after(
        &mut self,
        me: &Identity,
        change: &Change,
        e: &mut dyn Entropy,
    ) -> Result<Option<(Vec<u8>, Rekeys)>, EngineError> {
        // Only a departure that holds (its author is gone), answered by the senior admin.
        if change.op != Op::Leave
            || self.roster.members.contains_key(&change.author)
            || self.senior_admin() != Some(self.me)
        {
            return Ok(None);
        }
        // A removal of the one who left acknowledges their chain as it stands (a no-op on the
        // roster, but it cuts any change they sign later claiming an older version), posted in
        // the epoch they still read, before the others move on.
        let acknowledged = self.changes.make(me, self.id, Op::Remove { member: change.author })?;
        self.changes.add(acknowledged.clone())?;
        self.roster = self.changes.roster();
        let post = self.seal(&Inner::Change { change: Box::new(acknowledged), next: None }, e)?;
        let rekeys = self.rekey(change.clone(), e)?;
        Ok(Some((post, rekeys)))
    }

    fn rekey(&mut self, change: Change, e: &mut dyn Entropy) -> Result<Rekeys, EngineError> {
        let number = self.next_number()?;
        let secret = e.bytes32()?;
        self.enter(number, secret, e)?;
        Ok(self
            .roster
            .members
            .iter()
            // Every member but us, the creator too (whose roster entry has only a key).
            .filter(|(k, _)| **k != self.me)
            .map(|(member, _)| {
                let rekey = Rekey { group: self.id, change: change.clone(), epoch: number, secret };
                (*member, rekey)
            })
            .collect())
    }

    /// Takes a rekey an admin (`from`, as their pairwise session authenticated them) sent us.
    pub fn apply_rekey(
        &mut self,
        from: &[u8; 32],
        r: &Rekey,
        e: &mut dyn Entropy,
    ) -> Result<(), EngineError> {
        // Only the next epoch, or (while we wait for a rekey) a replacement of the one we are
        // in: someone added a member at the same moment, under the epoch the one who went
        // still reads. Never an epoch an admin picks.
        let next_number = self.next_number()?;
        let replaces = self.stale && r.epoch == self.epoch.number;
        if r.group != self.id || (r.epoch != next_number && !replaces) {
            return Err(EngineError::Duplicate);
        }
        let mut next = self.clone();
        next.changes.add(r.change.clone())?;
        next.roster = next.changes.roster();
        let roster = &next.roster;
        // The rekey follows a removal that admin made, or a departure the senior admin
        // answers, and that change holds.
        let holds = match &r.change.op {
            Op::Remove { member } => r.change.author == *from && !roster.members.contains_key(member),
            Op::Leave => !roster.members.contains_key(&r.change.author) && next.senior_admin() == Some(*from),
            _ => false,
        };
        if !holds || !roster.is_admin(from) || !roster.members.contains_key(&self.me) {
            return Err(EngineError::ForgedSender);
        }
        next.enter(r.epoch, r.secret, e)?;
        *self = next;
        Ok(())
    }

    /// The admin who became one first.
    fn senior_admin(&self) -> Option<[u8; 32]> {
        self.roster
            .members
            .iter()
            .filter(|(_, m)| m.role == Role::Admin)
            .min_by_key(|(_, m)| m.admin_since)
            .map(|(k, _)| *k)
    }

    fn change(&mut self, me: &Identity, op: Op) -> Result<Change, EngineError> {
        let change = self.changes.make(me, self.id, op)?;
        let mut next = self.changes.clone();
        next.add(change.clone())?;
        let roster = next.roster();
        if roster == self.roster {
            // Not ours to make (not an admin, outranked, or no such member).
            return Err(EngineError::ForgedSender);
        }
        (self.changes, self.roster) = (next, roster);
        Ok(change)
    }

    fn next_number(&self) -> Result<u32, EngineError> {
        self.epoch.number.checked_add(1).ok_or(EngineError::Internal("epochs exhausted"))
    }

    /// Moves to a new epoch: the old one is kept to finish reading, with a fresh chain of ours.
    fn enter(&mut self, number: u32, secret: [u8; 32], e: &mut dyn Entropy) -> Result<(), EngineError> {
        let epoch = Epoch::derive(&self.id, number, secret)?;
        let old = std::mem::replace(&mut self.epoch, epoch);
        self.previous = Some((old, std::mem::take(&mut self.receiving)));
        self.start_sending(e)
    }

    /// A fresh sending chain for the current epoch, not announced yet.
    fn start_sending(&mut self, e: &mut dyn Entropy) -> Result<(), EngineError> {
        self.sending = SenderChain::new(self.id, e)?;
        self.announced = false;
        self.stale = false;
        self.claim = None;
        Ok(())
    }

    /// Takes a second welcome into the epoch we are in, from an admin of ours, under another
    /// secret: the admin who added us lost a race to another admin's addition and welcomes us
    /// into the epoch everyone follows. `false` (and nothing changes) for any other welcome.
    pub fn rejoin(
        &mut self,
        me: &Identity,
        from: &[u8; 32],
        w: &Welcome,
        e: &mut dyn Entropy,
    ) -> Result<bool, EngineError> {
        // Only from the admin who added us, before we moved on from the epoch we joined, and
        // with every change we hold (so no removal or demotion can be left out).
        let added_by = self.changes.all().into_iter().rev().find_map(|c| match &c.op {
            Op::Add { member, .. } if member.signing_key == self.me => Some(c.author),
            _ => None,
        });
        if w.group != self.id
            || w.epoch != self.epoch.number
            || w.secret == self.epoch.secret
            || added_by != Some(*from)
            || self.previous.is_some()
            || !self.roster.is_admin(from)
        {
            return Ok(false);
        }
        let digest = |c: &Change| postcard::to_allocvec(c).map(|b| sha256(&[&b]));
        let theirs = w.changes.iter().map(digest).collect::<Result<std::collections::HashSet<_>, _>>()?;
        for c in self.changes.all() {
            if !theirs.contains(&digest(&c)?) {
                return Ok(false);
            }
        }
        *self = Group::join(me, from, w, e)?;
        Ok(true)
    }

    /// A welcome into the current epoch for `member` (already in the roster): after our
    /// addition of them lost a race to another admin's ([`Received::Superseded`]).
    pub fn welcome_again(&self) -> Welcome {
        Welcome::new(self.id, self.changes(), self.epoch.number, self.epoch.secret)
    }

    /// Opens a post read from one of the group's topics. Works on a copy: an error leaves the
    /// group as it was.
    pub fn receive(&mut self, payload: &[u8], e: &mut dyn Entropy) -> Result<Received, EngineError> {
        let post: Post = postcard::from_bytes(payload)?;
        if post.v != POST_VERSION {
            return Err(EngineError::UnsupportedVersion(post.v));
        }
        let current = post.epoch == self.epoch.number;
        let control = match &self.previous {
            _ if current => self.epoch.control,
            Some((p, _)) if p.number == post.epoch => p.control,
            _ => return Err(EngineError::NoSession),
        };
        let plain = Zeroizing::new(open(&control, &post.nonce, &self.post_ad(post.epoch), &post.sealed)?);
        let inner: Inner = crate::padding::unpadded(&plain)?;
        let mut next = self.clone();
        let roster = &self.roster;
        let received = match inner {
            Inner::Chain { member, distribution, signature } => {
                verify(&member, &distribution_signed(&self.id, post.epoch, &distribution)?, &signature)?;
                if !roster.members.contains_key(&member) || distribution.group != self.id {
                    return Err(EngineError::ForgedSender);
                }
                let chains = if current { &mut next.receiving } else { next.previous_chains()? };
                // One chain per member and epoch: a replay would rewind it (and make old keys
                // again); a member announcing someone else's chain would read as them.
                if chains.contains_key(&member) {
                    return Err(EngineError::Duplicate);
                }
                if chains.values().any(|c| c.signing_key() == distribution.signing_key) {
                    return Err(EngineError::ForgedSender);
                }
                chains.insert(member, ReceiverChain::from_distribution(&distribution));
                Received::Chain { from: member }
            }
            Inner::Message { from, message: m } => {
                // Someone removed still holds the old epoch's keys: nothing of theirs counts.
                if !roster.members.contains_key(&from) {
                    return Err(EngineError::ForgedSender);
                }
                let chains = if current { &mut next.receiving } else { next.previous_chains()? };
                let (chain, plain) = chains.get(&from).ok_or(EngineError::NoSession)?.decrypt(&m)?;
                chains.insert(from, chain);
                Received::Message { from, message: Message::decode(&plain)? }
            }
            Inner::Change { change, next: epoch } => {
                // Only members sign changes worth keeping (anyone can sign one; a stranger's
                // would only cost every device room and replay work).
                if !roster.members.contains_key(&change.author) {
                    return Err(EngineError::ForgedSender);
                }
                // A member who is no admin can only leave: anything else of theirs is void and
                // would only cost every device room and replay work.
                if !roster.is_admin(&change.author) && change.op != Op::Leave {
                    return Err(EngineError::ForgedSender);
                }
                if !next.changes.add((*change).clone())? {
                    // Our own addition, read back before anyone else's starting the same
                    // epoch: ours is the one everyone follows.
                    if let Some(claim) = &self.claim
                        && claim.change == sha256(&[&postcard::to_allocvec(&*change)?])
                    {
                        self.claim = None;
                    }
                    return Err(EngineError::Duplicate);
                }
                next.roster = next.changes.roster();
                let after = next.roster.clone();
                // Someone went: until the rekey comes, this epoch is one they still read.
                if roster.members.keys().any(|k| !after.members.contains_key(k)) {
                    next.stale = true;
                }
                let mut new_epoch = false;
                // Another admin's addition starting the epoch we started, read in the epoch
                // before and ahead of ours: the topic's order is everyone's, so theirs wins.
                let raced = match (&epoch, &self.claim, &self.previous) {
                    (Some(n), Some(_), Some((p, _))) => {
                        post.epoch == p.number && n.number == self.epoch.number && !next.stale
                    }
                    _ => false,
                };
                if let (true, Some(n), Some(claim)) = (raced, &epoch, self.claim.clone()) {
                    let signed = next_epoch_signed(&self.id, &change, n.number, &n.secret)?;
                    verify(&change.author, &signed, &n.signature)?;
                    // Any addition that starts our epoch is the race, even one of the person we
                    // added too (it changes nothing in the roster, but ours still lost).
                    if matches!(change.op, Op::Add { .. }) {
                        next.epoch = Epoch::derive(&self.id, n.number, n.secret)?;
                        next.receiving.clear();
                        next.start_sending(e)?;
                        let mine =
                            next.changes.all().into_iter().find(|c| {
                                postcard::to_allocvec(c).is_ok_and(|b| sha256(&[&b]) == claim.change)
                            });
                        let mine = mine.ok_or(EngineError::Internal("our own addition is kept"))?;
                        let forward = next.seal(&Inner::Change { change: Box::new(mine), next: None }, e)?;
                        *self = next;
                        return Ok(Received::Superseded { change, ours: claim.member, forward });
                    }
                }
                if let (Some(n), true, false) = (epoch, current, next.stale) {
                    let signed = next_epoch_signed(&self.id, &change, n.number, &n.secret)?;
                    verify(&change.author, &signed, &n.signature)?;
                    // Only an addition that applied starts an epoch, and only the next one.
                    let added = matches!(change.op, Op::Add { .. }) && after != *roster;
                    if added && Some(n.number) == self.epoch.number.checked_add(1) {
                        next.enter(n.number, n.secret, e)?;
                        new_epoch = true;
                    }
                }
                Received::Changed { change, new_epoch }
            }
        };
        *self = next;
        Ok(received)
    }

    fn previous_chains(&mut self) -> Result<&mut BTreeMap<[u8; 32], ReceiverChain>, EngineError> {
        self.previous.as_mut().map(|(_, c)| c).ok_or(EngineError::NoSession)
    }
}

fn distribution_signed(group: &GroupId, epoch: u32, d: &Distribution) -> Result<Vec<u8>, EngineError> {
    let digest = sha256(&[&postcard::to_allocvec(d)?]);
    Ok([DISTRIBUTION_LABEL, &group.0, &epoch.to_be_bytes(), &digest].concat())
}

fn next_epoch_signed(
    group: &GroupId,
    change: &Change,
    number: u32,
    secret: &[u8; 32],
) -> Result<Vec<u8>, EngineError> {
    let change = sha256(&[&postcard::to_allocvec(change)?]);
    let secret = sha256(&[secret]);
    Ok([NEXT_EPOCH_LABEL, &group.0, &change, &number.to_be_bytes(), &secret].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Body, VERSION};
    use crate::random::SeededEntropy;

    fn text(t: &str) -> Message {
        Message {
            v: VERSION,
            id: [t.len() as u8; 16],
            sent_at_ms: 1,
            expires_after_secs: None,
            body: Body::Text(t.into()),
        }
    }

    fn key(p: &Identity) -> [u8; 32] {
        p.public().signing_key
    }

    /// Delivers `posts` to `group`; returns the texts it read.
    fn read(group: &mut Group, posts: &[Vec<u8>], e: &mut dyn Entropy) -> Vec<String> {
        let mut texts = Vec::new();
        for p in posts {
            if let Received::Message { message: Message { body: Body::Text(t), .. }, .. } =
                group.receive(p, e).unwrap()
            {
                texts.push(t);
            }
        }
        texts
    }

    struct World {
        e: SeededEntropy,
        people: Vec<Identity>,
    }

    fn world(n: u8) -> World {
        let mut e = SeededEntropy::new([n; 32]);
        let people = (0..n).map(|_| Identity::generate_with(&mut e).unwrap()).collect();
        World { e, people }
    }

    #[test]
    fn members_read_each_other_and_a_newcomer_reads_from_their_addition_on() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let before_bo = a.send(ada, &text("before Bo"), &mut e).unwrap();
        let (added_bo, welcome) = a.add(ada, bo.public(), Role::Member, &mut e).unwrap();
        let mut b = Group::join(bo, &key(ada), &welcome, &mut e).unwrap();
        assert_eq!(b.topic().1, a.topic().1, "both read the new epoch's topic");
        assert!(b.receive(&before_bo[1], &mut e).is_err(), "Bo cannot read what came before him");
        assert!(b.receive(&added_bo, &mut e).is_err(), "nor the post that added him");
        let hello = a.send(ada, &text("hello Bo"), &mut e).unwrap();
        assert_eq!(read(&mut b, &hello, &mut e), vec!["hello Bo"]);
        let reply = b.send(bo, &text("hi Ada"), &mut e).unwrap();
        assert_eq!(read(&mut a, &reply, &mut e), vec!["hi Ada"]);
        // Cy joins: Bo learns it from the topic and moves on with Ada; Cy reads from then on.
        let bo_before_cy = b.send(bo, &text("before Cy"), &mut e).unwrap();
        read(&mut a, &bo_before_cy, &mut e);
        let (added_cy, welcome) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        let mut c = Group::join(cy, &key(ada), &welcome, &mut e).unwrap();
        let mut b_lagging = b.clone();
        assert!(matches!(b.receive(&added_cy, &mut e).unwrap(), Received::Changed { new_epoch: true, .. }));
        assert!(c.receive(&bo_before_cy[0], &mut e).is_err());
        let to_three = b.send(bo, &text("welcome Cy"), &mut e).unwrap();
        assert_eq!(to_three.len(), 2, "Bo's chain for the new epoch, then the message");
        assert_eq!(read(&mut c, &to_three, &mut e), vec!["welcome Cy"]);
        assert_eq!(read(&mut a, &to_three, &mut e), vec!["welcome Cy"]);
        let roster = c.roster();
        assert_eq!(roster.members.len(), 3);
        // A redelivered message is refused, and the group is as it was.
        assert_eq!(c.receive(&to_three[1], &mut e), Err(EngineError::Duplicate));
        // A post made in the epoch before by a member who had not moved on yet still reads
        // (that epoch is kept), but not for the newcomer.
        let late = b_lagging.send(bo, &text("late"), &mut e).unwrap();
        assert_eq!(read(&mut a, &late, &mut e), vec!["late"]);
        assert!(c.receive(&late[0], &mut e).is_err());
    }

    #[test]
    fn a_removed_member_reads_nothing_after_and_counts_for_nothing() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (_, w) = a.add(ada, bo.public(), Role::Member, &mut e).unwrap();
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (added_cy, w) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        b.receive(&added_cy, &mut e).unwrap();
        let mut c = Group::join(cy, &key(ada), &w, &mut e).unwrap();
        let from_bo = b.send(bo, &text("still in"), &mut e).unwrap();
        assert_eq!(read(&mut c, &from_bo, &mut e), vec!["still in"]);

        let (removed, rekeys) = a.remove(ada, &key(bo), &mut e).unwrap();
        assert_eq!(rekeys.len(), 1, "only Cy stays besides Ada");
        assert_eq!(rekeys[0].0, key(cy));
        // Everyone, Bo too, reads the removal in the old epoch.
        assert!(matches!(b.receive(&removed, &mut e).unwrap(), Received::Changed { .. }));
        c.receive(&removed, &mut e).unwrap();
        c.apply_rekey(&key(ada), &rekeys[0].1, &mut e).unwrap();
        assert_eq!(c.topic().1, a.topic().1);
        assert_ne!(b.topic().1, a.topic().1, "Bo does not know the new topic");
        let after = a.send(ada, &text("Bo is gone"), &mut e).unwrap();
        assert_eq!(read(&mut c, &after, &mut e), vec!["Bo is gone"]);
        assert!(b.receive(&after[1], &mut e).is_err(), "Bo cannot read what comes after");
        // What Bo still posts in the old epoch is refused: he is no member.
        let mut b_old = b.clone();
        let ghost = b_old.send(bo, &text("ghost"), &mut e);
        assert!(ghost.is_err(), "Bo's own device knows he is out");
        assert!(c.receive(&from_bo[1], &mut e).is_err());
        // A rekey must come from an admin whose change applied.
        let mut c2 = c.clone();
        assert!(c2.apply_rekey(&key(bo), &rekeys[0].1, &mut e).is_err());
    }

    #[test]
    fn forged_posts_and_changes_are_refused() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (_, w) = a.add(ada, bo.public(), Role::Member, &mut e).unwrap();
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        // A welcome is only good from an admin.
        assert!(Group::join(bo, &key(bo), &w, &mut e).is_err());
        // Bo is no admin: he can neither add nor remove.
        assert!(b.clone().add(bo, cy.public(), Role::Admin, &mut e).is_err());
        assert!(b.clone().remove(bo, &key(ada), &mut e).is_err());
        // Bo's chain announced as Ada's: refused (the identity signature is Bo's).
        let mut forged = b.clone();
        forged.me = key(ada);
        let posts = forged.send(bo, &text("I am Ada"), &mut e).unwrap();
        assert!(matches!(a.receive(&posts[0], &mut e), Err(EngineError::BadSignature(_))));
        // A tampered post is refused, and changes nothing.
        let posts = b.send(bo, &text("hi"), &mut e).unwrap();
        let mut tampered = posts[1].clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let before = format!("{a:?}");
        assert!(a.receive(&tampered, &mut e).is_err());
        assert_eq!(format!("{a:?}"), before);
        assert_eq!(read(&mut a, &posts, &mut e), vec!["hi"]);
        // Debug shows no key.
        let shown = format!("{a:?} {w:?}");
        assert!(!shown.contains(&format!("{:?}", a.epoch.secret)), "{shown}");
        // The state survives storage.
        let stored = postcard::to_allocvec(&a).unwrap();
        let mut back: Group = postcard::from_bytes(&stored).unwrap();
        let more = b.send(bo, &text("again"), &mut e).unwrap();
        assert_eq!(read(&mut back, &more, &mut e), vec!["again"]);
    }

    #[test]
    fn after_someone_leaves_the_senior_admin_moves_the_rest_on() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (bo_added, w) = a.add(ada, bo.public(), Role::Admin, &mut e).unwrap();
        // (Ada reads her post back from the topic, as her device does: her claim on the epoch
        // it started ends, and she may add again.)
        let _ = a.receive(&bo_added, &mut e);
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (added, w) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        b.receive(&added, &mut e).unwrap();
        let mut c = Group::join(cy, &key(ada), &w, &mut e).unwrap();
        let left = c.leave(cy, &mut e).unwrap();
        let Received::Changed { change, .. } = b.receive(&left, &mut e).unwrap() else { panic!() };
        assert!(b.rekey_after(bo, &change, &mut e).unwrap().is_none(), "Bo is not the senior admin");
        let Received::Changed { change, .. } = a.receive(&left, &mut e).unwrap() else { panic!() };
        let (acknowledged, rekeys) = a.rekey_after(ada, &change, &mut e).unwrap().unwrap();
        // Bo learns of it in the epoch he is leaving; it changes nothing he can see.
        assert!(matches!(
            b.receive(&acknowledged, &mut e).unwrap(),
            Received::Changed { new_epoch: false, .. }
        ));
        assert_eq!(rekeys.len(), 1);
        b.apply_rekey(&key(ada), &rekeys[0].1, &mut e).unwrap();
        let after = a.send(ada, &text("just us"), &mut e).unwrap();
        assert_eq!(read(&mut b, &after, &mut e), vec!["just us"]);
        assert!(c.receive(&after[1], &mut e).is_err());
    }

    /// What the review of the first version found: a member copying another's chain, a
    /// replayed chain post, an admin picking an epoch, a welcome for another group, and a
    /// member writing or adding while the one who left still reads the epoch.
    #[test]
    fn chains_epochs_and_welcomes_cannot_be_bent() {
        let World { mut e, people } = world(4);
        let (ada, bo, cy, dee) = (&people[0], &people[1], &people[2], &people[3]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (bo_added, w) = a.add(ada, bo.public(), Role::Admin, &mut e).unwrap();
        // (Ada reads her post back from the topic, as her device does: her claim on the epoch
        // it started ends, and she may add again.)
        let _ = a.receive(&bo_added, &mut e);
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (added, w) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        b.receive(&added, &mut e).unwrap();
        let mut c = Group::join(cy, &key(ada), &w, &mut e).unwrap();
        // A welcome naming another group than its changes is refused.
        let mut other = w.clone();
        other.group = GroupId([1; 16]);
        assert_eq!(Group::join(cy, &key(ada), &other, &mut e).unwrap_err(), EngineError::ForgedSender);

        let from_ada = a.send(ada, &text("from Ada"), &mut e).unwrap();
        assert_eq!(read(&mut c, &from_ada, &mut e), vec!["from Ada"]);
        // The same chain post again would rewind Ada's chain: refused.
        assert_eq!(c.receive(&from_ada[0], &mut e), Err(EngineError::Duplicate));
        // Bo announces Ada's chain as his own (he read it): refused, so Ada's messages are
        // never read as his.
        let mut copy = b.clone();
        copy.sending = a.sending.clone();
        let forged = copy.send(bo, &text("mine"), &mut e).unwrap();
        assert_eq!(c.receive(&forged[0], &mut e), Err(EngineError::ForgedSender));

        // An admin cannot move anyone to an epoch of their choosing, nor answer someone
        // else's departure unless senior.
        let mut far = a.clone();
        let (_, mut rekeys) = far.remove(ada, &key(bo), &mut e).unwrap();
        let (_, mut rekey) = rekeys.remove(0);
        rekey.epoch += 5;
        assert_eq!(c.clone().apply_rekey(&key(ada), &rekey, &mut e), Err(EngineError::Duplicate));

        // Ada removes Bo. Cy reads the removal before her rekey: until it comes she neither
        // writes (Bo reads this epoch) nor follows an epoch someone starts under it.
        let (removed, rekeys) = a.remove(ada, &key(bo), &mut e).unwrap();
        c.receive(&removed, &mut e).unwrap();
        assert_eq!(c.send(cy, &text("too early"), &mut e), Err(EngineError::RekeyPending));
        let mut b2 = b.clone();
        let (bo_adds, _) = b2.add(bo, dee.public(), Role::Member, &mut e).unwrap();
        let before = c.topic().0;
        let _ = c.receive(&bo_adds, &mut e);
        assert_eq!(c.topic().0, before, "no epoch followed while waiting");
        let for_cy = rekeys.iter().find(|(m, _)| *m == key(cy)).unwrap();
        c.apply_rekey(&key(ada), &for_cy.1, &mut e).unwrap();
        assert_eq!(c.topic().1, a.topic().1);
        let after = c.send(cy, &text("now"), &mut e).unwrap();
        assert_eq!(read(&mut a, &after, &mut e), vec!["now"]);
    }

    /// An admin who did not make the group removes someone: the creator (whose roster entry
    /// holds only a key) gets the next epoch too.
    #[test]
    fn a_removal_by_another_admin_rekeys_the_creator_too() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (bo_added, w) = a.add(ada, bo.public(), Role::Admin, &mut e).unwrap();
        // (Ada reads her post back from the topic, as her device does: her claim on the epoch
        // it started ends, and she may add again.)
        let _ = a.receive(&bo_added, &mut e);
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (added, _) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        b.receive(&added, &mut e).unwrap();
        let (removed, rekeys) = b.remove(bo, &key(cy), &mut e).unwrap();
        let for_ada = rekeys.iter().find(|(m, _)| *m == key(ada)).expect("the creator is rekeyed");
        a.receive(&removed, &mut e).unwrap();
        a.apply_rekey(&key(bo), &for_ada.1, &mut e).unwrap();
        let after = b.send(bo, &text("without Cy"), &mut e).unwrap();
        assert_eq!(read(&mut a, &after, &mut e), vec!["without Cy"]);
    }

    /// Two admins add someone at the same moment, both starting epoch n + 1. The topic orders
    /// their posts the same for everyone: all follow the first, the admin whose addition came
    /// second follows it too and welcomes their newcomer into it again, and everyone reads
    /// everyone.
    #[test]
    fn concurrent_additions_end_in_one_epoch() {
        let World { mut e, people } = world(5);
        let (ada, bo, cy, dee, eve) = (&people[0], &people[1], &people[2], &people[3], &people[4]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (bo_added, w) = a.add(ada, bo.public(), Role::Admin, &mut e).unwrap();
        // (Ada reads her post back from the topic, as her device does: her claim on the epoch
        // it started ends, and she may add again.)
        let _ = a.receive(&bo_added, &mut e);
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (added, w) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        let _ = a.receive(&added, &mut e);
        b.receive(&added, &mut e).unwrap();
        let mut c = Group::join(cy, &key(ada), &w, &mut e).unwrap();
        // Both add at once; the topic holds Ada's post first, then Bo's.
        let (by_ada, to_dee) = a.add(ada, dee.public(), Role::Member, &mut e).unwrap();
        let (by_bo, to_eve) = b.add(bo, eve.public(), Role::Member, &mut e).unwrap();
        let mut d = Group::join(dee, &key(ada), &to_dee, &mut e).unwrap();
        let mut first_eve = Group::join(eve, &key(bo), &to_eve, &mut e).unwrap();
        for g in [&mut a, &mut c] {
            let _ = g.receive(&by_ada, &mut e);
            let _ = g.receive(&by_bo, &mut e);
        }
        let Received::Superseded { ours, forward, .. } = b.receive(&by_ada, &mut e).unwrap() else {
            panic!("Bo's addition came second")
        };
        assert_eq!(ours, eve.public());
        assert_eq!(b.receive(&by_bo, &mut e), Err(EngineError::Duplicate));
        // Dee joined by Ada's addition and never read the epoch before: Bo's forward tells her
        // of Eve (the others know already).
        assert!(!d.roster().members.contains_key(&key(eve)));
        d.receive(&forward, &mut e).unwrap();
        assert!(d.roster().members.contains_key(&key(eve)));
        assert_eq!(c.receive(&forward, &mut e), Err(EngineError::Duplicate));
        for g in [&b, &c] {
            assert_eq!(g.topic().1, a.topic().1, "one epoch for all");
        }
        // Eve's first welcome led to an epoch nobody uses; Bo's second one to everyone's.
        assert_ne!(first_eve.topic().1, a.topic().1);
        // Eve takes a second welcome only from Bo, who added her, and only with every change
        // she holds: nobody else can move her, nor leave a change out.
        assert!(!first_eve.clone().rejoin(eve, &key(ada), &a.welcome_again(), &mut e).unwrap());
        let mut cut = b.welcome_again();
        cut.changes.remove(2);
        assert!(!first_eve.clone().rejoin(eve, &key(bo), &cut, &mut e).unwrap());
        let mut f = first_eve.clone();
        assert!(f.rejoin(eve, &key(bo), &b.welcome_again(), &mut e).unwrap());
        assert_eq!(f.topic().1, a.topic().1);
        assert_eq!(f.roster().members.len(), 5);
        let hello = a.send(ada, &text("all five"), &mut e).unwrap();
        for g in [&mut b, &mut c, &mut d, &mut f] {
            assert_eq!(read(g, &hello, &mut e), vec!["all five"]);
        }
        let from_bo = b.send(bo, &text("from Bo"), &mut e).unwrap();
        for g in [&mut a, &mut c, &mut d, &mut f] {
            assert_eq!(read(g, &from_bo, &mut e), vec!["from Bo"]);
        }
        let _ = first_eve.receive(&hello[1], &mut e);
        // Bo, an admin beside Ada, cannot add again while his addition may still lose a race
        // (until he reads it back from the topic).
        let (x, y) = (Identity::generate_with(&mut e).unwrap(), Identity::generate_with(&mut e).unwrap());
        let (by_bo, _) = b.add(bo, x.public(), Role::Member, &mut e).unwrap();
        assert_eq!(b.add(bo, y.public(), Role::Member, &mut e).unwrap_err(), EngineError::AdditionPending);
        let _ = b.receive(&by_bo, &mut e);
        assert!(b.add(bo, y.public(), Role::Member, &mut e).is_ok());
    }

    /// Both admins add the same person at once: nothing changes in the roster, but the second
    /// admin's epoch still lost, and they follow the first.
    #[test]
    fn adding_the_same_person_at_once_still_ends_in_one_epoch() {
        let World { mut e, people } = world(3);
        let (ada, bo, cy) = (&people[0], &people[1], &people[2]);
        let mut a = Group::create(ada, "Club", &mut e).unwrap();
        let (bo_added, w) = a.add(ada, bo.public(), Role::Admin, &mut e).unwrap();
        // (Ada reads her post back from the topic, as her device does: her claim on the epoch
        // it started ends, and she may add again.)
        let _ = a.receive(&bo_added, &mut e);
        let mut b = Group::join(bo, &key(ada), &w, &mut e).unwrap();
        let (by_ada, _) = a.add(ada, cy.public(), Role::Member, &mut e).unwrap();
        let (by_bo, _) = b.add(bo, cy.public(), Role::Member, &mut e).unwrap();
        let _ = a.receive(&by_ada, &mut e);
        assert!(matches!(b.receive(&by_ada, &mut e).unwrap(), Received::Superseded { .. }));
        let _ = b.receive(&by_bo, &mut e);
        let _ = a.receive(&by_bo, &mut e);
        assert_eq!(a.topic().1, b.topic().1);
    }
}
