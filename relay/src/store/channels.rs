//! Channels in the redb store (schema 5): who owns each channel and its admin lists, the
//! approximate counts shown to readers, the operator's blocks and the reports waiting for the
//! operator. A channel's posts live in its topic's log (`topics.rs`), like a group's.
//!
//! Tables (keys → values):
//! - `channels`: channel id → postcard `ChannelRecord`
//! - `channel_lists`: (channel id, version) → postcard `AdminList` (the newest
//!   `MAX_CHANNEL_LISTS`)
//! - `channel_members`: (channel id, member) → when it last subscribed; `member_expiry`:
//!   (counted until, channel id, member) → (), so a purge visits only what is due
//! - `blocks`: channel id → postcard `Block`
//! - `reports`: report number → postcard `StoredReport`

use super::{ChannelView, StoreError, WriteResult};
use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use sotto_shared::channel::{AdminList, ChannelId, ChannelPost};
use sotto_shared::limits::{CHANNEL_MEMBER_ACTIVE_SECS, CHANNEL_VIEWS_SHOWN, MAX_CHANNEL_LISTS};

type Id = [u8; 16];

const CHANNELS: TableDefinition<Id, &[u8]> = TableDefinition::new("channels");
const LISTS: TableDefinition<(Id, u32), &[u8]> = TableDefinition::new("channel_lists");
const MEMBERS: TableDefinition<(Id, [u8; 16]), u64> = TableDefinition::new("channel_members");
const MEMBER_EXPIRY: TableDefinition<(u64, Id, [u8; 16]), ()> = TableDefinition::new("member_expiry");
const BLOCKS: TableDefinition<Id, &[u8]> = TableDefinition::new("blocks");
const REPORTS: TableDefinition<u64, &[u8]> = TableDefinition::new("reports");
const REPORTED: TableDefinition<(Id, u64), u64> = TableDefinition::new("reported_posts");

/// A subscriber seen again within this long is not written again (one write a day at most).
const MEMBER_REFRESH_SECS: u64 = 24 * 3600;
/// Reports kept waiting for the operator at most; past it new ones are refused.
pub const MAX_REPORTS: u64 = 10_000;
/// Channel members counted at most, over all channels (about 100 bytes each on disk): members
/// are not charged to the storage budget, so that made-up member tokens can never stop
/// messaging; past this cap new members are simply not counted.
pub const MAX_MEMBERS: u64 = 2_000_000;
/// Reasons kept per reported post (a post reported many times is one report).
const MAX_REASONS: usize = 5;

const CHANNEL_RECORD_VERSION: u8 = 1;
const BLOCK_VERSION: u8 = 1;
const REPORT_VERSION: u8 = 1;

/// A channel as the relay knows it: no name, no content, no subscriber.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelRecord {
    v: u8,
    pub owner: [u8; 32],
    /// The newest admin list's version: new posts must name it.
    pub newest_list: u32,
    /// Members counted (subscribed within `CHANNEL_MEMBER_ACTIVE_SECS`).
    pub subscribers: u64,
    /// `(seq, views)` of the newest posts, at most `CHANNEL_VIEWS_SHOWN`.
    pub views: Vec<(u64, u64)>,
}

/// An operator's block of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    v: u8,
    pub reason: String,
    pub at: u64,
}

impl Block {
    pub fn new(reason: String, at: u64) -> Block {
        Block { v: BLOCK_VERSION, reason, at }
    }
}

/// A report as the operator reads it: the post as the relay stored it (matched by its id),
/// the key its reporter handed over, and why.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredReport {
    v: u8,
    pub post: ChannelPost,
    /// The admin list the post was checked against when reported (kept with it, so that an
    /// owner who pushes lists out of the relay cannot make a report uncheckable).
    pub list: AdminList,
    /// Its number in the channel's log.
    pub seq: u64,
    pub key: [u8; 32],
    /// The reasons given (at most `MAX_REASONS`) and how many reported it.
    pub reasons: Vec<String>,
    pub reporters: u32,
    pub received_at: u64,
}

/// Shows neither the key nor the post.
impl std::fmt::Debug for StoredReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredReport {{ channel: {}, seq: {} }}", self.post.channel.to_hex(), self.seq)
    }
}

impl StoredReport {
    pub fn new(
        post: ChannelPost,
        list: AdminList,
        seq: u64,
        key: [u8; 32],
        reason: String,
        received_at: u64,
    ) -> Self {
        let reasons = if reason.is_empty() { Vec::new() } else { vec![reason] };
        StoredReport { v: REPORT_VERSION, post, list, seq, key, reasons, reporters: 1, received_at }
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    v: impl Fn(&T) -> u8,
    expected: u8,
) -> Result<T, StoreError> {
    let r: T = postcard::from_bytes(bytes)?;
    let found = v(&r);
    if found != expected {
        return Err(StoreError::RecordVersion { found, expected });
    }
    Ok(r)
}

fn decode_channel(bytes: &[u8]) -> Result<ChannelRecord, StoreError> {
    decode(bytes, |r: &ChannelRecord| r.v, CHANNEL_RECORD_VERSION)
}

fn decode_block(bytes: &[u8]) -> Result<Block, StoreError> {
    decode(bytes, |r: &Block| r.v, BLOCK_VERSION)
}

fn decode_report(bytes: &[u8]) -> Result<StoredReport, StoreError> {
    decode(bytes, |r: &StoredReport| r.v, REPORT_VERSION)
}

pub(super) fn create(tx: &WriteTransaction) -> Result<(), StoreError> {
    tx.open_table(CHANNELS)?;
    tx.open_table(LISTS)?;
    tx.open_table(MEMBERS)?;
    tx.open_table(MEMBER_EXPIRY)?;
    tx.open_table(BLOCKS)?;
    tx.open_table(REPORTS)?;
    tx.open_table(REPORTED)?;
    Ok(())
}

/// The channel tables of one write transaction, opened when its batch first needs them.
pub(super) struct ChannelTables<'t> {
    channels: redb::Table<'t, Id, &'static [u8]>,
    lists: redb::Table<'t, (Id, u32), &'static [u8]>,
    members: redb::Table<'t, (Id, [u8; 16]), u64>,
    expiry: redb::Table<'t, (u64, Id, [u8; 16]), ()>,
    blocks: redb::Table<'t, Id, &'static [u8]>,
    reports: redb::Table<'t, u64, &'static [u8]>,
    reported: redb::Table<'t, (Id, u64), u64>,
}

impl<'t> ChannelTables<'t> {
    pub(super) fn open(tx: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(ChannelTables {
            channels: tx.open_table(CHANNELS)?,
            lists: tx.open_table(LISTS)?,
            members: tx.open_table(MEMBERS)?,
            expiry: tx.open_table(MEMBER_EXPIRY)?,
            blocks: tx.open_table(BLOCKS)?,
            reports: tx.open_table(REPORTS)?,
            reported: tx.open_table(REPORTED)?,
        })
    }

    fn record(&self, channel: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        self.channels.get(channel.0)?.map(|v| decode_channel(v.value())).transpose()
    }

    fn put(&mut self, channel: &ChannelId, r: &ChannelRecord) -> Result<(), StoreError> {
        self.channels.insert(channel.0, postcard::to_allocvec(r)?.as_slice())?;
        Ok(())
    }

    /// Opens a channel with its first admin list, or keeps a newer list (both checked by the
    /// caller against `owner`'s signature). Keeps the newest `MAX_CHANNEL_LISTS` lists.
    pub(super) fn put_list(&mut self, owner: [u8; 32], list: &AdminList) -> Result<WriteResult, StoreError> {
        let channel = list.channel;
        let (mut r, new) = match self.record(&channel)? {
            Some(r) if r.owner != owner => return Ok(WriteResult::StaleList),
            // The newest list again (an owner's app resends it when it cannot tell whether
            // the relay has it): nothing changes.
            Some(r) if r.newest_list == list.version => {
                let same = self.lists.get((channel.0, list.version))?.is_some_and(|v| {
                    postcard::from_bytes::<AdminList>(v.value()).is_ok_and(|kept| kept == *list)
                });
                return Ok(if same {
                    WriteResult::ChannelStored { new: false }
                } else {
                    WriteResult::StaleList
                });
            }
            Some(r) if r.newest_list > list.version => return Ok(WriteResult::StaleList),
            Some(r) => (r, false),
            None => {
                let r = ChannelRecord {
                    v: CHANNEL_RECORD_VERSION,
                    owner,
                    newest_list: list.version,
                    subscribers: 0,
                    views: Vec::new(),
                };
                (r, true)
            }
        };
        r.newest_list = list.version;
        self.lists.insert((channel.0, list.version), postcard::to_allocvec(list)?.as_slice())?;
        let mut kept: Vec<u32> = Vec::new();
        for entry in self.lists.range((channel.0, 0)..=(channel.0, u32::MAX))? {
            kept.push(entry?.0.value().1);
        }
        for old in kept.iter().take(kept.len().saturating_sub(MAX_CHANNEL_LISTS)) {
            self.lists.remove((channel.0, *old))?;
        }
        self.put(&channel, &r)?;
        Ok(WriteResult::ChannelStored { new })
    }

    /// Whether a post naming list `list` may go in now: the channel exists, is not blocked, and
    /// `list` is its newest.
    pub(super) fn may_post(&self, channel: &ChannelId, list: u32) -> Result<Option<WriteResult>, StoreError> {
        if self.blocks.get(channel.0)?.is_some() {
            return Ok(Some(WriteResult::ChannelBlocked));
        }
        match self.record(channel)? {
            None => Ok(Some(WriteResult::NoSuchChannel)),
            Some(r) if r.newest_list != list => Ok(Some(WriteResult::StaleList)),
            Some(_) => Ok(None),
        }
    }

    /// Counts `member` among the channel's subscribers from `now` (written at most once a day).
    pub(super) fn member(
        &mut self,
        channel: &ChannelId,
        member: [u8; 16],
        now: u64,
    ) -> Result<WriteResult, StoreError> {
        let Some(mut r) = self.record(channel)? else { return Ok(WriteResult::NoSuchChannel) };
        let seen = self.members.get((channel.0, member))?.map(|v| v.value());
        if seen.is_some_and(|at| at + MEMBER_REFRESH_SECS > now)
            || (seen.is_none() && self.members.len()? >= MAX_MEMBERS)
        {
            return Ok(WriteResult::Counted);
        }
        if let Some(at) = seen {
            self.expiry.remove((at + CHANNEL_MEMBER_ACTIVE_SECS, channel.0, member))?;
        } else {
            r.subscribers += 1;
            self.put(channel, &r)?;
        }
        self.members.insert((channel.0, member), now)?;
        self.expiry.insert((now + CHANNEL_MEMBER_ACTIVE_SECS, channel.0, member), ())?;
        Ok(if seen.is_some() { WriteResult::Counted } else { WriteResult::MemberAdded })
    }

    /// Stops counting `member`.
    pub(super) fn leave(&mut self, channel: &ChannelId, member: [u8; 16]) -> Result<WriteResult, StoreError> {
        let Some(at) = self.members.remove((channel.0, member))?.map(|v| v.value()) else {
            return Ok(WriteResult::Counted);
        };
        self.expiry.remove((at + CHANNEL_MEMBER_ACTIVE_SECS, channel.0, member))?;
        if let Some(mut r) = self.record(channel)? {
            r.subscribers = r.subscribers.saturating_sub(1);
            self.put(channel, &r)?;
        }
        Ok(WriteResult::MemberLeft)
    }

    /// Adds views to posts of a channel, keeping the newest `CHANNEL_VIEWS_SHOWN`.
    pub(super) fn add_views(
        &mut self,
        channel: &ChannelId,
        views: &[(u64, u64)],
    ) -> Result<WriteResult, StoreError> {
        let Some(mut r) = self.record(channel)? else { return Ok(WriteResult::NoSuchChannel) };
        for &(seq, n) in views {
            match r.views.binary_search_by_key(&seq, |v| v.0) {
                Ok(i) => r.views[i].1 += n,
                Err(i) => r.views.insert(i, (seq, n)),
            }
        }
        let over = r.views.len().saturating_sub(CHANNEL_VIEWS_SHOWN);
        r.views.drain(..over);
        self.put(channel, &r)?;
        Ok(WriteResult::Counted)
    }

    /// Blocks a channel (`Some` reason) or lifts its block.
    pub(super) fn block(
        &mut self,
        channel: &ChannelId,
        block: Option<Block>,
    ) -> Result<WriteResult, StoreError> {
        match block {
            Some(b) => self.blocks.insert(channel.0, postcard::to_allocvec(&b)?.as_slice())?,
            None => self.blocks.remove(channel.0)?,
        };
        Ok(WriteResult::Counted)
    }

    /// Keeps a report for the operator, numbered after the last; a post reported before is
    /// one report, counting its reporters (and a few of their reasons). Refused past
    /// `MAX_REPORTS`, and for a channel already blocked.
    pub(super) fn report(&mut self, report: &StoredReport) -> Result<WriteResult, StoreError> {
        let channel = report.post.channel;
        if self.blocks.get(channel.0)?.is_some() {
            return Ok(WriteResult::ChannelBlocked);
        }
        let earlier = self.reported.get((channel.0, report.seq))?.map(|v| v.value());
        let kept = match earlier {
            Some(number) => self.reports.get(number)?.map(|v| decode_report(v.value())).transpose()?,
            None => None,
        };
        if let (Some(number), Some(mut kept)) = (earlier, kept) {
            let before = postcard::to_allocvec(&kept)?.len() as u64;
            kept.reporters = kept.reporters.saturating_add(1);
            if kept.reasons.len() < MAX_REASONS {
                kept.reasons.extend(report.reasons.iter().cloned());
            }
            let bytes = postcard::to_allocvec(&kept)?;
            self.reports.insert(number, bytes.as_slice())?;
            let grown = (bytes.len() as u64).saturating_sub(before);
            return Ok(WriteResult::Reported { number, bytes: grown, new: false });
        }
        if self.reports.len()? >= MAX_REPORTS {
            return Ok(WriteResult::ReportsFull);
        }
        let next = self.reports.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
        let bytes = postcard::to_allocvec(report)?;
        self.reports.insert(next, bytes.as_slice())?;
        self.reported.insert((channel.0, report.seq), next)?;
        Ok(WriteResult::Reported { number: next, bytes: bytes.len() as u64, new: true })
    }

    /// The operator is done with a report.
    pub(super) fn dismiss(&mut self, number: u64) -> Result<WriteResult, StoreError> {
        let Some(kept) = self.reports.remove(number)?.map(|v| v.value().to_vec()) else {
            return Ok(WriteResult::Dismissed { bytes: 0 });
        };
        if let Ok(r) = decode_report(&kept) {
            self.reported.remove((r.post.channel.0, r.seq))?;
        }
        Ok(WriteResult::Dismissed { bytes: kept.len() as u64 })
    }

    /// Stops counting at most `limit` members not seen for `CHANNEL_MEMBER_ACTIVE_SECS`.
    pub(super) fn purge(&mut self, now: u64, limit: usize) -> Result<u64, StoreError> {
        let mut due = Vec::new();
        for entry in self.expiry.range((0, [0; 16], [0; 16])..=(now, [0xff; 16], [0xff; 16]))?.take(limit) {
            due.push(entry?.0.value());
        }
        for &(at, channel, member) in &due {
            self.expiry.remove((at, channel, member))?;
            self.members.remove((channel, member))?;
            let channel = ChannelId(channel);
            if let Some(mut r) = self.record(&channel)? {
                r.subscribers = r.subscribers.saturating_sub(1);
                self.put(&channel, &r)?;
            }
        }
        Ok(due.len() as u64)
    }
}

/// A channel's record, its kept lists (oldest first) and its block.
pub(super) fn channel(tx: &ReadTransaction, channel: &ChannelId) -> Result<Option<ChannelView>, StoreError> {
    let Some(record) =
        tx.open_table(CHANNELS)?.get(channel.0)?.map(|v| decode_channel(v.value())).transpose()?
    else {
        return Ok(None);
    };
    let mut lists = Vec::new();
    for entry in tx.open_table(LISTS)?.range((channel.0, 0)..=(channel.0, u32::MAX))? {
        lists.push(postcard::from_bytes(entry?.1.value())?);
    }
    let block = tx.open_table(BLOCKS)?.get(channel.0)?.map(|v| decode_block(v.value())).transpose()?;
    Ok(Some(ChannelView { record, lists, block }))
}

/// Every blocked channel.
pub(super) fn blocks(tx: &ReadTransaction) -> Result<Vec<(ChannelId, Block)>, StoreError> {
    let mut out = Vec::new();
    for entry in tx.open_table(BLOCKS)?.iter()? {
        let (k, v) = entry?;
        out.push((ChannelId(k.value()), decode_block(v.value())?));
    }
    Ok(out)
}

/// The oldest `limit` reports, with their numbers.
pub(super) fn reports(tx: &ReadTransaction, limit: usize) -> Result<Vec<(u64, StoredReport)>, StoreError> {
    let mut out = Vec::new();
    for entry in tx.open_table(REPORTS)?.iter()?.take(limit) {
        let (k, v) = entry?;
        out.push((k.value(), decode_report(v.value())?));
    }
    Ok(out)
}

/// How many channels the store knows, members it counts, reports waiting and their bytes.
pub(super) fn totals(tx: &ReadTransaction) -> Result<(u64, u64, u64, u64), StoreError> {
    let mut report_bytes = 0;
    let reports = tx.open_table(REPORTS)?;
    for entry in reports.iter()? {
        report_bytes += entry?.1.value().len() as u64;
    }
    Ok((tx.open_table(CHANNELS)?.len()?, tx.open_table(MEMBERS)?.len()?, reports.len()?, report_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewPost, Quotas, RedbStore, Store, TopicKey, Write};
    use sotto_shared::MessageId;
    use sotto_shared::frames::Signature;

    const Q: Quotas = Quotas {
        max_envelopes: 3,
        max_bytes: 1000,
        max_stranger_envelopes: 3,
        max_one_time_prekeys: 5,
        max_topic_posts: 100,
        max_topic_bytes: 100_000,
    };
    const OWNER: [u8; 32] = [7; 32];

    fn list(version: u32) -> AdminList {
        AdminList {
            channel: ChannelId::of(&OWNER),
            version,
            admins: vec![[1; 32]],
            signature: Signature([0; 64]),
        }
    }

    fn write(s: &RedbStore, op: Write) -> WriteResult {
        s.write(vec![op], &Q).unwrap().remove(0)
    }

    fn post(list: u32, id: u8) -> Write {
        let channel = ChannelId::of(&OWNER);
        Write::Post(NewPost {
            topic: TopicKey::of(&channel.topic()),
            write_hash: [0xff; 32],
            id: MessageId([id; 16]),
            received_at: 1,
            expires_at: 100,
            payload: vec![id],
            channel: Some((channel, list)),
        })
    }

    #[test]
    fn lists_only_move_forward_and_posts_need_the_newest_unblocked() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let channel = ChannelId::of(&OWNER);
        assert_eq!(write(&s, post(1, 1)), WriteResult::NoSuchChannel);
        assert_eq!(
            write(&s, Write::ChannelList { owner: OWNER, list: list(1) }),
            WriteResult::ChannelStored { new: true }
        );
        // The newest list again changes nothing; another list under the same version is refused.
        let again = write(&s, Write::ChannelList { owner: OWNER, list: list(1) });
        assert_eq!(again, WriteResult::ChannelStored { new: false });
        let mut other = list(1);
        other.admins.push([2; 32]);
        assert_eq!(write(&s, Write::ChannelList { owner: OWNER, list: other }), WriteResult::StaleList);
        assert_eq!(write(&s, Write::ChannelList { owner: [8; 32], list: list(5) }), WriteResult::StaleList);
        write(&s, Write::OpenTopic { topic: TopicKey::of(&channel.topic()), write_hash: [0xff; 32], now: 1 });
        assert!(matches!(write(&s, post(1, 1)), WriteResult::Posted { .. }));
        assert_eq!(
            write(&s, Write::ChannelList { owner: OWNER, list: list(2) }),
            WriteResult::ChannelStored { new: false }
        );
        assert_eq!(write(&s, post(1, 2)), WriteResult::StaleList, "a post under an older list");
        assert!(matches!(write(&s, post(2, 2)), WriteResult::Posted { .. }));
        let block = Block::new("spam".into(), 5);
        write(&s, Write::Block { channel, block: Some(block.clone()) });
        assert_eq!(write(&s, post(2, 3)), WriteResult::ChannelBlocked);
        assert_eq!(s.blocks().unwrap(), vec![(channel, block)]);
        let view = s.channel(&channel).unwrap().unwrap();
        assert_eq!((view.lists.len(), view.record.newest_list), (2, 2));
        write(&s, Write::Block { channel, block: None });
        assert!(matches!(write(&s, post(2, 3)), WriteResult::Posted { .. }));
        // Only the newest lists are kept.
        for v in 3..(3 + MAX_CHANNEL_LISTS as u32) {
            write(&s, Write::ChannelList { owner: OWNER, list: list(v) });
        }
        let view = s.channel(&channel).unwrap().unwrap();
        assert_eq!(view.lists.len(), MAX_CHANNEL_LISTS);
        assert_eq!(view.lists.first().unwrap().version, 3);
        // A channel's topic is never forgotten, however long it stays empty.
        let topic = TopicKey::of(&channel.topic());
        let empty = Write::OpenTopic {
            topic: TopicKey::of(&ChannelId([9; 16]).topic()),
            write_hash: [1; 32],
            now: 1,
        };
        write(&s, empty);
        write(&s, Write::Purge { now: u64::MAX / 2, limit: 100 });
        assert!(s.topic(&topic).unwrap().is_some());
        assert!(s.topic(&TopicKey::of(&ChannelId([9; 16]).topic())).unwrap().is_none(), "a group's is");
    }

    #[test]
    fn members_are_counted_once_until_they_leave_or_go_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let channel = ChannelId::of(&OWNER);
        write(&s, Write::ChannelList { owner: OWNER, list: list(1) });
        let count = || s.channel(&channel).unwrap().unwrap().record.subscribers;
        let results: Vec<WriteResult> =
            [([1; 16], 10), ([2; 16], 10), ([1; 16], 20), ([1; 16], 10 + 2 * 86_400)]
                .into_iter()
                .map(|(member, now)| write(&s, Write::Member { channel, member, now }))
                .collect();
        use WriteResult::{Counted, MemberAdded};
        assert_eq!(results, [MemberAdded, MemberAdded, Counted, Counted]);
        assert_eq!((count(), s.totals().unwrap().members), (2, 2));
        write(&s, Write::Leave { channel, member: [2; 16] });
        write(&s, Write::Leave { channel, member: [2; 16] });
        assert_eq!(count(), 1);
        // Member 1 was last seen two days in: counted until 30 days after that.
        write(&s, Write::Purge { now: 10 + CHANNEL_MEMBER_ACTIVE_SECS + 86_400, limit: 10 });
        assert_eq!(count(), 1);
        write(&s, Write::Purge { now: 10 + CHANNEL_MEMBER_ACTIVE_SECS + 3 * 86_400, limit: 10 });
        assert_eq!(count(), 0);
    }

    #[test]
    fn views_keep_the_newest_posts_and_reports_are_numbered_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), 1 << 20).unwrap();
        let channel = ChannelId::of(&OWNER);
        write(&s, Write::ChannelList { owner: OWNER, list: list(1) });
        let views: Vec<(u64, u64)> = (1..=(CHANNEL_VIEWS_SHOWN as u64 + 5)).map(|seq| (seq, 2)).collect();
        write(&s, Write::Views { channel, views });
        write(&s, Write::Views { channel, views: vec![(6, 3)] });
        let record = s.channel(&channel).unwrap().unwrap().record;
        assert_eq!(record.views.len(), CHANNEL_VIEWS_SHOWN);
        assert_eq!(record.views[0], (6, 5));
        let p = ChannelPost {
            v: 1,
            channel,
            epoch: 0,
            list: 1,
            author: [1; 32],
            posted_at_ms: 0,
            nonce: [3; 16],
            commit: [0; 32],
            sealed: vec![],
            signature: Signature([0; 64]),
        };
        let report = StoredReport::new(p, list(1), 9, [4; 32], "spam".into(), 1);
        assert!(!format!("{report:?}").contains("4, 4"), "Debug hides the key");
        let WriteResult::Reported { number: 1, new: true, .. } =
            write(&s, Write::Report(Box::new(report.clone())))
        else {
            panic!("report 1 kept")
        };
        // The same post again is the same report, with one more reporter.
        let again = write(&s, Write::Report(Box::new(report.clone())));
        assert!(matches!(again, WriteResult::Reported { number: 1, new: false, .. }));
        let kept = s.reports(10).unwrap();
        assert_eq!((kept.len(), kept[0].1.reporters, kept[0].1.reasons.len()), (1, 2, 2));
        let bytes = s.totals().unwrap().report_bytes;
        assert_eq!(write(&s, Write::Dismiss { number: 1 }), WriteResult::Dismissed { bytes });
        assert_eq!(write(&s, Write::Dismiss { number: 1 }), WriteResult::Dismissed { bytes: 0 });
        // Reported again after the dismissal: a new report. A blocked channel's: refused.
        let again = write(&s, Write::Report(Box::new(report.clone())));
        assert!(matches!(again, WriteResult::Reported { number: 1, new: true, .. }));
        write(&s, Write::Block { channel, block: Some(Block::new("x".into(), 1)) });
        assert_eq!(write(&s, Write::Report(Box::new(report))), WriteResult::ChannelBlocked);
    }
}
