//! What people send each other, inside the ratchet's ciphertext. Versioned; variants are only
//! appended. Version 2 is padded: the postcard encoding, then 0x80, then zeros up to a multiple
//! of `PADDING_BLOCK` bytes (see `padding`), so lengths show little.

use crate::EngineError;
use crate::handover::{Rekey, Welcome};
use serde::{Deserialize, Serialize};

/// 2: padded (1 was not, and is refused as unsupported).
pub const VERSION: u8 = 2;
use crate::consts::MAX_TEXT_BYTES;
use crate::padding::{padded, unpadded};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptKind {
    Delivered,
    Read,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Text(String),
    /// Acknowledges messages by id.
    Receipt {
        kind: ReceiptKind,
        ids: Vec<[u8; 16]>,
    },
    /// The sender's display name (sent on first contact and when it changes).
    Profile {
        display_name: String,
    },
    /// Answer to someone who used an invite link whose one-time key was already spent: the
    /// inviter never received their messages and they should ask for a new link.
    InviteUsed,
    /// Sent as the first message of a new session by someone who restored from a backup: their
    /// other sessions with us are stale, so we keep only this one (see `Device::open`).
    SessionReset,
    /// A group admin adds us to a group.
    GroupWelcome(Box<Welcome>),
    /// A group admin moves us to a group's next epoch (someone was removed or left).
    GroupRekey(Box<Rekey>),
    /// A channel's owner makes us an admin of it (or hands us its new link).
    ChannelGrant(Box<crate::channel::ChannelGrant>),
    /// A file, photo or voice message (its ciphertext waits at the relay as a blob).
    File(Box<crate::attachment::Attachment>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub v: u8,
    /// Random; receivers deduplicate by it (delivery is at least once).
    pub id: [u8; 16],
    /// Sender's clock, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
    /// Disappearing messages: delete this many seconds after it is read.
    pub expires_after_secs: Option<u32>,
    pub body: Body,
}

impl Message {
    /// The padded plaintext (wiped when dropped; padded without growing, see `wipe`).
    pub fn encode(&self) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
        if let Body::Text(t) = &self.body
            && t.len() > MAX_TEXT_BYTES
        {
            return Err(EngineError::BadEncoding(format!("text longer than {MAX_TEXT_BYTES} bytes")));
        }
        if let Body::File(a) = &self.body {
            a.check()?;
        }
        padded(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        let version = *bytes.first().ok_or_else(|| EngineError::BadEncoding("empty message".into()))?;
        if version != VERSION {
            return Err(EngineError::UnsupportedVersion(version));
        }
        let message: Message = unpadded(bytes)?;
        if let Body::File(a) = &message.body {
            a.check()?;
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::PADDING_BLOCK;

    fn text(t: &str) -> Message {
        Message {
            v: VERSION,
            id: [1; 16],
            sent_at_ms: 5,
            expires_after_secs: None,
            body: Body::Text(t.into()),
        }
    }

    #[test]
    fn lengths_come_in_blocks_and_round_trip() {
        let receipt = Message {
            v: VERSION,
            id: [2; 16],
            sent_at_ms: 5,
            expires_after_secs: None,
            body: Body::Receipt { kind: ReceiptKind::Read, ids: vec![[3; 16]] },
        };
        let short = text("hi");
        let longer = text(&"x".repeat(100));
        let long = text(&"y".repeat(200));
        let lengths: Vec<usize> =
            [&receipt, &short, &longer, &long].map(|m| m.encode().unwrap().len()).to_vec();
        assert_eq!(lengths, [PADDING_BLOCK, PADDING_BLOCK, PADDING_BLOCK, 2 * PADDING_BLOCK]);
        for m in [receipt, short, longer, long, text(&"z".repeat(PADDING_BLOCK - 30))] {
            assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn unpadded_old_and_damaged_messages_are_refused() {
        let mut old = text("hi");
        old.v = 1;
        let unpadded = postcard::to_allocvec(&old).unwrap();
        assert_eq!(Message::decode(&unpadded), Err(EngineError::UnsupportedVersion(1)));
        let good = text("hi").encode().unwrap();
        assert!(Message::decode(&good[..good.len() - 1]).is_err(), "not a whole block");
        let mut no_marker = good.clone();
        let at = no_marker.iter().rposition(|b| *b == 0x80).unwrap();
        no_marker[at] = 0;
        assert!(Message::decode(&no_marker).is_err(), "no 0x80 marker");
        assert!(Message::decode(&[VERSION; PADDING_BLOCK]).is_err(), "garbage");
    }
}
