//! Envelopes the relay has not confirmed yet, persisted and resent in order each time the
//! sending line comes up until the relay answers `Sent`; one the relay refused for a while
//! (rate, a full mailbox) is resent on its own after a pause.

/// A send refused for a moment (rate limit, relay error) is tried again after this long…
pub const RETRY_SOON_MS: u64 = 5_000;
/// …and one refused for lack of room (a full mailbox or relay) after this long.
pub const RETRY_LATER_MS: u64 = 60_000;

use crate::conversation::ConversationId;
use crate::records::{RecordKey, RecordWrite, encode};
use serde::{Deserialize, Serialize};
use sotto_shared::{Address, MessageId};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbound {
    pub envelope: MessageId,
    /// The mailbox it goes to.
    pub to: Address,
    pub payload: Vec<u8>,
    /// The chat message it carries (conversation, local sequence number), whose status
    /// follows the envelope's.
    pub message: Option<(ConversationId, u64)>,
    /// How long the relay may keep it (see `Message::envelope_ttl_secs`).
    pub ttl_secs: u32,
}

/// An outbound envelope as record version 1 stored it.
#[derive(Deserialize)]
struct OutboundV1 {
    envelope: MessageId,
    to: Address,
    payload: Vec<u8>,
    message: Option<(Address, u64)>,
}

impl From<OutboundV1> for Outbound {
    fn from(o: OutboundV1) -> Outbound {
        let message = o.message.map(|(a, seq)| (ConversationId::Direct(a), seq));
        OutboundV5 { envelope: o.envelope, to: o.to, payload: o.payload, message }.into()
    }
}

/// An outbound envelope as record versions 2 to 5 stored it: every envelope lived as long as
/// the relay allows.
#[derive(Deserialize)]
struct OutboundV5 {
    envelope: MessageId,
    to: Address,
    payload: Vec<u8>,
    message: Option<(ConversationId, u64)>,
}

impl From<OutboundV5> for Outbound {
    fn from(o: OutboundV5) -> Outbound {
        let OutboundV5 { envelope, to, payload, message } = o;
        Outbound { envelope, to, payload, message, ttl_secs: sotto_engine::consts::ENVELOPE_TTL_SECS }
    }
}

/// A stored outbox entry, of any record version.
pub fn decode_outbound(key: &RecordKey, bytes: &[u8]) -> Result<Outbound, crate::MessengerError> {
    let damaged = |e: postcard::Error| crate::MessengerError::Damaged(format!("{key}: {e}"));
    match bytes.split_first() {
        Some((2..=5, body)) => postcard::from_bytes::<OutboundV5>(body).map(Into::into).map_err(damaged),
        _ => crate::records::decode_upgrading::<Outbound, OutboundV1>(key, bytes),
    }
}

/// A queued envelope and, in memory only (a reload resends everything anyway), whether the
/// relay refused it for now.
struct Queued {
    o: Outbound,
    /// When to send it again after a refusal.
    retry_at_ms: Option<u64>,
    /// Refused at least once (a repeated refusal is not announced again).
    refused: bool,
}

#[derive(Default)]
pub struct Outbox {
    by_seq: BTreeMap<u64, Queued>,
}

impl Outbox {
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// In the order they were queued.
    pub fn iter(&self) -> impl Iterator<Item = &Outbound> {
        self.by_seq.values().map(|q| &q.o)
    }

    /// Queues an envelope under local sequence number `seq`; returns its record.
    pub fn insert(&mut self, seq: u64, o: Outbound) -> RecordWrite {
        let write = (RecordKey::Outbox(seq), Some(encode(&o)));
        self.by_seq.insert(seq, Queued { o, retry_at_ms: None, refused: false });
        write
    }

    /// The queued envelope `envelope`, with its sequence number.
    pub fn find(&self, envelope: MessageId) -> Option<(u64, &Outbound)> {
        self.by_seq.iter().find(|(_, q)| q.o.envelope == envelope).map(|(&seq, q)| (seq, &q.o))
    }

    /// Removes an envelope; returns it and its record's deletion.
    pub fn remove(&mut self, seq: u64) -> Option<(Outbound, RecordWrite)> {
        self.by_seq.remove(&seq).map(|q| (q.o, (RecordKey::Outbox(seq), None)))
    }

    /// The relay refused envelope `seq` for now: send it again at `at_ms`. True the first time
    /// it is refused.
    pub fn hold(&mut self, seq: u64, at_ms: u64) -> bool {
        let Some(q) = self.by_seq.get_mut(&seq) else { return false };
        q.retry_at_ms = Some(at_ms);
        !std::mem::replace(&mut q.refused, true)
    }

    /// Everything goes out again (the sending line came up): nothing is held any more.
    pub fn release_held(&mut self) {
        self.by_seq.values_mut().for_each(|q| q.retry_at_ms = None);
    }

    /// The held envelopes due by `now_ms`, in order, released from holding.
    pub fn due(&mut self, now_ms: u64) -> Vec<&Outbound> {
        let mut due = Vec::new();
        for (&seq, q) in &mut self.by_seq {
            if q.retry_at_ms.is_some_and(|at| at <= now_ms) {
                q.retry_at_ms = None;
                due.push(seq);
            }
        }
        due.iter().filter_map(|seq| self.by_seq.get(seq)).map(|q| &q.o).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct WrittenByV1 {
        envelope: MessageId,
        to: Address,
        payload: Vec<u8>,
        message: Option<(Address, u64)>,
    }

    #[test]
    fn version_1_entries_carry_their_message_into_a_direct_conversation() {
        let a = Address([3; 32]);
        let old =
            WrittenByV1 { envelope: MessageId([1; 16]), to: a, payload: vec![7; 5], message: Some((a, 4)) };
        let mut bytes = vec![1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let o = decode_outbound(&RecordKey::Outbox(2), &bytes).unwrap();
        assert_eq!(o.message, Some((ConversationId::Direct(a), 4)));
        assert_eq!((o.envelope, o.to, o.payload), (MessageId([1; 16]), a, vec![7; 5]));
        assert_eq!(o.ttl_secs, sotto_engine::consts::ENVELOPE_TTL_SECS);
    }

    /// Versions 2 to 5 wrote no TTL: the entry lives as long as the relay allows; version 6
    /// keeps a disappearing message's shorter one.
    #[test]
    fn entries_before_version_6_live_as_long_as_the_relay_allows() {
        let a = Address([3; 32]);
        let conversation = ConversationId::Direct(a);
        let current = Outbound {
            envelope: MessageId([1; 16]),
            to: a,
            payload: vec![7; 5],
            message: Some((conversation, 4)),
            ttl_secs: 86_405,
        };
        let written = encode(&current);
        let mut v5 = written.to_vec();
        v5[0] = 5;
        v5.truncate(v5.len() - 3); // the TTL's varint (86,405 takes three bytes)
        let old = decode_outbound(&RecordKey::Outbox(2), &v5).unwrap();
        assert_eq!(old, Outbound { ttl_secs: sotto_engine::consts::ENVELOPE_TTL_SECS, ..current.clone() });
        assert_eq!(decode_outbound(&RecordKey::Outbox(2), &written).unwrap(), current);
    }
}

/// Posts refused for a while and when each goes again: a few at a time, so a list (a map type
/// costs the web app kilobytes of code).
#[derive(Default)]
pub struct Paused {
    due: Vec<(MessageId, u64)>,
}

impl Paused {
    /// Sends `id` again at `at` (once: a later pause replaces an earlier one).
    pub fn insert(&mut self, id: MessageId, at: u64) {
        self.due.retain(|(other, _)| *other != id);
        self.due.push((id, at));
    }

    /// The posts due by `now_ms`, in the order paused; they are no longer paused.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<MessageId> {
        let due = self.due.iter().filter(|(_, at)| *at <= now_ms).map(|(id, _)| *id).collect();
        self.due.retain(|(_, at)| *at > now_ms);
        due
    }
}
