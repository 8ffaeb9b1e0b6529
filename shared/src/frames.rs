//! The frames exchanged over `/ws`. See docs/protocol.md for the conversation they make up.
//!
//! Variants are only ever appended: postcard encodes the variant index, so reordering would
//! silently change the meaning of old frames. A breaking change bumps `codec::WIRE_VERSION`.

use crate::channel::{AdminList, ChannelId, ChannelPost, ChannelState};
use crate::ids::{Address, MessageId, TopicId, WriteKey};
pub use crate::signature::Signature;
use serde::{Deserialize, Serialize};

/// The public half of an identity: Ed25519 signing key, and an X25519 key signed by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityPublic {
    pub signing_key: [u8; 32],
    pub dh_key: [u8; 32],
    /// Ed25519 signature by `signing_key` over `"sotto-identity-dh-v1" || dh_key`.
    pub dh_signature: Signature,
}

/// A medium-term X25519 prekey signed by the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPrekey {
    pub id: u32,
    pub key: [u8; 32],
    /// Ed25519 signature by the identity over `"sotto-signed-prekey-v1" || id (BE) || key`.
    pub signature: Signature,
}

/// A single-use X25519 prekey.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneTimePrekey {
    pub id: u32,
    pub key: [u8; 32],
}

/// What someone needs to start a session with an identity (X3DH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrekeyBundle {
    pub identity: IdentityPublic,
    pub signed_prekey: SignedPrekey,
    pub one_time_prekey: Option<OneTimePrekey>,
}

/// Client → relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// First frame on a connection. `client` is a short free-text agent name.
    Hello { client: String },
    /// Proves ownership of an identity: Ed25519 signature over
    /// `"sotto-auth-v1" || len(origin) (u16 BE) || origin || challenge`.
    Authenticate { identity: Box<IdentityPublic>, signature: Signature },
    /// Sealed-sender send of an opaque envelope to a mailbox.
    Send {
        id: MessageId,
        to: Address,
        ttl_secs: u32,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// The recipient has stored these envelopes; the relay may delete them.
    Ack { ids: Vec<MessageId> },
    /// Replace the signed prekey and add one-time prekeys (authenticated only).
    UploadPrekeys { signed_prekey: SignedPrekey, one_time: Vec<OneTimePrekey> },
    /// Ask for a prekey bundle of a mailbox (hands out at most one one-time prekey).
    FetchBundle { address: Address },
    /// Keep-alive; the relay answers `Pong` with the same value.
    Ping { nonce: u64 },
    /// Sets the mailbox's delivery token: `hash` is [`delivery_token_hash`] of a secret the
    /// owner gives only to its contacts (authenticated only).
    PublishDeliveryToken { hash: [u8; 32] },
    /// `Send` by someone who holds the recipient's delivery token: counted against the
    /// mailbox's quota for contacts instead of the small one for strangers.
    SendAsContact {
        id: MessageId,
        to: Address,
        ttl_secs: u32,
        token: [u8; 32],
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Reads topics' logs: the kept posts after each cursor, then new posts as they come
    /// (unauthenticated connections only). A topic nobody opened yet is opened with
    /// `write_hash`; a topic that exists must have been opened with the same one.
    Subscribe { topics: Vec<Subscription> },
    /// Appends a post to a topic's log (unauthenticated connections only); answered by `Sent`
    /// once durable. `write` must hash to the topic's `write_hash`.
    Post {
        id: MessageId,
        topic: TopicId,
        write: WriteKey,
        ttl_secs: u32,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Stops reading a topic on this connection.
    Unsubscribe { topic: TopicId },
    /// Opens a channel, or replaces its admin list with a newer one signed by `owner`, whose
    /// key the channel's id is of (unauthenticated connections only). Answered by
    /// `ChannelState`.
    ChannelAdmins { owner: [u8; 32], list: Box<AdminList> },
    /// Reads a channel: its `ChannelState`, then its kept posts after `after` and new ones as
    /// they come, as `Posted`/`Subscribed` of `channel.topic()` (unauthenticated connections
    /// only). `member` is random, made by the reader for this channel alone: it is counted once
    /// among the subscribers, and names nobody.
    SubscribeChannel { channel: ChannelId, after: u64, member: [u8; 16] },
    /// An admin's post; answered by `Sent { id: post.id() }` once durable.
    PublishPost { post: Box<ChannelPost>, ttl_secs: u32 },
    /// Stops counting `member` among the channel's subscribers (and reading it here).
    LeaveChannel { channel: ChannelId, member: [u8; 16] },
    /// Reports a post to the relay's operator with the key that opens it (and no other post);
    /// answered by `Reported { id: post.id() }`.
    ReportPost { post: Box<ChannelPost>, key: [u8; 32], reason: String },
    /// Asks for the channel's `ChannelState` again (counts).
    ChannelCounts { channel: ChannelId },
    /// A sealed envelope for `to`'s open connections only, never stored (someone is typing):
    /// passed on as `Live` if `token` is `to`'s delivery token and `to` is connected, else
    /// dropped. Never answered, so it tells the sender nothing about `to`.
    SendLive {
        to: Address,
        token: [u8; 32],
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
}

/// One topic in a `Subscribe`: posts numbered above `after` are sent (0: all kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub topic: TopicId,
    /// [`topic_write_hash`] of the topic's write key.
    pub write_hash: [u8; 32],
    pub after: u64,
}

/// Relay → client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RelayFrame {
    /// Answer to `Hello`: the relay's protocol version and a fresh challenge to sign.
    Welcome {
        version: u8,
        relay: String,
        challenge: [u8; 32],
    },
    /// The connection now reads `address`'s mailbox; `queued` envelopes follow.
    Authenticated {
        address: Address,
        queued: u32,
    },
    /// The envelope `id` is durably stored (or was already).
    Sent {
        id: MessageId,
    },
    /// An envelope for this connection's mailbox. Ack it once it is stored.
    Deliver {
        id: MessageId,
        received_at: u64,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// Answer to `FetchBundle`; `None` when the mailbox has published no prekeys.
    Bundle {
        address: Address,
        bundle: Option<Box<PrekeyBundle>>,
    },
    /// The one-time prekeys the relay still holds for this identity (sent when low).
    PrekeysLow {
        remaining: u32,
    },
    /// Prekeys were stored.
    PrekeysStored {
        one_time: u32,
    },
    Pong {
        nonce: u64,
    },
    /// Something went wrong; `id` names the send it concerns, if any.
    Error {
        code: ErrorCode,
        message: String,
        id: Option<MessageId>,
    },
    /// The delivery token hash was stored.
    DeliveryTokenPublished,
    /// A post of a subscribed topic. `seq` numbers the topic's posts from 1, without gaps
    /// except where the log dropped old posts.
    Posted {
        topic: TopicId,
        seq: u64,
        received_at: u64,
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// The kept posts after the cursor up to `through` were sent. `first` is the oldest post
    /// the log still keeps (a cursor below `first - 1` missed posts that are gone). With
    /// `more`, further posts are kept: subscribe again from `through` to read them; without
    /// it, new posts now follow live.
    Subscribed {
        topic: TopicId,
        first: u64,
        through: u64,
        more: bool,
    },
    /// A channel's admin lists, counts and block (see [`ChannelState`]).
    ChannelState(Box<ChannelState>),
    /// The operator has the report of post `id`.
    Reported {
        id: MessageId,
    },
    /// An envelope a contact sent live (`SendLive`): not stored, not to be acknowledged.
    Live {
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
}

/// Why the relay refused something. Each has its own code so clients can react precisely.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame's version is not one the relay speaks; the message lists the supported ones.
    UnsupportedVersion,
    /// The frame could not be decoded.
    Malformed,
    /// The frame or envelope exceeds a size limit.
    TooLarge,
    /// The frame needs an authenticated connection.
    NotAuthenticated,
    /// The authentication signature did not verify.
    AuthFailed,
    /// Too many frames in too short a time.
    RateLimited,
    /// The recipient's mailbox holds as much as it may.
    MailboxFull,
    /// Too many connections (from this address or in total).
    TooManyConnections,
    /// A field was out of range (ttl, count, signature on a prekey…).
    InvalidRequest,
    /// The relay failed internally; the request may be retried.
    Internal,
    /// A frame arrived in the wrong order (e.g. a second `Hello`).
    Unexpected,
    /// Nobody has ever logged in to the mailbox an envelope was sent to.
    UnknownMailbox,
    /// The relay's storage budget is used up; reading and acknowledging still work.
    StoreFull,
    /// The connection did not complete its handshake, or went silent, in time.
    Timeout,
    /// No topic with that id exists (never opened, or expired after a long silence): open it
    /// again by subscribing.
    UnknownTopic,
    /// The relay's operator blocked this channel; the message gives the reason.
    Blocked,
    /// No channel with that id was opened on this relay.
    UnknownChannel,
}

impl ErrorCode {
    /// A stable lower-case name, used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Malformed => "malformed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::MailboxFull => "mailbox_full",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Internal => "internal",
            ErrorCode::Unexpected => "unexpected",
            ErrorCode::UnknownMailbox => "unknown_mailbox",
            ErrorCode::StoreFull => "store_full",
            ErrorCode::Timeout => "timeout",
            ErrorCode::UnknownTopic => "unknown_topic",
            ErrorCode::Blocked => "blocked",
            ErrorCode::UnknownChannel => "unknown_channel",
        }
    }
}

/// The exact bytes an identity signs to authenticate to a relay.
///
/// Binding the relay's origin stops a malicious relay from replaying our signature to another.
pub fn auth_message(origin: &str, challenge: &[u8; 32]) -> Vec<u8> {
    let origin = origin.as_bytes();
    let len = u16::try_from(origin.len()).unwrap_or(u16::MAX);
    let mut m = Vec::with_capacity(15 + origin.len() + 32);
    m.extend_from_slice(b"sotto-auth-v1");
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(&origin[..usize::from(len)]);
    m.extend_from_slice(challenge);
    m
}

/// What a relay stores of a delivery token: `SHA-256("sotto-delivery-token-v1" || token)`, so
/// a stolen relay database cannot be used to send as a contact.
pub fn delivery_token_hash(token: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"sotto-delivery-token-v1");
    h.update(token);
    h.finalize().into()
}

/// What a relay stores of a topic's write key: `SHA-256("sotto-topic-write-v1" || key)`.
pub fn topic_write_hash(key: &WriteKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"sotto-topic-write-v1");
    h.update(key.0);
    h.finalize().into()
}

/// The bytes an identity signs over its X25519 key.
pub fn identity_dh_message(dh_key: &[u8; 32]) -> Vec<u8> {
    [b"sotto-identity-dh-v1".as_slice(), dh_key].concat()
}

/// The bytes an identity signs over a signed prekey.
pub fn signed_prekey_message(id: u32, key: &[u8; 32]) -> Vec<u8> {
    [b"sotto-signed-prekey-v1".as_slice(), &id.to_be_bytes(), key].concat()
}
