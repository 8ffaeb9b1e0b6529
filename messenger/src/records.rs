//! Record names and bodies. A name is a [`RecordKey`], written as text only at the storage
//! edge (the names are also the vault's associated data, so their text never changes). A body
//! is a version byte and postcard.

use crate::conversation::{ConversationId, group_from_hex, group_hex};
use crate::error::MessengerError;
use serde::{Serialize, de::DeserializeOwned};
use sotto_engine::device::StorageKey;
use sotto_engine::sender_keys::GroupId;
use sotto_shared::Address;
use sotto_shared::channel::ChannelId;
use std::fmt;
use zeroize::Zeroizing;

/// Version 2 names conversations by [`ConversationId`] where version 1 held a contact's
/// address; version 3 gives chat messages their author (in groups), version 4 a group's notices
/// ("Ada added Bo"), version 5 their files, version 6 their replies, edits, deletions,
/// reactions and timers, and outbox entries and groups' pending posts their relay TTL. Other
/// records are the same from 2 on.
const RECORD_VERSION: u8 = 6;

/// A record to write (`Some`) or delete (`None`).
pub type RecordWrite = (RecordKey, Option<RecordBytes>);

/// A record's body in the clear: keys, session state, messages. Wiped when dropped, so no copy
/// outlives its use.
pub type RecordBytes = Zeroizing<Vec<u8>>;

/// Records to write or delete in one transaction.
pub type RecordWrites = Vec<RecordWrite>;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    /// The engine's own records (identity, prekeys, sessions, delivery tokens).
    Engine(StorageKey),
    Profile,
    Contact(Address),
    /// A chat message, by conversation and local sequence number.
    Message(ConversationId, u64),
    /// An envelope the relay has not confirmed yet, by local sequence number.
    Outbox(u64),
    /// A stranger told (once, ever) that the invite link they used was spent; empty.
    Told(Address),
    /// A stranger who wrote without an invite: waiting for an answer, or ignored.
    Request(Address),
    /// Written with a restored backup (empty): the sessions it brought must not send again
    /// (see `Messenger::restored_work`); deleted once they are retired.
    Restored,
    /// A group we are in: its engine state, our place in its topics, posts not yet confirmed.
    Group(GroupId),
    /// A part of a welcome into a group that came in parts, by group, sender (their identity
    /// key) and part number: kept until every part is in.
    Joining(GroupId, [u8; 32], u16),
    /// Our request to join a group by its link, kept until we are welcomed.
    Asked(GroupId),
    /// A channel we follow or run: its link, keys, lists, cursor and newest posts.
    Channel(ChannelId),
    /// Each conversation's disappearing-message timer, and when read messages go.
    Disappearing,
    /// A part of the search index (see `search`), by number.
    Search(u32),
    /// Written once the search index holds every stored message (empty): a store from before
    /// the index has its history indexed once, at load.
    Indexed,
}

impl From<StorageKey> for RecordKey {
    fn from(key: StorageKey) -> RecordKey {
        RecordKey::Engine(key)
    }
}

impl fmt::Display for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordKey::Engine(StorageKey::Identity) => f.write_str("identity"),
            RecordKey::Engine(StorageKey::Prekeys) => f.write_str("prekeys"),
            RecordKey::Engine(StorageKey::DeliveryTokens) => f.write_str("tokens"),
            RecordKey::Engine(StorageKey::Conversation(a)) => write!(f, "session/{}", a.to_hex()),
            RecordKey::Profile => f.write_str("profile"),
            RecordKey::Contact(a) => write!(f, "contact/{}", a.to_hex()),
            RecordKey::Message(c, seq) => write!(f, "msg/{c}/{seq:016x}"),
            RecordKey::Outbox(seq) => write!(f, "outbox/{seq:016x}"),
            RecordKey::Told(a) => write!(f, "told/{}", a.to_hex()),
            RecordKey::Request(a) => write!(f, "request/{}", a.to_hex()),
            RecordKey::Restored => f.write_str("restored"),
            RecordKey::Group(g) => write!(f, "group/{}", group_hex(g)),
            RecordKey::Joining(g, from, part) => {
                write!(f, "joining/{}/{}/{part:04x}", group_hex(g), Address(*from).to_hex())
            }
            RecordKey::Asked(g) => write!(f, "asked/{}", group_hex(g)),
            RecordKey::Channel(c) => write!(f, "channel/{}", c.to_hex()),
            RecordKey::Disappearing => f.write_str("disappearing"),
            RecordKey::Indexed => f.write_str("indexed"),
            RecordKey::Search(part) => write!(f, "search/{part:08x}"),
        }
    }
}

impl RecordKey {
    /// The name a store that keys its names (the browser's) keeps this record under: the
    /// address or conversation in it replaced by `keyed` of it, so a stolen profile does not
    /// list whom its chats are with. The kind and a message's sequence number stay, so ranges
    /// still work. The record's own name ([`fmt::Display`]) travels sealed inside it.
    pub fn stored(&self, keyed: impl Fn(&str) -> String) -> String {
        match self {
            // The kind is keyed with the address, so one person's records of different kinds do
            // not share a tag (that would link them).
            RecordKey::Engine(StorageKey::Conversation(_))
            | RecordKey::Contact(_)
            | RecordKey::Told(_)
            | RecordKey::Request(_)
            | RecordKey::Group(_)
            | RecordKey::Asked(_)
            | RecordKey::Channel(_) => {
                let name = self.to_string();
                let (kind, _) = name.split_once('/').unwrap_or((&name, ""));
                format!("{kind}/{}", keyed(&name))
            }
            RecordKey::Message(c, seq) => format!("msg/{}/{seq:016x}", keyed(&format!("msg/{c}"))),
            RecordKey::Joining(g, from, part) => {
                let welcome = format!("joining/{}/{}", group_hex(g), Address(*from).to_hex());
                format!("joining/{}/{part:04x}", keyed(&welcome))
            }
            other => other.to_string(),
        }
    }

    /// Parses a name [`fmt::Display`] wrote; `None` for anything else (a newer version's
    /// records are then kept, not misread).
    pub fn parse(name: &str) -> Option<RecordKey> {
        let (kind, rest) = name.split_once('/').unwrap_or((name, ""));
        let seq = |text: &str| u64::from_str_radix(text, 16).ok();
        Some(match (kind, rest) {
            ("identity", "") => StorageKey::Identity.into(),
            ("prekeys", "") => StorageKey::Prekeys.into(),
            ("tokens", "") => StorageKey::DeliveryTokens.into(),
            ("session", a) => StorageKey::Conversation(Address::from_hex(a)?).into(),
            ("profile", "") => RecordKey::Profile,
            ("contact", a) => RecordKey::Contact(Address::from_hex(a)?),
            ("msg", rest) => {
                let (c, s) = rest.rsplit_once('/')?;
                RecordKey::Message(ConversationId::parse(c)?, seq(s)?)
            }
            ("outbox", s) => RecordKey::Outbox(seq(s)?),
            ("told", a) => RecordKey::Told(Address::from_hex(a)?),
            ("request", a) => RecordKey::Request(Address::from_hex(a)?),
            ("restored", "") => RecordKey::Restored,
            ("disappearing", "") => RecordKey::Disappearing,
            ("indexed", "") => RecordKey::Indexed,
            ("search", part) => RecordKey::Search(u32::from_str_radix(part, 16).ok()?),
            ("group", g) => RecordKey::Group(group_from_hex(g)?),
            ("asked", g) => RecordKey::Asked(group_from_hex(g)?),
            ("channel", c) => RecordKey::Channel(ChannelId::from_hex(c)?),
            ("joining", rest) => {
                let (g, rest) = rest.split_once('/')?;
                let (from, part) = rest.split_once('/')?;
                let part = u16::from_str_radix(part, 16).ok()?;
                RecordKey::Joining(group_from_hex(g)?, Address::from_hex(from)?.0, part)
            }
            _ => return None,
        })
    }
}

pub fn encode<T: Serialize>(value: &T) -> RecordBytes {
    // Serializing our own owned records cannot fail.
    sotto_engine::wipe::encode(&[RECORD_VERSION], value, 0)
        .unwrap_or_else(|_| Zeroizing::new(vec![RECORD_VERSION]))
}

/// A record whose layout is the same in every version.
pub fn decode<T: DeserializeOwned>(key: &RecordKey, bytes: &[u8]) -> Result<T, MessengerError> {
    decode_upgrading::<T, T>(key, bytes)
}

/// A record whose version-1 layout was `V1` (and the same since 2).
pub fn decode_upgrading<T: DeserializeOwned, V1: DeserializeOwned + Into<T>>(
    key: &RecordKey,
    bytes: &[u8],
) -> Result<T, MessengerError> {
    decode_versions::<T, V1, T>(key, bytes)
}

/// A record whose version-1 layout was `V1` and version-2 layout `V2` (also read for version 3,
/// and versions 4 and 5 read as the current one: only chat messages, outbox entries and groups
/// differ between 2 and 6, and `history::decode_message`, `outbox::decode_outbound` and
/// `groups::decode_group` read those).
pub fn decode_versions<T, V1, V2>(key: &RecordKey, bytes: &[u8]) -> Result<T, MessengerError>
where
    T: DeserializeOwned,
    V1: DeserializeOwned + Into<T>,
    V2: DeserializeOwned + Into<T>,
{
    let damaged = |e: postcard::Error| MessengerError::Damaged(format!("{key}: {e}"));
    match bytes.split_first() {
        Some((&(RECORD_VERSION | 4 | 5), body)) => postcard::from_bytes(body).map_err(damaged),
        Some((2 | 3, body)) => postcard::from_bytes::<V2>(body).map(Into::into).map_err(damaged),
        Some((1, body)) => postcard::from_bytes::<V1>(body).map(Into::into).map_err(damaged),
        Some((v, _)) => Err(MessengerError::Damaged(format!("{key}: unknown record version {v}"))),
        None => Err(MessengerError::Damaged(format!("{key}: empty"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_keep_their_text() {
        let a = Address([0xab; 32]);
        let hex = a.to_hex();
        let cases = [
            (RecordKey::Engine(StorageKey::Identity), "identity".to_string()),
            (StorageKey::Prekeys.into(), "prekeys".into()),
            (StorageKey::DeliveryTokens.into(), "tokens".into()),
            (StorageKey::Conversation(a).into(), format!("session/{hex}")),
            (RecordKey::Profile, "profile".into()),
            (RecordKey::Contact(a), format!("contact/{hex}")),
            (RecordKey::Message(ConversationId::Direct(a), 0x2a), format!("msg/{hex}/000000000000002a")),
            (RecordKey::Outbox(7), "outbox/0000000000000007".into()),
            (RecordKey::Told(a), format!("told/{hex}")),
            (RecordKey::Request(a), format!("request/{hex}")),
            (RecordKey::Restored, "restored".into()),
            (
                RecordKey::Joining(GroupId([0xcd; 16]), [0xab; 32], 0x1f),
                format!("joining/{}/{hex}/001f", "cd".repeat(16)),
            ),
            (RecordKey::Asked(GroupId([0xcd; 16])), format!("asked/{}", "cd".repeat(16))),
            (RecordKey::Disappearing, "disappearing".into()),
            (RecordKey::Indexed, "indexed".into()),
            (RecordKey::Search(0x1f), "search/0000001f".into()),
        ];
        for (key, name) in cases {
            assert_eq!(key.to_string(), name);
            assert_eq!(RecordKey::parse(&name), Some(key));
        }
        let no_seq = format!("msg/{hex}");
        for bad in ["", "identity/x", "session/zz", "msg/zz/1", no_seq.as_str(), "outbox/g", "later/1"] {
            assert_eq!(RecordKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stored_names_hide_addresses_but_keep_kinds_and_order() {
        let a = Address([0xab; 32]);
        // A stand-in key: the part's text, reversed (so the test can see what was keyed).
        let keyed = |part: &str| format!("<{}>", part.chars().rev().collect::<String>());
        let hex: String = a.to_hex().chars().rev().collect();
        assert_eq!(RecordKey::Contact(a).stored(keyed), format!("contact/<{hex}/tcatnoc>"));
        assert_eq!(
            RecordKey::from(StorageKey::Conversation(a)).stored(keyed),
            format!("session/<{hex}/noisses>")
        );
        assert_eq!(
            RecordKey::Message(ConversationId::Direct(a), 0x2a).stored(keyed),
            format!("msg/<{hex}/gsm>/000000000000002a"),
            "the kind is keyed with the address: one person's records of each kind get their own tag"
        );
        assert_eq!(RecordKey::Profile.stored(keyed), "profile");
        assert_eq!(RecordKey::Outbox(7).stored(keyed), "outbox/0000000000000007");
    }

    #[test]
    fn unknown_versions_and_garbage_are_damage_not_panics() {
        let key = RecordKey::Profile;
        assert!(matches!(decode::<u32>(&key, &[]), Err(MessengerError::Damaged(_))));
        assert!(matches!(decode::<u32>(&key, &[9, 1]), Err(MessengerError::Damaged(_))));
        assert!(matches!(decode::<String>(&key, &[2, 200]), Err(MessengerError::Damaged(_))));
        assert_eq!(decode::<u32>(&key, &encode(&5u32)), Ok(5));
        assert_eq!(decode::<u32>(&key, &[1, 5]), Ok(5), "version 1 of an unchanged record");
    }
}
