//! Group chats on the [`Messenger`]: making a group, adding and removing members, leaving,
//! writing, and what arrives on the group's topics. The engine's [`Group`] does the
//! cryptography; this turns it into records, frames and events. Welcomes and rekeys travel over
//! pairwise sessions (to contacts), posts over the anonymous line.

use crate::conversation::ConversationId;
use crate::effects::{Effects, Event};
use crate::error::MessengerError;
use crate::groups::{GroupEntry, Groups};
use crate::history::{ChatMessage, Status};
use crate::messenger::Messenger;
use sotto_engine::EngineError;
use sotto_engine::consts::MAX_TEXT_BYTES;
use sotto_engine::group::{Group, Received, Rekeys};
use sotto_engine::handover::{Rekey, Welcome};
use sotto_engine::message::{Body, Message, VERSION};
use sotto_engine::random::Entropy;
use sotto_engine::roster::{Op, Role};
use sotto_engine::sender_keys::GroupId;
use sotto_shared::frames::IdentityPublic;
use sotto_shared::{Address, ClientFrame, ErrorCode, MessageId, TopicId};

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
        let member = self.contacts.get(address).ok_or(MessengerError::UnknownContact)?.identity;
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let mut next = entry.group.clone();
        let (_, topic, write) = next.topic();
        let (post, welcome) = next.add(identity, member, Role::Member, e).map_err(not_allowed)?;
        entry.group = next;
        let ids = post_ids(1, e)?;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(topic, write, vec![post], None, ids.into_iter()));
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        fx.writes.push(entry.write());
        let (sent, _) = self.send_body(address, Body::GroupWelcome(Box::new(welcome)), None, now_ms, e)?;
        fx.merge(sent);
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
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let mut next = entry.group.clone();
        let (_, topic, write) = next.topic();
        let (post, rekeys) = next.remove(identity, member, e).map_err(not_allowed)?;
        entry.group = next;
        let ids = post_ids(1, e)?;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(topic, write, vec![post], None, ids.into_iter()));
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        fx.writes.push(entry.write());
        fx.merge(self.send_rekeys(rekeys, now_ms, e)?);
        Ok(fx)
    }

    /// Leaves a group: the change goes to its topic; the chat stays, read-only.
    pub fn leave_group(&mut self, id: &GroupId, e: &mut dyn Entropy) -> Result<Effects, MessengerError> {
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let (_, topic, write) = entry.group.topic();
        let post = entry.group.leave(identity, e).map_err(not_allowed)?;
        let ids = post_ids(1, e)?;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(topic, write, vec![post], None, ids.into_iter()));
        entry.gone = true;
        fx.frames.push(ClientFrame::Unsubscribe { topic });
        fx.writes.push(entry.write());
        Ok(fx)
    }

    /// Sends each rekey to its member over our session with them. A member we have no session
    /// with (added by another admin, never a contact of ours) cannot be rekeyed by us yet.
    fn send_rekeys(
        &mut self,
        rekeys: Rekeys,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        for (member, rekey) in rekeys {
            let address = Address::from_identity_key(&member.signing_key);
            if !self.device.can_send_to(&address) {
                let name = crate::names::placeholder(&address);
                fx.events.push(Event::Problem(crate::effects::Notice::NotRekeyed { member: name }));
                continue;
            }
            let (sent, _) = self.send_body(&address, Body::GroupRekey(Box::new(rekey)), None, now_ms, e)?;
            fx.merge(sent);
        }
        Ok(fx)
    }

    /// Writes `text` in a group.
    pub(crate) fn send_group_text(
        &mut self,
        id: &GroupId,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(MessengerError::TooLong);
        }
        let mut message_id = [0u8; 16];
        e.fill(&mut message_id)?;
        let message = Message {
            v: VERSION,
            id: message_id,
            sent_at_ms: now_ms,
            expires_after_secs: None,
            body: Body::Text(text.into()),
        };
        let seq = self.seq();
        let identity = self.device.identity();
        let entry = entry(&mut self.groups, id)?;
        let (_, topic, write) = entry.group.topic();
        let mut next = entry.group.clone();
        let posts = next.send(identity, &message, e)?;
        entry.group = next;
        let ids = post_ids(posts.len(), e)?;
        let mut fx = Effects::default();
        fx.frames.extend(entry.queue(topic, write, posts, Some(seq), ids.into_iter()));
        fx.writes.push(entry.write());
        let conversation = ConversationId::Group(*id);
        fx.merge(self.mark_read(&conversation, now_ms, e));
        let m = ChatMessage {
            seq,
            id: message_id,
            conversation,
            outgoing: true,
            text: text.into(),
            sent_at_ms: now_ms,
            status: Status::Sending,
            author: None,
        };
        fx.writes.push(self.history.push(m));
        Ok(fx)
    }

    /// A post read from one of a group's topics.
    pub(crate) fn on_post(
        &mut self,
        topic: &TopicId,
        seq: u64,
        payload: &[u8],
        e: &mut dyn Entropy,
    ) -> Effects {
        let mut fx = Effects::default();
        let Some(id) = self.groups.by_topic(topic) else { return fx };
        let Some(entry) = self.groups.get_mut(&id) else { return fx };
        if !entry.advance(topic, seq) {
            return fx;
        }
        let received = entry.group.receive(payload, e);
        fx.writes.push(entry.write());
        let me = entry.group.me();
        // Our own posts come back to us, and posts of an epoch we never had are not ours to
        // read: neither is news.
        let Ok(received) = received else { return fx };
        let conversation = ConversationId::Group(id);
        match received {
            Received::Message { from, message } => {
                let Body::Text(text) = message.body else { return fx };
                if from == me || !self.history.first_sight(message.id) {
                    return fx;
                }
                let read_now = self.reading == Some(conversation);
                let m = ChatMessage {
                    seq: self.seq(),
                    id: message.id,
                    conversation,
                    outgoing: false,
                    text: text.clone(),
                    sent_at_ms: message.sent_at_ms,
                    status: if read_now { Status::Read } else { Status::Delivered },
                    author: Some(from),
                };
                fx.writes.push(self.history.push(m));
                let name = self.member_name(&from);
                fx.events.push(Event::Message { conversation, name, text });
            }
            Received::Chain { .. } => {}
            Received::Changed { change, new_epoch } => {
                let Some(entry) = self.groups.get_mut(&id) else { return fx };
                if new_epoch {
                    fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
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
                            vec![acknowledged],
                            None,
                            ids.into_iter(),
                        ));
                        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
                        fx.writes.push(entry.write());
                        match self.send_rekeys(rekeys, 0, e) {
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
        let message = entry.settle(post).flatten();
        fx.writes.push(entry.write());
        if let Some(seq) = message {
            let conversation = ConversationId::Group(id);
            fx.writes.extend(self.history.set_status(&conversation, |m| m.seq == seq, Status::Sent));
        }
        true
    }

    /// The relay refused post `post`. A topic it forgot is opened again by subscribing (the
    /// post follows when the anonymous line next comes up, or now); anything else is retried
    /// with the rest. `false` if it is no post of ours.
    pub(crate) fn on_post_refused(&mut self, code: ErrorCode, post: MessageId, fx: &mut Effects) -> bool {
        let Some(id) = self.groups.by_post(post) else { return false };
        let Some(entry) = self.groups.get(&id) else { return false };
        if code == ErrorCode::UnknownTopic {
            fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
            fx.frames.extend(entry.pending().filter(|p| p.id == post).map(|p| p.frame()));
        }
        true
    }

    /// Every topic to read and every post to send again: for an anonymous line that just came
    /// up.
    pub fn resubscribe(&self) -> Effects {
        let mut frames = self.groups.subscribe_all();
        frames.extend(self.groups.pending_frames());
        Effects { frames, ..Effects::default() }
    }

    /// A welcome into a group, from a contact who is one of its admins.
    pub(crate) fn on_welcome(
        &mut self,
        from: &IdentityPublic,
        welcome: &Welcome,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        if self.groups.get(&welcome.group).is_some_and(|g| !g.gone) {
            return Ok(fx);
        }
        let group = Group::join(self.device.identity(), &from.signing_key, welcome, e)?;
        let entry = GroupEntry::new(group, now_ms);
        let name = entry.group.roster().name.clone();
        let conversation = ConversationId::Group(entry.id());
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        fx.writes.push(self.groups.insert(entry));
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
        let mut next = entry.group.clone();
        match next.apply_rekey(&from.signing_key, rekey, e) {
            Ok(()) => {}
            // Already there (a redelivery).
            Err(EngineError::Duplicate) => return Ok(fx),
            Err(other) => return Err(other.into()),
        }
        entry.group = next;
        fx.frames.push(ClientFrame::Subscribe { topics: entry.subscriptions() });
        fx.writes.push(entry.write());
        Ok(fx)
    }

    /// What a member is called here: their name as our contact, or a placeholder.
    pub fn member_name(&self, key: &[u8; 32]) -> String {
        let address = Address::from_identity_key(key);
        if address == self.address() {
            return self.profile().display_name.clone();
        }
        self.contacts.get(&address).map_or_else(|| crate::names::placeholder(&address), |c| c.name.clone())
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
