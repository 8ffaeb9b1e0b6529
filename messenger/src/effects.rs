//! What every call asks of its caller: records to write, frames for the relay, events for the
//! person. The caller writes the records in one transaction and sends the frames only once it
//! has committed (commit-then-send), so an `Ack` never leaves before the message it
//! acknowledges is stored, and ratchet state is never stored without the message it produced.

use crate::conversation::ConversationId;
use crate::records::RecordWrites;
use sotto_engine::device::Output;
use sotto_shared::{Address, ClientFrame};

#[derive(Debug, Default)]
pub struct Effects {
    pub writes: RecordWrites,
    pub frames: Vec<ClientFrame>,
    pub events: Vec<Event>,
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
    /// Something the person should know, in plain words.
    Problem(String),
}
