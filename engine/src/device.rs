//! One person's device as a sans-IO state machine.
//!
//! Inputs are user intents (`send`, `start_conversation`) and relay frames (`receive`,
//! `prekeys_low`); every call returns an [`Output`]: frames to send to the relay, messages for
//! the UI, and the records to persist. The caller writes `persist` in one transaction together
//! with whatever it derives from `received` (history), and only then sends `send`: an `Ack`
//! therefore never goes out for a message that is not safely stored, and ratchet state is never
//! saved without the message it produced.
//!
//! The records are named by [`StorageKey`]; `sotto-messenger` stores them beside its own
//! behind its `RecordStore` trait (in memory, or in IndexedDB in the web app).

use crate::EngineError;
use crate::envelope::{open_envelope, seal_envelope};
use crate::identity::Identity;
use crate::message::{Body, Message};
use crate::prekeys::Prekeys;
use crate::random::Entropy;
use crate::session::{Conversation, WireMessage};
use sotto_shared::frames::{IdentityPublic, PrekeyBundle};
use sotto_shared::{Address, ClientFrame, MessageId};
use std::collections::{BTreeMap, HashMap};
use zeroize::Zeroizing;

use crate::consts::{PREKEY_BATCH, RESTORED_PREKEY_ID_GAP};

/// Where a record lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StorageKey {
    Identity,
    Prekeys,
    Conversation(Address),
    /// Contacts' delivery tokens (one record for all).
    DeliveryTokens,
}

/// Records to write (`Some`) or delete (`None`), all in one transaction. They hold secrets in
/// the clear (keys, session state), so they wipe themselves when dropped.
pub type Writes = Vec<Write>;

/// One record to write (`Some`) or delete (`None`).
pub type Write = (StorageKey, Option<Zeroizing<Vec<u8>>>);

/// A message that arrived, for the UI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: IdentityPublic,
    pub message: Message,
    /// It started a new session with the one-time prekey of one of our invite links, which
    /// expires at this time (Unix seconds): the sender holds a link we gave out (anyone may
    /// fetch the relay's prekeys, so nothing else says that we know them). Whether the link was
    /// still valid is the caller's to judge, against when the relay received the envelope.
    pub via_invite: Option<u64>,
}

#[derive(Default)]
pub struct Output {
    pub send: Vec<ClientFrame>,
    pub received: Vec<Received>,
    pub persist: Writes,
}

/// Names what is in it, never the contents: `persist` holds private keys and session state in
/// the clear, `received` the plaintext of messages.
impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let persist: Vec<String> = self
            .persist
            .iter()
            .map(|(k, v)| format!("{} {k:?}", if v.is_some() { "write" } else { "delete" }))
            .collect();
        f.debug_struct("Output")
            .field("send", &self.send.len())
            .field("received", &self.received.len())
            .field("persist", &persist)
            .finish()
    }
}

impl Output {
    /// The first envelope this output sends: its id and payload.
    pub fn envelope(&self) -> Option<(MessageId, &[u8])> {
        self.send.iter().find_map(|f| match f {
            ClientFrame::Send { id, payload, .. } | ClientFrame::SendAsContact { id, payload, .. } => {
                Some((*id, payload.as_slice()))
            }
            _ => None,
        })
    }
}

pub struct Device {
    identity: Identity,
    prekeys: Prekeys,
    conversations: HashMap<Address, Conversation>,
    /// Delivery tokens contacts gave us (inside their sealed envelopes): sending with one is
    /// sending as a contact, not as a stranger held to the relay's small first-contact quota.
    delivery_tokens: BTreeMap<Address, [u8; 32]>,
}

impl Device {
    /// A new identity with its signed prekey (one-time prekeys come at the first upload); the
    /// output persists it.
    pub fn create(entropy: &mut dyn Entropy) -> Result<(Device, Output), EngineError> {
        let device = Device {
            identity: Identity::generate_with(entropy)?,
            prekeys: Prekeys::new(entropy)?,
            conversations: HashMap::new(),
            delivery_tokens: BTreeMap::new(),
        };
        // No one-time prekeys yet: the first batch is made once, when it is uploaded
        // (`publish_prekeys`, at the first login), not also here.
        let persist = vec![(StorageKey::Identity, Some(device.identity.to_bytes())), device.prekeys_record()];
        Ok((device, Output { persist, ..Output::default() }))
    }

    /// Rebuilds a device from what `Storage::load_all` returned.
    pub fn restore<B: AsRef<[u8]>>(records: Vec<(StorageKey, B)>) -> Result<Device, EngineError> {
        let (mut identity, mut prekeys, mut conversations) = (None, None, HashMap::new());
        let mut delivery_tokens = BTreeMap::new();
        for (key, bytes) in records {
            let bytes = bytes.as_ref();
            match key {
                StorageKey::Identity => identity = Some(Identity::from_bytes(bytes)?),
                StorageKey::Prekeys => prekeys = Some(Prekeys::from_bytes(bytes)?),
                StorageKey::Conversation(address) => {
                    conversations.insert(address, Conversation::from_bytes(bytes)?);
                }
                StorageKey::DeliveryTokens => delivery_tokens = decode_tokens(bytes)?,
            }
        }
        let missing = |what: &str| EngineError::BadEncoding(format!("no stored {what}"));
        Ok(Device {
            identity: identity.ok_or_else(|| missing("identity"))?,
            prekeys: prekeys.ok_or_else(|| missing("prekeys"))?,
            conversations,
            delivery_tokens,
        })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn address(&self) -> Address {
        self.identity.address()
    }

    /// The relay login frame for a `Welcome` challenge.
    pub fn authenticate(&self, origin: &str, challenge: &[u8; 32]) -> ClientFrame {
        self.identity.login_frame(origin, challenge)
    }

    /// Makes `n` one-time prekeys and uploads them with the current signed prekey.
    pub fn publish_prekeys(&mut self, n: usize, entropy: &mut dyn Entropy) -> Result<Output, EngineError> {
        let one_time = self.prekeys.generate_one_time(n, entropy)?;
        let frame = ClientFrame::UploadPrekeys {
            signed_prekey: self.prekeys.signed_public(&self.identity),
            one_time,
        };
        Ok(Output { send: vec![frame], persist: vec![self.prekeys_record()], ..Output::default() })
    }

    /// The relay says few one-time prekeys remain: top them up.
    pub fn prekeys_low(&mut self, remaining: u32, entropy: &mut dyn Entropy) -> Result<Output, EngineError> {
        let n = PREKEY_BATCH.saturating_sub(remaining as usize).max(1);
        self.publish_prekeys(n, entropy)
    }

    /// Makes a new signed prekey current and uploads it (the app does this weekly).
    pub fn rotate_signed_prekey(&mut self, entropy: &mut dyn Entropy) -> Result<Output, EngineError> {
        self.prekeys.rotate_signed(entropy)?;
        self.publish_prekeys(0, entropy)
    }

    /// A signed invite link's contents: a fresh bundle (with its own one-time prekey), our
    /// name, relay and expiry.
    pub fn invite(
        &mut self,
        display_name: &str,
        relay: &str,
        expires_at: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<(sotto_shared::invite::Invite, Output), EngineError> {
        let (bundle, out) = self.invite_bundle(expires_at, entropy)?;
        let mut invite = sotto_shared::invite::Invite {
            bundle,
            display_name: display_name.into(),
            relay: relay.into(),
            expires_at,
            signature: sotto_shared::frames::Signature([0; 64]),
        };
        invite.signature = self.identity.sign(&invite.signed_message());
        Ok((invite, out))
    }

    /// A bundle for an invite link expiring at `expires_at` (Unix seconds); it carries its own
    /// fresh one-time prekey, forgotten when used or expired.
    pub fn invite_bundle(
        &mut self,
        expires_at: u64,
        entropy: &mut dyn Entropy,
    ) -> Result<(PrekeyBundle, Output), EngineError> {
        let bundle = self.prekeys.invite_bundle(&self.identity, expires_at, entropy)?;
        Ok((bundle, Output { persist: vec![self.prekeys_record()], ..Output::default() }))
    }

    /// Forgets one-time secrets nobody can use any more (expired links' and aged relay keys',
    /// see `Prekeys::forget_old`): what to save, if anything changed.
    pub fn forget_old_prekeys(&mut self, now_secs: u64) -> Option<Output> {
        self.prekeys
            .forget_old(now_secs)
            .then(|| Output { persist: vec![self.prekeys_record()], ..Output::default() })
    }

    /// Starts a conversation from a bundle (fetched from the relay or carried by an invite).
    pub fn start_conversation(
        &mut self,
        bundle: &PrekeyBundle,
        entropy: &mut dyn Entropy,
    ) -> Result<Output, EngineError> {
        let address = Address::from_identity_key(&bundle.identity.signing_key);
        match self.conversations.get_mut(&address) {
            Some(c) => c.add_outbound(&self.identity, bundle, entropy)?,
            None => {
                self.conversations.insert(address, Conversation::initiate(&self.identity, bundle, entropy)?);
            }
        }
        Ok(Output { persist: vec![self.conversation_record(&address)], ..Output::default() })
    }

    pub fn has_conversation(&self, with: &Address) -> bool {
        self.conversations.contains_key(with)
    }

    /// Whether a message to `to` can be encrypted now (a restored session cannot, until it is
    /// renewed).
    pub fn can_send_to(&self, to: &Address) -> bool {
        self.conversations.get(to).is_some_and(Conversation::can_send)
    }

    /// This state came back from a backup: no session sends again until it has a fresh chain,
    /// since the copy the backup was made from may have used the chains it holds (reusing a
    /// message key would reveal both plaintexts). The caller starts new sessions
    /// (`start_conversation`) and announces each with `Body::SessionReset`. Returns the records.
    ///
    /// New prekey ids start far past the restored ones too: the copy the backup was made from
    /// may have uploaded keys under the next ids, and the relay would take ours for those.
    pub fn retire_sending(&mut self) -> Output {
        let addresses: Vec<Address> = self.conversations.keys().copied().collect();
        for c in self.conversations.values_mut() {
            c.retire_sending();
        }
        self.prekeys.skip_ids(RESTORED_PREKEY_ID_GAP);
        let mut persist: Writes = addresses.iter().map(|a| self.conversation_record(a)).collect();
        persist.push(self.prekeys_record());
        Output { persist, ..Output::default() }
    }

    /// Encrypts and seals `message` for `to`, a contact (it learns our delivery token);
    /// `envelope_id` is the relay-level id to resend with.
    pub fn send(
        &mut self,
        to: &Address,
        message: &Message,
        envelope_id: MessageId,
        entropy: &mut dyn Entropy,
    ) -> Result<Output, EngineError> {
        self.seal_and_send(to, message, envelope_id, true, entropy)
    }

    /// Like `send`, but keeps our delivery token: for automatic replies to people who are not
    /// contacts (anyone could provoke one, and the token lets its holder send as a contact).
    pub fn send_withholding_token(
        &mut self,
        to: &Address,
        message: &Message,
        envelope_id: MessageId,
        entropy: &mut dyn Entropy,
    ) -> Result<Output, EngineError> {
        self.seal_and_send(to, message, envelope_id, false, entropy)
    }

    fn seal_and_send(
        &mut self,
        to: &Address,
        message: &Message,
        envelope_id: MessageId,
        share_token: bool,
        entropy: &mut dyn Entropy,
    ) -> Result<Output, EngineError> {
        let plaintext = message.encode()?;
        let conversation = self.conversations.get_mut(to).ok_or(EngineError::NoSession)?;
        let wire = conversation.encrypt(&plaintext)?;
        let remote = *conversation.remote();
        let payload = seal_envelope(&self.identity, &remote, &wire, share_token, entropy)?;
        Ok(Output {
            send: vec![self.envelope_frame(envelope_id, *to, message.envelope_ttl_secs(), payload)],
            persist: vec![self.conversation_record(to)],
            received: Vec::new(),
        })
    }

    /// The frame that sends (or resends) a sealed envelope to `to`: as a contact when `to` gave
    /// us its delivery token, else as a stranger. `ttl_secs`: see `Message::envelope_ttl_secs`.
    pub fn envelope_frame(&self, id: MessageId, to: Address, ttl_secs: u32, payload: Vec<u8>) -> ClientFrame {
        match self.delivery_tokens.get(&to) {
            Some(token) => ClientFrame::SendAsContact { id, to, ttl_secs, token: *token, payload },
            None => ClientFrame::Send { id, to, ttl_secs, payload },
        }
    }

    /// Tells the relay (after login) the hash of our delivery token, so that contacts who
    /// present the token are not held to the stranger quota.
    pub fn publish_delivery_token(&self) -> Result<ClientFrame, EngineError> {
        let hash = sotto_shared::frames::delivery_token_hash(&*self.identity.delivery_token()?);
        Ok(ClientFrame::PublishDeliveryToken { hash })
    }

    /// Handles a `Deliver` from the relay. Envelopes that cannot be read are acknowledged too
    /// (they would only come back forever) and reported as the error; duplicates are acked
    /// silently.
    pub fn receive(
        &mut self,
        envelope_id: MessageId,
        payload: &[u8],
        entropy: &mut dyn Entropy,
    ) -> (Output, Result<(), EngineError>) {
        let ack = ClientFrame::Ack { ids: vec![envelope_id] };
        match self.open(payload, entropy) {
            Ok((persist, Ok(received))) => {
                (Output { send: vec![ack], received: vec![received], persist }, Ok(()))
            }
            // Genuine but unreadable: its key is spent, and the state that spent it is saved.
            Ok((persist, Err(e))) => (Output { send: vec![ack], persist, ..Output::default() }, Err(e)),
            Err(EngineError::Duplicate) => (Output { send: vec![ack], ..Output::default() }, Ok(())),
            Err(e) => (Output { send: vec![ack], ..Output::default() }, Err(e)),
        }
    }

    /// Opens an envelope that came live (`RelayFrame::Live`, see `Messenger::typing`): only a
    /// message of a session we already have, never one that starts a session (it would spend a
    /// one-time prekey) or resets one, and without taking the delivery token it carries. The
    /// session advances (its record is in `persist`); nothing is acknowledged.
    pub fn receive_live(
        &mut self,
        payload: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Result<(Writes, Received), EngineError> {
        let opened = open_envelope(&self.identity, payload)?;
        let (sender, wire) = (opened.sender, opened.message);
        let address = Address::from_identity_key(&sender.signing_key);
        let WireMessage::Normal(_) = &wire else { return Err(EngineError::NoSession) };
        let c = self.conversations.get_mut(&address).ok_or(EngineError::NoSession)?;
        let plaintext =
            zeroize::Zeroizing::new(c.decrypt(&self.identity, &mut self.prekeys, &sender, &wire, entropy)?);
        let persist = vec![self.conversation_record(&address)];
        let message = Message::decode(&plaintext)?;
        Ok((persist, Received { from: sender, message, via_invite: None }))
    }

    /// Opens an envelope. `Err`: nothing changed. `Ok((persist, result))`: the message
    /// decrypted, so the session advanced and `persist` must be saved, even when its body
    /// cannot be read (`result` is then that error).
    fn open(
        &mut self,
        payload: &[u8],
        entropy: &mut dyn Entropy,
    ) -> Result<(Writes, Result<Received, EngineError>), EngineError> {
        let opened = open_envelope(&self.identity, payload)?;
        let (sender, wire) = (opened.sender, opened.message);
        let address = Address::from_identity_key(&sender.signing_key);
        let prekeys_before = self.prekeys.one_time_count();
        // An invite's key the header names, looked up before decrypting uses it up. The header
        // only claims it: it counts if this message used the key up, i.e. started a new session
        // with it (a header matching an existing session never touches the key).
        let invite_key = match &wire {
            WireMessage::PreKey { x3dh, .. } => {
                x3dh.one_time_prekey_id.and_then(|id| match self.prekeys.origin(id) {
                    Some(crate::prekeys::Origin::Invite { expires_at }) => Some((id, expires_at)),
                    _ => None,
                })
            }
            WireMessage::Normal(_) => None,
        };
        let plaintext = match self.conversations.get_mut(&address) {
            Some(c) => zeroize::Zeroizing::new(c.decrypt(
                &self.identity,
                &mut self.prekeys,
                &sender,
                &wire,
                entropy,
            )?),
            None => {
                let (c, pt) =
                    Conversation::respond(&self.identity, &mut self.prekeys, &sender, &wire, entropy)?;
                self.conversations.insert(address, c);
                zeroize::Zeroizing::new(pt)
            }
        };
        let mut persist = vec![self.conversation_record(&address)];
        if self.prekeys.one_time_count() != prekeys_before {
            persist.push(self.prekeys_record());
        }
        let message = match Message::decode(&plaintext) {
            Ok(m) => m,
            Err(e) => return Ok((persist, Err(e))),
        };
        // A peer that restored from a backup: only the session this reset started is kept.
        if let (Body::SessionReset, WireMessage::PreKey { x3dh, .. }) = (&message.body, &wire)
            && let Some(c) = self.conversations.get_mut(&address)
        {
            c.keep_only(&x3dh.base_key);
            persist[0] = self.conversation_record(&address);
        }
        // Only after the message decrypted: the token is the sender's, not a forger's.
        if let Some(token) = opened.delivery_token
            && self.delivery_tokens.insert(address, token) != Some(token)
        {
            persist.push(self.tokens_record()?);
        }
        let via_invite =
            invite_key.filter(|(id, _)| self.prekeys.origin(*id).is_none()).map(|(_, expires_at)| expires_at);
        Ok((persist, Ok(Received { from: sender, message, via_invite })))
    }

    fn tokens_record(&self) -> Result<Write, EngineError> {
        let record = TokensRecord { v: TOKENS_VERSION, tokens: self.delivery_tokens.clone() };
        Ok((StorageKey::DeliveryTokens, Some(crate::wipe::encode(&[], &record, 0)?)))
    }

    fn prekeys_record(&self) -> Write {
        (StorageKey::Prekeys, Some(self.prekeys.to_bytes()))
    }

    /// Forgets everything about `address`: its sessions and its delivery token (the records'
    /// deletions, to save). A later first message from it starts afresh.
    pub fn forget(&mut self, address: &Address) -> Result<Output, EngineError> {
        self.conversations.remove(address);
        let mut persist = vec![(StorageKey::Conversation(*address), None)];
        if self.delivery_tokens.remove(address).is_some() {
            persist.push(self.tokens_record()?);
        }
        Ok(Output { persist, ..Output::default() })
    }

    fn conversation_record(&self, address: &Address) -> Write {
        (StorageKey::Conversation(*address), self.conversations.get(address).map(|c| c.to_bytes()))
    }
}

const TOKENS_VERSION: u8 = 1;

/// The stored form of contacts' delivery tokens (versioned).
#[derive(serde::Serialize, serde::Deserialize)]
struct TokensRecord {
    v: u8,
    tokens: BTreeMap<Address, [u8; 32]>,
}

fn decode_tokens(bytes: &[u8]) -> Result<BTreeMap<Address, [u8; 32]>, EngineError> {
    let record: TokensRecord = postcard::from_bytes(bytes)?;
    if record.v != TOKENS_VERSION {
        return Err(EngineError::UnsupportedVersion(record.v));
    }
    Ok(record.tokens)
}

/// A text message with a fresh id, stamped with the caller's clock.
pub fn text(text: &str, now_ms: u64, entropy: &mut dyn Entropy) -> Result<Message, EngineError> {
    let mut id = [0u8; 16];
    entropy.fill(&mut id)?;
    Ok(Message {
        v: crate::message::VERSION,
        id,
        sent_at_ms: now_ms,
        expires_after_secs: None,
        body: Body::Text(text.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::ENVELOPE_TTL_SECS;

    #[test]
    fn debug_of_an_output_shows_no_secret_or_plaintext() {
        let e = &mut crate::random::SeededEntropy::new([3; 32]);
        let (mut alice, created) = Device::create(e).unwrap();
        let (bob, _) = Device::create(e).unwrap();
        let (bundle, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        let mut bob = bob;
        bob.start_conversation(&bundle, e).unwrap();
        let out = bob
            .send(&alice.address(), &text("PLAINTEXT-MARKER", 0, e).unwrap(), MessageId([1; 16]), e)
            .unwrap();
        let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
        let (got, result) = alice.receive(id, &payload, e);
        result.unwrap();
        for output in [&created, &out, &got] {
            let shown = format!("{output:?}");
            assert!(!shown.contains("PLAINTEXT"), "{shown}");
            for (_, value) in output.persist.iter() {
                let bytes: &[u8] = value.as_deref().map_or(&[], |v| v.as_slice());
                let window = format!("{:?}", &bytes[..bytes.len().min(8)]);
                assert!(
                    bytes.len() < 8 || !shown.contains(window.trim_matches(|c| c == '[' || c == ']')),
                    "{shown}"
                );
            }
        }
        assert!(format!("{created:?}").contains("write Identity"));
    }

    /// A genuine message whose body cannot be read still spends its key: the session that
    /// spent it is saved (before, it advanced in memory and was never saved).
    #[test]
    fn an_unreadable_body_still_saves_the_session_it_advanced() {
        let e = &mut crate::random::SeededEntropy::new([4; 32]);
        let (mut alice, _) = Device::create(e).unwrap();
        let (mut bob, _) = Device::create(e).unwrap();
        let (bundle, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        bob.start_conversation(&bundle, e).unwrap();
        let out = bob.send(&alice.address(), &text("hello", 0, e).unwrap(), MessageId([1; 16]), e).unwrap();
        let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
        alice.receive(id, &payload, e).1.unwrap();

        // Bob's session encrypts bytes that are no message (a newer version's, say).
        let conversation = bob.conversations.get_mut(&alice.address()).unwrap();
        let wire = conversation.encrypt(b"\xff not a message").unwrap();
        let remote = *conversation.remote();
        let payload = crate::envelope::seal_envelope(&bob.identity, &remote, &wire, true, e).unwrap();
        let (out, result) = alice.receive(MessageId([2; 16]), &payload, e);
        assert!(result.is_err(), "reported");
        assert!(out.received.is_empty());
        assert!(matches!(out.send[..], [ClientFrame::Ack { .. }]), "acked: it will never read better");
        let saved = StorageKey::Conversation(bob.address());
        assert!(out.persist.iter().any(|(k, v)| *k == saved && v.is_some()), "the advanced session is saved");
    }

    /// A first message says whether it came through one of our invite links: only an invite's
    /// one-time prekey does, not one the relay hands to anyone, nor the signed prekey alone.
    #[test]
    fn a_first_message_tells_an_invite_from_a_fetched_bundle() {
        let e = &mut crate::random::SeededEntropy::new([6; 32]);
        let (mut alice, _) = Device::create(e).unwrap();
        let first_message = |alice: &mut Device, bundle: &PrekeyBundle, e: &mut dyn Entropy| {
            let (mut bob, _) = Device::create(e).unwrap();
            bob.start_conversation(bundle, e).unwrap();
            let out = bob.send(&alice.address(), &text("hi", 0, e).unwrap(), MessageId([1; 16]), e).unwrap();
            let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
            let (got, result) = alice.receive(id, &payload, e);
            result.unwrap();
            let via_invite = got.received[0].via_invite;
            // Bob's next message no longer carries the key: it is not an introduction again.
            let out =
                bob.send(&alice.address(), &text("again", 0, e).unwrap(), MessageId([2; 16]), e).unwrap();
            let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
            let (again, result) = alice.receive(id, &payload, e);
            result.unwrap();
            assert_eq!(again.received[0].via_invite, None);
            via_invite.is_some()
        };
        let (invite, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        assert!(first_message(&mut alice, &invite, e));

        let upload = alice.publish_prekeys(1, e).unwrap();
        let ClientFrame::UploadPrekeys { signed_prekey, one_time } = &upload.send[0] else { panic!() };
        let fetched = PrekeyBundle {
            identity: alice.identity.public(),
            signed_prekey: *signed_prekey,
            one_time_prekey: one_time.first().copied(),
        };
        assert!(!first_message(&mut alice, &fetched, e), "a relay prekey");
        let bare = PrekeyBundle { one_time_prekey: None, ..fetched };
        assert!(!first_message(&mut alice, &bare, e), "no one-time prekey");
    }

    /// A header only claims which one-time key it used: a stranger with a session (from a
    /// relay bundle) who names one of our invite keys in a later first-message header is still
    /// no invitee, and the invite key is left for its link.
    #[test]
    fn naming_an_invite_key_in_a_header_does_not_make_an_invitee() {
        let e = &mut crate::random::SeededEntropy::new([8; 32]);
        let (mut alice, _) = Device::create(e).unwrap();
        let (invite, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        let invite_id = invite.one_time_prekey.unwrap().id;
        let (mut eve, _) = Device::create(e).unwrap();
        let bare = PrekeyBundle { one_time_prekey: None, ..invite };
        eve.start_conversation(&bare, e).unwrap();
        let out = eve.send(&alice.address(), &text("hi", 0, e).unwrap(), MessageId([1; 16]), e).unwrap();
        let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
        let (got, result) = alice.receive(id, &payload, e);
        result.unwrap();
        assert_eq!(got.received[0].via_invite, None);

        // Eve's session still sends first-message headers (Alice has not answered): she
        // rewrites one to name the invite's key.
        let conversation = eve.conversations.get_mut(&alice.address()).unwrap();
        let body = text("let me in", 0, e).unwrap().encode().unwrap();
        let WireMessage::PreKey { mut x3dh, message } = conversation.encrypt(&body).unwrap() else {
            panic!("a first-message header until answered")
        };
        x3dh.one_time_prekey_id = Some(invite_id);
        let remote = *conversation.remote();
        let wire = WireMessage::PreKey { x3dh, message };
        let payload = crate::envelope::seal_envelope(&eve.identity, &remote, &wire, true, e).unwrap();
        let (got, result) = alice.receive(MessageId([2; 16]), &payload, e);
        result.unwrap();
        assert_eq!(got.received[0].via_invite, None, "the existing session opened it; the key was not used");
        assert!(alice.prekeys.origin(invite_id).is_some(), "the link still works");
    }

    /// An invite link's secret is forgotten once the link has expired (and saved so).
    #[test]
    fn an_expired_invite_link_is_forgotten() {
        let e = &mut crate::random::SeededEntropy::new([7; 32]);
        let (mut alice, _) = Device::create(e).unwrap();
        alice.publish_prekeys(3, e).unwrap();
        let (bundle, _) = alice.invite_bundle(1_000, e).unwrap();
        let relays = alice.prekeys.one_time_count() - 1;
        assert_eq!(relays, 3);
        let id = bundle.one_time_prekey.unwrap().id;
        // An acceptance that reached the relay before the expiry may wait there this long.
        let last = 1_000 + u64::from(ENVELOPE_TTL_SECS);
        alice.forget_old_prekeys(last).expect("the keys are counted: a change to save");
        assert!(alice.prekeys.origin(id).is_some(), "not while an acceptance may be queued");
        let out = alice.forget_old_prekeys(last + 1).expect("forgotten");
        assert!(matches!(out.persist[..], [(StorageKey::Prekeys, Some(_))]));
        assert_eq!(alice.prekeys.origin(id), None);
        assert_eq!(alice.prekeys.one_time_count(), relays, "the relay's are kept");
        // Accepting the expired link now fails like a spent one.
        let (mut bob, _) = Device::create(e).unwrap();
        bob.start_conversation(&bundle, e).unwrap();
        let out = bob.send(&alice.address(), &text("late", 0, e).unwrap(), MessageId([1; 16]), e).unwrap();
        let (id, payload) = out.envelope().map(|(i, p)| (i, p.to_vec())).unwrap();
        assert_eq!(alice.receive(id, &payload, e).1, Err(EngineError::UnknownPrekey));
    }

    /// Every record the engine hands out to be stored wipes itself when dropped (keys and
    /// session state in the clear), and a message's padded plaintext too.
    #[test]
    fn records_and_plaintexts_wipe_themselves() {
        fn wipes<T: zeroize::ZeroizeOnDrop>(_: &T) {}
        let e = &mut OsEntropy;
        let (_, out) = Device::create(e).unwrap();
        for (_, value) in &out.persist {
            wipes(value.as_ref().unwrap());
        }
        wipes(&text("hello", 0, e).unwrap().encode().unwrap());
    }

    /// The records as a store holds them after each commit.
    #[derive(Default)]
    struct MemoryStorage {
        records: BTreeMap<StorageKey, Vec<u8>>,
    }

    impl MemoryStorage {
        fn load_all(&self) -> Result<Vec<(StorageKey, Vec<u8>)>, EngineError> {
            Ok(self.records.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        }

        fn commit(&mut self, writes: &Writes) -> Result<(), EngineError> {
            for (k, v) in writes {
                match v {
                    Some(v) => self.records.insert(k.clone(), v.to_vec()),
                    None => self.records.remove(k),
                };
            }
            Ok(())
        }
    }
    use crate::random::OsEntropy;

    fn deliver(out: &Output) -> (MessageId, Vec<u8>) {
        let (id, payload) = out.envelope().expect("an envelope to send");
        (id, payload.to_vec())
    }

    /// A device restored from a backup never sends on the chains it came back with (the copy
    /// the backup was made from may have used them: a reused message key would reveal both
    /// plaintexts). It starts a new session announced by `SessionReset`; the peer then keeps
    /// only that one, and both sides read each other again.
    #[test]
    fn a_restored_device_renews_its_sessions_instead_of_reusing_keys() {
        let e = &mut OsEntropy;
        let (mut alice, out) = Device::create(e).unwrap();
        let mut alice_store = MemoryStorage::default();
        alice_store.commit(&out.persist).unwrap();
        let (mut bob, _) = Device::create(e).unwrap();
        // Bob took up Alice's link: Bob is the initiator of their session.
        let (bundle, out) = alice.invite_bundle(u64::MAX, e).unwrap();
        alice_store.commit(&out.persist).unwrap();
        bob.start_conversation(&bundle, e).unwrap();
        let talk = |from: &mut Device,
                    store: Option<&mut MemoryStorage>,
                    to: &mut Device,
                    words: &str,
                    e: &mut OsEntropy| {
            let out = from.send(&to.address(), &text(words, 0, e).unwrap(), MessageId([0; 16]), e).unwrap();
            if let Some(store) = store {
                store.commit(&out.persist).unwrap();
            }
            let (id, payload) = deliver(&out);
            let (got, result) = to.receive(id, &payload, e);
            result.map(|()| got.received.first().map(|r| r.message.body.clone()))
        };
        talk(&mut bob, None, &mut alice, "hi", e).unwrap();
        talk(&mut alice, Some(&mut alice_store), &mut bob, "hello", e).unwrap();
        let backup = alice_store.load_all().unwrap();
        // The old copy goes on after the backup was made.
        talk(&mut alice, None, &mut bob, "after the backup", e).unwrap();

        let mut restored = Device::restore(backup).unwrap();
        assert!(restored.can_send_to(&bob.address()), "as it was backed up");
        let next = restored.prekeys.next_id_for_tests();
        let out = restored.retire_sending();
        assert!(matches!(
            out.persist[..],
            [(StorageKey::Conversation(_), Some(_)), (StorageKey::Prekeys, Some(_))]
        ));
        assert!(
            restored.prekeys.next_id_for_tests() >= next + RESTORED_PREKEY_ID_GAP,
            "new ids far past the old copy's"
        );
        assert!(!restored.can_send_to(&bob.address()));
        let refused = restored.send(&bob.address(), &text("x", 0, e).unwrap(), MessageId([1; 16]), e);
        assert_eq!(refused.err(), Some(EngineError::NoSession), "no key of the old chains is used");

        // A fresh session from Bob's bundle, announced by a reset.
        let (bob_bundle, _) = bob.invite_bundle(u64::MAX, e).unwrap();
        restored.start_conversation(&bob_bundle, e).unwrap();
        let reset = Message {
            v: crate::message::VERSION,
            id: [7; 16],
            sent_at_ms: 0,
            expires_after_secs: None,
            body: Body::SessionReset,
        };
        let out = restored.send(&bob.address(), &reset, MessageId([2; 16]), e).unwrap();
        let (id, payload) = deliver(&out);
        bob.receive(id, &payload, e).1.unwrap();
        assert_eq!(bob.conversations[&alice.address()].session_count(), 1, "Bob keeps only the new session");
        // Both ways again.
        assert_eq!(
            talk(&mut bob, None, &mut restored, "welcome back", e),
            Ok(Some(Body::Text("welcome back".into())))
        );
        assert_eq!(talk(&mut restored, None, &mut bob, "thanks", e), Ok(Some(Body::Text("thanks".into()))));
    }

    /// Both sides restored and renewed at once: each reset crosses the other's, each side
    /// keeps both new sessions, and they read each other after.
    #[test]
    fn crossing_renewals_still_converge() {
        let e = &mut OsEntropy;
        let (mut alice, _) = Device::create(e).unwrap();
        let (mut bob, _) = Device::create(e).unwrap();
        let (bundle, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        bob.start_conversation(&bundle, e).unwrap();
        let say = |from: &mut Device, to: &mut Device, body: Body, e: &mut OsEntropy| {
            let m = Message {
                v: crate::message::VERSION,
                id: [0; 16],
                sent_at_ms: 0,
                expires_after_secs: None,
                body,
            };
            let out = from.send(&to.address(), &m, MessageId([3; 16]), e).unwrap();
            deliver(&out)
        };
        let (id, p) = say(&mut bob, &mut alice, Body::Text("hi".into()), e);
        alice.receive(id, &p, e).1.unwrap();
        alice.retire_sending();
        bob.retire_sending();
        let (for_alice, _) = alice.invite_bundle(u64::MAX, e).unwrap();
        let (for_bob, _) = bob.invite_bundle(u64::MAX, e).unwrap();
        alice.start_conversation(&for_bob, e).unwrap();
        bob.start_conversation(&for_alice, e).unwrap();
        let from_alice = say(&mut alice, &mut bob, Body::SessionReset, e);
        let from_bob = say(&mut bob, &mut alice, Body::SessionReset, e);
        bob.receive(from_alice.0, &from_alice.1, e).1.unwrap();
        alice.receive(from_bob.0, &from_bob.1, e).1.unwrap();
        for round in 0..3 {
            let (id, p) = say(&mut alice, &mut bob, Body::Text(format!("a{round}")), e);
            assert_eq!(bob.receive(id, &p, e).1, Ok(()), "round {round}");
            let (id, p) = say(&mut bob, &mut alice, Body::Text(format!("b{round}")), e);
            assert_eq!(alice.receive(id, &p, e).1, Ok(()), "round {round}");
        }
    }

    #[test]
    fn two_devices_talk_and_restore_from_storage() {
        let e = &mut OsEntropy;
        let (mut alice, out) = Device::create(e).unwrap();
        assert!(out.send.is_empty(), "nothing is uploaded at creation");
        assert_eq!(alice.prekeys.one_time_count(), 0, "the first batch is made once, when it is uploaded");
        let mut alice_store = MemoryStorage::default();
        alice_store.commit(&out.persist).unwrap();
        let out = alice.publish_prekeys(PREKEY_BATCH, e).unwrap();
        assert!(
            matches!(out.send[0], ClientFrame::UploadPrekeys { ref one_time, .. } if one_time.len() == PREKEY_BATCH)
        );
        alice_store.commit(&out.persist).unwrap();
        let (mut bob, out) = Device::create(e).unwrap();
        let mut bob_store = MemoryStorage::default();
        bob_store.commit(&out.persist).unwrap();

        let (bundle, out) = bob.invite_bundle(u64::MAX, e).unwrap();
        bob_store.commit(&out.persist).unwrap();
        alice_store.commit(&alice.start_conversation(&bundle, e).unwrap().persist).unwrap();
        let out = alice.send(&bob.address(), &text("hi bob", 1, e).unwrap(), MessageId([1; 16]), e).unwrap();
        alice_store.commit(&out.persist).unwrap();
        let (id, payload) = deliver(&out);

        // Bob's device restarts before the message arrives.
        let mut bob = Device::restore(bob_store.load_all().unwrap()).unwrap();
        let (got, result) = bob.receive(id, &payload, e);
        result.unwrap();
        assert_eq!(got.send, vec![ClientFrame::Ack { ids: vec![id] }]);
        assert_eq!(got.received[0].message.body, Body::Text("hi bob".into()));
        assert!(got.persist.iter().any(|(k, _)| *k == StorageKey::Prekeys), "used prekey is persisted away");
        bob_store.commit(&got.persist).unwrap();
        // Redelivery of the same envelope: acked again, nothing new.
        let (again, result) = bob.receive(id, &payload, e);
        result.unwrap();
        assert!(again.received.is_empty());

        let mut bob = Device::restore(bob_store.load_all().unwrap()).unwrap();
        let out =
            bob.send(&alice.address(), &text("hi alice", 2, e).unwrap(), MessageId([2; 16]), e).unwrap();
        let (id, payload) = deliver(&out);
        let mut alice = Device::restore(alice_store.load_all().unwrap()).unwrap();
        let (got, result) = alice.receive(id, &payload, e);
        result.unwrap();
        assert_eq!(got.received[0].message.body, Body::Text("hi alice".into()));
        // Garbage is acked (so it stops coming) and reported.
        let (out, result) = alice.receive(MessageId([9; 16]), b"garbage", e);
        assert!(result.is_err());
        assert_eq!(out.send.len(), 1);
    }

    /// A live envelope opens only in a session that exists: one that would start a session
    /// (spending a one-time prekey) is refused and changes nothing.
    #[test]
    fn a_live_envelope_never_starts_a_session() {
        let e = &mut OsEntropy;
        let (mut alice, _) = Device::create(e).unwrap();
        let (mut bob, _) = Device::create(e).unwrap();
        let (bundle, _) = bob.invite_bundle(u64::MAX, e).unwrap();
        alice.start_conversation(&bundle, e).unwrap();
        let typing = |at| Message {
            v: crate::message::VERSION,
            id: [at as u8; 16],
            sent_at_ms: at,
            expires_after_secs: None,
            body: Body::Typing { typing: true },
        };
        let out = alice.send(&bob.address(), &typing(1), MessageId([1; 16]), e).unwrap();
        let (_, first) = deliver(&out);
        let prekeys = bob.prekeys.to_bytes();
        assert_eq!(bob.receive_live(&first, e).err(), Some(EngineError::NoSession));
        assert!(
            !bob.has_conversation(&alice.address()) && *bob.prekeys.to_bytes() == *prekeys,
            "nothing changed"
        );
        // Once the session exists (the same first message, delivered), live ones open.
        let (_, result) = bob.receive(MessageId([1; 16]), &first, e);
        result.unwrap();
        let out = bob.send(&alice.address(), &typing(2), MessageId([2; 16]), e).unwrap();
        let (_, reply) = deliver(&out);
        let (persist, got) = alice.receive_live(&reply, e).unwrap();
        assert_eq!(got.message.body, Body::Typing { typing: true });
        assert_eq!(persist.len(), 1, "the session it advanced, nothing else");
    }

    #[test]
    fn a_reply_carries_the_delivery_token_the_first_message_brought() {
        let e = &mut OsEntropy;
        let (mut alice, _) = Device::create(e).unwrap();
        let (mut bob, _) = Device::create(e).unwrap();
        // Before hearing from Bob, Alice can only send as a stranger.
        let (bundle, _) = bob.invite_bundle(u64::MAX, e).unwrap();
        alice.start_conversation(&bundle, e).unwrap();
        let out = alice.send(&bob.address(), &text("hi", 1, e).unwrap(), MessageId([1; 16]), e).unwrap();
        assert!(matches!(out.send[0], ClientFrame::Send { .. }));
        let (id, payload) = deliver(&out);
        let (got, result) = bob.receive(id, &payload, e);
        result.unwrap();
        assert!(got.persist.iter().any(|(k, _)| *k == StorageKey::DeliveryTokens));
        // Bob answers as Alice's contact, with the token whose hash Alice publishes.
        let out = bob.send(&alice.address(), &text("hello", 2, e).unwrap(), MessageId([2; 16]), e).unwrap();
        let ClientFrame::SendAsContact { token, .. } = out.send[0] else { panic!("sent as a stranger") };
        let ClientFrame::PublishDeliveryToken { hash } = alice.publish_delivery_token().unwrap() else {
            panic!("no token frame")
        };
        assert_eq!(sotto_shared::frames::delivery_token_hash(&token), hash);
        // The token survives a restart.
        let mut store = MemoryStorage::default();
        store.commit(&got.persist).unwrap();
        let mut records = store.load_all().unwrap();
        records.push((StorageKey::Identity, bob.identity.to_bytes().to_vec()));
        records.push((StorageKey::Prekeys, bob.prekeys.to_bytes().to_vec()));
        let bob = Device::restore(records).unwrap();
        assert!(matches!(
            bob.envelope_frame(MessageId([3; 16]), alice.address(), ENVELOPE_TTL_SECS, vec![]),
            ClientFrame::SendAsContact { token: t, .. } if t == token
        ));
    }
}
