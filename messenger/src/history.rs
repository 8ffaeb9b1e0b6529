//! Chat messages by conversation, with their delivery status.

use crate::conversation::ConversationId;
use crate::records::{RecordKey, RecordWrite, RecordWrites, encode};
use serde::{Deserialize, Serialize};
use sotto_engine::attachment::Attachment;
use sotto_engine::consts::{DELETE_WINDOW_SECS, EDIT_WINDOW_SECS};
use sotto_engine::message::{Body, MessageRef};
use sotto_shared::Address;
use std::collections::{BTreeMap, HashSet};

/// Messages read from storage at a time: the newest page of each conversation at start, one
/// more each time the person asks for earlier messages.
pub const PAGE_SIZE: usize = 50;

/// How far back the loader goes for sent messages the other side has not read yet, whose
/// receipts may still come (beyond it, a late receipt changes nothing stored).
pub const RECEIPT_WINDOW: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Encrypted and queued; the relay has not confirmed it yet.
    Sending,
    /// Stored by the relay.
    Sent,
    /// On the recipient's device (for incoming messages: not read yet).
    Delivered,
    Read,
    /// The relay refused it for good.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Local order of arrival/creation.
    pub seq: u64,
    pub id: [u8; 16],
    pub conversation: ConversationId,
    pub outgoing: bool,
    /// The words (a file's caption).
    pub text: String,
    /// The sender's clock.
    pub sent_at_ms: u64,
    pub status: Status,
    /// In a group, who wrote it (their identity key); `None` in direct chats and for our own.
    pub author: Option<[u8; 32]>,
    /// A change of the conversation (a group's member, name or timer) shown in its timeline instead
    /// of a text (`text` is empty then).
    pub notice: Option<ChatNotice>,
    /// A file, photo or voice message (its key with it: records are sealed at rest).
    pub attachment: Option<Box<Attachment>>,
    /// The message of this conversation it answers, by id.
    pub reply_to: Option<MessageRef>,
    /// Its author changed the words after sending.
    pub edited: bool,
    /// Its author deleted it for everyone: words and file are gone, the mark stays.
    pub deleted: bool,
    /// One per person who reacted.
    pub reactions: Vec<Reaction>,
    /// It disappears once read (see `disappearing`).
    pub expiry: Option<Expiry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// Who reacted (their identity key); `None` is us.
    pub by: Option<[u8; 32]>,
    pub emoji: String,
}

/// A disappearing message's timer: it runs from when the message is read (by us, or for our
/// own by the other side).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiry {
    pub after_secs: u32,
    /// When it goes (our clock), once its countdown started.
    pub at_ms: Option<u64>,
}

/// What a chat message is made of: its words, file and the message it answers.
pub struct ChatContent {
    pub text: String,
    pub attachment: Option<Box<Attachment>>,
    pub reply_to: Option<MessageRef>,
}

/// A chat message's content from a message body; `None` for bodies that are not chat.
pub fn chat_content(body: Body) -> Option<ChatContent> {
    let (text, attachment, reply_to) = match body {
        Body::Text(text) => (text, None, None),
        Body::Reply { to, text } => (text, None, Some(to)),
        Body::File(a) => (a.caption.clone(), Some(a), None),
        _ => return None,
    };
    Some(ChatContent { text, attachment, reply_to })
}

/// What happened to a conversation, as its timeline shows it; the app puts it into words with
/// the members' names. Keys are identity keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatNotice {
    Created {
        by: [u8; 32],
        name: String,
    },
    Added {
        by: [u8; 32],
        member: [u8; 32],
    },
    Removed {
        by: [u8; 32],
        member: [u8; 32],
    },
    Left {
        member: [u8; 32],
    },
    Renamed {
        by: [u8; 32],
        name: String,
    },
    Promoted {
        by: [u8; 32],
        member: [u8; 32],
    },
    Demoted {
        by: [u8; 32],
        member: [u8; 32],
    },
    /// The description changed (to what the roster holds).
    Described {
        by: [u8; 32],
    },
    /// The disappearing-message timer changed (in any conversation).
    Timer {
        by: [u8; 32],
        secs: Option<u32>,
    },
}

impl ChatMessage {
    /// A message with nothing in it yet (not ours, no words, file, notice or marks): callers
    /// fill in what it has, ours included (`sending`).
    pub fn blank(
        seq: u64,
        id: [u8; 16],
        conversation: ConversationId,
        sent_at_ms: u64,
        status: Status,
        author: Option<[u8; 32]>,
    ) -> ChatMessage {
        ChatMessage {
            seq,
            id,
            conversation,
            outgoing: false,
            text: String::new(),
            sent_at_ms,
            status,
            author,
            notice: None,
            attachment: None,
            reply_to: None,
            edited: false,
            deleted: false,
            reactions: Vec::new(),
            expiry: None,
        }
    }

    /// A chat message of someone else's, as `message` brought it; `None` if it is not chat.
    pub fn received(
        seq: u64,
        conversation: ConversationId,
        message: sotto_engine::message::Message,
        status: Status,
        author: Option<[u8; 32]>,
    ) -> Option<ChatMessage> {
        let ChatContent { text, attachment, reply_to } = chat_content(message.body)?;
        let expiry = message.expires_after_secs.map(|after_secs| Expiry { after_secs, at_ms: None });
        Some(ChatMessage {
            text,
            attachment,
            reply_to,
            expiry,
            ..ChatMessage::blank(seq, message.id, conversation, message.sent_at_ms, status, author)
        })
    }

    /// A message of ours, just queued for sending.
    pub fn sending(seq: u64, conversation: ConversationId, content: ChatContent, now_ms: u64) -> ChatMessage {
        let ChatContent { text, attachment, reply_to } = content;
        ChatMessage {
            outgoing: true,
            text,
            attachment,
            reply_to,
            ..ChatMessage::blank(seq, [0; 16], conversation, now_ms, Status::Sending, None)
        }
    }

    /// A line for a notification or the chat list: the words, else the file's name.
    pub fn preview(&self) -> String {
        match &self.attachment {
            Some(a) if self.text.is_empty() => a.name.clone(),
            _ => self.text.clone(),
        }
    }

    /// What goes over the wire for it (sent again after a group's epoch moved on).
    pub fn body(&self) -> Body {
        match (&self.attachment, self.reply_to) {
            (Some(a), _) => Body::File(a.clone()),
            (None, Some(to)) => Body::Reply { to, text: self.text.clone() },
            (None, None) => Body::Text(self.text.clone()),
        }
    }

    /// When it goes, if its countdown runs: theirs once we read it, ours once they did (ours
    /// also has a later deadline before that, which is not a countdown to show).
    pub fn counting_to(&self) -> Option<u64> {
        let at = self.expiry?.at_ms?;
        (!self.outgoing || self.status == Status::Read).then_some(at)
    }

    /// Whether we may change its words for everyone at `now_ms`: a text of ours, not deleted,
    /// within `EDIT_WINDOW_SECS`.
    pub fn editable(&self, now_ms: u64) -> bool {
        self.withdrawable(now_ms) && self.attachment.is_none() && self.sent_within(now_ms, EDIT_WINDOW_SECS)
    }

    /// Whether we may delete it for everyone at `now_ms`: ours, not deleted, within
    /// `DELETE_WINDOW_SECS`.
    pub fn withdrawable(&self, now_ms: u64) -> bool {
        self.outgoing
            && !self.deleted
            && self.notice.is_none()
            && self.sent_within(now_ms, DELETE_WINDOW_SECS)
    }

    /// Whether `at_ms` is at most `window_secs` after it was sent (by the author's clock):
    /// the one window check of edits and deletions, ours and theirs.
    pub fn sent_within(&self, at_ms: u64, window_secs: u64) -> bool {
        at_ms.saturating_sub(self.sent_at_ms) <= window_secs * 1000
    }

    /// Its words and file are gone for everyone (see `Body::Delete`).
    pub fn erase(&mut self) {
        self.deleted = true;
        zeroize::Zeroize::zeroize(&mut self.text);
        self.attachment = None;
        self.reactions.clear();
        self.edited = false;
    }

    /// Received and not read yet.
    pub fn is_unread(&self) -> bool {
        !self.outgoing && self.status == Status::Delivered
    }

    pub fn key(&self) -> RecordKey {
        RecordKey::Message(self.conversation, self.seq)
    }

    pub fn write(&self) -> RecordWrite {
        (self.key(), Some(encode(self)))
    }
}

/// A message as record version 1 stored it: every chat was one contact's.
#[derive(Deserialize)]
pub(crate) struct ChatMessageV1 {
    seq: u64,
    id: [u8; 16],
    contact: Address,
    outgoing: bool,
    text: String,
    sent_at_ms: u64,
    status: Status,
}

impl From<ChatMessageV1> for ChatMessage {
    fn from(m: ChatMessageV1) -> ChatMessage {
        let ChatMessageV1 { seq, id, contact, outgoing, text, sent_at_ms, status } = m;
        let conversation = ConversationId::Direct(contact);
        ChatMessageV2 { seq, id, conversation, outgoing, text, sent_at_ms, status }.into()
    }
}

/// A message as record version 2 stored it: no author (there were no groups).
#[derive(Deserialize)]
pub(crate) struct ChatMessageV2 {
    seq: u64,
    id: [u8; 16],
    conversation: ConversationId,
    outgoing: bool,
    text: String,
    sent_at_ms: u64,
    status: Status,
}

impl From<ChatMessageV2> for ChatMessage {
    fn from(m: ChatMessageV2) -> ChatMessage {
        let ChatMessageV2 { seq, id, conversation, outgoing, text, sent_at_ms, status } = m;
        ChatMessageV3 { seq, id, conversation, outgoing, text, sent_at_ms, status, author: None }.into()
    }
}

/// A message as record version 3 stored it: no notices yet.
#[derive(Deserialize)]
pub(crate) struct ChatMessageV3 {
    seq: u64,
    id: [u8; 16],
    conversation: ConversationId,
    outgoing: bool,
    text: String,
    sent_at_ms: u64,
    status: Status,
    author: Option<[u8; 32]>,
}

impl From<ChatMessageV3> for ChatMessage {
    fn from(m: ChatMessageV3) -> ChatMessage {
        let ChatMessageV3 { seq, id, conversation, outgoing, text, sent_at_ms, status, author } = m;
        ChatMessageV4 { seq, id, conversation, outgoing, text, sent_at_ms, status, author, notice: None }
            .into()
    }
}

/// A message as record version 4 stored it: no files yet.
#[derive(Deserialize)]
pub(crate) struct ChatMessageV4 {
    seq: u64,
    id: [u8; 16],
    conversation: ConversationId,
    outgoing: bool,
    text: String,
    sent_at_ms: u64,
    status: Status,
    author: Option<[u8; 32]>,
    notice: Option<ChatNotice>,
}

impl From<ChatMessageV4> for ChatMessage {
    fn from(m: ChatMessageV4) -> ChatMessage {
        let ChatMessageV4 { seq, id, conversation, outgoing, text, sent_at_ms, status, author, notice } = m;
        ChatMessageV5 {
            seq,
            id,
            conversation,
            outgoing,
            text,
            sent_at_ms,
            status,
            author,
            notice,
            attachment: None,
        }
        .into()
    }
}

/// A message as record version 5 stored it: no replies, edits, deletions, reactions or
/// timers yet.
#[derive(Deserialize)]
pub(crate) struct ChatMessageV5 {
    seq: u64,
    id: [u8; 16],
    conversation: ConversationId,
    outgoing: bool,
    text: String,
    sent_at_ms: u64,
    status: Status,
    author: Option<[u8; 32]>,
    notice: Option<ChatNotice>,
    attachment: Option<Box<Attachment>>,
}

impl From<ChatMessageV5> for ChatMessage {
    fn from(m: ChatMessageV5) -> ChatMessage {
        let ChatMessageV5 {
            seq,
            id,
            conversation,
            outgoing,
            text,
            sent_at_ms,
            status,
            author,
            notice,
            attachment,
        } = m;
        ChatMessage {
            outgoing,
            text,
            notice,
            attachment,
            ..ChatMessage::blank(seq, id, conversation, sent_at_ms, status, author)
        }
    }
}

/// A stored chat message, of any record version.
pub fn decode_message(key: &RecordKey, bytes: &[u8]) -> Result<ChatMessage, crate::MessengerError> {
    let damaged = |e: postcard::Error| crate::MessengerError::Damaged(format!("{key}: {e}"));
    match bytes.split_first() {
        Some((3, body)) => {
            return postcard::from_bytes::<ChatMessageV3>(body).map(Into::into).map_err(damaged);
        }
        Some((4, body)) => {
            return postcard::from_bytes::<ChatMessageV4>(body).map(Into::into).map_err(damaged);
        }
        Some((5, body)) => {
            return postcard::from_bytes::<ChatMessageV5>(body).map(Into::into).map_err(damaged);
        }
        _ => {}
    }
    crate::records::decode_versions::<ChatMessage, ChatMessageV1, ChatMessageV2>(key, bytes)
}

/// One conversation's loaded messages: the newest ones, back to the oldest page read.
#[derive(Default)]
struct Chat {
    messages: Vec<ChatMessage>,
    /// The oldest stored message is loaded (nothing earlier to page in).
    complete: bool,
}

/// The loaded part of every conversation's history. Storage holds all of it; the newest page
/// of each conversation is loaded at start, earlier pages on demand.
///
/// Every unread message is always loaded: the loader pages back until it reaches a message
/// sent from here or one already read. Unread messages are the newest incoming ones, since
/// marking a chat read marks all of them and sending in a chat marks it read; so unread counts
/// and read receipts never miss one.
#[derive(Default)]
pub struct History {
    chats: BTreeMap<ConversationId, Chat>,
    /// Ids of the loaded chat messages, to drop a redelivered one (delivery is at least
    /// once). An older message's redelivery is caught earlier, by the ratchet (`Duplicate`).
    /// Ids seen, per conversation: ids are chosen by senders, so one conversation's sender
    /// could otherwise reuse another's id to have a real message taken for a redelivery.
    seen: HashSet<(ConversationId, [u8; 16])>,
}

impl History {
    /// Adds a page of stored messages older than those loaded (in any order); `complete` if
    /// storage holds nothing earlier.
    pub fn add_page(&mut self, conversation: ConversationId, mut page: Vec<ChatMessage>, complete: bool) {
        self.seen.extend(page.iter().map(|m| (m.conversation, m.id)));
        let chat = self.chats.entry(conversation).or_default();
        page.sort_by_key(|m| m.seq);
        page.append(&mut chat.messages);
        chat.messages = page;
        chat.complete = complete;
    }

    /// What to read for the page before the loaded messages, if storage holds more.
    pub fn earlier(&self, conversation: &ConversationId) -> Option<u64> {
        match self.chats.get(conversation) {
            Some(chat) if chat.complete => None,
            Some(chat) => Some(chat.messages.first().map_or(u64::MAX, |m| m.seq)),
            None => Some(u64::MAX),
        }
    }

    /// Every sent message a receipt may still change is loaded: they are the ones after the
    /// other side's last message (writing reads a chat) and after the last one it read, within
    /// [`RECEIPT_WINDOW`].
    pub fn unconfirmed_all_loaded(&self, conversation: &ConversationId) -> bool {
        self.chats.get(conversation).is_some_and(|chat| {
            chat.complete
                || chat.messages.len() >= RECEIPT_WINDOW
                || chat.messages.iter().any(|m| !m.outgoing || m.status == Status::Read)
        })
    }

    /// Every unread message of the conversation is loaded (see the type's doc).
    pub fn unread_all_loaded(&self, conversation: &ConversationId) -> bool {
        self.chats.get(conversation).is_some_and(|chat| {
            chat.complete || chat.messages.iter().any(|m| m.outgoing || m.status == Status::Read)
        })
    }

    /// The highest local sequence number loaded.
    pub fn last_seq(&self) -> Option<u64> {
        self.chats.values().filter_map(|c| c.messages.last()).map(|m| m.seq).max()
    }

    pub fn messages(&self, conversation: &ConversationId) -> &[ChatMessage] {
        self.chats.get(conversation).map(|c| c.messages.as_slice()).unwrap_or_default()
    }

    /// Records `id` as seen in `conversation`; `false` if it already was (a redelivery).
    pub fn first_sight(&mut self, conversation: ConversationId, id: [u8; 16]) -> bool {
        self.seen.insert((conversation, id))
    }

    /// Appends a new message; returns its record.
    pub fn push(&mut self, m: ChatMessage) -> RecordWrite {
        self.seen.insert((m.conversation, m.id));
        let write = m.write();
        // A conversation first seen now has nothing earlier in storage.
        let chat =
            self.chats.entry(m.conversation).or_insert_with(|| Chat { complete: true, ..Chat::default() });
        chat.messages.push(m);
        write
    }

    /// Moves the loaded messages `which` selects to `status` (only ever forward, but `Failed`
    /// always applies); returns their records.
    pub fn set_status(
        &mut self,
        conversation: &ConversationId,
        which: impl Fn(&ChatMessage) -> bool,
        status: Status,
    ) -> RecordWrites {
        let mut writes = Vec::new();
        for m in self.chats.get_mut(conversation).into_iter().flat_map(|c| c.messages.iter_mut()) {
            if which(m) && (m.status < status || status == Status::Failed) {
                m.status = status;
                writes.push(m.write());
            }
        }
        writes
    }

    /// The loaded message of `conversation` with id `id`.
    pub fn find(&self, conversation: &ConversationId, id: &MessageRef) -> Option<&ChatMessage> {
        self.messages(conversation).iter().rev().find(|m| m.id == *id)
    }

    /// Changes the loaded message with id `id` by `change`, which says whether it changed
    /// anything; returns the message and its record if so.
    pub fn change(
        &mut self,
        conversation: &ConversationId,
        id: &MessageRef,
        change: impl FnOnce(&mut ChatMessage) -> bool,
    ) -> Option<(&ChatMessage, RecordWrite)> {
        let chat = self.chats.get_mut(conversation)?;
        let m = chat.messages.iter_mut().rev().find(|m| m.id == *id)?;
        change(m).then(|| {
            let write = m.write();
            (&*m, write)
        })
    }

    /// Changes every loaded message of `conversation` that `change` changes (it says so);
    /// returns their records.
    pub fn change_all(
        &mut self,
        conversation: &ConversationId,
        mut change: impl FnMut(&mut ChatMessage) -> bool,
    ) -> Vec<(ChatMessage, RecordWrite)> {
        let messages = self.chats.get_mut(conversation).into_iter().flat_map(|c| c.messages.iter_mut());
        messages.filter_map(|m| change(m).then(|| (m.clone(), m.write()))).collect()
    }

    /// Deletes message `seq` of `conversation`, loaded or not; returns its record's deletion.
    /// Its id stays seen, so a redelivery does not bring it back.
    pub fn remove(&mut self, conversation: &ConversationId, seq: u64) -> RecordWrite {
        if let Some(chat) = self.chats.get_mut(conversation) {
            chat.messages.retain(|m| m.seq != seq);
        }
        (RecordKey::Message(*conversation, seq), None)
    }

    /// Forgets a conversation's loaded messages; returns their records' deletions (the caller
    /// makes sure nothing older is stored).
    pub fn forget(&mut self, conversation: &ConversationId) -> RecordWrites {
        let chat = self.chats.remove(conversation).unwrap_or_default();
        self.seen.retain(|(c, _)| c != conversation);
        chat.messages.iter().map(|m| (m.key(), None)).collect()
    }

    pub fn unread(&self, conversation: &ConversationId) -> usize {
        self.messages(conversation).iter().filter(|m| m.is_unread()).count()
    }

    pub fn unread_total(&self) -> usize {
        self.chats.values().flat_map(|c| &c.messages).filter(|m| m.is_unread()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_seen_per_conversation() {
        let mut h = History::default();
        let (a, b) = (ConversationId::Direct(Address([1; 32])), ConversationId::Direct(Address([2; 32])));
        assert!(h.first_sight(a, [7; 16]));
        assert!(!h.first_sight(a, [7; 16]), "a redelivery");
        assert!(h.first_sight(b, [7; 16]), "another conversation's sender cannot hide it");
        h.forget(&a);
        assert!(h.first_sight(a, [7; 16]), "forgotten with its conversation");
    }

    #[test]
    fn version_1_messages_open_as_direct_conversations() {
        let a = Address([3; 32]);
        // A message as version 1 wrote it (postcard): seq 9, id, the contact's address where a
        // conversation id is now, outgoing, "hi", sent at 5, status Read.
        let mut bytes = vec![1, 9];
        bytes.extend([4; 16]);
        bytes.extend([3; 32]);
        bytes.extend([1, 2, b'h', b'i', 5, 3]);
        let key = RecordKey::Message(ConversationId::Direct(a), 9);
        let m = decode_message(&key, &bytes).unwrap();
        assert_eq!(m.conversation, ConversationId::Direct(a));
        assert_eq!((m.seq, m.id, m.text.as_str(), m.status), (9, [4; 16], "hi", Status::Read));
        let again = decode_message(&key, &m.write().1.unwrap()).unwrap();
        assert_eq!(again, m, "the current version reads back what it writes");
        // Version 2: the conversation id (variant 0, the address), then the same fields.
        let mut v2 = vec![2, 9];
        v2.extend([4; 16]);
        v2.push(0);
        v2.extend([3; 32]);
        v2.extend([1, 2, b'h', b'i', 5, 3]);
        assert_eq!(decode_message(&key, &v2).unwrap(), m);
        // Versions 3 and 4: then an author (none) and a notice (none); no attachment yet.
        let mut v4 = v2.clone();
        v4[0] = 4;
        v4.extend([0, 0]);
        assert_eq!(decode_message(&key, &v4).unwrap(), m);
        // Version 5: then the attachment (none).
        let mut v5 = v4.clone();
        v5[0] = 5;
        v5.push(0);
        assert_eq!(decode_message(&key, &v5).unwrap(), m);
        // Version 6 writes the reply, edited, deleted, reactions and expiry after it.
        let mut v6 = v5.clone();
        v6[0] = 6;
        v6.extend([0, 0, 0, 0, 0]);
        assert_eq!(m.write().1.unwrap()[..], v6[..]);
    }
}
