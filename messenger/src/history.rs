//! Chat messages by conversation, with their delivery status.

use crate::conversation::ConversationId;
use crate::records::{RecordKey, RecordWrite, RecordWrites, encode};
use serde::{Deserialize, Serialize};
use sotto_shared::Address;
use std::collections::{BTreeMap, HashSet};

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
    pub text: String,
    /// The sender's clock.
    pub sent_at_ms: u64,
    pub status: Status,
}

impl ChatMessage {
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
        ChatMessage {
            seq: m.seq,
            id: m.id,
            conversation: ConversationId::Direct(m.contact),
            outgoing: m.outgoing,
            text: m.text,
            sent_at_ms: m.sent_at_ms,
            status: m.status,
        }
    }
}

#[derive(Default)]
pub struct History {
    chats: BTreeMap<ConversationId, Vec<ChatMessage>>,
    /// Ids of every chat message, to drop redeliveries (delivery is at least once).
    seen: HashSet<[u8; 16]>,
}

impl History {
    /// A message as restored from storage; call [`History::restored`] after the last.
    pub fn restore(&mut self, m: ChatMessage) {
        self.seen.insert(m.id);
        self.chats.entry(m.conversation).or_default().push(m);
    }

    /// Puts restored messages in order.
    pub fn restored(&mut self) {
        for list in self.chats.values_mut() {
            list.sort_by_key(|m| m.seq);
        }
    }

    pub fn messages(&self, conversation: &ConversationId) -> &[ChatMessage] {
        self.chats.get(conversation).map(Vec::as_slice).unwrap_or_default()
    }

    /// Records `id` as seen; `false` if it already was (a redelivery).
    pub fn first_sight(&mut self, id: [u8; 16]) -> bool {
        self.seen.insert(id)
    }

    /// Appends a message; returns its record.
    pub fn push(&mut self, m: ChatMessage) -> RecordWrite {
        self.seen.insert(m.id);
        let write = m.write();
        self.chats.entry(m.conversation).or_default().push(m);
        write
    }

    /// Moves the messages `which` selects to `status` (only ever forward, but `Failed` always
    /// applies); returns their records.
    pub fn set_status(
        &mut self,
        conversation: &ConversationId,
        which: impl Fn(&ChatMessage) -> bool,
        status: Status,
    ) -> RecordWrites {
        let mut writes = Vec::new();
        for m in self.chats.get_mut(conversation).into_iter().flatten() {
            if which(m) && (m.status < status || status == Status::Failed) {
                m.status = status;
                writes.push(m.write());
            }
        }
        writes
    }

    pub fn unread(&self, conversation: &ConversationId) -> usize {
        self.messages(conversation).iter().filter(|m| m.is_unread()).count()
    }

    pub fn unread_total(&self) -> usize {
        self.chats.values().flatten().filter(|m| m.is_unread()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::decode_upgrading;

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
        let m: ChatMessage = decode_upgrading::<_, ChatMessageV1>(&key, &bytes).unwrap();
        assert_eq!(m.conversation, ConversationId::Direct(a));
        assert_eq!((m.seq, m.id, m.text.as_str(), m.status), (9, [4; 16], "hi", Status::Read));
        let again: ChatMessage = decode_upgrading::<_, ChatMessageV1>(&key, &m.write().1.unwrap()).unwrap();
        assert_eq!(again, m, "version 2 reads back what it writes");
    }
}
