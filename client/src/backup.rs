//! Backup files: every stored record sealed under a data key of the backup's own, and that
//! key's header wrapped under the backup's passphrase. Whoever learns a backup's passphrase
//! learns nothing about the live store's key. A backup moves an identity: the old copy must
//! stop being used, or the two copies' ratchets diverge.

use serde::{Deserialize, Serialize};
use sotto_engine::random::Entropy;
use sotto_engine::vault::{KdfParams, Vault, VaultError, VaultHeader};
use thiserror::Error;

const MAGIC: &[u8; 12] = b"sotto-backup";
/// 2: records re-sealed under the backup's own key (1 carried the live store's key).
const VERSION: u8 = 2;
/// The record holding the (unsealed) vault header in the store.
pub const VAULT_RECORD: &str = "vault";

#[derive(Serialize, Deserialize)]
struct Backup {
    header: VaultHeader,
    records: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum BackupError {
    #[error("this file is not a Sotto backup")]
    NotABackup,
    #[error("this backup is in a format this version of Sotto does not read")]
    OtherVersion,
    #[error("a record could not be opened for the backup: {0}")]
    Damaged(String),
    #[error("{0}")]
    Vault(#[from] VaultError),
}

/// A backup of `records` (sealed under `vault`), re-sealed under a new key of its own and
/// openable with `passphrase`.
pub fn export(
    vault: &Vault,
    records: Vec<(String, Vec<u8>)>,
    passphrase: &str,
    params: KdfParams,
    e: &mut dyn Entropy,
) -> Result<Vec<u8>, BackupError> {
    let own = Vault::create(e).map_err(VaultError::from)?;
    let header = own.header(Some(passphrase), params, e)?;
    let mut resealed = Vec::with_capacity(records.len());
    for (name, sealed) in records.into_iter().filter(|(name, _)| name != VAULT_RECORD) {
        let plain =
            vault.open(&name, &sealed).map_err(|err| BackupError::Damaged(format!("{name}: {err}")))?;
        let again = own.seal(&name, &plain, e).map_err(VaultError::from)?;
        resealed.push((name, again));
    }
    let records = resealed;
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend(postcard::to_allocvec(&Backup { header, records }).map_err(|_| BackupError::NotABackup)?);
    Ok(out)
}

/// An opened backup.
pub struct Restored {
    pub vault: Vault,
    /// Kept under the backup's passphrase.
    pub header: VaultHeader,
    /// Sealed under `vault`, as they were stored.
    pub records: Vec<(String, Vec<u8>)>,
}

/// Opens a backup with its passphrase.
pub fn import(bytes: &[u8], passphrase: &str) -> Result<Restored, BackupError> {
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or(BackupError::NotABackup)?;
    let (&version, body) = rest.split_first().ok_or(BackupError::NotABackup)?;
    if version != VERSION {
        return Err(BackupError::OtherVersion);
    }
    let b: Backup = postcard::from_bytes(body).map_err(|_| BackupError::NotABackup)?;
    // Every backup is under a passphrase; one whose key is in the clear is not ours.
    if !b.header.needs_passphrase() {
        return Err(BackupError::NotABackup);
    }
    let vault = Vault::unlock(&b.header, Some(passphrase))?;
    Ok(Restored { vault, header: b.header, records: b.records })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_engine::random::OsEntropy;

    #[test]
    fn round_trip_needs_the_passphrase() {
        let e = &mut OsEntropy;
        let params = KdfParams { memory_kib: 64, passes: 1 };
        let vault = Vault::create(e).unwrap();
        let sealed = vault.seal("profile", b"Ada", e).unwrap();
        let records = vec![("profile".to_string(), sealed), (VAULT_RECORD.to_string(), vec![1, 2])];
        let file = export(&vault, records, "pass phrase", params, e).unwrap();
        assert_eq!(import(&file, "wrong").err(), Some(BackupError::Vault(VaultError::WrongPassphrase)));
        assert_eq!(import(b"hello", "x").err(), Some(BackupError::NotABackup));
        let Restored { vault: opened, header, records } = import(&file, "pass phrase").unwrap();
        assert!(header.needs_passphrase());
        assert_eq!(records.len(), 1, "the live vault header is not exported");
        assert_eq!(opened.open("profile", &records[0].1).unwrap().as_slice(), b"Ada");
        // The backup has a key of its own: the live store's key opens none of its records, and
        // the backup's key none of the live store's.
        assert!(vault.open("profile", &records[0].1).is_err());
        assert!(opened.open("profile", &vault.seal("profile", b"Ada", e).unwrap()).is_err());
        // Two backups, two keys.
        let again = export(
            &vault,
            vec![("profile".into(), vault.seal("profile", b"Ada", e).unwrap())],
            "pass phrase",
            params,
            e,
        )
        .unwrap();
        let second = import(&again, "pass phrase").unwrap();
        assert!(second.vault.open("profile", &records[0].1).is_err());
    }

    #[test]
    fn a_backup_whose_key_is_in_the_clear_is_refused() {
        let e = &mut OsEntropy;
        let vault = Vault::create(e).unwrap();
        let header = vault.header(None, KdfParams { memory_kib: 64, passes: 1 }, e).unwrap();
        let mut file = MAGIC.to_vec();
        file.push(VERSION);
        file.extend(postcard::to_allocvec(&Backup { header, records: Vec::new() }).unwrap());
        assert_eq!(import(&file, "anything at all").err(), Some(BackupError::NotABackup));
    }
}
