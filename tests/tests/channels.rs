//! Channels through the real relay: first raw frames against the relay's checks (forged and
//! replayed posts, stale admin lists, the channel topic closed to group frames), then whole
//! messengers as the app runs them (following by link, history for late subscribers, live
//! posts, counts, rotation), then reports and the operator's blocks through `/admin`.

use sotto_engine::channel::{ChannelKey, ChannelLink, PostBody, sign_list};
use sotto_engine::random::OsEntropy;
use sotto_messenger::{ConversationId, Event, Notice};
use sotto_shared::channel::{ChannelId, ChannelPost};
use sotto_shared::frames::Subscription;
use sotto_shared::{ClientFrame, ErrorCode, RelayFrame, WriteKey};
use sotto_tests::client::{Client, now};
use sotto_tests::{Conn, Relay};
use std::time::Duration;

const MARKER: &str = "PLAINTEXT-MARKER-channels-41b9";
const TOKEN: &str = "operator-token-for-tests-1234";

async fn anonymous(relay: &Relay) -> Conn {
    let mut conn = Conn::connect(relay).await;
    conn.hello().await;
    conn
}

/// The next frame that is not a post, a page end or a state (those are checked elsewhere).
async fn answer(conn: &mut Conn) -> RelayFrame {
    loop {
        match conn.recv_within(Duration::from_secs(10)).await {
            Ok(Some(
                RelayFrame::ChannelState(_) | RelayFrame::Posted { .. } | RelayFrame::Subscribed { .. },
            )) => {}
            Ok(Some(frame)) => return frame,
            other => panic!("no answer: {other:?}"),
        }
    }
}

async fn expect_code(conn: &mut Conn, code: ErrorCode) {
    match answer(conn).await {
        RelayFrame::Error { code: got, .. } if got == code => {}
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

async fn state(conn: &mut Conn) -> sotto_shared::channel::ChannelState {
    loop {
        match conn.recv_within(Duration::from_secs(10)).await {
            Ok(Some(RelayFrame::ChannelState(s))) => return *s,
            Ok(Some(RelayFrame::Error { code, message, .. })) => panic!("{code:?}: {message}"),
            Ok(Some(_)) => {}
            other => panic!("no state: {other:?}"),
        }
    }
}

/// Reads a channel from the start: its state, then every kept post.
async fn read_all(
    relay: &Relay,
    channel: ChannelId,
) -> (sotto_shared::channel::ChannelState, Vec<ChannelPost>) {
    let mut conn = anonymous(relay).await;
    conn.send(&ClientFrame::SubscribeChannel { channel, after: 0, member: [1; 16] }).await;
    let s = state(&mut conn).await;
    let mut posts = Vec::new();
    if s.blocked.is_some() {
        return (s, posts);
    }
    loop {
        match conn.recv_within(Duration::from_secs(10)).await {
            Ok(Some(RelayFrame::Posted { payload, .. })) => {
                posts.push(postcard::from_bytes(&payload).unwrap())
            }
            Ok(Some(RelayFrame::Subscribed { more: false, .. })) => return (s, posts),
            other => panic!("expected the channel's page, got {other:?}"),
        }
    }
}

fn publish(post: &ChannelPost) -> ClientFrame {
    ClientFrame::PublishPost { post: Box::new(post.clone()), ttl_secs: 3600 }
}

#[tokio::test]
async fn the_relay_takes_only_current_admins_posts_once_and_keeps_channels_apart_from_groups() {
    let relay = Relay::start(&[]).await;
    let e = &mut OsEntropy;
    let owner = ChannelKey::generate(e).unwrap();
    let admin = ChannelKey::generate(e).unwrap();
    let link = ChannelLink::new("Daily", "", &owner, e).unwrap();
    let v1 = sign_list(&owner, link.id, 1, vec![admin.public()]);
    let mut conn = anonymous(&relay).await;

    // Posting to a channel nobody opened, or opening one with a list its owner did not sign.
    let early = link.post(&admin, 1, &PostBody::Text("early".into()), now(), e).unwrap();
    conn.send(&publish(&early)).await;
    expect_code(&mut conn, ErrorCode::UnknownChannel).await;
    let squatter = ChannelKey::generate(e).unwrap();
    let squatted = sign_list(&squatter, link.id, 1, vec![squatter.public()]);
    conn.send(&ClientFrame::ChannelAdmins { owner: squatter.public(), list: Box::new(squatted) }).await;
    expect_code(&mut conn, ErrorCode::AuthFailed).await;

    conn.send(&ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(v1.clone()) }).await;
    let s = state(&mut conn).await;
    assert_eq!((s.lists.len(), s.blocked.as_deref()), (1, None));

    // A stranger's post, a post from a far clock, a tampered one: refused.
    let stranger = ChannelKey::generate(e).unwrap();
    let forged = link.post(&stranger, 1, &PostBody::Text("fake".into()), now(), e).unwrap();
    conn.send(&publish(&forged)).await;
    expect_code(&mut conn, ErrorCode::AuthFailed).await;
    let stale = link.post(&admin, 1, &PostBody::Text("old news".into()), now() - 3_600_000, e).unwrap();
    conn.send(&publish(&stale)).await;
    expect_code(&mut conn, ErrorCode::InvalidRequest).await;
    let mut tampered = link.post(&admin, 1, &PostBody::Text("edited".into()), now(), e).unwrap();
    tampered.sealed[0] ^= 1;
    conn.send(&publish(&tampered)).await;
    expect_code(&mut conn, ErrorCode::AuthFailed).await;

    // A real post is stored once, however often it comes.
    let real = link.post(&admin, 1, &PostBody::Text("real".into()), now(), e).unwrap();
    for _ in 0..2 {
        conn.send(&publish(&real)).await;
        assert_eq!(answer(&mut conn).await, RelayFrame::Sent { id: real.id() });
    }
    let (_, posts) = read_all(&relay, link.id).await;
    assert_eq!(posts, vec![real.clone()]);

    // The owner drops the admin: their next post is refused, under either list; the old list
    // cannot come back; the old post stays readable against the list of its time.
    let v2 = sign_list(&owner, link.id, 2, vec![owner.public()]);
    conn.send(&ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(v2) }).await;
    assert_eq!(state(&mut conn).await.lists.len(), 2);
    for list in [1, 2] {
        let late = link.post(&admin, list, &PostBody::Text("after removal".into()), now(), e).unwrap();
        conn.send(&publish(&late)).await;
        expect_code(&mut conn, ErrorCode::AuthFailed).await;
    }
    conn.send(&ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(v1.clone()) }).await;
    expect_code(&mut conn, ErrorCode::InvalidRequest).await;
    let (s, posts) = read_all(&relay, link.id).await;
    let list1 = s.lists.iter().find(|l| l.version == 1).unwrap();
    assert_eq!(link.read(&posts[0], list1).unwrap(), PostBody::Text("real".into()));

    // The channel's topic is not a group's: group frames can neither read nor write it.
    let topic = link.id.topic();
    let sub = Subscription { topic, write_hash: [0xff; 32], after: 0 };
    conn.send(&ClientFrame::Subscribe { topics: vec![sub] }).await;
    expect_code(&mut conn, ErrorCode::InvalidRequest).await;
    let id = sotto_tests::message_id();
    conn.send(&ClientFrame::Post { id, topic, write: WriteKey([0xff; 32]), ttl_secs: 60, payload: vec![1] })
        .await;
    expect_code(&mut conn, ErrorCode::AuthFailed).await;

    // Never on a logged-in connection: the relay ties no mailbox to a channel.
    let who = sotto_engine::Identity::generate().unwrap();
    let mut authed = Conn::login(&relay, &who).await;
    authed.conn.send(&ClientFrame::SubscribeChannel { channel: link.id, after: 0, member: [2; 16] }).await;
    expect_code(&mut authed.conn, ErrorCode::Unexpected).await;
}

/// Follows `link` (a channel link payload) and reads until `n` posts have arrived.
async fn follow(c: &mut Client, link: &str, n: usize) -> ConversationId {
    let (id, fx) = c.d.messenger.follow_channel(link, now(), &mut OsEntropy).expect("a channel link");
    let step = c.d.apply(fx);
    c.run(step).await;
    let chat = ConversationId::Channel(id);
    while c.d.messenger.messages(&chat).len() < n {
        c.pump().await;
    }
    chat
}

async fn create(c: &mut Client, name: &str) -> ChannelId {
    let (id, fx) =
        c.d.messenger.create_channel(name, "What happened today", now(), &mut OsEntropy).expect("made");
    let step = c.d.apply(fx);
    c.run(step).await;
    while c.d.messenger.channel(&id).is_none_or(|c| c.subscribers == 0) {
        c.pump().await;
    }
    id
}

#[tokio::test]
async fn subscribers_read_history_and_live_posts_see_counts_and_a_new_link_cuts_off_the_old() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut owner = Client::join(&origin, "Ada").await;
    let id = create(&mut owner, "Daily").await;
    let chat = ConversationId::Channel(id);
    for i in 0..3 {
        owner.say_in(chat, &format!("{MARKER} {i}")).await;
    }
    assert!(owner.d.messenger.messages(&chat).iter().all(|m| m.status == sotto_messenger::Status::Sent));
    let link = owner.d.messenger.channel_link(&id).unwrap();

    // A late subscriber reads the history kept, then live posts.
    let mut bo = Client::join(&origin, "Bo").await;
    follow(&mut bo, &link, 3).await;
    let texts: Vec<String> = bo.d.messenger.messages(&chat).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, (0..3).map(|i| format!("{MARKER} {i}")).collect::<Vec<_>>());
    owner.say_in(chat, &format!("{MARKER} live")).await;
    assert_eq!(bo.hear().await, format!("{MARKER} live"));
    // Subscribers cannot post.
    let refused = bo.d.messenger.send_text(&chat, "me too", now(), &mut OsEntropy);
    assert!(matches!(refused, Err(sotto_messenger::MessengerError::NotChannelAdmin)));

    // Counts: the owner and Bo are subscribed; the live post was seen by both.
    let step = bo.d.apply(bo.d.messenger.refresh_channel(&id));
    bo.run(step).await;
    let last = bo.d.messenger.messages(&chat).last().unwrap().id;
    while bo.d.messenger.post_views(&id, &last).is_none() {
        bo.pump().await;
    }
    assert_eq!(bo.d.messenger.channel(&id).unwrap().subscribers, 2);
    assert!(bo.d.messenger.post_views(&id, &last).unwrap() >= 2);

    // A new link: Bo, who holds the old one, reads nothing posted after; Cy with the new one does.
    let step = owner.d.act(|m| m.rotate_channel_link(&id, now(), &mut OsEntropy)).unwrap();
    owner.run(step).await;
    owner.say_in(chat, &format!("{MARKER} for the new link")).await;
    let new_link = owner.d.messenger.channel_link(&id).unwrap();
    assert_ne!(new_link, link);
    let mut cy = Client::join(&origin, "Cy").await;
    follow(&mut cy, &new_link, 1).await;
    let seen: Vec<String> = cy.d.messenger.messages(&chat).iter().map(|m| m.text.clone()).collect();
    assert_eq!(seen, vec![format!("{MARKER} for the new link")], "old posts are not for the new link");
    while bo.pump_within(Duration::from_millis(500)).await.is_some() {}
    assert_eq!(bo.d.messenger.messages(&chat).len(), 4, "the old link reads nothing posted after");
    // Given the new link, Bo reads what he skipped (once).
    follow(&mut bo, &new_link, 5).await;
    assert_eq!(bo.d.messenger.messages(&chat)[4].text, format!("{MARKER} for the new link"));
    while bo.pump_within(Duration::from_millis(300)).await.is_some() {}
    assert_eq!(bo.d.messenger.messages(&chat).len(), 5);

    // Leaving stops the count.
    let step = cy.d.act(|m| m.leave_channel(&id)).unwrap();
    cy.run(step).await;
    assert!(cy.d.messenger.channel(&id).is_none() && cy.d.messenger.messages(&chat).is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, _) = read_all(&relay, id).await;
    assert_eq!(s.subscribers, 3, "the owner, Bo, and the raw reader; Cy left");

    // The relay's store and log hold no plaintext.
    assert!(!relay.log().contains(MARKER));
    for path in sotto_tests::files_under(&relay.data_dir) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()),
            "plaintext in the relay's store"
        );
    }
}

async fn admin(
    relay: &Relay,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let client = reqwest::Client::new();
    let url = relay.http(path);
    let mut req = if method == "POST" { client.post(url) } else { client.get(url) };
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.expect("the relay answers");
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_report_shows_the_operator_one_checked_post_and_a_block_stops_the_channel() {
    let relay = Relay::start(&["--admin-token", TOKEN, "--reports-per-ip-hour", "3"]).await;
    let origin = relay.http("");
    let mut owner = Client::join(&origin, "Ada").await;
    let id = create(&mut owner, "Loud").await;
    let chat = ConversationId::Channel(id);
    owner.say_in(chat, "a fine post").await;
    owner.say_in(chat, "an abusive post").await;
    let mut bo = Client::join(&origin, "Bo").await;
    follow(&mut bo, &owner.d.messenger.channel_link(&id).unwrap(), 2).await;
    let abusive = bo.d.messenger.messages(&chat)[1].id;

    // Without the token the operator's API is not there.
    assert_eq!(admin(&relay, "GET", "/admin/api/reports", None, None).await.0, 404);
    assert_eq!(
        admin(&relay, "GET", "/admin/api/reports", Some("wrong-token-wrong-token"), None).await.0,
        404
    );
    let (status, page) = admin(&relay, "GET", "/admin", None, None).await;
    assert!(status == 200 && page.contains("Operator token"));

    let step = bo.d.act(|m| m.report_post(&id, &abusive, "abuse")).unwrap();
    bo.run(step).await;
    bo.wait_for(|e| matches!(e, Event::Reported).then_some(())).await;
    // The owner cannot make the report uncheckable by pushing lists out of the relay.
    let sotto_messenger::channels::ChannelRole::Owner { owner: key, .. } =
        &owner.d.messenger.channel(&id).unwrap().role
    else {
        panic!("Ada owns it")
    };
    let mut raw_owner = anonymous(&relay).await;
    for version in 2..=18 {
        let list = sign_list(key, id, version, vec![key.public()]);
        let frame = ClientFrame::ChannelAdmins { owner: key.public(), list: Box::new(list) };
        raw_owner.send(&frame).await;
        state(&mut raw_owner).await;
    }
    let (status, reports) = admin(&relay, "GET", "/admin/api/reports", Some(TOKEN), None).await;
    assert_eq!(status, 200, "{reports}");
    assert!(reports.contains("\"text\":\"an abusive post\""), "{reports}");
    assert!(!reports.contains("a fine post"), "a report opens the one post reported");
    assert!(reports.contains(&id.to_hex()) && reports.contains("\"reason\":\"abuse\""), "{reports}");

    // A report cannot be forged: a made-up post, or a real one with another key.
    let post = bo.d.messenger.channel(&id).unwrap().reportable(&abusive).unwrap().clone();
    let mut raw = anonymous(&relay).await;
    raw.send(&ClientFrame::ReportPost { post: Box::new(post.clone()), key: [7; 32], reason: String::new() })
        .await;
    expect_code(&mut raw, ErrorCode::AuthFailed).await;
    let mut other = post.clone();
    other.nonce = [9; 16];
    raw.send(&ClientFrame::ReportPost { post: Box::new(other), key: [7; 32], reason: String::new() }).await;
    expect_code(&mut raw, ErrorCode::InvalidRequest).await;
    // A report the relay refuses (here: past this address's reports an hour) is said so.
    let fine = bo.d.messenger.messages(&chat)[0].id;
    let step = bo.d.act(|m| m.report_post(&id, &fine, "")).unwrap();
    bo.run(step).await;
    let refused = bo
        .wait_for_problem(|n| match n {
            Notice::ReportRefused(reason) => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert!(refused.contains("too many reports"), "{refused}");

    // The operator blocks the channel: Bo, reading live, is told why; the owner cannot post.
    let body = format!("{{\"channel\":\"{}\",\"reason\":\"Harassment\"}}", id.to_hex());
    assert_eq!(admin(&relay, "POST", "/admin/api/block", Some(TOKEN), Some(body)).await.0, 200);
    let reason = bo
        .wait_for_problem(|n| match n {
            Notice::ChannelBlocked { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, "Harassment");
    let step = owner.d.act(|m| m.send_text(&chat, "still here?", now(), &mut OsEntropy));
    match step {
        Ok(step) => {
            owner.run(step).await;
            owner.wait_for_problem(|n| matches!(n, Notice::NotSent { .. }).then_some(())).await;
        }
        // The owner already knows: the relay told its reader line too.
        Err(err) => assert!(matches!(err, sotto_messenger::MessengerError::ChannelBlocked(_)), "{err}"),
    }
    let (s, posts) = read_all(&relay, id).await;
    assert_eq!(
        (s.blocked.as_deref(), posts.len()),
        (Some("Harassment"), 0),
        "subscribing gets the block only"
    );
    let (_, blocks) = admin(&relay, "GET", "/admin/api/blocks", Some(TOKEN), None).await;
    assert!(blocks.contains(&id.to_hex()));

    // Unblocked, it works again.
    let body = format!("{{\"channel\":\"{}\"}}", id.to_hex());
    assert_eq!(admin(&relay, "POST", "/admin/api/unblock", Some(TOKEN), Some(body)).await.0, 200);
    let (s, posts) = read_all(&relay, id).await;
    assert_eq!((s.blocked, posts.len()), (None, 2));
}

/// Channels and reports take room in the relay's storage budget like everything else, counted
/// again after a restart; subscribers are counted outside it, a bounded number an hour from
/// one address (made-up member tokens must never stop messaging).
#[tokio::test]
async fn channels_take_budget_and_subscriber_counts_are_bounded_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--max-store-bytes", "37500", "--counted-subscribers-per-ip-hour", "2"];
    let mut relay = Relay::start_in(dir.path(), "127.0.0.1:0", &flags).await;
    let e = &mut OsEntropy;
    let open_channel = |e: &mut OsEntropy| {
        let owner = ChannelKey::generate(e).unwrap();
        let link = ChannelLink::new("Small", "", &owner, e).unwrap();
        let list = sign_list(&owner, link.id, 1, vec![owner.public()]);
        (link.id, ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(list) })
    };
    let mut conn = anonymous(&relay).await;
    let (id, frame) = open_channel(e);
    conn.send(&frame).await;
    state(&mut conn).await;
    // The same opening list again (an app unsure whether the relay has it) is taken as is.
    conn.send(&frame).await;
    state(&mut conn).await;
    let (_, another) = open_channel(e);
    conn.send(&another).await;
    expect_code(&mut conn, ErrorCode::StoreFull).await;
    // Two subscriptions from this address are counted this hour; the third reads uncounted.
    for (member, counted) in [([1; 16], 1), ([2; 16], 2), ([3; 16], 2)] {
        let mut reader = anonymous(&relay).await;
        reader.send(&ClientFrame::SubscribeChannel { channel: id, after: 0, member }).await;
        assert_eq!(state(&mut reader).await.subscribers, counted);
    }
    // After a restart the channel still takes its room.
    relay.terminate().await;
    let relay = Relay::start_in(dir.path(), "127.0.0.1:0", &flags).await;
    let mut conn = anonymous(&relay).await;
    let (_, another) = open_channel(e);
    conn.send(&another).await;
    expect_code(&mut conn, ErrorCode::StoreFull).await;
}

/// The owner makes a contact an admin: the key travels over their session, the relay takes the
/// admin's posts once the owner's list names it, followers read them; removed, the admin's
/// next post is refused. A new link reaches the admins too.
#[tokio::test]
async fn the_owner_makes_and_removes_admins() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    ada.befriend(&mut bo, &origin).await;
    let id = create(&mut ada, "Team news").await;
    let chat = ConversationId::Channel(id);
    let mut cy = Client::join(&origin, "Cy").await;
    follow(&mut cy, &ada.d.messenger.channel_link(&id).unwrap(), 0).await;

    let bo_address = bo.address();
    let step = ada.d.act(|m| m.add_channel_admin(&id, &bo_address, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    bo.wait_for(|e| matches!(e, Event::MadeChannelAdmin { .. }).then_some(())).await;
    while !bo.d.messenger.channel(&id).is_some_and(|c| c.may_post()) {
        bo.pump().await;
    }
    bo.say_in(chat, "from the new admin").await;
    assert_eq!(cy.hear().await, "from the new admin");

    // A new link reaches Bo, who keeps posting under it; Cy, on the old link, reads nothing new.
    let step = ada.d.act(|m| m.rotate_channel_link(&id, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    while bo.d.messenger.channel(&id).is_none_or(|c| c.link.epoch == 0) {
        bo.pump().await;
    }
    bo.say_in(chat, "under the new link").await;
    let new_link = ada.d.messenger.channel_link(&id).unwrap();
    let mut dee = Client::join(&origin, "Dee").await;
    follow(&mut dee, &new_link, 1).await;
    assert_eq!(dee.d.messenger.messages(&chat)[0].text, "under the new link");

    // Removed, Bo can post no more: the relay tells his app the new list, which no longer
    // names his key (and would refuse his posts: see the first test).
    let step = ada.d.act(|m| m.remove_channel_admin(&id, &bo_address)).unwrap();
    ada.run(step).await;
    while bo.d.messenger.channel(&id).is_some_and(|c| c.may_post()) {
        bo.pump().await;
    }
    let refused = bo.d.act(|m| m.send_text(&chat, "still an admin?", now(), &mut OsEntropy));
    assert!(matches!(refused, Err(sotto_messenger::MessengerError::NotChannelAdmin)));
    while dee.pump_within(Duration::from_millis(300)).await.is_some() {}
    assert_eq!(dee.d.messenger.messages(&chat).len(), 1, "nothing from a removed admin");
}
