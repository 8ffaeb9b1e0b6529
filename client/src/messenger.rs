//! What the app knows beyond the engine: the profile, contacts, chat history and the outbox.
//!
//! Sans-IO like the engine it wraps, so it is tested natively. Every call returns [`Effects`]:
//! records to write, frames for the relay and events for the UI. The app writes the records in
//! one IndexedDB transaction and sends the frames only once it has committed, so an `Ack` never
//! leaves before the message it acknowledges is stored, and ratchet state is never stored without
//! the message it produced.
//!
//! Frames are only sent while the connection is authenticated; anything that must survive a
//! disconnection (a text, a receipt, a profile) goes through the outbox, which is persisted and
//! resent in order after every login until the relay answers `Sent`.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sotto_engine::EngineError;
use sotto_engine::device::{Device, Output, PREKEY_BATCH, StorageKey};
use sotto_engine::message::{Body, MAX_TEXT_BYTES, Message, ReceiptKind, VERSION};
use sotto_engine::prekeys::verify_bundle;
use sotto_engine::random::Entropy;
use sotto_engine::safety;
use sotto_shared::frames::{ErrorCode, IdentityPublic, PrekeyBundle};
use sotto_shared::invite::{INVITE_LIFETIME_SECS, Invite, InviteError};
use sotto_shared::{Address, ClientFrame, MessageId, RelayFrame};
use std::collections::{BTreeMap, HashSet};
use thiserror::Error;

/// Records to write (`Some`) or delete (`None`), by name, in one transaction.
pub type RecordWrites = Vec<(String, Option<Vec<u8>>)>;

/// How often the signed prekey is replaced.
pub const SIGNED_PREKEY_ROTATION_MS: u64 = 7 * 24 * 3600 * 1000;
const RECORD_VERSION: u8 = 1;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AppError {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Invite(#[from] InviteError),
    #[error("this invite link is not signed correctly; ask for a new one")]
    ForgedInvite,
    #[error("this is your own invite link: send it to the person you want to talk to")]
    OwnInvite,
    #[error("write something first")]
    EmptyMessage,
    #[error("that message is too long: keep it under {} KiB", MAX_TEXT_BYTES / 1024)]
    TooLong,
    #[error("this contact is not in your chats")]
    UnknownContact,
    #[error(
        "the invite link you accepted had already been used, so they cannot read this chat: ask them for a new link"
    )]
    InviteUsed,
    #[error("stored data is damaged: {0}")]
    Damaged(String),
}

#[derive(Debug, Default)]
pub struct Effects {
    pub writes: RecordWrites,
    pub frames: Vec<ClientFrame>,
    pub events: Vec<Event>,
}

impl Effects {
    fn merge(&mut self, other: Effects) {
        self.writes.extend(other.writes);
        self.frames.extend(other.frames);
        self.events.extend(other.events);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text arrived (the UI may notify).
    Message { from: Address, name: String, text: String },
    /// Someone accepted our invite, or we accepted theirs.
    ContactAdded(Address),
    /// Something the person should know, in plain words.
    Problem(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: String,
    pub created_at_ms: u64,
    /// The relay has our one-time prekeys (set on `PrekeysStored`).
    pub prekeys_published: bool,
    pub signed_prekey_at_ms: u64,
    /// Desktop notifications for messages while the tab is hidden.
    pub notifications: bool,
    /// Show the message text in notifications.
    pub previews: bool,
}

/// Why a contact deserves a second look (shown as a banner in the chat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactNotice {
    /// The same address presented a different identity key.
    Changed,
    /// A contact with the same name already exists under another key (they may have started
    /// over on a new device, or someone is impersonating them).
    SameNameAs(Address),
    /// The invite link we accepted had already been used: they cannot read this chat.
    InviteUsed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub address: Address,
    pub identity: IdentityPublic,
    pub name: String,
    pub verified: bool,
    pub notice: Option<ContactNotice>,
    pub added_at_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Encrypted and queued; the relay has not confirmed it yet.
    Sending,
    /// Stored by the relay.
    Sent,
    /// On the recipient's device (for incoming messages: not read yet).
    Delivered,
    Read,
    /// The relay refused it for good.
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Local order of arrival/creation.
    pub seq: u64,
    pub id: [u8; 16],
    pub contact: Address,
    pub outgoing: bool,
    pub text: String,
    /// The sender's clock.
    pub sent_at_ms: u64,
    pub status: Status,
}

impl ChatMessage {
    /// Received and not read yet.
    pub fn is_unread(&self) -> bool {
        !self.outgoing && self.status == Status::Delivered
    }
}

/// An envelope the relay has not confirmed yet; resent after every login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Outbound {
    envelope: MessageId,
    to: Address,
    payload: Vec<u8>,
    /// The chat message it carries, whose status follows the envelope's.
    message: Option<(Address, u64)>,
}

/// One row of the chat list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSummary {
    pub contact: Contact,
    pub last: Option<ChatMessage>,
    pub unread: usize,
    pub activity_ms: u64,
}

/// What an invite link shows before it is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitePreview {
    pub invite: Invite,
    pub address: Address,
    pub fingerprint: String,
    /// Already a contact: accepting would only open the chat.
    pub known: bool,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![RECORD_VERSION];
    // Serializing our own owned records to a Vec cannot fail.
    if let Ok(v) = postcard::to_extend(value, Vec::new()) {
        out.extend(v);
    }
    out
}

fn decode<T: DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, AppError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|e| AppError::Damaged(format!("{name}: {e}")))
        }
        Some((v, _)) => Err(AppError::Damaged(format!("{name}: unknown record version {v}"))),
        None => Err(AppError::Damaged(format!("{name}: empty"))),
    }
}

fn engine_record_name(key: &StorageKey) -> String {
    match key {
        StorageKey::Identity => "identity".into(),
        StorageKey::Prekeys => "prekeys".into(),
        StorageKey::Conversation(a) => format!("session/{}", a.to_hex()),
        StorageKey::DeliveryTokens => "tokens".into(),
    }
}

fn message_name(m: &ChatMessage) -> String {
    format!("msg/{}/{:016x}", m.contact.to_hex(), m.seq)
}

fn outbox_name(seq: u64) -> String {
    format!("outbox/{seq:016x}")
}

fn contact_write(c: &Contact) -> (String, Option<Vec<u8>>) {
    (format!("contact/{}", c.address.to_hex()), Some(encode(c)))
}

pub struct Messenger {
    device: Device,
    profile: Profile,
    contacts: BTreeMap<Address, Contact>,
    chats: BTreeMap<Address, Vec<ChatMessage>>,
    outbox: BTreeMap<u64, Outbound>,
    /// Ids of every chat message, to drop redeliveries (delivery is at least once).
    seen: HashSet<[u8; 16]>,
    next_seq: u64,
    /// Strangers who used a spent invite link, whose bundle was asked for to tell them so.
    refusing: HashSet<Address>,
    /// The chat open in a visible page, if any (see `set_reading`).
    reading: Option<Address>,
    /// Receipts owed, by contact and "read" (else "delivered"), sent together by
    /// `flush_receipts`: a backlog of a hundred messages is answered with one receipt.
    receipts: BTreeMap<(Address, bool), Vec<[u8; 16]>>,
}

impl Messenger {
    /// A new identity named `display_name`.
    pub fn create(display_name: &str, now_ms: u64, e: &mut dyn Entropy) -> Result<(Self, Effects), AppError> {
        let (device, out) = Device::create(e)?;
        let profile = Profile {
            display_name: display_name.into(),
            created_at_ms: now_ms,
            prekeys_published: false,
            signed_prekey_at_ms: now_ms,
            notifications: false,
            previews: false,
        };
        let m = Messenger {
            device,
            profile,
            contacts: BTreeMap::new(),
            chats: BTreeMap::new(),
            outbox: BTreeMap::new(),
            seen: HashSet::new(),
            next_seq: 1,
            refusing: HashSet::new(),
            reading: None,
            receipts: BTreeMap::new(),
        };
        // The upload in `out` is dropped: prekeys are published after the first login.
        let mut fx = engine_effects(out);
        fx.frames.clear();
        fx.writes.push(("profile".into(), Some(encode(&m.profile))));
        Ok((m, fx))
    }

    /// Rebuilds everything from the stored records.
    pub fn restore(records: Vec<(String, Vec<u8>)>) -> Result<Self, AppError> {
        let mut engine = Vec::new();
        let (mut profile, mut contacts, mut chats, mut outbox) =
            (None, BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let mut next_seq = 1;
        let mut seen = HashSet::new();
        for (name, bytes) in records {
            let (kind, rest) = name.split_once('/').unwrap_or((name.as_str(), ""));
            match kind {
                "identity" => engine.push((StorageKey::Identity, bytes)),
                "prekeys" => engine.push((StorageKey::Prekeys, bytes)),
                "tokens" => engine.push((StorageKey::DeliveryTokens, bytes)),
                "session" => {
                    let a = Address::from_hex(rest).ok_or_else(|| AppError::Damaged(name.clone()))?;
                    engine.push((StorageKey::Conversation(a), bytes));
                }
                "profile" => profile = Some(decode::<Profile>(&name, &bytes)?),
                "contact" => {
                    let c: Contact = decode(&name, &bytes)?;
                    contacts.insert(c.address, c);
                }
                "msg" => {
                    let m: ChatMessage = decode(&name, &bytes)?;
                    next_seq = next_seq.max(m.seq + 1);
                    seen.insert(m.id);
                    chats.entry(m.contact).or_insert_with(Vec::new).push(m);
                }
                "outbox" => {
                    let seq = u64::from_str_radix(rest, 16).map_err(|_| AppError::Damaged(name.clone()))?;
                    next_seq = next_seq.max(seq + 1);
                    outbox.insert(seq, decode::<Outbound>(&name, &bytes)?);
                }
                // Records of a newer version are kept, not misread.
                _ => {}
            }
        }
        for list in chats.values_mut() {
            list.sort_by_key(|m: &ChatMessage| m.seq);
        }
        Ok(Messenger {
            device: Device::restore(engine)?,
            profile: profile.ok_or_else(|| AppError::Damaged("no profile".into()))?,
            contacts,
            chats,
            outbox,
            seen,
            next_seq,
            refusing: HashSet::new(),
            reading: None,
            receipts: BTreeMap::new(),
        })
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

    pub fn messages(&self, contact: &Address) -> &[ChatMessage] {
        self.chats.get(contact).map(Vec::as_slice).unwrap_or_default()
    }

    /// Envelopes waiting for the relay.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// The chat list, most recent activity first.
    pub fn chat_list(&self) -> Vec<ChatSummary> {
        let mut rows: Vec<ChatSummary> = self
            .contacts
            .values()
            .map(|c| {
                let msgs = self.messages(&c.address);
                let last = msgs.last().cloned();
                ChatSummary {
                    contact: c.clone(),
                    activity_ms: last.as_ref().map_or(c.added_at_ms, |m| m.sent_at_ms.max(c.added_at_ms)),
                    unread: msgs.iter().filter(|m| m.is_unread()).count(),
                    last,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.activity_ms
                .cmp(&a.activity_ms)
                .then(b.last.as_ref().map(|m| m.seq).cmp(&a.last.as_ref().map(|m| m.seq)))
        });
        rows
    }

    pub fn unread_total(&self) -> usize {
        self.chats.values().flatten().filter(|m| m.is_unread()).count()
    }

    /// The safety number and QR payload shared with a contact.
    pub fn safety(&self, contact: &Address) -> Option<(String, Vec<u8>)> {
        let c = self.contacts.get(contact)?;
        let me = self.identity();
        Some((safety::safety_number(&me, &c.identity), safety::qr_payload(&me, &c.identity)))
    }

    /// The relay login frame for a `Welcome` challenge.
    pub fn authenticate(&self, origin: &str, challenge: &[u8; 32]) -> ClientFrame {
        self.device.authenticate(origin, challenge)
    }

    /// Handles one frame from the relay.
    pub fn on_frame(&mut self, frame: RelayFrame, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let result = match frame {
            RelayFrame::Authenticated { .. } => self.on_login(now_ms, e),
            RelayFrame::Sent { id } => Ok(self.on_sent(id)),
            RelayFrame::Deliver { id, payload, .. } => Ok(self.on_deliver(id, &payload, now_ms, e)),
            RelayFrame::PrekeysLow { remaining } => {
                self.device.prekeys_low(remaining, e).map(engine_effects).map_err(AppError::from)
            }
            RelayFrame::PrekeysStored { .. } if !self.profile.prekeys_published => {
                self.profile.prekeys_published = true;
                Ok(Effects { writes: vec![self.profile_write()], ..Effects::default() })
            }
            RelayFrame::Error { code, message, id: Some(id) } => Ok(self.on_refused(code, &message, id)),
            RelayFrame::Bundle { address, bundle: Some(bundle) } if self.refusing.remove(&address) => {
                self.tell_invite_used(&address, &bundle, now_ms, e)
            }
            _ => Ok(Effects::default()),
        };
        result.unwrap_or_else(|err| Effects {
            events: vec![Event::Problem(err.to_string())],
            ..Effects::default()
        })
    }

    fn on_login(&mut self, now_ms: u64, e: &mut dyn Entropy) -> Result<Effects, AppError> {
        let mut fx = Effects::default();
        if !self.profile.prekeys_published {
            fx.merge(engine_effects(self.device.publish_prekeys(PREKEY_BATCH, e)?));
        } else if now_ms.saturating_sub(self.profile.signed_prekey_at_ms) > SIGNED_PREKEY_ROTATION_MS {
            fx.merge(engine_effects(self.device.rotate_signed_prekey(e)?));
            self.profile.signed_prekey_at_ms = now_ms;
            fx.writes.push(self.profile_write());
        }
        fx.frames.push(self.device.publish_delivery_token()?);
        fx.frames.extend(
            self.outbox.values().map(|o| self.device.envelope_frame(o.envelope, o.to, o.payload.clone())),
        );
        Ok(fx)
    }

    fn outbound_seq(&self, envelope: MessageId) -> Option<u64> {
        self.outbox.iter().find(|(_, o)| o.envelope == envelope).map(|(&seq, _)| seq)
    }

    /// Removes an envelope from the outbox; the message it carries takes `status`.
    fn settle_outbound(&mut self, seq: u64, status: Status) -> RecordWrites {
        let Some(o) = self.outbox.remove(&seq) else { return Vec::new() };
        let mut writes = vec![(outbox_name(seq), None)];
        if let Some((contact, mseq)) = o.message {
            writes.extend(self.set_status(&contact, |m| m.seq == mseq, status));
        }
        writes
    }

    fn on_sent(&mut self, envelope: MessageId) -> Effects {
        let writes = self.outbound_seq(envelope).map(|seq| self.settle_outbound(seq, Status::Sent));
        Effects { writes: writes.unwrap_or_default(), ..Effects::default() }
    }

    fn on_refused(&mut self, code: ErrorCode, message: &str, envelope: MessageId) -> Effects {
        let permanent =
            matches!(code, ErrorCode::TooLarge | ErrorCode::InvalidRequest | ErrorCode::Malformed);
        let mut fx = Effects::default();
        let Some(seq) = self.outbound_seq(envelope) else { return fx };
        let to = self.outbox[&seq].to;
        let to = self.contacts.get(&to).map_or("your contact".to_string(), |c| c.name.clone());
        if !permanent {
            // Kept in the outbox: the next login resends it.
            if code == ErrorCode::MailboxFull {
                fx.events.push(Event::Problem(format!("{to}'s mailbox is full; Sotto will keep trying.")));
            }
            return fx;
        }
        fx.writes = self.settle_outbound(seq, Status::Failed);
        fx.events.push(Event::Problem(format!("A message to {to} could not be sent: {message}")));
        fx
    }

    fn on_deliver(
        &mut self,
        envelope: MessageId,
        payload: &[u8],
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Effects {
        let (out, result) = self.device.receive(envelope, payload, e);
        let received = out.received.clone();
        let mut fx = engine_effects(out);
        match result {
            Ok(()) => {}
            Err(EngineError::UnknownPrekey) => fx.merge(self.on_spent_invite(payload)),
            Err(other) => fx
                .events
                .push(Event::Problem(format!("A message could not be read and was dropped: {other}"))),
        }
        for r in received {
            let from = Address::from_identity_key(&r.from.signing_key);
            match r.message.body {
                Body::Profile { display_name } => {
                    fx.merge(self.upsert_contact(from, r.from, &display_name, now_ms));
                }
                Body::Text(text) => {
                    if !self.seen.insert(r.message.id) {
                        continue;
                    }
                    if !self.contacts.contains_key(&from) {
                        let name = format!("Unknown {}", &from.to_hex()[..8]);
                        fx.merge(self.upsert_contact(from, r.from, &name, now_ms));
                    }
                    // In the chat the person is looking at, a message is read on arrival: one
                    // "read" receipt replaces "delivered" then "read".
                    let read_now = self.reading == Some(from);
                    let m = ChatMessage {
                        seq: self.seq(),
                        id: r.message.id,
                        contact: from,
                        outgoing: false,
                        text: text.clone(),
                        sent_at_ms: r.message.sent_at_ms,
                        status: if read_now { Status::Read } else { Status::Delivered },
                    };
                    fx.writes.push((message_name(&m), Some(encode(&m))));
                    self.chats.entry(from).or_default().push(m);
                    let name = self.contacts.get(&from).map(|c| c.name.clone()).unwrap_or_default();
                    fx.events.push(Event::Message { from, name, text });
                    self.receipts.entry((from, read_now)).or_default().push(r.message.id);
                }
                Body::InviteUsed => {
                    if let Some(c) = self.contacts.get_mut(&from) {
                        c.notice = Some(ContactNotice::InviteUsed);
                        fx.writes.push(contact_write(c));
                    }
                }
                Body::Receipt { kind, ids } => {
                    let status = match kind {
                        ReceiptKind::Delivered => Status::Delivered,
                        ReceiptKind::Read => Status::Read,
                    };
                    let ids: HashSet<_> = ids.into_iter().collect();
                    // Statuses only move forward: a late "delivered" never undoes "read".
                    fx.writes.extend(self.set_status(&from, |m| m.outgoing && ids.contains(&m.id), status));
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
        if !self.contacts.contains_key(&address) && self.refusing.insert(address) {
            fx.frames.push(ClientFrame::FetchBundle { address });
            fx.events.push(Event::Problem(
                "Someone opened an invite link of yours that was already used. They are being told to ask you for a new one."
                    .into(),
            ));
        }
        fx
    }

    fn tell_invite_used(
        &mut self,
        to: &Address,
        bundle: &PrekeyBundle,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, AppError> {
        verify_bundle(bundle).map_err(|_| AppError::ForgedInvite)?;
        if Address::from_identity_key(&bundle.identity.signing_key) != *to {
            return Err(AppError::ForgedInvite);
        }
        let mut fx = engine_effects(self.device.start_conversation(bundle, e)?);
        fx.merge(self.send_body(to, Body::InviteUsed, None, now_ms, e)?.0);
        Ok(fx)
    }

    fn upsert_contact(
        &mut self,
        address: Address,
        identity: IdentityPublic,
        name: &str,
        now_ms: u64,
    ) -> Effects {
        let mut fx = Effects::default();
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        let contact = match self.contacts.get(&address) {
            Some(c) => {
                let mut c = c.clone();
                if c.identity != identity {
                    c.identity = identity;
                    c.verified = false;
                    c.notice = Some(ContactNotice::Changed);
                }
                c.name = name;
                c
            }
            None => {
                let same_name = self
                    .contacts
                    .values()
                    .find(|c| c.name.to_lowercase() == name.to_lowercase())
                    .map(|c| ContactNotice::SameNameAs(c.address));
                fx.events.push(Event::ContactAdded(address));
                Contact { address, identity, name, verified: false, notice: same_name, added_at_ms: now_ms }
            }
        };
        fx.writes.push(contact_write(&contact));
        self.contacts.insert(address, contact);
        fx
    }

    /// Updates the status of the messages `which` selects in a chat (only ever forward).
    fn set_status(
        &mut self,
        contact: &Address,
        which: impl Fn(&ChatMessage) -> bool,
        status: Status,
    ) -> RecordWrites {
        let mut writes = Vec::new();
        for m in self.chats.get_mut(contact).into_iter().flatten() {
            if which(m) && (m.status < status || status == Status::Failed) {
                m.status = status;
                writes.push((message_name(m), Some(encode(&*m))));
            }
        }
        writes
    }

    fn seq(&mut self) -> u64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }

    /// Encrypts `body` for `to` and puts the envelope in the outbox.
    fn send_body(
        &mut self,
        to: &Address,
        body: Body,
        message: Option<(Address, u64)>,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(Effects, [u8; 16]), AppError> {
        let mut id = [0u8; 16];
        e.fill(&mut id)?;
        let mut envelope = [0u8; 16];
        e.fill(&mut envelope)?;
        // `InviteUsed` is the one automatic reply to someone who is not a contact: anyone can
        // provoke it, so it must not hand out our delivery token.
        let to_stranger = matches!(body, Body::InviteUsed);
        let msg = Message { v: VERSION, id, sent_at_ms: now_ms, expires_after_secs: None, body };
        let out = if to_stranger {
            self.device.send_withholding_token(to, &msg, MessageId(envelope), e)?
        } else {
            self.device.send(to, &msg, MessageId(envelope), e)?
        };
        let payload = out.envelope().map(|(_, p)| p.to_vec()).ok_or(EngineError::Internal("no envelope"))?;
        let seq = self.seq();
        let o = Outbound { envelope: MessageId(envelope), to: *to, payload, message };
        let mut fx = engine_effects(out);
        fx.writes.push((outbox_name(seq), Some(encode(&o))));
        self.outbox.insert(seq, o);
        Ok((fx, id))
    }

    /// Sends a text to a contact.
    pub fn send_text(
        &mut self,
        to: &Address,
        text: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, AppError> {
        if text.trim().is_empty() {
            return Err(AppError::EmptyMessage);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(AppError::TooLong);
        }
        match self.contacts.get(to) {
            None => return Err(AppError::UnknownContact),
            Some(c) if c.notice == Some(ContactNotice::InviteUsed) => return Err(AppError::InviteUsed),
            Some(_) => {}
        }
        let seq = self.seq();
        // The chat message takes the id inside the envelope, so receipts can name it.
        let (mut fx, id) = self.send_body(to, Body::Text(text.into()), Some((*to, seq)), now_ms, e)?;
        let m = ChatMessage {
            seq,
            id,
            contact: *to,
            outgoing: true,
            text: text.into(),
            sent_at_ms: now_ms,
            status: Status::Sending,
        };
        self.seen.insert(id);
        fx.writes.push((message_name(&m), Some(encode(&m))));
        self.chats.entry(*to).or_default().push(m);
        Ok(fx)
    }

    /// The chat the person is looking at (open in a visible page), or `None`. Messages arriving
    /// there count as read.
    pub fn set_reading(&mut self, contact: Option<Address>) {
        self.reading = contact;
    }

    /// Receipts are owed: the app calls `flush_receipts` shortly.
    pub fn receipts_due(&self) -> bool {
        !self.receipts.is_empty()
    }

    /// Sends the owed receipts, one per contact and kind.
    pub fn flush_receipts(&mut self, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let mut fx = Effects::default();
        for ((to, read), ids) in std::mem::take(&mut self.receipts) {
            let kind = if read { ReceiptKind::Read } else { ReceiptKind::Delivered };
            match self.send_body(&to, Body::Receipt { kind, ids }, None, now_ms, e) {
                Ok((more, _)) => fx.merge(more),
                Err(err) => fx.events.push(Event::Problem(err.to_string())),
            }
        }
        fx
    }

    /// Marks a chat's incoming messages read and tells the sender.
    pub fn mark_read(&mut self, contact: &Address, now_ms: u64, e: &mut dyn Entropy) -> Effects {
        let ids: Vec<[u8; 16]> =
            self.messages(contact).iter().filter(|m| m.is_unread()).map(|m| m.id).collect();
        if ids.is_empty() {
            return Effects::default();
        }
        let set: HashSet<_> = ids.iter().copied().collect();
        // "Read" supersedes any "delivered" still owed for these.
        if let Some(owed) = self.receipts.get_mut(&(*contact, false)) {
            owed.retain(|id| !set.contains(id));
            if owed.is_empty() {
                self.receipts.remove(&(*contact, false));
            }
        }
        let mut fx = Effects {
            writes: self.set_status(contact, |m| set.contains(&m.id), Status::Read),
            ..Effects::default()
        };
        match self.send_body(contact, Body::Receipt { kind: ReceiptKind::Read, ids }, None, now_ms, e) {
            Ok((more, _)) => fx.merge(more),
            Err(err) => fx.events.push(Event::Problem(err.to_string())),
        }
        fx
    }

    pub fn set_verified(&mut self, contact: &Address, verified: bool) -> Effects {
        let Some(c) = self.contacts.get_mut(contact) else {
            return Effects::default();
        };
        c.verified = verified;
        if verified {
            c.notice = None;
        }
        Effects { writes: vec![contact_write(c)], ..Effects::default() }
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
    ) -> Result<(String, Effects), AppError> {
        let (bundle, out) = self.device.invite_bundle(e)?;
        let invite = Invite {
            bundle,
            display_name: self.profile.display_name.clone(),
            relay: relay_origin.into(),
            expires_at: now_ms / 1000 + INVITE_LIFETIME_SECS,
        };
        Ok((invite.link(), engine_effects(out)))
    }

    /// Checks an invite payload (from the URL fragment) before showing it.
    pub fn preview_invite(&self, payload: &str, now_ms: u64) -> Result<InvitePreview, AppError> {
        let invite = Invite::decode(payload, now_ms / 1000)?;
        verify_bundle(&invite.bundle).map_err(|_| AppError::ForgedInvite)?;
        let address = Address::from_identity_key(&invite.bundle.identity.signing_key);
        if address == self.address() {
            return Err(AppError::OwnInvite);
        }
        Ok(InvitePreview {
            fingerprint: sotto_engine::identity::fingerprint(&invite.bundle.identity),
            known: self.contacts.contains_key(&address),
            address,
            invite,
        })
    }

    /// Accepts an invite: starts the session and introduces ourselves.
    pub fn accept_invite(
        &mut self,
        preview: &InvitePreview,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<Effects, AppError> {
        if preview.known {
            return Ok(Effects::default());
        }
        let invite = &preview.invite;
        let mut fx = engine_effects(self.device.start_conversation(&invite.bundle, e)?);
        fx.merge(self.upsert_contact(preview.address, invite.bundle.identity, &invite.display_name, now_ms));
        let hello = Body::Profile { display_name: self.profile.display_name.clone() };
        fx.merge(self.send_body(&preview.address, hello, None, now_ms, e)?.0);
        Ok(fx)
    }

    fn profile_write(&self) -> (String, Option<Vec<u8>>) {
        ("profile".into(), Some(encode(&self.profile)))
    }
}

fn engine_effects(out: Output) -> Effects {
    Effects {
        writes: out.persist.into_iter().map(|(k, v)| (engine_record_name(&k), v)).collect(),
        frames: out.send,
        events: Vec::new(),
    }
}
