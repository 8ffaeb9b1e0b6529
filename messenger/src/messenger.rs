//! The facade the app, tests, load tool and bots call: it owns the engine's `Device` and the
//! stores of this crate, and turns relay frames and the person's actions into [`Effects`].

use crate::contacts::{Contact, ContactNotice, Contacts};
use crate::conversation::ConversationId;
use crate::effects::{Effects, Event, Notice};
use crate::error::MessengerError;
use crate::groups::Groups;
use crate::history::{ChatContent, ChatMessage, History, Status, decode_message};
use crate::invites::{self, InvitePreview};
use crate::joining::Joining;
use crate::outbox::{Outbound, Outbox, RETRY_LATER_MS, RETRY_SOON_MS, decode_outbound};
use crate::profile::Profile;
use crate::receipts::Receipts;
use crate::records::{RecordBytes, RecordKey, RecordWrite, RecordWrites, decode, encode};
use crate::requests::{MAX_REQUEST_BYTES, MAX_REQUEST_TEXTS, Request, Requests};
use crate::store::RecordRange;
use sotto_engine::EngineError;
use sotto_engine::attachment::Attachment;
use sotto_engine::consts::{MAX_TEXT_BYTES, PREKEY_BATCH};
use sotto_engine::device::Device;
use sotto_engine::message::{Body, Message, ReceiptKind, VERSION};
use sotto_engine::prekeys::verify_bundle;
use sotto_engine::random::Entropy;
use sotto_engine::safety;
use sotto_shared::frames::{ErrorCode, IdentityPublic, PrekeyBundle};
use sotto_shared::{Address, ClientFrame, MessageId, RelayFrame};
use std::collections::{BTreeSet, HashSet};

/// Most strangers ever told that the invite link they used was spent (each costs a stored
/// record and a bundle fetch).
pub const MAX_TOLD: usize = 1000;

/// One row of the chat list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSummary {
    pub conversation: ConversationId,
    /// What the chat is called: the other person's name in a direct chat.
    pub title: String,
    pub last: Option<ChatMessage>,
    pub unread: usize,
    pub activity_ms: u64,
    /// A stranger's contact request, not a contact yet.
    pub request: bool,
}

pub struct Messenger {
    pub(crate) device: Device,
    profile: Profile,
    pub(crate) contacts: Contacts,
    pub(crate) history: History,
    outbox: Outbox,
    /// The next local sequence number (messages and outbox entries share it).
    next_seq: u64,
    /// Strangers who used a spent invite link, whose bundle was asked for to tell them so.
    refusing: HashSet<Address>,
    /// Strangers ever told so (stored): each is told once, and at most [`MAX_TOLD`] ever.
    told: BTreeSet<Address>,
    /// Strangers who wrote without an invite (stored).
    requests: Requests,
    /// Addresses we asked the relay for a bundle of, to write to them (`write_to`).
    introducing: HashSet<Address>,
    /// This state came from a backup and its sessions still send (see `restored_work`).
    restored: bool,
    /// The conversation open in a visible page, if any (see `set_reading`).
    pub(crate) reading: Option<ConversationId>,
    pub(crate) receipts: Receipts,
    /// The groups we are in (stored, one record each).
    pub(crate) groups: Groups,
    /// The channels we follow or run (stored, one record each).
    pub(crate) channels: crate::channels::Channels,
    /// Posts we reported and the relay has not answered for yet (in memory).
    pub(crate) reporting: HashSet<MessageId>,
    /// Welcomes into groups that came in parts, until every part is in (stored).
    pub(crate) joining: Joining,
    /// Group records this version cannot read (written by a development build of groups
    /// before their layout settled): left in the store, not loaded.
    unreadable_groups: usize,
    /// Group posts the relay refused for a while, and when to send each again (in memory: a
    /// reload resends every unconfirmed post anyway).
    pub(crate) post_retries: crate::outbox::Paused,
    /// Timers and countdowns of disappearing messages (stored).
    pub(crate) disappearing: crate::disappearing::Disappearing,
    /// Every chat message's words, to search (stored in parts).
    pub(crate) search: crate::search::SearchIndex,
    /// The stored history is not in the search index yet (a store from before it, or one
    /// whose index could not be read).
    pub(crate) unindexed: bool,
    /// Parts of an index that could not be read: deleted once it is built again.
    pub(crate) stale_parts: Vec<u32>,
    /// Live envelopes sent to each contact since they last wrote (see `Messenger::typing`).
    pub(crate) live_sent: std::collections::HashMap<Address, u32>,
}

impl Messenger {
    fn with(device: Device, profile: Profile) -> Messenger {
        Messenger {
            device,
            profile,
            contacts: Contacts::default(),
            history: History::default(),
            outbox: Outbox::default(),
            next_seq: 1,
            refusing: HashSet::new(),
            told: BTreeSet::new(),
            requests: Requests::default(),
            introducing: HashSet::new(),
            restored: false,
            reading: None,
            receipts: Receipts::default(),
            groups: Groups::default(),
            channels: crate::channels::Channels::default(),
            reporting: HashSet::new(),
            joining: Joining::default(),
            unreadable_groups: 0,
            post_retries: crate::outbox::Paused::default(),
            disappearing: crate::disappearing::Disappearing::default(),
            search: crate::search::SearchIndex::default(),
            live_sent: std::collections::HashMap::new(),
            unindexed: false,
            stale_parts: Vec::new(),
        }
    }

    /// A new identity named `display_name`.
    pub fn create(
        display_name: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(Self, Effects), MessengerError> {
        let display_name = crate::names::validate(display_name)?;
        let (device, out) = Device::create(e)?;
        let m = Messenger::with(device, Profile::new(&display_name, now_ms));
        // Prekeys are made and published at the first login.
        let mut fx = Effects::from_engine(out);
        fx.writes.push(m.profile_write());
        // A new store's index holds all of its (empty) history.
        fx.writes.push((RecordKey::Indexed, Some(RecordBytes::default())));
        Ok((m, fx))
    }

    /// Rebuilds everything but the history from stored records (see [`crate::load`], which
    /// reads them and then the history, page by page, through [`Messenger::add_page`]).
    pub fn restore(records: Vec<(RecordKey, RecordBytes)>) -> Result<Self, MessengerError> {
        let mut engine = Vec::new();
        let mut profile = None;
        let (mut contacts, mut outbox) = (Contacts::default(), Outbox::default());
        let mut told = BTreeSet::new();
        let mut requests = Requests::default();
        let mut groups = Groups::default();
        let mut channels = crate::channels::Channels::default();
        let mut joining = Joining::default();
        let mut unreadable_groups = 0;
        let mut restored = false;
        let mut next_seq = 1;
        let mut disappearing = crate::disappearing::Disappearing::default();
        let mut search = crate::search::SearchIndex::default();
        let (mut indexed, mut damaged_index, mut parts) = (false, false, Vec::new());
        for (key, bytes) in records {
            match &key {
                RecordKey::Engine(k) => engine.push((k.clone(), bytes)),
                RecordKey::Profile => profile = Some(decode::<Profile>(&key, &bytes)?),
                RecordKey::Contact(_) => contacts.restore(decode(&key, &bytes)?),
                RecordKey::Told(a) => {
                    told.insert(*a);
                }
                RecordKey::Request(_) => requests.restore(decode(&key, &bytes)?),
                RecordKey::Restored => restored = true,
                // A group this version cannot read costs that group, not the whole load.
                RecordKey::Group(_) => match crate::groups::decode_group(&key, &bytes) {
                    Ok(entry) => groups.restore(entry),
                    Err(_) => unreadable_groups += 1,
                },
                RecordKey::Joining(..) => joining.restore(decode(&key, &bytes)?),
                RecordKey::Asked(_) => joining.restore_asked(decode(&key, &bytes)?),
                RecordKey::Channel(_) => channels.restore(decode(&key, &bytes)?),
                RecordKey::Outbox(seq) => {
                    next_seq = next_seq.max(seq + 1);
                    outbox.insert(*seq, decode_outbound(&key, &bytes)?);
                }
                RecordKey::Disappearing => disappearing = decode(&key, &bytes)?,
                // The index is derived: a part that cannot be read is built again from the
                // history (see `unindexed`) rather than failing the load.
                RecordKey::Search(part) => {
                    parts.push(*part);
                    damaged_index |= search.restore(*part, &key, &bytes).is_err();
                }
                RecordKey::Indexed => indexed = true,
                // History comes in pages.
                RecordKey::Message(..) => {}
            }
        }
        let profile = profile.ok_or_else(|| MessengerError::Damaged("no profile".into()))?;
        let mut m = Messenger::with(Device::restore(engine)?, profile);
        (m.contacts, m.outbox, m.next_seq, m.told, m.requests) = (contacts, outbox, next_seq, told, requests);
        m.restored = restored;
        (m.groups, m.joining, m.unreadable_groups) = (groups, joining, unreadable_groups);
        if damaged_index {
            search = crate::search::SearchIndex::default();
            m.stale_parts = parts;
        }
        (m.channels, m.disappearing, m.search) = (channels, disappearing, search);
        m.unindexed = !indexed || damaged_index;
        Ok(m)
    }

    /// What must be saved before anything else when this state came from a backup: every
    /// session stops sending (the copy the backup was made from may have used their keys), and
    /// the marker goes. Each contact's session is then renewed when the sending line comes up
    /// (see `resend`). `None` for any other state.
    pub fn restored_work(&mut self) -> Option<Effects> {
        if !std::mem::take(&mut self.restored) {
            return None;
        }
        let mut fx = Effects::from_engine(self.device.retire_sending());
        // Envelopes sealed before the backup was made may have gone out from the other copy;
        // the outbox keeps them (resending the same bytes reuses no key).
        fx.writes.push((RecordKey::Restored, None));
        Some(fx)
    }

    /// Contacts whose sessions cannot send (restored from a backup) and need a new one.
    fn renewing(&self) -> impl Iterator<Item = Address> + '_ {
        self.contacts
            .iter()
            .map(|c| c.address)
            .filter(|a| self.device.has_conversation(a) && !self.device.can_send_to(a))
    }

    /// Every conversation (each has a history to load).
    pub fn conversations(&self) -> Vec<ConversationId> {
        let people =
            self.contacts.iter().map(|c| c.address).chain(self.requests.pending().map(|r| r.address));
        let groups = self.groups.iter().map(|g| ConversationId::Group(g.id()));
        people.map(ConversationId::Direct).chain(groups).collect()
    }

    /// Stored messages of `conversation` older than those loaded, newest first; `complete`
    /// if storage holds nothing earlier.
    pub fn add_page(
        &mut self,
        conversation: ConversationId,
        page: Vec<(RecordKey, RecordBytes)>,
        complete: bool,
    ) -> Result<(), MessengerError> {
        let mut messages = Vec::with_capacity(page.len());
        for (key, bytes) in page {
            let m = decode_message(&key, &bytes)?;
            if key != m.key() {
                return Err(MessengerError::Damaged(format!("{key}: holds another message")));
            }
            self.next_seq = self.next_seq.max(m.seq + 1);
            messages.push(m);
        }
        self.history.add_page(conversation, messages, complete);
        Ok(())
    }

    /// The page before the loaded messages of `conversation`, if storage holds more.
    pub fn earlier(&self, conversation: &ConversationId) -> Option<RecordRange> {
        let to = self.history.earlier(conversation)?;
        Some(RecordRange::Messages { conversation: *conversation, from: 0, to })
    }

    /// The page a loader must still read before the messenger can run: every unread message,
    /// every message still in the outbox, and the sent messages receipts may still change must
    /// be loaded (their statuses change).
    pub fn must_load(&self, conversation: &ConversationId) -> Option<RecordRange> {
        let range = self.earlier(conversation)?;
        let RecordRange::Messages { to: oldest, .. } = range else { return None };
        let queued = self.outbox.iter().filter_map(|o| o.message).filter(|(c, _)| c == conversation);
        let outbox_unloaded = queued.map(|(_, seq)| seq).min().is_some_and(|seq| seq < oldest);
        let waiting = !self.history.unread_all_loaded(conversation)
            || !self.history.unconfirmed_all_loaded(conversation);
        (outbox_unloaded || waiting).then_some(range)
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn address(&self) -> Address {
        self.device.address()
    }

    pub fn identity(&self) -> IdentityPublic {
        self.device.identity().public()
    }

    pub fn contact(&self, address: &Address) -> Option<&Contact> {
        self.contacts.get(address)
    }

    /// Every contact, by address.
    pub fn contacts(&self) -> impl Iterator<Item = &Contact> {
        self.contacts.iter()
    }

    /// A stranger's request waiting for an answer.
    pub fn request(&self, address: &Address) -> Option<&Request> {
        self.requests.get(address).filter(|r| !r.ignored)
    }

    pub fn messages(&self, conversation: &ConversationId) -> &[ChatMessage] {
        self.history.messages(conversation)
    }

    /// Envelopes and group posts waiting for the relay.
    pub fn pending(&self) -> usize {
        self.outbox.len()
            + self.groups.iter().map(|g| g.pending().count()).sum::<usize>()
            + self.channels.pending()
    }

    /// The chat list, most recent activity first.
    pub fn chat_list(&self) -> Vec<ChatSummary> {
        let row = |conversation: ConversationId, title: &str, since_ms: u64, request: bool| {
            let last = self.messages(&conversation).last().cloned();
            ChatSummary {
                conversation,
                title: title.to_string(),
                activity_ms: last.as_ref().map_or(since_ms, |m| m.sent_at_ms.max(since_ms)),
                unread: self.history.unread(&conversation),
                last,
                request,
            }
        };
        let direct = |a: Address| ConversationId::Direct(a);
        let mut rows: Vec<ChatSummary> =
            self.contacts.iter().map(|c| row(direct(c.address), &c.name, c.added_at_ms, false)).collect();
        rows.extend(self.requests.pending().map(|r| row(direct(r.address), &r.name, r.at_ms, true)));
        rows.extend(
            self.groups
                .iter()
                .map(|g| row(ConversationId::Group(g.id()), &g.group.roster().name, g.since_ms, false)),
        );
        rows.extend(
            self.channels
                .iter()
                .map(|c| row(ConversationId::Channel(c.id()), &c.link.name, c.since_ms, false)),
        );
        rows.sort_by(|a, b| {
            b.activity_ms
                .cmp(&a.activity_ms)
                .then(b.last.as_ref().map(|m| m.seq).cmp(&a.last.as_ref().map(|m| m.seq)))
        });
        rows
    }

    pub fn unread_total(&self) -> usize {
        self.history.unread_total()
    }

    /// How many stored groups this version could not read (see `restore`).
    pub fn unreadable_groups(&self) -> usize {
        self.unreadable_groups
    }

    /// The safety number and QR payload shared with a contact.
    pub fn safety(&self, contact: &Address) -> Option<(String, Vec<u8>)> {
        let c = self.contacts.get(contact)?;
        Some(self.safety_with(&c.identity.signing_key))
    }

    /// The safety number (and QR payload) we share with the holder of identity key `key`: a
    /// contact, or a group member who is not one.
    pub fn safety_with(&self, key: &[u8; 32]) -> (String, Vec<u8>) {
        let me = self.identity().signing_key;
        (safety::safety_number(&me, key), safety::qr_payload(&me, key))
    }

    /// The relay login frame for a `Welcome` challenge.
    pub fn authenticate(&self, origin: &str, challenge: &[u8; 32]) -> ClientFrame {
        self.device.authenticate(origin, challenge)
    }

    /// Handles one frame from the relay.
    pub fn on_frame(&mut self, frame: RelayFrame, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let result = match frame {
            RelayFrame::Authenticated { .. } => self.on_login(now_ms, e),
            RelayFrame::Sent { id } => Ok(self.on_channel_sent(id).unwrap_or_else(|| self.on_sent(id))),
            RelayFrame::ChannelState(state) => Ok(self.on_channel_state(&state)),
            RelayFrame::Reported { id } => Ok(self.on_report_answer(id, Ok(())).unwrap_or_default()),
            RelayFrame::Posted { topic, seq, payload, .. } if self.is_channel(&topic) => {
                Ok(self.on_channel_post(&topic, seq, &payload))
            }
            RelayFrame::Subscribed { topic, through, more, .. } if self.is_channel(&topic) => {
                Ok(self.on_channel_subscribed(&topic, through, more))
            }
            RelayFrame::Posted { topic, seq, payload, .. } if self.is_door(&topic) => {
                Ok(self.on_door_post(&topic, seq, &payload, now_ms))
            }
            RelayFrame::Posted { topic, seq, payload, .. } => {
                Ok(self.on_post(&topic, seq, &payload, now_ms, e))
            }
            RelayFrame::Subscribed { topic, through, more, .. } => {
                Ok(self.on_subscribed(&topic, through, more))
            }
            RelayFrame::Deliver { id, payload, received_at } => {
                Ok(self.on_deliver(id, &payload, received_at, now_ms, e))
            }
            RelayFrame::Live { payload } => Ok(self.on_live(&payload, e)),
            RelayFrame::PrekeysLow { remaining } => {
                self.device.prekeys_low(remaining, e).map(Effects::from_engine).map_err(MessengerError::from)
            }
            RelayFrame::PrekeysStored { .. } if !self.profile.prekeys_published => {
                self.profile.prekeys_published = true;
                Ok(Effects { writes: vec![self.profile_write()], ..Effects::default() })
            }
            RelayFrame::Error { code, message, id: Some(id) } => {
                Ok(self.on_refused(code, &message, id, now_ms))
            }
            RelayFrame::Bundle { address, bundle: Some(bundle) } if self.refusing.remove(&address) => {
                self.tell_invite_used(&address, &bundle, now_ms, e)
            }
            RelayFrame::Bundle { address, bundle: Some(bundle) }
                if self.contacts.contains(&address) && !self.device.can_send_to(&address) =>
            {
                self.renew(&address, &bundle, now_ms, e)
            }
            RelayFrame::Bundle { address, bundle: Some(bundle) }
                if self.groups.awaiting().contains(&address) =>
            {
                let mut fx = Effects::default();
                if self.on_member_bundle(&address, &bundle, now_ms, e, &mut fx) {
                    fx.merge(self.admit_now(&address, now_ms, e));
                }
                Ok(fx)
            }
            RelayFrame::Bundle { address, bundle: None } if self.groups.awaiting().contains(&address) => {
                // Someone who asked by a link with an identity nobody registered is not let in.
                let mut fx = self.admit_never(&address);
                if self.groups.awaiting().contains(&address) {
                    // What a member is owed is kept: asked for again whenever the line comes up.
                    let member = crate::names::placeholder(&address);
                    fx.events.push(Event::Problem(Notice::MemberUnreachable { member }));
                }
                Ok(fx)
            }
            RelayFrame::Bundle { address, bundle } if self.introducing.remove(&address) => match bundle {
                Some(bundle) => self.introduce(&address, &bundle, now_ms, e),
                None => {
                    Ok(Effects { events: vec![Event::Problem(Notice::NoSuchAddress)], ..Effects::default() })
                }
            },
            _ => Ok(Effects::default()),
        };
        result
            .unwrap_or_else(|err| Effects { events: vec![Event::Problem(err.into())], ..Effects::default() })
    }

    fn on_login(&mut self, now_ms: u64, e: &mut dyn Entropy) -> Result<Effects, MessengerError> {
        let mut fx = Effects::default();
        if !self.profile.prekeys_published {
            fx.merge(Effects::from_engine(self.device.publish_prekeys(PREKEY_BATCH, e)?));
        } else if self.profile.rotation_due(now_ms) {
            fx.merge(Effects::from_engine(self.device.rotate_signed_prekey(e)?));
            self.profile.signed_prekey_at_ms = now_ms;
            fx.writes.push(self.profile_write());
        }
        fx.frames.push(self.device.publish_delivery_token()?);
        fx.merge(self.forget_old_prekeys(now_ms));
        Ok(fx)
    }

    /// The frames of every envelope the relay has not confirmed, in order: for a sending link
    /// that just came up.
    pub fn resend(&mut self) -> Effects {
        self.outbox.release_held();
        // Bundle fetches still unanswered go again too (they may have been dropped while the
        // line was down).
        let fetches = self.refusing.iter().chain(&self.introducing).copied().chain(self.renewing());
        let mut frames: Vec<ClientFrame> =
            fetches.map(|address| ClientFrame::FetchBundle { address }).collect();
        frames.extend(
            self.outbox
                .iter()
                .map(|o| self.device.envelope_frame(o.envelope, o.to, o.ttl_secs, o.payload.clone())),
        );
        Effects { frames, ..Effects::default() }
    }

    /// The frames of envelopes the relay refused for a while, once their pause is over (the
    /// clock calls it while the sending line is up); and our requests to join groups that no
    /// admin can answer any more, dropped.
    pub fn retry_refused(&mut self, now_ms: u64) -> Effects {
        let due = self.outbox.due(now_ms);
        let mut frames: Vec<ClientFrame> = due
            .into_iter()
            .map(|o| self.device.envelope_frame(o.envelope, o.to, o.ttl_secs, o.payload.clone()))
            .collect();
        frames.extend(self.due_posts(now_ms));
        let (unsubscribe, writes) = self.joining.expire_asked(now_ms);
        frames.extend(unsubscribe);
        Effects { frames, writes, ..Effects::default() }
    }

    /// Removes an envelope from the outbox; the message it carries takes `status`.
    fn settle_outbound(&mut self, seq: u64, status: Status) -> RecordWrites {
        let Some((o, delete)) = self.outbox.remove(seq) else { return Vec::new() };
        let mut writes = vec![delete];
        if let Some((conversation, mseq)) = o.message {
            writes.extend(self.history.set_status(&conversation, |m| m.seq == mseq, status));
        }
        writes
    }

    fn on_sent(&mut self, envelope: MessageId) -> Effects {
        let mut fx = Effects::default();
        if self.on_post_sent(envelope, &mut fx) || self.on_request_posted(envelope, &mut fx) {
            return fx;
        }
        let seq = self.outbox.find(envelope).map(|(seq, _)| seq);
        let writes = seq.map(|seq| self.settle_outbound(seq, Status::Sent)).unwrap_or_default();
        Effects { writes, ..Effects::default() }
    }

    fn on_refused(&mut self, code: ErrorCode, message: &str, envelope: MessageId, now_ms: u64) -> Effects {
        let permanent =
            matches!(code, ErrorCode::TooLarge | ErrorCode::InvalidRequest | ErrorCode::Malformed);
        let mut fx = Effects::default();
        if let Some(answered) = self.on_report_answer(envelope, Err(message)) {
            return answered;
        }
        if let Some(done) = self.on_channel_refused(code, envelope, message, now_ms) {
            return done;
        }
        if self.on_post_refused(code, envelope, now_ms, &mut fx)
            || self.on_request_refused(code, envelope, now_ms, &mut fx)
        {
            return fx;
        }
        let Some((seq, o)) = self.outbox.find(envelope) else { return fx };
        let to = self.contacts.get(&o.to).map_or("your contact".to_string(), |c| c.name.clone());
        if !permanent {
            // Kept in the outbox and sent again after a pause (see `retry_refused`).
            let pause = match code {
                ErrorCode::RateLimited | ErrorCode::Internal => RETRY_SOON_MS,
                _ => RETRY_LATER_MS,
            };
            let first = self.outbox.hold(seq, now_ms.saturating_add(pause));
            if code == ErrorCode::MailboxFull && first {
                fx.events.push(Event::Problem(Notice::MailboxFull { contact: to }));
            }
            return fx;
        }
        fx.writes = self.settle_outbound(seq, Status::Failed);
        fx.events.push(Event::Problem(Notice::NotSent { contact: to, reason: message.into() }));
        fx
    }

    /// `received_at`: when the relay took the envelope (Unix seconds).
    fn on_deliver(
        &mut self,
        envelope: MessageId,
        payload: &[u8],
        received_at: u64,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Effects {
        let (out, result) = self.device.receive(envelope, payload, e);
        let received = out.received.clone();
        let mut fx = Effects::from_engine(out);
        match result {
            Ok(()) => {}
            Err(EngineError::UnknownPrekey) => fx.merge(self.on_spent_invite(payload)),
            Err(other) => fx.events.push(Event::Problem(Notice::Unreadable(other))),
        }
        for r in received {
            let from = Address::from_identity_key(&r.from.signing_key);
            let conversation = ConversationId::Direct(from);
            // They wrote: their chain turned, so live envelopes may go to them again.
            self.live_sent.remove(&from);
            // Only a link we gave out introduces someone, if they took it up before it expired
            // (when the relay took the envelope); anyone else who writes asks first.
            let invited = r.via_invite.is_some_and(|expires_at| received_at <= expires_at);
            // A group's admin who is not our contact may hand us the group's next key.
            if !self.contacts.contains(&from)
                && !invited
                && !self.is_group_handover(&r.from.signing_key, &r.message.body)
            {
                fx.merge(self.on_stranger(from, r, now_ms));
                continue;
            }
            match r.message.body {
                Body::Profile { display_name } => {
                    fx.merge(self.upsert_contact(from, r.from, &display_name, now_ms));
                }
                body @ (Body::Text(_) | Body::File(_) | Body::Reply { .. }) => {
                    let message = Message { body, ..r.message };
                    if !self.history.first_sight(conversation, message.id) {
                        continue;
                    }
                    if !self.contacts.contains(&from) {
                        let name = crate::names::placeholder(&from);
                        fx.merge(self.upsert_contact(from, r.from, &name, now_ms));
                    }
                    // In the chat the person is looking at, a message is read on arrival: one
                    // "read" receipt replaces "delivered" then "read".
                    let read_now = self.reading == Some(conversation);
                    let status = if read_now { Status::Read } else { Status::Delivered };
                    let seq = self.seq();
                    let id = message.id;
                    let Some(m) = ChatMessage::received(seq, conversation, message, status, None) else {
                        continue;
                    };
                    let text = m.preview();
                    fx.writes.extend(self.keep(m));
                    if read_now {
                        fx.writes.extend(self.start_countdowns(&conversation, now_ms));
                    }
                    let name = self.contacts.get(&from).map(|c| c.name.clone()).unwrap_or_default();
                    fx.events.push(Event::Message { conversation, name, text });
                    self.receipts.owe(conversation, read_now, id);
                }
                Body::Edit { .. }
                | Body::Delete { .. }
                | Body::React { .. }
                | Body::Timer { .. }
                | Body::Typing { .. } => {
                    // Only from a contact (an invite's first message makes none).
                    if self.contacts.contains(&from) {
                        fx.merge(self.on_change(conversation, r.from.signing_key, r.message, e));
                    }
                }
                // The engine already kept only the session it started.
                Body::SessionReset => {}
                Body::GroupWelcome(welcome) => match self.on_welcome(&r.from, *welcome, now_ms, e) {
                    Ok(joined) => fx.merge(joined),
                    Err(err) => fx.events.push(Event::Problem(err.into())),
                },
                Body::GroupRekey(rekey) => match self.on_rekey(&r.from, &rekey, e) {
                    Ok(moved) => fx.merge(moved),
                    Err(err) => fx.events.push(Event::Problem(err.into())),
                },
                Body::ChannelGrant(grant) => fx.merge(self.on_channel_grant(*grant, now_ms, e)),
                Body::InviteUsed => {
                    let flagged = self.contacts.update(&from, |c| c.notice = Some(ContactNotice::InviteUsed));
                    fx.writes.extend(flagged.map(contact_write));
                }
                Body::Receipt { kind, ids } => {
                    let status = match kind {
                        ReceiptKind::Delivered => Status::Delivered,
                        ReceiptKind::Read => Status::Read,
                    };
                    let ids: HashSet<_> = ids.into_iter().collect();
                    // Statuses only move forward: a late "delivered" never undoes "read".
                    fx.writes.extend(self.history.set_status(
                        &conversation,
                        |m| m.outgoing && ids.contains(&m.id),
                        status,
                    ));
                    fx.writes.extend(self.start_countdowns(&conversation, now_ms));
                }
            }
        }
        fx
    }

    /// A first message used a one-time key we no longer have: someone accepted an invite link
    /// that was already used. Their messages cannot be read; ask the relay for their bundle so
    /// they can be told (`tell_invite_used`).
    fn on_spent_invite(&mut self, payload: &[u8]) -> Effects {
        let mut fx = Effects::default();
        let Ok(opened) = sotto_engine::envelope::open_envelope(self.device.identity(), payload) else {
            return fx;
        };
        let address = Address::from_identity_key(&opened.sender.signing_key);
        // Once per stranger, ever (a stranger cannot make us fetch bundles and send again and
        // again), and for a bounded number of them.
        // Never to someone who wrote without an invite (their request waits, or was ignored:
        // an ignored stranger learns nothing, not even that we are online).
        let stranger = self.requests.get(&address).is_some();
        if !self.contacts.contains(&address)
            && !stranger
            && self.told.len() < MAX_TOLD
            && self.told.insert(address)
        {
            self.refusing.insert(address);
            fx.writes.push((RecordKey::Told(address), Some(RecordBytes::default())));
            fx.frames.push(ClientFrame::FetchBundle { address });
            fx.events.push(Event::Problem(Notice::SpentInviteOpened));
        }
        fx
    }

    fn tell_invite_used(
        &mut self,
        to: &Address,
        bundle: &PrekeyBundle,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        check_bundle(to, bundle)?;
        let mut fx = Effects::from_engine(self.device.start_conversation(bundle, e)?);
        fx.merge(self.send_body(to, Body::InviteUsed, None, now_ms, e)?.0);
        Ok(fx)
    }

    /// What a stranger wrote (someone who came through no invite of ours): their request, and
    /// their texts kept beside it (a bounded number). Nothing goes back to them, not even a
    /// receipt, until the person accepts.
    fn on_stranger(&mut self, from: Address, r: sotto_engine::device::Received, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let conversation = ConversationId::Direct(from);
        let asked = self.requests.is_pending(&from);
        let (name, text) = match r.message.body {
            Body::Profile { display_name } => (Some(display_name), None),
            Body::Text(text) => (None, Some(text)),
            // A stranger's file is dropped, unopened and unkept: nothing of theirs is fetched
            // (a blob download would tell them, through the relay, that we looked).
            Body::File(_) => return fx,
            Body::Reply { text, .. } => (None, Some(text)),
            // Receipts, changes and notices mean nothing from a stranger, nor do groups they
            // offer.
            Body::Edit { .. }
            | Body::Delete { .. }
            | Body::React { .. }
            | Body::Timer { .. }
            | Body::Typing { .. }
            | Body::Receipt { .. }
            | Body::InviteUsed
            | Body::SessionReset
            | Body::GroupWelcome(_)
            | Body::GroupRekey(_)
            | Body::ChannelGrant(_) => return fx,
        };
        let Some(request) = self.requests.upsert(from, r.from, name.as_deref(), now_ms) else {
            // Dropped (too many waiting) or ignored: nothing of theirs is kept, not even the
            // session their message just started.
            fx.merge(self.forget_stranger(&from));
            return fx;
        };
        let name = request.name.clone();
        fx.writes.push((RecordKey::Request(from), Some(encode(request))));
        if let Some(text) = text {
            let kept = self.messages(&conversation);
            let bytes: usize = kept.iter().map(|m| m.text.len()).sum::<usize>() + text.len();
            if kept.len() >= MAX_REQUEST_TEXTS
                || bytes > MAX_REQUEST_BYTES
                || !self.history.first_sight(conversation, r.message.id)
            {
                return fx;
            }
            let seq = self.seq();
            let (id, sent_at_ms) = (r.message.id, r.message.sent_at_ms);
            let m = ChatMessage {
                text,
                ..ChatMessage::blank(seq, id, conversation, sent_at_ms, Status::Delivered, None)
            };
            fx.writes.extend(self.keep(m));
        }
        if !asked {
            fx.events.push(Event::Request { address: from, name });
        }
        fx
    }

    /// Accepts a stranger's request: they become a contact and get our name (and, inside the
    /// seal, our delivery token); what they wrote is read if the chat is open.
    pub fn accept_request(
        &mut self,
        address: &Address,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let request = self.request(address).cloned().ok_or(MessengerError::NoRequest)?;
        let can_send = self.device.can_send_to(address);
        // Our name, the step that can fail first, before anything changes. A session that came
        // back from a backup cannot send: it is renewed first, which sends our name (`renew`).
        let mut fx = if can_send {
            self.send_profile(address, now_ms, e)?
        } else {
            Effects { frames: vec![ClientFrame::FetchBundle { address: *address }], ..Effects::default() }
        };
        self.requests.remove(address);
        fx.writes.push((RecordKey::Request(*address), None));
        fx.merge(self.upsert_contact(*address, request.identity, &request.name, now_ms));
        if can_send && self.reading == Some(ConversationId::Direct(*address)) {
            fx.merge(self.mark_read(&ConversationId::Direct(*address), now_ms, e));
        }
        Ok(fx)
    }

    /// Ignores a stranger's request: what they wrote is deleted and anything later from them
    /// is dropped unseen. They are not told.
    pub fn ignore_request(&mut self, address: &Address) -> Result<Effects, MessengerError> {
        if self.request(address).is_none() {
            return Err(MessengerError::NoRequest);
        }
        let (request, forgotten) = self.requests.ignore(address).ok_or(MessengerError::NoRequest)?;
        let mut fx = self.forget_stranger(address);
        fx.writes.extend(self.forget_history(&ConversationId::Direct(*address)));
        fx.writes.push((RecordKey::Request(*address), Some(encode(&request))));
        fx.writes.extend(forgotten.map(|a| (RecordKey::Request(a), None)));
        if self.reading == Some(ConversationId::Direct(*address)) {
            self.reading = None;
        }
        Ok(fx)
    }

    /// Drops a stranger's sessions and token (kept only while their request waits).
    fn forget_stranger(&mut self, address: &Address) -> Effects {
        match self.device.forget(address) {
            Ok(out) => Effects::from_engine(out),
            Err(err) => Effects {
                events: vec![Event::Problem(MessengerError::from(err).into())],
                ..Effects::default()
            },
        }
    }

    /// Writes to an address that gave us no invite (a bot does this; so does someone told an
    /// address): the relay is asked for its bundle, then we introduce ourselves. On their side
    /// we are a contact request until they accept.
    pub fn write_to(&mut self, address: Address) -> Result<Effects, MessengerError> {
        if address == self.address() {
            return Err(MessengerError::OwnInvite);
        }
        if self.contacts.contains(&address) {
            return Ok(Effects::default());
        }
        self.introducing.insert(address);
        Ok(Effects { frames: vec![ClientFrame::FetchBundle { address }], ..Effects::default() })
    }

    /// A new session with a contact whose sessions came back from a backup, announced with
    /// `SessionReset` so that they keep only this one.
    fn renew(
        &mut self,
        to: &Address,
        bundle: &PrekeyBundle,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        verify_bundle(bundle).map_err(|_| MessengerError::ForgedInvite)?;
        // Their identity must be the one we know: a changed key is no renewal.
        if self.contacts.get(to).map(|c| c.identity) != Some(bundle.identity) {
            return Err(MessengerError::Engine(EngineError::IdentityMismatch));
        }
        // Only with a one-time prekey: a reset made without one could be replayed by the relay
        // once its session is gone, and would drop the live one. Without, it waits for the
        // next time the sending line comes up.
        if bundle.one_time_prekey.is_none() {
            return Ok(Effects::default());
        }
        let mut fx = Effects::from_engine(self.device.start_conversation(bundle, e)?);
        fx.merge(self.send_body(to, Body::SessionReset, None, now_ms, e)?.0);
        // Our name again: a request accepted while its session was renewed has not had it
        // (not to a key in doubt: nothing goes there unasked).
        if !self.contacts.get(to).is_some_and(Contact::key_in_doubt) {
            fx.merge(self.send_profile(to, now_ms, e)?);
        }
        Ok(fx)
    }

    /// The bundle of an address we asked to write to: a session, a contact on our side, and
    /// our name.
    fn introduce(
        &mut self,
        to: &Address,
        bundle: &PrekeyBundle,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        check_bundle(to, bundle)?;
        let mut fx = Effects::from_engine(self.device.start_conversation(bundle, e)?);
        fx.merge(self.upsert_contact(*to, bundle.identity, &crate::names::placeholder(to), now_ms));
        fx.merge(self.send_profile(to, now_ms, e)?);
        Ok(fx)
    }

    fn upsert_contact(
        &mut self,
        address: Address,
        identity: IdentityPublic,
        name: &str,
        now_ms: u64,
    ) -> Effects {
        let (contact, added) = self.contacts.upsert(address, identity, name, now_ms);
        let mut fx = Effects { writes: vec![contact_write(contact)], ..Effects::default() };
        // A contact is no request, whatever they were before (they came through our link, or
        // we wrote to them).
        if self.requests.remove(&address).is_some() {
            fx.writes.push((RecordKey::Request(address), None));
        }
        if added {
            fx.events.push(Event::ContactAdded(address));
        }
        fx
    }

    pub(crate) fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Encrypts `body` for `to` and puts the envelope in the outbox.
    pub(crate) fn send_body(
        &mut self,
        to: &Address,
        body: Body,
        message: Option<(ConversationId, u64)>,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(Effects, [u8; 16]), MessengerError> {
        // Nothing of ours goes to a key in doubt but what keeps sessions and groups whole
        // (their keys follow the group's roster, which names each member's own key), and our
        // name when the person chose to take them in (accepting their invite or request).
        if let Some(c) = self.contacts.get(to).filter(|c| c.key_in_doubt())
            && !matches!(
                body,
                Body::SessionReset
                    | Body::InviteUsed
                    | Body::GroupWelcome(_)
                    | Body::GroupRekey(_)
                    | Body::Profile { .. }
            )
        {
            return Err(MessengerError::KeyInDoubt(c.name.clone()));
        }
        let mut id = [0u8; 16];
        e.fill(&mut id)?;
        let mut envelope = [0u8; 16];
        e.fill(&mut envelope)?;
        // `InviteUsed` is the one automatic reply to someone who is not a contact: anyone can
        // provoke it, so it must not hand out our delivery token.
        let to_stranger = matches!(body, Body::InviteUsed)
            || (matches!(body, Body::GroupRekey(_)) && !self.contacts.contains(to));
        let expires_after_secs = self.expiry_for(&ConversationId::Direct(*to), &body);
        let msg = Message { v: VERSION, id, sent_at_ms: now_ms, expires_after_secs, body };
        let out = if to_stranger {
            self.device.send_withholding_token(to, &msg, MessageId(envelope), e)?
        } else {
            self.device.send(to, &msg, MessageId(envelope), e)?
        };
        let payload = out.envelope().map(|(_, p)| p.to_vec()).ok_or(EngineError::Internal("no envelope"))?;
        let seq = self.seq();
        let mut fx = Effects::from_engine(out);
        fx.writes.push(self.outbox.insert(
            seq,
            Outbound {
                envelope: MessageId(envelope),
                to: *to,
                payload,
                message,
                ttl_secs: msg.envelope_ttl_secs(),
            },
        ));
        Ok((fx, id))
    }

    /// Sends a text to a conversation.
    pub fn send_text(
        &mut self,
        conversation: &ConversationId,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if text.trim().is_empty() {
            return Err(MessengerError::EmptyMessage);
        }
        self.send_chat(
            conversation,
            ChatContent { text: text.into(), attachment: None, reply_to: None },
            now_ms,
            e,
        )
    }

    /// Sends a file the app sealed and uploaded (see `sotto_engine::file`), with its caption,
    /// in any conversation.
    pub fn send_file(
        &mut self,
        conversation: &ConversationId,
        attachment: Attachment,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        attachment.check()?;
        let text = attachment.caption.clone();
        self.send_chat(
            conversation,
            ChatContent { text, attachment: Some(Box::new(attachment)), reply_to: None },
            now_ms,
            e,
        )
    }

    /// Whether we may write in `conversation` now. Sending asks; the app asks too before a
    /// file is uploaded, so a refusal comes before its bytes move.
    pub fn can_write(&self, conversation: &ConversationId) -> Result<(), MessengerError> {
        match conversation {
            ConversationId::Direct(to) => match self.contacts.get(to) {
                None if self.requests.is_pending(to) => Err(MessengerError::RequestPending),
                None => Err(MessengerError::UnknownContact),
                Some(c) if c.notice == Some(ContactNotice::InviteUsed) => Err(MessengerError::InviteUsed),
                Some(c) if c.key_in_doubt() => Err(MessengerError::KeyInDoubt(c.name.clone())),
                Some(c) if self.device.has_conversation(to) && !self.device.can_send_to(to) => {
                    Err(MessengerError::Renewing(c.name.clone()))
                }
                Some(_) => Ok(()),
            },
            ConversationId::Group(id) => match self.groups.get(id) {
                Some(g) if !g.gone => Ok(()),
                _ => Err(MessengerError::NotInGroup),
            },
            ConversationId::Channel(id) => {
                let entry = self.channels.get(id).ok_or(MessengerError::NotInChannel)?;
                if let Some(reason) = &entry.blocked {
                    return Err(MessengerError::ChannelBlocked(reason.clone()));
                }
                if !entry.may_post() {
                    return Err(MessengerError::NotChannelAdmin);
                }
                Ok(())
            }
        }
    }

    /// A chat message: words, a file with its caption, or a reply.
    pub(crate) fn send_chat(
        &mut self,
        conversation: &ConversationId,
        content: ChatContent,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if content.text.len() > MAX_TEXT_BYTES {
            return Err(MessengerError::TooLong);
        }
        self.can_write(conversation)?;
        let to = match *conversation {
            ConversationId::Direct(to) => to,
            ConversationId::Group(id) => return self.send_group_chat(&id, content, now_ms, e),
            ConversationId::Channel(_) if content.reply_to.is_some() => {
                return Err(MessengerError::NotInChannels);
            }
            ConversationId::Channel(id) => return self.post_to_channel(&id, content, now_ms, e),
        };
        let seq = self.seq();
        let mut message = ChatMessage::sending(seq, *conversation, content, now_ms);
        let body = message.body();
        // The chat message takes the id inside the envelope, so receipts can name it.
        let (mut fx, id) = self.send_body(&to, body.clone(), Some((*conversation, seq)), now_ms, e)?;
        message.id = id;
        fx.writes.extend(self.own_expiry(&mut message, &body, now_ms));
        // Writing in a chat reads it (which keeps unread messages the newest incoming ones, as
        // history paging relies on). After the send, which is the step that can fail.
        fx.merge(self.mark_read(conversation, now_ms, e));
        fx.writes.extend(self.keep(message));
        Ok(fx)
    }

    /// The conversation the person is looking at (open in a visible page), or `None`.
    /// Messages arriving there count as read.
    pub fn set_reading(&mut self, conversation: Option<ConversationId>) {
        self.reading = conversation;
    }

    /// Receipts are owed: the app calls `flush_receipts` shortly.
    pub fn receipts_due(&self) -> bool {
        !self.receipts.is_empty()
    }

    /// Sends the owed receipts, one per conversation and kind.
    pub fn flush_receipts(&mut self, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let mut fx = Effects::default();
        for (conversation, kind, ids) in self.receipts.take() {
            let to = match conversation {
                ConversationId::Direct(to) => to,
                // In a group, "read" only, posted for every member to count (see `mark_read`).
                ConversationId::Group(id) => {
                    for ids in ids.chunks(crate::groups::MAX_RECEIPT_IDS) {
                        let body = Body::Receipt { kind, ids: ids.to_vec() };
                        // A group we cannot write to now (waiting for a rekey) goes without.
                        if let Ok((more, _)) = self.send_group_body(&id, body, None, now_ms, e) {
                            fx.merge(more);
                        }
                    }
                    continue;
                }
                // Channels have no receipts: views are counted by the relay.
                ConversationId::Channel(_) => continue,
            };
            // A session being renewed cannot send yet, nor may anything go to a key in doubt;
            // receipts are not worth waiting for.
            if !self.device.can_send_to(&to) || self.contacts.get(&to).is_some_and(Contact::key_in_doubt) {
                continue;
            }
            match self.send_body(&to, Body::Receipt { kind, ids }, None, now_ms, e) {
                Ok((more, _)) => fx.merge(more),
                Err(err) => fx.events.push(Event::Problem(err.into())),
            }
        }
        fx
    }

    /// Marks a conversation's incoming messages read and tells the sender.
    pub fn mark_read(&mut self, conversation: &ConversationId, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let ids: Vec<[u8; 16]> =
            self.messages(conversation).iter().filter(|m| m.is_unread()).map(|m| m.id).collect();
        if ids.is_empty() {
            return Effects::default();
        }
        let set: HashSet<_> = ids.iter().copied().collect();
        // "Read" supersedes any "delivered" still owed for these.
        self.receipts.superseded_by_read(*conversation, &set);
        let mut fx = Effects {
            writes: self.history.set_status(conversation, |m| set.contains(&m.id), Status::Read),
            ..Effects::default()
        };
        fx.writes.extend(self.start_countdowns(conversation, now_ms));
        let to = match *conversation {
            ConversationId::Direct(to) => to,
            // A group's receipt goes with the others owed (one post for all that are read).
            ConversationId::Group(id) => {
                if self.groups.get(&id).is_some_and(crate::groups::GroupEntry::has_receipts) {
                    for id in ids {
                        self.receipts.owe(*conversation, true, id);
                    }
                }
                return fx;
            }
            ConversationId::Channel(_) => return fx,
        };
        // A stranger learns nothing, not even that we read them, until they are accepted; a
        // key in doubt nothing until the person answers the warning; a session being renewed
        // cannot send yet.
        if self.contacts.get(&to).is_none_or(Contact::key_in_doubt) || !self.device.can_send_to(&to) {
            return fx;
        }
        match self.send_body(&to, Body::Receipt { kind: ReceiptKind::Read, ids }, None, now_ms, e) {
            Ok((more, _)) => fx.merge(more),
            Err(err) => fx.events.push(Event::Problem(err.into())),
        }
        fx
    }

    /// Writes to a contact whose key changed (or whose name another's has) again, without
    /// verifying them: they stay unverified, and the chat says so.
    pub fn accept_key(&mut self, contact: &Address) -> Effects {
        let changed = self.contacts.update(contact, |c| {
            if c.key_in_doubt() {
                c.notice = None;
            }
        });
        Effects { writes: changed.map(contact_write).into_iter().collect(), ..Effects::default() }
    }

    pub fn set_verified(&mut self, contact: &Address, verified: bool) -> Effects {
        let changed = self.contacts.update(contact, |c| {
            c.verified = verified;
            if verified {
                c.notice = None;
            }
        });
        Effects { writes: changed.map(contact_write).into_iter().collect(), ..Effects::default() }
    }

    pub fn set_notifications(&mut self, notifications: bool, previews: bool) -> Effects {
        self.profile.notifications = notifications;
        self.profile.previews = previews;
        Effects { writes: vec![self.profile_write()], ..Effects::default() }
    }

    /// A one-time contact link for `relay_origin`.
    pub fn create_invite(
        &mut self,
        relay_origin: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(String, Effects), MessengerError> {
        let expires_at = invites::expiry(now_ms);
        let (invite, out) = self.device.invite(&self.profile.display_name, relay_origin, expires_at, e)?;
        let mut fx = Effects::from_engine(out);
        fx.merge(self.forget_old_prekeys(now_ms));
        Ok((invite.link(), fx))
    }

    /// Forgets one-time secrets nobody can use any more, at each login and each new link:
    /// expired links' (nobody can start a chat with one, even a client that skips the check)
    /// and relay keys' the relay has dropped (see `Prekeys::forget_old`).
    fn forget_old_prekeys(&mut self, now_ms: u64) -> Effects {
        self.device.forget_old_prekeys(now_ms / 1000).map(Effects::from_engine).unwrap_or_default()
    }

    /// Checks an invite payload (from the URL fragment) before showing it.
    pub fn preview_invite(
        &self,
        payload: &str,
        relay_origin: &str,
        now_ms: u64,
    ) -> Result<InvitePreview, MessengerError> {
        invites::preview(payload, relay_origin, now_ms, self.address(), |a| self.contacts.contains(a))
    }

    /// Accepts an invite: starts the session and introduces ourselves.
    pub fn accept_invite(
        &mut self,
        preview: &InvitePreview,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        if preview.known {
            return Ok(Effects::default());
        }
        let invite = &preview.invite;
        let mut fx = Effects::from_engine(self.device.start_conversation(&invite.bundle, e)?);
        fx.merge(self.upsert_contact(preview.address, invite.bundle.identity, &invite.display_name, now_ms));
        fx.merge(self.send_profile(&preview.address, now_ms, e)?);
        Ok(fx)
    }

    /// Our display name, sent to `to`.
    fn send_profile(
        &mut self,
        to: &Address,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, MessengerError> {
        let hello = Body::Profile { display_name: self.profile.display_name.clone() };
        Ok(self.send_body(to, hello, None, now_ms, e)?.0)
    }

    fn profile_write(&self) -> RecordWrite {
        (RecordKey::Profile, Some(encode(&self.profile)))
    }
}

/// A bundle from the relay, fit to start a session with `to`: its signatures verify and it
/// is `to`'s.
pub(crate) fn check_bundle(to: &Address, bundle: &PrekeyBundle) -> Result<(), MessengerError> {
    verify_bundle(bundle).map_err(|_| MessengerError::ForgedInvite)?;
    if Address::from_identity_key(&bundle.identity.signing_key) != *to {
        return Err(MessengerError::ForgedInvite);
    }
    Ok(())
}

fn contact_write(c: &Contact) -> RecordWrite {
    (RecordKey::Contact(c.address), Some(encode(c)))
}
