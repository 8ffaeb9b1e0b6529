//! Group invite links on the [`Messenger`]: an admin opens a link (a door it reads on the
//! anonymous line), closes it, and lets in whoever asks there (or whom it approves); someone
//! holding a link asks to join and is welcomed like anyone added. See `doors` for the link's
//! text and bounds, and the engine's `group_link` for its cryptography.

use crate::conversation::ConversationId;
use crate::doors::{self, Asked, Door, DoorRules, Knock, LinkPreview};
use crate::effects::{Effects, Event, Notice};
use crate::error::MessengerError;
use crate::groups::{GroupEntry, Owed};
use crate::messenger::Messenger;
use crate::outbox::RETRY_LATER_MS;
use sotto_engine::EngineError;
use sotto_engine::group_link::{GroupLink, JoinRequest};
use sotto_engine::random::Entropy;
use sotto_engine::roster::Role;
use sotto_engine::sender_keys::GroupId;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{Address, ClientFrame, ErrorCode, MessageId, TopicId};

impl Messenger {
    /// Opens a link into a group of which we are an admin, on the relay at `relay_origin`:
    /// returns its payload (for `#/join/<payload>`).
    pub fn open_group_link(
        &mut self,
        id: &GroupId,
        rules: DoorRules,
        relay_origin: &str,
        e: &mut dyn Entropy,
    ) -> Result<(String, Effects), MessengerError> {
        let me = self.identity().signing_key;
        let entry = self.groups.get_mut(id).filter(|g| !g.gone).ok_or(MessengerError::NotInGroup)?;
        if !entry.group.roster().is_admin(&me) {
            return Err(MessengerError::NotGroupAdmin);
        }
        if entry.doors.len() >= doors::MAX_DOORS {
            return Err(MessengerError::TooManyLinks);
        }
        let (link, secret) = GroupLink::new(*id, &entry.group.roster().name, me, e)?;
        let door = Door::new(link, secret, relay_origin, rules)?;
        let (topic, write) = door.topic();
        let text = door.text();
        entry.doors.push(door);
        // Reading the door opens its topic at the relay, so requests can be posted to it.
        let subscribe = Subscription { topic, write_hash: topic_write_hash(&write), after: 0 };
        let fx = Effects {
            frames: vec![ClientFrame::Subscribe { topics: vec![subscribe] }],
            writes: vec![entry.write()],
            ..Effects::default()
        };
        Ok((text, fx))
    }

    /// Closes a link of ours (by its payload): nobody else gets in by it, and those waiting
    /// for approval are dropped.
    pub fn close_group_link(&mut self, id: &GroupId, text: &str) -> Result<Effects, MessengerError> {
        let entry = self.groups.get_mut(id).ok_or(MessengerError::NotInGroup)?;
        let i = entry.doors.iter().position(|d| d.text() == text).ok_or(MessengerError::GroupLinkClosed)?;
        let door = entry.doors.remove(i);
        let mut fx = Effects { writes: vec![entry.write()], ..Effects::default() };
        fx.frames.push(ClientFrame::Unsubscribe { topic: door.topic().0 });
        Ok(fx)
    }

    /// The links of ours into a group.
    pub fn group_links(&self, id: &GroupId) -> &[Door] {
        self.groups.get(id).map_or(&[], |g| &g.doors)
    }

    /// Reads a group link's payload before asking to join.
    pub fn preview_group_link(
        &self,
        payload: &str,
        relay_origin: &str,
        now_ms: u64,
    ) -> Result<LinkPreview, MessengerError> {
        doors::decode(payload, relay_origin, now_ms)
    }

    /// Whether we are in the group a preview is of, or asked to join it already.
    pub fn link_standing(&self, preview: &LinkPreview) -> (bool, bool) {
        let id = preview.link.group;
        (self.groups.get(&id).is_some_and(|g| !g.gone), self.joining.has_asked(&id))
    }

    /// Asks to join a group by its link: the request goes to the link's door on the anonymous
    /// line, and we join once an admin's device lets us in (a welcome, like any addition).
    pub fn ask_to_join(
        &mut self,
        payload: &str,
        relay_origin: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let preview = doors::decode(payload, relay_origin, now_ms)?;
        if self.link_standing(&preview).0 {
            return Err(MessengerError::AlreadyInGroup);
        }
        let name = self.profile().display_name.clone();
        let request = preview.link.request(self.device.identity(), &name, now_ms, e)?;
        let mut post = [0u8; 16];
        e.fill(&mut post)?;
        let post = MessageId(post);
        let asked = Asked { link: preview.link, at_ms: now_ms, post: Some((post, request)), opened: false };
        let frames = asked.frame().into_iter().collect();
        let writes = vec![self.joining.ask(asked)];
        Ok(Effects { frames, writes, ..Effects::default() })
    }

    /// The groups we asked to join by their links and are not in yet: id and name.
    pub fn asked_groups(&self) -> Vec<(GroupId, String)> {
        self.joining.asked().map(|a| (a.link.group, a.link.name.clone())).collect()
    }

    /// Lets in someone waiting at a link of ours for approval (checked again: they may have
    /// come in, or been removed, since they asked).
    pub fn approve_join(
        &mut self,
        id: &GroupId,
        member: &[u8; 32],
        now_ms: u64,
    ) -> Result<Effects, MessengerError> {
        let entry = self.groups.get_mut(id).ok_or(MessengerError::NotInGroup)?;
        if !may_come_in(entry, member) {
            return Err(MessengerError::NotGroupAdmin);
        }
        let door =
            entry.doors.iter_mut().find(|d| d.waiting.iter().any(|w| w.identity.signing_key == *member));
        let door = door.ok_or(MessengerError::NoRequest)?;
        if !door.is_open(now_ms) {
            return Err(MessengerError::GroupLinkClosed);
        }
        let request = door.answer(member, true).ok_or(MessengerError::NoRequest)?;
        Ok(self.admit_after_bundle(id, request))
    }

    /// Turns away someone waiting at a link of ours.
    pub fn decline_join(&mut self, id: &GroupId, member: &[u8; 32]) -> Result<Effects, MessengerError> {
        let entry = self.groups.get_mut(id).ok_or(MessengerError::NotInGroup)?;
        entry.doors.iter_mut().find_map(|d| d.answer(member, false)).ok_or(MessengerError::NoRequest)?;
        Ok(Effects { writes: vec![entry.write()], ..Effects::default() })
    }

    /// Whether `topic` is the door of a link of ours.
    pub(crate) fn is_door(&self, topic: &TopicId) -> bool {
        self.groups.iter().any(|g| g.has_door(topic))
    }

    /// A post at the door of a link of ours: someone asking to join. Anything else posted there
    /// (garbage, a forged request) is dropped unread and costs no write.
    pub(crate) fn on_door_post(&mut self, topic: &TopicId, seq: u64, payload: &[u8], now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let Some(id) = self.groups.by_topic(topic) else { return fx };
        let Some(entry) = self.groups.get_mut(&id) else { return fx };
        // The cursor moves in memory; it is stored with the next write of the group.
        if !entry.advance(topic, seq) {
            return fx;
        }
        let Some(Ok(request)) = entry.door_mut(topic).map(|d| d.open(payload)) else { return fx };
        if !may_come_in(entry, &request.identity.signing_key) {
            return fx;
        }
        let Some(door) = entry.door_mut(topic) else { return fx };
        match door.knock(request.clone(), now_ms) {
            Knock::Ignore => {}
            Knock::Wait => {
                let name = crate::names::clean(&request.name);
                fx.writes.push(entry.write());
                fx.events.push(Event::JoinRequest { conversation: ConversationId::Group(id), name });
            }
            Knock::Admit => fx.merge(self.admit_after_bundle(&id, request)),
        }
        fx
    }

    /// Asks the relay for the prekey bundle of someone we let in: they are added once it comes
    /// (so an identity nobody registered is never added), with a welcome over a session made
    /// from it.
    fn admit_after_bundle(&mut self, id: &GroupId, request: JoinRequest) -> Effects {
        let mut fx = Effects::default();
        let address = Address::from_identity_key(&request.identity.signing_key);
        if let Some(entry) = self.groups.get_mut(id) {
            entry.admit_later(request);
            fx.writes.push(entry.write());
            fx.frames.push(ClientFrame::FetchBundle { address });
        }
        fx
    }

    /// The bundle of someone we let in came (the session with them is made): add them, if they
    /// still may come in, and hand them the welcome.
    pub(crate) fn admit_now(&mut self, address: &Address, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        // A bundle that did not give us a session (damaged, refused) lets nobody in.
        if !self.device.can_send_to(address) {
            return self.admit_never(address);
        }
        let (taken, writes) = self.groups.take_from_each(|g| g.take_admitting(address));
        let mut fx = Effects { writes, ..Effects::default() };
        for (id, requests) in taken {
            for request in requests {
                let Some(entry) = self.groups.get(&id) else { continue };
                if !may_come_in(entry, &request.identity.signing_key) {
                    continue;
                }
                match self.admit(&id, request.clone(), now_ms, e) {
                    Ok(admitted) => fx.merge(admitted),
                    // Our last addition may still lose a race: ask for their keys again, and
                    // let them in when they come.
                    Err(MessengerError::Engine(EngineError::AdditionPending)) => {
                        fx.merge(self.admit_after_bundle(&id, request));
                    }
                    Err(err) => fx.events.push(Event::Problem(err.into())),
                }
            }
        }
        fx
    }

    /// Nobody registered the identity someone asked with: they are not let in.
    pub(crate) fn admit_never(&mut self, address: &Address) -> Effects {
        let (_, writes) = self.groups.take_from_each(|g| g.take_admitting(address));
        Effects { writes, ..Effects::default() }
    }

    /// Adds someone who asked by a link: an ordinary addition, the welcome over our session.
    fn admit(
        &mut self,
        id: &GroupId,
        request: JoinRequest,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let member = request.identity;
        let (mut fx, welcome) =
            self.change_with(id, e, |group, me, e| group.add(me, member, Role::Member, e))?;
        if let Some(entry) = self.groups.get_mut(id) {
            entry.remember_name(member.signing_key, crate::names::clean(&request.name));
            fx.writes.push(entry.write());
        }
        fx.merge(self.owe(id, member.signing_key, Owed::Welcome(welcome), now_ms, e)?);
        fx.merge(self.own_notices(*id, 1, now_ms, e));
        Ok(fx)
    }

    /// The relay stored our request to join: `false` if `post` is none of ours.
    pub(crate) fn on_request_posted(&mut self, post: MessageId, fx: &mut Effects) -> bool {
        let Some(group) = self.joining.asked_by_post(post) else { return false };
        fx.frames.extend(self.joining.let_go_of_door(&group));
        fx.writes.extend(self.joining.asked_posted(&group));
        true
    }

    /// The relay refused our request to join. A door it does not know (its admin has not read
    /// it yet, or not for a month) we open by reading it, and post again at once; a second
    /// time, after a pause. One refused for good (too large, malformed) ends the request;
    /// anything else is tried again after a pause.
    pub(crate) fn on_request_refused(
        &mut self,
        code: ErrorCode,
        post: MessageId,
        now_ms: u64,
        fx: &mut Effects,
    ) -> bool {
        let Some(group) = self.joining.asked_by_post(post) else { return false };
        match code {
            ErrorCode::UnknownTopic if !self.joining.door_opened(&group) => {
                fx.writes.extend(self.joining.open_door(&group));
                fx.frames.extend(self.joining.door_subscription(&group));
                fx.frames.extend(self.joining.asked_frame(&group));
            }
            ErrorCode::TooLarge | ErrorCode::InvalidRequest | ErrorCode::Malformed => {
                let (unsubscribe, asked) = self.joining.drop_asked(&group);
                fx.frames.extend(unsubscribe);
                fx.writes.extend(asked);
                fx.events.push(Event::Problem(Notice::Failed(MessengerError::GroupLinkClosed)));
            }
            _ => {
                self.post_retries.insert(post, now_ms.saturating_add(RETRY_LATER_MS));
            }
        }
        true
    }
}

/// Whether the holder of `key` may come into the group by a link of ours: not a member, not
/// someone an admin removed, and we are still an admin to let them in.
fn may_come_in(entry: &GroupEntry, key: &[u8; 32]) -> bool {
    let roster = entry.group.roster();
    !roster.members.contains_key(key) && !roster.removed.contains(key) && roster.is_admin(&entry.group.me())
}
