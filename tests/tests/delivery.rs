//! Delivery under concurrency, against the real binary: every envelope answered `Sent` reaches
//! the recipient's open connection in order, at once, and nothing refused is ever pushed.

use futures_util::{SinkExt, StreamExt};
use sotto_engine::Identity;
use sotto_shared::{Address, ClientFrame, ErrorCode, MessageId, RelayFrame, decode_relay, encode_client};
use sotto_tests::{Conn, LIFTED, Relay, message_id, send_frame as send};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// A sender that streams `count` envelopes to `to` without waiting, and reports which were
/// answered `Sent`, in the order it sent them.
async fn stream_sends(relay: &Relay, to: Address, count: usize, pace: Option<Duration>) -> Vec<MessageId> {
    let mut conn = Conn::connect(relay).await;
    conn.hello().await;
    let (mut tx, mut rx) = conn.ws.split();
    let ids: Vec<MessageId> = (0..count).map(|_| message_id()).collect();
    let sending = ids.clone();
    let writer = tokio::spawn(async move {
        for (i, id) in sending.into_iter().enumerate() {
            let frame = encode_client(&send(to, id, &(i as u32).to_be_bytes()));
            tx.send(Message::Binary(frame.into())).await.expect("send");
            if let Some(pace) = pace {
                tokio::time::sleep(pace).await;
            }
        }
        tx
    });
    let mut sent = HashSet::new();
    while sent.len() < count {
        let msg = tokio::time::timeout(Duration::from_secs(20), rx.next()).await.expect("replies in time");
        let Some(Ok(Message::Binary(b))) = msg else { panic!("sender connection closed") };
        match decode_relay(&b).expect("valid frame") {
            RelayFrame::Sent { id } => {
                sent.insert(id);
            }
            other => panic!("expected Sent, got {other:?}"),
        }
    }
    drop(writer.await);
    ids.into_iter().filter(|id| sent.contains(id)).collect()
}

/// The recipient: reads deliveries, acknowledges them, and forwards each id to `out`.
fn receive_and_ack(conn: Conn, out: mpsc::UnboundedSender<MessageId>) -> tokio::task::JoinHandle<()> {
    let (mut tx, mut rx) = conn.ws.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            let Message::Binary(b) = msg else { continue };
            let mut ids = Vec::new();
            if let Ok(RelayFrame::Deliver { id, .. }) = decode_relay(&b) {
                ids.push(id);
            }
            for id in &ids {
                let _ = out.send(*id);
            }
            if !ids.is_empty() {
                let ack = encode_client(&ClientFrame::Ack { ids });
                if tx.send(Message::Binary(ack.into())).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// Collects deliveries until every id in `expected` has arrived (or `within` passes).
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<MessageId>,
    expected: usize,
    within: Duration,
) -> Vec<MessageId> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < expected {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(id)) => got.push(id),
            _ => break,
        }
    }
    got
}

/// Checks that `delivered` holds each sender's `Sent` ids exactly once and in the order sent.
fn assert_complete_and_ordered(per_sender: &[Vec<MessageId>], delivered: &[MessageId]) {
    let position: HashMap<MessageId, usize> = delivered.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    assert_eq!(position.len(), delivered.len(), "an envelope was delivered twice");
    let total: usize = per_sender.iter().map(Vec::len).sum();
    let missing = per_sender.iter().flatten().filter(|id| !position.contains_key(id)).count();
    assert_eq!(missing, 0, "{missing} of {total} envelopes answered Sent never reached the online recipient");
    for ids in per_sender {
        let order: Vec<usize> = ids.iter().map(|id| position[id]).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "a sender's envelopes arrived out of order");
    }
}

/// `senders` senders stream `each` envelopes at once to `to`; every `Sent` one must then be
/// delivered (within 10 s), once, in each sender's order.
async fn concurrent_sends_all_arrive(
    relay: &Relay,
    to: Address,
    senders: usize,
    each: usize,
    delivered: &mut mpsc::UnboundedReceiver<MessageId>,
) {
    let streams: Vec<_> = (0..senders).map(|_| stream_sends(relay, to, each, None)).collect();
    let per_sender = futures_util::future::join_all(streams).await;
    let total: usize = per_sender.iter().map(Vec::len).sum();
    assert_eq!(total, senders * each, "every send was answered Sent");
    let got = collect(delivered, total, Duration::from_secs(10)).await;
    assert_complete_and_ordered(&per_sender, &got);
}

#[tokio::test]
async fn fifty_concurrent_senders_reach_one_online_recipient_completely_and_in_order() {
    let relay = Relay::start(LIFTED).await;
    let bob = Identity::generate().unwrap();
    let bob_conn = Conn::login(&relay, &bob).await.conn;
    let (out, mut delivered) = mpsc::unbounded_channel();
    let reader = receive_and_ack(bob_conn, out);

    // Several rounds: the race this guards against showed up about once in 40,000 envelopes.
    let started = Instant::now();
    let mut rounds = 0;
    while rounds < 2 || (started.elapsed() < Duration::from_secs(6) && rounds < 8) {
        // Promptly: without reconnecting, within a few seconds.
        concurrent_sends_all_arrive(&relay, bob.address(), 50, 200, &mut delivered).await;
        rounds += 1;
    }
    eprintln!("{rounds} rounds of 50 × 200 delivered completely and in order");
    reader.abort();
}

/// A reader whose outbound queue is always full (one byte allowed) gets every envelope by the
/// lag path: marked lagging at each push, it waits for the commit and re-reads the store. All
/// arrive, once each and in order, while 20 senders stream concurrently.
#[tokio::test]
async fn a_reader_that_cannot_keep_up_catches_up_from_the_store_in_order() {
    let mut flags = LIFTED.to_vec();
    flags.extend(["--max-outbound-bytes", "1"]);
    let relay = Relay::start(&flags).await;
    let bob = Identity::generate().unwrap();
    let bob_conn = Conn::login(&relay, &bob).await.conn;
    let (out, mut delivered) = mpsc::unbounded_channel();
    let reader = receive_and_ack(bob_conn, out);
    concurrent_sends_all_arrive(&relay, bob.address(), 20, 100, &mut delivered).await;
    reader.abort();
}

/// A login while envelopes stream in: the whole backlog promised by `Authenticated{queued}`
/// arrives first, oldest first, then the live ones, none skipped. The relay is told to hold
/// the login between listing the connection as online and its writer learning the mailbox, so
/// live pushes surely land in that window.
#[tokio::test]
async fn a_login_during_a_stream_of_sends_gets_the_whole_backlog_then_the_live_ones() {
    let mut flags = LIFTED.to_vec();
    flags.extend(["--test-attach-delay-ms", "300"]);
    let relay = Relay::start(&flags).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let backlog = stream_sends(&relay, bob.address(), 500, None).await;
    assert_eq!(backlog.len(), 500);

    // Keep sending, paced, across the login.
    let stream = {
        let relay = &relay;
        stream_sends(relay, bob.address(), 400, Some(Duration::from_millis(2)))
    };
    let login = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let authed = Conn::login(&relay, &bob).await;
        let (out, rx) = mpsc::unbounded_channel();
        (authed.queued, receive_and_ack(authed.conn, out), rx)
    };
    let (live, (queued, reader, mut delivered)) = tokio::join!(stream, login);
    assert!(queued as usize >= 500, "the backlog of 500 was promised, got {queued}");
    let expected = backlog.len() + live.len();
    let got = collect(&mut delivered, expected, Duration::from_secs(10)).await;
    assert_eq!(&got[..500], &backlog[..], "the backlog comes first, oldest first");
    assert_complete_and_ordered(&[backlog, live], &got);
    reader.abort();
}

/// Quotas are decided before anything is pushed: with a 10-envelope quota and the recipient
/// online (and not acknowledging), 10 of 30 sends are delivered and 20 refused.
#[tokio::test]
async fn an_envelope_refused_for_quota_or_as_a_duplicate_is_never_pushed() {
    let relay = Relay::start(&["--max-queued-envelopes", "10"]).await;
    let bob = Identity::generate().unwrap();
    let mut bob_conn = Conn::login(&relay, &bob).await.conn;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let ids: Vec<MessageId> = (0..30).map(|_| message_id()).collect();
    for id in &ids {
        sender.send(&send(bob.address(), *id, b"quota")).await;
    }
    let (mut sent, mut full) = (Vec::new(), 0);
    for _ in 0..30 {
        match sender.recv().await {
            Some(RelayFrame::Sent { id }) => sent.push(id),
            Some(RelayFrame::Error { code: ErrorCode::MailboxFull, id: Some(_), .. }) => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((sent.len(), full), (10, 20));
    let mut delivered = Vec::new();
    while let Ok(Some(RelayFrame::Deliver { id, .. })) =
        bob_conn.recv_within(Duration::from_millis(500)).await
    {
        delivered.push(id);
    }
    assert_eq!(delivered, ids[..10].to_vec(), "exactly the admitted envelopes were pushed, in order");

    // Sending an id again is answered Sent, but nothing is pushed or stored twice.
    sender.send(&send(bob.address(), ids[0], b"quota")).await;
    assert_eq!(sender.recv().await, Some(RelayFrame::Sent { id: ids[0] }));
    assert!(bob_conn.recv_within(Duration::from_millis(300)).await.is_err(), "a duplicate was pushed");
    drop(bob_conn);
    assert_eq!(Conn::login(&relay, &bob).await.queued, 10);
}

/// Mail for a mailbox nobody ever opened is refused, so random addresses cannot fill the disk.
#[tokio::test]
async fn mail_for_a_mailbox_nobody_opened_is_refused() {
    let relay = Relay::start(&[]).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let id = message_id();
    let stranger = Identity::generate().unwrap();
    sender.send(&send(stranger.address(), id, b"to nobody")).await;
    assert!(matches!(
        sender.recv().await,
        Some(RelayFrame::Error { code: ErrorCode::UnknownMailbox, id: Some(i), .. }) if i == id
    ));
    // Once its owner has logged in, the same send is accepted.
    Conn::open_mailbox(&relay, &stranger).await;
    sender.send(&send(stranger.address(), id, b"to somebody")).await;
    assert_eq!(sender.recv().await, Some(RelayFrame::Sent { id }));
}

/// A stranger who knows an address can fill only the small stranger quota; contacts, who hold
/// the mailbox's delivery token, still get through. A wrong token counts as none.
#[tokio::test]
async fn strangers_cannot_crowd_out_contacts() {
    let relay = Relay::start(&["--max-stranger-envelopes", "5"]).await;
    let bob = Identity::generate().unwrap();
    let mut bob_conn = Conn::login(&relay, &bob).await.conn;
    let token = *bob.delivery_token().unwrap();
    let hash = sotto_shared::frames::delivery_token_hash(&token);
    bob_conn.send(&ClientFrame::PublishDeliveryToken { hash }).await;
    assert_eq!(bob_conn.recv().await, Some(RelayFrame::DeliveryTokenPublished));
    drop(bob_conn);

    let mut stranger = Conn::connect(&relay).await;
    stranger.hello().await;
    for i in 0..6 {
        let id = message_id();
        stranger.send(&send(bob.address(), id, b"spam")).await;
        match stranger.recv().await {
            Some(RelayFrame::Sent { .. }) => assert!(i < 5),
            Some(RelayFrame::Error { code: ErrorCode::MailboxFull, id: Some(got), .. }) => {
                assert_eq!((i, got), (5, id))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let as_contact = |token: [u8; 32], id| ClientFrame::SendAsContact {
        id,
        to: bob.address(),
        ttl_secs: 3600,
        token,
        payload: b"from a friend".to_vec(),
    };
    let mut wrong = token;
    wrong[0] ^= 1;
    let id = message_id();
    stranger.send(&as_contact(wrong, id)).await;
    assert!(matches!(stranger.recv().await, Some(RelayFrame::Error { code: ErrorCode::MailboxFull, .. })));
    let mut friend = Conn::connect(&relay).await;
    friend.hello().await;
    for _ in 0..20 {
        let id = message_id();
        friend.send(&as_contact(token, id)).await;
        assert_eq!(friend.recv().await, Some(RelayFrame::Sent { id }));
    }
    assert_eq!(Conn::login(&relay, &bob).await.queued, 25);

    // Only the owner may set the token.
    stranger.send(&ClientFrame::PublishDeliveryToken { hash: [0; 32] }).await;
    assert!(matches!(
        stranger.recv().await,
        Some(RelayFrame::Error { code: ErrorCode::NotAuthenticated, .. })
    ));
}
