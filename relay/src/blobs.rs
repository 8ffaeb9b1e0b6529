//! Encrypted file blobs (issue 14): the ciphertext of a file, uploaded in pieces, resumable,
//! and downloaded with ranges. The relay sees sizes only: blob ids are random (never derived
//! from content, never deduplicated), and what it stores was encrypted in the browser.
//!
//! - `POST /blobs` with `x-sotto-blob-size: <bytes>` makes an empty blob: its id and an upload
//!   capability (32 random bytes; the relay keeps only their SHA-256), so only the uploader can
//!   fill it. It counts against `--max-blob-store-bytes` from that moment.
//! - `PUT /blobs/<id>` with `Authorization: Bearer <capability>` and `x-sotto-offset: <n>`
//!   appends the body (at most `MAX_BLOB_PIECE_BYTES`) where the blob ends; it answers once the
//!   bytes are on disk (fsync). `GET /blobs/<id>/received` (with the capability) says how much is
//!   stored, to resume after a dropped connection or a restart. The last piece makes it whole.
//! - `GET /blobs/<id>` serves a whole blob, with `Range` (seeking in a video).
//! - A blob lives `--blob-ttl-secs` (30 days) from its making; a purge deletes what expired.
//!
//! On disk, under `<data dir>/blobs/`: `<id>.part` while uploading, `<id>` once whole, and
//! `<id>.meta` (postcard `BlobMeta`).

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use tokio::io::AsyncWriteExt;

const META_VERSION: u8 = 1;

pub use sotto_shared::ids::BlobId;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BlobMeta {
    v: u8,
    size: u64,
    upload_hash: [u8; 32],
    expires_at: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    #[error("a blob takes 1 to {0} bytes")]
    BadSize(u64),
    #[error("the relay's space for files is full; try again later")]
    Full,
    #[error("no such blob (it expired, or was never made)")]
    NotFound,
    #[error("that upload capability does not fill this blob")]
    NotYours,
    #[error("the upload is at {received} bytes; send from there")]
    WrongOffset { received: u64 },
    #[error("that piece goes past the blob's size")]
    TooLong,
    #[error("the relay could not store that; retry")]
    Io,
}

fn hash(capability: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"sotto-blob-upload-v1");
    h.update(capability);
    h.finalize().into()
}

/// The blob store: a directory, its byte budget, and which uploads are in progress.
pub struct Blobs {
    dir: PathBuf,
    max_blob: u64,
    max_store: u64,
    ttl_secs: u64,
    /// Bytes promised to blobs that exist (their full sizes).
    used: AtomicU64,
    /// Blobs with a `PUT` in progress: one at a time each.
    writing: Mutex<HashSet<BlobId>>,
}

impl Blobs {
    /// Opens (making if needed) `<data_dir>/blobs` and counts what it holds.
    pub fn open(data_dir: &Path, max_blob: u64, max_store: u64, ttl_secs: u64) -> std::io::Result<Blobs> {
        let dir = data_dir.join("blobs");
        std::fs::create_dir_all(&dir)?;
        let blobs = Blobs {
            dir,
            max_blob,
            max_store,
            ttl_secs,
            used: AtomicU64::new(0),
            writing: Mutex::new(HashSet::new()),
        };
        let mut used = 0;
        for entry in std::fs::read_dir(&blobs.dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "meta")
                && let Some(meta) = read_meta(&path)
            {
                used += meta.size;
            }
        }
        blobs.used.store(used, SeqCst);
        Ok(blobs)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: BlobId, ext: Option<&str>) -> PathBuf {
        match ext {
            Some(ext) => self.dir.join(format!("{}.{ext}", id.to_hex())),
            None => self.dir.join(id.to_hex()),
        }
    }

    /// The whole blob's file, if it is whole.
    pub fn whole(&self, id: BlobId) -> Option<PathBuf> {
        let path = self.path(id, None);
        path.is_file().then_some(path)
    }

    /// Makes an empty blob of `size` bytes at `now` (Unix seconds): its id and the upload
    /// capability.
    pub async fn create(&self, size: u64, now: u64) -> Result<(BlobId, [u8; 32]), BlobError> {
        if size == 0 || size > self.max_blob {
            return Err(BlobError::BadSize(self.max_blob));
        }
        let reserved =
            self.used.fetch_update(SeqCst, SeqCst, |u| (u + size <= self.max_store).then_some(u + size));
        if reserved.is_err() {
            return Err(BlobError::Full);
        }
        let mut id = [0u8; 16];
        let mut capability = [0u8; 32];
        if getrandom::fill(&mut id).and(getrandom::fill(&mut capability)).is_err() {
            self.used.fetch_sub(size, SeqCst);
            return Err(BlobError::Io);
        }
        let id = BlobId(id);
        let meta = BlobMeta {
            v: META_VERSION,
            size,
            upload_hash: hash(&capability),
            expires_at: now + self.ttl_secs,
        };
        let written = async {
            let bytes = postcard::to_allocvec(&meta).map_err(|_| BlobError::Io)?;
            write_synced(&self.path(id, Some("meta")), &bytes).await?;
            tokio::fs::File::create(self.path(id, Some("part")))
                .await
                .map_err(|_| BlobError::Io)?
                .sync_all()
                .await
                .map_err(|_| BlobError::Io)
        };
        if let Err(e) = written.await {
            self.used.fetch_sub(size, SeqCst);
            return Err(e);
        }
        Ok((id, capability))
    }

    async fn meta(&self, id: BlobId, capability: &[u8; 32]) -> Result<BlobMeta, BlobError> {
        let path = self.path(id, Some("meta"));
        let meta = tokio::task::spawn_blocking(move || read_meta(&path))
            .await
            .ok()
            .flatten()
            .ok_or(BlobError::NotFound)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&meta.upload_hash[..], &hash(capability)[..])) {
            return Err(BlobError::NotYours);
        }
        Ok(meta)
    }

    /// How many bytes of the blob are stored, and its size.
    pub async fn received(&self, id: BlobId, capability: &[u8; 32]) -> Result<(u64, u64), BlobError> {
        let meta = self.meta(id, capability).await?;
        if self.whole(id).is_some() {
            return Ok((meta.size, meta.size));
        }
        let len =
            tokio::fs::metadata(self.path(id, Some("part"))).await.map_err(|_| BlobError::NotFound)?.len();
        Ok((len, meta.size))
    }

    /// Appends `piece` at `offset`; answers with what is stored once it is on disk.
    pub async fn append(
        &self,
        id: BlobId,
        capability: &[u8; 32],
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, BlobError> {
        let meta = self.meta(id, capability).await?;
        if !self.writing.lock().map_err(|_| BlobError::Io)?.insert(id) {
            return Err(BlobError::WrongOffset { received: offset });
        }
        let result = self.append_locked(id, &meta, offset, piece).await;
        if let Ok(mut writing) = self.writing.lock() {
            writing.remove(&id);
        }
        result
    }

    async fn append_locked(
        &self,
        id: BlobId,
        meta: &BlobMeta,
        offset: u64,
        piece: &[u8],
    ) -> Result<u64, BlobError> {
        let part = self.path(id, Some("part"));
        if self.whole(id).is_some() {
            return Err(BlobError::WrongOffset { received: meta.size });
        }
        let mut file =
            tokio::fs::OpenOptions::new().append(true).open(&part).await.map_err(|_| BlobError::NotFound)?;
        let received = file.metadata().await.map_err(|_| BlobError::Io)?.len();
        if offset != received {
            return Err(BlobError::WrongOffset { received });
        }
        let end = received + piece.len() as u64;
        if end > meta.size {
            return Err(BlobError::TooLong);
        }
        file.write_all(piece).await.map_err(|_| BlobError::Io)?;
        file.sync_all().await.map_err(|_| BlobError::Io)?;
        if end == meta.size {
            tokio::fs::rename(&part, self.path(id, None)).await.map_err(|_| BlobError::Io)?;
            sync_dir(&self.dir).await;
        }
        Ok(end)
    }

    /// Deletes the blobs whose time is over by `now`, at most `limit`; returns how many.
    pub fn purge(&self, limit: usize, now: u64) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut purged = 0;
        for entry in entries.flatten() {
            if purged >= limit {
                break;
            }
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "meta") {
                continue;
            }
            let Some(meta) = read_meta(&path) else { continue };
            if meta.expires_at > now {
                continue;
            }
            let stem = path.with_extension("");
            let _ = std::fs::remove_file(&stem);
            let _ = std::fs::remove_file(stem.with_extension("part"));
            if std::fs::remove_file(&path).is_ok() {
                self.used.fetch_sub(meta.size.min(self.used.load(SeqCst)), SeqCst);
                purged += 1;
            }
        }
        purged
    }
}

fn read_meta(path: &Path) -> Option<BlobMeta> {
    let bytes = std::fs::read(path).ok()?;
    postcard::from_bytes::<BlobMeta>(&bytes).ok().filter(|m| m.v == META_VERSION)
}

async fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let mut f = tokio::fs::File::create(path).await.map_err(|_| BlobError::Io)?;
    f.write_all(bytes).await.map_err(|_| BlobError::Io)?;
    f.sync_all().await.map_err(|_| BlobError::Io)
}

/// Makes a rename durable (the directory's entry), where the platform allows.
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_fill_in_order_by_their_uploader_only_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), 100, 105, 0).unwrap();
        assert_eq!(blobs.create(101, 1).await, Err(BlobError::BadSize(100)));
        let (id, cap) = blobs.create(10, 1).await.unwrap();
        assert_eq!(blobs.create(96, 1).await, Err(BlobError::Full), "10 of 105 promised");
        assert_eq!(blobs.append(id, &[9; 32], 0, b"abc").await, Err(BlobError::NotYours));
        assert_eq!(blobs.append(id, &cap, 0, b"abcd").await, Ok(4));
        assert_eq!(blobs.append(id, &cap, 0, b"abcd").await, Err(BlobError::WrongOffset { received: 4 }));
        assert_eq!(blobs.append(id, &cap, 4, b"efghijk").await, Err(BlobError::TooLong));
        assert_eq!(blobs.received(id, &cap).await, Ok((4, 10)));
        assert!(blobs.whole(id).is_none());
        assert_eq!(blobs.append(id, &cap, 4, b"efghij").await, Ok(10));
        assert_eq!(std::fs::read(blobs.whole(id).unwrap()).unwrap(), b"abcdefghij");
        // Counted again when the store is opened again.
        let again = Blobs::open(dir.path(), 100, 105, 0).unwrap();
        assert_eq!(again.used.load(SeqCst), 10);
        // A TTL of 0: expired at once.
        assert_eq!(again.purge(10, 1), 1);
        assert!(again.whole(id).is_none());
        assert_eq!(again.used.load(SeqCst), 0);
    }
}
