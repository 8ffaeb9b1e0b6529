//! Backup files: every stored record sealed under a data key of the backup's own, and that
//! key's header wrapped under the backup's secret: by default a generated backup code (100
//! random bits, shown once), or a passphrase the person chooses. Whoever learns a backup's
//! secret learns nothing about the live store's key, nor, once a backup is installed, about the
//! key of the store it was installed into. A backup moves an identity: the old copy must stop
//! being used, or the two copies' ratchets diverge.

use crate::layout;
use serde::{Deserialize, Serialize};
use sotto_engine::random::Entropy;
use sotto_engine::vault::{KdfParams, Vault, VaultError, VaultHeader};
use sotto_messenger::StoreError;
use thiserror::Error;
use zeroize::Zeroizing;

const MAGIC: &[u8; 12] = b"sotto-backup";
/// A backup code's symbols: Crockford's base32 (no I, L, O or U), which reads aloud and types
/// without ambiguity.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Symbols in a backup code (5 bits each: 100 bits), written as groups of four.
const CODE_SYMBOLS: usize = 20;
/// 3: records in layout 2 (keyed names, see `layout`); 2: layout 1, still read; both re-sealed
/// under the backup's own key (1 carried the live store's key and is refused).
const VERSION: u8 = 3;
const VERSION_LAYOUT_1: u8 = 2;

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
    let records = layout::reseal_all(&records, layout::LAYOUT, vault, &own).map_err(damaged)?;
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend(postcard::to_allocvec(&Backup { header, records }).map_err(|_| BackupError::NotABackup)?);
    Ok(out)
}

fn damaged(e: StoreError) -> BackupError {
    BackupError::Damaged(e.to_string())
}

/// A new backup code: 100 random bits as `XXXX-XXXX-XXXX-XXXX-XXXX`.
pub fn new_code(e: &mut dyn Entropy) -> Result<Zeroizing<String>, BackupError> {
    let mut bytes = Zeroizing::new([0u8; 13]);
    e.fill(bytes.as_mut()).map_err(|err| BackupError::Vault(err.into()))?;
    let bits = |i: usize| (bytes[i / 8] >> (7 - i % 8)) & 1;
    let mut code = Zeroizing::new(String::with_capacity(CODE_SYMBOLS + 4));
    for s in 0..CODE_SYMBOLS {
        if s > 0 && s % 4 == 0 {
            code.push('-');
        }
        let value = (0..5).fold(0usize, |v, b| (v << 1) | usize::from(bits(s * 5 + b)));
        code.push(char::from(CODE_ALPHABET[value]));
    }
    Ok(code)
}

/// A typed backup code in its written form: any case, spaces or dashes anywhere, O read as 0
/// and I or L as 1. `None` if what was typed is no code (then it is a passphrase).
fn as_code(typed: &str) -> Option<String> {
    let symbols: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect();
    let fits = symbols.len() == CODE_SYMBOLS && symbols.bytes().all(|b| CODE_ALPHABET.contains(&b));
    fits.then(|| {
        let groups: Vec<&str> = (0..CODE_SYMBOLS / 4).map(|g| &symbols[g * 4..g * 4 + 4]).collect();
        groups.join("-")
    })
}

/// An opened backup.
pub struct Restored {
    pub vault: Vault,
    /// Kept under the backup's secret.
    pub header: VaultHeader,
    /// Sealed under `vault`, as they were stored.
    pub records: Vec<(String, Vec<u8>)>,
    /// The secret that opened it (the code in its written form, or the passphrase as typed).
    secret: Zeroizing<String>,
    /// How `records` are laid out (see `layout`).
    layout: u8,
}

/// Opens a backup with its code or passphrase, as typed.
pub fn import(bytes: &[u8], typed: &str) -> Result<Restored, BackupError> {
    let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or(BackupError::NotABackup)?;
    let (&version, body) = rest.split_first().ok_or(BackupError::NotABackup)?;
    let layout = match version {
        VERSION => layout::LAYOUT,
        VERSION_LAYOUT_1 => 1,
        _ => return Err(BackupError::OtherVersion),
    };
    let b: Backup = postcard::from_bytes(body).map_err(|_| BackupError::NotABackup)?;
    // Every backup is under a secret; one whose key is in the clear is not ours.
    if !b.header.needs_passphrase() {
        return Err(BackupError::NotABackup);
    }
    let (vault, secret) = unlock_typed(&b.header, typed)?;
    Ok(Restored { vault, header: b.header, records: b.records, secret, layout })
}

/// Unlocks a header with what the person typed: a backup code however it was typed, then
/// (rarely needed) the text as typed, a passphrase that happens to look like a code. A store
/// installed from a backup opens with the backup's code, so the lock screen uses this too.
pub fn unlock_typed(header: &VaultHeader, typed: &str) -> Result<(Vault, Zeroizing<String>), VaultError> {
    let mut last = VaultError::WrongPassphrase;
    for secret in as_code(typed).into_iter().chain([typed.to_string()]) {
        match Vault::unlock(header, Some(&secret)) {
            Ok(vault) => return Ok((vault, Zeroizing::new(secret))),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Restored {
    /// The backup made ready for this browser: every record re-sealed under a new key, kept
    /// under the same secret. Whoever holds the file and its secret cannot open this store.
    pub fn resealed(self, params: KdfParams, e: &mut dyn Entropy) -> Result<Restored, BackupError> {
        let vault = Vault::create(e).map_err(VaultError::from)?;
        let header = vault.header(Some(&self.secret), params, e)?;
        let records = layout::reseal_all(&self.records, self.layout, &self.vault, &vault).map_err(damaged)?;
        Ok(Restored { vault, header, records, secret: self.secret, layout: layout::LAYOUT })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_engine::random::OsEntropy;
    use sotto_messenger::RecordKey;
    use sotto_shared::Address;

    /// Records as the live store holds them (layout 2, with their index).
    fn store(vault: &Vault, items: &[(RecordKey, &[u8])]) -> Vec<(String, Vec<u8>)> {
        let names = layout::names(vault).unwrap();
        let mut index = layout::Index::default();
        let epoch = index.advance();
        let mut out: Vec<(String, Vec<u8>)> = items
            .iter()
            .map(|(key, body)| {
                index.note(key, true);
                layout::seal(vault, &names, key, epoch, body).unwrap()
            })
            .collect();
        out.push(layout::seal_index(vault, &index).unwrap());
        out
    }

    /// The body of `key` among `records` under `vault`, if it opens.
    fn body(vault: &Vault, records: &[(String, Vec<u8>)], key: &RecordKey) -> Option<Vec<u8>> {
        let names = layout::names(vault).unwrap();
        records
            .iter()
            .filter_map(|(n, v)| layout::open(vault, &names, n, v).ok())
            .find(|o| o.key == *key)
            .map(|o| o.body.to_vec())
    }

    #[test]
    fn round_trip_needs_the_passphrase() {
        let e = &mut OsEntropy;
        let params = KdfParams { memory_kib: 64, passes: 1 };
        let vault = Vault::create(e).unwrap();
        let contact = RecordKey::Contact(Address([7; 32]));
        let mut records = store(&vault, &[(RecordKey::Profile, b"Ada"), (contact.clone(), b"Bo")]);
        records.extend([(layout::VAULT_RECORD.to_string(), vec![1, 2]), layout::layout_record()]);
        let file = export(&vault, records.clone(), "pass phrase", params, e).unwrap();
        assert_eq!(import(&file, "wrong").err(), Some(BackupError::Vault(VaultError::WrongPassphrase)));
        assert_eq!(import(b"hello", "x").err(), Some(BackupError::NotABackup));
        let Restored { vault: opened, header, records: got, .. } = import(&file, "pass phrase").unwrap();
        assert!(header.needs_passphrase());
        assert_eq!(
            got.len(),
            3,
            "two records and the index; the live vault header and layout are not exported"
        );
        assert_eq!(body(&opened, &got, &RecordKey::Profile).as_deref(), Some(b"Ada".as_slice()));
        assert_eq!(body(&opened, &got, &contact).as_deref(), Some(b"Bo".as_slice()));
        assert!(!got.iter().any(|(n, _)| n.contains(&Address([7; 32]).to_hex()[..8])), "names stay keyed");
        // The backup has a key of its own (and names of its own): the live store's key opens
        // none of its records, and the backup's key none of the live store's.
        assert_eq!(body(&vault, &got, &RecordKey::Profile), None);
        assert_eq!(body(&opened, &records, &RecordKey::Profile), None);
        // Two backups, two keys.
        let again = export(&vault, records, "pass phrase", params, e).unwrap();
        let second = import(&again, "pass phrase").unwrap();
        assert_eq!(body(&second.vault, &got, &RecordKey::Profile), None);
    }

    /// A backup made before names were keyed (format 2, layout 1) still installs.
    #[test]
    fn a_format_2_backup_installs_in_the_new_layout() {
        let e = &mut OsEntropy;
        let params = KdfParams { memory_kib: 64, passes: 1 };
        let own = Vault::create(e).unwrap();
        let header = own.header(Some("pass phrase"), params, e).unwrap();
        let contact = RecordKey::Contact(Address([7; 32]));
        let records = vec![(contact.to_string(), own.seal(&contact.to_string(), b"Bo", e).unwrap())];
        let mut file = MAGIC.to_vec();
        file.push(VERSION_LAYOUT_1);
        file.extend(postcard::to_allocvec(&Backup { header, records }).unwrap());
        let installed = import(&file, "pass phrase").unwrap().resealed(params, e).unwrap();
        assert_eq!(body(&installed.vault, &installed.records, &contact).as_deref(), Some(b"Bo".as_slice()));
        assert_ne!(installed.records[0].0, contact.to_string(), "now under a keyed name");
        assert!(installed.records.iter().any(|(n, _)| n == layout::INDEX_RECORD), "with an index");
    }

    #[test]
    fn a_generated_code_opens_its_backup_however_it_is_typed() {
        let e = &mut OsEntropy;
        let params = KdfParams { memory_kib: 64, passes: 1 };
        let code = new_code(e).unwrap();
        assert_eq!(code.len(), 24);
        assert!(
            code.split('-').all(|g| g.len() == 4 && g.bytes().all(|b| CODE_ALPHABET.contains(&b))),
            "{}",
            *code
        );
        assert_ne!(*new_code(e).unwrap(), *code, "random");
        let vault = Vault::create(e).unwrap();
        let records = store(&vault, &[(RecordKey::Profile, b"Ada")]);
        let file = export(&vault, records, &code, params, e).unwrap();
        let sloppy = code.to_lowercase().replace('-', " ").replace('0', "o").replace('1', "l");
        let restored = import(&file, &sloppy).unwrap();
        assert_eq!(
            body(&restored.vault, &restored.records, &RecordKey::Profile).as_deref(),
            Some(b"Ada".as_slice())
        );
        assert_eq!(
            import(&file, "AAAA-AAAA-AAAA-AAAA-AAAA").err(),
            Some(BackupError::Vault(VaultError::WrongPassphrase))
        );
        // A passphrase shaped like a code still works as typed.
        let shaped = "my-passphrase-is-long";
        let file = export(&vault, store(&vault, &[]), shaped, params, e).unwrap();
        assert!(import(&file, shaped).is_ok());
        assert_eq!(as_code("abcd efgh jkmn pqrs tvwx").as_deref(), Some("ABCD-EFGH-JKMN-PQRS-TVWX"));
        assert_eq!(as_code("ABCD-EFGH-JKMN-PQRS-TVWU"), None, "U is no symbol");
        assert_eq!(as_code("ABCD-EFGH"), None);
    }

    /// An installed backup is re-sealed under a key of the new store's own: the file and its
    /// secret open none of what was installed, and the secret still unlocks the store.
    #[test]
    fn an_installed_backup_gets_a_key_of_its_own() {
        let e = &mut OsEntropy;
        let params = KdfParams { memory_kib: 64, passes: 1 };
        let vault = Vault::create(e).unwrap();
        let records = store(&vault, &[(RecordKey::Profile, b"Ada")]);
        let file = export(&vault, records, "pass phrase", params, e).unwrap();
        let from_file = import(&file, "pass phrase").unwrap();
        let installed = import(&file, "pass phrase").unwrap().resealed(params, e).unwrap();
        assert_eq!(
            body(&from_file.vault, &installed.records, &RecordKey::Profile),
            None,
            "the file's key opens nothing installed"
        );
        assert_eq!(
            body(&installed.vault, &installed.records, &RecordKey::Profile).as_deref(),
            Some(b"Ada".as_slice())
        );
        let again = Vault::unlock(&installed.header, Some("pass phrase")).unwrap();
        assert_eq!(body(&again, &installed.records, &RecordKey::Profile).as_deref(), Some(b"Ada".as_slice()));
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
