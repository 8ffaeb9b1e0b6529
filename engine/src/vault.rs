//! Encryption of what a device stores (the web app's IndexedDB records, a backup file).
//!
//! Every record is sealed under one random 32-byte data key with ChaCha20-Poly1305; the record's
//! name is the associated data, so records cannot be swapped. The data key is kept in a
//! [`VaultHeader`]: in the clear when the person set no passphrase, otherwise sealed under a key
//! derived from the passphrase with Argon2id. The app makes a new data key whenever the
//! passphrase changes and re-seals every record under it (client/src/store.rs).

use crate::EngineError;
use crate::consts::{MAX_KDF_MEMORY_KIB, MAX_KDF_PASSES, MIN_PASSPHRASE_CHARS};
use crate::primitives::{hkdf_sha256, hmac_sha256, open, seal};
use crate::random::Entropy;
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

const HEADER_VERSION: u8 = 1;
const RECORD_AAD: &[u8] = b"sotto-record-v1:";
/// Records of layout 2: stored under keyed names, carrying their own name inside.
const NAMED_RECORD_AAD: &[u8] = b"sotto-record-v2:";
const NAMES_INFO: &[u8] = b"sotto-record-names-v1";
const KEY_AAD: &[u8] = b"sotto-vault-key-v1";

/// Argon2id cost. The default follows OWASP's first recommendation (19 MiB, 2 passes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub passes: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams { memory_kib: 19 * 1024, passes: 2 }
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
enum KeySlot {
    Clear([u8; 32]),
    Passphrase { params: KdfParams, salt: [u8; 16], nonce: [u8; 12], sealed: Vec<u8> },
}

/// Names the kind of slot only: a clear slot holds the data key itself.
impl std::fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySlot::Clear(_) => f.write_str("KeySlot::Clear(…)"),
            KeySlot::Passphrase { params, .. } => write!(f, "KeySlot::Passphrase({params:?}, …)"),
        }
    }
}

/// What is stored beside the records to recover the data key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultHeader {
    v: u8,
    slot: KeySlot,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("a passphrase is needed to open this data")]
    PassphraseNeeded,
    #[error("that passphrase is not right")]
    WrongPassphrase,
    #[error("use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters")]
    PassphraseTooShort,
    #[error("stored data is damaged: {0}")]
    Damaged(&'static str),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl VaultHeader {
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let h: VaultHeader = postcard::from_bytes(bytes).map_err(|_| VaultError::Damaged("vault header"))?;
        if h.v != HEADER_VERSION {
            return Err(EngineError::UnsupportedVersion(h.v).into());
        }
        if let KeySlot::Passphrase { params, .. } = h.slot
            && (params.memory_kib > MAX_KDF_MEMORY_KIB
                || params.passes == 0
                || params.passes > MAX_KDF_PASSES)
        {
            return Err(VaultError::Damaged("passphrase parameters out of bounds"));
        }
        Ok(h)
    }

    pub fn needs_passphrase(&self) -> bool {
        matches!(self.slot, KeySlot::Passphrase { .. })
    }
}

fn derive(passphrase: &str, salt: &[u8; 16], params: KdfParams) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    // Checked here too, not only when a header is parsed: a header can arrive inside another
    // format (a backup file) without passing through `from_bytes`.
    if params.memory_kib > MAX_KDF_MEMORY_KIB || params.passes == 0 || params.passes > MAX_KDF_PASSES {
        return Err(VaultError::Damaged("passphrase parameters out of bounds"));
    }
    let params = Params::new(params.memory_kib, params.passes, 1, Some(32))
        .map_err(|_| VaultError::Damaged("passphrase parameters"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|_| VaultError::Damaged("passphrase parameters"))?;
    Ok(key)
}

/// An open vault: holds the data key in memory.
pub struct Vault {
    key: Zeroizing<[u8; 32]>,
}

impl Vault {
    /// A new vault with a random data key.
    pub fn create(entropy: &mut dyn Entropy) -> Result<Vault, EngineError> {
        Ok(Vault { key: Zeroizing::new(entropy.bytes32()?) })
    }

    /// Opens a vault from its header; `passphrase` is needed when one was set.
    pub fn unlock(header: &VaultHeader, passphrase: Option<&str>) -> Result<Vault, VaultError> {
        match &header.slot {
            KeySlot::Clear(key) => Ok(Vault { key: Zeroizing::new(*key) }),
            KeySlot::Passphrase { params, salt, nonce, sealed } => {
                let passphrase = passphrase.ok_or(VaultError::PassphraseNeeded)?;
                let wrap = derive(passphrase, salt, *params)?;
                let key = Zeroizing::new(
                    open(&wrap, nonce, KEY_AAD, sealed).map_err(|_| VaultError::WrongPassphrase)?,
                );
                let key: [u8; 32] =
                    key.as_slice().try_into().map_err(|_| VaultError::Damaged("vault key"))?;
                Ok(Vault { key: Zeroizing::new(key) })
            }
        }
    }

    /// The header to store: the data key in the clear (`None`) or under `passphrase`.
    pub fn header(
        &self,
        passphrase: Option<&str>,
        params: KdfParams,
        entropy: &mut dyn Entropy,
    ) -> Result<VaultHeader, VaultError> {
        let slot = match passphrase {
            None => KeySlot::Clear(*self.key),
            Some(p) if p.chars().count() < MIN_PASSPHRASE_CHARS => {
                return Err(VaultError::PassphraseTooShort);
            }
            Some(p) => {
                let (mut salt, mut nonce) = ([0u8; 16], [0u8; 12]);
                entropy.fill(&mut salt)?;
                entropy.fill(&mut nonce)?;
                let wrap = derive(p, &salt, params)?;
                KeySlot::Passphrase {
                    params,
                    salt,
                    nonce,
                    sealed: seal(&wrap, &nonce, KEY_AAD, self.key.as_ref())?,
                }
            }
        };
        Ok(VaultHeader { v: HEADER_VERSION, slot })
    }

    /// Seals the record called `name`: `nonce (12) || ciphertext`.
    pub fn seal(
        &self,
        name: &str,
        plaintext: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce)?;
        let aad = [RECORD_AAD, name.as_bytes()].concat();
        let mut out = nonce.to_vec();
        out.extend(seal(&self.key, &nonce, &aad, plaintext)?);
        Ok(out)
    }

    pub fn open(&self, name: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, EngineError> {
        let (nonce, ciphertext) = sealed.split_at_checked(12).ok_or(EngineError::Tampered)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| EngineError::Tampered)?;
        let aad = [RECORD_AAD, name.as_bytes()].concat();
        Ok(Zeroizing::new(open(&self.key, &nonce, &aad, ciphertext)?))
    }

    /// The key of this vault's record names (see [`Names`]).
    pub fn names(&self) -> Result<Names, EngineError> {
        let mut key = Zeroizing::new([0u8; 32]);
        hkdf_sha256(&[], self.key.as_ref(), NAMES_INFO, key.as_mut())?;
        Ok(Names { key })
    }

    /// Seals the record named `name`, stored under `stored` (its keyed form), written in
    /// `epoch` (the store's commit counter): the name travels inside, since the stored one
    /// cannot be read back. `nonce (12) || ciphertext` of `u16 BE len(name) || name || u64 BE
    /// epoch || body`, bound to `stored`.
    pub fn seal_named(
        &self,
        stored: &str,
        name: &str,
        epoch: u64,
        body: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<u8>, EngineError> {
        let len =
            u16::try_from(name.len()).map_err(|_| EngineError::BadEncoding("record name too long".into()))?;
        let mut plain = Zeroizing::new(Vec::with_capacity(2 + name.len() + 8 + body.len()));
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(name.as_bytes());
        plain.extend_from_slice(&epoch.to_be_bytes());
        plain.extend_from_slice(body);
        let mut nonce = [0u8; 12];
        entropy.fill(&mut nonce)?;
        let aad = [NAMED_RECORD_AAD, stored.as_bytes()].concat();
        let mut out = nonce.to_vec();
        out.extend(seal(&self.key, &nonce, &aad, &plain)?);
        Ok(out)
    }

    /// Opens a record sealed by [`Vault::seal_named`] and stored under `stored`: its name,
    /// epoch and body.
    pub fn open_named(&self, stored: &str, sealed: &[u8]) -> Result<Named, EngineError> {
        let (nonce, ciphertext) = sealed.split_at_checked(12).ok_or(EngineError::Tampered)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| EngineError::Tampered)?;
        let aad = [NAMED_RECORD_AAD, stored.as_bytes()].concat();
        let plain = Zeroizing::new(open(&self.key, &nonce, &aad, ciphertext)?);
        let damaged = || EngineError::BadEncoding("record without its name".into());
        let (len, rest) = plain.split_first_chunk::<2>().ok_or_else(damaged)?;
        let (name, rest) =
            rest.split_at_checked(usize::from(u16::from_be_bytes(*len))).ok_or_else(damaged)?;
        let (epoch, body) = rest.split_first_chunk::<8>().ok_or_else(damaged)?;
        let name = std::str::from_utf8(name).map_err(|_| damaged())?.to_string();
        Ok(Named { name, epoch: u64::from_be_bytes(*epoch), body: Zeroizing::new(body.to_vec()) })
    }
}

/// A record opened by [`Vault::open_named`].
pub struct Named {
    pub name: String,
    /// The store's commit counter when it was written.
    pub epoch: u64,
    pub body: Zeroizing<Vec<u8>>,
}

/// Keys the parts of record names that would say whom a record concerns (an address).
pub struct Names {
    key: Zeroizing<[u8; 32]>,
}

impl Names {
    /// A keyed stand-in for `part`: 32 hex digits of HMAC-SHA256 under a key derived from the
    /// data key, so the names a store lists say nothing about whom they concern to anyone
    /// without the key.
    pub fn keyed(&self, part: &str) -> String {
        let tag = hmac_sha256(self.key.as_ref(), part.as_bytes());
        tag[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Names(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsEntropy;

    const FAST: KdfParams = KdfParams { memory_kib: 64, passes: 1 };

    #[test]
    fn keyed_names_depend_on_the_key_and_named_records_carry_their_name() {
        let e = &mut OsEntropy;
        let (a, b) = (Vault::create(e).unwrap(), Vault::create(e).unwrap());
        let part = "ab".repeat(32);
        let keyed = a.names().unwrap().keyed(&part);
        assert_eq!(keyed.len(), 32);
        assert_eq!(keyed, a.names().unwrap().keyed(&part), "stable");
        assert_ne!(keyed, b.names().unwrap().keyed(&part), "another key, another name");
        assert!(!keyed.contains(&part[..8]));

        let stored = format!("contact/{keyed}");
        let name = format!("contact/{part}");
        let sealed = a.seal_named(&stored, &name, 7, b"body", e).unwrap();
        let opened = a.open_named(&stored, &sealed).unwrap();
        assert_eq!(
            (opened.name.as_str(), opened.epoch, opened.body.as_slice()),
            (name.as_str(), 7, b"body".as_slice())
        );
        assert!(a.open_named("contact/other", &sealed).is_err(), "bound to where it is stored");
        assert!(b.open_named(&stored, &sealed).is_err());
        assert!(a.open(&stored, &sealed).is_err(), "not a layout-1 record");
    }

    #[test]
    fn debug_never_shows_the_data_key() {
        let v = Vault { key: Zeroizing::new([0xab; 32]) };
        let header = v.header(None, FAST, &mut OsEntropy).unwrap();
        let shown = format!("{header:?}");
        assert!(shown.contains("Clear"), "{shown}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "), "{shown}");
    }

    #[test]
    fn records_open_only_under_their_name_and_key() {
        let e = &mut OsEntropy;
        let v = Vault::create(e).unwrap();
        let sealed = v.seal("msg/1", b"hello", e).unwrap();
        assert_eq!(v.open("msg/1", &sealed).unwrap().as_slice(), b"hello");
        assert_eq!(v.open("msg/2", &sealed).unwrap_err(), EngineError::Tampered);
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert_eq!(v.open("msg/1", &bad).unwrap_err(), EngineError::Tampered);
        assert_eq!(v.open("msg/1", &sealed[..5]).unwrap_err(), EngineError::Tampered);
        let other = Vault::create(e).unwrap();
        assert!(other.open("msg/1", &sealed).is_err());
    }

    #[test]
    fn passphrase_header_unlocks_only_with_the_passphrase() {
        let e = &mut OsEntropy;
        let v = Vault::create(e).unwrap();
        let sealed = v.seal("r", b"x", e).unwrap();

        let clear = VaultHeader::from_bytes(&v.header(None, FAST, e).unwrap().to_bytes()).unwrap();
        assert!(!clear.needs_passphrase());
        assert_eq!(Vault::unlock(&clear, None).unwrap().open("r", &sealed).unwrap().as_slice(), b"x");

        let locked =
            VaultHeader::from_bytes(&v.header(Some("correct horse"), FAST, e).unwrap().to_bytes()).unwrap();
        assert!(locked.needs_passphrase());
        assert!(!locked.to_bytes().windows(32).any(|w| w == v.key.as_slice()), "key not stored in clear");
        assert_eq!(Vault::unlock(&locked, None).err(), Some(VaultError::PassphraseNeeded));
        assert_eq!(Vault::unlock(&locked, Some("wrong")).err(), Some(VaultError::WrongPassphrase));
        let opened = Vault::unlock(&locked, Some("correct horse")).unwrap();
        assert_eq!(opened.open("r", &sealed).unwrap().as_slice(), b"x");
        assert!(VaultHeader::from_bytes(b"\x07junk").is_err());
    }

    #[test]
    fn short_passphrases_and_costly_parameters_are_refused() {
        let e = &mut OsEntropy;
        let v = Vault::create(e).unwrap();
        assert_eq!(v.header(Some("seven c"), FAST, e).err(), Some(VaultError::PassphraseTooShort));
        assert!(v.header(Some("eight ch"), FAST, e).is_ok());
        // A header from a file asking for 4 GiB (or a million passes) is refused before Argon2
        // runs.
        for params in [
            KdfParams { memory_kib: 4 * 1024 * 1024, passes: 2 },
            KdfParams { memory_kib: 64, passes: 1_000_000 },
            KdfParams { memory_kib: 64, passes: 0 },
        ] {
            let hostile = VaultHeader {
                v: HEADER_VERSION,
                slot: KeySlot::Passphrase { params, salt: [0; 16], nonce: [0; 12], sealed: vec![0; 48] },
            };
            assert_eq!(
                VaultHeader::from_bytes(&hostile.to_bytes()).err(),
                Some(VaultError::Damaged("passphrase parameters out of bounds"))
            );
            // And when the header is not parsed on its own (inside a backup file).
            assert_eq!(
                Vault::unlock(&hostile, Some("any passphrase")).err(),
                Some(VaultError::Damaged("passphrase parameters out of bounds"))
            );
        }
    }
}
