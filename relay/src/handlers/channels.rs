//! Channels: opening one and changing its admins, reading it, posting, leaving and reporting a
//! post, all on connections that never log in (like topics), so the relay ties no mailbox to a
//! channel. A channel's posts live in its topic (`ChannelId::topic`); the relay checks each
//! post's signature against the admin list its owner signed, needing no secret.

use super::topics::{Appended, CHANNEL_WRITE_HASH};
use crate::session::{Session, error};
use crate::state::{Relay, unix_now};
use crate::store::{ChannelView, StoredReport, TopicKey, Write, WriteResult};
use crate::writer::{CHANNEL_COST, REPORT_COST};
use bytes::Bytes;
use sotto_engine::channel::{Report, check_list, check_post};
use sotto_shared::channel::{AdminList, ChannelId, ChannelPost, ChannelState};
use sotto_shared::frames::Subscription;
use sotto_shared::limits::{CHANNEL_CLOCK_SKEW_SECS, MAX_REASON_BYTES};
use sotto_shared::{ErrorCode, RelayFrame, encode_relay};
use tokio::sync::OwnedSemaphorePermit;
use tracing::debug;

/// What a reader is told of a channel.
pub(crate) fn state(relay: &Relay, channel: ChannelId, view: ChannelView) -> RelayFrame {
    RelayFrame::ChannelState(Box::new(ChannelState {
        channel,
        lists: view.lists,
        subscribers: view.record.subscribers,
        views: relay.views.with_pending(&channel, view.record.views),
        blocked: view.block.map(|b| b.reason),
    }))
}

fn internal() -> RelayFrame {
    error(ErrorCode::Internal, "the relay could not read that channel; retry", None)
}

impl Session {
    /// The channel as stored now.
    async fn load_channel(&self, channel: ChannelId) -> Result<Option<ChannelView>, RelayFrame> {
        let store = self.relay.store.clone();
        tokio::task::spawn_blocking(move || store.channel(&channel))
            .await
            .map_err(|_| internal())?
            .map_err(|_| internal())
    }

    pub(crate) async fn channel_admins(
        &mut self,
        owner: [u8; 32],
        list: AdminList,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(permit) = self.topics_allowed(None, permit) else { return };
        let channel = list.channel;
        if check_list(&list, &owner).is_err() {
            let msg = "that admin list is not signed by the owner the channel's id is of";
            self.reply(error(ErrorCode::AuthFailed, msg, None), permit);
            return;
        }
        let newest = match self.load_channel(channel).await {
            Ok(view) => view.map(|v| v.record.newest_list),
            Err(refusal) => return self.reply(refusal, permit),
        };
        if newest.is_none() && !self.relay.writer.has_room(CHANNEL_COST) {
            let msg = "the relay's storage is full; try again later";
            return self.reply(error(ErrorCode::StoreFull, msg, None), permit);
        }
        // Each new list goes to every reader: an owner changes them only so often (the newest
        // again, which an owner's app sends whenever its line comes up, is no change).
        let changes = newest.is_none_or(|v| list.version > v);
        if changes && !self.relay.limits.list_change_allowed(&channel) {
            let msg = "this channel's admins changed too often; try again later";
            return self.reply(error(ErrorCode::RateLimited, msg, None), permit);
        }
        // The channel's topic first: a list for a channel whose topic cannot open is refused.
        let key = TopicKey::of(&channel.topic());
        if let Err(refusal) = self.open_topic(key, CHANNEL_WRITE_HASH).await {
            self.reply(refusal, permit);
            return;
        }
        match self.relay.writer.write(Write::ChannelList { owner, list }).await {
            Ok(WriteResult::ChannelStored { .. }) => {}
            Ok(WriteResult::StaleList) => {
                let msg = "the channel has this admin list or a newer one";
                self.reply(error(ErrorCode::InvalidRequest, msg, None), permit);
                return;
            }
            _ => {
                let msg = "the relay could not store that admin list; retry";
                self.reply(error(ErrorCode::Internal, msg, None), permit);
                return;
            }
        }
        let view = match self.load_channel(channel).await {
            Ok(Some(view)) => view,
            Ok(None) | Err(_) => return self.reply(internal(), permit),
        };
        let frame = state(&self.relay, channel, view);
        // Readers learn the new list at once (posts under it follow): only the newest, which
        // they add to those they hold.
        if let RelayFrame::ChannelState(s) = &frame {
            let mut newest = s.clone();
            newest.lists.drain(..newest.lists.len().saturating_sub(1));
            let newest = RelayFrame::ChannelState(newest);
            self.relay.subscriptions.announce(&key, &Bytes::from(encode_relay(&newest)));
        }
        self.reply(frame, permit);
    }

    pub(crate) async fn subscribe_channel(
        &mut self,
        channel: ChannelId,
        after: u64,
        member: [u8; 16],
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(permit) = self.topics_allowed(None, permit) else { return };
        if !self.relay.limits.channel_read_allowed(self.ip) {
            let msg = "too many channel reads from your address; slow down";
            return self.reply(error(ErrorCode::RateLimited, msg, None), permit);
        }
        debug!(conn = self.handle.id, "subscribe to a channel");
        // Counted first, so the count the reader is told includes it. One address has only so
        // many subscriptions counted an hour (the rest read uncounted), so made-up member
        // tokens cannot inflate a count or fill the disk.
        if self.relay.limits.count_member_allowed(self.ip) {
            let _ = self.relay.writer.write(Write::Member { channel, member, now: unix_now() }).await;
        }
        let view = match self.load_channel(channel).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                let msg = "no such channel on this relay";
                return self.reply(error(ErrorCode::UnknownChannel, msg, None), permit);
            }
            Err(refusal) => return self.reply(refusal, permit),
        };
        let blocked = view.block.is_some();
        self.reply(state(&self.relay, channel, view), None);
        if blocked {
            drop(permit);
            return;
        }
        let topic = channel.topic();
        let sub = Subscription { topic, write_hash: CHANNEL_WRITE_HASH, after };
        if let Err(refusal) = self.read_topic(TopicKey::of(&topic), sub, Some(channel)).await {
            self.reply(refusal, None);
        }
        drop(permit);
    }

    pub(crate) async fn channel_counts(&mut self, channel: ChannelId, permit: Option<OwnedSemaphorePermit>) {
        let Some(permit) = self.topics_allowed(None, permit) else { return };
        if !self.relay.limits.channel_read_allowed(self.ip) {
            let msg = "too many channel reads from your address; slow down";
            return self.reply(error(ErrorCode::RateLimited, msg, None), permit);
        }
        match self.load_channel(channel).await {
            Ok(Some(view)) => self.reply(state(&self.relay, channel, view), permit),
            Ok(None) => {
                self.reply(error(ErrorCode::UnknownChannel, "no such channel on this relay", None), permit)
            }
            Err(refusal) => self.reply(refusal, permit),
        }
    }

    pub(crate) fn leave_channel(
        &mut self,
        channel: ChannelId,
        member: [u8; 16],
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let Some(permit) = self.topics_allowed(None, permit) else { return };
        let key = TopicKey::of(&channel.topic());
        self.relay.subscriptions.unsubscribe(&key, self.handle.id);
        self.topics.remove(&key);
        self.submit(Write::Leave { channel, member }, permit, |_, _| None);
    }

    pub(crate) async fn publish(
        &mut self,
        post: ChannelPost,
        ttl_secs: u32,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let id = post.id();
        let Some(permit) = self.topics_allowed(Some(id), permit) else { return };
        debug!(conn = self.handle.id, "channel post");
        let now_ms = unix_now().saturating_mul(1000);
        if post.posted_at_ms.abs_diff(now_ms) > CHANNEL_CLOCK_SKEW_SECS * 1000 {
            let msg = "the post's time is too far from the relay's clock (check the device's clock)";
            return self.reply(error(ErrorCode::InvalidRequest, msg, Some(id)), permit);
        }
        let view = match self.load_channel(post.channel).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                return self.reply(
                    error(ErrorCode::UnknownChannel, "no such channel on this relay", Some(id)),
                    permit,
                );
            }
            Err(_) => return self.reply(error(ErrorCode::Internal, "retry", Some(id)), permit),
        };
        if view.block.is_some() {
            let msg = "this relay's operator blocked the channel";
            return self.reply(error(ErrorCode::Blocked, msg, Some(id)), permit);
        }
        // Only under the newest list: a removed admin's key stops posting at once.
        let newest = view.lists.iter().find(|l| l.version == view.record.newest_list);
        if post.list != view.record.newest_list || newest.is_none_or(|list| check_post(&post, list).is_err())
        {
            let msg = "this post is not signed by a current admin of the channel";
            return self.reply(error(ErrorCode::AuthFailed, msg, Some(id)), permit);
        }
        let topic = post.channel.topic();
        // A channel silent for 30 days lost its topic: open it again.
        if let Err(RelayFrame::Error { code, message, .. }) =
            self.open_topic(TopicKey::of(&topic), CHANNEL_WRITE_HASH).await
        {
            return self.reply(error(code, message, Some(id)), permit);
        }
        let Ok(payload) = postcard::to_allocvec(&post) else {
            return self.reply(error(ErrorCode::Internal, "retry", Some(id)), permit);
        };
        let what =
            Appended { id, topic, write_hash: CHANNEL_WRITE_HASH, channel: Some((post.channel, post.list)) };
        self.append(what, ttl_secs, payload, permit);
    }

    pub(crate) async fn report(
        &mut self,
        post: ChannelPost,
        key: [u8; 32],
        reason: String,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let id = post.id();
        let Some(permit) = self.topics_allowed(Some(id), permit) else { return };
        if reason.len() > MAX_REASON_BYTES {
            let msg = format!("a reason takes at most {MAX_REASON_BYTES} bytes");
            return self.reply(error(ErrorCode::TooLarge, msg, Some(id)), permit);
        }
        if !self.relay.limits.report_allowed(self.ip) {
            let msg = "too many reports from your address; try again later";
            return self.reply(error(ErrorCode::RateLimited, msg, Some(id)), permit);
        }
        let refuse = |code, msg: &str| error(code, msg, Some(id));
        let view = match self.load_channel(post.channel).await {
            Ok(Some(view)) => view,
            Ok(None) => {
                return self
                    .reply(refuse(ErrorCode::UnknownChannel, "no such channel on this relay"), permit);
            }
            Err(_) => return self.reply(refuse(ErrorCode::Internal, "retry"), permit),
        };
        if view.block.is_some() {
            let msg = "this relay's operator blocked the channel already";
            return self.reply(refuse(ErrorCode::Blocked, msg), permit);
        }
        // The post must be the relay's own copy: a report shows what the channel published.
        let store = self.relay.store.clone();
        let topic = TopicKey::of(&post.channel.topic());
        let stored = tokio::task::spawn_blocking(move || store.topic_post(&topic, &id)).await;
        let Ok(Ok(stored)) = stored else { return self.reply(refuse(ErrorCode::Internal, "retry"), permit) };
        let held =
            stored.filter(|s| postcard::from_bytes::<ChannelPost>(&s.payload).is_ok_and(|p| p == post));
        let Some(held) = held else {
            let msg = "this relay holds no such post in that channel (it may have expired)";
            return self.reply(refuse(ErrorCode::InvalidRequest, msg), permit);
        };
        let list = view.lists.iter().find(|l| l.version == post.list).cloned();
        let report = Report::from_wire(post, key);
        let Some(list) = list.filter(|list| report.verify(list, &view.record.owner).is_ok()) else {
            let msg = "the report does not check: the key does not open that post, or its admin list is gone";
            return self.reply(refuse(ErrorCode::AuthFailed, msg), permit);
        };
        // Its size once stored, roughly: the post, the key and the reason.
        if !self.relay.writer.has_room(held.payload.len() as u64 + reason.len() as u64 + 128 + REPORT_COST) {
            return self
                .reply(refuse(ErrorCode::StoreFull, "the relay's storage is full; try again later"), permit);
        }
        let stored = StoredReport::new(report.post.clone(), list, held.seq, key, reason, unix_now());
        self.submit(Write::Report(Box::new(stored)), permit, move |_, result| match result {
            Ok(WriteResult::Reported { .. }) => Some(RelayFrame::Reported { id }),
            Ok(WriteResult::ChannelBlocked) => {
                Some(error(ErrorCode::Blocked, "this relay's operator blocked the channel already", Some(id)))
            }
            Ok(WriteResult::ReportsFull) => Some(error(
                ErrorCode::StoreFull,
                "the operator has too many reports waiting; try later",
                Some(id),
            )),
            _ => Some(error(ErrorCode::Internal, "the relay could not keep the report; retry", Some(id))),
        });
    }
}
