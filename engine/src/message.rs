//! What people send each other, inside the ratchet's ciphertext. Versioned; variants are only
//! appended.

use crate::EngineError;
use serde::{Deserialize, Serialize};

pub const VERSION: u8 = 1;
use crate::consts::MAX_TEXT_BYTES;

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
    pub fn encode(&self) -> Result<Vec<u8>, EngineError> {
        if let Body::Text(t) = &self.body
            && t.len() > MAX_TEXT_BYTES
        {
            return Err(EngineError::BadEncoding(format!("text longer than {MAX_TEXT_BYTES} bytes")));
        }
        Ok(postcard::to_allocvec(self)?)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        let version = *bytes.first().ok_or_else(|| EngineError::BadEncoding("empty message".into()))?;
        if version != VERSION {
            return Err(EngineError::UnsupportedVersion(version));
        }
        Ok(postcard::from_bytes(bytes)?)
    }
}
