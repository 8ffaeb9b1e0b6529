//! Topic logs in the redb store (schema 4): each group's posts, kept once whatever the number of
//! readers, numbered per topic, bounded in count and bytes (the oldest go first), expiring with
//! their TTL, and the topic itself forgotten after a long silence.
//!
//! Tables (keys → values):
//! - `topics`: topic key → postcard `TopicRecord`
//! - `posts`: (topic key, seq) → postcard `StoredPost`
//! - `post_ids`: (topic key, message id) → seq, for deduplication
//! - `post_expiry`: (expires at, topic key, seq) → (), so a purge visits only what is due
//! - `idle_topics`: (forget at, topic key) → () for every topic holding no post

use super::{
    NewPost, Quotas, STORED_POST_VERSION, StoreError, StoredPost, TopicInfo, TopicKey, TopicPage, WriteResult,
};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sotto_shared::MessageId;
use sotto_shared::limits::TOPIC_IDLE_SECS;

type Key = [u8; 32];

pub(super) const TOPICS: TableDefinition<Key, &[u8]> = TableDefinition::new("topics");
pub(super) const POSTS: TableDefinition<(Key, u64), &[u8]> = TableDefinition::new("posts");
pub(super) const POST_IDS: TableDefinition<(Key, [u8; 16]), u64> = TableDefinition::new("post_ids");
pub(super) const POST_EXPIRY: TableDefinition<(u64, Key, u64), ()> = TableDefinition::new("post_expiry");
pub(super) const IDLE_TOPICS: TableDefinition<(u64, Key), ()> = TableDefinition::new("idle_topics");

/// Version of [`TopicRecord`].
const TOPIC_RECORD_VERSION: u8 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicRecord {
    v: u8,
    write_hash: [u8; 32],
    /// The number the next post gets.
    next_seq: u64,
    posts: u64,
    bytes: u64,
    /// While the topic holds no post: when it is forgotten (its `idle_topics` entry).
    idle_until: Option<u64>,
}

fn decode_topic(bytes: &[u8]) -> Result<TopicRecord, StoreError> {
    let r: TopicRecord = postcard::from_bytes(bytes)?;
    if r.v != TOPIC_RECORD_VERSION {
        return Err(StoreError::RecordVersion { found: r.v, expected: TOPIC_RECORD_VERSION });
    }
    Ok(r)
}

fn decode_post(bytes: &[u8]) -> Result<StoredPost, StoreError> {
    let r: StoredPost = postcard::from_bytes(bytes)?;
    if r.v != STORED_POST_VERSION {
        return Err(StoreError::RecordVersion { found: r.v, expected: STORED_POST_VERSION });
    }
    Ok(r)
}

/// Creates the tables, so readers never meet a missing one.
pub(super) fn create(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(TOPICS)?;
    tx.open_table(POSTS)?;
    tx.open_table(POST_IDS)?;
    tx.open_table(POST_EXPIRY)?;
    tx.open_table(IDLE_TOPICS)?;
    Ok(())
}

/// What a purge of topics freed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Purged {
    pub posts: u64,
    pub bytes: u64,
    pub topics: u64,
}

/// The topic tables one write transaction touches, opened when its batch first needs them.
pub(super) struct TopicTables<'t> {
    topics: redb::Table<'t, Key, &'static [u8]>,
    posts: redb::Table<'t, (Key, u64), &'static [u8]>,
    ids: redb::Table<'t, (Key, [u8; 16]), u64>,
    expiry: redb::Table<'t, (u64, Key, u64), ()>,
    idle: redb::Table<'t, (u64, Key), ()>,
}

impl<'t> TopicTables<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(TopicTables {
            topics: tx.open_table(TOPICS)?,
            posts: tx.open_table(POSTS)?,
            ids: tx.open_table(POST_IDS)?,
            expiry: tx.open_table(POST_EXPIRY)?,
            idle: tx.open_table(IDLE_TOPICS)?,
        })
    }

    fn record(&self, topic: &TopicKey) -> Result<Option<TopicRecord>, StoreError> {
        self.topics.get(topic.0)?.map(|v| decode_topic(v.value())).transpose()
    }

    fn put(&mut self, topic: &TopicKey, r: &TopicRecord) -> Result<(), StoreError> {
        self.topics.insert(topic.0, postcard::to_allocvec(r)?.as_slice())?;
        Ok(())
    }

    /// Sets (or clears) when an empty topic is forgotten, keeping `idle_topics` in step.
    fn set_idle(
        &mut self,
        topic: &TopicKey,
        r: &mut TopicRecord,
        until: Option<u64>,
    ) -> Result<(), StoreError> {
        if r.idle_until == until {
            return Ok(());
        }
        if let Some(old) = r.idle_until {
            self.idle.remove((old, topic.0))?;
        }
        if let Some(new) = until {
            self.idle.insert((new, topic.0), ())?;
        }
        r.idle_until = until;
        Ok(())
    }

    /// Opens a topic, or keeps an open one from being forgotten while its readers come back.
    pub(super) fn open_topic(
        &mut self,
        topic: TopicKey,
        write_hash: [u8; 32],
        now: u64,
    ) -> Result<WriteResult, StoreError> {
        let until = Some(now + TOPIC_IDLE_SECS);
        match self.record(&topic)? {
            Some(r) if r.write_hash != write_hash => Ok(WriteResult::WrongWriteKey),
            Some(mut r) => {
                if r.posts == 0 {
                    self.set_idle(&topic, &mut r, until)?;
                    self.put(&topic, &r)?;
                }
                Ok(WriteResult::TopicOpened { new: false })
            }
            None => {
                // Numbered from the time it opens (in milliseconds), so a topic forgotten after
                // a long silence and opened again never reuses a number its readers hold as a
                // cursor.
                let mut r = TopicRecord {
                    v: TOPIC_RECORD_VERSION,
                    write_hash,
                    next_seq: now.saturating_mul(1000).max(1),
                    posts: 0,
                    bytes: 0,
                    idle_until: None,
                };
                self.set_idle(&topic, &mut r, until)?;
                self.put(&topic, &r)?;
                Ok(WriteResult::TopicOpened { new: true })
            }
        }
    }

    /// Appends a post, then drops the oldest while the log is over its quotas.
    pub(super) fn post(&mut self, quotas: &Quotas, p: NewPost) -> Result<WriteResult, StoreError> {
        let Some(mut r) = self.record(&p.topic)? else { return Ok(WriteResult::NoSuchTopic) };
        if r.write_hash != p.write_hash {
            return Ok(WriteResult::WrongWriteKey);
        }
        if self.ids.get((p.topic.0, p.id.0))?.is_some() {
            return Ok(WriteResult::Duplicate);
        }
        let seq = r.next_seq;
        r.next_seq += 1;
        let size = p.payload.len() as u64;
        let record = StoredPost {
            v: STORED_POST_VERSION,
            seq,
            id: p.id,
            received_at: p.received_at,
            expires_at: p.expires_at,
            payload: p.payload,
        };
        self.posts.insert((p.topic.0, seq), postcard::to_allocvec(&record)?.as_slice())?;
        self.ids.insert((p.topic.0, p.id.0), seq)?;
        self.expiry.insert((p.expires_at, p.topic.0, seq), ())?;
        r.posts += 1;
        r.bytes += size;
        self.set_idle(&p.topic, &mut r, None)?;
        let (mut dropped, mut freed) = (0u64, 0u64);
        while r.posts > quotas.max_topic_posts || r.bytes > quotas.max_topic_bytes {
            // The new post itself stays (the relay refuses posts larger than the log).
            let Some(oldest) = self.oldest(&p.topic)?.filter(|o| o.seq != seq) else { break };
            let size = self.remove(&p.topic, oldest)?;
            r.posts -= 1;
            r.bytes = r.bytes.saturating_sub(size);
            dropped += 1;
            freed += size;
        }
        self.put(&p.topic, &r)?;
        Ok(WriteResult::Posted { seq, size, dropped, freed })
    }

    fn oldest(&self, topic: &TopicKey) -> Result<Option<StoredPost>, StoreError> {
        match self.posts.range((topic.0, 0)..=(topic.0, u64::MAX))?.next() {
            Some(entry) => Ok(Some(decode_post(entry?.1.value())?)),
            None => Ok(None),
        }
    }

    /// Removes one post and its index entries; returns its payload size.
    fn remove(&mut self, topic: &TopicKey, post: StoredPost) -> Result<u64, StoreError> {
        self.posts.remove((topic.0, post.seq))?;
        self.ids.remove((topic.0, post.id.0))?;
        self.expiry.remove((post.expires_at, topic.0, post.seq))?;
        Ok(post.payload.len() as u64)
    }

    /// Drops at most `limit` expired posts, then at most `limit` topics empty for too long.
    pub(super) fn purge(&mut self, now: u64, limit: usize) -> Result<Purged, StoreError> {
        let mut out = Purged::default();
        let mut due = Vec::new();
        for entry in self.expiry.range((0, [0; 32], 0)..=(now, [0xff; 32], u64::MAX))?.take(limit) {
            due.push(entry?.0.value());
        }
        for (_, topic, seq) in due {
            let topic = TopicKey(topic);
            let Some(post) = self.posts.get((topic.0, seq))?.map(|v| decode_post(v.value())).transpose()?
            else {
                continue;
            };
            let size = self.remove(&topic, post)?;
            if let Some(mut r) = self.record(&topic)? {
                r.posts = r.posts.saturating_sub(1);
                r.bytes = r.bytes.saturating_sub(size);
                if r.posts == 0 {
                    self.set_idle(&topic, &mut r, Some(now + TOPIC_IDLE_SECS))?;
                }
                self.put(&topic, &r)?;
            }
            out.posts += 1;
            out.bytes += size;
        }
        let mut idle = Vec::new();
        for entry in self.idle.range((0, [0; 32])..=(now, [0xff; 32]))?.take(limit) {
            idle.push(entry?.0.value());
        }
        for (at, topic) in idle {
            self.idle.remove((at, topic))?;
            // A channel's topic stays while the channel does: forgotten, anyone could open it
            // again as a group's and shut the channel out.
            if self.record(&TopicKey(topic))?.is_some_and(|r| r.posts == 0 && r.write_hash != [0xff; 32]) {
                self.topics.remove(topic)?;
                out.topics += 1;
            }
        }
        Ok(out)
    }
}

/// Post `id` of a topic, while its log holds it.
pub(super) fn find(
    tx: &ReadTransaction,
    topic: &TopicKey,
    id: &MessageId,
) -> Result<Option<StoredPost>, StoreError> {
    let Some(seq) = tx.open_table(POST_IDS)?.get((topic.0, id.0))?.map(|v| v.value()) else {
        return Ok(None);
    };
    tx.open_table(POSTS)?.get((topic.0, seq))?.map(|v| decode_post(v.value())).transpose()
}

/// The topic as a subscription needs it, or `None` if nobody opened it.
pub(super) fn info(tx: &ReadTransaction, topic: &TopicKey) -> Result<Option<TopicInfo>, StoreError> {
    let topics = tx.open_table(TOPICS)?;
    let Some(r) = topics.get(topic.0)?.map(|v| decode_topic(v.value())).transpose()? else { return Ok(None) };
    Ok(Some(TopicInfo { write_hash: r.write_hash, idle_until: r.idle_until }))
}

/// Unexpired posts numbered above `after`, oldest first, up to `max_posts` posts (expired ones
/// not yet purged count too: they cost the read all the same) or, past the first, `max_bytes`
/// payload bytes.
pub(super) fn page(
    tx: &ReadTransaction,
    topic: &TopicKey,
    after: u64,
    now: u64,
    max_posts: usize,
    max_bytes: usize,
) -> Result<Option<TopicPage>, StoreError> {
    let topics = tx.open_table(TOPICS)?;
    let Some(r) = topics.get(topic.0)?.map(|v| decode_topic(v.value())).transpose()? else { return Ok(None) };
    let table = tx.open_table(POSTS)?;
    let first = match table.range((topic.0, 0)..=(topic.0, u64::MAX))?.next() {
        Some(entry) => entry?.0.value().1,
        None => r.next_seq,
    };
    let (mut posts, mut bytes, mut scanned, mut last, mut more) = (Vec::new(), 0usize, 0usize, None, false);
    for entry in table.range((topic.0, after.saturating_add(1))..=(topic.0, u64::MAX))? {
        let (key, value) = entry?;
        if scanned >= max_posts {
            more = true;
            break;
        }
        let post = decode_post(value.value())?;
        if !posts.is_empty() && bytes + post.payload.len() > max_bytes {
            more = true;
            break;
        }
        scanned += 1;
        last = Some(key.value().1);
        if post.expires_at > now {
            bytes += post.payload.len();
            posts.push(post);
        }
    }
    Ok(Some(TopicPage { posts, first, next_seq: r.next_seq, last, more }))
}

/// Posts, their payload bytes and topics held, for the storage budget at start-up.
pub(super) fn totals(tx: &ReadTransaction) -> Result<(u64, u64, u64), StoreError> {
    let (mut posts, mut bytes, mut topics) = (0, 0, 0);
    for entry in tx.open_table(TOPICS)?.iter()? {
        let r = decode_topic(entry?.1.value())?;
        posts += r.posts;
        bytes += r.bytes;
        topics += 1;
    }
    Ok((posts, bytes, topics))
}

#[cfg(test)]
mod tests {
    use super::super::{RedbStore, SCHEMA_VERSION, Store, Write};
    use super::*;
    use sotto_shared::MessageId;

    const Q: Quotas = Quotas {
        max_envelopes: 10,
        max_bytes: 1000,
        max_stranger_envelopes: 10,
        max_one_time_prekeys: 5,
        max_topic_posts: 3,
        max_topic_bytes: 100,
    };
    const T: TopicKey = TopicKey([1; 32]);

    fn post(id: u8, size: usize, expires_at: u64) -> Write {
        Write::Post(NewPost {
            topic: T,
            write_hash: [2; 32],
            id: MessageId([id; 16]),
            received_at: 1,
            expires_at,
            payload: vec![id; size],
            channel: None,
        })
    }

    fn write(s: &RedbStore, op: Write) -> WriteResult {
        s.write(vec![op], &Q).unwrap().remove(0)
    }

    fn seqs(s: &RedbStore, after: u64, now: u64) -> (Vec<u64>, u64) {
        let page = s.topic_page(&T, after, now, 10, 1000).unwrap().unwrap();
        (page.posts.iter().map(|p| p.seq).collect(), page.first)
    }

    #[test]
    fn posts_are_numbered_kept_once_and_need_the_write_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(write(&s, post(1, 5, 100)), WriteResult::NoSuchTopic);
        let open = || Write::OpenTopic { topic: T, write_hash: [2; 32], now: 0 };
        assert_eq!(write(&s, open()), WriteResult::TopicOpened { new: true });
        assert_eq!(write(&s, open()), WriteResult::TopicOpened { new: false });
        let other = Write::OpenTopic { topic: T, write_hash: [3; 32], now: 0 };
        assert_eq!(write(&s, other), WriteResult::WrongWriteKey);
        assert_eq!(write(&s, post(1, 5, 100)), WriteResult::Posted { seq: 1, size: 5, dropped: 0, freed: 0 });
        assert_eq!(write(&s, post(1, 5, 100)), WriteResult::Duplicate);
        let Write::Post(mut forged) = post(2, 5, 100) else { unreachable!() };
        forged.write_hash = [3; 32];
        assert_eq!(write(&s, Write::Post(forged)), WriteResult::WrongWriteKey);
        assert_eq!(write(&s, post(2, 5, 100)), WriteResult::Posted { seq: 2, size: 5, dropped: 0, freed: 0 });
        assert_eq!(seqs(&s, 0, 50), (vec![1, 2], 1));
        assert_eq!(seqs(&s, 1, 50), (vec![2], 1));
        // Reopened, the store has the same log and totals.
        drop(s);
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(seqs(&s, 0, 50), (vec![1, 2], 1));
        let t = s.totals().unwrap();
        assert_eq!((t.posts, t.post_bytes, t.topics), (2, 10, 1));
    }

    #[test]
    fn the_oldest_posts_go_when_the_log_is_over_its_count_or_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        write(&s, Write::OpenTopic { topic: T, write_hash: [2; 32], now: 0 });
        for id in 1..=3 {
            write(&s, post(id, 10, 100));
        }
        assert_eq!(
            write(&s, post(4, 10, 100)),
            WriteResult::Posted { seq: 4, size: 10, dropped: 1, freed: 10 }
        );
        assert_eq!(seqs(&s, 0, 50), (vec![2, 3, 4], 2));
        // 90 bytes more: 100 bytes fit, so only post 4 stays beside it.
        assert_eq!(
            write(&s, post(5, 90, 100)),
            WriteResult::Posted { seq: 5, size: 90, dropped: 2, freed: 20 }
        );
        assert_eq!(seqs(&s, 0, 50), (vec![4, 5], 4));
        // A dropped post's id may be posted again (it is a new post then).
        assert!(matches!(write(&s, post(2, 1, 100)), WriteResult::Posted { seq: 6, .. }));
    }

    #[test]
    fn expired_posts_are_purged_and_a_silent_topic_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        write(&s, Write::OpenTopic { topic: T, write_hash: [2; 32], now: 0 });
        write(&s, post(1, 10, 20));
        write(&s, post(2, 10, 40));
        assert_eq!(seqs(&s, 0, 30), (vec![2], 1), "an expired post is not sent even before the purge");
        let purged = |now| match write(&s, Write::Purge { now, limit: 10 }) {
            WriteResult::Purged { posts, post_bytes, topics, .. } => (posts, post_bytes, topics),
            other => panic!("{other:?}"),
        };
        assert_eq!(purged(30), (1, 10, 0));
        assert_eq!(seqs(&s, 0, 30), (vec![2], 2));
        assert_eq!(purged(40), (1, 10, 0));
        let info = s.topic(&T).unwrap().unwrap();
        assert_eq!(info.idle_until, Some(40 + TOPIC_IDLE_SECS));
        // Reopening it (a member came back) keeps it another full period.
        write(&s, Write::OpenTopic { topic: T, write_hash: [2; 32], now: 100 });
        assert_eq!(purged(40 + TOPIC_IDLE_SECS), (0, 0, 0));
        assert_eq!(purged(100 + TOPIC_IDLE_SECS), (0, 0, 1));
        assert_eq!(s.topic(&T).unwrap(), None);
        assert_eq!(write(&s, post(3, 1, 100 + TOPIC_IDLE_SECS * 2)), WriteResult::NoSuchTopic);
        // Opened again, it numbers its posts past any cursor of the old one.
        let reopened = 200 + TOPIC_IDLE_SECS;
        write(&s, Write::OpenTopic { topic: T, write_hash: [2; 32], now: reopened });
        let Write::Post(mut p) = post(4, 1, reopened + 100) else { unreachable!() };
        p.received_at = reopened;
        let r = write(&s, Write::Post(p));
        assert!(matches!(r, WriteResult::Posted { seq, .. } if seq == reopened * 1000), "{r:?}");
        let t = s.totals().unwrap();
        assert_eq!((t.posts, t.post_bytes, t.topics), (1, 1, 1));
    }

    #[test]
    fn a_schema_3_store_gains_the_topic_tables() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
            s.downgrade_to_schema_3_for_tests();
        }
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.topic(&T).unwrap(), None);
        assert_eq!(
            write(&s, Write::OpenTopic { topic: T, write_hash: [2; 32], now: 1 }),
            WriteResult::TopicOpened { new: true }
        );
    }
}
