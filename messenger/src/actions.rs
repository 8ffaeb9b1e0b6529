//! What people do with messages once they are sent: reply, edit, delete (for themselves or for
//! everyone), react; each conversation's disappearing-message timer and the countdowns it
//! starts; search. Adds to the facade, like `group_chat`.
//!
//! A change names its message by id and applies only where that message is loaded. Who may
//! change what is checked on arrival: only a message's author edits or deletes it, within the
//! windows of `sotto_engine::consts` measured by the author's own clock (both messages carry
//! it); anyone in the conversation reacts, once each.

use crate::conversation::ConversationId;
use crate::effects::{Effects, Event};
use crate::error::MessengerError;
use crate::history::{ChatContent, ChatMessage, ChatNotice, Expiry, Reaction, Status, decode_message};
use crate::messenger::Messenger;
use crate::records::{RecordBytes, RecordKey, RecordWrite, RecordWrites};
use crate::search::{Entry, MAX_RESULTS};
use sotto_engine::consts::{
    DELETE_WINDOW_SECS, DISAPPEARING_GRACE_SECS, DISAPPEARING_TIMERS, EDIT_WINDOW_SECS,
};
use sotto_engine::message::{Body, Message, MessageRef};
use sotto_engine::random::Entropy;

impl Messenger {
    /// Replies to message `to` of `conversation` (quoted above the reply).
    pub fn reply(
        &mut self,
        conversation: &ConversationId,
        to: MessageRef,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if text.trim().is_empty() {
            return Err(MessengerError::EmptyMessage);
        }
        self.history.find(conversation, &to).ok_or(MessengerError::NoSuchMessage)?;
        let content = ChatContent { text: text.into(), attachment: None, reply_to: Some(to) };
        self.send_chat(conversation, content, now_ms, e)
    }

    /// Gives our text `target` new words, for everyone.
    pub fn edit(
        &mut self,
        conversation: &ConversationId,
        target: MessageRef,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if text.trim().is_empty() {
            return Err(MessengerError::EmptyMessage);
        }
        let m = self.history.find(conversation, &target).ok_or(MessengerError::NoSuchMessage)?;
        if !m.editable(now_ms) {
            return Err(if m.editable(m.sent_at_ms) {
                MessengerError::TooLate
            } else {
                MessengerError::NotEditable
            });
        }
        let mut fx = self.send_change(conversation, Body::Edit { target, text: text.into() }, now_ms, e)?;
        fx.writes.extend(self.apply_edit(conversation, &target, text));
        Ok(fx)
    }

    /// Deletes our message `target` for everyone: it stays as "message deleted".
    pub fn delete_for_everyone(
        &mut self,
        conversation: &ConversationId,
        target: MessageRef,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let m = self.history.find(conversation, &target).ok_or(MessengerError::NoSuchMessage)?;
        if !m.withdrawable(now_ms) {
            let late = m.withdrawable(m.sent_at_ms);
            return Err(if late { MessengerError::TooLate } else { MessengerError::NotEditable });
        }
        let mut fx = self.send_change(conversation, Body::Delete { target }, now_ms, e)?;
        fx.writes.extend(self.apply_delete(conversation, &target));
        Ok(fx)
    }

    /// Deletes message `seq` here only (ours or theirs, in any conversation).
    pub fn delete_for_me(&mut self, conversation: &ConversationId, seq: u64) -> Effects {
        Effects { writes: self.erase_messages(&[(*conversation, seq)]), ..Effects::default() }
    }

    /// Our reaction to `target` (`None` takes it back).
    pub fn react(
        &mut self,
        conversation: &ConversationId,
        target: MessageRef,
        emoji: Option<String>,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let m = self.history.find(conversation, &target).ok_or(MessengerError::NoSuchMessage)?;
        if m.deleted || m.notice.is_some() {
            return Err(MessengerError::NotEditable);
        }
        let body = Body::React { target, emoji: emoji.clone() };
        body.check()?;
        let mut fx = self.send_change(conversation, body, now_ms, e)?;
        fx.writes.extend(self.apply_reaction(conversation, &target, None, emoji));
        Ok(fx)
    }

    /// Sets `conversation`'s disappearing-message timer (one of `DISAPPEARING_TIMERS`, or
    /// `None`: off) for everyone in it. Messages sent from now on carry it.
    pub fn set_timer(
        &mut self,
        conversation: &ConversationId,
        secs: Option<u32>,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if secs.is_some_and(|s| !DISAPPEARING_TIMERS.contains(&s)) {
            return Err(MessengerError::NoSuchTimer);
        }
        let at = self.disappearing.next_stamp(conversation, now_ms);
        let mut fx = self.send_change(conversation, Body::Timer { secs }, at, e)?;
        let me = self.device.identity().public().signing_key;
        fx.merge(self.timer_changed(*conversation, me, secs, at, e));
        Ok(fx)
    }

    /// The loaded message of `conversation` with id `id`.
    pub fn message(&self, conversation: &ConversationId, id: &MessageRef) -> Option<&ChatMessage> {
        self.history.find(conversation, id)
    }

    /// Who wrote message `m`: `None` for ours, else their name here (a group member's, the
    /// contact's in a direct chat, the channel's for a post).
    pub fn writer_name(&self, m: &ChatMessage) -> Option<String> {
        if m.outgoing {
            return None;
        }
        Some(match (&m.author, m.conversation) {
            (Some(key), _) => self.member_name(key),
            (None, ConversationId::Direct(a)) => self.contact(&a).map(|c| c.name.clone()).unwrap_or_default(),
            (None, ConversationId::Channel(id)) => {
                self.channel(&id).map(|c| c.link.name.clone()).unwrap_or_default()
            }
            (None, ConversationId::Group(_)) => String::new(),
        })
    }

    /// `conversation`'s disappearing-message timer, in seconds.
    pub fn timer(&self, conversation: &ConversationId) -> Option<u32> {
        self.disappearing.timer(conversation)
    }

    /// When the next disappearing message goes (call [`Messenger::expire`] then).
    pub fn next_expiry(&self) -> Option<u64> {
        self.disappearing.next_due()
    }

    /// Deletes the disappearing messages whose time is up, everywhere they are kept here.
    pub fn expire(&mut self, now_ms: u64) -> Effects {
        let due = self.disappearing.take_due(now_ms);
        if due.is_empty() {
            return Effects::default();
        }
        let mut writes = self.erase_messages(&due);
        // Taken off the schedule above, so `erase_messages` did not write it.
        writes.push(self.disappearing.write());
        Effects { writes, events: vec![Event::Expired], ..Effects::default() }
    }

    /// Whether the stored history still has to be indexed (see [`Messenger::index_stored`]).
    pub fn unindexed(&self) -> bool {
        self.unindexed
    }

    /// Indexes stored messages (a conversation's, read whole, for a store from before the
    /// index); a record that cannot be read is left out, not a reason to fail the load.
    pub fn index_stored(&mut self, records: Vec<(RecordKey, RecordBytes)>) -> Effects {
        let mut writes = std::collections::BTreeMap::new();
        for (key, bytes) in records {
            let Ok(m) = decode_message(&key, &bytes) else { continue };
            if m.key() != key {
                continue;
            }
            if let Some((key, bytes)) = self.search.add(&m) {
                writes.insert(key, bytes);
            }
        }
        Effects { writes: writes.into_iter().collect(), ..Effects::default() }
    }

    /// The stored history is all in the index: its marker record, and the deletion of what is
    /// left of an index that could not be read.
    pub fn indexed(&mut self) -> RecordWrites {
        self.unindexed = false;
        let stale = std::mem::take(&mut self.stale_parts).into_iter().filter(|p| !self.search.has_part(*p));
        let mut writes: RecordWrites = stale.map(|p| (RecordKey::Search(p), None)).collect();
        writes.push((RecordKey::Indexed, Some(RecordBytes::default())));
        writes
    }

    /// Messages holding every word of `query`, newest first, across conversations. A
    /// stranger's words (a message request) are left out, as everywhere until the person
    /// looks.
    pub fn search(&self, query: &str) -> Vec<&Entry> {
        let known = |e: &&Entry| e.conversation.peer().is_none_or(|a| self.contacts.contains(&a));
        self.search.search(query, MAX_RESULTS).into_iter().filter(known).collect()
    }

    /// Sends a change of a message or of the conversation to everyone in it.
    fn send_change(
        &mut self,
        conversation: &ConversationId,
        body: Body,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        self.can_write(conversation)?;
        match *conversation {
            ConversationId::Direct(to) => Ok(self.send_body(&to, body, None, now_ms, e)?.0),
            ConversationId::Group(id) => Ok(self.send_group_body(&id, body, None, now_ms, e)?.0),
            ConversationId::Channel(_) => Err(MessengerError::NotInChannels),
        }
    }

    /// Deletes messages from the history, the search index and the countdowns.
    fn erase_messages(&mut self, messages: &[(ConversationId, u64)]) -> RecordWrites {
        let mut writes: RecordWrites = messages.iter().map(|(c, seq)| self.history.remove(c, *seq)).collect();
        writes.extend(self.search.remove(messages));
        let mut counting = false;
        for (c, seq) in messages {
            counting |= self.disappearing.unschedule(c, *seq);
        }
        if counting {
            writes.push(self.disappearing.write());
        }
        writes
    }

    /// Forgets a conversation's messages (it is gone): history, index and countdowns.
    pub(crate) fn forget_history(&mut self, conversation: &ConversationId) -> RecordWrites {
        let mut writes = self.history.forget(conversation);
        writes.extend(self.search.forget(conversation));
        self.disappearing.forget(conversation);
        writes.push(self.disappearing.write());
        writes
    }

    /// Keeps a new message: in the history and the search index.
    pub(crate) fn keep(&mut self, m: ChatMessage) -> RecordWrites {
        let mut writes: RecordWrites = self.search.add(&m).into_iter().collect();
        writes.push(self.history.push(m));
        writes
    }

    /// A change from `from` (their identity key) in `conversation`; `message` carries it.
    pub(crate) fn on_change(
        &mut self,
        conversation: ConversationId,
        from: [u8; 32],
        message: Message,
        e: &mut dyn Entropy,
    ) -> Effects {
        let direct = matches!(conversation, ConversationId::Direct(_));
        // Only a message's author changes it: in a direct chat, the other side wrote every
        // message that is not ours; in a group, its author is named.
        let authored =
            |m: &ChatMessage| !m.outgoing && m.notice.is_none() && (direct || m.author == Some(from));
        let sent_at = message.sent_at_ms;
        let mut fx = Effects::default();
        match message.body {
            Body::Edit { target, text } => {
                let allowed = self.history.find(&conversation, &target).is_some_and(|m| {
                    authored(m)
                        && !m.deleted
                        && m.attachment.is_none()
                        && m.sent_within(sent_at, EDIT_WINDOW_SECS)
                        && !text.trim().is_empty()
                });
                if allowed {
                    fx.writes.extend(self.apply_edit(&conversation, &target, &text));
                }
            }
            Body::Delete { target } => {
                let allowed = self
                    .history
                    .find(&conversation, &target)
                    .is_some_and(|m| authored(m) && m.sent_within(sent_at, DELETE_WINDOW_SECS));
                if allowed {
                    fx.writes.extend(self.apply_delete(&conversation, &target));
                }
            }
            Body::React { target, emoji } => {
                fx.writes.extend(self.apply_reaction(&conversation, &target, Some(from), emoji));
            }
            Body::Timer { secs } => fx.merge(self.timer_changed(conversation, from, secs, sent_at, e)),
            // A typing notice counts only live (`on_live`): one stored, or replayed, is stale.
            _ => {}
        }
        fx
    }

    fn apply_edit(&mut self, conversation: &ConversationId, target: &MessageRef, text: &str) -> RecordWrites {
        let changed = self.history.change(conversation, target, |m| {
            m.text = text.into();
            m.edited = true;
            true
        });
        let Some((m, write)) = changed else { return Vec::new() };
        let mut writes = vec![write];
        writes.extend(self.search.add(m));
        writes
    }

    fn apply_delete(&mut self, conversation: &ConversationId, target: &MessageRef) -> RecordWrites {
        let changed = self.history.change(conversation, target, |m| {
            let was = m.deleted;
            m.erase();
            !was
        });
        let Some((m, write)) = changed else { return Vec::new() };
        let seq = m.seq;
        let mut writes = vec![write];
        writes.extend(self.search.remove(&[(*conversation, seq)]));
        writes
    }

    fn apply_reaction(
        &mut self,
        conversation: &ConversationId,
        target: &MessageRef,
        by: Option<[u8; 32]>,
        emoji: Option<String>,
    ) -> RecordWrites {
        let changed = self.history.change(conversation, target, |m| {
            if m.deleted || m.notice.is_some() {
                return false;
            }
            let before = m.reactions.clone();
            m.reactions.retain(|r| r.by != by);
            m.reactions.extend(emoji.map(|emoji| Reaction { by, emoji }));
            m.reactions != before
        });
        changed.map(|(_, write)| write).into_iter().collect()
    }

    /// `by` set the timer of `conversation` to `secs` at `at_ms` (their clock): kept, and
    /// said in the chat, unless a later change is in already.
    fn timer_changed(
        &mut self,
        conversation: ConversationId,
        by: [u8; 32],
        secs: Option<u32>,
        at_ms: u64,
        e: &mut dyn Entropy,
    ) -> Effects {
        let mut fx = Effects::default();
        if !self.disappearing.set_timer(conversation, secs, at_ms, by) {
            fx.writes.push(self.disappearing.write());
            return fx;
        }
        fx.writes.push(self.disappearing.write());
        let mut id = [0u8; 16];
        if let Err(err) = e.fill(&mut id) {
            fx.events.push(Event::Problem(MessengerError::from(err).into()));
            return fx;
        }
        let seq = self.seq();
        let notice = ChatMessage {
            notice: Some(ChatNotice::Timer { by, secs }),
            ..ChatMessage::blank(seq, id, conversation, at_ms, Status::Read, None)
        };
        fx.writes.extend(self.keep(notice));
        fx
    }

    /// Starts the countdown of every loaded disappearing message of `conversation` that has
    /// been read (ours by the other side, theirs by us), unless it is due sooner already.
    pub(crate) fn start_countdowns(&mut self, conversation: &ConversationId, now_ms: u64) -> RecordWrites {
        let started = self.history.change_all(conversation, |m| match &mut m.expiry {
            Some(Expiry { after_secs, at_ms }) if m.status == Status::Read => {
                let due = now_ms.saturating_add(u64::from(*after_secs) * 1000);
                let sooner = at_ms.is_none_or(|at| due < at);
                if sooner {
                    *at_ms = Some(due);
                }
                sooner
            }
            _ => false,
        });
        if started.is_empty() {
            return Vec::new();
        }
        let mut writes = Vec::new();
        for (m, write) in started {
            if let Some(Expiry { at_ms: Some(at), .. }) = m.expiry {
                self.disappearing.unschedule(&m.conversation, m.seq);
                self.disappearing.schedule(at, m.conversation, m.seq);
            }
            writes.push(write);
        }
        writes.push(self.disappearing.write());
        writes
    }

    /// The timer a message of ours sent now in `conversation` carries.
    pub(crate) fn expiry_for(&self, conversation: &ConversationId, body: &Body) -> Option<u32> {
        self.disappearing.timer(conversation).filter(|_| body.disappears())
    }

    /// The expiry of our chat message `m`, sent now: its conversation's timer, and a deadline
    /// by which it goes even if no receipt ever says it was read (its timer and the relay's
    /// grace after sending, as long as its envelope may live). Returns the schedule's record.
    pub(crate) fn own_expiry(
        &mut self,
        m: &mut ChatMessage,
        body: &Body,
        now_ms: u64,
    ) -> Option<RecordWrite> {
        let after_secs = self.expiry_for(&m.conversation, body)?;
        let lives = u64::from(after_secs.saturating_add(DISAPPEARING_GRACE_SECS));
        let at = now_ms.saturating_add(lives * 1000);
        m.expiry = Some(Expiry { after_secs, at_ms: Some(at) });
        self.disappearing.schedule(at, m.conversation, m.seq);
        Some(self.disappearing.write())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use sotto_engine::random::OsEntropy;
    use sotto_engine::sender_keys::GroupId;

    fn change(body: Body, sent_at_ms: u64) -> Message {
        Message { v: sotto_engine::message::VERSION, id: [9; 16], sent_at_ms, expires_after_secs: None, body }
    }

    #[test]
    fn only_a_messages_author_edits_or_deletes_it_and_only_in_time() {
        let (mut m, _) = Messenger::create("Ada", 0, &mut OsEntropy).unwrap();
        let group = ConversationId::Group(GroupId([1; 16]));
        let (bo, cy) = ([2; 32], [3; 32]);
        let words = |m: &Messenger, id: [u8; 16]| m.history.find(&group, &id).map(|m| m.text.clone());
        let theirs = ChatMessage {
            text: "Bo's words".into(),
            ..ChatMessage::blank(1, [1; 16], group, 1_000, Status::Read, Some(bo))
        };
        let ours = ChatMessage {
            outgoing: true,
            text: "Ada's words".into(),
            ..ChatMessage::blank(2, [2; 16], group, 1_000, Status::Read, None)
        };
        m.keep(theirs);
        m.keep(ours);
        let edit = |target, text: &str| Body::Edit { target, text: text.into() };

        // Cy edits Bo's message, then Ada's: both refused.
        m.on_change(group, cy, change(edit([1; 16], "Cy's"), 2_000), &mut OsEntropy);
        m.on_change(group, cy, change(edit([2; 16], "Cy's"), 2_000), &mut OsEntropy);
        m.on_change(group, bo, change(Body::Delete { target: [2; 16] }, 2_000), &mut OsEntropy);
        assert_eq!(words(&m, [1; 16]).as_deref(), Some("Bo's words"));
        assert_eq!(words(&m, [2; 16]).as_deref(), Some("Ada's words"));

        // Bo's own edit a day and more after his message: refused; within the window: kept.
        let late = 1_000 + EDIT_WINDOW_SECS * 1000 + 1;
        m.on_change(group, bo, change(edit([1; 16], "late"), late), &mut OsEntropy);
        assert_eq!(words(&m, [1; 16]).as_deref(), Some("Bo's words"));
        m.on_change(group, bo, change(edit([1; 16], "Bo's new words"), 5_000), &mut OsEntropy);
        assert_eq!(words(&m, [1; 16]).as_deref(), Some("Bo's new words"));
        assert!(m.history.find(&group, &[1; 16]).unwrap().edited);
        m.on_change(group, bo, change(Body::Delete { target: [1; 16] }, 6_000), &mut OsEntropy);
        assert!(m.history.find(&group, &[1; 16]).unwrap().deleted);
        assert_eq!(m.search("words").len(), 1, "only Ada's is left to find");
    }
}
