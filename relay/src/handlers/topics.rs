//! `Subscribe`, `Post` and `Unsubscribe`: group topics, read and written only on connections
//! that never log in, so the relay cannot tie a mailbox to a group.

use crate::session::{Session, error};
use crate::state::unix_now;
use crate::store::{NewPost, TopicKey, TopicPage, Write, WriteResult};
use crate::subscriptions::Caught;
use crate::writer::{POST_COST, TOPIC_COST};
use bytes::Bytes;
use sotto_shared::channel::ChannelId;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::limits::{
    MAX_ENVELOPE_BYTES, MAX_SUBSCRIPTIONS_PER_CONNECTION, MAX_TOPICS_PER_SUBSCRIBE, MAX_TTL_SECS,
    TOPIC_IDLE_SECS,
};
use sotto_shared::{ErrorCode, MessageId, RelayFrame, TopicId, WriteKey, encode_relay};
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

/// Most posts, and payload bytes past the first post, one `Subscribe` sends of one topic; the
/// client asks again for more, so a long log never piles up in the relay's memory.
const PAGE_POSTS: usize = 256;
const PAGE_BYTES: usize = 1 << 20;

/// A post about to be appended: its id, its topic, the write hash presented (a group's), and
/// for a channel's post the channel and the admin list it was checked against.
pub(crate) struct Appended {
    pub(crate) id: MessageId,
    pub(crate) topic: TopicId,
    pub(crate) write_hash: [u8; 32],
    pub(crate) channel: Option<(ChannelId, u32)>,
}

/// The write hash of every channel's topic: no write key hashes to it, so `Post` never writes
/// a channel, and `Subscribe` refuses it, so only `SubscribeChannel` (which checks blocks)
/// reads one.
pub(crate) const CHANNEL_WRITE_HASH: [u8; 32] = [0xff; 32];

const LOGGED_IN: &str = "topics are read and written only on a connection that has not logged in";

impl Session {
    /// Whether this connection may use topics (it never logged in); answers if not.
    pub(crate) fn topics_allowed(
        &mut self,
        id: Option<MessageId>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Option<Option<OwnedSemaphorePermit>> {
        if self.address.is_some() {
            self.reply(error(ErrorCode::Unexpected, LOGGED_IN, id), permit);
            return None;
        }
        self.uses_topics = true;
        Some(permit)
    }

    pub(crate) async fn subscribe(
        &mut self,
        mut topics: Vec<Subscription>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(permit) = self.topics_allowed(None, permit) else { return };
        if topics.len() > MAX_TOPICS_PER_SUBSCRIBE {
            let msg = format!("at most {MAX_TOPICS_PER_SUBSCRIBE} topics per subscribe");
            self.reply(error(ErrorCode::TooLarge, msg, None), permit);
            return;
        }
        // A topic named twice is read once.
        let mut seen = foldhash::HashSet::default();
        topics.retain(|s| seen.insert(s.topic));
        if topics.iter().any(|s| s.write_hash == CHANNEL_WRITE_HASH) {
            let msg = "a channel is read with SubscribeChannel";
            self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
            return;
        }
        for sub in topics {
            // Which connection reads what: debug logs only, and never the topic (a prefix of
            // its key could be matched against a copy of the store).
            debug!(conn = self.handle.id, "subscribe");
            if let Err(refusal) = self.read_topic(TopicKey::of(&sub.topic), sub, None).await {
                self.reply(refusal, None);
            }
        }
        drop(permit);
    }

    /// Opens the topic if needed, then sends one page of its log and, if that was the last,
    /// makes the subscription live.
    pub(crate) async fn read_topic(
        &mut self,
        key: TopicKey,
        sub: Subscription,
        channel: Option<ChannelId>,
    ) -> Result<(), RelayFrame> {
        let internal = || error(ErrorCode::Internal, "the relay could not read that topic; retry", None);
        if !self.topics.contains(&key) && self.topics.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            let msg = format!("at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} topics on one connection");
            return Err(error(ErrorCode::InvalidRequest, msg, None));
        }
        self.open_topic(key, sub.write_hash).await?;
        self.relay.subscriptions.subscribe(key, sub.topic, &self.handle);
        self.topics.insert(key);
        let max_queued = self.relay.config.limits.max_outbound_bytes;
        let mut after = sub.after;
        loop {
            // No page is read for a connection that has not taken the last one yet: what the
            // relay holds for a reader stays bounded however fast it asks.
            self.handle.room(max_queued).await;
            let store = self.relay.store.clone();
            let page = tokio::task::spawn_blocking(move || {
                store.topic_page(&key, after, unix_now(), PAGE_POSTS, PAGE_BYTES)
            })
            .await
            .map_err(|_| internal())?
            .map_err(|_| internal())?;
            let Some(TopicPage { posts, first, next_seq, last, more }) = page else {
                self.relay.subscriptions.unsubscribe(&key, self.handle.id);
                self.topics.remove(&key);
                return Err(error(
                    ErrorCode::UnknownTopic,
                    "that topic was forgotten; subscribe again",
                    None,
                ));
            };
            let through = if more { last.unwrap_or(after) } else { (next_seq - 1).max(after) };
            for p in posts {
                if let Some(channel) = channel {
                    self.relay.views.add(channel, p.seq, 1);
                }
                let frame = RelayFrame::Posted {
                    topic: sub.topic,
                    seq: p.seq,
                    received_at: p.received_at,
                    payload: p.payload,
                };
                self.relay.metrics.posts_pushed.fetch_add(1, Relaxed);
                self.handle.page(Bytes::from(encode_relay(&frame)));
            }
            let subscribed = RelayFrame::Subscribed { topic: sub.topic, first, through, more };
            if more {
                // Live posts stay held until the client has read the rest.
                self.reply(subscribed, None);
                return Ok(());
            }
            let (relay, handle) = (&self.relay, &self.handle);
            match relay.subscriptions.catch_up(&key, handle.id, through, || {
                crate::session::answer(relay, handle, &subscribed, None)
            }) {
                Caught::Live | Caught::Gone => return Ok(()),
                // Posts came faster than they could be held: read on from where this page ended.
                Caught::ReadAgain => after = through,
            }
        }
    }

    /// Makes sure the topic exists with this write hash, and is not about to be forgotten.
    pub(crate) async fn open_topic(&mut self, key: TopicKey, write_hash: [u8; 32]) -> Result<(), RelayFrame> {
        let internal = || error(ErrorCode::Internal, "the relay could not open that topic; retry", None);
        let wrong = || error(ErrorCode::AuthFailed, "that topic was opened with another write key", None);
        let store = self.relay.store.clone();
        let info = tokio::task::spawn_blocking(move || store.topic(&key))
            .await
            .map_err(|_| internal())?
            .map_err(|_| internal())?;
        let now = unix_now();
        let writer = &self.relay.writer;
        let reserved = match info {
            Some(i) if i.write_hash != write_hash => return Err(wrong()),
            // Open and busy, or silent but not for long: nothing to write.
            Some(i) if i.idle_until.is_none_or(|t| t > now + TOPIC_IDLE_SECS / 2) => return Ok(()),
            Some(_) => 0,
            None => {
                if !writer.reserve(TOPIC_COST) {
                    return Err(error(
                        ErrorCode::StoreFull,
                        "the relay's storage is full; try again later",
                        None,
                    ));
                }
                if !self.relay.limits.new_topic_allowed(self.ip) {
                    writer.release(TOPIC_COST);
                    return Err(error(ErrorCode::RateLimited, "too many new topics from your address", None));
                }
                TOPIC_COST
            }
        };
        let result = writer.write(Write::OpenTopic { topic: key, write_hash, now }).await;
        if !matches!(result, Ok(WriteResult::TopicOpened { new: true })) {
            writer.release(reserved);
        }
        match result {
            Ok(WriteResult::TopicOpened { .. }) => Ok(()),
            Ok(WriteResult::WrongWriteKey) => Err(wrong()),
            _ => Err(internal()),
        }
    }

    pub(crate) fn unsubscribe(&mut self, topic: TopicId, permit: Option<OwnedSemaphorePermit>) {
        let key = TopicKey::of(&topic);
        self.relay.subscriptions.unsubscribe(&key, self.handle.id);
        self.topics.remove(&key);
        drop(permit);
    }

    pub(crate) fn post(
        &mut self,
        id: MessageId,
        topic: TopicId,
        write: WriteKey,
        ttl_secs: u32,
        payload: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(permit) = self.topics_allowed(Some(id), permit) else { return };
        debug!(conn = self.handle.id, "post");
        let write_hash = topic_write_hash(&write);
        self.append(Appended { id, topic, write_hash, channel: None }, ttl_secs, payload, permit);
    }

    /// Stores a post (a group's, or a channel's already checked) once and pushes it to the
    /// topic's readers; the answer is `Sent` once durable.
    pub(crate) fn append(
        &mut self,
        what: Appended,
        ttl_secs: u32,
        payload: Vec<u8>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Appended { id, topic, write_hash, channel } = what;
        let key = TopicKey::of(&topic);
        let limit = MAX_ENVELOPE_BYTES
            .min(usize::try_from(self.relay.config.limits.max_topic_bytes).unwrap_or(usize::MAX));
        if payload.len() > limit {
            let msg = format!("post of {} bytes exceeds {limit}", payload.len());
            self.reply(error(ErrorCode::TooLarge, msg, Some(id)), permit);
            return;
        }
        if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
            let msg = format!("ttl must be between 1 and {MAX_TTL_SECS} seconds");
            self.reply(error(ErrorCode::InvalidRequest, msg, Some(id)), permit);
            return;
        }
        if !self.relay.limits.topic_post_allowed(&key) {
            let msg = "this group takes posts faster than it may; slow down";
            self.reply(error(ErrorCode::RateLimited, msg, Some(id)), permit);
            return;
        }
        if !self.relay.limits.ip_allows_bytes(self.ip, payload.len()) {
            self.reply(
                error(ErrorCode::RateLimited, "too much sent from your address; slow down", Some(id)),
                permit,
            );
            return;
        }
        // Reserved now, so that posts queued together cannot overrun the budget; given back
        // below if the post is not stored.
        let cost = payload.len() as u64 + POST_COST;
        if !self.relay.writer.reserve(cost) {
            let msg = "the relay's storage is full; try again later";
            self.reply(error(ErrorCode::StoreFull, msg, Some(id)), permit);
            return;
        }
        let now = unix_now();
        let post = NewPost {
            topic: key,
            write_hash,
            id,
            received_at: now,
            expires_at: now + u64::from(ttl_secs),
            payload: payload.clone(),
            channel,
        };
        self.submit(Write::Post(post), permit, move |relay, result| {
            if !matches!(result, Ok(WriteResult::Posted { .. })) {
                relay.writer.release(cost);
            }
            match result {
                Ok(WriteResult::Posted { seq, .. }) => {
                    relay.metrics.posts_stored.fetch_add(1, Relaxed);
                    let frame = RelayFrame::Posted { topic, seq, received_at: now, payload };
                    let pushed = relay.subscriptions.push(&key, seq, &Bytes::from(encode_relay(&frame)));
                    relay.metrics.posts_pushed.fetch_add(pushed.taken as u64, Relaxed);
                    if let Some((channel, _)) = channel {
                        relay.views.add(channel, seq, pushed.taken as u64);
                    }
                    relay.metrics.readers_sent_back.fetch_add(pushed.sent_back as u64, Relaxed);
                    Some(RelayFrame::Sent { id })
                }
                Ok(WriteResult::Duplicate) => Some(RelayFrame::Sent { id }),
                Ok(WriteResult::NoSuchTopic) => {
                    Some(error(ErrorCode::UnknownTopic, "no such topic; subscribe to open it", Some(id)))
                }
                Ok(WriteResult::WrongWriteKey) => {
                    Some(error(ErrorCode::AuthFailed, "that write key cannot post to this topic", Some(id)))
                }
                Ok(WriteResult::StaleList) => Some(error(
                    ErrorCode::AuthFailed,
                    "the channel's admin list changed: this post is not under the newest one",
                    Some(id),
                )),
                Ok(WriteResult::ChannelBlocked) => {
                    Some(error(ErrorCode::Blocked, "this relay's operator blocked the channel", Some(id)))
                }
                Ok(WriteResult::NoSuchChannel) => {
                    Some(error(ErrorCode::UnknownChannel, "no such channel on this relay", Some(id)))
                }
                _ => Some(error(ErrorCode::Internal, "the relay could not store this post; retry", Some(id))),
            }
        });
    }
}
