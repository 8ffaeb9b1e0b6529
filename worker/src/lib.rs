//! The web app's file worker (`client/static/file-worker.js` drives it): seals a file piece by
//! piece as it is read from disk, and opens one piece by piece as it is downloaded, so neither
//! side holds a whole file. A piece is [`PIECE_CHUNKS`] chunks: one upload request's worth.
//! Everything cryptographic is `sotto_engine::file`; this crate only hands bytes across.

#![forbid(unsafe_code)]

use sotto_engine::EngineError;
use sotto_engine::consts::FILE_CHUNK_BYTES;
use sotto_engine::file::{CHUNK_TAG_BYTES, FileKey, Opener, Sealer};
use sotto_engine::random::OsEntropy;
use sotto_shared::limits::MAX_BLOB_PIECE_BYTES;

/// Chunks per piece: the most whose ciphertext fits one upload request.
pub const PIECE_CHUNKS: usize = MAX_BLOB_PIECE_BYTES / (FILE_CHUNK_BYTES + CHUNK_TAG_BYTES);

/// Plaintext bytes per piece (the last piece may be shorter).
pub const PIECE_BYTES: usize = PIECE_CHUNKS * FILE_CHUNK_BYTES;

/// Ciphertext bytes of a whole piece.
pub const SEALED_PIECE_BYTES: usize = PIECE_CHUNKS * (FILE_CHUNK_BYTES + CHUNK_TAG_BYTES);

/// Seals one file: a fresh key, then its pieces in order.
pub struct Sealing {
    key: FileKey,
    sealer: Option<Sealer>,
    /// Pieces sealed so far.
    pieces: u64,
}

impl Sealing {
    pub fn new() -> Result<Sealing, EngineError> {
        let key = FileKey::generate(&mut OsEntropy)?;
        let sealer = Some(Sealer::new(&key));
        Ok(Sealing { key, sealer, pieces: 0 })
    }

    pub fn key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Seals the next piece: [`PIECE_BYTES`] of plaintext, or fewer if it is the `last`.
    pub fn seal(&mut self, piece: &[u8], last: bool) -> Result<Vec<u8>, EngineError> {
        let sealer = self.sealer.as_mut().ok_or(EngineError::Internal("sealed past the end"))?;
        if piece.len() > PIECE_BYTES || (!last && piece.len() != PIECE_BYTES) {
            return Err(EngineError::Internal("a piece of the wrong size"));
        }
        if piece.is_empty() && self.pieces > 0 {
            // Only an empty file has an empty piece: after full ones, the last full piece was
            // the last, and sealing it so is the caller's job.
            return Err(EngineError::Internal("an empty piece after others"));
        }
        self.pieces += 1;
        let mut out = Vec::with_capacity(piece.len() + PIECE_CHUNKS * CHUNK_TAG_BYTES);
        let mut chunks = piece.chunks(FILE_CHUNK_BYTES).peekable();
        if chunks.peek().is_none() {
            // An empty file is one empty chunk.
            out.extend(sealer.seal(&[], true)?);
        }
        while let Some(chunk) = chunks.next() {
            out.extend(sealer.seal(chunk, last && chunks.peek().is_none())?);
        }
        Ok(out)
    }

    /// The ciphertext's digest, once the last piece is sealed.
    pub fn finish(&mut self) -> Result<[u8; 32], EngineError> {
        let sealer = self.sealer.take().ok_or(EngineError::Internal("finished twice"))?;
        Ok(sealer.finish()?.digest)
    }
}

/// Opens one file, its pieces in order, checked against its message's key and digest.
pub struct Opening {
    opener: Option<Opener>,
}

impl Opening {
    pub fn new(key: [u8; 32], size: u64, digest: [u8; 32]) -> Result<Opening, EngineError> {
        Ok(Opening { opener: Some(Opener::new(&FileKey::from_bytes(key), size, digest)?) })
    }

    /// Opens the next piece of ciphertext ([`SEALED_PIECE_BYTES`], the last shorter).
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>, EngineError> {
        let opener = self.opener.as_mut().ok_or(EngineError::Internal("opened past the end"))?;
        let mut out = Vec::with_capacity(sealed.len());
        for chunk in sealed.chunks(FILE_CHUNK_BYTES + CHUNK_TAG_BYTES) {
            out.extend(opener.open(chunk)?);
        }
        Ok(out)
    }

    /// Whether the whole ciphertext was the one the message names (after the last piece).
    pub fn finish(&mut self) -> Result<(), EngineError> {
        self.opener.take().ok_or(EngineError::Internal("finished twice"))?.finish()
    }
}

#[cfg(target_arch = "wasm32")]
mod bindings;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_seal_and_open_like_the_engine_chunks() {
        for len in [0, 1, PIECE_BYTES - 1, PIECE_BYTES, 2 * PIECE_BYTES + 77] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut s = Sealing::new().unwrap();
            let pieces: Vec<&[u8]> = if len == 0 { vec![&[]] } else { plain.chunks(PIECE_BYTES).collect() };
            let n = pieces.len();
            let sealed: Vec<Vec<u8>> =
                pieces.iter().enumerate().map(|(i, p)| s.seal(p, i + 1 == n).unwrap()).collect();
            let digest = s.finish().unwrap();
            assert!(sealed.iter().all(|p| p.len() <= SEALED_PIECE_BYTES));
            let total: usize = sealed.iter().map(Vec::len).sum();
            assert_eq!(total as u64, sotto_engine::file::sealed_size(len as u64));
            let mut o = Opening::new(s.key(), len as u64, digest).unwrap();
            let mut back = Vec::new();
            for p in &sealed {
                back.extend(o.open(p).unwrap());
            }
            o.finish().unwrap();
            assert_eq!(back, plain, "{len} bytes");
            // An empty piece after full ones is refused (only an empty file has one).
            if len >= PIECE_BYTES {
                let mut s = Sealing::new().unwrap();
                s.seal(&plain[..PIECE_BYTES], false).unwrap();
                assert!(s.seal(&[], true).is_err());
            }
            // A piece out of order does not open.
            if sealed.len() > 1 {
                let mut o = Opening::new(s.key(), len as u64, digest).unwrap();
                assert!(o.open(&sealed[1]).is_err());
            }
        }
        assert_eq!(PIECE_CHUNKS, 63, "as docs/protocol.md says");
    }
}
