//! What the relay does with each kind of client frame, one module per kind, each adding its
//! handler to [`Session`]: `hello` (hello, ping), `login` (authenticate), `send` (sends, with
//! or without a delivery token), `mailbox` (acks, delivery tokens), `prekeys` (uploads,
//! bundles), `topics` (group topics: subscribe, post), `channels` (channels: admins, reading,
//! posts, reports).

mod channels;
pub(crate) use channels::state as channel_state;
mod hello;
mod login;
mod mailbox;
mod prekeys;
mod send;
mod topics;

use crate::session::{Session, error};
use sotto_shared::{ClientFrame, ErrorCode};
use tokio::sync::OwnedSemaphorePermit;

impl Session {
    /// Handles one frame; `false` ends the connection.
    pub(crate) async fn handle(&mut self, frame: ClientFrame, permit: OwnedSemaphorePermit) -> bool {
        let permit = Some(permit);
        match frame {
            ClientFrame::Hello { .. } => return self.hello(permit),
            ClientFrame::Ping { nonce } => self.ping(nonce, permit),
            _ if self.challenge.is_none() && self.address.is_none() => {
                self.reply(error(ErrorCode::NotAuthenticated, "send hello first", None), permit);
            }
            ClientFrame::Authenticate { identity, signature } => {
                return Box::pin(self.authenticate(*identity, signature, permit)).await;
            }
            ClientFrame::Send { id, to, ttl_secs, payload } => {
                if let Some(refusal) = self.send(id, to, ttl_secs, None, payload, permit) {
                    self.refuse(refusal).await;
                }
            }
            ClientFrame::SendAsContact { id, to, ttl_secs, token, payload } => {
                let hash = self.token_hash(token);
                if let Some(refusal) = self.send(id, to, ttl_secs, Some(hash), payload, permit) {
                    self.refuse(refusal).await;
                }
            }
            ClientFrame::PublishDeliveryToken { hash } => self.publish_token(hash, permit),
            ClientFrame::Ack { ids } => self.ack(ids, permit),
            ClientFrame::UploadPrekeys { signed_prekey, one_time } => {
                self.upload(signed_prekey, one_time, permit)
            }
            ClientFrame::FetchBundle { address } => self.fetch_bundle(address, permit),
            ClientFrame::Subscribe { topics } => self.subscribe(topics, permit).await,
            ClientFrame::Post { id, topic, write, ttl_secs, payload } => {
                self.post(id, topic, write, ttl_secs, payload, permit)
            }
            ClientFrame::Unsubscribe { topic } => self.unsubscribe(topic, permit),
            ClientFrame::ChannelAdmins { owner, list } => {
                Box::pin(self.channel_admins(owner, *list, permit)).await
            }
            ClientFrame::SubscribeChannel { channel, after, member } => {
                Box::pin(self.subscribe_channel(channel, after, member, permit)).await
            }
            ClientFrame::PublishPost { post, ttl_secs } => {
                Box::pin(self.publish(*post, ttl_secs, permit)).await
            }
            ClientFrame::LeaveChannel { channel, member } => self.leave_channel(channel, member, permit),
            ClientFrame::ReportPost { post, key, reason } => {
                Box::pin(self.report(*post, key, reason, permit)).await
            }
            ClientFrame::ChannelCounts { channel } => Box::pin(self.channel_counts(channel, permit)).await,
            ClientFrame::SendLive { to, token, payload } => self.send_live(to, token, payload, permit),
        }
        true
    }
}
