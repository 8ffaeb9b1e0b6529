//! The relay's core job, against the real binary: authenticated mailboxes, durable
//! store-and-forward, prekeys, and limits.

use sotto_engine::Identity;
use sotto_shared::frames::{OneTimePrekey, SignedPrekey, auth_message, signed_prekey_message};
use sotto_shared::{ClientFrame, ErrorCode, MessageId, RelayFrame};
use sotto_tests::{Authed, Conn, LIFTED, Relay, message_id, send_frame as send};
use std::collections::HashSet;
use std::time::Duration;

async fn expect_sent(conn: &mut Conn, id: MessageId) {
    match conn.recv().await {
        Some(RelayFrame::Sent { id: got }) => assert_eq!(got, id),
        other => panic!("expected Sent({id:?}), got {other:?}"),
    }
}

async fn expect_deliver(conn: &mut Conn) -> (MessageId, Vec<u8>) {
    match conn.recv().await {
        Some(RelayFrame::Deliver { id, payload, .. }) => (id, payload),
        other => panic!("expected Deliver, got {other:?}"),
    }
}

async fn expect_silence(conn: &mut Conn) {
    if let Ok(Some(f)) = conn.recv_within(Duration::from_millis(300)).await {
        panic!("expected nothing, got {f:?}");
    }
}

#[tokio::test]
async fn offline_then_online_delivery_in_order_with_ack_and_redelivery() {
    let relay = Relay::start(&[]).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;

    // Sealed sender: an unauthenticated connection may send after hello.
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let ids: Vec<MessageId> = (0..5).map(|_| message_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        sender.send(&send(bob.address(), *id, format!("offline {i}").as_bytes())).await;
        expect_sent(&mut sender, *id).await;
    }

    // Bob connects: the backlog arrives oldest first.
    let Authed { mut conn, queued, address } = Conn::login(&relay, &bob).await;
    assert_eq!(address, bob.address());
    assert_eq!(queued, 5);
    for (i, id) in ids.iter().enumerate() {
        let (got, body) = expect_deliver(&mut conn).await;
        assert_eq!((got, body), (*id, format!("offline {i}").into_bytes()));
    }
    // Online: pushed at once.
    let live = message_id();
    sender.send(&send(bob.address(), live, b"online")).await;
    expect_sent(&mut sender, live).await;
    assert_eq!(expect_deliver(&mut conn).await.0, live);

    // Ack three; the other three come again after a reconnect.
    conn.send(&ClientFrame::Ack { ids: ids[..3].to_vec() }).await;
    conn.send(&ClientFrame::Ping { nonce: 1 }).await;
    assert_eq!(conn.recv().await, Some(RelayFrame::Pong { nonce: 1 }));
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Authed { mut conn, queued, .. } = Conn::login(&relay, &bob).await;
    assert_eq!(queued, 3);
    let again: Vec<MessageId> = vec![
        expect_deliver(&mut conn).await.0,
        expect_deliver(&mut conn).await.0,
        expect_deliver(&mut conn).await.0,
    ];
    assert_eq!(again, vec![ids[3], ids[4], live]);
    expect_silence(&mut conn).await;

    // Re-sending an id already stored is idempotent: Sent again, stored once. (An online
    // recipient may see the resend pushed again: delivery is at least once, deduplicated by id.)
    sender.send(&send(bob.address(), ids[4], b"offline 4")).await;
    expect_sent(&mut sender, ids[4]).await;
    if let Ok(Some(frame)) = conn.recv_within(Duration::from_millis(300)).await {
        assert!(matches!(frame, RelayFrame::Deliver { id, .. } if id == ids[4]), "{frame:?}");
    }
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(Conn::login(&relay, &bob).await.queued, 3);
}

#[tokio::test]
async fn two_tabs_of_one_identity_both_receive_and_one_ack_clears() {
    let relay = Relay::start(&[]).await;
    let bob = Identity::generate().unwrap();
    let mut tab1 = Conn::login(&relay, &bob).await.conn;
    let mut tab2 = Conn::login(&relay, &bob).await.conn;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let id = message_id();
    sender.send(&send(bob.address(), id, b"hi")).await;
    expect_sent(&mut sender, id).await;
    assert_eq!(expect_deliver(&mut tab1).await.0, id);
    assert_eq!(expect_deliver(&mut tab2).await.0, id);
    tab2.send(&ClientFrame::Ack { ids: vec![id] }).await;
    tab2.send(&ClientFrame::Ping { nonce: 2 }).await;
    assert_eq!(tab2.recv().await, Some(RelayFrame::Pong { nonce: 2 }));
    drop(tab1);
    // Acks have no reply; give the writer its commit window.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tab3 = Conn::login(&relay, &bob).await;
    assert_eq!(tab3.queued, 0);
}

#[tokio::test]
async fn expired_envelopes_are_never_delivered_and_are_purged() {
    let relay = Relay::start(&["--purge-interval-secs", "1"]).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let short = message_id();
    sender
        .send(&ClientFrame::Send { id: short, to: bob.address(), ttl_secs: 1, payload: b"x".to_vec() })
        .await;
    expect_sent(&mut sender, short).await;
    let long = message_id();
    sender.send(&send(bob.address(), long, b"y")).await;
    expect_sent(&mut sender, long).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut bob_conn = Conn::login(&relay, &bob).await.conn;
    assert_eq!(expect_deliver(&mut bob_conn).await.0, long);
    expect_silence(&mut bob_conn).await;
    let metrics = reqwest::get(relay.http("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sotto_envelopes_expired_total 1"), "{metrics}");

    // A ttl of zero or past the maximum is refused with its own error.
    let bad = message_id();
    sender.send(&ClientFrame::Send { id: bad, to: bob.address(), ttl_secs: 0, payload: vec![] }).await;
    assert!(matches!(
        sender.recv().await,
        Some(RelayFrame::Error { code: ErrorCode::InvalidRequest, id: Some(i), .. }) if i == bad
    ));
}

fn prekeys(identity: &Identity, ids: std::ops::Range<u32>) -> ClientFrame {
    let key = [7u8; 32];
    ClientFrame::UploadPrekeys {
        signed_prekey: SignedPrekey { id: 1, key, signature: identity.sign(&signed_prekey_message(1, &key)) },
        one_time: ids.map(|id| OneTimePrekey { id, key: [id as u8; 32] }).collect(),
    }
}

#[tokio::test]
async fn prekeys_are_handed_out_once_and_the_owner_is_told_when_low() {
    let relay = Relay::start(&[]).await;
    let alice = Identity::generate().unwrap();
    let mut owner = Conn::login(&relay, &alice).await.conn;

    // A signed prekey whose signature is not the owner's is refused.
    let other = Identity::generate().unwrap();
    let forged = prekeys(&other, 0..1);
    owner.send(&forged).await;
    assert!(matches!(owner.recv().await, Some(RelayFrame::Error { code: ErrorCode::InvalidRequest, .. })));

    owner.send(&prekeys(&alice, 0..3)).await;
    assert_eq!(owner.recv().await, Some(RelayFrame::PrekeysStored { one_time: 3 }));

    let mut fetcher = Conn::connect(&relay).await;
    fetcher.hello().await;
    let mut seen = HashSet::new();
    for round in 0..4 {
        fetcher.send(&ClientFrame::FetchBundle { address: alice.address() }).await;
        let bundle = match fetcher.recv().await {
            Some(RelayFrame::Bundle { address, bundle: Some(b) }) => {
                assert_eq!(address, alice.address());
                b
            }
            other => panic!("expected a bundle, got {other:?}"),
        };
        assert_eq!(bundle.identity, alice.public());
        match bundle.one_time_prekey {
            Some(k) => assert!(seen.insert(k.id), "one-time prekey {} handed out twice", k.id),
            None => assert_eq!(round, 3, "ran out early"),
        }
        // The owner hears it once; more notices within a minute would only make a victim of
        // prekey draining mint keys without end.
        if round == 0 {
            assert_eq!(owner.recv().await, Some(RelayFrame::PrekeysLow { remaining: 2 }));
        }
    }
    assert_eq!(seen.len(), 3);
    expect_silence(&mut owner).await;

    // Unknown mailboxes have no bundle; unauthenticated uploads are refused.
    fetcher.send(&ClientFrame::FetchBundle { address: other.address() }).await;
    assert_eq!(fetcher.recv().await, Some(RelayFrame::Bundle { address: other.address(), bundle: None }));
    fetcher.send(&prekeys(&other, 0..1)).await;
    assert!(matches!(
        fetcher.recv().await,
        Some(RelayFrame::Error { code: ErrorCode::NotAuthenticated, .. })
    ));

    // On login, an owner low on prekeys hears about it (if nobody told it within the minute).
    drop(owner);
    let bob = Identity::generate().unwrap();
    let mut bob_owner = Conn::login(&relay, &bob).await.conn;
    bob_owner.send(&prekeys(&bob, 0..1)).await;
    assert_eq!(bob_owner.recv().await, Some(RelayFrame::PrekeysStored { one_time: 1 }));
    let _ = bob_owner.ws.close(None).await;
    assert_eq!(bob_owner.recv().await, None);
    fetcher.send(&ClientFrame::FetchBundle { address: bob.address() }).await;
    assert!(matches!(fetcher.recv().await, Some(RelayFrame::Bundle { bundle: Some(_), .. })));
    let again = Conn::login(&relay, &bob).await;
    let mut conn = again.conn;
    assert_eq!(conn.recv().await, Some(RelayFrame::PrekeysLow { remaining: 0 }));
}

#[tokio::test]
async fn nobody_reads_another_mailbox_and_signatures_cannot_be_forged_or_replayed() {
    let relay = Relay::start(&[]).await;
    let alice = Identity::generate().unwrap();
    let mallory = Identity::generate().unwrap();

    // Mallory claims Alice's identity but can only sign with her own key.
    let mut conn = Conn::connect(&relay).await;
    let challenge = conn.hello().await;
    let signature = mallory.sign(&auth_message(&relay.http(""), &challenge));
    conn.send(&ClientFrame::Authenticate { identity: Box::new(alice.public()), signature }).await;
    assert!(matches!(conn.recv().await, Some(RelayFrame::Error { code: ErrorCode::AuthFailed, .. })));
    assert_eq!(conn.recv().await, None, "closed after a failed login");

    // A signature Alice made for one connection's challenge is useless on another (replay).
    let mut first = Conn::connect(&relay).await;
    let c1 = first.hello().await;
    let captured = alice.sign(&auth_message(&relay.http(""), &c1));
    let mut replay = Conn::connect(&relay).await;
    replay.hello().await;
    replay.send(&ClientFrame::Authenticate { identity: Box::new(alice.public()), signature: captured }).await;
    assert!(matches!(replay.recv().await, Some(RelayFrame::Error { code: ErrorCode::AuthFailed, .. })));

    // A signature bound to another origin (a malicious relay relaying our challenge) fails.
    let mut other_origin = Conn::connect(&relay).await;
    let c = other_origin.hello().await;
    let sig = alice.sign(&auth_message("https://evil.example", &c));
    other_origin
        .send(&ClientFrame::Authenticate { identity: Box::new(alice.public()), signature: sig })
        .await;
    assert!(matches!(other_origin.recv().await, Some(RelayFrame::Error { code: ErrorCode::AuthFailed, .. })));

    // Unauthenticated connections cannot ack (and so cannot delete) anything.
    let mut anon = Conn::connect(&relay).await;
    anon.hello().await;
    anon.send(&ClientFrame::Ack { ids: vec![message_id()] }).await;
    assert!(matches!(anon.recv().await, Some(RelayFrame::Error { code: ErrorCode::NotAuthenticated, .. })));

    // Mail for Alice goes to Alice only.
    Conn::open_mailbox(&relay, &alice).await;
    let id = message_id();
    anon.send(&send(alice.address(), id, b"for alice")).await;
    expect_sent(&mut anon, id).await;
    let mut mallory_conn = Conn::login(&relay, &mallory).await.conn;
    expect_silence(&mut mallory_conn).await;
    let mut alice_conn = Conn::login(&relay, &alice).await.conn;
    assert_eq!(expect_deliver(&mut alice_conn).await.0, id);
}

#[tokio::test]
async fn bad_input_gets_errors_and_others_are_unaffected() {
    // The stranger quota is lifted: this is about rates (tests/delivery.rs covers strangers).
    let relay = Relay::start(&[
        "--rate-per-connection",
        "50",
        "--max-connections-per-ip",
        "6",
        "--max-stranger-envelopes",
        "100000",
    ])
    .await;
    let bob = Identity::generate().unwrap();
    let mut bob_conn = Conn::login(&relay, &bob).await.conn;
    let mut good = Conn::connect(&relay).await;
    good.hello().await;

    let mut bad = Conn::connect(&relay).await;
    // Before hello, nothing but hello or ping.
    bad.send(&send(bob.address(), message_id(), b"x")).await;
    assert!(matches!(bad.recv().await, Some(RelayFrame::Error { code: ErrorCode::NotAuthenticated, .. })));
    bad.hello().await;
    // Random bytes, a truncated frame, an oversized frame, an oversized envelope.
    bad.send_raw(vec![1, 0xde, 0xad, 0xbe, 0xef, 0x99, 0x42]).await;
    assert!(matches!(bad.recv().await, Some(RelayFrame::Error { code: ErrorCode::Malformed, .. })));
    let full = sotto_shared::encode_client(&send(bob.address(), message_id(), &[1; 100]));
    bad.send_raw(full[..full.len() / 2].to_vec()).await;
    assert!(matches!(bad.recv().await, Some(RelayFrame::Error { code: ErrorCode::Malformed, .. })));
    bad.send_raw(vec![1; sotto_shared::limits::MAX_FRAME_BYTES + 10]).await;
    assert!(matches!(bad.recv().await, Some(RelayFrame::Error { code: ErrorCode::TooLarge, .. })));
    let big = message_id();
    bad.send(&send(bob.address(), big, &vec![0; sotto_shared::limits::MAX_ENVELOPE_BYTES + 1])).await;
    assert!(
        matches!(bad.recv().await, Some(RelayFrame::Error { code: ErrorCode::TooLarge, id: Some(i), .. }) if i == big)
    );

    // A flood past the per-connection rate gets RateLimited errors naming the sends...
    let mut limited = 0;
    let mut sent = 0;
    for _ in 0..300 {
        bad.send(&send(bob.address(), message_id(), b"flood")).await;
    }
    // ...while the good client's traffic flows during the abuse.
    let id = message_id();
    good.send(&send(bob.address(), id, b"important")).await;
    expect_sent(&mut good, id).await;
    loop {
        match bad.recv_within(Duration::from_secs(2)).await {
            Ok(Some(RelayFrame::Error { code: ErrorCode::RateLimited, id: Some(_), .. })) => limited += 1,
            Ok(Some(RelayFrame::Sent { .. })) => sent += 1,
            Ok(Some(other)) => panic!("unexpected {other:?}"),
            _ => break,
        }
        if limited + sent == 300 {
            break;
        }
    }
    assert_eq!(limited + sent, 300);
    assert!(limited >= 150, "rate limit hit only {limited} times");
    let mut got_important = false;
    for _ in 0..=sent {
        if expect_deliver(&mut bob_conn).await.0 == id {
            got_important = true;
            break;
        }
    }
    assert!(got_important);

    // Past the hard cap the connection is closed (after an error frame); others carry on.
    bad.send_raw(vec![1; 300 * 1024]).await;
    loop {
        match bad.recv_within(Duration::from_secs(5)).await {
            Ok(Some(RelayFrame::Error { .. })) => continue,
            Ok(None) => break,
            other => panic!("expected close, got {other:?}"),
        }
    }

    // An unknown version is named, then the connection closes.
    let mut old = Conn::connect(&relay).await;
    old.send_raw(vec![9, 0, 0]).await;
    assert!(matches!(old.recv().await, Some(RelayFrame::Error { code: ErrorCode::UnsupportedVersion, .. })));
    assert_eq!(old.recv().await, None);

    good.send(&ClientFrame::Ping { nonce: 5 }).await;
    assert_eq!(good.recv().await, Some(RelayFrame::Pong { nonce: 5 }));

    // Too many connections from one address: each one past the limit hears why.
    let mut extra = Vec::new();
    let mut refused = false;
    for _ in 0..6 {
        let mut c = Conn::connect(&relay).await;
        if let Ok(Some(RelayFrame::Error { code: ErrorCode::TooManyConnections, .. })) =
            c.recv_within(Duration::from_millis(300)).await
        {
            refused = true;
            break;
        }
        extra.push(c);
    }
    assert!(refused, "the per-IP connection limit was never applied");

    let metrics = reqwest::get(relay.http("/metrics")).await.unwrap().text().await.unwrap();
    for needle in [
        "sotto_errors_total{kind=\"rate_limited\"}",
        "sotto_errors_total{kind=\"malformed\"}",
        "sotto_errors_total{kind=\"too_large\"}",
        "sotto_errors_total{kind=\"too_many_connections\"}",
        "sotto_connections ",
        "sotto_envelopes_queued ",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn a_full_mailbox_says_so() {
    let relay = Relay::start(&["--max-queued-envelopes", "2"]).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    for _ in 0..2 {
        let id = message_id();
        sender.send(&send(bob.address(), id, b"m")).await;
        expect_sent(&mut sender, id).await;
    }
    let id = message_id();
    sender.send(&send(bob.address(), id, b"m")).await;
    assert!(
        matches!(sender.recv().await, Some(RelayFrame::Error { code: ErrorCode::MailboxFull, id: Some(i), .. }) if i == id)
    );
}

/// kill -9 while a client streams sends: every envelope acknowledged with `Sent` survives and
/// is delivered, each exactly once after deduplication by id.
#[tokio::test]
async fn acknowledged_sends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let flags = LIFTED;
    let mut relay = Relay::start_in(dir.path(), "127.0.0.1:0", flags).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;

    // Stream sends without waiting; collect Sent acks concurrently; kill mid-stream.
    let (mut tx, mut rx) = futures_util::StreamExt::split(sender.ws);
    let to = bob.address();
    let acked = tokio::spawn(async move {
        let mut acked = HashSet::new();
        while let Some(Ok(msg)) = futures_util::StreamExt::next(&mut rx).await {
            if let tokio_tungstenite::tungstenite::Message::Binary(b) = msg
                && let Ok(RelayFrame::Sent { id }) = sotto_shared::decode_relay(&b)
            {
                acked.insert(id);
            }
        }
        acked
    });
    let writer = tokio::spawn(async move {
        use futures_util::SinkExt;
        for i in 0u32..5_000_000 {
            let frame = sotto_shared::encode_client(&send(to, message_id(), &i.to_be_bytes()));
            if tx.send(tokio_tungstenite::tungstenite::Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    relay.kill().await;
    let _ = writer.await;
    let acked = acked.await.unwrap();
    assert!(!acked.is_empty(), "nothing was acknowledged before the kill");

    let relay = Relay::start_in(dir.path(), "127.0.0.1:0", flags).await;
    let Authed { mut conn, queued, .. } = Conn::login(&relay, &bob).await;
    assert!(queued as usize >= acked.len(), "{queued} queued < {} acknowledged", acked.len());
    let mut received = HashSet::new();
    for _ in 0..queued {
        let (id, _) = expect_deliver(&mut conn).await;
        received.insert(id);
    }
    let lost: Vec<_> = acked.difference(&received).collect();
    assert!(lost.is_empty(), "{} acknowledged envelopes lost", lost.len());
    eprintln!("{} acknowledged before SIGKILL, {} stored, none lost", acked.len(), queued);
}
