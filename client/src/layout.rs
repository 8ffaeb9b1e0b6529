//! How the messenger's records lie in the browser's store (and in backups): each under a
//! keyed name that does not say whom it concerns (`RecordKey::stored`), its value sealed with
//! the vault, bound to that name, and carrying the record's own name inside (layout 2). Stores
//! written before names were keyed (layout 1: the name in the clear, sealed with it as
//! associated data) are upgraded when opened. Beside the sealed records lie two raw ones: the
//! vault header and the layout.

use sotto_engine::random::OsEntropy;
use sotto_engine::vault::{Names, Vault};
use sotto_messenger::{RecordBytes, RecordKey, RecordRange, StoreError};

/// The vault header (raw).
pub const VAULT_RECORD: &str = "vault";
/// The layout of the other records (raw, `[LAYOUT]`); absent in layout-1 stores.
pub const LAYOUT_RECORD: &str = "layout";
pub const LAYOUT: u8 = 2;

/// Whether `name` is one of the raw records, not sealed.
pub fn is_raw(name: &str) -> bool {
    name == VAULT_RECORD || name == LAYOUT_RECORD
}

/// The raw layout record, for a store written in this layout.
pub fn layout_record() -> (String, Vec<u8>) {
    (LAYOUT_RECORD.to_string(), vec![LAYOUT])
}

/// Seals `body` as the record `key` under `vault`: its stored name and value.
pub fn seal(
    vault: &Vault,
    names: &Names,
    key: &RecordKey,
    body: &[u8],
) -> Result<(String, Vec<u8>), StoreError> {
    let stored = key.stored(|part| names.keyed(part));
    let sealed = vault
        .seal_named(&stored, &key.to_string(), body, &mut OsEntropy)
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    Ok((stored, sealed))
}

/// Opens the record stored under `stored`: which record it is, and its body. One whose name
/// does not belong where it is stored is damage.
pub fn open(
    vault: &Vault,
    names: &Names,
    stored: &str,
    sealed: &[u8],
) -> Result<(RecordKey, RecordBytes), StoreError> {
    let damaged = |e: &dyn std::fmt::Display| StoreError::Damaged(format!("{stored}: {e}"));
    let (name, body) = vault.open_named(stored, sealed).map_err(|e| damaged(&e))?;
    let key = RecordRange::parse(&name)?;
    if key.stored(|part| names.keyed(part)) != stored {
        return Err(damaged(&"holds another record"));
    }
    Ok((key, body))
}

/// Opens a record of layout 1 (stored under its own name).
pub fn open_layout_1(
    vault: &Vault,
    name: &str,
    sealed: &[u8],
) -> Result<(RecordKey, RecordBytes), StoreError> {
    let key = RecordRange::parse(name)?;
    let body = vault.open(name, sealed).map_err(|e| StoreError::Damaged(format!("{name}: {e}")))?;
    Ok((key, body))
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
            let (stored, sealed) = seal(&vault, &names, &key, b"body").unwrap();
            assert!(!stored.contains(&a.to_hex()[..8]), "{stored} names the address");
            let (opened, body) = open(&vault, &names, &stored, &sealed).unwrap();
            assert_eq!((opened, body.as_slice()), (key, b"body".as_slice()));
        }
        // A record copied to another record's place does not open there.
        let (_, ada) = seal(&vault, &names, &RecordKey::Contact(a), b"ada").unwrap();
        let (elsewhere, _) = seal(&vault, &names, &RecordKey::Contact(Address([1; 32])), b"x").unwrap();
        assert!(open(&vault, &names, &elsewhere, &ada).is_err());
        // Layout 1 records still open, by their clear names.
        let old = vault.seal("contact/00", b"v1", &mut OsEntropy).unwrap();
        assert!(open_layout_1(&vault, "contact/00", &old).is_err(), "not a valid address");
        let name = RecordKey::Contact(a).to_string();
        let old = vault.seal(&name, b"v1", &mut OsEntropy).unwrap();
        assert_eq!(open_layout_1(&vault, &name, &old).unwrap().1.as_slice(), b"v1");
    }
}
