//! Group topics against the real relay binary: one stored copy per post pushed to every reader,
//! late readers paging through the kept log, the write key, bounded logs, durability, and
//! topics kept off logged-in connections.

use sotto_engine::Identity;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{ClientFrame, ErrorCode, MessageId, RelayFrame, TopicId, WriteKey};
use sotto_tests::{Conn, LIFTED, Relay, message_id};
use std::time::Duration;

#[derive(Clone, Copy)]
struct Topic {
    id: TopicId,
    write: WriteKey,
}

impl Topic {
    fn new() -> Topic {
        let mut id = [0; 32];
        let mut write = [0; 32];
        sotto_engine::random::fill(&mut id).unwrap();
        sotto_engine::random::fill(&mut write).unwrap();
        Topic { id: TopicId(id), write: WriteKey(write) }
    }

    fn subscribe(&self, after: u64) -> ClientFrame {
        let sub = Subscription { topic: self.id, write_hash: topic_write_hash(&self.write), after };
        ClientFrame::Subscribe { topics: vec![sub] }
    }

    fn post(&self, id: MessageId, body: &[u8]) -> ClientFrame {
        ClientFrame::Post { id, topic: self.id, write: self.write, ttl_secs: 3600, payload: body.to_vec() }
    }
}

async fn anonymous(relay: &Relay) -> Conn {
    let mut c = Conn::connect(relay).await;
    c.hello().await;
    c
}

async fn post(conn: &mut Conn, topic: &Topic, body: &[u8]) -> MessageId {
    let id = message_id();
    conn.send(&topic.post(id, body)).await;
    match conn.recv().await {
        Some(RelayFrame::Sent { id: got }) => assert_eq!(got, id),
        other => panic!("expected Sent, got {other:?}"),
    }
    id
}

/// Reads `Posted` frames until `Subscribed`; returns the posts' (seq, payload) and the
/// `Subscribed` fields (first, through, more).
async fn read_page(conn: &mut Conn) -> (Vec<(u64, Vec<u8>)>, (u64, u64, bool)) {
    let mut posts = Vec::new();
    loop {
        match conn.recv().await {
            Some(RelayFrame::Posted { seq, payload, .. }) => posts.push((seq, payload)),
            Some(RelayFrame::Subscribed { first, through, more, .. }) => {
                return (posts, (first, through, more));
            }
            other => panic!("expected Posted or Subscribed, got {other:?}"),
        }
    }
}

/// Subscribes to an empty topic (opening it); returns the number its first post will get
/// (topics number their posts from the time they open).
async fn open(conn: &mut Conn, topic: &Topic) -> u64 {
    conn.send(&topic.subscribe(0)).await;
    let (posts, (first, through, more)) = read_page(conn).await;
    assert!(posts.is_empty() && !more);
    assert_eq!(through, first - 1);
    first
}

async fn expect_posted(conn: &mut Conn) -> (u64, Vec<u8>) {
    match conn.recv().await {
        Some(RelayFrame::Posted { seq, payload, .. }) => (seq, payload),
        other => panic!("expected Posted, got {other:?}"),
    }
}

async fn expect_error(conn: &mut Conn, code: ErrorCode) {
    match conn.recv().await {
        Some(RelayFrame::Error { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_post_is_stored_once_and_reaches_every_reader_live_and_late() {
    let relay = Relay::start(&[]).await;
    let topic = Topic::new();
    let (mut a, mut b) = (anonymous(&relay).await, anonymous(&relay).await);
    let base = open(&mut a, &topic).await;
    assert_eq!(open(&mut b, &topic).await, base);
    let n = |k: u64| base + k - 1;
    let mut poster = anonymous(&relay).await;
    for i in 1..=3u64 {
        post(&mut poster, &topic, format!("post {i}").as_bytes()).await;
    }
    for reader in [&mut a, &mut b] {
        for i in 1..=3u64 {
            assert_eq!(expect_posted(reader).await, (n(i), format!("post {i}").into_bytes()));
        }
    }
    // A late reader with a cursor gets what it missed, then live posts.
    let mut late = anonymous(&relay).await;
    late.send(&topic.subscribe(n(1))).await;
    let (posts, status) = read_page(&mut late).await;
    assert_eq!(posts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![n(2), n(3)]);
    assert_eq!(status, (n(1), n(3), false));
    // The same id again is acknowledged and stored once: nobody gets it twice.
    let id = post(&mut poster, &topic, b"post 4").await;
    poster.send(&topic.post(id, b"post 4")).await;
    assert!(matches!(poster.recv().await, Some(RelayFrame::Sent { .. })));
    for reader in [&mut a, &mut b, &mut late] {
        assert_eq!(expect_posted(reader).await, (n(4), b"post 4".to_vec()));
        assert!(reader.recv_within(Duration::from_millis(300)).await.is_err(), "a duplicate post was pushed");
    }
    // An unsubscribed reader gets nothing more.
    a.send(&ClientFrame::Unsubscribe { topic: topic.id }).await;
    post(&mut poster, &topic, b"post 5").await;
    assert_eq!(expect_posted(&mut b).await.0, n(5));
    assert!(a.recv_within(Duration::from_millis(300)).await.is_err());
}

#[tokio::test]
async fn only_the_write_key_posts_and_topics_never_share_a_logged_in_connection() {
    let relay = Relay::start(&[]).await;
    let topic = Topic::new();
    let mut reader = anonymous(&relay).await;
    reader.send(&topic.subscribe(0)).await;
    read_page(&mut reader).await;

    let mut other = anonymous(&relay).await;
    let forged = Topic { id: topic.id, write: WriteKey([9; 32]) };
    other.send(&forged.post(message_id(), b"forged")).await;
    expect_error(&mut other, ErrorCode::AuthFailed).await;
    // Nor can someone holding only the id take the topic over with another write key.
    other.send(&forged.subscribe(0)).await;
    expect_error(&mut other, ErrorCode::AuthFailed).await;
    let unknown = Topic::new();
    other.send(&unknown.post(message_id(), b"nobody reads")).await;
    expect_error(&mut other, ErrorCode::UnknownTopic).await;
    assert!(reader.recv_within(Duration::from_millis(300)).await.is_err(), "a refused post was pushed");

    // A logged-in connection may neither read nor post…
    let alice = Identity::generate().unwrap();
    let mut authed = Conn::login(&relay, &alice).await.conn;
    authed.send(&topic.subscribe(0)).await;
    expect_error(&mut authed, ErrorCode::Unexpected).await;
    authed.send(&topic.post(message_id(), b"from a mailbox")).await;
    expect_error(&mut authed, ErrorCode::Unexpected).await;
    // …and a reading connection may not log in.
    let mut reading = Conn::connect(&relay).await;
    let challenge = reading.hello().await;
    reading.send(&topic.subscribe(0)).await;
    read_page(&mut reading).await;
    reading.send(&alice.login_frame(&relay.http(""), &challenge)).await;
    expect_error(&mut reading, ErrorCode::Unexpected).await;
}

#[tokio::test]
async fn an_acknowledged_post_survives_a_killed_relay_and_the_store_keeps_no_capability() {
    let dir = tempfile::tempdir().unwrap();
    let topic = Topic::new();
    let mut relay = Relay::start_in(dir.path(), "127.0.0.1:0", &[]).await;
    let mut poster = anonymous(&relay).await;
    let base = open(&mut poster, &topic).await;
    poster.send(&ClientFrame::Unsubscribe { topic: topic.id }).await;
    for i in 0..20 {
        post(&mut poster, &topic, format!("durable {i}").as_bytes()).await;
    }
    relay.kill().await;
    let relay = Relay::start_in(dir.path(), "127.0.0.1:0", &[]).await;
    let mut reader = anonymous(&relay).await;
    reader.send(&topic.subscribe(0)).await;
    let (posts, status) = read_page(&mut reader).await;
    assert_eq!(posts.len(), 20);
    assert_eq!(status, (base, base + 19, false));
    drop(relay);
    // Neither the read capability (the topic id) nor the write key is written down.
    let store = std::fs::read(dir.path().join("relay.redb")).unwrap();
    for secret in [topic.id.0, topic.write.0] {
        assert!(!store.windows(32).any(|w| w == secret), "a topic capability is in the store");
    }
}

#[tokio::test]
async fn a_long_log_comes_in_pages_and_a_bounded_log_says_what_it_dropped() {
    let relay = Relay::start(&[LIFTED, &["--max-topic-posts", "300"]].concat()).await;
    let topic = Topic::new();
    let mut poster = anonymous(&relay).await;
    let base = open(&mut poster, &topic).await;
    let n = |k: u64| base + k - 1;
    for i in 1..=310u64 {
        poster.send(&topic.post(message_id(), &i.to_be_bytes())).await;
    }
    let mut sent = 0;
    let mut live = 0;
    while sent < 310 {
        match poster.recv().await {
            Some(RelayFrame::Sent { .. }) => sent += 1,
            Some(RelayFrame::Posted { .. }) => live += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(live <= 310);
    // The log keeps the newest 300 (11..=310), in pages.
    let mut reader = anonymous(&relay).await;
    reader.send(&topic.subscribe(0)).await;
    let (first_page, status) = read_page(&mut reader).await;
    assert_eq!(first_page.len(), 256);
    assert_eq!(first_page[0].0, n(11));
    assert_eq!(status, (n(11), n(266), true));
    reader.send(&topic.subscribe(n(266))).await;
    let (rest, status) = read_page(&mut reader).await;
    assert_eq!(rest.iter().map(|p| p.0).collect::<Vec<_>>(), (267..=310).map(n).collect::<Vec<_>>());
    assert_eq!(status, (n(11), n(310), false));
}

/// Posts keep coming while a reader catches up through several pages: it sees every post
/// exactly once, in order.
#[tokio::test]
async fn a_reader_catching_up_under_traffic_misses_nothing_and_sees_nothing_twice() {
    let relay = Relay::start(LIFTED).await;
    let topic = Topic::new();
    let mut poster = anonymous(&relay).await;
    let base = open(&mut poster, &topic).await;
    poster.send(&ClientFrame::Unsubscribe { topic: topic.id }).await;
    let total = 1200u64;
    let last = base + total - 1;
    for _ in 0..total / 2 {
        post(&mut poster, &topic, &[7; 100]).await;
    }
    // The second half is posted while the reader pages through the first.
    let sending = tokio::spawn(async move {
        for _ in total / 2..total {
            poster.send(&topic.post(message_id(), &[8; 100])).await;
        }
        let mut sent = total / 2;
        while sent < total {
            if let Some(RelayFrame::Sent { .. }) = poster.recv().await {
                sent += 1;
            }
        }
    });
    let mut reader = anonymous(&relay).await;
    let mut seen = Vec::new();
    reader.send(&topic.subscribe(0)).await;
    while seen.last() != Some(&last) {
        match reader.recv().await {
            Some(RelayFrame::Posted { seq, .. }) => seen.push(seq),
            Some(RelayFrame::Subscribed { through, more: true, .. }) => {
                reader.send(&topic.subscribe(through)).await;
            }
            Some(RelayFrame::Subscribed { more: false, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sending.await.unwrap();
    assert_eq!(seen, (base..=last).collect::<Vec<_>>());
}
