//! Typing notices: sent live to the other side of a direct chat (the relay passes them to
//! connected recipients only, never storing them), and taken only live, from contacts.

use crate::conversation::ConversationId;
use crate::effects::{Effects, Event};
use crate::error::MessengerError;
use crate::messenger::Messenger;
use sotto_engine::message::{Body, Message, VERSION};
use sotto_engine::random::Entropy;
use sotto_shared::ClientFrame;

/// Live envelopes (typing notices) sent to a contact who has not written since: each one the
/// relay drops (they are offline) is a message key they skip later, so a silent contact gets
/// at most this many, well within the ratchet's `MAX_SKIP`.
pub const MAX_LIVE_PER_TURN: u32 = 20;

impl Messenger {
    /// Tells the other side of direct chat `conversation` that we are writing (or stopped),
    /// live: the relay passes it on only if they are connected, and never stores it. Nothing
    /// for other chats, or once [`MAX_LIVE_PER_TURN`] went unanswered.
    pub fn typing(
        &mut self,
        conversation: &ConversationId,
        typing: bool,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let ConversationId::Direct(to) = *conversation else { return Ok(Effects::default()) };
        if self.can_write(conversation).is_err()
            || self.live_sent.get(&to).copied().unwrap_or(0) >= MAX_LIVE_PER_TURN
        {
            return Ok(Effects::default());
        }
        let mut id = [0u8; 16];
        e.fill(&mut id)?;
        let message = Message {
            v: VERSION,
            id,
            sent_at_ms: now_ms,
            expires_after_secs: None,
            body: Body::Typing { typing },
        };
        let out = self.device.send(&to, &message, sotto_shared::MessageId(id), e)?;
        let mut fx = Effects::from_engine(out);
        // The frame the engine made goes live instead, and only to a contact whose token we
        // hold (the relay passes live envelopes between contacts only).
        fx.frames = std::mem::take(&mut fx.frames)
            .into_iter()
            .filter_map(|f| match f {
                ClientFrame::SendAsContact { to, token, payload, .. } => {
                    Some(ClientFrame::SendLive { to, token, payload })
                }
                _ => None,
            })
            .collect();
        *self.live_sent.entry(to).or_default() += 1;
        Ok(fx)
    }

    /// An envelope a contact sent live: only a typing notice from a contact counts; anything
    /// else is dropped (a session it advanced is saved, as for any envelope opened). Nothing is
    /// acknowledged.
    pub(crate) fn on_live(&mut self, payload: &[u8], e: &mut dyn Entropy) -> Effects {
        let Ok((persist, r)) = self.device.receive_live(payload, e) else { return Effects::default() };
        let mut fx = Effects {
            writes: persist.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ..Effects::default()
        };
        let from = sotto_shared::Address::from_identity_key(&r.from.signing_key);
        if let (true, Body::Typing { typing }) = (self.contacts.contains(&from), r.message.body) {
            fx.events.push(Event::Typing { conversation: ConversationId::Direct(from), typing });
        }
        fx
    }
}
