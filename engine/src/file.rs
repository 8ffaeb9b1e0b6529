//! Files, photos and voice messages, encrypted in chunks before a byte leaves the device
//! (issue 14, first part: the cryptography).
//!
//! Each file gets a random key of its own. Its plaintext is cut into chunks of
//! [`FILE_CHUNK_BYTES`] (the last may be shorter, or empty), each sealed with ChaCha20-Poly1305
//! under the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár): chunk `i`'s nonce is
//! `0 (7 bytes) || i (u32 BE) || last (1 byte: 1 for the last chunk, else 0)`. So a chunk
//! moved to another place, a file cut short, or a chunk of another file is refused: the
//! position and the end are bound into every tag, and each key seals one file.
//!
//! ChaCha20-Poly1305 does not commit to its key: one ciphertext can be made to open under two
//! keys to two plaintexts. So the message that carries the key also carries the `SHA-256` of the
//! whole ciphertext, checked once the last chunk is in: the authenticated message fixes both the
//! key and the exact bytes, which together fix the plaintext (a separate hash of the key would
//! add nothing beside the key itself). Neither side ever needs the whole file
//! in memory: chunks are sealed and opened one at a time, and any chunk can be opened alone
//! (seeking in a video).

use crate::EngineError;
use crate::consts::{FILE_CHUNK_BYTES, MAX_FILE_BYTES};
use crate::primitives::{Sha256Stream, open, seal};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

const AD: &[u8] = b"sotto-file-v1";
/// What sealing adds to each chunk.
pub const CHUNK_TAG_BYTES: usize = 16;

/// A file's own key. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; 32]);

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey")
    }
}

impl FileKey {
    pub fn generate(e: &mut dyn Entropy) -> Result<FileKey, EngineError> {
        Ok(FileKey(e.bytes32()?))
    }

    /// A key handed over in memory (from the app to its file worker).
    pub fn from_bytes(bytes: [u8; 32]) -> FileKey {
        FileKey(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

/// Chunk `index`'s nonce.
fn nonce(index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// How many chunks a file of `size` plaintext bytes has (an empty file has one, empty).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(FILE_CHUNK_BYTES as u64).max(1)
}

/// The size of the ciphertext of a file of `size` plaintext bytes.
pub fn sealed_size(size: u64) -> u64 {
    size + chunk_count(size) * CHUNK_TAG_BYTES as u64
}

/// What sealing a whole file produced, for the message that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedFile {
    /// Plaintext bytes.
    pub size: u64,
    /// SHA-256 of the whole ciphertext (every sealed chunk in order).
    pub digest: [u8; 32],
}

/// Seals a file chunk by chunk, in order.
pub struct Sealer {
    key: FileKey,
    next: u32,
    size: u64,
    done: bool,
    digest: Sha256Stream,
}

impl Sealer {
    pub fn new(key: &FileKey) -> Sealer {
        Sealer { key: key.clone(), next: 0, size: 0, done: false, digest: Sha256Stream::default() }
    }

    /// Seals the next chunk: [`FILE_CHUNK_BYTES`] of plaintext, except the last, which may be
    /// shorter (or empty, for an empty file).
    pub fn seal(&mut self, chunk: &[u8], last: bool) -> Result<Vec<u8>, EngineError> {
        if self.done {
            return Err(EngineError::Internal("a file sealed past its last chunk"));
        }
        if chunk.len() > FILE_CHUNK_BYTES || (!last && chunk.len() != FILE_CHUNK_BYTES) {
            return Err(EngineError::Internal("a file chunk of the wrong size"));
        }
        self.size += chunk.len() as u64;
        if self.size > MAX_FILE_BYTES {
            return Err(EngineError::FileTooLarge);
        }
        let sealed = seal(&self.key.0, &nonce(self.next, last), AD, chunk)?;
        self.digest.update(&sealed);
        self.next = self.next.checked_add(1).ok_or(EngineError::FileTooLarge)?;
        self.done = last;
        Ok(sealed)
    }

    /// Once the last chunk is sealed: the size and digest for the message.
    pub fn finish(self) -> Result<SealedFile, EngineError> {
        if !self.done {
            return Err(EngineError::Internal("a file finished before its last chunk"));
        }
        Ok(SealedFile { size: self.size, digest: self.digest.finish() })
    }
}

/// Opens a file chunk by chunk, in order, checking it against what its message says.
pub struct Opener {
    key: FileKey,
    chunks: u64,
    next: u32,
    digest: Sha256Stream,
    expected: [u8; 32],
}

impl Opener {
    /// An opener for a file of `size` plaintext bytes whose message names `key` and `digest`.
    pub fn new(key: &FileKey, size: u64, digest: [u8; 32]) -> Result<Opener, EngineError> {
        if size > MAX_FILE_BYTES {
            return Err(EngineError::FileTooLarge);
        }
        Ok(Opener {
            key: key.clone(),
            chunks: chunk_count(size),
            next: 0,
            digest: Sha256Stream::default(),
            expected: digest,
        })
    }

    /// Opens the next chunk in order.
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, EngineError> {
        let plain = self.open_at(u64::from(self.next), sealed)?;
        self.digest.update(sealed);
        self.next += 1;
        Ok(plain)
    }

    /// Opens chunk `index` alone (seeking): bound to its place and to whether it is the last.
    pub fn open_at(&self, index: u64, sealed: &[u8]) -> Result<Vec<u8>, EngineError> {
        let Ok(i) = u32::try_from(index) else { return Err(EngineError::Tampered) };
        if index >= self.chunks || sealed.len() > FILE_CHUNK_BYTES + CHUNK_TAG_BYTES {
            return Err(EngineError::Tampered);
        }
        open(&self.key.0, &nonce(i, index + 1 == self.chunks), AD, sealed)
    }

    /// Once every chunk is opened: whether the whole ciphertext is the one the message names.
    pub fn finish(self) -> Result<(), EngineError> {
        if u64::from(self.next) != self.chunks || self.digest.finish() != self.expected {
            return Err(EngineError::Tampered);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn sealed(key: &FileKey, plain: &[u8]) -> (Vec<Vec<u8>>, SealedFile) {
        let mut s = Sealer::new(key);
        let mut chunks: Vec<&[u8]> = plain.chunks(FILE_CHUNK_BYTES).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let n = chunks.len();
        let out = chunks.iter().enumerate().map(|(i, c)| s.seal(c, i + 1 == n).unwrap()).collect();
        (out, s.finish().unwrap())
    }

    fn opened(key: &FileKey, chunks: &[Vec<u8>], file: &SealedFile) -> Result<Vec<u8>, EngineError> {
        let mut o = Opener::new(key, file.size, file.digest)?;
        let mut plain = Vec::new();
        for c in chunks {
            plain.extend(o.open(c)?);
        }
        o.finish()?;
        Ok(plain)
    }

    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn files_of_any_size_go_and_come_back() {
        let mut e = SeededEntropy::new([1; 32]);
        for len in
            [0, 1, FILE_CHUNK_BYTES - 1, FILE_CHUNK_BYTES, FILE_CHUNK_BYTES + 1, 3 * FILE_CHUNK_BYTES + 5]
        {
            let key = FileKey::generate(&mut e).unwrap();
            let plain = file(len);
            let (chunks, f) = sealed(&key, &plain);
            assert_eq!(chunks.len() as u64, chunk_count(len as u64));
            assert_eq!(chunks.iter().map(Vec::len).sum::<usize>() as u64, sealed_size(len as u64));
            assert_eq!(opened(&key, &chunks, &f).unwrap(), plain, "{len} bytes");
        }
    }

    #[test]
    fn cut_reordered_spliced_or_tampered_files_are_refused() {
        let mut e = SeededEntropy::new([2; 32]);
        let key = FileKey::generate(&mut e).unwrap();
        let (chunks, f) = sealed(&key, &file(3 * FILE_CHUNK_BYTES + 10));
        // Cut short: the last chunk missing (the opener expects four).
        assert!(opened(&key, &chunks[..3], &f).is_err());
        // Cut short and claimed whole: a middle chunk does not open as the last.
        let short = SealedFile { size: 2 * FILE_CHUNK_BYTES as u64, digest: f.digest };
        assert!(opened(&key, &chunks[..2], &short).is_err());
        // Reordered.
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert!(opened(&key, &swapped, &f).is_err());
        // A chunk of another file under another key.
        let other = FileKey::generate(&mut e).unwrap();
        let (theirs, _) = sealed(&other, &file(2 * FILE_CHUNK_BYTES));
        let mut spliced = chunks.clone();
        spliced[1] = theirs[1].clone();
        assert!(opened(&key, &spliced, &f).is_err());
        // One bit changed.
        let mut flipped = chunks.clone();
        flipped[2][5] ^= 1;
        assert!(opened(&key, &flipped, &f).is_err());
        // Another digest than the message's.
        assert!(opened(&key, &chunks, &SealedFile { digest: [0; 32], ..f.clone() }).is_err());
        // Another key than the message's opens nothing.
        assert!(opened(&other, &chunks, &f).is_err());
        // Seeking: any chunk opens alone, at its place only.
        let o = Opener::new(&key, f.size, f.digest).unwrap();
        assert_eq!(
            o.open_at(2, &chunks[2]).unwrap(),
            file(3 * FILE_CHUNK_BYTES + 10)[2 * FILE_CHUNK_BYTES..3 * FILE_CHUNK_BYTES]
        );
        assert!(o.open_at(1, &chunks[2]).is_err());
        assert!(o.open_at(4, &chunks[3]).is_err());
    }

    #[test]
    fn a_sealer_keeps_to_its_rules_and_the_key_never_prints() {
        let mut e = SeededEntropy::new([3; 32]);
        let key = FileKey::generate(&mut e).unwrap();
        let mut s = Sealer::new(&key);
        assert!(s.seal(&[0; 10], false).is_err(), "only the last chunk may be short");
        s.seal(&[0; 10], true).unwrap();
        assert!(s.seal(&[0; 10], true).is_err(), "nothing after the last");
        assert!(Sealer::new(&key).finish().is_err(), "finished before the last chunk");
        assert_eq!(format!("{key:?}"), "FileKey");
        assert!(Opener::new(&key, MAX_FILE_BYTES + 1, [0; 32]).is_err());
    }
}
