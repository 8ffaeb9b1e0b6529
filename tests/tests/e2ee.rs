//! Two people talk end to end through the real relay binary, each running the messenger
//! through its driver (as the web app and bots do) over a memory store, and the relay's data
//! directory and log never contain what they said, nor tie a send to its sender.

use sotto_engine::random::OsEntropy;
use sotto_messenger::{Connection, ConversationId, Driver, Effects, Event};
use sotto_shared::{ClientFrame, RelayFrame};
use sotto_tests::client::{Client as Person, now};
use sotto_tests::{Conn, Relay, message_id};
use std::collections::HashSet;

#[tokio::test]
async fn end_to_end_through_the_relay_leaves_no_plaintext_behind() {
    let mut relay = Relay::start(&["--log", "debug"]).await;
    let mut alice = Person::join(&relay.http(""), "Alice").await;
    let mut bob = Person::join(&relay.http(""), "Bob").await;

    // Bob accepts Alice's invite link; his introduction reaches her through the relay.
    let (link, fx) = alice.d.messenger.create_invite(&relay.http(""), now(), &mut OsEntropy).unwrap();
    let step = alice.d.apply(fx);
    alice.run(step).await;
    let preview =
        bob.d.messenger.preview_invite(link.rsplit('/').next().unwrap(), &relay.http(""), now()).unwrap();
    let step = bob.d.act(|m| m.accept_invite(&preview, now(), &mut OsEntropy)).unwrap();
    bob.run(step).await;
    let bob_address = bob.address();
    while alice.d.messenger.contact(&bob_address).is_none() {
        alice.pump().await;
    }

    let markers: Vec<String> = (0..10).map(|i| format!("PLAINTEXT-MARKER-{i}-zebra-quartz")).collect();
    for (i, m) in markers.iter().enumerate() {
        if i % 2 == 0 {
            alice.say(bob.address(), m).await;
            assert_eq!(&bob.hear().await, m);
        } else {
            bob.say(alice.address(), m).await;
            assert_eq!(&alice.hear().await, m);
        }
    }
    // Bob goes offline; Alice writes; Bob comes back, reloaded from his store, and reads it.
    let offline = "PLAINTEXT-MARKER-offline-zebra-quartz";
    let bob_store = bob.d.store().clone();
    drop(bob);
    alice.say(bob_address, offline).await;
    let reloaded = Driver::load(bob_store, Connection::new(&relay.http(""), "sotto-tests")).await.unwrap();
    let mut bob = Person::online(&relay.http(""), reloaded).await;
    assert_eq!(bob.hear().await, offline);
    let chat = ConversationId::Direct(alice.address());
    assert_eq!(bob.d.messenger.messages(&chat).len(), markers.len() + 1);

    // A control: bytes the relay does store in the clear (an opaque payload to an offline
    // mailbox) are found by the same search, so the search below can fail.
    let canary = b"CONTROL-CANARY-stored-as-given";
    let mut anon = Conn::connect(&relay).await;
    anon.hello().await;
    let id = message_id();
    let away = sotto_engine::Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &away).await;
    let nobody = away.address();
    anon.send(&ClientFrame::Send { id, to: nobody, ttl_secs: 60, payload: canary.to_vec() }).await;
    assert_eq!(anon.recv().await, Some(RelayFrame::Sent { id }));

    assert!(relay.terminate().await);
    let log = relay.log();
    assert_sends_are_anonymous(&log, markers.len() + 1, 0);
    let mut haystack = log.into_bytes();
    for entry in sotto_tests::files_under(&relay.data_dir) {
        haystack.extend(std::fs::read(entry).unwrap());
    }
    assert!(haystack.windows(canary.len()).any(|w| w == canary), "the search finds stored bytes");
    for m in markers.iter().map(String::as_str).chain([offline]) {
        for needle in [m.as_bytes(), b"zebra-quartz".as_slice()] {
            assert!(!haystack.windows(needle.len()).any(|w| w == needle), "{m} leaked to the relay");
        }
    }
}

/// Someone who writes without an invite, through the real relay: a request on the other side,
/// answered by nothing until accepted; then they talk.
#[tokio::test]
async fn a_stranger_is_a_request_until_accepted_through_the_relay() {
    let mut relay = Relay::start(&["--log", "debug"]).await;
    let origin = relay.http("");
    let mut ada = Person::join(&origin, "Ada").await;
    let mut cy = Person::join(&origin, "Cy").await;
    let (ada_at, cy_at) = (ada.address(), cy.address());
    cy.write_to(ada_at).await;
    cy.say(ada_at, "hello, we have not met").await;
    let name = ada.wait_for(|e| match e {
        Event::Request { address, name } if *address == cy_at => Some(name.clone()),
        Event::Message { .. } | Event::ContactAdded(_) => panic!("a stranger got through: {e:?}"),
        _ => None,
    });
    assert_eq!(name.await, "Cy");
    while ada.d.messenger.messages(&ConversationId::Direct(cy_at)).is_empty() {
        ada.pump().await;
    }
    assert!(ada.d.messenger.contact(&cy_at).is_none());
    assert_eq!(ada.d.messenger.pending(), 0, "no receipt, nothing, goes back");

    let step = ada.d.act(|m| m.accept_request(&cy_at, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    ada.say(cy_at, "nice to meet you").await;
    assert_eq!(cy.hear().await, "nice to meet you");
    assert_eq!(
        cy.d.messenger.contact(&ada_at).map(|c| c.name.as_str()),
        Some("Ada"),
        "she introduced herself"
    );
    assert!(relay.terminate().await);
    // Cy's bundle fetch and every send left on connections that never logged in.
    assert_sends_are_anonymous(&relay.log(), 3, 1);
}

/// The relay's debug log names the connection of every login, send and bundle fetch: no
/// connection that logged in ever sent or fetched, and each names only the address it is for.
/// At least `sends` sends and `fetches` fetches were logged, so the check cannot pass on a log
/// that says nothing.
fn assert_sends_are_anonymous(log: &str, sends: usize, fetches: usize) {
    let conn_of = |line: &str| {
        let at = line.find("conn=")? + 5;
        line[at..].split(|c: char| !c.is_ascii_digit()).next().map(str::to_owned)
    };
    let logged_in: HashSet<String> =
        log.lines().filter(|l| l.contains("authenticated")).filter_map(conn_of).collect();
    let send_lines: Vec<&str> = log.lines().filter(|l| l.contains(" send conn=")).collect();
    let fetch_lines: Vec<&str> = log.lines().filter(|l| l.contains(" bundle fetch conn=")).collect();
    assert!(logged_in.len() >= 2, "logins are logged with their connection:\n{log}");
    assert!(send_lines.len() >= sends, "{} sends logged, {sends} expected:\n{log}", send_lines.len());
    assert!(fetch_lines.len() >= fetches, "{} fetches logged, {fetches} expected:\n{log}", fetch_lines.len());
    for line in send_lines.into_iter().chain(fetch_lines) {
        let conn = conn_of(line).expect("a send names its connection");
        assert!(!logged_in.contains(&conn), "a logged-in connection sent: {line}");
        // The recipient, and nobody else.
        assert_eq!(line.matches("Address(").count(), 1, "{line}");
    }
}

/// Typing notices go live through the real relay: to a contact who is connected, at once; to
/// one who is not, nowhere (nothing is stored or delivered later); with a made-up token, never.
/// A silent contact gets a bounded number, so the message keys they skip stay few.
#[tokio::test]
async fn typing_notices_go_live_and_are_never_stored() {
    let mut relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Person::join(&origin, "Ada").await;
    let mut bo = Person::join(&origin, "Bo").await;
    ada.befriend(&mut bo, &origin).await;
    bo.say(ada.address(), "hi Ada").await;
    assert_eq!(ada.hear().await, "hi Ada");
    let (to_bo, to_ada) = (ConversationId::Direct(bo.address()), ConversationId::Direct(ada.address()));

    // A real notice under a made-up token is dropped by the relay; under Ada's token it comes.
    let fx = ada.d.messenger.typing(&to_bo, true, now(), &mut OsEntropy).unwrap();
    let Some(ClientFrame::SendLive { to, token, payload }) = fx.frames.first().cloned() else {
        panic!("no live frame")
    };
    let step = ada.d.apply(Effects { frames: Vec::new(), ..fx });
    ada.run(step).await;
    let mut anon = Conn::connect(&relay).await;
    anon.hello().await;
    anon.send(&ClientFrame::SendLive { to, token: [7; 32], payload: payload.clone() }).await;
    let quiet = bo.pump_within(std::time::Duration::from_millis(300)).await;
    assert!(quiet.is_none_or(|events| events.iter().all(|e| !matches!(e, Event::Typing { .. }))));
    anon.send(&ClientFrame::SendLive { to, token, payload }).await;
    let typing = bo.wait_for(|e| match e {
        Event::Typing { conversation, typing } => Some((*conversation, *typing)),
        _ => None,
    });
    assert_eq!(typing.await, (to_ada, true));

    // Bo goes away: Ada's notices are dropped, and at most `MAX_LIVE_PER_TURN` are even sent.
    let (bo_store, bo_at) = (bo.d.store().clone(), bo.address());
    drop(bo);
    let mut sent = 0;
    for _ in 0..2 * sotto_messenger::typing::MAX_LIVE_PER_TURN {
        let step = ada.d.act(|m| m.typing(&to_bo, true, now(), &mut OsEntropy)).unwrap();
        sent += usize::from(step.commit.is_some());
        ada.run(step).await;
    }
    assert_eq!(sent, sotto_messenger::typing::MAX_LIVE_PER_TURN as usize - 1);
    // An oversized one is refused in words (the only answer a live envelope ever gets).
    anon.send(&ClientFrame::SendLive { to: ada.address(), token: [7; 32], payload: vec![1; 4096] }).await;
    assert!(matches!(
        anon.recv().await,
        Some(RelayFrame::Error { code: sotto_shared::ErrorCode::TooLarge, .. })
    ));

    // Back, Bo gets what was stored (Ada's text) and no typing notice; the session still reads.
    ada.say(bo_at, "still there?").await;
    let reloaded = Driver::load(bo_store, Connection::new(&origin, "sotto-tests")).await.unwrap();
    let mut bo = Person::online(&origin, reloaded).await;
    let events = bo.wait_for(|e| match e {
        Event::Message { text, .. } => Some(text.clone()),
        Event::Typing { .. } => panic!("a typing notice was kept for later"),
        _ => None,
    });
    assert_eq!(events.await, "still there?");
    assert!(relay.terminate().await);
}
