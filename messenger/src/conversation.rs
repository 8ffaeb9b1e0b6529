//! What a chat is named by: routes, records, the outbox, receipts and unread counts all say
//! which conversation, never assuming that a chat is one contact.

use serde::{Deserialize, Serialize};
use sotto_shared::Address;
use std::fmt;

/// A conversation. Only direct chats exist today; groups and channels get their own variants
/// (and key forms) beside this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConversationId {
    /// The 1:1 chat with the contact at this address.
    Direct(Address),
}

impl ConversationId {
    /// The contact of a direct chat.
    pub fn peer(&self) -> Option<Address> {
        match self {
            ConversationId::Direct(a) => Some(*a),
        }
    }

    /// Parses the form [`fmt::Display`] writes (used in record names and routes).
    pub fn parse(text: &str) -> Option<ConversationId> {
        Address::from_hex(text).map(ConversationId::Direct)
    }
}

/// A direct chat is written as its contact's address in hex, as record names and routes have
/// always named it.
impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConversationId::Direct(a) => f.write_str(&a.to_hex()),
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
    }
}
