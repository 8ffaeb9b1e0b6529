//! The embedded default store: one redb file, `<data-dir>/relay.redb`.
//!
//! Tables (keys → values), schema version 4 (topic logs' tables are in `topics.rs`):
//! - `meta`: `"schema_version"`, `"next_seq"` → u64
//! - `envelopes`: (mailbox, seq) → postcard `StoredEnvelope`
//! - `envelope_index`: (mailbox, message id) → (seq, payload bytes, expires_at, from a stranger):
//!   deduplication and acks
//! - `expiry`: (earliest expiry, mailbox) → () for every mailbox holding mail: a purge visits
//!   only mailboxes with something due, and never decodes an envelope. One entry per mailbox,
//!   moved only when an earlier deadline arrives, so a send costs no extra write.
//! - `mailbox_usage`: mailbox → (envelopes, bytes, envelopes from strangers, earliest expiry)
//! - `owners`: mailbox → delivery token hash (zeros until published), for every identity that
//!   logged in or published prekeys
//! - `identities`: address → postcard `StoredIdentity`
//! - `one_time_prekeys`: (address, prekey id) → X25519 public key
//! - `one_time_counts`: address → number of one-time prekeys held
//! - `one_time_ages`: (uploaded at, address, prekey id) → () for every one-time prekey held
//!   (schema 3): a purge drops the ones held too long, visiting only those
//! - `one_time_uploaded`: (address, prekey id) → uploaded at, to find a key's age entry when
//!   it is handed out (so none stays behind)

use super::channels::{self, ChannelTables};
use super::topics::{self, TopicTables};
use super::{
    Block, ChannelView, ENVELOPE_RECORD_VERSION, IDENTITY_RECORD_VERSION, MailboxView, NewEnvelope, Quotas,
    SCHEMA_VERSION, Snapshot, Store, StoreError, StoredEnvelope, StoredIdentity, StoredPost, StoredReport,
    TopicInfo, TopicKey, TopicPage, Totals, Write, WriteResult,
};
use foldhash::{HashMap, HashMapExt};
use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use sotto_shared::channel::ChannelId;
use sotto_shared::frames::{IdentityPublic, OneTimePrekey, PrekeyBundle, SignedPrekey};
use sotto_shared::limits::ONE_TIME_PREKEY_LIFETIME_SECS;
use sotto_shared::{Address, MessageId};
use std::path::Path;

type Mailbox = [u8; 32];
/// `envelope_index` value: (seq, payload bytes, expires_at, from a stranger).
type IndexEntry = (u64, u64, u64, bool);

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENVELOPES: TableDefinition<(Mailbox, u64), &[u8]> = TableDefinition::new("envelopes");
const INDEX: TableDefinition<(Mailbox, [u8; 16]), IndexEntry> = TableDefinition::new("envelope_index");
const EXPIRY: TableDefinition<(u64, Mailbox), ()> = TableDefinition::new("expiry");
const USAGE: TableDefinition<Mailbox, (u64, u64, u64, u64)> = TableDefinition::new("mailbox_usage");
const OWNERS: TableDefinition<Mailbox, [u8; 32]> = TableDefinition::new("owners");

/// An owner's token hash before one is published.
const NO_TOKEN: [u8; 32] = [0; 32];
const IDENTITIES: TableDefinition<Mailbox, &[u8]> = TableDefinition::new("identities");
const ONE_TIME: TableDefinition<(Mailbox, u32), [u8; 32]> = TableDefinition::new("one_time_prekeys");
const ONE_TIME_COUNTS: TableDefinition<Mailbox, u32> = TableDefinition::new("one_time_counts");
const ONE_TIME_AGES: TableDefinition<(u64, Mailbox, u32), ()> = TableDefinition::new("one_time_ages");
const ONE_TIME_UPLOADED: TableDefinition<(Mailbox, u32), u64> = TableDefinition::new("one_time_uploaded");

/// Schema 1's id table, replaced by `envelope_index` (which also holds the expiry time).
const V1_IDS: TableDefinition<(Mailbox, [u8; 16]), (u64, u64)> = TableDefinition::new("envelope_ids");
/// Schema 1's usage table, replaced by `mailbox_usage` (which also counts strangers' mail).
const V1_MAILBOXES: TableDefinition<Mailbox, (u64, u64)> = TableDefinition::new("mailboxes");

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<postcard::Error> for StoreError {
    fn from(e: postcard::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

fn decode_envelope(bytes: &[u8]) -> Result<StoredEnvelope, StoreError> {
    let record: StoredEnvelope = postcard::from_bytes(bytes)?;
    if record.v != ENVELOPE_RECORD_VERSION {
        return Err(StoreError::RecordVersion { found: record.v, expected: ENVELOPE_RECORD_VERSION });
    }
    Ok(record)
}

fn decode_identity(bytes: &[u8]) -> Result<StoredIdentity, StoreError> {
    let record: StoredIdentity = postcard::from_bytes(bytes)?;
    if record.v != IDENTITY_RECORD_VERSION {
        return Err(StoreError::RecordVersion { found: record.v, expected: IDENTITY_RECORD_VERSION });
    }
    Ok(record)
}

pub struct RedbStore {
    db: Database,
}

/// One mailbox's row in `mailbox_usage`.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    count: u64,
    bytes: u64,
    strangers: u64,
    /// No envelope of the mailbox expires before this (it may be earlier than the true earliest).
    earliest: u64,
}

impl From<(u64, u64, u64, u64)> for Usage {
    fn from((count, bytes, strangers, earliest): (u64, u64, u64, u64)) -> Self {
        Usage { count, bytes, strangers, earliest }
    }
}

impl RedbStore {
    /// Opens (creating if needed) `<data_dir>/relay.redb`, checks its schema version and
    /// migrates a store of the previous version.
    pub fn open(data_dir: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join("relay.redb");
        let db = redb::Builder::new().set_cache_size(cache_bytes).create(&path)?;
        let tx = db.begin_write()?;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("schema_version")?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("schema_version", SCHEMA_VERSION)?;
                }
                Some(v) if v == SCHEMA_VERSION => {}
                Some(old @ (1..=4)) => {
                    drop(meta);
                    if old == 1 {
                        migrate_v1(&tx)?;
                    }
                    if old <= 2 {
                        migrate_v2(&tx)?;
                    }
                    // Schema 3 → 4 only adds the topic tables, 4 → 5 the channel tables, created
                    // below.
                    tx.open_table(META)?.insert("schema_version", SCHEMA_VERSION)?;
                    tracing::info!("store migrated from schema {old} to {SCHEMA_VERSION}");
                }
                Some(found) => return Err(StoreError::SchemaMismatch { path, found }),
            }
            // Create every table so that readers never meet a missing one.
            tx.open_table(ENVELOPES)?;
            tx.open_table(INDEX)?;
            tx.open_table(EXPIRY)?;
            tx.open_table(USAGE)?;
            tx.open_table(OWNERS)?;
            tx.open_table(IDENTITIES)?;
            tx.open_table(ONE_TIME)?;
            tx.open_table(ONE_TIME_COUNTS)?;
            tx.open_table(ONE_TIME_AGES)?;
            tx.open_table(ONE_TIME_UPLOADED)?;
            topics::create(&tx)?;
            channels::create(&tx)?;
        }
        tx.commit()?;
        Ok(RedbStore { db })
    }

    /// Drops the topic tables and marks the store schema 3, as a relay before topics left it.
    #[cfg(test)]
    pub(super) fn downgrade_to_schema_3_for_tests(&self) {
        let tx = self.db.begin_write().unwrap();
        tx.delete_table(topics::TOPICS).unwrap();
        tx.delete_table(topics::POSTS).unwrap();
        tx.delete_table(topics::POST_IDS).unwrap();
        tx.delete_table(topics::POST_EXPIRY).unwrap();
        tx.delete_table(topics::IDLE_TOPICS).unwrap();
        tx.open_table(META).unwrap().insert("schema_version", 3).unwrap();
        tx.commit().unwrap();
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("schema_version")?.map(|v| v.value()).unwrap_or(0))
    }
}

/// Schema 1 → 2: index envelopes (with their expiry), note every published identity as a mailbox
/// owner, and version the identity records.
fn migrate_v1(tx: &WriteTransaction) -> Result<(), StoreError> {
    {
        let envelopes = tx.open_table(ENVELOPES)?;
        let mut index = tx.open_table(INDEX)?;
        let mut earliest: HashMap<Mailbox, u64> = HashMap::new();
        for entry in envelopes.iter()? {
            let (k, v) = entry?;
            let (mailbox, seq) = k.value();
            let e = decode_envelope(v.value())?;
            // Mail stored before delivery tokens existed counts as contacts' mail.
            index.insert((mailbox, e.id.0), (seq, e.payload.len() as u64, e.expires_at, false))?;
            let t = earliest.entry(mailbox).or_insert(u64::MAX);
            *t = (*t).min(e.expires_at);
        }
        let old = tx.open_table(V1_MAILBOXES)?;
        let mut usage = tx.open_table(USAGE)?;
        let mut expiry = tx.open_table(EXPIRY)?;
        for entry in old.iter()? {
            let (k, v) = entry?;
            let (count, bytes) = v.value();
            if count == 0 {
                continue;
            }
            let t = earliest.get(&k.value()).copied().unwrap_or(0);
            usage.insert(k.value(), (count, bytes, 0, t))?;
            expiry.insert((t, k.value()), ())?;
        }
        let mut identities = tx.open_table(IDENTITIES)?;
        let mut owners = tx.open_table(OWNERS)?;
        let old: Vec<(Mailbox, (IdentityPublic, SignedPrekey))> = identities
            .iter()?
            .map(|entry| {
                let (k, v) = entry?;
                Ok((k.value(), postcard::from_bytes(v.value())?))
            })
            .collect::<Result<_, StoreError>>()?;
        for (address, (identity, signed)) in old {
            let record = StoredIdentity { v: IDENTITY_RECORD_VERSION, identity, signed };
            identities.insert(address, postcard::to_allocvec(&record)?.as_slice())?;
            owners.insert(address, NO_TOKEN)?;
        }
    }
    tx.delete_table(V1_IDS)?;
    tx.delete_table(V1_MAILBOXES)?;
    Ok(())
}

/// Schema 2 → 3: one-time prekeys get an age, counted from the migration (when they arrived
/// was not kept).
fn migrate_v2(tx: &WriteTransaction) -> Result<(), StoreError> {
    let now = crate::state::unix_now();
    let one_time = tx.open_table(ONE_TIME)?;
    let mut ages = tx.open_table(ONE_TIME_AGES)?;
    let mut uploaded = tx.open_table(ONE_TIME_UPLOADED)?;
    for entry in one_time.iter()? {
        let (mailbox, id) = entry?.0.value();
        ages.insert((now, mailbox, id), ())?;
        uploaded.insert((mailbox, id), now)?;
    }
    Ok(())
}

/// The tables one write transaction touches, opened once per batch.
struct Tables<'t> {
    meta: redb::Table<'t, &'static str, u64>,
    envelopes: redb::Table<'t, (Mailbox, u64), &'static [u8]>,
    index: redb::Table<'t, (Mailbox, [u8; 16]), IndexEntry>,
    expiry: redb::Table<'t, (u64, Mailbox), ()>,
    mailboxes: redb::Table<'t, Mailbox, (u64, u64, u64, u64)>,
    owners: redb::Table<'t, Mailbox, [u8; 32]>,
    identities: redb::Table<'t, Mailbox, &'static [u8]>,
    one_time: redb::Table<'t, (Mailbox, u32), [u8; 32]>,
    one_time_counts: redb::Table<'t, Mailbox, u32>,
    one_time_ages: redb::Table<'t, (u64, Mailbox, u32), ()>,
    one_time_uploaded: redb::Table<'t, (Mailbox, u32), u64>,
    /// Mailbox usage touched in this batch: as stored, and as it is now (written back once at
    /// the end of the batch).
    usage: HashMap<Mailbox, (Usage, Usage)>,
}

impl<'t> Tables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            meta: tx.open_table(META)?,
            envelopes: tx.open_table(ENVELOPES)?,
            index: tx.open_table(INDEX)?,
            expiry: tx.open_table(EXPIRY)?,
            mailboxes: tx.open_table(USAGE)?,
            owners: tx.open_table(OWNERS)?,
            identities: tx.open_table(IDENTITIES)?,
            one_time: tx.open_table(ONE_TIME)?,
            one_time_counts: tx.open_table(ONE_TIME_COUNTS)?,
            one_time_ages: tx.open_table(ONE_TIME_AGES)?,
            one_time_uploaded: tx.open_table(ONE_TIME_UPLOADED)?,
            usage: HashMap::new(),
        })
    }

    fn usage(&mut self, mailbox: &Mailbox) -> Result<Usage, StoreError> {
        if let Some((_, now)) = self.usage.get(mailbox) {
            return Ok(*now);
        }
        let stored = self.mailboxes.get(mailbox)?.map(|v| Usage::from(v.value())).unwrap_or_default();
        self.usage.insert(*mailbox, (stored, stored));
        Ok(stored)
    }

    /// Call after `usage` for the same mailbox.
    fn set_usage(&mut self, mailbox: &Mailbox, usage: Usage) {
        self.usage.entry(*mailbox).or_insert((Usage::default(), usage)).1 = usage;
    }

    /// Writes back the usage rows this batch changed, and moves each mailbox's expiry entry
    /// when its earliest deadline changed (or drops it with the last envelope).
    fn flush_usage(&mut self) -> Result<(), StoreError> {
        for (mailbox, (stored, usage)) in std::mem::take(&mut self.usage) {
            let old_key = (stored.count > 0).then_some((stored.earliest, mailbox));
            let new_key = (usage.count > 0).then_some((usage.earliest, mailbox));
            if old_key != new_key {
                if let Some(k) = old_key {
                    self.expiry.remove(k)?;
                }
                if let Some(k) = new_key {
                    self.expiry.insert(k, ())?;
                }
            }
            if usage.count == 0 {
                self.mailboxes.remove(mailbox)?;
            } else {
                self.mailboxes
                    .insert(mailbox, (usage.count, usage.bytes, usage.strangers, usage.earliest))?;
            }
        }
        Ok(())
    }

    /// Takes one envelope out of a mailbox's usage.
    fn release(&mut self, mailbox: &Mailbox, size: u64, stranger: bool) -> Result<(), StoreError> {
        let mut u = self.usage(mailbox)?;
        u.count = u.count.saturating_sub(1);
        u.bytes = u.bytes.saturating_sub(size);
        if stranger {
            u.strangers = u.strangers.saturating_sub(1);
        }
        self.set_usage(mailbox, u);
        Ok(())
    }

    /// Stores an envelope. The relay admitted it already (see `writer.rs`); the duplicate and
    /// quota checks here are a backstop that keeps the store consistent on its own.
    fn enqueue(
        &mut self,
        next_seq: &mut u64,
        quotas: &Quotas,
        envelope: NewEnvelope,
    ) -> Result<WriteResult, StoreError> {
        let NewEnvelope { seq, to, id, received_at, expires_at, payload, stranger } = envelope;
        *next_seq = (*next_seq).max(seq + 1);
        if self.index.get((to.0, id.0))?.is_some() {
            return Ok(WriteResult::Duplicate);
        }
        let u = self.usage(&to.0)?;
        let size = payload.len() as u64;
        if u.count + 1 > quotas.max_envelopes
            || u.bytes + size > quotas.max_bytes
            || (stranger && u.strangers + 1 > quotas.max_stranger_envelopes)
        {
            return Ok(WriteResult::MailboxFull);
        }
        let record = StoredEnvelope { v: ENVELOPE_RECORD_VERSION, seq, id, received_at, expires_at, payload };
        let encoded = postcard::to_allocvec(&record)?;
        self.envelopes.insert((to.0, seq), encoded.as_slice())?;
        self.index.insert((to.0, id.0), (seq, size, expires_at, stranger))?;
        // An ack leaves `earliest` as it was: possibly too early, which only makes a purge look
        // at the mailbox once for nothing (and then correct it).
        let earliest = if u.count == 0 { expires_at } else { u.earliest.min(expires_at) };
        self.set_usage(
            &to.0,
            Usage {
                count: u.count + 1,
                bytes: u.bytes + size,
                strangers: u.strangers + u64::from(stranger),
                earliest,
            },
        );
        Ok(WriteResult::Enqueued)
    }

    fn ack(&mut self, mailbox: Address, ids: &[MessageId]) -> Result<WriteResult, StoreError> {
        let (mut removed, mut freed) = (0, 0);
        for id in ids {
            let Some((seq, size, _, stranger)) = self.index.remove((mailbox.0, id.0))?.map(|v| v.value())
            else {
                continue;
            };
            self.envelopes.remove((mailbox.0, seq))?;
            self.release(&mailbox.0, size, stranger)?;
            removed += 1;
            freed += size;
        }
        Ok(WriteResult::Acked { removed, bytes: freed })
    }

    fn register(&mut self, identity: &IdentityPublic) -> Result<WriteResult, StoreError> {
        let address = Address::from_identity_key(&identity.signing_key).0;
        if self.owners.get(address)?.is_some() {
            return Ok(WriteResult::Registered { new: false });
        }
        self.owners.insert(address, NO_TOKEN)?;
        Ok(WriteResult::Registered { new: true })
    }

    /// Only for an opened mailbox: a token creates nothing.
    fn publish_token(&mut self, mailbox: Address, hash: [u8; 32]) -> Result<WriteResult, StoreError> {
        if self.owners.get(mailbox.0)?.is_none() {
            return Ok(WriteResult::NotRegistered);
        }
        self.owners.insert(mailbox.0, hash)?;
        Ok(WriteResult::TokenPublished)
    }

    fn one_time_count(&self, address: &Mailbox) -> Result<u32, StoreError> {
        Ok(self.one_time_counts.get(address)?.map(|v| v.value()).unwrap_or(0))
    }

    fn put_prekeys(
        &mut self,
        quotas: &Quotas,
        identity: IdentityPublic,
        signed: SignedPrekey,
        one_time: &[OneTimePrekey],
        now: u64,
    ) -> Result<WriteResult, StoreError> {
        let address = Address::from_identity_key(&identity.signing_key).0;
        // Uploads go to mailboxes a login opened (logins are limited per address).
        if self.owners.get(address)?.is_none() {
            return Ok(WriteResult::NotRegistered);
        }
        let new_owner = self.identities.get(address)?.is_none();
        let mut count = self.one_time_count(&address)?;
        let mut fresh = Vec::with_capacity(one_time.len());
        for k in one_time {
            if self.one_time.get((address, k.id))?.is_none() {
                fresh.push(k);
            }
        }
        if count as usize + fresh.len() > quotas.max_one_time_prekeys as usize {
            return Ok(WriteResult::TooManyPrekeys);
        }
        let record = StoredIdentity { v: IDENTITY_RECORD_VERSION, identity, signed };
        self.identities.insert(address, postcard::to_allocvec(&record)?.as_slice())?;
        let added = fresh.len() as u32;
        for k in fresh {
            self.one_time.insert((address, k.id), k.key)?;
            self.one_time_ages.insert((now, address, k.id), ())?;
            self.one_time_uploaded.insert((address, k.id), now)?;
            count += 1;
        }
        self.one_time_counts.insert(address, count)?;
        Ok(WriteResult::PrekeysStored { one_time: count, added, new_owner })
    }

    fn take_bundle(&mut self, address: Address, with_one_time: bool) -> Result<WriteResult, StoreError> {
        let Some(raw) = self.identities.get(address.0)? else {
            return Ok(WriteResult::Bundle { bundle: None, remaining: 0 });
        };
        let StoredIdentity { identity, signed: signed_prekey, .. } = decode_identity(raw.value())?;
        drop(raw);
        // Hand out the oldest one-time prekey (lowest id) exactly once.
        let first = if with_one_time {
            self.one_time
                .range((address.0, 0)..=(address.0, u32::MAX))?
                .next()
                .transpose()?
                .map(|(k, v)| (k.value().1, v.value()))
        } else {
            None
        };
        let mut remaining = self.one_time_count(&address.0)?;
        let one_time_prekey = match first {
            Some((id, key)) => {
                self.one_time.remove((address.0, id))?;
                if let Some(at) = self.one_time_uploaded.remove((address.0, id))?.map(|v| v.value()) {
                    self.one_time_ages.remove((at, address.0, id))?;
                }
                remaining = remaining.saturating_sub(1);
                self.one_time_counts.insert(address.0, remaining)?;
                Some(OneTimePrekey { id, key })
            }
            None => None,
        };
        let bundle = PrekeyBundle { identity, signed_prekey, one_time_prekey };
        Ok(WriteResult::Bundle { bundle: Some(Box::new(bundle)), remaining })
    }

    /// Visits the mailboxes whose earliest deadline has passed (through the expiry index) and
    /// deletes their expired envelopes, reading only their index entries; at most `limit`.
    fn purge(&mut self, now: u64, limit: usize) -> Result<WriteResult, StoreError> {
        let mut due = Vec::new();
        for entry in self.expiry.range((0, [0; 32])..=(now, [0xff; 32]))? {
            due.push(entry?.0.value().1);
        }
        let (mut removed, mut freed) = (0u64, 0u64);
        for mailbox in due {
            let mut expired = Vec::new();
            let mut earliest = u64::MAX;
            for entry in self.index.range((mailbox, [0; 16])..=(mailbox, [0xff; 16]))? {
                let (k, v) = entry?;
                let (seq, size, expires_at, stranger) = v.value();
                if expires_at <= now && removed as usize + expired.len() < limit {
                    expired.push((k.value().1, seq, size, stranger));
                } else {
                    earliest = earliest.min(expires_at);
                }
            }
            for (id, seq, size, stranger) in &expired {
                self.index.remove((mailbox, *id))?;
                self.envelopes.remove((mailbox, *seq))?;
                self.release(&mailbox, *size, *stranger)?;
                freed += size;
            }
            removed += expired.len() as u64;
            let mut u = self.usage(&mailbox)?;
            u.earliest = earliest;
            self.set_usage(&mailbox, u);
            if removed as usize >= limit {
                break;
            }
        }
        let prekeys = self.purge_prekeys(now.saturating_sub(ONE_TIME_PREKEY_LIFETIME_SECS), limit)?;
        Ok(WriteResult::Purged {
            removed,
            bytes: freed,
            prekeys,
            posts: 0,
            post_bytes: 0,
            topics: 0,
            members: 0,
        })
    }

    /// Drops at most `limit` one-time prekeys uploaded before `before`; returns how many.
    fn purge_prekeys(&mut self, before: u64, limit: usize) -> Result<u64, StoreError> {
        let mut old = Vec::new();
        for entry in self.one_time_ages.range((0, [0; 32], 0)..(before, [0; 32], 0))?.take(limit) {
            old.push(entry?.0.value());
        }
        let mut dropped = 0;
        for (at, mailbox, id) in old {
            self.one_time_ages.remove((at, mailbox, id))?;
            self.one_time_uploaded.remove((mailbox, id))?;
            if self.one_time.remove((mailbox, id))?.is_some() {
                let count = self.one_time_count(&mailbox)?.saturating_sub(1);
                self.one_time_counts.insert(mailbox, count)?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }
}

/// The topic tables of a write transaction, opened on first use.
fn open_topics<'a, 't>(
    tx: &'t WriteTransaction,
    tables: &'a mut Option<TopicTables<'t>>,
) -> Result<&'a mut TopicTables<'t>, StoreError> {
    if tables.is_none() {
        *tables = Some(TopicTables::open(tx)?);
    }
    tables.as_mut().ok_or_else(|| StoreError::Db("topic tables".into()))
}

/// The channel tables of a write transaction, opened on first use.
fn open_tables<'a, 't>(
    tx: &'t WriteTransaction,
    tables: &'a mut Option<ChannelTables<'t>>,
) -> Result<&'a mut ChannelTables<'t>, StoreError> {
    if tables.is_none() {
        *tables = Some(ChannelTables::open(tx)?);
    }
    tables.as_mut().ok_or_else(|| StoreError::Db("channel tables".into()))
}

/// Tables opened once in one read transaction (opening a table costs more than a lookup).
struct RedbSnapshot {
    owners: redb::ReadOnlyTable<Mailbox, [u8; 32]>,
    index: redb::ReadOnlyTable<(Mailbox, [u8; 16]), IndexEntry>,
    usage: redb::ReadOnlyTable<Mailbox, (u64, u64, u64, u64)>,
    next_seq: u64,
}

impl Snapshot for RedbSnapshot {
    fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn mailbox_view(&self, mailbox: &Address, id: &MessageId) -> Result<MailboxView, StoreError> {
        let owner = self.owners.get(mailbox.0)?.map(|v| v.value());
        let duplicate = self.index.get((mailbox.0, id.0))?.is_some();
        let u = self.usage.get(mailbox.0)?.map(|v| Usage::from(v.value())).unwrap_or_default();
        Ok(MailboxView {
            exists: owner.is_some(),
            token_hash: owner.filter(|h| *h != NO_TOKEN),
            strangers: u.strangers,
            duplicate,
            usage: (u.count, u.bytes),
            next_seq: self.next_seq,
        })
    }
}

impl Store for RedbStore {
    fn write(&self, batch: Vec<Write>, quotas: &Quotas) -> Result<Vec<WriteResult>, StoreError> {
        let tx = self.db.begin_write()?;
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut t = Tables::open(&tx)?;
            // Opened only by batches with topic work: most batches are mailbox sends and acks.
            let mut topic_tables: Option<TopicTables> = None;
            let mut channel_tables: Option<ChannelTables> = None;
            let mut next_seq = t.meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
            let start_seq = next_seq;
            for op in batch {
                let r = match op {
                    Write::Enqueue(envelope) => t.enqueue(&mut next_seq, quotas, envelope)?,
                    Write::Ack { mailbox, ids } => t.ack(mailbox, &ids)?,
                    Write::Register { identity } => t.register(&identity)?,
                    Write::PublishToken { mailbox, hash } => t.publish_token(mailbox, hash)?,
                    Write::PutPrekeys { identity, signed, one_time, now } => {
                        t.put_prekeys(quotas, identity, signed, &one_time, now)?
                    }
                    Write::TakeBundle { address, one_time } => t.take_bundle(address, one_time)?,
                    Write::Purge { now, limit } => {
                        let mut r = t.purge(now, limit)?;
                        let purged = open_topics(&tx, &mut topic_tables)?.purge(now, limit)?;
                        let gone = open_tables(&tx, &mut channel_tables)?.purge(now, limit)?;
                        if let WriteResult::Purged { posts, post_bytes, topics, members, .. } = &mut r {
                            (*posts, *post_bytes, *topics) = (purged.posts, purged.bytes, purged.topics);
                            *members = gone;
                        }
                        r
                    }
                    Write::OpenTopic { topic, write_hash, now } => {
                        open_topics(&tx, &mut topic_tables)?.open_topic(topic, write_hash, now)?
                    }
                    Write::Post(post) => {
                        let refused = match post.channel {
                            Some((channel, list)) => {
                                open_tables(&tx, &mut channel_tables)?.may_post(&channel, list)?
                            }
                            None => None,
                        };
                        match refused {
                            Some(refusal) => refusal,
                            None => open_topics(&tx, &mut topic_tables)?.post(quotas, post)?,
                        }
                    }
                    Write::ChannelList { owner, list } => {
                        open_tables(&tx, &mut channel_tables)?.put_list(owner, &list)?
                    }
                    Write::Member { channel, member, now } => {
                        open_tables(&tx, &mut channel_tables)?.member(&channel, member, now)?
                    }
                    Write::Leave { channel, member } => {
                        open_tables(&tx, &mut channel_tables)?.leave(&channel, member)?
                    }
                    Write::Views { channel, views } => {
                        open_tables(&tx, &mut channel_tables)?.add_views(&channel, &views)?
                    }
                    Write::Block { channel, block } => {
                        open_tables(&tx, &mut channel_tables)?.block(&channel, block)?
                    }
                    Write::Report(report) => open_tables(&tx, &mut channel_tables)?.report(&report)?,
                    Write::Dismiss { number } => open_tables(&tx, &mut channel_tables)?.dismiss(number)?,
                    Write::Numbered { below } => {
                        next_seq = next_seq.max(below);
                        WriteResult::Numbered
                    }
                };
                results.push(r);
            }
            if next_seq != start_seq {
                t.meta.insert("next_seq", next_seq)?;
            }
            t.flush_usage()?;
        }
        tx.commit()?;
        Ok(results)
    }

    fn backlog(
        &self,
        mailbox: &Address,
        after: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(ENVELOPES)?;
        let mut out = Vec::new();
        for entry in table.range((mailbox.0, after.saturating_add(1))..=(mailbox.0, u64::MAX))? {
            let (_, v) = entry?;
            let record = decode_envelope(v.value())?;
            if record.expires_at > now {
                out.push(record);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn prekeys_remaining(&self, address: &Address) -> Result<Option<u32>, StoreError> {
        let tx = self.db.begin_read()?;
        let counts = tx.open_table(ONE_TIME_COUNTS)?;
        Ok(counts.get(address.0)?.map(|v| v.value()))
    }

    fn next_seq(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1))
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>, StoreError> {
        let tx = self.db.begin_read()?;
        let next_seq = tx.open_table(META)?.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
        Ok(Box::new(RedbSnapshot {
            owners: tx.open_table(OWNERS)?,
            index: tx.open_table(INDEX)?,
            usage: tx.open_table(USAGE)?,
            next_seq,
        }))
    }

    fn queued(&self, mailbox: &Address) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read()?;
        let u = tx.open_table(USAGE)?.get(mailbox.0)?.map(|v| Usage::from(v.value())).unwrap_or_default();
        Ok((u.count, u.bytes))
    }

    fn totals(&self) -> Result<Totals, StoreError> {
        let tx = self.db.begin_read()?;
        let mut totals = Totals::default();
        for entry in tx.open_table(USAGE)?.iter()? {
            let (c, b, ..) = entry?.1.value();
            totals.envelopes += c;
            totals.payload_bytes += b;
        }
        for entry in tx.open_table(ONE_TIME_COUNTS)?.iter()? {
            totals.one_time_prekeys += u64::from(entry?.1.value());
        }
        totals.owners = tx.open_table(OWNERS)?.len()?;
        (totals.posts, totals.post_bytes, totals.topics) = topics::totals(&tx)?;
        (totals.channels, totals.members, totals.reports, totals.report_bytes) = channels::totals(&tx)?;
        Ok(totals)
    }

    fn topic(&self, topic: &TopicKey) -> Result<Option<TopicInfo>, StoreError> {
        topics::info(&self.db.begin_read()?, topic)
    }

    fn topic_page(
        &self,
        topic: &TopicKey,
        after: u64,
        now: u64,
        max_posts: usize,
        max_bytes: usize,
    ) -> Result<Option<TopicPage>, StoreError> {
        topics::page(&self.db.begin_read()?, topic, after, now, max_posts, max_bytes)
    }

    fn topic_post(&self, topic: &TopicKey, id: &MessageId) -> Result<Option<StoredPost>, StoreError> {
        topics::find(&self.db.begin_read()?, topic, id)
    }

    fn channel(&self, channel: &ChannelId) -> Result<Option<ChannelView>, StoreError> {
        channels::channel(&self.db.begin_read()?, channel)
    }

    fn blocks(&self) -> Result<Vec<(ChannelId, Block)>, StoreError> {
        channels::blocks(&self.db.begin_read()?)
    }

    fn reports(&self, limit: usize) -> Result<Vec<(u64, StoredReport)>, StoreError> {
        channels::reports(&self.db.begin_read()?, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quotas = Quotas {
        max_envelopes: 3,
        max_bytes: 1000,
        max_stranger_envelopes: 3,
        max_one_time_prekeys: 5,
        max_topic_posts: 3,
        max_topic_bytes: 1000,
    };

    fn enqueue(seq: u64, to: u8, id: u8, expires_at: u64) -> Write {
        Write::Enqueue(NewEnvelope {
            seq,
            to: Address([to; 32]),
            id: MessageId([id; 16]),
            received_at: 1,
            expires_at,
            payload: vec![id; 10],
            stranger: false,
        })
    }

    #[test]
    fn enqueue_dedup_quota_ack_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
            assert_eq!(s.next_seq().unwrap(), 1);
            let r = s
                .write(vec![enqueue(1, 1, 1, 100), enqueue(2, 1, 1, 100), enqueue(3, 1, 2, 100)], &Q)
                .unwrap();
            assert_eq!(r, vec![WriteResult::Enqueued, WriteResult::Duplicate, WriteResult::Enqueued]);
            let r = s.write(vec![enqueue(4, 1, 3, 100), enqueue(5, 1, 4, 100)], &Q).unwrap();
            assert_eq!(r, vec![WriteResult::Enqueued, WriteResult::MailboxFull]);
            let t = s.totals().unwrap();
            assert_eq!((t.envelopes, t.payload_bytes), (3, 30));
        }
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.next_seq().unwrap(), 6, "allocated numbers are never reused, stored or not");
        let backlog = s.backlog(&Address([1; 32]), 0, 50, 10).unwrap();
        assert_eq!(backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(s.backlog(&Address([1; 32]), 3, 50, 10).unwrap().len(), 1);
        let ack = Write::Ack { mailbox: Address([1; 32]), ids: vec![MessageId([1; 16]), MessageId([9; 16])] };
        assert_eq!(s.write(vec![ack], &Q).unwrap(), vec![WriteResult::Acked { removed: 1, bytes: 10 }]);
        assert_eq!(s.totals().unwrap().payload_bytes, 20);
        assert_eq!(s.queued(&Address([1; 32])).unwrap(), (2, 20));
        // Another mailbox's ack cannot remove ours.
        s.write(vec![Write::Ack { mailbox: Address([2; 32]), ids: vec![MessageId([2; 16])] }], &Q).unwrap();
        assert_eq!(s.totals().unwrap().envelopes, 2);
    }

    #[test]
    fn the_mailbox_view_sees_owners_duplicates_usage_and_the_settled_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let identity = owner_identity();
        let owner = Address::from_identity_key(&[7; 32]);
        let view = s.mailbox_view(&owner, &MessageId([1; 16])).unwrap();
        let empty = MailboxView {
            exists: false,
            token_hash: None,
            strangers: 0,
            duplicate: false,
            usage: (0, 0),
            next_seq: 1,
        };
        assert_eq!(view, empty);
        let r = s.write(vec![Write::Register { identity }, Write::Register { identity }], &Q).unwrap();
        assert_eq!(r, vec![WriteResult::Registered { new: true }, WriteResult::Registered { new: false }]);
        s.write(vec![enqueue(4, 0, 1, 100)], &Q).unwrap();
        let mut e = enqueue(5, 0, 1, 100);
        if let Write::Enqueue(e) = &mut e {
            e.to = owner;
        }
        s.write(vec![e], &Q).unwrap();
        let view = s.mailbox_view(&owner, &MessageId([1; 16])).unwrap();
        assert_eq!(view, MailboxView { exists: true, duplicate: true, usage: (1, 10), next_seq: 6, ..empty });
        s.write(vec![Write::PublishToken { mailbox: owner, hash: [3; 32] }], &Q).unwrap();
        s.write(vec![Write::Register { identity }], &Q).unwrap();
        assert_eq!(
            s.mailbox_view(&owner, &MessageId([1; 16])).unwrap().token_hash,
            Some([3; 32]),
            "kept on login"
        );
        assert_eq!(s.totals().unwrap().owners, 1);
    }

    #[test]
    fn purge_reads_only_the_expiry_index_and_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let q = Quotas { max_envelopes: 100, ..Q };
        s.write(
            vec![enqueue(1, 1, 1, 10), enqueue(2, 1, 2, 100), enqueue(3, 2, 3, 5), enqueue(4, 2, 4, 12)],
            &q,
        )
        .unwrap();
        assert_eq!(s.backlog(&Address([1; 32]), 0, 20, 10).unwrap().len(), 1);
        assert_eq!(
            s.write(vec![Write::Purge { now: 20, limit: 2 }], &q).unwrap(),
            vec![WriteResult::Purged {
                removed: 2,
                bytes: 20,
                prekeys: 0,
                posts: 0,
                post_bytes: 0,
                topics: 0,
                members: 0
            }]
        );
        assert_eq!(
            s.write(vec![Write::Purge { now: 20, limit: 10 }], &q).unwrap(),
            vec![WriteResult::Purged {
                removed: 1,
                bytes: 10,
                prekeys: 0,
                posts: 0,
                post_bytes: 0,
                topics: 0,
                members: 0
            }]
        );
        let t = s.totals().unwrap();
        assert_eq!((t.envelopes, t.payload_bytes), (1, 10));
        // A purged envelope's id is forgotten, and acking it again removes nothing.
        let ack = Write::Ack { mailbox: Address([2; 32]), ids: vec![MessageId([3; 16])] };
        assert_eq!(s.write(vec![ack], &q).unwrap(), vec![WriteResult::Acked { removed: 0, bytes: 0 }]);
    }

    #[test]
    fn a_record_of_an_unknown_version_is_refused_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let record = StoredEnvelope {
            v: 9,
            seq: 1,
            id: MessageId([1; 16]),
            received_at: 0,
            expires_at: 99,
            payload: vec![],
        };
        let tx = s.db.begin_write().unwrap();
        tx.open_table(ENVELOPES)
            .unwrap()
            .insert(([1; 32], 1), postcard::to_allocvec(&record).unwrap().as_slice())
            .unwrap();
        tx.commit().unwrap();
        assert!(matches!(
            s.backlog(&Address([1; 32]), 0, 50, 10),
            Err(StoreError::RecordVersion { found: 9, expected: 1 })
        ));
    }

    #[test]
    fn a_schema_1_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A schema-1 store as the previous release wrote it.
            let db = Database::create(dir.path().join("relay.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert("schema_version", 1).unwrap();
            tx.open_table(META).unwrap().insert("next_seq", 3).unwrap();
            let e = StoredEnvelope {
                v: 1,
                seq: 2,
                id: MessageId([5; 16]),
                received_at: 1,
                expires_at: 10,
                payload: vec![1, 2, 3],
            };
            tx.open_table(ENVELOPES)
                .unwrap()
                .insert(([1; 32], 2), postcard::to_allocvec(&e).unwrap().as_slice())
                .unwrap();
            tx.open_table(V1_IDS).unwrap().insert(([1; 32], [5; 16]), (2, 3)).unwrap();
            tx.open_table(V1_MAILBOXES).unwrap().insert([1; 32], (1, 3)).unwrap();
            let identity = IdentityPublic {
                signing_key: [7; 32],
                dh_key: [8; 32],
                dh_signature: sotto_shared::frames::Signature([0; 64]),
            };
            let signed =
                SignedPrekey { id: 1, key: [9; 32], signature: sotto_shared::frames::Signature([0; 64]) };
            let owner = Address::from_identity_key(&[7; 32]).0;
            tx.open_table(IDENTITIES)
                .unwrap()
                .insert(owner, postcard::to_allocvec(&(identity, signed)).unwrap().as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let owner = Address::from_identity_key(&[7; 32]);
        assert!(s.mailbox_view(&owner, &MessageId([0; 16])).unwrap().exists);
        assert!(s.mailbox_view(&Address([1; 32]), &MessageId([5; 16])).unwrap().duplicate);
        let r = s.write(vec![Write::TakeBundle { address: owner, one_time: true }], &Q).unwrap();
        assert!(matches!(&r[0], WriteResult::Bundle { bundle: Some(b), .. } if b.signed_prekey.id == 1));
        let r = s.write(vec![Write::Purge { now: 11, limit: 10 }], &Q).unwrap();
        assert_eq!(
            r,
            vec![WriteResult::Purged {
                removed: 1,
                bytes: 3,
                prekeys: 0,
                posts: 0,
                post_bytes: 0,
                topics: 0,
                members: 0
            }]
        );
    }

    /// The identity whose mailbox the prekey tests use (signatures are not checked here).
    fn owner_identity() -> IdentityPublic {
        IdentityPublic {
            signing_key: [7; 32],
            dh_key: [8; 32],
            dh_signature: sotto_shared::frames::Signature([0; 64]),
        }
    }

    fn prekeys(ids: std::ops::Range<u32>, now: u64) -> Write {
        let identity = owner_identity();
        let signed =
            SignedPrekey { id: 1, key: [9; 32], signature: sotto_shared::frames::Signature([0; 64]) };
        let one_time = ids.map(|id| OneTimePrekey { id, key: [id as u8; 32] }).collect();
        Write::PutPrekeys { identity, signed, one_time, now }
    }

    /// One-time prekeys nobody took are dropped once held for their lifetime, found through
    /// their age index; one handed out meanwhile leaves nothing behind.
    #[test]
    fn unused_one_time_prekeys_age_out() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let owner = Address::from_identity_key(&[7; 32]);
        let identity = owner_identity();
        s.write(vec![Write::Register { identity }], &Q).unwrap();
        s.write(vec![prekeys(10..13, 100), prekeys(13..14, 200)], &Q).unwrap();
        let r = s.write(vec![Write::TakeBundle { address: owner, one_time: true }], &Q).unwrap();
        assert!(
            matches!(&r[0], WriteResult::Bundle { bundle: Some(b), .. } if b.one_time_prekey.unwrap().id == 10)
        );
        let ages = || s.db.begin_read().unwrap().open_table(ONE_TIME_AGES).unwrap().len().unwrap();
        assert_eq!(ages(), 3, "the key handed out left no age entry behind (outside the storage budget)");
        let purge = |now| s.write(vec![Write::Purge { now, limit: 10 }], &Q).unwrap();
        let dropped = |r: Vec<WriteResult>| match r[..] {
            [WriteResult::Purged { prekeys, .. }] => prekeys,
            _ => panic!("{r:?}"),
        };
        assert_eq!(dropped(purge(100 + ONE_TIME_PREKEY_LIFETIME_SECS)), 0, "not before their lifetime");
        assert_eq!(dropped(purge(101 + ONE_TIME_PREKEY_LIFETIME_SECS)), 2, "11 and 12; 10 was handed out");
        assert_eq!(s.prekeys_remaining(&owner).unwrap(), Some(1));
        let r = s.write(vec![Write::TakeBundle { address: owner, one_time: true }], &Q).unwrap();
        assert!(
            matches!(&r[0], WriteResult::Bundle { bundle: Some(b), .. } if b.one_time_prekey.unwrap().id == 13)
        );
        assert_eq!(dropped(purge(u64::MAX)), 0);
        let tx = s.db.begin_read().unwrap();
        assert_eq!(tx.open_table(ONE_TIME_AGES).unwrap().len().unwrap(), 0, "no age entry stays behind");
        assert_eq!(tx.open_table(ONE_TIME_UPLOADED).unwrap().len().unwrap(), 0);
    }

    /// A schema-2 store's one-time prekeys get an age from the migration on.
    #[test]
    fn a_schema_2_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::from_identity_key(&[7; 32]);
        {
            let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
            let identity = IdentityPublic {
                signing_key: [7; 32],
                dh_key: [8; 32],
                dh_signature: sotto_shared::frames::Signature([0; 64]),
            };
            s.write(vec![Write::Register { identity }, prekeys(1..4, 5)], &Q).unwrap();
            let tx = s.db.begin_write().unwrap();
            tx.delete_table(ONE_TIME_AGES).unwrap();
            tx.open_table(META).unwrap().insert("schema_version", 2).unwrap();
            tx.commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let now = crate::state::unix_now();
        let r = s
            .write(vec![Write::Purge { now: now + ONE_TIME_PREKEY_LIFETIME_SECS - 5, limit: 10 }], &Q)
            .unwrap();
        assert!(matches!(r[..], [WriteResult::Purged { prekeys: 0, .. }]), "counted from the migration");
        let r = s
            .write(vec![Write::Purge { now: now + ONE_TIME_PREKEY_LIFETIME_SECS + 5, limit: 10 }], &Q)
            .unwrap();
        assert!(matches!(r[..], [WriteResult::Purged { prekeys: 3, .. }]));
        assert_eq!(s.prekeys_remaining(&owner).unwrap(), Some(0));
    }

    #[test]
    fn schema_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
            let tx = s.db.begin_write().unwrap();
            tx.open_table(META).unwrap().insert("schema_version", 99).unwrap();
            tx.commit().unwrap();
        }
        assert!(matches!(
            RedbStore::open(dir.path(), 1 << 20),
            Err(StoreError::SchemaMismatch { found: 99, .. })
        ));
    }
}
