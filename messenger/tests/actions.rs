//! Replies, edits, deletions, reactions, disappearing messages and search between two people,
//! natively, each step restored from the records it wrote.

mod common;

use common::{NOW, Person, connect};
use sotto_engine::random::OsEntropy;
use sotto_messenger::history::{ChatNotice, Reaction};
use sotto_messenger::{ConversationId, Event, MessengerError, Status};
use sotto_shared::ClientFrame;

fn chat(with: &Person) -> ConversationId {
    ConversationId::Direct(with.d.messenger.address())
}

/// Whether any stored record holds `marker` (the memory store keeps records in the clear, so
/// this sees what a sealed store would hold once opened).
fn stored_anywhere(p: &Person, marker: &str) -> bool {
    p.records().values().any(|v| v.windows(marker.len()).any(|w| w == marker.as_bytes()))
}

async fn pair() -> (Person, Person) {
    let (mut ada, mut bo) = (Person::new("Ada").await, Person::new("Bo").await);
    connect(&mut ada, &mut bo).await;
    (ada, bo)
}

async fn say(from: &mut Person, to: &mut Person, text: &str, now: u64) -> [u8; 16] {
    let c = chat(to);
    let fx = from.d.messenger.send_text(&c, text, now, &mut OsEntropy).unwrap();
    from.apply(fx).await;
    from.flush_to(to).await;
    from.d.messenger.messages(&c).last().unwrap().id
}

#[tokio::test]
async fn replies_edits_deletions_and_reactions_cross_and_survive_a_reload() {
    let (mut ada, mut bo) = pair().await;
    let (to_bo, to_ada) = (chat(&bo), chat(&ada));
    let first = say(&mut ada, &mut bo, "lunch at noon?", NOW + 1).await;

    // Bo answers it, quoting it.
    let fx = bo.d.messenger.reply(&to_ada, first, "yes, at the pier", NOW + 2, &mut OsEntropy).unwrap();
    bo.apply(fx).await;
    bo.flush_to(&mut ada).await;
    let reply = ada.d.messenger.messages(&to_bo).last().unwrap().clone();
    assert_eq!((reply.text.as_str(), reply.reply_to), ("yes, at the pier", Some(first)));

    // Ada changes her words; Bo sees the new ones, marked edited.
    let fx = ada.d.messenger.edit(&to_bo, first, "lunch at one?", NOW + 3, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;
    let edited = bo.d.messenger.messages(&to_ada)[0].clone();
    assert_eq!((edited.text.as_str(), edited.edited), ("lunch at one?", true));

    // Bo cannot edit Ada's message, nor his own a day later.
    assert_eq!(
        bo.d.messenger.edit(&to_ada, first, "x", NOW, &mut OsEntropy).err(),
        Some(MessengerError::NotEditable)
    );
    let late = NOW + 2 + 25 * 3600 * 1000;
    assert_eq!(
        bo.d.messenger.edit(&to_ada, reply.id, "x", late, &mut OsEntropy).err(),
        Some(MessengerError::TooLate)
    );

    // Both react; a second reaction replaces the first.
    for emoji in ["👍", "🎉"] {
        let fx = bo.d.messenger.react(&to_ada, first, Some(emoji.into()), NOW + 4, &mut OsEntropy).unwrap();
        bo.apply(fx).await;
    }
    bo.flush_to(&mut ada).await;
    let fx = ada.d.messenger.react(&to_bo, first, Some("❤️".into()), NOW + 5, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;
    let bo_key = bo.d.messenger.identity().signing_key;
    let reactions = ada.d.messenger.messages(&to_bo)[0].reactions.clone();
    assert_eq!(
        reactions,
        vec![Reaction { by: Some(bo_key), emoji: "🎉".into() }, Reaction { by: None, emoji: "❤️".into() }]
    );
    assert_eq!(bo.d.messenger.messages(&to_ada)[0].reactions.len(), 2);

    // Ada deletes her message for everyone: its words are gone from both stores.
    let fx = ada.d.messenger.delete_for_everyone(&to_bo, first, NOW + 6, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;
    for (p, c) in [(&ada, &to_bo), (&bo, &to_ada)] {
        let m = &p.d.messenger.messages(c)[0];
        assert!(m.deleted && m.text.is_empty() && m.reactions.is_empty());
        assert!(!stored_anywhere(p, "lunch at"), "the words are gone from storage");
        assert!(p.d.messenger.search("lunch").is_empty(), "and from the search index");
    }

    // Everything is kept across a reload.
    ada.reload().await;
    bo.reload().await;
    let reply = ada.d.messenger.messages(&to_bo).last().unwrap();
    assert_eq!(reply.reply_to, Some(first));
    assert!(bo.d.messenger.messages(&to_ada)[0].deleted);

    // Bo deletes the reply for himself only.
    let seq = bo.d.messenger.messages(&to_ada).last().unwrap().seq;
    let fx = bo.d.messenger.delete_for_me(&to_ada, seq);
    bo.apply(fx).await;
    assert!(!stored_anywhere(&bo, "at the pier"));
    assert!(stored_anywhere(&ada, "at the pier"), "Ada keeps her copy");
}

#[tokio::test]
async fn a_disappearing_message_goes_from_both_sides_after_it_is_read() {
    let (mut ada, mut bo) = pair().await;
    let (to_bo, to_ada) = (chat(&bo), chat(&ada));

    // Ada sets a 5-second timer: both chats say so.
    let fx = ada.d.messenger.set_timer(&to_bo, Some(5), NOW + 1, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;
    assert_eq!(bo.d.messenger.timer(&to_ada), Some(5));
    let ada_key = ada.d.messenger.identity().signing_key;
    let notice = bo.d.messenger.messages(&to_ada).last().unwrap().notice.clone();
    assert_eq!(notice, Some(ChatNotice::Timer { by: ada_key, secs: Some(5) }));
    assert_eq!(
        bo.d.messenger.set_timer(&to_ada, Some(7), NOW, &mut OsEntropy).err(),
        Some(MessengerError::NoSuchTimer)
    );

    // Her next message carries the timer; the relay may keep it for the timer and a day.
    let fx = ada.d.messenger.send_text(&to_bo, "burn after reading", NOW + 2, &mut OsEntropy).unwrap();
    let ttls: Vec<u32> = fx
        .frames
        .iter()
        .filter_map(|f| match f {
            ClientFrame::Send { ttl_secs, .. } | ClientFrame::SendAsContact { ttl_secs, .. } => {
                Some(*ttl_secs)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ttls, vec![5 + 86_400]);
    ada.apply(fx).await;
    ada.flush_to(&mut bo).await;

    // Unread, it stays: its countdown has not started.
    assert!(bo.d.messenger.next_expiry().is_none());
    let fx = bo.d.messenger.expire(NOW + 60_000);
    assert!(fx.writes.is_empty());

    // Bo reads it at NOW + 10 s: it goes 5 s later, and so does Ada's copy once his receipt
    // reaches her.
    let read_at = NOW + 10_000;
    let fx = bo.d.messenger.mark_read(&to_ada, read_at, &mut OsEntropy);
    bo.apply(fx).await;
    bo.flush_to(&mut ada).await;
    assert_eq!(bo.d.messenger.next_expiry(), Some(read_at + 5_000));
    assert_eq!(ada.d.messenger.messages(&to_bo).last().unwrap().text, "burn after reading");
    assert_eq!(ada.d.messenger.messages(&to_bo).last().unwrap().status, Status::Read);
    let ada_due = ada.d.messenger.next_expiry().expect("Ada's copy counts down");

    // A reload does not stop the countdown.
    bo.reload().await;
    assert_eq!(bo.d.messenger.next_expiry(), Some(read_at + 5_000));

    for (p, due) in [(&mut bo, read_at + 5_000), (&mut ada, ada_due)] {
        let fx = p.d.messenger.expire(due - 1);
        assert!(fx.writes.is_empty(), "not yet");
        // The driver's clock deletes them, as for a bot; the app also wakes on time for it.
        let step = p.d.tick(due);
        let events = p.run(step).await;
        assert!(events.contains(&Event::Expired));
        assert!(!stored_anywhere(p, "burn after reading"), "gone from storage");
        assert!(p.d.messenger.search("burn").is_empty(), "and from the search index");
        p.reload().await;
        let c = p.d.messenger.conversations()[0];
        assert!(p.d.messenger.messages(&c).iter().all(|m| m.text != "burn after reading"));
    }
}

#[tokio::test]
async fn search_finds_words_across_chats_after_a_reload() {
    let (mut ada, mut bo) = pair().await;
    let mut cy = Person::new("Cy").await;
    connect(&mut ada, &mut cy).await;
    say(&mut bo, &mut ada, "The Lighthouse keeper's key is under the mat", NOW + 1).await;
    say(&mut cy, &mut ada, "see you at the lighthouse", NOW + 2).await;
    say(&mut cy, &mut ada, "unrelated", NOW + 3).await;
    ada.reload().await;
    let found: Vec<(ConversationId, String)> =
        ada.d.messenger.search("LIGHT").iter().map(|e| (e.conversation, e.text.clone())).collect();
    assert_eq!(
        found,
        vec![
            (chat(&cy), "see you at the lighthouse".to_string()),
            (chat(&bo), "The Lighthouse keeper's key is under the mat".to_string()),
        ]
    );
    assert_eq!(ada.d.messenger.search("lighthouse key").len(), 1, "every word must be there");
    assert!(ada.d.messenger.search("   ").is_empty());
}

#[tokio::test]
async fn a_store_from_before_the_index_has_its_history_indexed_once_at_load() {
    use sotto_messenger::{RecordKey, RecordStore};
    let (mut ada, mut bo) = pair().await;
    say(&mut bo, &mut ada, "an old message about kayaks", NOW + 1).await;
    // Ada's store as a version without the index left it: no parts, no marker.
    let old: Vec<(RecordKey, Option<sotto_messenger::RecordBytes>)> = ada
        .records()
        .keys()
        .filter(|name| name.starts_with("search/") || *name == "indexed")
        .map(|name| (RecordKey::parse(name).unwrap(), None))
        .collect();
    assert_eq!(old.len(), 2, "a part and the marker");
    ada.d.store().save_changes(old).await.unwrap();
    ada.reload().await;
    assert_eq!(ada.d.messenger.search("kayak").len(), 1);
    assert!(ada.records().contains_key("indexed"));
    // With the marker there, a load indexes nothing again (the parts, taken away, stay away).
    let parts: Vec<(RecordKey, Option<sotto_messenger::RecordBytes>)> = ada
        .records()
        .keys()
        .filter(|name| name.starts_with("search/"))
        .map(|name| (RecordKey::parse(name).unwrap(), None))
        .collect();
    ada.d.store().save_changes(parts).await.unwrap();
    ada.reload().await;
    assert!(ada.d.messenger.search("kayak").is_empty(), "indexed once only");

    // A part that cannot be read does not stop the load: the index is built again, and what
    // was left of the old one goes.
    ada.d.store().put_raw("search/00000000", vec![6, 0xff, 0xff]);
    ada.d.store().put_raw("search/00000007", vec![6, 0xff, 0xff]);
    ada.reload().await;
    assert_eq!(ada.d.messenger.search("kayak").len(), 1);
    assert!(!ada.records().contains_key("search/00000007"));
}

#[tokio::test]
async fn our_disappearing_message_goes_by_its_deadline_even_if_never_read() {
    let (mut ada, mut bo) = pair().await;
    let to_bo = chat(&bo);
    let fx = ada.d.messenger.set_timer(&to_bo, Some(30), NOW + 1, &mut OsEntropy).unwrap();
    ada.apply(fx).await;
    let sent_at = NOW + 2;
    say(&mut ada, &mut bo, "nobody reads this", sent_at).await;
    // Bo's app sends no read receipt (it never opens the chat): Ada's copy still goes once the
    // relay could no longer deliver it either.
    let deadline = sent_at + (30 + 86_400) * 1000;
    assert_eq!(ada.d.messenger.next_expiry(), Some(deadline));
    let step = ada.d.tick(deadline);
    ada.run(step).await;
    assert!(!stored_anywhere(&ada, "nobody reads this"));
    assert!(ada.d.messenger.messages(&to_bo).iter().all(|m| m.text != "nobody reads this"));
}
