//! The embedded default store: one redb file, `<data-dir>/relay.redb`.
//!
//! Tables (keys → values):
//! - `meta`: `"schema_version"`, `"next_seq"` → u64
//! - `envelopes`: (mailbox, seq) → postcard `StoredEnvelope`
//! - `envelope_ids`: (mailbox, message id) → (seq, payload bytes) (deduplication and acks)
//! - `mailboxes`: mailbox → (envelopes, bytes) queued
//! - `identities`: address → postcard (`IdentityPublic`, `SignedPrekey`)
//! - `one_time_prekeys`: (address, prekey id) → X25519 public key
//! - `one_time_counts`: address → number of one-time prekeys held

use super::{NewEnvelope, Quotas, SCHEMA_VERSION, Store, StoreError, StoredEnvelope, Write, WriteResult};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use sotto_shared::frames::{IdentityPublic, OneTimePrekey, PrekeyBundle, SignedPrekey};
use sotto_shared::{Address, MessageId};
use std::collections::HashMap;
use std::path::Path;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const ENVELOPES: TableDefinition<([u8; 32], u64), &[u8]> = TableDefinition::new("envelopes");
const IDS: TableDefinition<([u8; 32], [u8; 16]), (u64, u64)> = TableDefinition::new("envelope_ids");
const MAILBOXES: TableDefinition<[u8; 32], (u64, u64)> = TableDefinition::new("mailboxes");
const IDENTITIES: TableDefinition<[u8; 32], &[u8]> = TableDefinition::new("identities");
const ONE_TIME: TableDefinition<([u8; 32], u32), [u8; 32]> = TableDefinition::new("one_time_prekeys");
const ONE_TIME_COUNTS: TableDefinition<[u8; 32], u32> = TableDefinition::new("one_time_counts");

/// Most expired envelopes one purge removes, so a purge never holds the writer for long.
const PURGE_BATCH: usize = 50_000;

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

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (creating if needed) `<data_dir>/relay.redb` and checks its schema version.
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
                Some(found) => return Err(StoreError::SchemaMismatch { path, found }),
            }
            // Create every table so that readers never meet a missing one.
            tx.open_table(ENVELOPES)?;
            tx.open_table(IDS)?;
            tx.open_table(MAILBOXES)?;
            tx.open_table(IDENTITIES)?;
            tx.open_table(ONE_TIME)?;
            tx.open_table(ONE_TIME_COUNTS)?;
        }
        tx.commit()?;
        Ok(RedbStore { db })
    }

    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read()?;
        let meta = tx.open_table(META)?;
        Ok(meta.get("schema_version")?.map(|v| v.value()).unwrap_or(0))
    }
}

/// The tables one write transaction touches, opened once per batch.
struct Tables<'t> {
    meta: redb::Table<'t, &'static str, u64>,
    envelopes: redb::Table<'t, ([u8; 32], u64), &'static [u8]>,
    ids: redb::Table<'t, ([u8; 32], [u8; 16]), (u64, u64)>,
    mailboxes: redb::Table<'t, [u8; 32], (u64, u64)>,
    identities: redb::Table<'t, [u8; 32], &'static [u8]>,
    one_time: redb::Table<'t, ([u8; 32], u32), [u8; 32]>,
    one_time_counts: redb::Table<'t, [u8; 32], u32>,
    /// Mailbox usage changed in this batch, written back once at the end of it.
    usage: HashMap<[u8; 32], (u64, u64)>,
}

impl<'t> Tables<'t> {
    fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            meta: tx.open_table(META)?,
            envelopes: tx.open_table(ENVELOPES)?,
            ids: tx.open_table(IDS)?,
            mailboxes: tx.open_table(MAILBOXES)?,
            identities: tx.open_table(IDENTITIES)?,
            one_time: tx.open_table(ONE_TIME)?,
            one_time_counts: tx.open_table(ONE_TIME_COUNTS)?,
            usage: HashMap::new(),
        })
    }

    fn usage(&self, mailbox: &[u8; 32]) -> Result<(u64, u64), StoreError> {
        if let Some(u) = self.usage.get(mailbox) {
            return Ok(*u);
        }
        Ok(self.mailboxes.get(mailbox)?.map(|v| v.value()).unwrap_or((0, 0)))
    }

    fn set_usage(&mut self, mailbox: &[u8; 32], usage: (u64, u64)) {
        self.usage.insert(*mailbox, usage);
    }

    fn flush_usage(&mut self) -> Result<(), StoreError> {
        for (mailbox, usage) in std::mem::take(&mut self.usage) {
            if usage.0 == 0 {
                self.mailboxes.remove(mailbox)?;
            } else {
                self.mailboxes.insert(mailbox, usage)?;
            }
        }
        Ok(())
    }

    fn enqueue(
        &mut self,
        next_seq: &mut u64,
        quotas: &Quotas,
        envelope: NewEnvelope,
    ) -> Result<WriteResult, StoreError> {
        let NewEnvelope { seq, to, id, received_at, expires_at, payload } = envelope;
        *next_seq = (*next_seq).max(seq + 1);
        if self.ids.get((to.0, id.0))?.is_some() {
            return Ok(WriteResult::Duplicate);
        }
        let (count, bytes) = self.usage(&to.0)?;
        let size = payload.len() as u64;
        if count + 1 > quotas.max_envelopes || bytes + size > quotas.max_bytes {
            return Ok(WriteResult::MailboxFull);
        }
        let record = StoredEnvelope { v: 1, seq, id, received_at, expires_at, payload };
        let encoded = postcard::to_allocvec(&record)?;
        self.envelopes.insert((to.0, seq), encoded.as_slice())?;
        self.ids.insert((to.0, id.0), (seq, size))?;
        self.set_usage(&to.0, (count + 1, bytes + size));
        Ok(WriteResult::Enqueued)
    }

    fn ack(&mut self, mailbox: Address, ids: &[MessageId]) -> Result<WriteResult, StoreError> {
        let (mut count, mut bytes) = self.usage(&mailbox.0)?;
        let mut removed = 0;
        for id in ids {
            let Some((seq, size)) = self.ids.remove((mailbox.0, id.0))?.map(|v| v.value()) else { continue };
            self.envelopes.remove((mailbox.0, seq))?;
            removed += 1;
            count = count.saturating_sub(1);
            bytes = bytes.saturating_sub(size);
        }
        self.set_usage(&mailbox.0, (count, bytes));
        Ok(WriteResult::Acked { removed })
    }

    fn one_time_count(&self, address: &[u8; 32]) -> Result<u32, StoreError> {
        Ok(self.one_time_counts.get(address)?.map(|v| v.value()).unwrap_or(0))
    }

    fn put_prekeys(
        &mut self,
        quotas: &Quotas,
        identity: IdentityPublic,
        signed: SignedPrekey,
        one_time: &[OneTimePrekey],
    ) -> Result<WriteResult, StoreError> {
        let address = Address::from_identity_key(&identity.signing_key).0;
        let mut count = self.one_time_count(&address)?;
        let fresh: Vec<_> = one_time
            .iter()
            .filter(|k| self.one_time.get((address, k.id)).map(|v| v.is_none()).unwrap_or(false))
            .collect();
        if count as usize + fresh.len() > quotas.max_one_time_prekeys as usize {
            return Ok(WriteResult::TooManyPrekeys);
        }
        let record = postcard::to_allocvec(&(identity, signed))?;
        self.identities.insert(address, record.as_slice())?;
        for k in fresh {
            self.one_time.insert((address, k.id), k.key)?;
            count += 1;
        }
        self.one_time_counts.insert(address, count)?;
        Ok(WriteResult::PrekeysStored { one_time: count })
    }

    fn take_bundle(&mut self, address: Address) -> Result<WriteResult, StoreError> {
        let Some(raw) = self.identities.get(address.0)? else {
            return Ok(WriteResult::Bundle { bundle: None, remaining: 0 });
        };
        let (identity, signed_prekey): (IdentityPublic, SignedPrekey) = postcard::from_bytes(raw.value())?;
        drop(raw);
        // Hand out the oldest one-time prekey (lowest id) exactly once.
        let first = self
            .one_time
            .range((address.0, 0)..=(address.0, u32::MAX))?
            .next()
            .transpose()?
            .map(|(k, v)| (k.value().1, v.value()));
        let mut remaining = self.one_time_count(&address.0)?;
        let one_time_prekey = match first {
            Some((id, key)) => {
                self.one_time.remove((address.0, id))?;
                remaining = remaining.saturating_sub(1);
                self.one_time_counts.insert(address.0, remaining)?;
                Some(OneTimePrekey { id, key })
            }
            None => None,
        };
        let bundle = PrekeyBundle { identity, signed_prekey, one_time_prekey };
        Ok(WriteResult::Bundle { bundle: Some(Box::new(bundle)), remaining })
    }

    fn purge(&mut self, now: u64) -> Result<WriteResult, StoreError> {
        let mut expired = Vec::new();
        for entry in self.envelopes.iter()? {
            let (k, v) = entry?;
            let record: StoredEnvelope = postcard::from_bytes(v.value())?;
            if record.expires_at <= now {
                expired.push((k.value().0, k.value().1, record.id, record.payload.len() as u64));
                if expired.len() >= PURGE_BATCH {
                    break;
                }
            }
        }
        for (mailbox, seq, id, size) in &expired {
            self.envelopes.remove((*mailbox, *seq))?;
            self.ids.remove((*mailbox, id.0))?;
            let (count, bytes) = self.usage(mailbox)?;
            self.set_usage(mailbox, (count.saturating_sub(1), bytes.saturating_sub(*size)));
        }
        Ok(WriteResult::Purged { removed: expired.len() as u64 })
    }
}

impl Store for RedbStore {
    fn write(&self, batch: Vec<Write>, quotas: &Quotas) -> Result<Vec<WriteResult>, StoreError> {
        let tx = self.db.begin_write()?;
        let mut results = Vec::with_capacity(batch.len());
        {
            let mut t = Tables::open(&tx)?;
            let mut next_seq = t.meta.get("next_seq")?.map(|v| v.value()).unwrap_or(1);
            let start_seq = next_seq;
            for op in batch {
                let r = match op {
                    Write::Enqueue(envelope) => t.enqueue(&mut next_seq, quotas, envelope)?,
                    Write::Ack { mailbox, ids } => t.ack(mailbox, &ids)?,
                    Write::PutPrekeys { identity, signed, one_time } => {
                        t.put_prekeys(quotas, identity, signed, &one_time)?
                    }
                    Write::TakeBundle { address } => t.take_bundle(address)?,
                    Write::Purge { now } => t.purge(now)?,
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
            let record: StoredEnvelope = postcard::from_bytes(v.value())?;
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

    fn queued(&self, mailbox: &Address) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read()?;
        let mailboxes = tx.open_table(MAILBOXES)?;
        Ok(mailboxes.get(mailbox.0)?.map(|v| v.value()).unwrap_or((0, 0)))
    }

    fn totals(&self) -> Result<(u64, u64), StoreError> {
        let tx = self.db.begin_read()?;
        let mailboxes = tx.open_table(MAILBOXES)?;
        let mut total = (0, 0);
        for entry in mailboxes.iter()? {
            let (_, v) = entry?;
            let (c, b) = v.value();
            total.0 += c;
            total.1 += b;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quotas = Quotas { max_envelopes: 3, max_bytes: 1000, max_one_time_prekeys: 5 };

    fn enqueue(seq: u64, to: u8, id: u8, expires_at: u64) -> Write {
        Write::Enqueue(NewEnvelope {
            seq,
            to: Address([to; 32]),
            id: MessageId([id; 16]),
            received_at: 1,
            expires_at,
            payload: vec![id; 10],
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
            assert_eq!(s.totals().unwrap(), (3, 30));
        }
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.next_seq().unwrap(), 6, "allocated numbers are never reused, stored or not");
        let backlog = s.backlog(&Address([1; 32]), 0, 50, 10).unwrap();
        assert_eq!(backlog.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(s.backlog(&Address([1; 32]), 3, 50, 10).unwrap().len(), 1);
        let ack = Write::Ack { mailbox: Address([1; 32]), ids: vec![MessageId([1; 16]), MessageId([9; 16])] };
        assert_eq!(s.write(vec![ack], &Q).unwrap(), vec![WriteResult::Acked { removed: 1 }]);
        assert_eq!(s.totals().unwrap(), (2, 20));
        assert_eq!(s.queued(&Address([1; 32])).unwrap(), (2, 20));
        // Another mailbox's ack cannot remove ours.
        s.write(vec![Write::Ack { mailbox: Address([2; 32]), ids: vec![MessageId([2; 16])] }], &Q).unwrap();
        assert_eq!(s.totals().unwrap(), (2, 20));
    }

    #[test]
    fn expired_envelopes_are_hidden_then_purged() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        s.write(vec![enqueue(1, 1, 1, 10), enqueue(2, 1, 2, 100)], &Q).unwrap();
        assert_eq!(s.backlog(&Address([1; 32]), 0, 20, 10).unwrap().len(), 1);
        assert_eq!(
            s.write(vec![Write::Purge { now: 20 }], &Q).unwrap(),
            vec![WriteResult::Purged { removed: 1 }]
        );
        assert_eq!(s.totals().unwrap(), (1, 10));
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
