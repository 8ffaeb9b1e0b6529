//! What a chat is named by: routes, records, the outbox, receipts and unread counts all say
//! which conversation, never assuming that a chat is one contact.

use serde::{Deserialize, Serialize};
use sotto_engine::sender_keys::GroupId;
use sotto_shared::Address;
use sotto_shared::channel::ChannelId;
use std::fmt;

/// A conversation: a direct chat, a group or a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConversationId {
    /// The 1:1 chat with the contact at this address.
    Direct(Address),
    /// A group's chat.
    Group(GroupId),
    /// A channel we follow (or run): its posts.
    Channel(ChannelId),
}

impl ConversationId {
    /// The contact of a direct chat.
    pub fn peer(&self) -> Option<Address> {
        match self {
            ConversationId::Direct(a) => Some(*a),
            ConversationId::Group(_) | ConversationId::Channel(_) => None,
        }
    }

    /// Parses the form [`fmt::Display`] writes (used in record names and routes).
    pub fn parse(text: &str) -> Option<ConversationId> {
        if let Some(hex) = text.strip_prefix('g') {
            return group_from_hex(hex).map(ConversationId::Group);
        }
        if let Some(hex) = text.strip_prefix('n') {
            return ChannelId::from_hex(hex).map(ConversationId::Channel);
        }
        Address::from_hex(text).map(ConversationId::Direct)
    }
}

/// A group id in the hex [`fmt::Display`] writes after its `g`.
pub fn group_from_hex(text: &str) -> Option<GroupId> {
    sotto_shared::ids::unhex(text).map(GroupId)
}

pub fn group_hex(id: &GroupId) -> String {
    sotto_shared::ids::hex(&id.0)
}

/// A direct chat is written as its contact's address in hex, as record names and routes have
/// always named it; a group as `g` and its id in hex, a channel as `n` and its id in hex (both
/// letters outside hex, so no address is ever read as one).
impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationId::Direct(a) => f.write_str(&a.to_hex()),
            ConversationId::Group(g) => write!(f, "g{}", group_hex(g)),
            ConversationId::Channel(c) => write!(f, "n{}", c.to_hex()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_nothing_else() {
        let c = ConversationId::Direct(Address([7; 32]));
        assert_eq!(ConversationId::parse(&c.to_string()), Some(c));
        assert_eq!(c.to_string(), Address([7; 32]).to_hex());
        assert_eq!(ConversationId::parse("zz"), None);
        assert_eq!(c.peer(), Some(Address([7; 32])));
        let g = ConversationId::Group(GroupId([0xab; 16]));
        assert_eq!(ConversationId::parse(&g.to_string()), Some(g));
        assert_eq!(g.to_string(), format!("g{}", "ab".repeat(16)));
        assert_eq!(ConversationId::parse("gab"), None);
        assert_eq!(g.peer(), None);
        let c = ConversationId::Channel(ChannelId([0xcd; 16]));
        assert_eq!(ConversationId::parse(&c.to_string()), Some(c));
        assert_eq!(ConversationId::parse("ncd"), None);
        // An address starting with a letter of hex stays a direct chat.
        let direct = ConversationId::Direct(Address([0xcd; 32]));
        assert_eq!(ConversationId::parse(&direct.to_string()), Some(direct));
    }
}
