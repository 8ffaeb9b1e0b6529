//! How the messenger's records lie in the browser's store (and in backups), layout 2:
//!
//! - each under a keyed name that does not say whom it concerns (`RecordKey::stored`);
//! - its value sealed with the vault, bound to that name, carrying the record's own name and
//!   the *epoch* it was written in (the store's commit counter);
//! - a sealed `index` holding the current epoch and, for every record of the kinds an old copy
//!   of which would do harm ([`is_tracked`]: the engine's keys and sessions, the profile,
//!   contacts, groups), the epoch it was last written in. Reading a record checks it against the
//!   index, so an old copy put back in its place, or a record removed, is noticed. (A whole
//!   store put back as it was, index included, is not: nothing outside it remembers.)
//!
//! Beside them lie two raw records: the vault header and the layout. Stores written before
//! names were keyed (layout 1: the name in the clear, sealed with it as associated data, no
//! epochs) are upgraded when opened.

use serde::{Deserialize, Serialize};
use sotto_engine::random::OsEntropy;
use sotto_engine::vault::{Names, Vault};
use sotto_messenger::{RecordBytes, RecordKey, RecordRange, StoreError};
use std::collections::BTreeMap;

/// The vault header (raw).
pub const VAULT_RECORD: &str = "vault";
/// The layout of the other records (raw, `[LAYOUT]`); absent in layout-1 stores.
pub const LAYOUT_RECORD: &str = "layout";
pub const LAYOUT: u8 = 2;
/// The index of epochs (sealed).
pub const INDEX_RECORD: &str = "index";

/// Whether `name` is one of the raw records, not sealed.
pub fn is_raw(name: &str) -> bool {
    name == VAULT_RECORD || name == LAYOUT_RECORD
}

/// The raw layout record, for a store written in this layout.
pub fn layout_record() -> (String, Vec<u8>) {
    (LAYOUT_RECORD.to_string(), vec![LAYOUT])
}

/// Kinds the index lists record by record: an old copy of a session would reuse message keys,
/// of prekeys revive spent ones, of a contact undo a verification or a warning.
pub fn is_tracked(key: &RecordKey) -> bool {
    matches!(key, RecordKey::Engine(_) | RecordKey::Profile | RecordKey::Contact(_) | RecordKey::Group(_))
}

/// The current epoch and the epoch of every tracked record, by the record's own name (the
/// index is sealed, so the names in it say nothing to anyone without the key, and it does not
/// change when the names key does).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub epoch: u64,
    pub records: BTreeMap<String, u64>,
}

impl Index {
    /// Checks a record read from the store against the index.
    pub fn check(&self, key: &RecordKey, epoch: u64) -> Result<(), StoreError> {
        let current = if is_tracked(key) {
            self.records.get(&key.to_string()) == Some(&epoch)
        } else {
            epoch <= self.epoch
        };
        if current {
            Ok(())
        } else {
            Err(StoreError::Damaged(format!("{key}: an older copy was put back in its place")))
        }
    }

    /// A record the index lists is missing.
    pub fn check_absent(&self, key: &RecordKey) -> Result<(), StoreError> {
        match is_tracked(key) && self.records.contains_key(&key.to_string()) {
            true => Err(StoreError::Damaged(format!("{key}: removed from the store"))),
            false => Ok(()),
        }
    }

    /// The part of the index a read of `range` is checked against (taken when the read starts,
    /// since later commits move the index on).
    pub fn part(&self, range: &RecordRange) -> Index {
        let (lower, upper) = range.bounds();
        // An empty range (from ≥ to) has nothing in it (`BTreeMap::range` would panic on it).
        let mut records = BTreeMap::new();
        // Inserted one by one: `collect` into a map would build in a sort of its own (size).
        if lower < upper {
            for (k, v) in self.records.range(lower..upper) {
                records.insert(k.clone(), *v);
            }
        }
        Index { epoch: self.epoch, records }
    }

    /// The part of the index a read of `key` is checked against.
    pub fn entry(&self, key: &RecordKey) -> Index {
        let name = key.to_string();
        let mut records = BTreeMap::new();
        if let Some(e) = self.records.get(&name) {
            records.insert(name, *e);
        }
        Index { epoch: self.epoch, records }
    }

    /// A new epoch, for a commit.
    pub fn advance(&mut self) -> u64 {
        self.epoch += 1;
        self.epoch
    }

    /// A write of the commit in the current epoch.
    pub fn note(&mut self, key: &RecordKey, written: bool) {
        if is_tracked(key) {
            if written {
                self.records.insert(key.to_string(), self.epoch);
            } else {
                self.records.remove(&key.to_string());
            }
        }
    }
}

/// Seals `body` as the record `key` under `vault`, in `epoch`: its stored name and value.
pub fn seal(
    vault: &Vault,
    names: &Names,
    key: &RecordKey,
    epoch: u64,
    body: &[u8],
) -> Result<(String, Vec<u8>), StoreError> {
    let stored = key.stored(|part| names.keyed(part));
    let sealed = vault
        .seal_named(&stored, &key.to_string(), epoch, body, &mut OsEntropy)
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok((stored, sealed))
}

/// A record opened from the store.
pub struct Opened {
    pub key: RecordKey,
    pub epoch: u64,
    pub body: RecordBytes,
}

/// Opens the record stored under `stored`. One whose name does not belong where it is stored
/// is damage.
pub fn open(vault: &Vault, names: &Names, stored: &str, sealed: &[u8]) -> Result<Opened, StoreError> {
    open_known(vault, names, stored, sealed)?.ok_or_else(|| {
        StoreError::Damaged(format!("{stored}: a record of a kind this version does not know"))
    })
}

/// Like [`open`], but `None` for a record of a kind this version does not know (a newer
/// version's), which cannot be re-keyed.
pub fn open_known(
    vault: &Vault,
    names: &Names,
    stored: &str,
    sealed: &[u8],
) -> Result<Option<Opened>, StoreError> {
    let named =
        vault.open_named(stored, sealed).map_err(|e| StoreError::Damaged(format!("{stored}: {e}")))?;
    match RecordKey::parse(&named.name) {
        None => Ok(None),
        Some(key) if key.stored(|part| names.keyed(part)) != stored => {
            Err(StoreError::Damaged(format!("{stored}: holds another record")))
        }
        Some(key) => Ok(Some(Opened { key, epoch: named.epoch, body: named.body })),
    }
}

/// Opens a record of layout 1 (stored under its own name, no epoch).
pub fn open_layout_1(vault: &Vault, name: &str, sealed: &[u8]) -> Result<Opened, StoreError> {
    let key = RecordRange::parse(name)?;
    let body = vault.open(name, sealed).map_err(|e| StoreError::Damaged(format!("{name}: {e}")))?;
    Ok(Opened { key, epoch: 0, body })
}

/// The sealed index record.
pub fn seal_index(vault: &Vault, index: &Index) -> Result<(String, Vec<u8>), StoreError> {
    let body = sotto_engine::wipe::encode(&[], index, 0).map_err(|e| StoreError::Failed(e.to_string()))?;
    let sealed = vault
        .seal_named(INDEX_RECORD, INDEX_RECORD, index.epoch, &body, &mut OsEntropy)
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok((INDEX_RECORD.to_string(), sealed))
}

pub fn open_index(vault: &Vault, sealed: &[u8]) -> Result<Index, StoreError> {
    let damaged = |e: &dyn std::fmt::Display| StoreError::Damaged(format!("{INDEX_RECORD}: {e}"));
    let named = vault.open_named(INDEX_RECORD, sealed).map_err(|e| damaged(&e))?;
    if named.name != INDEX_RECORD {
        return Err(damaged(&"holds another record"));
    }
    postcard::from_bytes(&named.body).map_err(|e| damaged(&e))
}

/// A record moved from one vault to another, its epoch kept.
pub struct Moved {
    pub key: RecordKey,
    pub epoch: u64,
    pub record: (String, Vec<u8>),
}

/// Moves one record (`name`, `sealed`, laid out as `layout` says) from `from` to `to`, each a
/// vault with its names key: checked against `index` first if given (moving must not make an old
/// copy current), given epoch 0 from layout 1. `None` for a kind this version does not know (a
/// newer version's), which cannot be re-keyed: it is dropped.
pub fn reseal_one(
    name: &str,
    sealed: &[u8],
    layout: u8,
    from: (&Vault, &Names),
    to: (&Vault, &Names),
    index: Option<&Index>,
) -> Result<Option<Moved>, StoreError> {
    let opened = match layout {
        1 if RecordKey::parse(name).is_none() => return Ok(None),
        1 => open_layout_1(from.0, name, sealed)?,
        _ => match open_known(from.0, from.1, name, sealed)? {
            Some(opened) => opened,
            None => return Ok(None),
        },
    };
    if let Some(index) = index {
        index.check(&opened.key, opened.epoch)?;
    }
    let record = seal(to.0, to.1, &opened.key, opened.epoch, &opened.body)?;
    Ok(Some(Moved { key: opened.key, epoch: opened.epoch, record }))
}

/// Re-seals every record of `records` (raw ones left out) from one vault to another, epochs
/// kept: a backup's own key, a restored backup's new one. `layout` is how `records` lie; in
/// layout 2 each record is checked against the index first and every listed one must be there,
/// from layout 1 the records get epoch 0 and a new index.
pub fn reseal_all(
    records: &[(String, Vec<u8>)],
    layout: u8,
    from: &Vault,
    to: &Vault,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let (from_names, to_names) = (names(from)?, names(to)?);
    let old = match layout {
        1 => None,
        _ => {
            let sealed = records.iter().find(|(name, _)| name == INDEX_RECORD).map(|(_, v)| v);
            Some(open_index(from, sealed.ok_or_else(|| StoreError::Damaged(format!("no {INDEX_RECORD}")))?)?)
        }
    };
    let mut out = Vec::with_capacity(records.len());
    let mut index = Index { epoch: old.as_ref().map_or(0, |i| i.epoch), records: BTreeMap::new() };
    for (name, sealed) in records.iter().filter(|(name, _)| !is_raw(name) && name != INDEX_RECORD) {
        let moved = reseal_one(name, sealed, layout, (from, &from_names), (to, &to_names), old.as_ref())?;
        let Some(moved) = moved else { continue };
        if is_tracked(&moved.key) {
            index.records.insert(moved.key.to_string(), moved.epoch);
        }
        out.push(moved.record);
    }
    if old.is_some_and(|old| old.records != index.records) {
        return Err(StoreError::Damaged("a record the index lists is missing".into()));
    }
    out.push(seal_index(to, &index)?);
    Ok(out)
}

/// The names key of `vault`.
pub fn names(vault: &Vault) -> Result<Names, StoreError> {
    vault.names().map_err(|e| StoreError::Failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_messenger::ConversationId;
    use sotto_shared::Address;

    #[test]
    fn stored_names_hide_whom_records_concern_and_records_know_their_name() {
        let vault = Vault::create(&mut OsEntropy).unwrap();
        let names = names(&vault).unwrap();
        let a = Address([0x5a; 32]);
        for key in [
            RecordKey::Contact(a),
            RecordKey::Message(ConversationId::Direct(a), 7),
            RecordKey::Request(a),
            RecordKey::Profile,
        ] {
            let (stored, sealed) = seal(&vault, &names, &key, 3, b"body").unwrap();
            assert!(!stored.contains(&a.to_hex()[..8]), "{stored} names the address");
            let opened = open(&vault, &names, &stored, &sealed).unwrap();
            assert_eq!((opened.key, opened.epoch, opened.body.as_slice()), (key, 3, b"body".as_slice()));
        }
        // A record copied to another record's place does not open there.
        let (_, ada) = seal(&vault, &names, &RecordKey::Contact(a), 1, b"ada").unwrap();
        let (elsewhere, _) = seal(&vault, &names, &RecordKey::Contact(Address([1; 32])), 1, b"x").unwrap();
        assert!(open(&vault, &names, &elsewhere, &ada).is_err());
        // Layout 1 records still open, by their clear names.
        let name = RecordKey::Contact(a).to_string();
        let old = vault.seal(&name, b"v1", &mut OsEntropy).unwrap();
        assert_eq!(open_layout_1(&vault, &name, &old).unwrap().body.as_slice(), b"v1");
    }

    #[test]
    fn the_index_notices_an_old_copy_put_back() {
        let mut index = Index::default();
        let contact = RecordKey::Contact(Address([1; 32]));
        let message = RecordKey::Message(ConversationId::Direct(Address([1; 32])), 1);
        let e1 = index.advance();
        index.note(&contact, true);
        let e2 = index.advance();
        index.note(&contact, true);
        assert!(index.check(&contact, e2).is_ok());
        assert!(index.check(&contact, e1).is_err(), "the copy of epoch 1 was put back");
        assert!(index.check(&message, e1).is_ok(), "messages: any epoch up to now");
        assert!(index.check(&message, e2 + 1).is_err(), "from after the index: the index is old");
        assert!(index.check_absent(&contact).is_err(), "listed, so its absence is damage");
        assert_eq!(index.part(&RecordRange::Contacts).records.len(), 1);
        assert_eq!(index.part(&RecordRange::Sessions).records.len(), 0);
        index.note(&contact, false);
        assert!(index.check(&contact, e2).is_err(), "deleted, then put back");
        assert!(index.check_absent(&contact).is_ok());
    }

    /// Re-sealing (a backup) refuses a store where an old copy was put back or a record the
    /// index lists is gone, and keeps epochs.
    #[test]
    fn resealing_checks_the_index() {
        let (a, b) = (Vault::create(&mut OsEntropy).unwrap(), Vault::create(&mut OsEntropy).unwrap());
        let a_names = names(&a).unwrap();
        let contact = RecordKey::Contact(Address([1; 32]));
        let mut index = Index::default();
        let e1 = index.advance();
        let old = seal(&a, &a_names, &contact, e1, b"old").unwrap();
        let e2 = index.advance();
        index.note(&contact, true);
        let new = seal(&a, &a_names, &contact, e2, b"new").unwrap();
        let sealed_index = seal_index(&a, &index).unwrap();
        let good = reseal_all(&[new, sealed_index.clone()], LAYOUT, &a, &b).unwrap();
        let b_names = names(&b).unwrap();
        let opened = open(&b, &b_names, &good[0].0, &good[0].1).unwrap();
        assert_eq!((opened.epoch, opened.body.as_slice()), (e2, b"new".as_slice()));
        assert_eq!(open_index(&b, &good[1].1).unwrap(), index);
        assert!(reseal_all(&[old, sealed_index.clone()], LAYOUT, &a, &b).is_err(), "an old copy");
        assert!(reseal_all(&[sealed_index], LAYOUT, &a, &b).is_err(), "a record missing");
    }
}
