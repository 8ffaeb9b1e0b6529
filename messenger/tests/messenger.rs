//! The messenger between two people, natively: frames are handed from one to the other the
//! way the relay would, and every step is restored from the records it wrote.

mod common;

use common::{NOW, ORIGIN, Person, connect, welcome};
use sotto_engine::random::OsEntropy;
use sotto_messenger::{
    Connection, ContactNotice, ConversationId, Driver, Event, Line, Link, MemoryStore, Messenger,
    MessengerError, Status, StoreError,
};
use sotto_shared::invite::InviteError;
use sotto_shared::{ClientFrame, MessageId, RelayFrame};

#[tokio::test]
async fn invite_chat_receipts_and_reload() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    assert_eq!(ada.d.messenger.chat_list()[0].title, "Bo");
    assert_eq!(bo.d.messenger.chat_list()[0].title, "Ada");

    let fx = ada
        .d
        .messenger
        .send_text(
            &ConversationId::Direct(bo.d.messenger.address()),
            "hi Bo 👋 <b>x</b>",
            NOW + 1,
            &mut OsEntropy,
        )
        .unwrap();
    ada.apply(fx).await;
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Sending
    );
    ada.reload().await;
    let events = ada.flush_to(&mut bo).await;
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Sent
    );
    assert!(
        matches!(&events[0], Event::Message { name, text, .. } if name == "Ada" && text == "hi Bo 👋 <b>x</b>")
    );
    assert_eq!(bo.d.messenger.unread_total(), 1);
    assert_eq!(bo.d.messenger.chat_list()[0].unread, 1);

    // Bo's device answers with a delivery receipt; reading sends a read receipt.
    bo.flush_to(&mut ada).await;
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Delivered
    );
    bo.reload().await;
    let fx =
        bo.d.messenger.mark_read(&ConversationId::Direct(ada.d.messenger.address()), NOW + 2, &mut OsEntropy);
    bo.apply(fx).await;
    assert_eq!(bo.d.messenger.unread_total(), 0);
    bo.flush_to(&mut ada).await;
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Read
    );

    // Replies, reloads, and the history survives in order.
    for i in 0..5 {
        let fx =
            bo.d.messenger
                .send_text(
                    &ConversationId::Direct(ada.d.messenger.address()),
                    &format!("reply {i}"),
                    NOW + 10 + i,
                    &mut OsEntropy,
                )
                .unwrap();
        bo.apply(fx).await;
    }
    bo.reload().await;
    bo.flush_to(&mut ada).await;
    ada.reload().await;
    let texts: Vec<_> = ada
        .d
        .messenger
        .messages(&ConversationId::Direct(bo.d.messenger.address()))
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert_eq!(texts, ["hi Bo 👋 <b>x</b>", "reply 0", "reply 1", "reply 2", "reply 3", "reply 4"]);
    assert_eq!(ada.d.messenger.chat_list()[0].last.as_ref().unwrap().text, "reply 4");

    // The safety number is the same on both sides.
    let (sa, qa) = ada.d.messenger.safety(&bo.d.messenger.address()).unwrap();
    let (sb, qb) = bo.d.messenger.safety(&ada.d.messenger.address()).unwrap();
    assert_eq!((sa, qa), (sb, qb));
    let fx = ada.d.messenger.set_verified(&bo.d.messenger.address(), true);
    ada.apply(fx).await;
    ada.reload().await;
    assert!(ada.d.messenger.contact(&bo.d.messenger.address()).unwrap().verified);
}

#[tokio::test]
async fn a_message_arriving_in_the_open_chat_is_read_at_once() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    bo.d.messenger.set_reading(Some(ConversationId::Direct(ada.d.messenger.address())));
    let fx = ada
        .d
        .messenger
        .send_text(&ConversationId::Direct(bo.d.messenger.address()), "seen live", NOW, &mut OsEntropy)
        .unwrap();
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;
    assert_eq!(
        bo.d.messenger.messages(&ConversationId::Direct(ada.d.messenger.address()))[0].status,
        Status::Read
    );
    assert_eq!(bo.d.messenger.unread_total(), 0);
    assert_eq!(bo.sent.len(), 1, "one receipt, not two");
    bo.flush_to(&mut ada).await;
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Read
    );
}

#[tokio::test]
async fn a_backlog_is_answered_with_one_receipt() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    for i in 0..20 {
        let fx = ada
            .d
            .messenger
            .send_text(
                &ConversationId::Direct(bo.d.messenger.address()),
                &format!("m{i}"),
                NOW + i,
                &mut OsEntropy,
            )
            .unwrap();
        ada.apply(fx).await;
    }
    ada.flush_to(&mut bo).await;
    assert_eq!(bo.sent.len(), 1, "one receipt for twenty messages");
    assert!(!bo.d.messenger.receipts_due());
    bo.flush_to(&mut ada).await;
    assert!(
        ada.d
            .messenger
            .messages(&ConversationId::Direct(bo.d.messenger.address()))
            .iter()
            .all(|m| m.status == Status::Delivered)
    );
}

#[tokio::test]
async fn redelivery_is_shown_once_and_outbox_resends_after_reconnect() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let fx = ada
        .d
        .messenger
        .send_text(&ConversationId::Direct(bo.d.messenger.address()), "once", NOW, &mut OsEntropy)
        .unwrap();
    ada.apply(fx).await;
    let (id, payload) = ada.sent[0].clone();
    // The relay's `Sent` is lost with the connection: the next login resends the same envelope.
    ada.sent.clear();
    ada.drop_link();
    ada.login(NOW).await;
    assert_eq!(ada.sent, vec![(id, payload.clone())]);
    ada.flush_to(&mut bo).await;
    let again = bo.frame(RelayFrame::Deliver { id, received_at: 0, payload }).await;
    assert!(again.is_empty());
    assert_eq!(bo.d.messenger.messages(&ConversationId::Direct(ada.d.messenger.address())).len(), 1);
}

/// Envelopes and bundle fetches travel only on the line that never logged in, so the relay
/// cannot tie them to the sender's mailbox; logging in alone sends none of them, and the
/// outbox goes out when the anonymous line comes up.
#[tokio::test]
async fn envelopes_leave_only_on_the_anonymous_line() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    ada.drop_link();
    let chat = ConversationId::Direct(bo.m().address());
    let step = ada.d.act(|m| m.send_text(&chat, "unseen sender", NOW, &mut OsEntropy)).unwrap();
    let frames = step.commit.unwrap().durable().await.unwrap();
    assert!(matches!(frames[..], [ClientFrame::Send { .. } | ClientFrame::SendAsContact { .. }]));
    assert!(ada.d.sendable(frames.clone()).is_empty(), "no line is up");

    // The mailbox line logs in: it carries the login's work, never the waiting envelope.
    ada.login_mailbox(NOW).await;
    assert_eq!(ada.d.line(Line::Mailbox), Link::Online);
    assert_ne!(ada.d.link(), Link::Online, "not ready while envelopes cannot leave");
    assert!(ada.sent.is_empty(), "an envelope went out on the logged-in line");
    assert!(ada.d.sendable(frames.clone()).is_empty());
    let ack = ClientFrame::Ack { ids: vec![] };
    assert_eq!(ada.d.sendable(vec![ack.clone()]), vec![(Line::Mailbox, ack)]);

    // The anonymous line comes up: the outbox goes out on it.
    ada.open_sending(NOW).await;
    assert_eq!(ada.sent.len(), 1);
    assert_eq!(ada.d.link(), Link::Online);
    assert_eq!(
        ada.d.sendable(frames).into_iter().map(|(line, _)| line).collect::<Vec<_>>(),
        [Line::Anonymous]
    );
    let fetch = ClientFrame::FetchBundle { address: bo.m().address() };
    assert_eq!(ada.d.sendable(vec![fetch.clone()]), vec![(Line::Anonymous, fetch)]);
    ada.flush_to(&mut bo).await;
    assert_eq!(texts(&bo, &ada), ["unseen sender"]);

    // A delivery on the anonymous line is not ours to take (the relay never sends one there).
    let (id, payload) = (sotto_shared::MessageId([9; 16]), vec![0; 200]);
    let step = ada.d.received(
        Line::Anonymous,
        RelayFrame::Deliver { id, received_at: 0, payload },
        NOW,
        &mut OsEntropy,
    );
    assert!(step.commit.is_none() && step.events.is_empty());
}

/// A send the relay refuses for now (rate limit, full mailbox) is sent again on its own after a
/// pause, without waiting for the line to drop and come back.
#[tokio::test]
async fn a_send_refused_for_now_is_sent_again_after_a_pause() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let chat = ConversationId::Direct(bo.m().address());
    for (code, pause) in [
        (sotto_shared::ErrorCode::RateLimited, sotto_messenger::outbox::RETRY_SOON_MS),
        (sotto_shared::ErrorCode::MailboxFull, sotto_messenger::outbox::RETRY_LATER_MS),
    ] {
        let step = ada.d.act(|m| m.send_text(&chat, "again", NOW, &mut OsEntropy)).unwrap();
        ada.run(step).await;
        let (id, payload) = ada.sent.pop().unwrap();
        let refused = RelayFrame::Error { code, message: "not now".into(), id: Some(id) };
        let events = ada.frame(refused.clone()).await;
        let told = code == sotto_shared::ErrorCode::MailboxFull;
        assert_eq!(events.len(), usize::from(told), "{events:?}");
        assert_eq!(ada.m().pending(), 1, "kept in the outbox");
        let step = ada.d.tick(NOW + pause - 1);
        ada.run(step).await;
        assert!(ada.sent.is_empty(), "not before the pause is over");
        let step = ada.d.tick(NOW + pause);
        ada.run(step).await;
        assert_eq!(ada.sent, vec![(id, payload)], "{code:?}: sent again");
        let step = ada.d.tick(NOW + 2 * pause);
        ada.run(step).await;
        assert_eq!(ada.sent.len(), 1, "once");
        // Refused again: held again, but the person is told only once.
        assert!(ada.frame(refused).await.is_empty(), "told once per message");
        ada.sent.clear();
        let step = ada.d.tick(NOW + pause);
        ada.run(step).await;
        assert_eq!(ada.sent.len(), 1);
        ada.flush_to(&mut bo).await;
        assert_eq!(ada.m().pending(), 0);
    }
}

/// `from` writes to `to` by address, without an invite (as a bot would): the relay hands out
/// `to`'s bundle, `from` introduces itself and says `text`.
async fn write_without_invite(from: &mut Person, to: &mut Person, text: &str) -> Vec<Event> {
    let address = to.m().address();
    // The sending line is down when the fetch is made: it goes once the line is up.
    let _ = from.d.closed(Line::Anonymous, 0.5);
    let step = from.d.act(|m| m.write_to(address)).unwrap();
    let frames = step.commit.unwrap().durable().await.unwrap();
    assert!(from.d.sendable(frames).is_empty());
    from.d.connecting(Line::Anonymous, NOW);
    from.d.opened(Line::Anonymous, NOW);
    let step = from.d.received(Line::Anonymous, welcome(), NOW, &mut OsEntropy);
    let frames = step.commit.unwrap().durable().await.unwrap();
    assert_eq!(from.d.sendable(frames), [(Line::Anonymous, ClientFrame::FetchBundle { address })]);
    let events = from.frame(RelayFrame::Bundle { address, bundle: Some(Box::new(to.bundle())) }).await;
    assert!(events.contains(&Event::ContactAdded(address)), "{events:?}");
    let step =
        from.d.act(|m| m.send_text(&ConversationId::Direct(address), text, NOW, &mut OsEntropy)).unwrap();
    from.run(step).await;
    from.flush_to(to).await
}

/// Someone who writes without one of our invite links (they fetched our prekeys from the
/// relay, which anyone may) is a contact request: kept apart, told nothing (not even a read
/// receipt) until accepted; once accepted, an ordinary contact who learns our name.
#[tokio::test]
async fn a_stranger_who_writes_without_an_invite_is_a_request_until_accepted() {
    let (mut ada, mut cy) = (Person::new("Ada").await, Person::new("Cy").await);
    ada.login(NOW).await;
    cy.login(NOW).await;
    let (ada_at, cy_at) = (ada.m().address(), cy.m().address());
    let cy_chat = ConversationId::Direct(cy_at);
    // Ada even has the chat open: a stranger still gets no "read".
    ada.d.messenger.set_reading(Some(cy_chat));
    let events = write_without_invite(&mut cy, &mut ada, "hello from nowhere").await;
    assert_eq!(events, [Event::Request { address: cy_at, name: "Cy".into() }]);
    assert!(ada.m().contact(&cy_at).is_none(), "not a contact");
    assert_eq!(ada.m().request(&cy_at).map(|r| r.name.as_str()), Some("Cy"));
    assert!(ada.sent.is_empty(), "nothing goes back to a stranger: {} envelopes", ada.sent.len());
    let rows = ada.m().chat_list();
    assert!(rows.len() == 1 && rows[0].request && rows[0].title == "Cy");
    assert_eq!(texts(&ada, &cy), ["hello from nowhere"]);
    assert_eq!(
        ada.d.act(|m| m.send_text(&cy_chat, "hi?", NOW, &mut OsEntropy)).err(),
        Some(MessengerError::RequestPending)
    );

    // It survives a reload, then Ada accepts: Cy learns her name; they talk.
    ada.reload().await;
    assert!(ada.m().request(&cy_at).is_some());
    assert_eq!(texts(&ada, &cy), ["hello from nowhere"]);
    let step = ada.d.act(|m| m.accept_request(&cy_at, NOW, &mut OsEntropy)).unwrap();
    assert!(step.events.contains(&Event::ContactAdded(cy_at)));
    ada.run(step).await;
    assert!(ada.m().request(&cy_at).is_none() && ada.m().contact(&cy_at).is_some());
    assert!(!ada.m().chat_list()[0].request);
    assert!(!ada.records().keys().any(|k| k.starts_with("request/")), "the request record is gone");
    ada.flush_to(&mut cy).await;
    assert_eq!(cy.m().contact(&ada_at).map(|c| c.name.as_str()), Some("Ada"));
    say(&mut ada, &cy, "welcome").await;
    ada.flush_to(&mut cy).await;
    assert_eq!(texts(&cy, &ada), ["hello from nowhere", "welcome"]);
    assert_eq!(
        ada.d.act(|m| m.accept_request(&cy_at, NOW, &mut OsEntropy)).err(),
        Some(MessengerError::NoRequest)
    );
}

/// Someone whose request waits and whose invite link we then take up is a contact, and
/// nothing else: the request goes.
#[tokio::test]
async fn a_requester_who_then_uses_our_link_is_only_a_contact() {
    let (mut ada, mut cy) = (Person::new("Ada").await, Person::new("Cy").await);
    ada.login(NOW).await;
    cy.login(NOW).await;
    let cy_at = cy.m().address();
    write_without_invite(&mut cy, &mut ada, "knock knock").await;
    assert!(ada.m().request(&cy_at).is_some());
    // Ada takes up a link of Cy's (her side knows Cy only as a request).
    let (link, fx) = cy.d.messenger.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    cy.apply(fx).await;
    let payload = link.strip_prefix(&format!("{ORIGIN}/#/invite/")).unwrap();
    let preview = ada.d.messenger.preview_invite(payload, ORIGIN, NOW).unwrap();
    assert!(!preview.known);
    let step = ada.d.act(|m| m.accept_invite(&preview, NOW, &mut OsEntropy)).unwrap();
    assert!(step.events.contains(&Event::ContactAdded(cy_at)));
    ada.run(step).await;
    assert!(ada.m().request(&cy_at).is_none() && ada.m().contact(&cy_at).is_some());
    let rows = ada.m().chat_list();
    assert!(rows.len() == 1 && !rows[0].request, "one row, a contact's");
    assert!(!ada.records().keys().any(|k| k.starts_with("request/")));
}

/// A link taken up after it expired (by when the relay received the acceptance) introduces
/// nobody: its holder asks like a stranger.
#[tokio::test]
async fn an_expired_link_makes_a_request_not_a_contact() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    ada.login(NOW).await;
    bo.login(NOW).await;
    let (link, fx) = ada.d.messenger.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    let payload = link.strip_prefix(&format!("{ORIGIN}/#/invite/")).unwrap();
    let preview = bo.d.messenger.preview_invite(payload, ORIGIN, NOW).unwrap();
    let fx = bo.d.messenger.accept_invite(&preview, NOW, &mut OsEntropy).unwrap();
    bo.apply(fx).await;
    let (id, payload) = bo.sent.pop().unwrap();
    let late = preview.invite.expires_at + 1;
    let events = ada.frame(RelayFrame::Deliver { id, received_at: late, payload }).await;
    let bo_at = bo.m().address();
    assert_eq!(events, [Event::Request { address: bo_at, name: "Bo".into() }]);
    assert!(ada.m().contact(&bo_at).is_none());
}

/// An ignored request is deleted with what it said, and anything later from the same
/// stranger is dropped unseen, also after a reload.
#[tokio::test]
async fn an_ignored_request_is_deleted_and_stays_silent() {
    let (mut ada, mut dan) = (Person::new("Ada").await, Person::new("Dan").await);
    ada.login(NOW).await;
    dan.login(NOW).await;
    let dan_at = dan.m().address();
    write_without_invite(&mut dan, &mut ada, "BUY-NOW-spam").await;
    let step = ada.d.act(|m| m.ignore_request(&dan_at)).unwrap();
    ada.run(step).await;
    assert!(ada.m().request(&dan_at).is_none());
    assert!(ada.m().chat_list().is_empty());
    assert!(texts(&ada, &dan).is_empty());
    let stored: Vec<u8> = ada.records().into_values().flatten().collect();
    assert!(!stored.windows(12).any(|w| w == b"BUY-NOW-spam"), "the text is deleted from the store");
    let session = format!("session/{}", dan_at.to_hex());
    assert!(!ada.records().contains_key(&session), "nor is their session kept");

    ada.reload().await;
    let step =
        dan.d.act(|m| m.send_text(&ConversationId::Direct(ada.m().address()), "again", NOW, &mut OsEntropy));
    dan.run(step.unwrap()).await;
    let events = dan.flush_to(&mut ada).await;
    assert!(events.is_empty(), "{events:?}");
    assert!(ada.m().chat_list().is_empty() && texts(&ada, &dan).is_empty());
    assert_eq!(ada.d.act(|m| m.ignore_request(&dan_at)).err(), Some(MessengerError::NoRequest));
}

/// A copy restored from a backup never sends on the sessions it brought back (the copy the
/// backup came from may have used their keys): it renews each with a fresh session announced
/// by a reset, and the chat goes on both ways.
#[tokio::test]
async fn a_restored_backup_renews_its_sessions_before_sending() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    say(&mut ada, &bo, "before the backup").await;
    ada.flush_to(&mut bo).await;
    let backup = ada.d.store().snapshot();
    // The old copy goes on after the backup was made.
    say(&mut ada, &bo, "after the backup").await;
    ada.flush_to(&mut bo).await;

    let store = MemoryStore::default();
    for (name, value) in backup {
        store.put_raw(&name, value);
    }
    store.put_raw("restored", Vec::new());
    let mut restored = Person {
        d: Driver::load(store, Connection::new(ORIGIN, "t")).await.unwrap(),
        sent: Vec::new(),
        uploaded: None,
    };
    assert!(!restored.records().contains_key("restored"), "the marker goes once the sessions are retired");
    let bo_chat = ConversationId::Direct(bo.m().address());
    assert!(matches!(
        restored.d.act(|m| m.send_text(&bo_chat, "too soon", NOW, &mut OsEntropy)).err(),
        Some(MessengerError::Renewing(_))
    ));
    // Online: the relay is asked for Bo's bundle, and a new session is announced.
    let bo_at = bo.m().address();
    restored.login_mailbox(NOW).await;
    restored.d.connecting(Line::Anonymous, NOW);
    restored.d.opened(Line::Anonymous, NOW);
    let step = restored.d.received(Line::Anonymous, welcome(), NOW, &mut OsEntropy);
    let frames = step.commit.unwrap().durable().await.unwrap();
    assert!(frames.contains(&ClientFrame::FetchBundle { address: bo_at }), "{frames:?}");
    // A bundle without a one-time prekey renews nothing (a reset made with none could be
    // replayed later): it waits for the next one.
    let bare = sotto_shared::frames::PrekeyBundle { one_time_prekey: None, ..bo.bundle() };
    assert!(
        restored.frame(RelayFrame::Bundle { address: bo_at, bundle: Some(Box::new(bare)) }).await.is_empty()
    );
    assert!(restored.sent.is_empty(), "no renewal without a one-time prekey");
    assert!(
        restored
            .frame(RelayFrame::Bundle { address: bo_at, bundle: Some(Box::new(bo.bundle())) })
            .await
            .is_empty()
    );
    assert_eq!(restored.sent.len(), 2, "the reset, and our name");
    let events = restored.flush_to(&mut bo).await;
    assert!(events.is_empty(), "{events:?}");
    // Both ways again, and nothing was unreadable.
    say(&mut bo, &restored, "welcome back").await;
    let events = bo.flush_to(&mut restored).await;
    assert!(events.iter().all(|e| matches!(e, Event::Message { .. })), "{events:?}");
    say(&mut restored, &bo, "thanks").await;
    let events = restored.flush_to(&mut bo).await;
    assert!(events.iter().all(|e| matches!(e, Event::Message { .. })), "{events:?}");
    assert_eq!(texts(&bo, &restored).last().map(String::as_str), Some("thanks"));
    assert!(texts(&restored, &bo).contains(&"welcome back".to_string()));
}

/// A damaged record name of a kind we write stops the load (a lost session must not go
/// unnoticed); a kind a newer version writes is left alone.
#[tokio::test]
async fn load_refuses_damaged_names_and_skips_unknown_kinds() {
    let ada = Person::new("Ada").await;
    let store = ada.d.store().clone();
    store.put_raw("later/1", vec![9]);
    assert!(Driver::load(store.clone(), Connection::new(ORIGIN, "t")).await.is_ok());
    store.put_raw("session/zz", vec![1]);
    let refused = Driver::load(store, Connection::new(ORIGIN, "t")).await.err();
    assert!(
        matches!(&refused, Some(MessengerError::Store(StoreError::Damaged(n))) if n.contains("session/zz")),
        "{refused:?}"
    );
}

/// A group record this version cannot read (an earlier build's layout) costs that group, not
/// the whole load, and is counted so the app can say so.
#[tokio::test]
async fn an_unreadable_group_record_is_skipped_and_counted() {
    let ada = Person::new("Ada").await;
    let store = ada.d.store().clone();
    store.put_raw(&format!("group/{}", "ab".repeat(16)), vec![4, 200, 1]);
    let d = Driver::load(store, Connection::new(ORIGIN, "t")).await.unwrap();
    assert_eq!(d.messenger.unreadable_groups(), 1);
}

#[tokio::test]
async fn bad_invites_are_refused_in_plain_words() {
    let (mut ada, bo) = (Person::new("Ada").await, Person::new("Bo").await);
    let (link, fx) = ada.d.messenger.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    let payload = link.rsplit('/').next().unwrap().to_string();
    assert_eq!(ada.d.messenger.preview_invite(&payload, ORIGIN, NOW).unwrap_err(), MessengerError::OwnInvite);
    let week_later = NOW + 8 * 24 * 3600 * 1000;
    assert_eq!(
        bo.d.messenger.preview_invite(&payload, ORIGIN, week_later).unwrap_err(),
        MessengerError::Invite(InviteError::Expired)
    );
    assert_eq!(
        bo.d.messenger.preview_invite("garbage", ORIGIN, NOW).unwrap_err(),
        MessengerError::Invite(InviteError::Malformed)
    );
    // A link whose signed prekey was swapped for another key does not verify.
    let mut invite = sotto_shared::invite::Invite::decode(&payload, NOW / 1000).unwrap();
    invite.bundle.signed_prekey.key[0] ^= 1;
    assert_eq!(
        bo.d.messenger.preview_invite(&invite.encode(), ORIGIN, NOW).unwrap_err(),
        MessengerError::ForgedInvite
    );
    assert!(MessengerError::ForgedInvite.to_string().contains("ask for a new one"));
    // What the link says is the inviter's: another name or a later expiry (someone who
    // handles the link on its way) does not verify.
    let original = sotto_shared::invite::Invite::decode(&payload, NOW / 1000).unwrap();
    let mut renamed = original.clone();
    renamed.display_name = "Your bank".into();
    let mut extended = original.clone();
    extended.expires_at += 365 * 24 * 3600;
    for forged in [renamed, extended] {
        assert_eq!(
            bo.d.messenger.preview_invite(&forged.encode(), ORIGIN, NOW).unwrap_err(),
            MessengerError::ForgedInvite
        );
    }
    assert!(bo.d.messenger.preview_invite(&original.encode(), ORIGIN, NOW).is_ok());
    // A link for another relay is refused where it cannot work, in plain words.
    assert_eq!(
        bo.d.messenger.preview_invite(&original.encode(), "https://other.example", NOW).unwrap_err(),
        MessengerError::OtherRelay(ORIGIN.into())
    );
    // The link does not carry Ada's delivery token: whoever sees it cannot send as her contact.
    let ada_identity = sotto_engine::Identity::from_bytes(&ada.records()["identity"]).unwrap();
    let token = ada_identity.delivery_token().unwrap();
    let raw = <base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(&payload).unwrap();
    assert!(!raw.windows(32).any(|w| w == token.as_slice()), "the link carries the delivery token");
}

#[tokio::test]
async fn a_second_contact_with_the_same_name_is_flagged() {
    let (mut ada, mut bo, mut fake) =
        (Person::new("Ada").await, Person::new("Bo").await, Person::new("ada").await);
    connect(&mut ada, &mut bo).await;
    connect(&mut fake, &mut bo).await;
    let c = bo.d.messenger.contact(&fake.d.messenger.address()).unwrap();
    assert_eq!(c.notice, Some(ContactNotice::SameNameAs(ada.d.messenger.address())));
    assert!(bo.d.messenger.contact(&ada.d.messenger.address()).unwrap().notice.is_none());

    // Nothing goes to the doubtful key, not even a read receipt, until Bo answers the warning.
    let to_fake = ConversationId::Direct(fake.d.messenger.address());
    let refused = bo.d.messenger.send_text(&to_fake, "is it you?", NOW, &mut OsEntropy).err();
    assert_eq!(refused, Some(MessengerError::KeyInDoubt("ada".into())));
    // Nor a channel's admin key.
    let (channel, fx) = bo.d.messenger.create_channel("News", "", NOW, &mut OsEntropy).unwrap();
    bo.apply(fx).await;
    let refused =
        bo.d.messenger.add_channel_admin(&channel, &fake.d.messenger.address(), NOW, &mut OsEntropy);
    assert_eq!(refused.err(), Some(MessengerError::KeyInDoubt("ada".into())));
    bo.sent.clear();
    say(&mut fake, &bo, "it's me").await;
    fake.flush_to(&mut bo).await;
    assert!(bo.sent.is_empty(), "no delivery receipt to a key in doubt");
    let fx = bo.d.messenger.mark_read(&to_fake, NOW, &mut OsEntropy);
    assert!(!fx.writes.is_empty() && fx.frames.is_empty(), "read here, but no receipt goes");
    let fx = bo.d.messenger.accept_key(&fake.d.messenger.address());
    bo.apply(fx).await;
    let c = bo.d.messenger.contact(&fake.d.messenger.address()).unwrap();
    assert!(c.notice.is_none() && !c.verified, "accepted, still unverified");
    assert!(bo.d.messenger.send_text(&to_fake, "is it you?", NOW, &mut OsEntropy).is_ok());
}

#[tokio::test]
async fn refused_sends_fail_visibly_and_empty_text_is_refused() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    assert_eq!(
        ada.d
            .messenger
            .send_text(&ConversationId::Direct(bo.d.messenger.address()), "  \n", NOW, &mut OsEntropy)
            .unwrap_err(),
        MessengerError::EmptyMessage
    );
    let fx = ada
        .d
        .messenger
        .send_text(&ConversationId::Direct(bo.d.messenger.address()), "x", NOW, &mut OsEntropy)
        .unwrap();
    ada.apply(fx).await;
    let (id, _) = ada.sent.pop().unwrap();
    let events = ada
        .frame(RelayFrame::Error {
            code: sotto_shared::ErrorCode::InvalidRequest,
            message: "bad ttl".into(),
            id: Some(id),
        })
        .await;
    assert!(matches!(&events[0], Event::Problem(p) if p.to_string().contains("could not be sent")));
    assert_eq!(
        ada.d.messenger.messages(&ConversationId::Direct(bo.d.messenger.address()))[0].status,
        Status::Failed
    );
    assert_eq!(ada.d.messenger.pending(), 0);
}

#[tokio::test]
async fn a_spent_invite_link_is_refused_and_the_second_person_is_told() {
    let (mut ada, mut bo, mut cy) =
        (Person::new("Ada").await, Person::new("Bo").await, Person::new("Cy").await);
    ada.login(NOW).await;
    let (link, fx) = ada.d.messenger.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    let payload = link.rsplit('/').next().unwrap().to_string();
    for p in [&mut bo, &mut cy] {
        let preview = p.d.messenger.preview_invite(&payload, ORIGIN, NOW).unwrap();
        let fx = p.d.messenger.accept_invite(&preview, NOW, &mut OsEntropy).unwrap();
        p.apply(fx).await;
        p.login(NOW).await;
    }
    bo.flush_to(&mut ada).await;
    assert!(ada.d.messenger.contact(&bo.d.messenger.address()).is_some());

    // Cy's introduction cannot be read: Ada asks the relay for Cy's bundle to answer.
    let (id, payload) = cy.sent.pop().unwrap();
    let first_payload = payload.clone();
    let fx =
        ada.d.messenger.on_frame(RelayFrame::Deliver { id, received_at: 0, payload }, NOW, &mut OsEntropy);
    assert!(ada.d.messenger.contact(&cy.d.messenger.address()).is_none(), "a spent link adds nobody");
    assert!(matches!(&fx.events[0], Event::Problem(p) if p.to_string().contains("already used")));
    let fetch = fx.frames.iter().find(|f| matches!(f, ClientFrame::FetchBundle { .. })).cloned();
    assert_eq!(fetch, Some(ClientFrame::FetchBundle { address: cy.d.messenger.address() }));
    ada.apply(fx).await;

    // The relay answers with a bundle Cy published; Ada's notice reaches Cy.
    let mut cy_device_bundle = None;
    let fx = cy.d.messenger.on_frame(RelayFrame::PrekeysLow { remaining: 0 }, NOW, &mut OsEntropy);
    for f in &fx.frames {
        if let ClientFrame::UploadPrekeys { signed_prekey, one_time } = f {
            cy_device_bundle = Some(sotto_shared::frames::PrekeyBundle {
                identity: cy.d.messenger.identity(),
                signed_prekey: *signed_prekey,
                one_time_prekey: one_time.first().copied(),
            });
        }
    }
    cy.apply(fx).await;
    let bundle = cy_device_bundle.expect("Cy uploads prekeys");
    ada.frame(RelayFrame::Bundle { address: cy.d.messenger.address(), bundle: Some(Box::new(bundle)) }).await;
    let notice = ada.sent.last().unwrap().1.clone();
    ada.flush_to(&mut cy).await;
    let c = cy.d.messenger.contact(&ada.d.messenger.address()).unwrap();
    assert_eq!(c.notice, Some(ContactNotice::InviteUsed));
    // The automatic answer to a stranger does not hand over Ada's delivery token: opened with
    // Cy's identity (from Cy's store), the notice carries none.
    let cy_identity = sotto_engine::Identity::from_bytes(&cy.records()["identity"]).unwrap();
    let opened = sotto_engine::envelope::open_envelope(&cy_identity, &notice).unwrap();
    assert_eq!(opened.delivery_token, None, "the notice carried Ada's token");
    assert!(!cy.records().contains_key("tokens"), "Cy learned a delivery token");
    assert_eq!(
        cy.d.messenger
            .send_text(&ConversationId::Direct(ada.d.messenger.address()), "hello?", NOW, &mut OsEntropy)
            .unwrap_err(),
        MessengerError::InviteUsed
    );
    // A second bundle answer (a replay) does nothing.
    let fx = ada.d.messenger.on_frame(
        RelayFrame::Bundle { address: cy.d.messenger.address(), bundle: Some(Box::new(bundle)) },
        NOW,
        &mut OsEntropy,
    );
    assert!(fx.frames.is_empty() && fx.writes.is_empty());
    // Told once, ever: after a reload, the same stranger's first message again asks for
    // nothing and sends nothing.
    ada.reload().await;
    let again = RelayFrame::Deliver { id, received_at: 0, payload: first_payload };
    let fx = ada.d.messenger.on_frame(again, NOW, &mut OsEntropy);
    assert!(fx.frames.iter().all(|f| matches!(f, ClientFrame::Ack { .. })), "{:?}", fx.frames);
    assert!(
        fx.events.iter().all(|e| !matches!(e, Event::Problem(sotto_messenger::Notice::SpentInviteOpened)))
    );
}

#[tokio::test]
async fn prekeys_are_published_once_and_the_signed_prekey_rotates_weekly() {
    let mut ada = Person::new("Ada").await;
    async fn login(p: &mut Person, now: u64) -> Vec<usize> {
        let fx = p.d.messenger.on_frame(
            RelayFrame::Authenticated { address: p.d.messenger.address(), queued: 0 },
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
        p.apply(fx).await;
        uploads
    }
    assert_eq!(login(&mut ada, NOW).await, vec![100], "first login uploads a batch");
    assert_eq!(login(&mut ada, NOW).await, vec![100], "until the relay confirms, it is retried");
    ada.frame(RelayFrame::PrekeysStored { one_time: 100 }).await;
    ada.reload().await;
    assert_eq!(login(&mut ada, NOW + 1000).await, Vec::<usize>::new());
    let week = 7 * 24 * 3600 * 1000;
    assert_eq!(login(&mut ada, NOW + week + 1).await, vec![0], "a new signed prekey, no one-time keys");
    ada.reload().await;
    assert_eq!(login(&mut ada, NOW + week + 2).await, Vec::<usize>::new(), "rotation time is stored");
}

fn texts(p: &Person, with: &Person) -> Vec<String> {
    p.m().messages(&ConversationId::Direct(with.m().address())).iter().map(|m| m.text.clone()).collect()
}

async fn say(from: &mut Person, to: &Person, text: &str) {
    let chat = ConversationId::Direct(to.m().address());
    let fx = from.d.messenger.send_text(&chat, text, NOW, &mut OsEntropy).unwrap();
    from.apply(fx).await;
}

/// History loads by page: the newest page at start, earlier ones on demand; but every unread
/// message, and every message still waiting to be sent, is loaded at start whatever its age.
#[tokio::test]
async fn history_loads_by_page_but_never_without_unread_or_unsent_messages() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let page = sotto_messenger::history::PAGE_SIZE;
    let n = 2 * page + 20;
    for i in 0..n {
        say(&mut ada, &bo, &format!("m{i}")).await;
    }
    ada.flush_to(&mut bo).await;
    // All unread: all loaded, however many pages they span.
    bo.reload().await;
    assert_eq!(bo.m().unread_total(), n);
    assert_eq!(texts(&bo, &ada).len(), n);
    let bo_chat = ConversationId::Direct(ada.m().address());
    let fx = bo.d.messenger.mark_read(&bo_chat, NOW, &mut OsEntropy);
    bo.apply(fx).await;
    for i in 0..3 {
        say(&mut ada, &bo, &format!("late{i}")).await;
    }
    ada.flush_to(&mut bo).await;

    // Read history loads one page at a time, newest first, the three unread ones included.
    bo.reload().await;
    assert_eq!(texts(&bo, &ada).len(), page);
    assert_eq!(texts(&bo, &ada).last().unwrap(), "late2");
    assert_eq!(bo.m().unread_total(), 3);
    let mut pages = 0;
    while let Some(reading) = bo.d.earlier(bo_chat) {
        let page = reading.await.unwrap();
        bo.d.add_page(page).unwrap();
        pages += 1;
    }
    assert_eq!(pages, 2);
    let all = texts(&bo, &ada);
    let expected: Vec<String> =
        (0..n).map(|i| format!("m{i}")).chain((0..3).map(|i| format!("late{i}"))).collect();
    assert_eq!(all, expected, "every message once, in order");
    assert_eq!(bo.m().chat_list()[0].unread, 3);

    // Offline, Bo writes more than a page; after a reload they are all loaded, and the
    // relay's confirmations settle every one of them.
    bo.drop_link();
    bo.sent.clear(); // the read receipt went out, but its `Sent` was lost with the link
    let m = 2 * page;
    for i in 0..m {
        say(&mut bo, &ada, &format!("offline{i}")).await;
    }
    assert!(bo.sent.is_empty());
    bo.reload().await;
    // Receipts wait too: two "delivered", the "read" before the link dropped, and the "read"
    // that writing in the chat sent for the three late ones.
    assert_eq!(bo.m().pending(), m + 4, "the texts and four receipts wait");
    let sending = |p: &Person| {
        p.m().messages(&bo_chat).iter().filter(|m| m.status == sotto_messenger::Status::Sending).count()
    };
    assert_eq!(sending(&bo), m, "every unsent message is loaded");
    bo.login(NOW).await;
    bo.flush_to(&mut ada).await;
    assert_eq!((bo.m().pending(), sending(&bo)), (0, 0));
    bo.reload().await;
    while let Some(reading) = bo.d.earlier(bo_chat) {
        bo.d.add_page(reading.await.unwrap()).unwrap();
    }
    assert_eq!(sending(&bo), 0, "the settled statuses were stored");
    assert_eq!(texts(&bo, &ada).len(), n + 3 + m);
}

/// A whole store as version 1 wrote it (messages and outbox entries named a contact, not a
/// conversation) opens, and an envelope it left unsent settles its message.
#[tokio::test]
async fn a_version_1_store_opens_and_its_outbox_settles() {
    use serde::Serialize;
    use sotto_messenger::{RecordKey, Status};
    use sotto_shared::Address;

    #[derive(Serialize)]
    struct MessageV1 {
        seq: u64,
        id: [u8; 16],
        contact: Address,
        outgoing: bool,
        text: String,
        sent_at_ms: u64,
        status: Status,
    }
    #[derive(Serialize)]
    struct OutboundV1 {
        envelope: MessageId,
        to: Address,
        payload: Vec<u8>,
        message: Option<(Address, u64)>,
    }
    let v1 = |body: Vec<u8>| [vec![1u8], body].concat();

    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    say(&mut bo, &ada, "hello").await;
    bo.flush_to(&mut ada).await;
    ada.drop_link();
    say(&mut ada, &bo, "unsent").await;

    // Rewrite Ada's store the way version 1 laid it out.
    let store = ada.d.store().clone();
    let chat = ConversationId::Direct(bo.m().address());
    for m in ada.m().messages(&chat) {
        let old = MessageV1 {
            seq: m.seq,
            id: m.id,
            contact: bo.m().address(),
            outgoing: m.outgoing,
            text: m.text.clone(),
            sent_at_ms: m.sent_at_ms,
            status: m.status,
        };
        store.put_raw(&m.key().to_string(), v1(postcard::to_allocvec(&old).unwrap()));
    }
    for (name, bytes) in store.snapshot() {
        match RecordKey::parse(&name) {
            Some(RecordKey::Outbox(_)) => {
                let o: sotto_messenger::outbox::Outbound = postcard::from_bytes(&bytes[1..]).unwrap();
                let old = OutboundV1 {
                    envelope: o.envelope,
                    to: o.to,
                    payload: o.payload,
                    message: o.message.map(|(c, seq)| (c.peer().unwrap(), seq)),
                };
                store.put_raw(&name, v1(postcard::to_allocvec(&old).unwrap()));
            }
            Some(RecordKey::Profile | RecordKey::Contact(_)) => store.put_raw(&name, v1(bytes[1..].to_vec())),
            _ => {}
        }
    }

    ada.d = Driver::load(store, Connection::new(ORIGIN, "t")).await.unwrap();
    assert_eq!(texts(&ada, &bo), ["hello", "unsent"]);
    assert_eq!(ada.m().messages(&chat)[1].status, Status::Sending);
    assert_eq!(ada.m().chat_list()[0].title, "Bo");
    ada.login(NOW).await;
    let events = ada.flush_to(&mut bo).await;
    assert!(matches!(&events[..], [Event::Message { text, .. }] if text == "unsent"));
    assert_eq!(ada.m().messages(&chat)[1].status, Status::Sent);
}

/// Answering in a chat reads it, as in every messenger (a bot that replies reads too).
#[tokio::test]
async fn writing_in_a_chat_reads_it() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    say(&mut ada, &bo, "one").await;
    say(&mut ada, &bo, "two").await;
    ada.flush_to(&mut bo).await;
    assert_eq!(bo.m().unread_total(), 2);
    say(&mut bo, &ada, "answer").await;
    assert_eq!(bo.m().unread_total(), 0);
    bo.flush_to(&mut ada).await;
    let chat = ConversationId::Direct(bo.m().address());
    let statuses: Vec<_> = ada.m().messages(&chat).iter().map(|m| (m.text.as_str(), m.status)).collect();
    assert_eq!(statuses, [("one", Status::Read), ("two", Status::Read), ("answer", Status::Delivered)]);
}

/// Texts sent to someone offline, more than a page of them, all take the receipt that comes
/// after a reload: the loader keeps the sent messages not read yet.
#[tokio::test]
async fn receipts_after_a_reload_reach_every_unread_sent_message() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let page = sotto_messenger::history::PAGE_SIZE;
    for i in 0..page + 10 {
        say(&mut ada, &bo, &format!("m{i}")).await;
    }
    // The relay stores them (Sent); Bo is offline and reads them only after Ada reloads.
    let envelopes = std::mem::take(&mut ada.sent);
    for (id, _) in &envelopes {
        ada.frame(RelayFrame::Sent { id: *id }).await;
    }
    ada.reload().await;
    let chat = ConversationId::Direct(bo.m().address());
    assert_eq!(ada.m().messages(&chat).len(), page + 10, "every message Bo has not read is loaded");
    for (id, payload) in envelopes {
        bo.frame(RelayFrame::Deliver { id, received_at: 0, payload }).await;
    }
    let bo_chat = ConversationId::Direct(ada.m().address());
    let fx = bo.d.messenger.mark_read(&bo_chat, NOW, &mut OsEntropy);
    bo.apply(fx).await;
    bo.flush_to(&mut ada).await;
    assert!(ada.m().messages(&chat).iter().all(|m| m.status == Status::Read));
    // Stored as read: after another reload, one page loads, and the older ones read back as read.
    ada.reload().await;
    assert_eq!(ada.m().messages(&chat).len(), page);
    while let Some(reading) = ada.d.earlier(chat) {
        ada.d.add_page(reading.await.unwrap()).unwrap();
    }
    let statuses: Vec<Status> = ada.m().messages(&chat).iter().map(|m| m.status).collect();
    assert_eq!(statuses, vec![Status::Read; page + 10]);
}

/// What the relay sees of a message is its envelope's length: a receipt, a short text and a
/// hundred-character text are the same length; only a text past a block is longer.
#[tokio::test]
async fn envelope_lengths_do_not_tell_what_was_sent() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let mut lengths = Vec::new();
    for text in ["ok".to_string(), "x".repeat(100), "y".repeat(200)] {
        say(&mut ada, &bo, &text).await;
        lengths.push(ada.sent.last().unwrap().1.len());
    }
    ada.flush_to(&mut bo).await;
    let receipt = bo.sent.last().unwrap().1.len();
    assert_eq!([receipt, lengths[0], lengths[1]], [lengths[0]; 3], "{lengths:?} {receipt}");
    assert_eq!(lengths[2], lengths[0] + sotto_engine::consts::PADDING_BLOCK);
}

/// A channel post naming an admin list we do not hold yet waits for it, and is read once it
/// comes, even if later posts moved the cursor past it meanwhile.
#[test]
fn a_channel_post_waits_for_its_admin_list() {
    use sotto_engine::channel::{ChannelKey, ChannelLink, PostBody, sign_list};
    use sotto_shared::channel::ChannelState;
    let e = &mut OsEntropy;
    let owner = ChannelKey::generate(e).unwrap();
    let admin = ChannelKey::generate(e).unwrap();
    let link = ChannelLink::new("News", "", &owner, e).unwrap();
    let (v1, v2) = (
        sign_list(&owner, link.id, 1, vec![admin.public()]),
        sign_list(&owner, link.id, 2, vec![admin.public()]),
    );
    let (mut m, _) = Messenger::create("Bo", NOW, e).unwrap();
    let payload = sotto_messenger::channels::link_payload(&link);
    let (id, fx) = m.follow_channel(&payload, NOW, e).unwrap();
    assert!(matches!(fx.frames[..], [ClientFrame::SubscribeChannel { .. }]));
    let state = |lists: Vec<_>| {
        RelayFrame::ChannelState(Box::new(ChannelState {
            channel: id,
            lists,
            subscribers: 2,
            views: vec![],
            blocked: None,
        }))
    };
    let posted = |seq, list, text: &str, e: &mut OsEntropy| RelayFrame::Posted {
        topic: id.topic(),
        seq,
        received_at: 0,
        payload: postcard::to_allocvec(
            &link.post(&admin, list, &PostBody::Text(text.into()), NOW, e).unwrap(),
        )
        .unwrap(),
    };
    m.on_frame(state(vec![v1.clone()]), NOW, e);
    let fx = m.on_frame(posted(10, 2, "under the new list", e), NOW, e);
    assert!(matches!(fx.frames[..], [ClientFrame::ChannelCounts { .. }]), "asks for the list");
    let fx = m.on_frame(posted(12, 2, "another under it", e), NOW, e);
    assert!(fx.frames.is_empty(), "one question at a time");
    m.on_frame(posted(11, 1, "under the old list", e), NOW, e);
    let chat = ConversationId::Channel(id);
    assert_eq!(m.messages(&chat).len(), 1);
    // A relay cannot slip in a list the owner did not sign.
    let stranger = ChannelKey::generate(e).unwrap();
    let forged = sign_list(&stranger, id, 2, vec![stranger.public()]);
    m.on_frame(state(vec![v1.clone(), forged]), NOW, e);
    assert_eq!(m.messages(&chat).len(), 1);
    m.on_frame(state(vec![v1, v2]), NOW, e);
    let texts: Vec<&str> = m.messages(&chat).iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["under the old list", "under the new list", "another under it"]);
    assert_eq!(m.channel(&id).unwrap().subscribers, 2);
}

/// A channel post of ours that waited (offline, or refused for a while) is signed again with
/// the time it is sent, since the relay refuses one far from its clock.
#[test]
fn a_waiting_channel_post_is_signed_again_when_sent() {
    let e = &mut OsEntropy;
    let (mut m, _) = Messenger::create("Ada", NOW, e).unwrap();
    let (id, _) = m.create_channel("News", "", NOW, e).unwrap();
    let fx = m.send_text(&ConversationId::Channel(id), "hello", NOW, e).unwrap();
    let [ClientFrame::PublishPost { post, .. }] = &fx.frames[..] else { panic!("one post") };
    let first = post.clone();
    // Refused as off the clock ten minutes later: sent again at once, signed at the new time.
    let later = NOW + 600_000;
    let refusal = RelayFrame::Error {
        code: sotto_shared::ErrorCode::InvalidRequest,
        message: "too far".into(),
        id: Some(first.id()),
    };
    let fx = m.on_frame(refusal.clone(), later, e);
    let [ClientFrame::PublishPost { post, .. }] = &fx.frames[..] else { panic!("sent again") };
    assert_eq!((post.nonce, post.posted_at_ms), (first.nonce, later));
    assert_ne!(post.signature, first.signature);
    // Refused so again at once: it fails (the device's clock is off, not the post's wait).
    let fx = m.on_frame(refusal, later, e);
    assert!(fx.frames.is_empty());
    assert_eq!(m.messages(&ConversationId::Channel(id))[0].status, Status::Failed);
}

fn attachment(name: &str, caption: &str) -> sotto_engine::attachment::Attachment {
    use sotto_engine::attachment::{Attachment, AttachmentKind};
    Attachment {
        blob: sotto_shared::ids::BlobId([3; 16]),
        key: sotto_engine::file::FileKey::generate(&mut OsEntropy).unwrap(),
        digest: [4; 32],
        size: 5_000_000,
        name: name.into(),
        media_type: "image/png".into(),
        kind: AttachmentKind::Image { width: 640, height: 480, thumbnail: vec![7; 2_000] },
        caption: caption.into(),
    }
}

/// A file goes as a message like a text: the receiver's history holds its key, name and
/// thumbnail (sealed at rest with every record), also after a reload; a file past the limits
/// is refused before anything is sent.
#[tokio::test]
async fn a_file_crosses_a_direct_chat_and_is_kept_across_a_reload() {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    let chat = ConversationId::Direct(bo.m().address());
    let photo = attachment("beach.png", "");
    let fx = ada.d.messenger.send_file(&chat, photo.clone(), NOW, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    let events = ada.flush_to(&mut bo).await;
    let from_ada = ConversationId::Direct(ada.m().address());
    assert!(
        events.contains(&Event::Message {
            conversation: from_ada,
            name: "Ada".into(),
            text: "beach.png".into()
        }),
        "{events:?}"
    );
    for p in [&mut ada, &mut bo] {
        p.reload().await;
    }
    let got = bo.m().messages(&from_ada);
    let last = got.last().unwrap();
    assert_eq!(last.attachment.as_deref(), Some(&photo));
    assert!(!last.outgoing);
    let sent = ada.m().messages(&chat);
    assert_eq!(sent.last().unwrap().attachment.as_deref(), Some(&photo));
    let bad_name = sotto_engine::attachment::Attachment { name: "a/b".into(), ..photo };
    assert!(ada.d.messenger.send_file(&chat, bad_name, NOW, &mut OsEntropy).is_err());
    assert!(ada.sent.is_empty());
}

/// A channel's admin posts a photo with a caption; a follower reads both.
#[test]
fn a_channel_post_can_carry_a_file() {
    use sotto_engine::channel::{ChannelKey, ChannelLink, PostBody, sign_list};
    use sotto_shared::channel::ChannelState;
    let e = &mut OsEntropy;
    let owner = ChannelKey::generate(e).unwrap();
    let link = ChannelLink::new("News", "", &owner, e).unwrap();
    let list = sign_list(&owner, link.id, 1, vec![owner.public()]);
    let (mut m, _) = Messenger::create("Bo", NOW, e).unwrap();
    let (id, _) = m.follow_channel(&sotto_messenger::channels::link_payload(&link), NOW, e).unwrap();
    let state = ChannelState { channel: id, lists: vec![list], subscribers: 1, views: vec![], blocked: None };
    m.on_frame(RelayFrame::ChannelState(Box::new(state)), NOW, e);
    let photo = attachment("map.png", "the route");
    let post = link.post(&owner, 1, &PostBody::File(Box::new(photo.clone())), NOW, e).unwrap();
    let payload = postcard::to_allocvec(&post).unwrap();
    m.on_frame(RelayFrame::Posted { topic: id.topic(), seq: 1, received_at: 0, payload }, NOW, e);
    let got = m.messages(&ConversationId::Channel(id));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "the route");
    assert_eq!(got[0].attachment.as_deref(), Some(&photo));
    // A follower may not write here, nor to someone unknown: the app asks before it uploads.
    assert_eq!(m.can_write(&ConversationId::Channel(id)), Err(MessengerError::NotChannelAdmin));
    let nobody = ConversationId::Direct(sotto_shared::Address([9; 32]));
    assert_eq!(m.can_write(&nobody), Err(MessengerError::UnknownContact));
}
