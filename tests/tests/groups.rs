//! Groups through the real relay. First the engine's group state alone on raw connections
//! (welcomes and rekeys handed over in-process), then whole messengers, as the app and bots run
//! them: welcomes and rekeys over pairwise sessions, posts on the anonymous line. One upload
//! per message reaches everyone; a removed member gets nothing readable afterwards; the relay's
//! store and log hold no plaintext.

use sotto_engine::Identity;
use sotto_engine::group::{Group, Received};
use sotto_engine::message::{Body, Message};
use sotto_engine::random::OsEntropy;
use sotto_engine::roster::Role;
use sotto_engine::sender_keys::GroupId;
use sotto_messenger::doors::DoorRules;
use sotto_messenger::history::ChatNotice;
use sotto_messenger::{ConversationId, Driver, Event, Line, MemoryStore};
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{ClientFrame, ErrorCode, RelayFrame, TopicId, WriteKey};
use sotto_tests::client::{Client, now};
use sotto_tests::{Conn, Relay, message_id};
use std::time::Duration;

const MARKER: &str = "PLAINTEXT-MARKER-groups-7d1f";

struct Member {
    who: Identity,
    group: Group,
    conn: Conn,
}

impl Member {
    /// Connects anonymously and reads the group's current topic from its start.
    async fn online(relay: &Relay, who: Identity, group: Group) -> Member {
        let mut conn = Conn::connect(relay).await;
        conn.hello().await;
        let mut m = Member { who, group, conn };
        m.subscribe().await;
        m
    }

    async fn subscribe(&mut self) {
        let (_, topic, write) = self.group.topic();
        let sub = Subscription { topic, write_hash: topic_write_hash(&write), after: 0 };
        self.conn.send(&ClientFrame::Subscribe { topics: vec![sub] }).await;
        loop {
            match self.conn.recv().await {
                Some(RelayFrame::Subscribed { more: false, .. }) => return,
                Some(RelayFrame::Posted { payload, .. }) => {
                    let _ = self.group.receive(&payload, &mut OsEntropy);
                }
                other => panic!("expected the topic's page, got {other:?}"),
            }
        }
    }

    async fn post(&mut self, payload: Vec<u8>) {
        let (_, topic, write) = self.group.topic();
        self.post_to(topic, write, payload).await;
    }

    async fn post_to(&mut self, topic: TopicId, write: WriteKey, payload: Vec<u8>) {
        let id = message_id();
        self.conn.send(&ClientFrame::Post { id, topic, write, ttl_secs: 3600, payload }).await;
        loop {
            match self.conn.recv().await {
                Some(RelayFrame::Sent { id: got }) if got == id => return,
                // Our own posts come back to us too: already applied.
                Some(RelayFrame::Posted { .. }) => {}
                other => panic!("expected Sent, got {other:?}"),
            }
        }
    }

    async fn say(&mut self, text: &str) {
        let mut id = [0; 16];
        sotto_engine::random::fill(&mut id).unwrap();
        let m = Message {
            v: sotto_engine::message::VERSION,
            id,
            sent_at_ms: 1,
            expires_after_secs: None,
            body: Body::Text(text.into()),
        };
        let posts = self.group.send(&self.who, &m, &mut OsEntropy).unwrap();
        for p in posts {
            self.post(p).await;
        }
    }

    /// The next text read from the topic.
    async fn hear(&mut self) -> String {
        loop {
            match self.conn.recv().await {
                Some(RelayFrame::Posted { payload, .. }) => {
                    if let Ok(Received::Message { message, .. }) =
                        self.group.receive(&payload, &mut OsEntropy)
                        && let Body::Text(t) = message.body
                    {
                        return t;
                    }
                }
                other => panic!("expected a post, got {other:?}"),
            }
        }
    }

    /// Reads posts for a while; returns the texts it could open.
    async fn hear_nothing_readable(&mut self) -> Vec<String> {
        let mut texts = Vec::new();
        while let Ok(Some(RelayFrame::Posted { payload, .. })) =
            self.conn.recv_within(Duration::from_millis(400)).await
        {
            if let Ok(Received::Message { message: Message { body: Body::Text(t), .. }, .. }) =
                self.group.receive(&payload, &mut OsEntropy)
            {
                texts.push(t);
            }
        }
        texts
    }
}

#[tokio::test]
async fn a_group_talks_through_its_topic_and_a_removed_member_hears_nothing_after() {
    let relay = Relay::start(&["--log", "debug"]).await;
    let (ada_id, bo_id, cy_id) =
        (Identity::generate().unwrap(), Identity::generate().unwrap(), Identity::generate().unwrap());
    let mut group = Group::create(&ada_id, "Club", &mut OsEntropy).unwrap();
    let mut ada = {
        let (_, welcome_bo) = group.add(&ada_id, bo_id.public(), Role::Member, &mut OsEntropy).unwrap();
        let bo_group =
            Group::join(&bo_id, &ada_id.public().signing_key, &welcome_bo, &mut OsEntropy).unwrap();
        let (added_cy, welcome_cy) =
            group.add(&ada_id, cy_id.public(), Role::Member, &mut OsEntropy).unwrap();
        let mut bo_group = bo_group;
        bo_group.receive(&added_cy, &mut OsEntropy).unwrap();
        let cy_group =
            Group::join(&cy_id, &ada_id.public().signing_key, &welcome_cy, &mut OsEntropy).unwrap();
        let ada = Member::online(&relay, ada_id, group).await;
        let bo = Member::online(&relay, bo_id, bo_group).await;
        let cy = Member::online(&relay, cy_id, cy_group).await;
        (ada, bo, cy)
    };
    let (ada, bo, cy) = (&mut ada.0, &mut ada.1, &mut ada.2);

    ada.say(&format!("{MARKER} hello both")).await;
    assert_eq!(bo.hear().await, format!("{MARKER} hello both"));
    assert_eq!(cy.hear().await, format!("{MARKER} hello both"));
    bo.say("hi from Bo").await;
    assert_eq!(ada.hear().await, "hi from Bo");
    assert_eq!(cy.hear().await, "hi from Bo");

    // Ada removes Bo: the removal goes to the topic everyone reads; the new epoch's secret
    // only to Cy. Both who stay move to the new topic.
    let (_, old_topic, old_write) = ada.group.topic();
    let (removed, rekeys) = ada.group.remove(&ada.who, &bo.who.public().signing_key, &mut OsEntropy).unwrap();
    ada.post_to(old_topic, old_write, removed).await;
    assert_eq!(rekeys.len(), 1);
    cy.hear_nothing_readable().await;
    cy.group.apply_rekey(&ada.who.public().signing_key, &rekeys[0].1, &mut OsEntropy).unwrap();
    ada.subscribe().await;
    cy.subscribe().await;
    bo.hear_nothing_readable().await;
    assert!(!bo.group.roster().members.contains_key(&bo.who.public().signing_key), "Bo saw his removal");

    ada.say(&format!("{MARKER} Bo is gone")).await;
    assert_eq!(cy.hear().await, format!("{MARKER} Bo is gone"));
    assert_eq!(bo.hear_nothing_readable().await, Vec::<String>::new(), "Bo reads nothing after");

    // The relay's store and log hold ciphertext only.
    let store = std::fs::read(relay.data_dir.join("relay.redb")).unwrap();
    assert!(!store.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    assert!(!relay.log().contains(MARKER));
}

/// `admin` makes a group named `name`; returns its chat and id.
async fn make_group(admin: &mut Client, name: &str) -> (ConversationId, GroupId) {
    let (chat, fx) = admin.d.messenger.create_group(name, now(), &mut OsEntropy).unwrap();
    let step = admin.d.apply(fx);
    admin.run(step).await;
    let ConversationId::Group(group) = chat else { panic!("a group chat") };
    (chat, group)
}

/// `admin` adds their contact `member` to `group`; returns the chat `member` joined.
async fn add(admin: &mut Client, group: &GroupId, member: &mut Client) -> ConversationId {
    let address = member.address();
    let step = admin.d.act(|m| m.add_to_group(group, &address, now(), &mut OsEntropy)).unwrap();
    admin.run(step).await;
    joined(member).await
}

/// Pumps `c` until it joins a group; returns the chat.
async fn joined(c: &mut Client) -> ConversationId {
    c.wait_for(|e| match e {
        Event::JoinedGroup { conversation, .. } => Some(*conversation),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn messengers_talk_in_a_group_and_one_removed_hears_nothing_after() {
    let relay = Relay::start(&["--log", "debug"]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    ada.befriend(&mut bo, &origin).await;
    ada.befriend(&mut cy, &origin).await;

    let (chat, group) = make_group(&mut ada, "Book club").await;
    for member in [&mut bo, &mut cy] {
        assert_eq!(add(&mut ada, &group, member).await, chat);
    }
    assert_eq!(ada.d.messenger.group(&group).unwrap().group.roster().members.len(), 3);
    // The timelines say what happened, in typed notices the app puts into words.
    let notices = |c: &Client| -> Vec<ChatNotice> {
        c.d.messenger.messages(&chat).iter().filter_map(|m| m.notice.clone()).collect()
    };
    let (a, b, c) = (
        ada.d.messenger.identity().signing_key,
        bo.d.messenger.identity().signing_key,
        cy.d.messenger.identity().signing_key,
    );
    assert_eq!(
        notices(&ada),
        vec![
            ChatNotice::Created { by: a, name: "Book club".into() },
            ChatNotice::Added { by: a, member: b },
            ChatNotice::Added { by: a, member: c },
        ]
    );
    assert_eq!(notices(&bo)[0], ChatNotice::Added { by: a, member: b });
    assert_eq!(notices(&cy), vec![ChatNotice::Added { by: a, member: c }]);

    ada.say_in(chat, &format!("{MARKER} welcome")).await;
    assert_eq!(bo.hear().await, format!("{MARKER} welcome"));
    assert_eq!(cy.hear().await, format!("{MARKER} welcome"));
    bo.say_in(chat, "thanks").await;
    assert_eq!(ada.hear().await, "thanks");
    assert_eq!(cy.hear().await, "thanks");
    let from_bo = cy.d.messenger.messages(&chat).last().cloned().unwrap();
    assert_eq!(from_bo.author, Some(bo.d.messenger.identity().signing_key));
    // Bo is not Cy's contact: she sees him under a placeholder, not a name he picked.
    let placeholder = sotto_messenger::names::placeholder(&bo.address());
    assert_eq!(cy.d.messenger.member_name(&from_bo.author.unwrap()), placeholder);

    // Ada removes Bo: Bo learns it from the topic; Cy gets the next epoch over her session.
    let bo_key = bo.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.remove_from_group(&group, &bo_key, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    bo.wait_for(|e| matches!(e, Event::LeftGroup { .. }).then_some(())).await;
    assert_eq!(notices(&bo).last(), Some(&ChatNotice::Removed { by: a, member: b }));
    assert!(bo.d.act(|m| m.send_text(&chat, "still here?", now(), &mut OsEntropy)).is_err());

    // Cy goes offline and comes back from her store, still in the group.
    let cy_store = cy.d.store().clone();
    let cy_connection = sotto_messenger::Connection::new(&origin, "sotto-tests");
    drop(cy);
    ada.say_in(chat, &format!("{MARKER} after Bo")).await;
    let d = Driver::<MemoryStore>::load(cy_store, cy_connection).await.unwrap();
    let mut cy = Client::online(&origin, d).await;
    assert_eq!(cy.hear().await, format!("{MARKER} after Bo"));
    // Bo hears nothing more: give him time to.
    let heard = tokio::time::timeout(std::time::Duration::from_millis(800), bo.hear()).await;
    assert!(heard.is_err(), "Bo read something after his removal: {heard:?}");

    let store = std::fs::read(relay.data_dir.join("relay.redb")).unwrap();
    assert!(!store.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    assert!(!relay.log().contains(MARKER));
}

/// An admin removes someone from a group with a member they have never talked to (added by
/// another admin): that member still gets the group's next key, over a session made for it.
#[tokio::test]
async fn a_removal_reaches_members_who_are_not_the_removers_contacts() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    let mut dee = Client::join(&origin, "Dee").await;
    ada.befriend(&mut bo, &origin).await;
    ada.befriend(&mut cy, &origin).await;
    bo.befriend(&mut dee, &origin).await;

    let (chat, group) = make_group(&mut ada, "Team").await;
    for member in [&mut bo, &mut cy] {
        add(&mut ada, &group, member).await;
    }
    // Ada makes Bo an admin; Bo adds Dee, whom Ada does not know.
    let bo_key = bo.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.set_group_role(&group, &bo_key, Role::Admin, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    // Ada's posts go one at a time, each once the one before is confirmed: both pump.
    while !bo.d.messenger.group(&group).unwrap().group.roster().is_admin(&bo_key) {
        // Only the waits are cut short, never the handling of a frame.
        ada.pump_within(Duration::from_millis(50)).await;
        bo.pump_within(Duration::from_millis(50)).await;
    }
    add(&mut bo, &group, &mut dee).await;
    let dee_address = dee.address();
    while ada.d.messenger.group(&group).unwrap().group.roster().members.len() < 4 {
        // Only the waits are cut short, never the handling of a frame.
        ada.pump_within(Duration::from_millis(50)).await;
        bo.pump_within(Duration::from_millis(50)).await;
    }
    assert!(ada.d.messenger.contact(&dee_address).is_none());

    // Ada removes Cy: Dee, not her contact, gets the next epoch all the same.
    let cy_key = cy.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.remove_from_group(&group, &cy_key, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    // Ada's device fetches Dee's bundle, makes a session and sends the rekey.
    let (_, ada_topic, _) = ada.d.messenger.group(&group).unwrap().group.topic();
    let reached = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while dee.d.messenger.group(&group).unwrap().group.topic().1 != ada_topic {
            ada.pump_within(Duration::from_millis(50)).await;
            dee.pump_within(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "Dee never got the new epoch");
    ada.say_in(chat, "Cy is out").await;
    assert_eq!(dee.hear().await, "Cy is out");
    assert!(dee.d.messenger.request(&ada.address()).is_none(), "a rekey is no contact request");
}

/// A group that takes posts faster than the relay allows: the refused ones go again by
/// themselves after a pause, and every message arrives, in order.
#[tokio::test]
async fn posts_the_relay_refuses_for_a_while_go_again_by_themselves() {
    let relay = Relay::start(&["--topic-posts-per-sec", "1"]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    ada.befriend(&mut bo, &origin).await;
    let (chat, group) = make_group(&mut ada, "Fast").await;
    add(&mut ada, &group, &mut bo).await;
    for i in 0..4 {
        let step = ada.d.act(|m| m.send_text(&chat, &format!("burst {i}"), now(), &mut OsEntropy)).unwrap();
        ada.run(step).await;
    }
    let all_sent = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while ada.d.messenger.pending() > 0 {
            // The app's timer runs the clock once a second; so does this loop.
            if ada.pump_within(std::time::Duration::from_secs(1)).await.is_none() {
                ada.tick().await;
            }
        }
    })
    .await;
    assert!(all_sent.is_ok(), "refused posts were never sent again");
    let (_, metrics) = sotto_tests::http_get(&relay, "/metrics").await;
    assert!(
        metrics.contains("rate_limited"),
        "the relay refused nothing, so this proves nothing:\n{metrics}"
    );
    for i in 0..4 {
        assert_eq!(bo.hear().await, format!("burst {i}"));
    }
}

/// A member reads a removal's rekey (over their mailbox) before the posts it follows (an
/// addition just before it, in the group's topic): the rekey is kept and applies once they
/// have caught up, instead of being dropped and leaving them behind for good.
#[tokio::test]
async fn a_rekey_that_comes_before_the_posts_it_follows_still_applies() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    let mut dee = Client::join(&origin, "Dee").await;
    for other in [&mut bo, &mut cy, &mut dee] {
        ada.befriend(other, &origin).await;
    }
    let (chat, group) = make_group(&mut ada, "Order").await;
    for member in [&mut bo, &mut cy] {
        add(&mut ada, &group, member).await;
    }
    let epoch = |c: &Client| c.d.messenger.group(&group).unwrap().group.topic().0;
    while epoch(&bo) != epoch(&ada) || ada.d.messenger.pending() > 0 {
        ada.pump_within(Duration::from_millis(50)).await;
        bo.pump_within(Duration::from_millis(50)).await;
    }
    // While Bo reads nothing, Ada adds Dee and removes Cy.
    let address = dee.address();
    let step = ada.d.act(|m| m.add_to_group(&group, &address, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    let cy_key = cy.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.remove_from_group(&group, &cy_key, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    while ada.d.messenger.pending() > 0 {
        ada.pump().await;
    }
    // Bo reads the rekey first (two epochs ahead of him), then the topic.
    bo.drain_line(Line::Mailbox, Duration::from_millis(500)).await;
    let caught_up = tokio::time::timeout(Duration::from_secs(10), async {
        while epoch(&bo) != epoch(&ada) {
            bo.pump().await;
        }
    })
    .await;
    assert!(caught_up.is_ok(), "Bo dropped the early rekey and was left behind");
    ada.say_in(chat, "in order after all").await;
    assert_eq!(bo.hear().await, "in order after all");
}

/// A group of a thousand: the welcome of whoever joins next holds every change (about 300 KiB)
/// and travels in parts, one envelope each, over the relay; the newcomer puts them together,
/// joins, and reads and writes. Fails if the welcome goes whole (the relay refuses an envelope
/// that large).
#[tokio::test]
async fn someone_joins_a_group_of_a_thousand() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    ada.befriend(&mut bo, &origin).await;
    let (_, group) = make_group(&mut ada, "Town").await;
    let absent: Vec<_> = (0..1000).map(|_| Identity::generate().unwrap().public()).collect();
    let step = ada.d.act(|m| m.add_absent_members(&group, &absent, &mut OsEntropy)).unwrap();
    ada.run(step).await;
    let address = bo.address();
    let step = ada.d.act(|m| m.add_to_group(&group, &address, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    // Bo goes offline once he has part of it (kept in his store), and comes back from his
    // store: the rest is delivered again and he joins.
    let parts_kept = |c: &Client| c.d.store().snapshot().keys().filter(|k| k.starts_with("joining/")).count();
    while parts_kept(&bo) == 0 {
        bo.pump().await;
    }
    let (store, connection) =
        (bo.d.store().clone(), sotto_messenger::Connection::new(&origin, "sotto-tests"));
    drop(bo);
    let mut bo = Client::online(&origin, Driver::<MemoryStore>::load(store, connection).await.unwrap()).await;
    let chat = joined(&mut bo).await;
    assert_eq!(parts_kept(&bo), 0, "the parts go once joined");
    let joined = bo.d.messenger.group(&group).unwrap();
    assert_eq!(joined.group.roster().members.len(), 1002);
    ada.say_in(chat, "welcome to town").await;
    assert_eq!(bo.hear().await, "welcome to town");
    bo.say_in(chat, "glad to be here").await;
    assert_eq!(ada.hear().await, "glad to be here");
}

/// Pumps `admin` (who reads the door) and `member` (who asked by a link) until `member` joins;
/// returns the chat.
async fn let_in(admin: &mut Client, member: &mut Client) -> ConversationId {
    loop {
        admin.pump_within(Duration::from_millis(20)).await;
        for event in member.pump_within(Duration::from_millis(20)).await.unwrap_or_default() {
            if let Event::JoinedGroup { conversation, .. } = event {
                return conversation;
            }
        }
    }
}

/// Group invite links: someone who is nobody's contact asks by a link and is let in at once; at
/// a link that needs approval, someone waits until an admin approves; a closed link lets nobody
/// in, nor does any link someone the admin removed. Nobody's identity crosses the relay
/// unsealed, and the newcomer shows under the name they gave.
#[tokio::test]
async fn people_join_by_group_links() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    let (chat, group) = make_group(&mut ada, "Open club").await;
    let open = |ada: &mut Client, rules| {
        let (text, fx) = ada.d.messenger.open_group_link(&group, rules, &origin, &mut OsEntropy).unwrap();
        (text, ada.d.apply(fx))
    };
    let (link, step) = open(&mut ada, DoorRules::default());
    ada.run(step).await;

    // Bo, no contact of Ada's, reads the link and asks; Ada's device lets him in.
    let preview = bo.d.messenger.preview_group_link(&link, &origin, now()).unwrap();
    assert_eq!(preview.link.name, "Open club");
    let step = bo.d.act(|m| m.ask_to_join(&link, &origin, now(), &mut OsEntropy)).unwrap();
    bo.run(step).await;
    assert_eq!(bo.d.messenger.asked_groups(), vec![(group, "Open club".to_string())]);
    let b_chat = let_in(&mut ada, &mut bo).await;
    assert_eq!(b_chat, chat);
    assert!(bo.d.messenger.asked_groups().is_empty());
    bo.say_in(chat, "hello all").await;
    assert_eq!(ada.hear().await, "hello all");
    let b = bo.d.messenger.identity().signing_key;
    assert_eq!(ada.d.messenger.member_name(&b), "Bo", "the name he gave when asking");
    assert_eq!(ada.d.messenger.contacts().count(), 0, "a member is no contact");
    assert_eq!(ada.d.messenger.group_links(&group)[0].uses, 1);

    // A link that needs approval: Cy waits until Ada approves.
    let (approval_link, step) = open(&mut ada, DoorRules { approval: true, ..DoorRules::default() });
    ada.run(step).await;
    let step = cy.d.act(|m| m.ask_to_join(&approval_link, &origin, now(), &mut OsEntropy)).unwrap();
    cy.run(step).await;
    // (Cy's device keeps running too: a request that reaches the relay before Ada's device
    // opened the door is posted again by hers.)
    let name = 'asked: loop {
        cy.pump_within(Duration::from_millis(20)).await;
        for event in ada.pump_within(Duration::from_millis(20)).await.unwrap_or_default() {
            if let Event::JoinRequest { name, .. } = event {
                break 'asked name;
            }
        }
    };
    assert_eq!(name, "Cy");
    let c = cy.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.approve_join(&group, &c, now())).unwrap();
    ada.run(step).await;
    let c_chat = let_in(&mut ada, &mut cy).await;
    assert_eq!(c_chat, chat);
    assert_eq!(ada.d.messenger.group(&group).unwrap().group.roster().members.len(), 3);

    // Ada removes Cy and closes the first link. Cy asks again by the approval link: ignored
    // (an admin removed her); Dee asks by the closed one: nobody reads it.
    let step = ada.d.act(|m| m.remove_from_group(&group, &c, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    let step = ada.d.act(|m| m.close_group_link(&group, &link)).unwrap();
    ada.run(step).await;
    // (Ada's posts go one at a time: her device runs until the relay has them all.)
    while ada.d.messenger.pending() > 0 {
        ada.pump().await;
    }
    cy.wait_for(|e| matches!(e, Event::LeftGroup { .. }).then_some(())).await;
    assert_eq!(ada.d.messenger.group_links(&group).len(), 1);
    let mut dee = Client::join(&origin, "Dee").await;
    for (who, l) in [(&mut cy, &approval_link), (&mut dee, &link)] {
        let step = who.d.act(|m| m.ask_to_join(l, &origin, now(), &mut OsEntropy)).unwrap();
        who.run(step).await;
    }
    let mut heard = Vec::new();
    while let Some(events) = ada.pump_within(Duration::from_millis(800)).await {
        heard.extend(events);
    }
    assert!(!heard.iter().any(|e| matches!(e, Event::JoinRequest { .. } | Event::Problem(_))), "{heard:?}");
    assert_eq!(ada.d.messenger.group(&group).unwrap().group.roster().members.len(), 2);

    // Someone asks with an identity nobody registered (as a link holder making identities by
    // the hundred would): Ada's device asks the relay for its keys first, finds none, and adds
    // nobody.
    let (ghost_link, step) = open(&mut ada, DoorRules::default());
    ada.run(step).await;
    let preview = sotto_messenger::doors::decode(&ghost_link, &origin, now()).unwrap();
    let ghost = Identity::generate().unwrap();
    let (topic, write) = preview.link.door().unwrap();
    let payload = preview.link.request(&ghost, "Ghost", now(), &mut OsEntropy).unwrap();
    let mut raw = Conn::connect(&relay).await;
    raw.hello().await;
    // (Until the relay has Ada's subscription, it does not know the door: ask again shortly.)
    for attempt in 0.. {
        raw.send(&ClientFrame::Post {
            id: message_id(),
            topic,
            write,
            ttl_secs: 60,
            payload: payload.clone(),
        })
        .await;
        match raw.recv().await {
            Some(RelayFrame::Sent { .. }) => break,
            Some(RelayFrame::Error { code: ErrorCode::UnknownTopic, .. }) if attempt < 50 => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("the request was not taken: {other:?}"),
        }
    }
    while let Some(events) = ada.pump_within(Duration::from_millis(800)).await {
        assert!(!events.iter().any(|e| matches!(e, Event::Problem(_))), "{events:?}");
    }
    assert_eq!(ada.d.messenger.group(&group).unwrap().group.roster().members.len(), 2);

    // The link's text never reaches the relay, nor anyone's name in the clear.
    let log = relay.log();
    assert!(!log.contains(&link) && !log.contains("Open club"));
}

/// Read receipts in a group: each member who reads Ada's message says so in one post under
/// their own chain (so nobody can say it for someone else), and Ada counts "read by 1 of 2",
/// then "2 of 2".
#[tokio::test]
async fn a_group_counts_who_read_each_message() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    ada.befriend(&mut bo, &origin).await;
    ada.befriend(&mut cy, &origin).await;
    let (chat, group) = make_group(&mut ada, "Readers").await;
    for member in [&mut bo, &mut cy] {
        add(&mut ada, &group, member).await;
    }
    ada.say_in(chat, "did you read this?").await;
    let id = ada.d.messenger.messages(&chat).iter().rfind(|m| m.outgoing).unwrap().id;
    assert_eq!(ada.d.messenger.group_reads(&group, &id), Some((0, 2)));
    for (reader, expected) in [(&mut bo, 1), (&mut cy, 2)] {
        assert_eq!(reader.hear().await, "did you read this?");
        let step = reader.d.act(|m| Ok(m.mark_read(&chat, now(), &mut OsEntropy))).unwrap();
        reader.run(step).await;
        let step = reader.d.flush_receipts(now(), &mut OsEntropy);
        reader.run(step).await;
        // (The receipt goes once the relay confirmed the reader's chain post before it.)
        while reader.d.messenger.pending() > 0 {
            reader.pump().await;
        }
        while ada.d.messenger.group_reads(&group, &id) != Some((expected, 2)) {
            ada.pump().await;
        }
    }
}

/// Thirty members on the real relay: everyone's first message reaches all twenty-nine others
/// (each reads each member's chain, then their text); then one is removed, the other
/// twenty-eight are rekeyed and move on, and the removed one reads nothing after.
#[tokio::test]
async fn thirty_members_talk_and_one_removed_hears_nothing_after() {
    let relay = Relay::start(&[]).await;
    let ids: Vec<Identity> = (0..30).map(|_| Identity::generate().unwrap()).collect();
    let admin_key = ids[0].public().signing_key;
    let mut groups = vec![Group::create(&ids[0], "Thirty", &mut OsEntropy).unwrap()];
    for who in &ids[1..] {
        let (added, welcome) = groups[0].add(&ids[0], who.public(), Role::Member, &mut OsEntropy).unwrap();
        for g in &mut groups[1..] {
            g.receive(&added, &mut OsEntropy).unwrap();
        }
        groups.push(Group::join(who, &admin_key, &welcome, &mut OsEntropy).unwrap());
    }
    let mut members = Vec::new();
    for (who, group) in ids.into_iter().zip(groups) {
        members.push(Member::online(&relay, who, group).await);
    }
    assert_eq!(members[29].group.roster().members.len(), 30);
    for i in 0..30 {
        members[i].say(&format!("{MARKER} from {i}")).await;
        for (j, m) in members.iter_mut().enumerate() {
            if j != i {
                assert_eq!(m.hear().await, format!("{MARKER} from {i}"), "member {j} reading {i}");
            }
        }
    }

    // The admin removes member 7: the removal to the topic all read, the next epoch to the
    // twenty-eight who stay, each over their own session (here: handed over directly).
    let gone = members[7].who.public().signing_key;
    let (_, old_topic, old_write) = members[0].group.topic();
    let admin = &mut members[0];
    let (removed, rekeys) = admin.group.remove(&admin.who, &gone, &mut OsEntropy).unwrap();
    assert_eq!(rekeys.len(), 28);
    members[0].post_to(old_topic, old_write, removed).await;
    for m in &mut members[1..] {
        match m.conn.recv().await {
            Some(RelayFrame::Posted { payload, .. }) => {
                m.group.receive(&payload, &mut OsEntropy).unwrap();
            }
            other => panic!("expected the removal, got {other:?}"),
        }
    }
    for m in &mut members[1..] {
        let me = m.who.public().signing_key;
        if let Some((_, rekey)) = rekeys.iter().find(|(k, _)| *k == me) {
            m.group.apply_rekey(&admin_key, rekey, &mut OsEntropy).unwrap();
        }
    }
    for (j, m) in members.iter_mut().enumerate() {
        if j != 7 {
            m.subscribe().await;
        }
    }
    members[12].say(&format!("{MARKER} without 7")).await;
    for (j, m) in members.iter_mut().enumerate() {
        match j {
            7 => assert_eq!(
                m.hear_nothing_readable().await,
                Vec::<String>::new(),
                "the removed one reads nothing"
            ),
            12 => {}
            _ => assert_eq!(m.hear().await, format!("{MARKER} without 7"), "member {j}"),
        }
    }
    assert!(!relay.log().contains(MARKER));
}

/// Two admins add someone at the same moment, each starting "the next epoch": the relay's
/// topic orders their posts the same for everyone, all follow the first, and the admin whose
/// addition came second follows it too and welcomes their newcomer again. Then all five read
/// each other. (Fails without the race's resolution: Bo and Eve stay on an epoch nobody else
/// reads.)
#[tokio::test]
async fn two_admins_adding_at_once_end_in_one_epoch() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    let mut cy = Client::join(&origin, "Cy").await;
    let mut dee = Client::join(&origin, "Dee").await;
    let mut eve = Client::join(&origin, "Eve").await;
    for other in [&mut bo, &mut cy, &mut dee] {
        ada.befriend(other, &origin).await;
    }
    bo.befriend(&mut eve, &origin).await;
    let (chat, group) = make_group(&mut ada, "Race").await;
    add(&mut ada, &group, &mut bo).await;
    add(&mut ada, &group, &mut cy).await;
    let b = bo.d.messenger.identity().signing_key;
    let step = ada.d.act(|m| m.set_group_role(&group, &b, Role::Admin, now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    while ada.d.messenger.pending() > 0 {
        ada.pump().await;
    }
    while bo.d.messenger.group(&group).is_none_or(|g| !g.group.roster().is_admin(&b)) {
        bo.pump().await;
    }
    // Both add at once, before either reads the other's addition.
    let (d, e) = (dee.address(), eve.address());
    let by_ada = ada.d.act(|m| m.add_to_group(&group, &d, now(), &mut OsEntropy)).unwrap();
    let by_bo = bo.d.act(|m| m.add_to_group(&group, &e, now(), &mut OsEntropy)).unwrap();
    ada.run(by_ada).await;
    bo.run(by_bo).await;
    joined(&mut dee).await;
    joined(&mut eve).await;
    // Everyone's devices run until the five share one epoch.
    let epoch = |c: &Client| c.d.messenger.group(&group).map(|g| g.group.topic().1);
    for _ in 0..200 {
        let topics: Vec<_> = [&ada, &bo, &cy, &dee, &eve].iter().map(|c| epoch(c)).collect();
        if topics.iter().all(|t| *t == topics[0]) {
            break;
        }
        for c in [&mut ada, &mut bo, &mut cy, &mut dee, &mut eve] {
            c.pump_within(Duration::from_millis(10)).await;
        }
    }
    let topics: Vec<_> = [&ada, &bo, &cy, &dee, &eve].iter().map(|c| epoch(c)).collect();
    assert!(topics.iter().all(|t| *t == topics[0]), "one epoch for all five");
    assert_eq!(ada.d.messenger.group(&group).unwrap().group.roster().members.len(), 5);
    ada.say_in(chat, "all five of us").await;
    for c in [&mut bo, &mut cy, &mut dee, &mut eve] {
        assert_eq!(c.hear().await, "all five of us");
    }
    eve.say_in(chat, "Eve here").await;
    for c in [&mut ada, &mut bo, &mut cy, &mut dee] {
        assert_eq!(c.hear().await, "Eve here");
    }
}

/// In a group, through the real relay: a member's edit, reaction and deletion reach the
/// others; a timer set by one member holds for all, and a message read by another member
/// starts its author's countdown (the group's receipt marks it read).
#[tokio::test]
async fn members_change_messages_and_a_timer_holds_for_the_whole_group() {
    let relay = Relay::start(&[]).await;
    let origin = relay.http("");
    let mut ada = Client::join(&origin, "Ada").await;
    let mut bo = Client::join(&origin, "Bo").await;
    ada.befriend(&mut bo, &origin).await;
    let (chat, group) = make_group(&mut ada, "Walkers").await;
    assert_eq!(add(&mut ada, &group, &mut bo).await, chat);

    bo.say_in(chat, "meet at noon").await;
    assert_eq!(ada.hear().await, "meet at noon");
    let id = bo.d.messenger.messages(&chat).last().unwrap().id;
    let step = bo.d.act(|m| m.edit(&chat, id, "meet at one", now(), &mut OsEntropy)).unwrap();
    bo.run(step).await;
    settle(&mut bo, &group).await;
    let step = ada.d.act(|m| m.react(&chat, id, Some("👍".into()), now(), &mut OsEntropy)).unwrap();
    ada.run(step).await;
    settle(&mut ada, &group).await;
    let words =
        |c: &Client| c.d.messenger.message(&chat, &id).map(|m| (m.text.clone(), m.edited, m.reactions.len()));
    while words(&ada) != Some(("meet at one".into(), true, 1)) {
        ada.pump().await;
    }
    while words(&bo) != Some(("meet at one".into(), true, 1)) {
        bo.pump().await;
    }

    // Bo sets a timer; Ada's group takes it.
    let step = bo.d.act(|m| m.set_timer(&chat, Some(60), now(), &mut OsEntropy)).unwrap();
    bo.run(step).await;
    settle(&mut bo, &group).await;
    while ada.d.messenger.timer(&chat) != Some(60) {
        ada.pump().await;
    }
    // Ada writes; Bo reads it: his group receipt starts her copy's countdown (a minute, not
    // the day-long deadline it had from sending).
    let sent = now();
    ada.say_in(chat, "gone in a minute").await;
    while bo.d.messenger.messages(&chat).last().is_none_or(|m| m.text != "gone in a minute") {
        bo.pump().await;
    }
    let step = bo.d.act(|m| Ok(m.mark_read(&chat, now(), &mut OsEntropy))).unwrap();
    bo.run(step).await;
    let step = bo.d.flush_receipts(now(), &mut OsEntropy);
    bo.run(step).await;
    settle(&mut bo, &group).await;
    while ada.d.messenger.next_expiry().is_none_or(|at| at > sent + 24 * 3600 * 1000) {
        ada.pump().await;
    }
    assert!(ada.d.messenger.next_expiry().unwrap() <= now() + 60_000);

    // Bo deletes his message for everyone.
    let step = bo.d.act(|m| m.delete_for_everyone(&chat, id, now(), &mut OsEntropy)).unwrap();
    bo.run(step).await;
    settle(&mut bo, &group).await;
    while !ada.d.messenger.message(&chat, &id).is_some_and(|m| m.deleted) {
        ada.pump().await;
    }
    assert!(ada.d.messenger.search("meet").is_empty());
}

/// Pumps `c` until the relay has confirmed every post it queued in `group` (they go one at a
/// time, each after the one before is confirmed).
async fn settle(c: &mut Client, group: &GroupId) {
    while c.d.messenger.group(group).is_some_and(|g| g.pending().next().is_some()) {
        c.pump().await;
    }
}
