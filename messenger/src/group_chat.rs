//! Group chats on the [`Messenger`]: making a group, adding and removing members, leaving,
//! writing, and what arrives on the group's topics. The engine's [`Group`] does the
//! cryptography; this turns it into records, frames and events. Welcomes and rekeys travel over
//! pairwise sessions (to contacts), posts over the anonymous line.

use crate::conversation::ConversationId;
use crate::effects::{Effects, Event};
use crate::error::MessengerError;
use crate::groups::{GroupEntry, Groups, MAX_RECEIPT_IDS, Owed};
use crate::history::{ChatContent, ChatMessage, ChatNotice, Status};
use crate::joining::Taken;
use crate::messenger::Messenger;
use crate::outbox::{RETRY_LATER_MS, RETRY_SOON_MS};
use sotto_engine::consts::ENVELOPE_TTL_SECS;
use sotto_engine::group::{Group, Received, Rekeys};
use sotto_engine::handover::{Rekey, Welcome};
use sotto_engine::message::{Body, Message, ReceiptKind, VERSION};
use sotto_engine::random::Entropy;
use sotto_engine::roster::{Change, Op, Role};
use sotto_engine::sender_keys::GroupId;
use sotto_engine::{EngineError, Identity};
use sotto_shared::frames::{IdentityPublic, PrekeyBundle, Subscription, topic_write_hash};
use sotto_shared::{Address, ClientFrame, ErrorCode, MessageId, TopicId};
use std::collections::HashSet;

impl Messenger {
    /// Makes a group named `name` with us as its only member and admin.
    pub fn create_group(
        &mut self,
        name: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(ConversationId, Effects), MessengerError> {
        let name = crate::names::validate(name)?;
        let group = Group::create(self.device.identity(), &name, e)?;
        let entry = GroupEntry::new(group, now_ms);
        let mut fx = Effects::default();
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        let id = entry.id();
        fx.writes.push(self.groups.insert(entry));
        fx.merge(self.own_notices(id, 1, now_ms, e));
        Ok((ConversationId::Group(id), fx))
    }

    /// Adds the contact at `address` to a group of which we are an admin: the change goes to
    /// the group's topic, the welcome to them over our session.
    pub fn add_to_group(
        &mut self,
        id: &GroupId,
        address: &Address,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let contact = self.contacts.get(address).ok_or(MessengerError::UnknownContact)?;
        let member = contact.identity;
        // Everything that can fail comes before the group changes (the welcome needs a session
        // that can send).
        if !self.device.can_send_to(address) {
            return Err(MessengerError::Renewing(contact.name.clone()));
        }
        let (mut fx, welcome) =
            self.change_with(id, e, |group, me, e| group.add(me, member, Role::Member, e))?;
        fx.merge(self.hand_over(address, Owed::Welcome(welcome), now_ms, e)?);
        fx.merge(self.own_notices(*id, 1, now_ms, e));
        Ok(fx)
    }

    /// Adds `members` to a group of which we are the only one in yet, without welcoming them:
    /// they hold no epoch and read nothing, and nothing is posted. So load tools and tests make
    /// a group of a thousand without a device per member; whoever is added next is welcomed
    /// with all of their changes.
    #[cfg(feature = "load")]
    pub fn add_absent_members(
        &mut self,
        id: &GroupId,
        members: &[IdentityPublic],
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let me = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        for member in members {
            entry.group.add(me, *member, Role::Member, e)?;
        }
        let mut fx = Effects { frames: entry.move_frames(), ..Effects::default() };
        fx.writes.push(entry.write());
        Ok(fx)
    }

    /// Removes a member (we must be an admin who outranks them): the change goes to the topic
    /// they read, the next epoch to everyone else over our sessions.
    pub fn remove_from_group(
        &mut self,
        id: &GroupId,
        member: &[u8; 32],
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let (mut fx, rekeys) = self.change_with(id, e, |group, me, e| group.remove(me, member, e))?;
        fx.merge(self.send_rekeys(id, rekeys, now_ms, e)?);
        fx.merge(self.own_notices(*id, 1, now_ms, e));
        Ok(fx)
    }

    /// Renames a group (we must be an admin).
    pub fn rename_group(
        &mut self,
        id: &GroupId,
        name: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let name = crate::names::validate(name)?;
        self.change_group(id, Op::Rename { name }, now_ms, e)
    }

    /// Sets a group's short description (we must be an admin; empty clears it).
    pub fn describe_group(
        &mut self,
        id: &GroupId,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let text = crate::names::validate_description(text)?;
        self.change_group(id, Op::Describe { text }, now_ms, e)
    }

    /// Makes a member an admin, or an admin a member again (an admin who outranks them).
    pub fn set_group_role(
        &mut self,
        id: &GroupId,
        member: &[u8; 32],
        role: Role,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        self.change_group(id, Op::SetRole { member: *member, role }, now_ms, e)
    }

    /// A change that moves no one in or out: posted to the topic, nothing more.
    fn change_group(
        &mut self,
        id: &GroupId,
        op: Op,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let (mut fx, ()) = self.change_with(id, e, |group, me, e| Ok((group.change_post(me, op, e)?, ())))?;
        fx.merge(self.own_notices(*id, 1, now_ms, e));
        Ok(fx)
    }

    /// Leaves a group: the change goes to its topic; the chat stays, read-only.
    pub fn leave_group(
        &mut self,
        id: &GroupId,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let (_, topic, _) = entry(&mut self.groups, id)?.group.topic();
        let (mut fx, ()) = self.change_with(id, e, |group, me, e| Ok((group.leave(me, e)?, ())))?;
        if let Some(entry) = self.groups.get_mut(id) {
            entry.gone = true;
            fx.frames.push(ClientFrame::Unsubscribe { topic });
            fx.frames.extend(entry.close_doors());
            fx.writes.push(entry.write());
        }
        fx.merge(self.own_notices(*id, 1, now_ms, e));
        Ok(fx)
    }

    /// Makes a change of ours with `make` on a copy of the group; once it succeeds, the group
    /// keeps it and its post is queued for the topic the group was in (which everyone reads,
    /// also whoever the change moves out). Moving to a new epoch subscribes to its topic.
    pub(crate) fn change_with<T>(
        &mut self,
        id: &GroupId,
        e: &mut dyn Entropy,
        make: impl FnOnce(&mut Group, &Identity, &mut dyn Entropy) -> Result<(Vec<u8>, T), EngineError>,
    ) -> Result<(Effects, T), MessengerError> {
        let ids = post_ids(1, e)?;
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let (epoch, topic, write) = entry.group.topic();
        let mut next = entry.group.clone();
        let (post, made) = make(&mut next, identity, e).map_err(not_allowed)?;
        entry.group = next;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(topic, write, (vec![post], ENVELOPE_TTL_SECS), None, ids.into_iter()));
        if entry.group.topic().0 != epoch {
            fx.frames.extend(entry.move_frames());
        }
        fx.writes.push(entry.write());
        Ok((fx, made))
    }

    /// Sends each rekey to its member over our session with them. A member we have no session
    /// with (added by another admin, never a contact of ours) cannot be rekeyed by us yet.
    fn send_rekeys(
        &mut self,
        id: &GroupId,
        rekeys: Rekeys,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        for (member, rekey) in rekeys {
            // One member's failure must not drop what was already sealed for the others.
            match self.owe(id, member, Owed::Rekey(Box::new(rekey)), now_ms, e) {
                Ok(sent) => fx.merge(sent),
                Err(err) => fx.events.push(Event::Problem(err.into())),
            }
        }
        Ok(fx)
    }

    /// Hands `member` what they are owed over our session with them; a member who is not our
    /// contact (added by another admin, or by a link) needs a session first (X3DH from their
    /// prekey bundle): what they are owed waits in the group's record meanwhile.
    pub(crate) fn owe(
        &mut self,
        id: &GroupId,
        member: [u8; 32],
        owed: Owed,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let address = Address::from_identity_key(&member);
        if self.device.can_send_to(&address) {
            return self.hand_over(&address, owed, now_ms, e);
        }
        let mut fx = Effects::default();
        if let Some(entry) = self.groups.get_mut(id) {
            entry.await_session(member, owed);
            fx.writes.push(entry.write());
            fx.frames.push(ClientFrame::FetchBundle { address });
        }
        Ok(fx)
    }

    /// Sends what is owed over our session with `address`: a rekey, or a welcome (a big
    /// group's in parts, one message each).
    fn hand_over(
        &mut self,
        address: &Address,
        owed: Owed,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let bodies = match owed {
            Owed::Rekey(rekey) => vec![Body::GroupRekey(rekey)],
            Owed::Welcome(welcome) => {
                welcome.split()?.into_iter().map(|part| Body::GroupWelcome(Box::new(part))).collect()
            }
        };
        let mut fx = Effects::default();
        for body in bodies {
            fx.merge(self.send_body(address, body, None, now_ms, e)?.0);
        }
        Ok(fx)
    }

    /// A prekey bundle of a group member we owe rekeys (see `send_rekeys`): start a session and
    /// hand them over. `false` if we owe them nothing.
    pub(crate) fn on_member_bundle(
        &mut self,
        address: &Address,
        bundle: &PrekeyBundle,
        now_ms: u64,
        e: &mut dyn Entropy,
        fx: &mut Effects,
    ) -> bool {
        if !self.groups.awaiting().contains(address) {
            return false;
        }
        if let Err(err) = crate::messenger::check_bundle(address, bundle) {
            fx.events.push(Event::Problem(err.into()));
            return true;
        }
        match self.device.start_conversation(bundle, e) {
            Ok(out) => fx.merge(Effects::from_engine(out)),
            Err(err) => {
                fx.events.push(Event::Problem(MessengerError::from(err).into()));
                return true;
            }
        }
        let (taken, writes) = self.groups.take_from_each(|g| g.take_awaiting(address));
        fx.writes.extend(writes);
        for owed in taken.into_iter().flat_map(|(_, owed)| owed) {
            match self.hand_over(address, owed, now_ms, e) {
                Ok(sent) => fx.merge(sent),
                Err(err) => fx.events.push(Event::Problem(err.into())),
            }
        }
        true
    }

    /// Whether a message from `from` (not our contact) is a group peer's, not a stranger's
    /// asking to talk: a rekey of a group we are in from one of its admins, or a welcome into a
    /// group we asked to join by its link (the welcome itself proves its sender an admin).
    pub(crate) fn is_group_handover(&self, from: &[u8; 32], body: &Body) -> bool {
        match body {
            Body::GroupRekey(r) => self.groups.get(&r.group).is_some_and(|g| g.group.roster().is_admin(from)),
            // Into a group we asked to join, from the admin whose link it was; or into one we
            // are in, from one of its admins (see `on_welcome`).
            Body::GroupWelcome(w) => {
                self.joining.asked_admin_is(&w.group, from)
                    || self.groups.get(&w.group).is_some_and(|g| g.group.roster().is_admin(from))
            }
            _ => false,
        }
    }

    /// Writes `text` in a group.
    pub(crate) fn send_group_chat(
        &mut self,
        id: &GroupId,
        content: ChatContent,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let seq = self.seq();
        let conversation = ConversationId::Group(*id);
        let mut message = ChatMessage::sending(seq, conversation, content, now_ms);
        let body = message.body();
        let (mut fx, message_id) = self.send_group_body(id, body.clone(), Some(seq), now_ms, e)?;
        message.id = message_id;
        fx.writes.extend(self.own_expiry(&mut message, &body, now_ms));
        fx.merge(self.mark_read(&conversation, now_ms, e));
        fx.writes.extend(self.keep(message));
        Ok(fx)
    }

    /// Sends `body` to a group under our chain (its posts queued after those waiting); the last
    /// post carries chat message `seq`, if any. Returns the message's id.
    pub(crate) fn send_group_body(
        &mut self,
        id: &GroupId,
        body: Body,
        seq: Option<u64>,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(Effects, [u8; 16]), MessengerError> {
        let mut message_id = [0u8; 16];
        e.fill(&mut message_id)?;
        let expires_after_secs = self.expiry_for(&ConversationId::Group(*id), &body);
        let message = Message { v: VERSION, id: message_id, sent_at_ms: now_ms, expires_after_secs, body };
        Ok((self.send_group_message(id, &message, seq, e)?, message_id))
    }

    /// Sends `message` to a group under our chain (see `send_group_body`).
    fn send_group_message(
        &mut self,
        id: &GroupId,
        message: &Message,
        seq: Option<u64>,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let (_, topic, write) = entry.group.topic();
        let mut next = entry.group.clone();
        let posts = next.send(identity, message, e)?;
        entry.group = next;
        if seq.is_some() {
            entry.track_reads(message.id);
        }
        let ids = post_ids(posts.len(), e)?;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(
            topic,
            write,
            (posts, message.envelope_ttl_secs()),
            seq,
            ids.into_iter(),
        ));
        fx.writes.push(entry.write());
        Ok(fx)
    }

    /// After we moved from an epoch nobody else reads (`dead`, see `Group::rejoin` and
    /// `Received::Superseded`) to the one everyone does: read the new topic, drop the posts
    /// queued for the dead one, and send the texts they carried again, under their own ids.
    fn leave_dead_epoch(&mut self, id: &GroupId, dead: &TopicId, e: &mut dyn Entropy) -> Effects {
        let mut fx = Effects::default();
        let Some(entry) = self.groups.get_mut(id) else { return fx };
        fx.frames.extend(entry.move_frames());
        let head = entry.pending().next().map(|p| p.id);
        let unsent = entry.drop_pending(dead);
        // The post the relay was to confirm next went: the one after it goes now.
        if entry.pending().next().map(|p| p.id) != head {
            fx.frames.extend(entry.next_frame());
        }
        fx.writes.push(entry.write());
        let conversation = ConversationId::Group(*id);
        for seq in unsent {
            let history = self.messages(&conversation);
            let Some(m) = history.iter().find(|m| m.seq == seq) else { continue };
            let body = m.body();
            let expires_after_secs = m.expiry.map(|x| x.after_secs);
            let message =
                Message { v: VERSION, id: m.id, sent_at_ms: m.sent_at_ms, expires_after_secs, body };
            match self.send_group_message(id, &message, Some(seq), e) {
                Ok(sent) => fx.merge(sent),
                Err(err) => fx.events.push(Event::Problem(err.into())),
            }
        }
        fx
    }

    /// How many members read our message `message` in group `id`, of how many others there
    /// are (`None` for a message not counted).
    pub fn group_reads(&self, id: &GroupId, message: &[u8; 16]) -> Option<(usize, usize)> {
        self.groups.get(id).filter(|g| g.has_receipts()).and_then(|g| g.reads(message))
    }

    /// A post read from one of a group's topics.
    pub(crate) fn on_post(
        &mut self,
        topic: &TopicId,
        seq: u64,
        payload: &[u8],
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(id) = self.groups.by_topic(topic) else { return fx };
        let Some(entry) = self.groups.get_mut(&id) else { return fx };
        if !entry.advance(topic, seq) {
            return fx;
        }
        let before = entry.group.roster().clone();
        let (_, before_topic, _) = entry.group.topic();
        let received = entry.group.receive(payload, e);
        let changed = *entry.group.roster() != before;
        fx.writes.push(entry.write());
        let me = entry.group.me();
        // Our own posts come back to us, and posts of an epoch we never had are not ours to
        // read: neither is news.
        let Ok(received) = received else { return fx };
        let conversation = ConversationId::Group(id);
        match received {
            Received::Message {
                from,
                message: Message { body: Body::Receipt { kind: ReceiptKind::Read, ids }, .. },
            } => {
                // Someone read messages; those of ours count them.
                let Some(entry) = self.groups.get_mut(&id) else { return fx };
                let mut read = HashSet::new();
                for m in ids.iter().take(MAX_RECEIPT_IDS) {
                    if entry.note_read(m, from) {
                        read.insert(*m);
                    }
                }
                if !read.is_empty() {
                    fx.writes.push(entry.write());
                    // Read by someone: our message's status says so, and its countdown starts.
                    let ours = |m: &ChatMessage| m.outgoing && read.contains(&m.id);
                    fx.writes.extend(self.history.set_status(&conversation, ours, Status::Read));
                    fx.writes.extend(self.start_countdowns(&conversation, now_ms));
                }
            }
            Received::Message { from, message } if !message.body.is_chat() => {
                if from != me {
                    fx.merge(self.on_change(conversation, from, message, e));
                }
            }
            Received::Message { from, message } => {
                if from == me || !self.history.first_sight(conversation, message.id) {
                    return fx;
                }
                let read_now = self.reading == Some(conversation);
                if read_now && self.groups.get(&id).is_some_and(GroupEntry::has_receipts) {
                    self.receipts.owe(conversation, true, message.id);
                }
                let status = if read_now { Status::Read } else { Status::Delivered };
                let seq = self.seq();
                let Some(m) = ChatMessage::received(seq, conversation, message, status, Some(from)) else {
                    return fx;
                };
                let text = m.preview();
                fx.writes.extend(self.keep(m));
                if read_now {
                    fx.writes.extend(self.start_countdowns(&conversation, now_ms));
                }
                let name = self.member_name(&from);
                fx.events.push(Event::Message { conversation, name, text });
            }
            Received::Chain { .. } => {}
            Received::Superseded { change, ours, forward } => {
                // Another admin's addition came first: we follow their epoch (everyone does),
                // welcome whom we added into it again, and write again what we had queued for
                // the epoch nobody else reads.
                fx.writes.extend(self.notice(id, &change, now_ms, e));
                let Some(entry) = self.groups.get_mut(&id) else { return fx };
                let (_, topic, write) = entry.group.topic();
                match post_ids(1, e) {
                    Ok(ids) => fx.frames.extend(entry.queue(
                        topic,
                        write,
                        (vec![forward], ENVELOPE_TTL_SECS),
                        None,
                        ids.into_iter(),
                    )),
                    Err(err) => fx.events.push(Event::Problem(err.into())),
                }
                let welcome = entry.group.welcome_again();
                match self.owe(&id, ours.signing_key, Owed::Welcome(welcome), now_ms, e) {
                    Ok(owed) => fx.merge(owed),
                    Err(err) => fx.events.push(Event::Problem(err.into())),
                }
                fx.merge(self.leave_dead_epoch(&id, &before_topic, e));
            }
            Received::Changed { change, new_epoch } => {
                if changed {
                    fx.writes.extend(self.notice(id, &change, now_ms, e));
                }
                // A rekey that came before this change may apply now.
                if changed || new_epoch {
                    fx.merge(self.retry_early(&id, e));
                }
                let Some(entry) = self.groups.get_mut(&id) else { return fx };
                if new_epoch {
                    fx.frames.extend(entry.move_frames());
                }
                // No admin any more (demoted or removed): our links let nobody in.
                if !entry.group.roster().is_admin(&me) && !entry.doors.is_empty() {
                    fx.frames.extend(entry.close_doors());
                    fx.writes.push(entry.write());
                }
                if !entry.group.roster().members.contains_key(&me) && !entry.gone {
                    entry.gone = true;
                    fx.writes.push(entry.write());
                    fx.events.push(Event::LeftGroup { conversation });
                } else if change.op == Op::Leave {
                    // The senior admin moves those who stay to a new epoch.
                    let mut next = entry.group.clone();
                    let (_, old_topic, old_write) = next.topic();
                    if let Ok(Some((acknowledged, rekeys))) =
                        next.rekey_after(self.device.identity(), &change, e)
                    {
                        entry.group = next;
                        let ids = match post_ids(1, e) {
                            Ok(ids) => ids,
                            Err(err) => {
                                fx.events.push(Event::Problem(err.into()));
                                return fx;
                            }
                        };
                        fx.frames.extend(entry.queue(
                            old_topic,
                            old_write,
                            (vec![acknowledged], ENVELOPE_TTL_SECS),
                            None,
                            ids.into_iter(),
                        ));
                        fx.frames.extend(entry.move_frames());
                        fx.writes.push(entry.write());
                        match self.send_rekeys(&id, rekeys, now_ms, e) {
                            Ok(sent) => fx.merge(sent),
                            Err(err) => fx.events.push(Event::Problem(err.into())),
                        }
                    }
                }
            }
        }
        fx
    }

    /// The relay sent a topic's kept posts through `through`; with `more`, ask for the rest.
    pub(crate) fn on_subscribed(&mut self, topic: &TopicId, through: u64, more: bool) -> Effects {
        let mut fx = Effects::default();
        let Some(id) = self.groups.by_topic(topic) else { return fx };
        let Some(entry) = self.groups.get_mut(&id) else { return fx };
        if entry.advance(topic, through) {
            fx.writes.push(entry.write());
        }
        if more {
            let topics = entry.subscriptions().into_iter().filter(|s| s.topic == *topic).collect();
            fx.frames.push(ClientFrame::Subscribe { topics });
        }
        fx
    }

    /// The relay stored post `post`: the message it carried is sent. `false` if it is no
    /// post of ours.
    pub(crate) fn on_post_sent(&mut self, post: MessageId, fx: &mut Effects) -> bool {
        let Some(id) = self.groups.by_post(post) else { return false };
        let Some(entry) = self.groups.get_mut(&id) else { return false };
        let Some(message) = entry.settle(post) else { return true };
        fx.writes.push(entry.write());
        // The next post goes now that this one is confirmed.
        fx.frames.extend(entry.next_frame());
        if let Some(seq) = message {
            let conversation = ConversationId::Group(id);
            fx.writes.extend(self.history.set_status(&conversation, |m| m.seq == seq, Status::Sent));
        }
        true
    }

    /// The relay refused post `post`. A topic it forgot is opened again by subscribing, and
    /// the post follows; a post refused for good (too large, malformed) fails visibly; any
    /// other refusal (rate, room) sends it again after a pause. `false` if it is no post of
    /// ours.
    pub(crate) fn on_post_refused(
        &mut self,
        code: ErrorCode,
        post: MessageId,
        now_ms: u64,
        fx: &mut Effects,
    ) -> bool {
        let Some(id) = self.groups.by_post(post) else { return false };
        let Some(entry) = self.groups.get_mut(&id) else { return false };
        match code {
            ErrorCode::UnknownTopic => {
                // Subscribing opens the topic again (the post's own, which may be one we no
                // longer read); the post follows after a pause, so a relay that will not open
                // it is not asked in a tight loop.
                let topics = entry
                    .pending()
                    .filter(|p| p.id == post)
                    .map(|p| Subscription {
                        topic: p.topic,
                        write_hash: topic_write_hash(&p.write),
                        after: u64::MAX,
                    })
                    .collect();
                fx.frames.push(ClientFrame::Subscribe { topics });
                self.post_retries.insert(post, now_ms.saturating_add(RETRY_SOON_MS));
            }
            ErrorCode::TooLarge | ErrorCode::InvalidRequest | ErrorCode::Malformed => {
                let message = entry.settle(post).flatten();
                fx.writes.push(entry.write());
                fx.frames.extend(entry.next_frame());
                if let Some(seq) = message {
                    let conversation = ConversationId::Group(id);
                    fx.writes.extend(self.history.set_status(
                        &conversation,
                        |m| m.seq == seq,
                        Status::Failed,
                    ));
                }
            }
            ErrorCode::RateLimited | ErrorCode::Internal => {
                self.post_retries.insert(post, now_ms.saturating_add(RETRY_SOON_MS));
            }
            _ => {
                self.post_retries.insert(post, now_ms.saturating_add(RETRY_LATER_MS));
            }
        }
        true
    }

    /// The refused posts whose pause is over, still unconfirmed, in the order refused.
    pub(crate) fn due_posts(&mut self, now_ms: u64) -> Vec<ClientFrame> {
        let due = self.post_retries.take_due(now_ms);
        let mut frames = Vec::new();
        for post in due {
            let pending = self.groups.iter().flat_map(|g| g.pending()).find(|p| p.id == post);
            frames.extend(pending.map(|p| p.frame()));
            let asked = self.joining.asked_by_post(post);
            frames.extend(asked.and_then(|g| self.joining.asked_frame(&g)));
            frames.extend(self.channels.resend(&post, now_ms));
        }
        frames
    }

    /// Every topic to read and every post to send again: for an anonymous line that just came
    /// up.
    pub fn resubscribe(&mut self, now_ms: u64) -> Effects {
        let mut frames = self.groups.subscribe_all();
        frames.extend(self.channels.resume(now_ms));
        frames.extend(self.groups.pending_frames());
        frames.extend(self.joining.asked_frames());
        frames.extend(self.groups.awaiting().into_iter().map(|address| ClientFrame::FetchBundle { address }));
        Effects { frames, ..Effects::default() }
    }

    /// A welcome (or a part of one) into a group, from a contact who is one of its admins.
    pub(crate) fn on_welcome(
        &mut self,
        from: &IdentityPublic,
        welcome: Welcome,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        let known = self.groups.get(&welcome.group).is_some_and(|g| !g.gone);
        let welcome = if welcome.parts == 1 {
            welcome
        } else {
            match self.joining.take(from.signing_key, welcome, now_ms)? {
                Taken::Waiting(writes) => return Ok(Effects { writes, ..fx }),
                Taken::Whole { welcome, writes } => {
                    fx.writes = writes;
                    welcome
                }
            }
        };
        if known {
            // A second welcome into a group we are in: taken only to follow the epoch everyone
            // does after the admin who added us lost a race (see `Group::rejoin`).
            let identity = self.device.identity();
            let Some(entry) = self.groups.get_mut(&welcome.group) else { return Ok(fx) };
            let mut next = entry.group.clone();
            let (_, dead, _) = entry.group.topic();
            if next.rejoin(identity, &from.signing_key, &welcome, e)? {
                entry.group = next;
                fx.merge(self.leave_dead_epoch(&welcome.group, &dead, e));
            }
            return Ok(fx);
        }
        let group = match Group::join(self.device.identity(), &from.signing_key, &welcome, e) {
            Ok(group) => group,
            // Refused: the parts it was put together from are gone all the same.
            Err(err) => {
                fx.events.push(Event::Problem(MessengerError::from(err).into()));
                return Ok(fx);
            }
        };
        fx.writes.extend(self.joining.drop_group(&welcome.group));
        let (unsubscribe, asked) = self.joining.drop_asked(&welcome.group);
        fx.frames.extend(unsubscribe);
        fx.writes.extend(asked);
        let me = group.me();
        let added = group
            .changes()
            .into_iter()
            .rfind(|c| matches!(&c.op, Op::Add { member, .. } if member.signing_key == me));
        let entry = GroupEntry::new(group, now_ms);
        let name = entry.group.roster().name.clone();
        let id = entry.id();
        let conversation = ConversationId::Group(id);
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        fx.writes.push(self.groups.insert(entry));
        if let Some(added) = added {
            fx.writes.extend(self.notice(id, &added, now_ms, e));
        }
        fx.events.push(Event::JoinedGroup { conversation, name });
        Ok(fx)
    }

    /// The next epoch of a group, from one of its admins.
    pub(crate) fn on_rekey(
        &mut self,
        from: &IdentityPublic,
        rekey: &Rekey,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        let entry = entry(&mut self.groups, &rekey.group)?;
        let (epoch, ..) = entry.group.topic();
        let mut next = entry.group.clone();
        match next.apply_rekey(&from.signing_key, rekey, e) {
            Ok(()) => {}
            // Already there (a redelivery).
            Err(EngineError::Duplicate) if rekey.epoch <= epoch => return Ok(fx),
            // Ahead of the posts it follows (a later epoch, or an admin whose promotion we
            // have not read): kept, and tried again as the group moves on.
            Err(EngineError::Duplicate | EngineError::ForgedSender) => {
                entry.keep_early(from.signing_key, rekey.clone());
                fx.writes.push(entry.write());
                return Ok(fx);
            }
            Err(other) => return Err(other.into()),
        }
        entry.group = next;
        fx.frames.extend(entry.move_frames());
        fx.writes.push(entry.write());
        fx.merge(self.retry_early(&rekey.group, e));
        Ok(fx)
    }

    /// Tries the rekeys that came early again, until none applies any more.
    fn retry_early(&mut self, id: &GroupId, e: &mut dyn Entropy) -> Effects {
        let mut fx = Effects::default();
        let Some(entry) = self.groups.get_mut(id) else { return fx };
        let mut waiting = entry.take_early();
        let mut moved = false;
        loop {
            let before = waiting.len();
            let mut kept = Vec::new();
            for (from, rekey) in waiting {
                let (epoch, ..) = entry.group.topic();
                let mut next = entry.group.clone();
                match next.apply_rekey(&from, &rekey, e) {
                    Ok(()) => {
                        entry.group = next;
                        moved = true;
                    }
                    // One for an epoch we reached or passed is spent.
                    Err(EngineError::Duplicate) if rekey.epoch <= epoch => {}
                    Err(_) => kept.push((from, rekey)),
                }
            }
            waiting = kept;
            if waiting.len() == before || waiting.is_empty() {
                break;
            }
        }
        for (from, rekey) in waiting {
            entry.keep_early(from, rekey);
        }
        if moved {
            fx.frames.extend(entry.move_frames());
        }
        fx.writes.push(entry.write());
        fx
    }

    /// Puts a change of the group in its timeline (none for a change that says nothing to
    /// show).
    fn notice(
        &mut self,
        id: GroupId,
        change: &Change,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Option<crate::records::RecordWrite> {
        let by = change.author;
        let notice = match &change.op {
            Op::Create { name, .. } => ChatNotice::Created { by, name: name.clone() },
            Op::Add { member, .. } => ChatNotice::Added { by, member: member.signing_key },
            Op::Remove { member } => ChatNotice::Removed { by, member: *member },
            Op::Leave => ChatNotice::Left { member: by },
            Op::Rename { name } => ChatNotice::Renamed { by, name: name.clone() },
            Op::SetRole { member, role: Role::Admin } => ChatNotice::Promoted { by, member: *member },
            Op::SetRole { member, role: Role::Member } => ChatNotice::Demoted { by, member: *member },
            Op::Describe { .. } => ChatNotice::Described { by },
        };
        let mut message_id = [0u8; 16];
        e.fill(&mut message_id).ok()?;
        let seq = self.seq();
        let conversation = ConversationId::Group(id);
        let m = ChatMessage {
            notice: Some(notice),
            ..ChatMessage::blank(seq, message_id, conversation, now_ms, Status::Read, None)
        };
        Some(self.history.push(m))
    }

    /// Notices for the changes we just made in a group (the last `n` of its changes).
    pub(crate) fn own_notices(&mut self, id: GroupId, n: usize, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let me = self.device.identity().public().signing_key;
        let changes: Vec<Change> = self
            .groups
            .get(&id)
            .map_or_else(Vec::new, |g| g.group.changes().into_iter().filter(|c| c.author == me).collect());
        // The ones we just made: the newest on our own chain (replay order can put a change of
        // the same version elsewhere).
        let mut changes = changes;
        changes.sort_by_key(|c| c.chain.seq);
        let mine: Vec<Change> = changes.into_iter().rev().take(n).collect();
        let mut fx = Effects::default();
        for c in mine.iter().rev() {
            fx.writes.extend(self.notice(id, c, now_ms, e));
        }
        fx
    }

    /// What a member is called here: their name as our contact, or a placeholder.
    pub fn member_name(&self, key: &[u8; 32]) -> String {
        let address = Address::from_identity_key(key);
        if address == self.address() {
            return self.profile().display_name.clone();
        }
        if let Some(c) = self.contacts.get(&address) {
            return c.name.clone();
        }
        // Someone who joined by a link of ours gave their name when asking.
        let asked = self.groups.iter().find_map(|g| g.given_name(key));
        asked.cloned().unwrap_or_else(|| crate::names::placeholder(&address))
    }

    /// Mutes a group's notifications (or turns them back on).
    pub fn set_group_muted(&mut self, id: &GroupId, muted: bool) -> Result<Effects, MessengerError> {
        let entry = self.groups.get_mut(id).ok_or(MessengerError::NotInGroup)?;
        entry.muted = muted;
        Ok(Effects { writes: vec![entry.write()], ..Effects::default() })
    }

    /// The group's state, for views (members, roles, name).
    pub fn group(&self, id: &GroupId) -> Option<&GroupEntry> {
        self.groups.get(id)
    }
}

/// A group we are still in.
fn entry<'a>(groups: &'a mut Groups, id: &GroupId) -> Result<&'a mut GroupEntry, MessengerError> {
    match groups.get_mut(id) {
        Some(g) if !g.gone => Ok(g),
        _ => Err(MessengerError::NotInGroup),
    }
}

/// Random ids for `n` posts.
fn post_ids(n: usize, e: &mut dyn Entropy) -> Result<Vec<MessageId>, MessengerError> {
    (0..n)
        .map(|_| {
            let mut id = [0u8; 16];
            e.fill(&mut id).map(|()| MessageId(id))
        })
        .collect::<Result<_, _>>()
        .map_err(MessengerError::from)
}

/// The engine refused a change we asked for: we may not make it.
fn not_allowed(e: EngineError) -> MessengerError {
    match e {
        EngineError::ForgedSender => MessengerError::NotGroupAdmin,
        other => other.into(),
    }
}
