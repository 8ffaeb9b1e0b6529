//! The messenger between two people, natively: frames are handed from one to the other the
//! way the relay would, and every step is restored from the records it wrote.

use sotto_engine::random::OsEntropy;
use sotto_messenger::{ContactNotice, ConversationId, Effects, Event, Messenger, MessengerError, Status};
use sotto_shared::invite::InviteError;
use sotto_shared::{ClientFrame, MessageId, RelayFrame};
use std::collections::BTreeMap;

const ORIGIN: &str = "http://127.0.0.1:8080";
const NOW: u64 = 1_800_000_000_000;

/// One person: a messenger and the records it has written.
struct Person {
    m: Messenger,
    store: BTreeMap<String, Vec<u8>>,
    /// Envelopes sent, as the relay would hold them.
    sent: Vec<(MessageId, Vec<u8>)>,
    /// Frames are sent only while logged in, as in the app; the rest waits in the outbox.
    online: bool,
}

impl Person {
    fn new(name: &str) -> Person {
        let (m, fx) = Messenger::create(name, NOW, &mut OsEntropy).unwrap();
        let mut p = Person { m, store: BTreeMap::new(), sent: Vec::new(), online: false };
        assert!(fx.frames.is_empty(), "nothing is sent before login");
        p.apply(fx);
        p
    }

    fn apply(&mut self, fx: Effects) -> Vec<Event> {
        for (k, v) in fx.writes {
            match v {
                Some(v) => self.store.insert(k.to_string(), v),
                None => self.store.remove(&k.to_string()),
            };
        }
        for f in fx.frames.into_iter().filter(|_| self.online) {
            match f {
                ClientFrame::Send { id, payload, .. } | ClientFrame::SendAsContact { id, payload, .. } => {
                    self.sent.push((id, payload))
                }
                _ => {}
            }
        }
        fx.events
    }

    fn frame(&mut self, f: RelayFrame) -> Vec<Event> {
        self.online |= matches!(f, RelayFrame::Authenticated { .. });
        let fx = self.m.on_frame(f, NOW, &mut OsEntropy);
        self.apply(fx)
    }

    /// Reloads from storage, as a page reload would.
    fn reload(&mut self) {
        self.m = Messenger::restore(self.store.clone().into_iter().collect()).unwrap();
    }

    /// The relay confirms every envelope and hands them to `to`, whose app then sends the
    /// receipts it owes (as the web app does a moment later).
    fn flush_to(&mut self, to: &mut Person) -> Vec<Event> {
        let mut events = Vec::new();
        for (id, payload) in std::mem::take(&mut self.sent) {
            self.frame(RelayFrame::Sent { id });
            events.extend(to.frame(RelayFrame::Deliver { id, received_at: 0, payload }));
        }
        let fx = to.m.flush_receipts(NOW, &mut OsEntropy);
        to.apply(fx);
        events
    }
}

fn connect(a: &mut Person, b: &mut Person) {
    a.frame(RelayFrame::Authenticated { address: a.m.address(), queued: 0 });
    let (link, fx) = a.m.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    a.apply(fx);
    let payload = link.strip_prefix(&format!("{ORIGIN}/#/invite/")).unwrap();
    let preview = b.m.preview_invite(payload, NOW).unwrap();
    assert_eq!(preview.invite.display_name, a.m.profile().display_name);
    assert!(!preview.known);
    let fx = b.m.accept_invite(&preview, NOW, &mut OsEntropy).unwrap();
    assert!(fx.events.contains(&Event::ContactAdded(a.m.address())));
    b.apply(fx);
    if !b.online {
        // B is offline: the introduction waits in the outbox and goes out at login.
        assert!(b.sent.is_empty());
        b.frame(RelayFrame::Authenticated { address: b.m.address(), queued: 0 });
    }
    assert_eq!(b.sent.len(), 1, "the introduction is sent");
    assert_eq!(b.m.pending(), 1);
    let events = b.flush_to(a);
    assert!(events.contains(&Event::ContactAdded(b.m.address())));
    assert_eq!(b.m.pending(), 0);
}

#[test]
fn invite_chat_receipts_and_reload() {
    let (mut ada, mut bo) = (Person::new("Ada"), Person::new("Bo"));
    connect(&mut ada, &mut bo);
    assert_eq!(ada.m.chat_list()[0].contact.name, "Bo");
    assert_eq!(bo.m.chat_list()[0].contact.name, "Ada");

    let fx = ada
        .m
        .send_text(&ConversationId::Direct(bo.m.address()), "hi Bo 👋 <b>x</b>", NOW + 1, &mut OsEntropy)
        .unwrap();
    ada.apply(fx);
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Sending);
    ada.reload();
    let events = ada.flush_to(&mut bo);
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Sent);
    assert!(
        matches!(&events[0], Event::Message { name, text, .. } if name == "Ada" && text == "hi Bo 👋 <b>x</b>")
    );
    assert_eq!(bo.m.unread_total(), 1);
    assert_eq!(bo.m.chat_list()[0].unread, 1);

    // Bo's device answers with a delivery receipt; reading sends a read receipt.
    bo.flush_to(&mut ada);
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Delivered);
    bo.reload();
    let fx = bo.m.mark_read(&ConversationId::Direct(ada.m.address()), NOW + 2, &mut OsEntropy);
    bo.apply(fx);
    assert_eq!(bo.m.unread_total(), 0);
    bo.flush_to(&mut ada);
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Read);

    // Replies, reloads, and the history survives in order.
    for i in 0..5 {
        let fx =
            bo.m.send_text(
                &ConversationId::Direct(ada.m.address()),
                &format!("reply {i}"),
                NOW + 10 + i,
                &mut OsEntropy,
            )
            .unwrap();
        bo.apply(fx);
    }
    bo.reload();
    bo.flush_to(&mut ada);
    ada.reload();
    let texts: Vec<_> =
        ada.m.messages(&ConversationId::Direct(bo.m.address())).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["hi Bo 👋 <b>x</b>", "reply 0", "reply 1", "reply 2", "reply 3", "reply 4"]);
    assert_eq!(ada.m.chat_list()[0].last.as_ref().unwrap().text, "reply 4");

    // The safety number is the same on both sides.
    let (sa, qa) = ada.m.safety(&bo.m.address()).unwrap();
    let (sb, qb) = bo.m.safety(&ada.m.address()).unwrap();
    assert_eq!((sa, qa), (sb, qb));
    let fx = ada.m.set_verified(&bo.m.address(), true);
    ada.apply(fx);
    ada.reload();
    assert!(ada.m.contact(&bo.m.address()).unwrap().verified);
}

#[test]
fn a_message_arriving_in_the_open_chat_is_read_at_once() {
    let (mut ada, mut bo) = (Person::new("Ada"), Person::new("Bo"));
    connect(&mut ada, &mut bo);
    bo.m.set_reading(Some(ConversationId::Direct(ada.m.address())));
    let fx =
        ada.m.send_text(&ConversationId::Direct(bo.m.address()), "seen live", NOW, &mut OsEntropy).unwrap();
    ada.apply(fx);
    ada.flush_to(&mut bo);
    assert_eq!(bo.m.messages(&ConversationId::Direct(ada.m.address()))[0].status, Status::Read);
    assert_eq!(bo.m.unread_total(), 0);
    assert_eq!(bo.sent.len(), 1, "one receipt, not two");
    bo.flush_to(&mut ada);
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Read);
}

#[test]
fn a_backlog_is_answered_with_one_receipt() {
    let (mut ada, mut bo) = (Person::new("Ada"), Person::new("Bo"));
    connect(&mut ada, &mut bo);
    for i in 0..20 {
        let fx = ada
            .m
            .send_text(&ConversationId::Direct(bo.m.address()), &format!("m{i}"), NOW + i, &mut OsEntropy)
            .unwrap();
        ada.apply(fx);
    }
    ada.flush_to(&mut bo);
    assert_eq!(bo.sent.len(), 1, "one receipt for twenty messages");
    assert!(!bo.m.receipts_due());
    bo.flush_to(&mut ada);
    assert!(
        ada.m.messages(&ConversationId::Direct(bo.m.address())).iter().all(|m| m.status == Status::Delivered)
    );
}

#[test]
fn redelivery_is_shown_once_and_outbox_resends_after_reconnect() {
    let (mut ada, mut bo) = (Person::new("Ada"), Person::new("Bo"));
    connect(&mut ada, &mut bo);
    let fx = ada.m.send_text(&ConversationId::Direct(bo.m.address()), "once", NOW, &mut OsEntropy).unwrap();
    ada.apply(fx);
    let (id, payload) = ada.sent[0].clone();
    // The relay's `Sent` is lost with the connection: the next login resends the same envelope.
    ada.sent.clear();
    ada.online = false;
    ada.frame(RelayFrame::Authenticated { address: ada.m.address(), queued: 0 });
    assert_eq!(ada.sent, vec![(id, payload.clone())]);
    ada.flush_to(&mut bo);
    let again = bo.frame(RelayFrame::Deliver { id, received_at: 0, payload });
    assert!(again.is_empty());
    assert_eq!(bo.m.messages(&ConversationId::Direct(ada.m.address())).len(), 1);
}

/// A damaged record name of a kind we write stops the restore (a lost session must not go
/// unnoticed); a kind a newer version writes is left alone.
#[test]
fn restore_refuses_damaged_names_and_skips_unknown_kinds() {
    let ada = Person::new("Ada");
    let mut records: Vec<(String, Vec<u8>)> = ada.store.clone().into_iter().collect();
    records.push(("later/1".into(), vec![9]));
    assert!(Messenger::restore(records.clone()).is_ok());
    records.push(("session/zz".into(), vec![1]));
    assert!(matches!(Messenger::restore(records), Err(MessengerError::Damaged(n)) if n == "session/zz"));
}

#[test]
fn bad_invites_are_refused_in_plain_words() {
    let (mut ada, bo) = (Person::new("Ada"), Person::new("Bo"));
    let (link, fx) = ada.m.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    ada.apply(fx);
    let payload = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(ada.m.preview_invite(&payload, NOW).unwrap_err(), MessengerError::OwnInvite);
    let week_later = NOW + 8 * 24 * 3600 * 1000;
    assert_eq!(
        bo.m.preview_invite(&payload, week_later).unwrap_err(),
        MessengerError::Invite(InviteError::Expired)
    );
    assert_eq!(
        bo.m.preview_invite("garbage", NOW).unwrap_err(),
        MessengerError::Invite(InviteError::Malformed)
    );
    // A link whose signed prekey was swapped for another key does not verify.
    let mut invite = sotto_shared::invite::Invite::decode(&payload, NOW / 1000).unwrap();
    invite.bundle.signed_prekey.key[0] ^= 1;
    assert_eq!(bo.m.preview_invite(&invite.encode(), NOW).unwrap_err(), MessengerError::ForgedInvite);
    assert!(MessengerError::ForgedInvite.to_string().contains("ask for a new one"));
}

#[test]
fn a_second_contact_with_the_same_name_is_flagged() {
    let (mut ada, mut bo, mut fake) = (Person::new("Ada"), Person::new("Bo"), Person::new("ada"));
    connect(&mut ada, &mut bo);
    connect(&mut fake, &mut bo);
    let c = bo.m.contact(&fake.m.address()).unwrap();
    assert_eq!(c.notice, Some(ContactNotice::SameNameAs(ada.m.address())));
    assert!(bo.m.contact(&ada.m.address()).unwrap().notice.is_none());
}

#[test]
fn refused_sends_fail_visibly_and_empty_text_is_refused() {
    let (mut ada, mut bo) = (Person::new("Ada"), Person::new("Bo"));
    connect(&mut ada, &mut bo);
    assert_eq!(
        ada.m.send_text(&ConversationId::Direct(bo.m.address()), "  \n", NOW, &mut OsEntropy).unwrap_err(),
        MessengerError::EmptyMessage
    );
    let fx = ada.m.send_text(&ConversationId::Direct(bo.m.address()), "x", NOW, &mut OsEntropy).unwrap();
    ada.apply(fx);
    let (id, _) = ada.sent.pop().unwrap();
    let events = ada.frame(RelayFrame::Error {
        code: sotto_shared::ErrorCode::InvalidRequest,
        message: "bad ttl".into(),
        id: Some(id),
    });
    assert!(matches!(&events[0], Event::Problem(p) if p.contains("could not be sent")));
    assert_eq!(ada.m.messages(&ConversationId::Direct(bo.m.address()))[0].status, Status::Failed);
    assert_eq!(ada.m.pending(), 0);
}

#[test]
fn a_spent_invite_link_is_refused_and_the_second_person_is_told() {
    let (mut ada, mut bo, mut cy) = (Person::new("Ada"), Person::new("Bo"), Person::new("Cy"));
    ada.frame(RelayFrame::Authenticated { address: ada.m.address(), queued: 0 });
    let (link, fx) = ada.m.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    ada.apply(fx);
    let payload = link.rsplit('/').next().unwrap().to_string();
    for p in [&mut bo, &mut cy] {
        let preview = p.m.preview_invite(&payload, NOW).unwrap();
        let fx = p.m.accept_invite(&preview, NOW, &mut OsEntropy).unwrap();
        p.apply(fx);
        p.frame(RelayFrame::Authenticated { address: p.m.address(), queued: 0 });
    }
    bo.flush_to(&mut ada);
    assert!(ada.m.contact(&bo.m.address()).is_some());

    // Cy's introduction cannot be read: Ada asks the relay for Cy's bundle to answer.
    let (id, payload) = cy.sent.pop().unwrap();
    let fx = ada.m.on_frame(RelayFrame::Deliver { id, received_at: 0, payload }, NOW, &mut OsEntropy);
    assert!(ada.m.contact(&cy.m.address()).is_none(), "a spent link adds nobody");
    assert!(matches!(&fx.events[0], Event::Problem(p) if p.contains("already used")));
    let fetch = fx.frames.iter().find(|f| matches!(f, ClientFrame::FetchBundle { .. })).cloned();
    assert_eq!(fetch, Some(ClientFrame::FetchBundle { address: cy.m.address() }));
    ada.apply(fx);

    // The relay answers with a bundle Cy published; Ada's notice reaches Cy.
    let mut cy_device_bundle = None;
    let fx = cy.m.on_frame(RelayFrame::PrekeysLow { remaining: 0 }, NOW, &mut OsEntropy);
    for f in &fx.frames {
        if let ClientFrame::UploadPrekeys { signed_prekey, one_time } = f {
            cy_device_bundle = Some(sotto_shared::frames::PrekeyBundle {
                identity: cy.m.identity(),
                signed_prekey: *signed_prekey,
                one_time_prekey: one_time.first().copied(),
            });
        }
    }
    cy.apply(fx);
    let bundle = cy_device_bundle.expect("Cy uploads prekeys");
    ada.frame(RelayFrame::Bundle { address: cy.m.address(), bundle: Some(Box::new(bundle)) });
    ada.flush_to(&mut cy);
    let c = cy.m.contact(&ada.m.address()).unwrap();
    assert_eq!(c.notice, Some(ContactNotice::InviteUsed));
    // The automatic answer to a stranger does not hand over Ada's delivery token.
    assert!(!cy.store.contains_key("tokens"), "Cy learned a delivery token from the notice");
    assert_eq!(
        cy.m.send_text(&ConversationId::Direct(ada.m.address()), "hello?", NOW, &mut OsEntropy).unwrap_err(),
        MessengerError::InviteUsed
    );
    // A second bundle answer (a replay) does nothing.
    let fx = ada.m.on_frame(
        RelayFrame::Bundle { address: cy.m.address(), bundle: Some(Box::new(bundle)) },
        NOW,
        &mut OsEntropy,
    );
    assert!(fx.frames.is_empty() && fx.writes.is_empty());
}

#[test]
fn prekeys_are_published_once_and_the_signed_prekey_rotates_weekly() {
    let mut ada = Person::new("Ada");
    let login = |p: &mut Person, now: u64| {
        let fx = p.m.on_frame(
            RelayFrame::Authenticated { address: p.m.address(), queued: 0 },
            now,
            &mut OsEntropy,
        );
        let uploads: Vec<usize> = fx
            .frames
            .iter()
            .filter_map(|f| match f {
                ClientFrame::UploadPrekeys { one_time, .. } => Some(one_time.len()),
                _ => None,
            })
            .collect();
        p.apply(fx);
        uploads
    };
    assert_eq!(login(&mut ada, NOW), vec![100], "first login uploads a batch");
    assert_eq!(login(&mut ada, NOW), vec![100], "until the relay confirms, it is retried");
    ada.frame(RelayFrame::PrekeysStored { one_time: 100 });
    ada.reload();
    assert_eq!(login(&mut ada, NOW + 1000), Vec::<usize>::new());
    let week = 7 * 24 * 3600 * 1000;
    assert_eq!(login(&mut ada, NOW + week + 1), vec![0], "a new signed prekey, no one-time keys");
    ada.reload();
    assert_eq!(login(&mut ada, NOW + week + 2), Vec::<usize>::new(), "rotation time is stored");
}
