//! Channels in the facade: making one, following one by its link, posting, reading posts as
//! they come, counts and blocks from the relay, reporting a post, leaving.

use crate::channels::{
    ChannelEntry, ChannelRole, MAX_DESCRIPTION_BYTES, PendingChannelPost, link_payload, read_link,
};
use crate::conversation::ConversationId;
use crate::effects::{Effects, Event, Notice};
use crate::error::MessengerError;
use crate::history::{ChatContent, ChatMessage, Status};
use crate::messenger::Messenger;
use crate::outbox::RETRY_SOON_MS;
use crate::records::RecordKey;
use sotto_engine::EngineError;

use sotto_engine::channel::{ChannelGrant, ChannelKey, ChannelLink, PostBody, sign_list};
use sotto_engine::message::Body;
use sotto_engine::random::Entropy;
use sotto_shared::channel::{ChannelId, ChannelPost, ChannelState};
use sotto_shared::limits::CHANNEL_CLOCK_SKEW_SECS;
use sotto_shared::{Address, ClientFrame, ErrorCode, MessageId, TopicId};

/// A post of ours this old when the relay refused it as off its clock waited here: it is signed
/// again at once. Half the relay's window, so a device whose own clock is off still fails.
const STALE_POST_MS: u64 = CHANNEL_CLOCK_SKEW_SECS * 1000 / 2;

impl Messenger {
    /// Makes a channel we own, opens it at the relay and reads it.
    pub fn create_channel(
        &mut self,
        name: &str,
        description: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(ChannelId, Effects), MessengerError> {
        let name = crate::names::validate(name)?;
        let description = description.trim();
        if description.len() > MAX_DESCRIPTION_BYTES {
            return Err(MessengerError::TooLong);
        }
        let owner = ChannelKey::generate(e)?;
        let admin = ChannelKey::generate(e)?;
        let link = ChannelLink::new(&name, description, &owner, e)?;
        let list = sign_list(&owner, link.id, 1, vec![admin.public()]);
        let mut member = [0u8; 16];
        e.fill(&mut member)?;
        let frames = vec![ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(list.clone()) }];
        let mut entry = ChannelEntry::new(link, ChannelRole::Owner { owner, admin }, member, now_ms);
        entry.lists.push(list);
        let mut fx = Effects { frames, ..Effects::default() };
        fx.frames.push(entry.subscribe_frame());
        let id = entry.id();
        fx.writes.push(self.channels.insert(entry));
        Ok((id, fx))
    }

    /// The payload of a channel's link (after `#/channel/`), for anyone who may read it.
    pub fn channel_link(&self, id: &ChannelId) -> Option<String> {
        self.channels.get(id).map(|c| link_payload(&c.link))
    }

    /// What a channel link says (name, description), before following it.
    pub fn preview_channel(&self, payload: &str) -> Result<ChannelLink, MessengerError> {
        read_link(payload)
    }

    /// Follows a channel by its link. A newer link of a channel we follow replaces the old one.
    pub fn follow_channel(
        &mut self,
        payload: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(ChannelId, Effects), MessengerError> {
        let link = read_link(payload)?;
        let id = link.id;
        let mut fx = Effects::default();
        if let Some(entry) = self.channels.get_mut(&id) {
            // A channel we run takes new links from its owner alone (the grant); a follower
            // takes the owner's newer link (read_link checked the owner signed it).
            if matches!(entry.role, ChannelRole::Subscriber) && link.epoch > entry.link.epoch {
                // Posts of the new epoch read before were skipped: read the log again (the
                // history keeps each post once).
                entry.link = link;
                entry.cursor = 0;
                fx.frames.push(entry.subscribe_frame());
                fx.writes.push(entry.write());
            }
            return Ok((id, fx));
        }
        let mut member = [0u8; 16];
        e.fill(&mut member)?;
        let entry = ChannelEntry::new(link, ChannelRole::Subscriber, member, now_ms);
        fx.frames.push(entry.subscribe_frame());
        fx.writes.push(self.channels.insert(entry));
        Ok((id, fx))
    }

    pub fn channel(&self, id: &ChannelId) -> Option<&ChannelEntry> {
        self.channels.get(id)
    }

    /// Posts a text to a channel we run (`send_chat` checked the text, and that we may).
    pub(crate) fn post_to_channel(
        &mut self,
        id: &ChannelId,
        content: ChatContent,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let seq = self.seq();
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        let admin = entry.admin_key().ok_or(MessengerError::NotChannelAdmin)?;
        let list = entry.newest().map(|l| l.version).ok_or(MessengerError::NotChannelAdmin)?;
        let body = match &content.attachment {
            Some(a) => PostBody::File(a.clone()),
            None => PostBody::Text(content.text.clone()),
        };
        let post = entry.link.post(admin, list, &body, now_ms, e)?;
        let frame = ClientFrame::PublishPost {
            post: Box::new(post.clone()),
            ttl_secs: sotto_engine::consts::ENVELOPE_TTL_SECS,
        };
        let conversation = ConversationId::Channel(*id);
        let mut message = ChatMessage::sending(seq, conversation, content, now_ms);
        message.id = post.nonce;
        entry.pending.push(PendingChannelPost { post, message: seq });
        let mut fx = Effects { frames: vec![frame], ..Effects::default() };
        fx.writes.push(entry.write());
        fx.writes.extend(self.keep(message));
        Ok(fx)
    }

    /// Makes a new link for a channel we own: whoever holds only the old one reads nothing
    /// posted from now on. Our admins get it over their sessions (with the keys they have).
    pub fn rotate_channel_link(
        &mut self,
        id: &ChannelId,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        if !entry.is_owner() {
            return Err(MessengerError::NotChannelAdmin);
        }
        let ChannelRole::Owner { owner, .. } = &entry.role else {
            return Err(MessengerError::NotChannelAdmin);
        };
        entry.link = entry.link.rotated(owner, e)?;
        let mut fx = Effects { writes: vec![entry.write()], ..Effects::default() };
        let grants: Vec<(ChannelGrant, Address)> = (entry.admins.iter())
            .map(|(admin, contact)| (ChannelGrant::new(owner, entry.link.clone(), admin.clone()), *contact))
            .collect();
        for (grant, contact) in grants {
            // An admin whose key is in doubt gets no key (until the person answers the warning).
            if self.contacts.get(&contact).is_some_and(crate::contacts::Contact::key_in_doubt) {
                continue;
            }
            fx.merge(self.send_body(&contact, Body::ChannelGrant(Box::new(grant)), None, now_ms, e)?.0);
        }
        Ok(fx)
    }

    /// Makes a contact an admin of a channel we own: a new admin key for them, the next list
    /// signed by the owner key, and the key with the link over our session with them.
    pub fn add_channel_admin(
        &mut self,
        id: &ChannelId,
        contact: &Address,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        match self.contacts.get(contact) {
            None => return Err(MessengerError::UnknownContact),
            Some(c) if c.key_in_doubt() => return Err(MessengerError::KeyInDoubt(c.name.clone())),
            Some(_) => {}
        }
        let entry = self.channels.get(id).ok_or(MessengerError::NotInChannel)?;
        if entry.admins.iter().any(|(_, c)| c == contact) {
            return Ok(Effects::default());
        }
        let admin = ChannelKey::generate(e)?;
        let mut keys = entry.newest().map(|l| l.admins.clone()).unwrap_or_default();
        keys.push(admin.public());
        let mut fx = self.publish_admins(id, keys)?;
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        let ChannelRole::Owner { owner, .. } = &entry.role else {
            return Err(MessengerError::NotChannelAdmin);
        };
        let grant = ChannelGrant::new(owner, entry.link.clone(), admin.clone());
        entry.admins.push((admin, *contact));
        fx.writes.push(entry.write());
        fx.merge(self.send_body(contact, Body::ChannelGrant(Box::new(grant)), None, now_ms, e)?.0);
        Ok(fx)
    }

    /// Stops an admin of a channel we own from posting: the next list, without their key. The
    /// relay refuses their posts from the moment it has it; their earlier posts stay.
    pub fn remove_channel_admin(
        &mut self,
        id: &ChannelId,
        contact: &Address,
    ) -> Result<Effects, MessengerError> {
        let entry = self.channels.get(id).ok_or(MessengerError::NotInChannel)?;
        let Some((gone, _)) = entry.admins.iter().find(|(_, c)| c == contact) else {
            return Ok(Effects::default());
        };
        let gone = gone.public();
        let keys = entry.newest().map(|l| l.admins.iter().filter(|k| **k != gone).copied().collect());
        let mut fx = self.publish_admins(id, keys.unwrap_or_default())?;
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        entry.admins.retain(|(_, c)| c != contact);
        fx.writes.push(entry.write());
        Ok(fx)
    }

    /// Signs the next admin list of a channel we own with `keys`, keeps it and sends it.
    fn publish_admins(&mut self, id: &ChannelId, keys: Vec<[u8; 32]>) -> Result<Effects, MessengerError> {
        if keys.len() > sotto_shared::limits::MAX_CHANNEL_ADMINS {
            return Err(MessengerError::TooManyAdmins);
        }
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        let ChannelRole::Owner { owner, .. } = &entry.role else {
            return Err(MessengerError::NotChannelAdmin);
        };
        let version = entry.newest().map_or(1, |l| l.version + 1);
        let list = sign_list(owner, *id, version, keys);
        entry.lists.push(list.clone());
        let frame = ClientFrame::ChannelAdmins { owner: entry.link.owner, list: Box::new(list) };
        Ok(Effects { frames: vec![frame], writes: vec![entry.write()], ..Effects::default() })
    }

    /// A channel's owner made us an admin, or sent the new link of a channel we run with them.
    /// Taken from contacts only; the relay takes our posts only once the owner's list names our
    /// key, and readers check that list against the owner key the link names.
    pub(crate) fn on_channel_grant(
        &mut self,
        grant: ChannelGrant,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Effects {
        let mut fx = Effects::default();
        if let Err(err) = grant.verify() {
            fx.events.push(Event::Problem(Notice::Unreadable(err)));
            return fx;
        }
        let ChannelGrant { link, admin, .. } = grant;
        let id = link.id;
        match self.channels.get_mut(&id) {
            Some(entry) if entry.is_owner() => return fx,
            Some(entry) => {
                if link.epoch > entry.link.epoch {
                    // Posts of the new epoch read before were skipped: read the log again.
                    entry.link = link;
                    entry.cursor = 0;
                }
                entry.role = ChannelRole::Admin { admin };
                fx.frames.push(entry.subscribe_frame());
                fx.writes.push(entry.write());
            }
            None => {
                let mut member = [0u8; 16];
                if e.fill(&mut member).is_err() {
                    return fx;
                }
                let entry = ChannelEntry::new(link, ChannelRole::Admin { admin }, member, now_ms);
                fx.frames.push(entry.subscribe_frame());
                fx.writes.push(self.channels.insert(entry));
            }
        }
        fx.events.push(Event::MadeChannelAdmin { conversation: ConversationId::Channel(id) });
        fx
    }

    /// Reports post `message` of a channel to the relay's operator, with the key that opens
    /// it and no other post.
    pub fn report_post(
        &mut self,
        id: &ChannelId,
        message: &[u8; 16],
        reason: &str,
    ) -> Result<Effects, MessengerError> {
        let entry = self.channels.get(id).ok_or(MessengerError::NotInChannel)?;
        let post = entry.reportable(message).ok_or(MessengerError::NoSuchPost)?;
        let report = entry.link.report(post)?;
        self.reporting.insert(MessageId(post.nonce));
        let reason: String = reason.trim().chars().take(sotto_shared::limits::MAX_REASON_BYTES / 4).collect();
        let frame =
            ClientFrame::ReportPost { post: Box::new(report.post.clone()), key: report.key_bytes(), reason };
        Ok(Effects { frames: vec![frame], ..Effects::default() })
    }

    pub fn set_channel_muted(&mut self, id: &ChannelId, muted: bool) -> Result<Effects, MessengerError> {
        let entry = self.channels.get_mut(id).ok_or(MessengerError::NotInChannel)?;
        entry.muted = muted;
        Ok(Effects { writes: vec![entry.write()], ..Effects::default() })
    }

    /// Stops following a channel: the relay stops counting us, and its posts are forgotten.
    pub fn leave_channel(&mut self, id: &ChannelId) -> Result<Effects, MessengerError> {
        let entry = self.channels.remove(id).ok_or(MessengerError::NotInChannel)?;
        let mut fx = Effects::default();
        fx.frames.push(ClientFrame::LeaveChannel { channel: *id, member: entry.member });
        fx.writes.push((RecordKey::Channel(*id), None));
        fx.writes.extend(self.forget_history(&ConversationId::Channel(*id)));
        Ok(fx)
    }

    /// Asks the relay for fresh counts of a channel (while its page is open).
    pub fn refresh_channel(&self, id: &ChannelId) -> Effects {
        let frames = self.channels.get(id).map(|_| ClientFrame::ChannelCounts { channel: *id });
        Effects { frames: frames.into_iter().collect(), ..Effects::default() }
    }

    /// How many devices saw our post or a post we read (approximate; `None` if not counted).
    pub fn post_views(&self, id: &ChannelId, message: &[u8; 16]) -> Option<u64> {
        self.channels.get(id).and_then(|c| c.views_of(message))
    }

    pub(crate) fn is_channel(&self, topic: &TopicId) -> bool {
        self.channels.by_topic(topic).is_some()
    }

    pub(crate) fn on_channel_state(&mut self, state: &ChannelState) -> Effects {
        let mut fx = Effects::default();
        let Some(entry) = self.channels.get_mut(&state.channel) else { return fx };
        let was_blocked = entry.blocked.is_some();
        let (changed, lists_changed) = entry.take_state(state);
        if !changed {
            return fx;
        }
        if !was_blocked && let Some(reason) = &entry.blocked {
            let name = entry.link.name.clone();
            fx.events.push(Event::Problem(Notice::ChannelBlocked { name, reason: reason.clone() }));
        }
        fx.writes.push(entry.write());
        if !lists_changed {
            return fx;
        }
        // Posts that waited for a list we now hold; those naming a list older than any kept
        // will never be checked.
        let oldest = entry.lists.first().map_or(0, |l| l.version);
        entry.unchecked.retain(|(_, p)| p.list >= oldest);
        let unchecked = std::mem::take(&mut entry.unchecked);
        for (seq, post) in unchecked {
            fx.merge(self.read_channel_post(state.channel, seq, post, false));
        }
        fx
    }

    /// A post read from a channel's topic.
    pub(crate) fn on_channel_post(&mut self, topic: &TopicId, seq: u64, payload: &[u8]) -> Effects {
        let Some(id) = self.channels.by_topic(topic) else { return Effects::default() };
        let Ok(post) = postcard::from_bytes::<ChannelPost>(payload) else { return Effects::default() };
        if post.channel != id {
            return Effects::default();
        }
        self.read_channel_post(id, seq, post, true)
    }

    /// Reads a post: `fresh` from the relay (once, by the cursor), or kept aside until its list
    /// came (the cursor may have moved past it meanwhile).
    fn read_channel_post(&mut self, id: ChannelId, seq: u64, post: ChannelPost, fresh: bool) -> Effects {
        let mut fx = Effects::default();
        let Some(entry) = self.channels.get_mut(&id) else { return fx };
        let Some(list) = entry.list(post.list).cloned() else {
            // A list the relay has not told us of yet: ask for it (once), read the post then.
            entry.keep_unchecked(seq, post);
            if !std::mem::replace(&mut entry.asked, true) {
                fx.frames.push(ClientFrame::ChannelCounts { channel: id });
            }
            return fx;
        };
        if fresh && !entry.advance(seq) {
            return fx;
        }
        let read = entry.link.read(&post, &list);
        if read.is_ok() {
            entry.remember(seq, post.clone());
        }
        fx.writes.push(entry.write());
        let (name, muted) = (entry.link.name.clone(), entry.muted);
        let body = match read {
            Ok(body) => body,
            // Sealed under an older link's secret (before a rotation we joined after): not ours.
            Err(EngineError::ForgedSender) if post.epoch != entry.link.epoch => return fx,
            Err(err) => {
                fx.events.push(Event::Problem(Notice::Unreadable(err)));
                return fx;
            }
        };
        let conversation = ConversationId::Channel(id);
        if !self.history.first_sight(conversation, post.nonce) {
            // Our own post, back from the relay.
            fx.writes.extend(self.history.set_status(&conversation, |m| m.id == post.nonce, Status::Sent));
            return fx;
        }
        let read_now = self.reading == Some(conversation);
        let text = body.text().to_owned();
        let attachment = match body {
            PostBody::File(a) => Some(a),
            PostBody::Text(_) => None,
        };
        let seq = self.seq();
        let status = if read_now { Status::Read } else { Status::Delivered };
        let message = ChatMessage {
            text,
            attachment,
            ..ChatMessage::blank(seq, post.nonce, conversation, post.posted_at_ms, status, None)
        };
        let text = message.preview();
        fx.writes.extend(self.keep(message));
        if !muted {
            fx.events.push(Event::Message { conversation, name, text });
        }
        fx
    }

    /// The relay sent a page of a channel: read on if there is more.
    pub(crate) fn on_channel_subscribed(&mut self, topic: &TopicId, through: u64, more: bool) -> Effects {
        let mut fx = Effects::default();
        let Some(id) = self.channels.by_topic(topic) else { return fx };
        let Some(entry) = self.channels.get_mut(&id) else { return fx };
        if through > entry.cursor && entry.unchecked.is_empty() {
            entry.cursor = through;
            fx.writes.push(entry.write());
        }
        if more {
            fx.frames.push(entry.subscribe_frame());
        }
        fx
    }

    /// The relay stored our post `id`: `true` if it was a channel's.
    pub(crate) fn on_channel_sent(&mut self, id: MessageId) -> Option<Effects> {
        let channel = self.channels.by_post(&id)?;
        let entry = self.channels.get_mut(&channel)?;
        entry.settle(&id)?;
        let mut fx = Effects { writes: vec![entry.write()], ..Effects::default() };
        let conversation = ConversationId::Channel(channel);
        fx.writes.extend(self.history.set_status(&conversation, |m| m.id == id.0, Status::Sent));
        Some(fx)
    }

    /// The relay took (`Ok`) or refused our report of post `id`: `None` if we sent none.
    pub(crate) fn on_report_answer(&mut self, id: MessageId, refused: Result<(), &str>) -> Option<Effects> {
        if !self.reporting.remove(&id) {
            return None;
        }
        let event = match refused {
            Ok(()) => Event::Reported,
            Err(reason) => Event::Problem(Notice::ReportRefused(reason.to_owned())),
        };
        Some(Effects { events: vec![event], ..Effects::default() })
    }

    /// The relay refused our post `id` for good: `Some` if it was a channel's.
    /// The relay refused our post `id`: sent again after a pause (a refusal for now), at
    /// once signed afresh (too far from the relay's clock: it waited offline), or failed.
    /// `None` if it was not a channel's.
    pub(crate) fn on_channel_refused(
        &mut self,
        code: ErrorCode,
        id: MessageId,
        reason: &str,
        now_ms: u64,
    ) -> Option<Effects> {
        let channel = self.channels.by_post(&id)?;
        let entry = self.channels.get_mut(&channel)?;
        let posted_at = entry.pending.iter().find(|p| p.post.nonce == id.0)?.post.posted_at_ms;
        match code {
            // `UnknownChannel`: its opening list is sent again whenever the line comes up.
            ErrorCode::RateLimited
            | ErrorCode::Internal
            | ErrorCode::StoreFull
            | ErrorCode::UnknownChannel => {
                self.post_retries.insert(id, now_ms.saturating_add(RETRY_SOON_MS));
                return Some(Effects::default());
            }
            ErrorCode::InvalidRequest if now_ms.abs_diff(posted_at) > STALE_POST_MS => {
                let frames = self.channels.resend(&id, now_ms).into_iter().collect();
                let entry = self.channels.get(&channel)?;
                return Some(Effects { frames, writes: vec![entry.write()], ..Effects::default() });
            }
            _ => {}
        }
        entry.settle(&id)?;
        let name = entry.link.name.clone();
        let mut fx = Effects { writes: vec![entry.write()], ..Effects::default() };
        let conversation = ConversationId::Channel(channel);
        fx.writes.extend(self.history.set_status(&conversation, |m| m.id == id.0, Status::Failed));
        fx.events.push(Event::Problem(Notice::NotSent { contact: name, reason: reason.to_owned() }));
        Some(fx)
    }
}
