//! What people send each other, inside the ratchet's ciphertext. Versioned; variants are only
//! appended. Version 2 is padded: the postcard encoding, then 0x80, then zeros up to a multiple
//! of `PADDING_BLOCK` bytes (see `padding`), so lengths show little.

use crate::EngineError;
use crate::handover::{Rekey, Welcome};
use serde::{Deserialize, Serialize};

/// 2: padded (1 was not, and is refused as unsupported).
pub const VERSION: u8 = 2;
use crate::consts::{
    DISAPPEARING_GRACE_SECS, DISAPPEARING_TIMERS, ENVELOPE_TTL_SECS, MAX_REACTION_BYTES, MAX_TEXT_BYTES,
};
use crate::padding::{padded, unpadded};

/// A message of the same conversation, by its id (the id inside its `Message`).
pub type MessageRef = [u8; 16];

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
    /// A text answering an earlier message of the conversation (quoted above it).
    Reply {
        to: MessageRef,
        text: String,
    },
    /// New words for the sender's own text `target` (within `EDIT_WINDOW_SECS` of it).
    Edit {
        target: MessageRef,
        text: String,
    },
    /// The sender takes back their message `target` for everyone (within
    /// `DELETE_WINDOW_SECS` of it).
    Delete {
        target: MessageRef,
    },
    /// The sender's reaction to `target`, one per person: a new one replaces theirs, `None`
    /// takes it back.
    React {
        target: MessageRef,
        emoji: Option<String>,
    },
    /// The conversation's disappearing-message timer is now `secs` (one of
    /// `DISAPPEARING_TIMERS`), or off.
    Timer {
        secs: Option<u32>,
    },
    /// The sender started or stopped writing (sent live, never stored by the relay).
    Typing {
        typing: bool,
    },
}

impl Body {
    /// Words, a file or a reply: what a chat shows as a message of its own.
    pub fn is_chat(&self) -> bool {
        matches!(self, Body::Text(_) | Body::File(_) | Body::Reply { .. })
    }

    /// Whether it disappears with the conversation's timer: chat messages, and what changes
    /// one (an edit carries words; a reaction says who reacted to what).
    pub fn disappears(&self) -> bool {
        self.is_chat() || matches!(self, Body::Edit { .. } | Body::React { .. })
    }

    /// The limits of each kind, kept on sending and on arrival.
    pub fn check(&self) -> Result<(), EngineError> {
        let too_long = |t: &str| {
            (t.len() > MAX_TEXT_BYTES)
                .then(|| EngineError::BadEncoding(format!("text longer than {MAX_TEXT_BYTES} bytes")))
        };
        let problem = match self {
            Body::Text(t) | Body::Reply { text: t, .. } | Body::Edit { text: t, .. } => too_long(t),
            Body::File(a) => return a.check(),
            Body::React { emoji: Some(e), .. } if e.is_empty() || e.len() > MAX_REACTION_BYTES => {
                Some(EngineError::BadEncoding(format!("a reaction of 1 to {MAX_REACTION_BYTES} bytes")))
            }
            // No controls or text-reordering marks (a reaction must not turn its line around).
            Body::React { emoji: Some(e), .. } if e.chars().any(crate::attachment::unfit_in_name) => {
                Some(EngineError::BadEncoding("a reaction with control or direction characters".into()))
            }
            Body::Timer { secs: Some(s) } if !DISAPPEARING_TIMERS.contains(s) => {
                Some(EngineError::BadEncoding(format!("no timer of {s} seconds")))
            }
            _ => None,
        };
        problem.map_or(Ok(()), Err)
    }
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
        self.check()?;
        padded(self)
    }

    fn check(&self) -> Result<(), EngineError> {
        self.body.check()?;
        match self.expires_after_secs {
            Some(s) if !DISAPPEARING_TIMERS.contains(&s) => {
                Err(EngineError::BadEncoding(format!("no timer of {s} seconds")))
            }
            _ => Ok(()),
        }
    }

    /// How long the relay may keep its envelope: a disappearing message's no longer than its
    /// timer and a grace for a recipient who is offline (`DISAPPEARING_GRACE_SECS`).
    pub fn envelope_ttl_secs(&self) -> u32 {
        self.expires_after_secs
            .map_or(ENVELOPE_TTL_SECS, |s| s.saturating_add(DISAPPEARING_GRACE_SECS).min(ENVELOPE_TTL_SECS))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, EngineError> {
        let version = *bytes.first().ok_or_else(|| EngineError::BadEncoding("empty message".into()))?;
        if version != VERSION {
            return Err(EngineError::UnsupportedVersion(version));
        }
        let message: Message = unpadded(bytes)?;
        message.check()?;
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
    fn changes_of_messages_round_trip_and_keep_their_limits() {
        let with =
            |body: Body, expires_after_secs: Option<u32>| Message { body, expires_after_secs, ..text("") };
        let good = [
            Body::Reply { to: [4; 16], text: "yes".into() },
            Body::Edit { target: [4; 16], text: "new words".into() },
            Body::Delete { target: [4; 16] },
            Body::React { target: [4; 16], emoji: Some("👨‍👩‍👧‍👦".into()) },
            Body::React { target: [4; 16], emoji: None },
            Body::Timer { secs: Some(3600) },
            Body::Timer { secs: None },
            Body::Typing { typing: true },
        ];
        for body in good {
            let m = with(body, Some(5));
            assert_eq!(Message::decode(&m.encode().unwrap()).unwrap(), m);
        }
        let bad = [
            with(Body::React { target: [4; 16], emoji: Some(String::new()) }, None),
            with(Body::React { target: [4; 16], emoji: Some("x".repeat(MAX_REACTION_BYTES + 1)) }, None),
            with(Body::React { target: [4; 16], emoji: Some("\u{7}".into()) }, None),
            with(Body::React { target: [4; 16], emoji: Some("\u{202e}👍".into()) }, None),
            with(Body::Timer { secs: Some(7) }, None),
            with(Body::Edit { target: [4; 16], text: "x".repeat(MAX_TEXT_BYTES + 1) }, None),
            with(Body::Text("hi".into()), Some(6)),
        ];
        for m in bad {
            assert!(m.encode().is_err(), "{m:?}");
            // Made by a client that skips the checks, it is refused on arrival too.
            let bytes = padded(&m).unwrap();
            assert!(Message::decode(&bytes).is_err(), "{m:?}");
        }
    }

    #[test]
    fn a_disappearing_messages_envelope_lives_its_timer_and_a_day() {
        let m = |expires_after_secs| Message { expires_after_secs, ..text("hi") };
        assert_eq!(m(None).envelope_ttl_secs(), ENVELOPE_TTL_SECS);
        assert_eq!(m(Some(5)).envelope_ttl_secs(), 5 + DISAPPEARING_GRACE_SECS);
        assert_eq!(m(Some(604_800)).envelope_ttl_secs(), 604_800 + DISAPPEARING_GRACE_SECS);
        assert!(m(Some(604_800)).envelope_ttl_secs() <= ENVELOPE_TTL_SECS);
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
