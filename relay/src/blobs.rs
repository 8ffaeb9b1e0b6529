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
//! - A blob lives `--blob-ttl-secs` (30 days) from when it became whole; a purge deletes what
//!   expired, and uploads left unfinished for [`UNFINISHED_IDLE_SECS`] (giving their reserved
//!   bytes back to the budget).
//! - At most [`MAX_PUTS`] pieces are received at once, [`MAX_PUTS_PER_IP`] from one address, each
//!   within [`PUT_DEADLINE_SECS`]: slow senders cannot pin the relay's memory.
//!
//! On disk, under `<data dir>/blobs/`: `<id>.part` while uploading, `<id>` once whole, and
//! `<id>.meta` (postcard `BlobMeta`).

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use tokio::io::AsyncWriteExt;

const META_VERSION: u8 = 1;

/// An upload that received nothing for this long is dropped, its bytes given back.
pub const UNFINISHED_IDLE_SECS: u64 = 3600;
/// Pieces received at once, from everyone and from one address (each up to 4 MiB in memory).
pub const MAX_PUTS: usize = 32;
pub const MAX_PUTS_PER_IP: usize = 4;
/// The time a piece's body has to arrive in whole.
pub const PUT_DEADLINE_SECS: u64 = 120;

pub use sotto_shared::ids::BlobId;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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
    #[error("the relay is receiving too many files now; retry shortly")]
    Busy,
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
    /// Pieces being received, by address.
    receiving: Mutex<HashMap<IpAddr, usize>>,
}

/// A blob being written; dropped (even when its request is), it lets the next piece in.
struct Writing<'a> {
    set: &'a Mutex<HashSet<BlobId>>,
    id: BlobId,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.id);
        }
    }
}

/// A place to receive one piece from an address (see [`Blobs::admit`]).
pub struct Receiving<'a> {
    map: &'a Mutex<HashMap<IpAddr, usize>>,
    ip: IpAddr,
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && let Some(n) = map.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
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
            receiving: Mutex::new(HashMap::new()),
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

    /// Room to receive a piece from `ip`, or `Busy`: at most [`MAX_PUTS`] at once, and
    /// [`MAX_PUTS_PER_IP`] from one address.
    pub fn admit(&self, ip: IpAddr) -> Result<Receiving<'_>, BlobError> {
        let mut map = self.receiving.lock().map_err(|_| BlobError::Io)?;
        let total: usize = map.values().sum();
        let mine = map.entry(ip).or_insert(0);
        if total >= MAX_PUTS || *mine >= MAX_PUTS_PER_IP {
            if *mine == 0 {
                map.remove(&ip);
            }
            return Err(BlobError::Busy);
        }
        *mine += 1;
        Ok(Receiving { map: &self.receiving, ip })
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
                .map_err(|_| BlobError::Io)?;
            // The new entries survive a power loss before the first piece is acknowledged.
            sync_dir(&self.dir).await;
            Ok(())
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

    /// How many bytes of the blob are stored, and its size. A blob whose last piece is on disk
    /// but which was not made whole (the relay died between the two) is made whole now.
    pub async fn received(
        &self,
        id: BlobId,
        capability: &[u8; 32],
        now: u64,
    ) -> Result<(u64, u64), BlobError> {
        let meta = self.meta(id, capability).await?;
        if self.whole(id).is_some() {
            return Ok((meta.size, meta.size));
        }
        let len =
            tokio::fs::metadata(self.path(id, Some("part"))).await.map_err(|_| BlobError::NotFound)?.len();
        // (Unless a piece is being written: its writer makes it whole.)
        if len == meta.size && self.writing.lock().map_err(|_| BlobError::Io)?.insert(id) {
            let _writing = Writing { set: &self.writing, id };
            if self.whole(id).is_none() {
                self.make_whole(id, meta, now).await?;
            }
        }
        Ok((len, meta.size))
    }

    /// Renames a full `.part` to the blob, its time to live counted from `now`.
    async fn make_whole(&self, id: BlobId, mut meta: BlobMeta, now: u64) -> Result<(), BlobError> {
        // Its time to live counts from now: a file's message may wait in the sender's outbox
        // and the recipient's mailbox for as long as the blob was uploading.
        meta.expires_at = now + self.ttl_secs;
        let bytes = postcard::to_allocvec(&meta).map_err(|_| BlobError::Io)?;
        write_replacing(&self.dir, &self.path(id, Some("meta")), &bytes).await?;
        tokio::fs::rename(self.path(id, Some("part")), self.path(id, None))
            .await
            .map_err(|_| BlobError::Io)?;
        sync_dir(&self.dir).await;
        Ok(())
    }

    /// Deletes a blob its uploader gave up on (a cancelled upload), giving its room back.
    pub async fn delete(&self, id: BlobId, capability: &[u8; 32]) -> Result<(), BlobError> {
        let meta = self.meta(id, capability).await?;
        let _ = tokio::fs::remove_file(self.path(id, Some("part"))).await;
        let _ = tokio::fs::remove_file(self.path(id, None)).await;
        tokio::fs::remove_file(self.path(id, Some("meta"))).await.map_err(|_| BlobError::NotFound)?;
        self.used.fetch_sub(meta.size.min(self.used.load(SeqCst)), SeqCst);
        Ok(())
    }

    /// Whether a piece for `offset` would be taken (the capability fits and the blob ends
    /// there), asked before its body is read; `append` asks again.
    pub async fn check(
        &self,
        id: BlobId,
        capability: &[u8; 32],
        offset: u64,
        now: u64,
    ) -> Result<(), BlobError> {
        let (received, size) = self.received(id, capability, now).await?;
        if received == size || offset != received {
            return Err(BlobError::WrongOffset { received });
        }
        Ok(())
    }

    /// Appends `piece` at `offset` at `now` (Unix seconds); answers with what is stored once it
    /// is on disk. The piece that makes the blob whole starts its time to live.
    pub async fn append(
        &self,
        id: BlobId,
        capability: &[u8; 32],
        offset: u64,
        piece: &[u8],
        now: u64,
    ) -> Result<u64, BlobError> {
        let meta = self.meta(id, capability).await?;
        if !self.writing.lock().map_err(|_| BlobError::Io)?.insert(id) {
            // Another request of the uploader's is writing (a retry after a timeout).
            return Err(BlobError::Busy);
        }
        let _writing = Writing { set: &self.writing, id };
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
            self.make_whole(id, meta, now).await?;
        }
        Ok(end)
    }

    /// Deletes the blobs whose time is over by `now`, and uploads idle for
    /// [`UNFINISHED_IDLE_SECS`], at most `limit`; returns how many.
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
            let stem = path.with_extension("");
            let idle = std::fs::metadata(stem.with_extension("part"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .is_some_and(|touched| now.saturating_sub(touched.as_secs()) >= UNFINISHED_IDLE_SECS);
            if meta.expires_at > now && !idle {
                continue;
            }
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

/// Replaces `path` with `bytes` whole or not at all (a crash mid-write leaves the old file).
async fn write_replacing(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), BlobError> {
    let fresh = path.with_extension("meta-new");
    write_synced(&fresh, bytes).await?;
    tokio::fs::rename(&fresh, path).await.map_err(|_| BlobError::Io)?;
    sync_dir(dir).await;
    Ok(())
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
        assert_eq!(blobs.append(id, &[9; 32], 0, b"abc", 1).await, Err(BlobError::NotYours));
        assert_eq!(blobs.append(id, &cap, 0, b"abcd", 1).await, Ok(4));
        assert_eq!(blobs.append(id, &cap, 0, b"abcd", 1).await, Err(BlobError::WrongOffset { received: 4 }));
        assert_eq!(blobs.check(id, &cap, 0, 1).await, Err(BlobError::WrongOffset { received: 4 }));
        blobs.check(id, &cap, 4, 1).await.unwrap();
        assert_eq!(blobs.append(id, &cap, 4, b"efghijk", 1).await, Err(BlobError::TooLong));
        assert_eq!(blobs.received(id, &cap, 1).await, Ok((4, 10)));
        assert!(blobs.whole(id).is_none());
        // One writer at a time; a request dropped while writing (its future dropped, with the
        // guard it holds) lets the next piece in.
        {
            blobs.writing.lock().unwrap().insert(id);
            let _writing = Writing { set: &blobs.writing, id };
            assert_eq!(blobs.append(id, &cap, 4, b"efghij", 1).await, Err(BlobError::Busy));
        }
        assert_eq!(blobs.append(id, &cap, 4, b"efghij", 1).await, Ok(10));
        assert_eq!(std::fs::read(blobs.whole(id).unwrap()).unwrap(), b"abcdefghij");
        // Counted again when the store is opened again.
        let again = Blobs::open(dir.path(), 100, 105, 0).unwrap();
        assert_eq!(again.used.load(SeqCst), 10);
        // A TTL of 0: expired at once.
        assert_eq!(again.purge(10, 1), 1);
        assert!(again.whole(id).is_none());
        assert_eq!(again.used.load(SeqCst), 0);
    }

    #[tokio::test]
    async fn time_to_live_counts_from_the_last_piece_and_idle_uploads_give_their_room_back() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), 100, 100, 10_000).unwrap();
        let now = unix_secs();
        let (done, cap) = blobs.create(4, now - 9_000).await.unwrap();
        assert_eq!(blobs.append(done, &cap, 0, b"abcd", now).await, Ok(4));
        let (idle, cap2) = blobs.create(90, now).await.unwrap();
        assert_eq!(blobs.append(idle, &cap2, 0, b"ab", now).await, Ok(2));
        assert_eq!(blobs.create(20, now).await, Err(BlobError::Full));
        assert_eq!(blobs.purge(10, now + 1_500), 0, "made 9,000 s ago, whole now: lives 10,000 s more");
        // An upload that received nothing for an hour is dropped and its 90 bytes freed.
        assert_eq!(blobs.purge(10, now + UNFINISHED_IDLE_SECS + 5), 1);
        assert!(blobs.received(idle, &cap2, now).await.is_err());
        assert!(blobs.whole(done).is_some());
        blobs.create(20, now).await.unwrap();
        // Room to receive: four pieces from one address at once.
        let ip: IpAddr = [10, 0, 0, 1].into();
        let held: Vec<_> = (0..MAX_PUTS_PER_IP).map(|_| blobs.admit(ip).unwrap()).collect();
        assert!(matches!(blobs.admit(ip), Err(BlobError::Busy)));
        assert!(blobs.admit([10, 0, 0, 2].into()).is_ok(), "others go on");
        drop(held);
        assert!(blobs.admit(ip).is_ok());
    }

    #[tokio::test]
    async fn a_blob_whose_last_piece_landed_before_a_crash_is_made_whole_and_a_cancelled_one_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path(), 100, 100, 1000).unwrap();
        let (id, cap) = blobs.create(4, 1).await.unwrap();
        // The last piece is on disk, but the relay died before the rename.
        std::fs::write(blobs.path(id, Some("part")), b"abcd").unwrap();
        assert!(blobs.whole(id).is_none());
        assert_eq!(blobs.received(id, &cap, 7).await, Ok((4, 4)));
        assert_eq!(std::fs::read(blobs.whole(id).expect("made whole when asked")).unwrap(), b"abcd");
        assert_eq!(
            read_meta(&blobs.path(id, Some("meta"))).unwrap().expires_at,
            1007,
            "from when it was whole"
        );
        // A cancelled upload: its uploader deletes it, and its room comes back.
        let (gone, cap2) = blobs.create(96, 1).await.unwrap();
        assert_eq!(blobs.create(1, 1).await, Err(BlobError::Full));
        assert_eq!(blobs.delete(gone, &cap).await, Err(BlobError::NotYours));
        blobs.delete(gone, &cap2).await.unwrap();
        assert!(blobs.received(gone, &cap2, 7).await.is_err());
        blobs.create(90, 1).await.unwrap();
    }

    fn unix_secs() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }
}
