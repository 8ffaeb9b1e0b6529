//! Durable storage behind a trait, so that a shared database can replace the embedded default
//! (redb, in `redb_store.rs`) without touching the protocol code.
//!
//! Writes come in batches applied in one durable transaction: the relay's writer thread groups
//! whatever arrived while the previous commit was running (group commit), so many `Send`s share
//! one fsync.

mod channels;
mod redb_store;
mod topics;

pub use channels::{Block, ChannelRecord, StoredReport};
pub use redb_store::RedbStore;

use serde::{Deserialize, Serialize};
use sotto_shared::channel::{AdminList, ChannelId};
use sotto_shared::frames::{IdentityPublic, OneTimePrekey, PrekeyBundle, SignedPrekey};
use sotto_shared::{Address, MessageId};
use std::path::PathBuf;
use thiserror::Error;

/// Bumped whenever a table's layout changes. A store one version older is migrated when opened;
/// any other version is refused.
pub const SCHEMA_VERSION: u64 = 5;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("store at {path} has schema version {found}, this relay needs {SCHEMA_VERSION}")]
    SchemaMismatch { path: PathBuf, found: u64 },
    #[error("stored record is damaged: {0}")]
    Corrupt(String),
    #[error("stored record has version {found}, this relay reads version {expected}")]
    RecordVersion { found: u8, expected: u8 },
    #[error("storage error: {0}")]
    Db(String),
}

/// Version of [`StoredEnvelope`] records.
pub const ENVELOPE_RECORD_VERSION: u8 = 1;

/// An envelope as kept for its recipient. Stored records are versioned (`v`), checked on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEnvelope {
    pub v: u8,
    /// Position in the relay-wide arrival order; delivery is in this order.
    pub seq: u64,
    pub id: MessageId,
    pub received_at: u64,
    pub expires_at: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// Version of the stored identity record (`identities` table).
pub const IDENTITY_RECORD_VERSION: u8 = 1;

/// A published identity with its current signed prekey, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    pub v: u8,
    pub identity: IdentityPublic,
    pub signed: SignedPrekey,
}

/// An envelope to store for `to`. Its `seq` is allocated by the writer when it is queued, so
/// that online recipients can get it before it is committed (see `writer.rs`).
#[derive(Debug)]
pub struct NewEnvelope {
    pub seq: u64,
    pub to: Address,
    pub id: MessageId,
    pub received_at: u64,
    pub expires_at: u64,
    pub payload: Vec<u8>,
    /// Sent without the mailbox's delivery token: counted against the stranger quota.
    pub stranger: bool,
}

/// How the store names a topic: `SHA-256("sotto-topic-key-v1" || topic id)`. The id itself
/// (the read capability) is never written down, so a copy of the store cannot be used to read
/// a topic live.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopicKey(pub [u8; 32]);

impl TopicKey {
    pub fn of(topic: &sotto_shared::TopicId) -> TopicKey {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"sotto-topic-key-v1");
        h.update(topic.0);
        TopicKey(h.finalize().into())
    }
}

impl std::fmt::Debug for TopicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicKey({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// Version of [`StoredPost`] records.
pub const STORED_POST_VERSION: u8 = 1;

/// A post as kept in its topic's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPost {
    pub v: u8,
    pub seq: u64,
    pub id: MessageId,
    pub received_at: u64,
    pub expires_at: u64,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// A post to append; `write_hash` is the hash of the write key presented with it.
#[derive(Debug)]
pub struct NewPost {
    pub topic: TopicKey,
    pub write_hash: [u8; 32],
    pub id: MessageId,
    pub received_at: u64,
    pub expires_at: u64,
    pub payload: Vec<u8>,
    /// A channel's post, checked against the admin list it names (`list`): taken only while
    /// that list is the channel's newest and the channel is not blocked.
    pub channel: Option<(ChannelId, u32)>,
}

/// A channel as readers and the operator see it: its record, its kept admin lists (oldest
/// first) and the operator's block, if any.
#[derive(Debug, Clone)]
pub struct ChannelView {
    pub record: ChannelRecord,
    pub lists: Vec<AdminList>,
    pub block: Option<Block>,
}

/// What subscribing needs to know of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicInfo {
    pub write_hash: [u8; 32],
    /// Set while the topic holds no post: when it will be forgotten.
    pub idle_until: Option<u64>,
}

/// One page of a topic's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPage {
    pub posts: Vec<StoredPost>,
    /// The oldest post kept (`next_seq` when none is).
    pub first: u64,
    /// The number the next post will get.
    pub next_seq: u64,
    /// The last post the page read (kept or expired): the next page starts after it.
    pub last: Option<u64>,
    /// More posts follow this page.
    pub more: bool,
}

/// One change, applied together with the rest of its batch.
#[derive(Debug)]
pub enum Write {
    Enqueue(NewEnvelope),
    Ack {
        mailbox: Address,
        ids: Vec<MessageId>,
    },
    /// Records that a mailbox exists (its owner logged in); mail to unknown mailboxes is refused.
    Register {
        identity: IdentityPublic,
    },
    /// Sets the hash of the mailbox's delivery token.
    PublishToken {
        mailbox: Address,
        hash: [u8; 32],
    },
    PutPrekeys {
        identity: IdentityPublic,
        signed: SignedPrekey,
        one_time: Vec<OneTimePrekey>,
        /// When they arrived (Unix seconds): one-time prekeys age out from then.
        now: u64,
    },
    /// Reads a bundle; `one_time` also hands out (and deletes) the oldest one-time prekey.
    TakeBundle {
        address: Address,
        one_time: bool,
    },
    /// Every sequence number below `below` has been handed out (some envelopes are never
    /// written, such as those acknowledged within the commit window): the store's `next_seq`
    /// moves past them.
    Numbered {
        below: u64,
    },
    /// Opens a topic (or keeps an empty one from being forgotten).
    OpenTopic {
        topic: TopicKey,
        write_hash: [u8; 32],
        now: u64,
    },
    /// Appends a post to a topic's log, dropping its oldest posts past the topic quotas.
    Post(NewPost),
    /// Deletes at most `limit` envelopes whose TTL ended by `now`, found through the expiry
    /// index, at most `limit` one-time prekeys held longer than
    /// `ONE_TIME_PREKEY_LIFETIME_SECS`, found through their age index, at most `limit` expired
    /// posts, and at most `limit` topics that held nothing for `TOPIC_IDLE_SECS`.
    Purge {
        now: u64,
        limit: usize,
    },
    /// Opens a channel with its first admin list, or keeps a newer one (signature checked by
    /// the caller).
    ChannelList {
        owner: [u8; 32],
        list: AdminList,
    },
    /// Counts a subscriber (a random per-channel member token) from `now`.
    Member {
        channel: ChannelId,
        member: [u8; 16],
        now: u64,
    },
    /// Stops counting a subscriber.
    Leave {
        channel: ChannelId,
        member: [u8; 16],
    },
    /// Adds `(seq, views)` to a channel's posts.
    Views {
        channel: ChannelId,
        views: Vec<(u64, u64)>,
    },
    /// The operator blocks a channel (`Some`) or lifts its block.
    Block {
        channel: ChannelId,
        block: Option<Block>,
    },
    /// A subscriber's report, for the operator.
    Report(Box<StoredReport>),
    /// The operator is done with report `number`.
    Dismiss {
        number: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    Enqueued,
    /// The recipient acknowledged it in the same batch: nothing needed storing.
    EnqueuedAndAcked,
    /// The mailbox already holds an envelope with this id: nothing was stored.
    Duplicate,
    MailboxFull,
    Acked {
        removed: u32,
        /// Payload bytes freed.
        bytes: u64,
    },
    /// `new`: the mailbox was not known before.
    Registered {
        new: bool,
    },
    TokenPublished,
    Numbered,
    PrekeysStored {
        one_time: u32,
        /// How many of them are new (duplicates of stored ones are not counted twice).
        added: u32,
        /// The identity record was created by this upload.
        new_owner: bool,
    },
    /// Prekeys or a token for a mailbox that was never opened by a login.
    NotRegistered,

    /// More one-time prekeys than one identity may keep.
    TooManyPrekeys,
    Bundle {
        bundle: Option<Box<PrekeyBundle>>,
        remaining: u32,
    },
    Purged {
        removed: u64,
        /// Payload bytes freed.
        bytes: u64,
        /// One-time prekeys dropped for age.
        prekeys: u64,
        /// Posts dropped for age, and their payload bytes.
        posts: u64,
        post_bytes: u64,
        /// Topics forgotten after a long silence.
        topics: u64,
        /// Channel members no longer counted (not seen for 30 days).
        members: u64,
    },
    /// `new`: the topic did not exist before.
    TopicOpened {
        new: bool,
    },
    /// The write key presented does not match the topic's.
    WrongWriteKey,
    NoSuchTopic,
    /// The post (`size` payload bytes) got number `seq`; `dropped` older posts (`freed`
    /// payload bytes) left the log to keep it within its quotas.
    Posted {
        seq: u64,
        size: u64,
        dropped: u64,
        freed: u64,
    },
    /// A channel's admin list was kept; `new`: the channel was opened by it.
    ChannelStored {
        new: bool,
    },
    /// A list no newer than the channel's newest (or by another owner), or a post under a list
    /// that is not the newest.
    StaleList,
    ChannelBlocked,
    NoSuchChannel,
    /// A count, view or block was applied; nothing was added or removed.
    Counted,
    /// A member was counted for the first time (a record more in the store).
    MemberAdded,
    /// A member stopped being counted (a record less).
    MemberLeft,
    /// `MAX_REPORTS` reports are waiting already.
    ReportsFull,
    /// A report was kept (`new`), or one of the same post counted one more reporter: its
    /// number and the stored bytes it added.
    Reported {
        number: u64,
        bytes: u64,
        new: bool,
    },
    /// A report was dismissed: the stored size it freed (0 if there was none).
    Dismissed {
        bytes: u64,
    },
}

/// Counts over the whole store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub envelopes: u64,
    pub payload_bytes: u64,
    pub one_time_prekeys: u64,
    pub owners: u64,
    pub posts: u64,
    pub post_bytes: u64,
    pub topics: u64,
    pub channels: u64,
    pub members: u64,
    pub reports: u64,
    pub report_bytes: u64,
}

/// What the relay must know about a mailbox before it accepts (and forwards) an envelope for it,
/// read in one snapshot of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxView {
    /// The owner has logged in at least once.
    pub exists: bool,
    /// The hash of the owner's delivery token, once published.
    pub token_hash: Option<[u8; 32]>,
    /// Envelopes stored from senders without the token.
    pub strangers: u64,
    /// An envelope with this id is already stored for the mailbox.
    pub duplicate: bool,
    /// Envelopes and payload bytes stored for the mailbox.
    pub usage: (u64, u64),
    /// The store's next sequence number in this snapshot: every envelope numbered below it has
    /// been settled (stored or refused) in this snapshot.
    pub next_seq: u64,
}

/// Per-mailbox quotas, checked inside the write transaction.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    pub max_envelopes: u64,
    pub max_bytes: u64,
    /// Of `max_envelopes`, how many may come from senders without the delivery token.
    pub max_stranger_envelopes: u64,
    pub max_one_time_prekeys: u32,
    /// A topic's log keeps at most this many posts and payload bytes; the oldest go first.
    pub max_topic_posts: u64,
    pub max_topic_bytes: u64,
}

/// A read-only view of the store at one moment.
pub trait Snapshot: Send + Sync {
    /// Every envelope numbered below this was settled (stored or not) in this snapshot.
    fn next_seq(&self) -> u64;
    /// The mailbox's state as an envelope `id` for it is admitted.
    fn mailbox_view(&self, mailbox: &Address, id: &MessageId) -> Result<MailboxView, StoreError>;
}

pub trait Store: Send + Sync + 'static {
    /// Applies `batch` in one durable transaction; results are in batch order. When this
    /// returns `Ok`, every result is on disk.
    fn write(&self, batch: Vec<Write>, quotas: &Quotas) -> Result<Vec<WriteResult>, StoreError>;
    /// Unexpired envelopes for `mailbox` with `seq > after`, oldest first, at most `limit`.
    fn backlog(
        &self,
        mailbox: &Address,
        after: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// How many one-time prekeys `address` still has, or `None` if it never uploaded any.
    fn prekeys_remaining(&self, address: &Address) -> Result<Option<u32>, StoreError>;
    /// The next unused envelope sequence number.
    fn next_seq(&self) -> Result<u64, StoreError>;
    /// A consistent read-only view of the store as it is now, for admitting envelopes. Taking
    /// one costs more than using it: the writer shares one until its next commit settles.
    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StoreError>;
    /// The mailbox's state as an envelope `id` for it is admitted, in a fresh snapshot.
    fn mailbox_view(&self, mailbox: &Address, id: &MessageId) -> Result<MailboxView, StoreError> {
        self.snapshot()?.mailbox_view(mailbox, id)
    }
    /// Envelopes and bytes queued for one mailbox.
    fn queued(&self, mailbox: &Address) -> Result<(u64, u64), StoreError>;
    /// What the store holds in all (for metrics and the storage budget at start-up).
    fn totals(&self) -> Result<Totals, StoreError>;
    /// A topic's write hash and idle deadline, or `None` if nobody opened it.
    fn topic(&self, topic: &TopicKey) -> Result<Option<TopicInfo>, StoreError>;
    /// Unexpired posts of a topic numbered above `after`, oldest first, at most `max_posts` or
    /// (past the first) `max_bytes` of payload; `None` if the topic does not exist.
    fn topic_page(
        &self,
        topic: &TopicKey,
        after: u64,
        now: u64,
        max_posts: usize,
        max_bytes: usize,
    ) -> Result<Option<TopicPage>, StoreError>;
    /// The post `id` of a topic, if its log still holds it.
    fn topic_post(&self, topic: &TopicKey, id: &MessageId) -> Result<Option<StoredPost>, StoreError>;
    /// A channel, or `None` if nobody opened it.
    fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelView>, StoreError>;
    /// Every channel the operator blocked.
    fn blocks(&self) -> Result<Vec<(ChannelId, Block)>, StoreError>;
    /// The oldest `limit` reports waiting for the operator, with their numbers.
    fn reports(&self, limit: usize) -> Result<Vec<(u64, StoredReport)>, StoreError>;
}
