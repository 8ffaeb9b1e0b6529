//! What every call asks of its caller: records to write, frames for the relay, events for the
//! person. The caller writes the records in one transaction and sends the frames only once it
//! has committed (commit-then-send), so an `Ack` never leaves before the message it
//! acknowledges is stored, and ratchet state is never stored without the message it produced.

use crate::conversation::ConversationId;
use crate::error::MessengerError;
use crate::records::RecordWrites;
use sotto_engine::EngineError;
use sotto_engine::device::Output;
use sotto_shared::frames::ErrorCode;
use sotto_shared::{Address, ClientFrame};
use thiserror::Error;

#[derive(Default)]
pub struct Effects {
    pub writes: RecordWrites,
    pub frames: Vec<ClientFrame>,
    pub events: Vec<Event>,
}

/// Names the records, never their contents (plaintext, private keys included).
impl std::fmt::Debug for Effects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .writes
            .iter()
            .map(|(k, v)| format!("{} {k}", if v.is_some() { "write" } else { "delete" }))
            .collect();
        f.debug_struct("Effects")
            .field("writes", &names)
            .field("frames", &self.frames.len())
            .field("events", &self.events)
            .finish()
    }
}

impl Effects {
    pub fn merge(&mut self, other: Effects) {
        self.writes.extend(other.writes);
        self.frames.extend(other.frames);
        self.events.extend(other.events);
    }

    /// The engine's records and frames.
    pub fn from_engine(out: Output) -> Effects {
        Effects {
            writes: out.persist.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            frames: out.send,
            events: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text arrived (the UI may notify).
    Message { conversation: ConversationId, name: String, text: String },
    /// Someone accepted our invite, or we accepted theirs.
    ContactAdded(Address),
    /// Someone wrote without an invite: a contact request to accept or ignore.
    Request { address: Address, name: String },
    /// An admin added us to a group.
    JoinedGroup { conversation: ConversationId, name: String },
    /// We were removed from a group (its chat stays, read-only).
    LeftGroup { conversation: ConversationId },
    /// Someone asked to join a group by a link of ours that needs approval.
    JoinRequest { conversation: ConversationId, name: String },
    /// The relay's operator has our report of a channel post.
    Reported,
    /// A channel's owner made us an admin of it.
    MadeChannelAdmin { conversation: ConversationId },
    /// Disappearing messages went (the views showing them redraw).
    Expired,
    /// The other side of a direct chat started or stopped writing.
    Typing { conversation: ConversationId, typing: bool },
    /// Something the person should know.
    Problem(Notice),
}

/// What went wrong, typed; its `Display` is the plain words the person reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Notice {
    #[error("The relay refused the login ({code}): {reason}", code = .0.as_str(), reason = .1)]
    LoginRefused(ErrorCode, String),
    #[error("The relay refused a request ({code}): {reason}", code = .0.as_str(), reason = .1)]
    RequestRefused(ErrorCode, String),
    #[error("{contact}'s mailbox is full; Sotto will keep trying.")]
    MailboxFull { contact: String },
    #[error("A message to {contact} could not be sent: {reason}")]
    NotSent { contact: String, reason: String },
    #[error("A message could not be read and was dropped: {0}")]
    Unreadable(EngineError),
    #[error(
        "Someone opened an invite link of yours that was already used. They are being told to ask you for a new one."
    )]
    SpentInviteOpened,
    #[error("Nobody uses that address on this relay.")]
    NoSuchAddress,
    #[error(
        "{member} has no keys on this relay yet, so the group's new key could not reach them; Sotto will try again."
    )]
    MemberUnreachable { member: String },
    #[error("The relay did not take your report: {0}")]
    ReportRefused(String),
    #[error("The channel {name} was blocked by this relay's operator: {reason}")]
    ChannelBlocked { name: String, reason: String },
    #[error("{0}")]
    Failed(#[from] MessengerError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordKey;

    #[test]
    fn debug_names_records_but_never_shows_them() {
        let fx = Effects {
            writes: vec![
                (RecordKey::Profile, Some(crate::RecordBytes::new(b"SECRET-PLAINTEXT".to_vec()))),
                (RecordKey::Outbox(1), None),
            ],
            ..Effects::default()
        };
        let shown = format!("{fx:?}");
        assert!(shown.contains("write profile") && shown.contains("delete outbox/"), "{shown}");
        assert!(!shown.contains("SECRET") && !shown.contains("83, 69"), "{shown}");
    }
}
