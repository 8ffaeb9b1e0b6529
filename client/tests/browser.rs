//! Runs in headless Chromium: the engine works with the browser's randomness and crypto, and a
//! whole conversation runs inside the page through the messenger's driver over IndexedDB, and
//! the IndexedDB store passes the store conformance suite.
#![cfg(target_arch = "wasm32")]

use sotto_client::layout;
use sotto_client::store::{Idb, Sealed};
use sotto_engine::Identity;
use sotto_engine::identity::verify_identity;
use sotto_engine::random::OsEntropy;
use sotto_engine::vault::Vault;
use sotto_messenger::{Connection, ConversationId, Driver, Line, Step};
use sotto_shared::{ClientFrame, MessageId, RelayFrame};
use std::rc::Rc;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn identity_is_made_from_browser_randomness() {
    let a = Identity::generate().expect("crypto.getRandomValues works");
    let b = Identity::generate().expect("crypto.getRandomValues works");
    assert_ne!(a.address(), b.address());
    verify_identity(&a.public()).expect("self-signed identity verifies");
}

const ORIGIN: &str = "http://127.0.0.1:8080";

/// One person's driver over its own IndexedDB database, sealed with its own vault.
async fn person(db: &str, name: &str) -> (Driver<Sealed>, Vec<(MessageId, Vec<u8>)>) {
    let idb = Idb::open(db).await.expect("IndexedDB opens");
    let store = Sealed::new(idb, Rc::new(Vault::create(&mut OsEntropy).unwrap()));
    let (mut d, step) = Driver::create(store, Connection::new(ORIGIN, "t"), name, 0, &mut OsEntropy).unwrap();
    let mut sent = run(&d, step).await;
    sent.extend(login(&mut d).await);
    (d, sent)
}

/// Logs the mailbox line in and greets the anonymous one.
async fn login(d: &mut Driver<Sealed>) -> Vec<(MessageId, Vec<u8>)> {
    let mut sent = Vec::new();
    for line in Line::BOTH {
        d.connecting(line, 0);
        d.opened(line, 0);
        let welcome = RelayFrame::Welcome { version: 1, relay: "r".into(), challenge: [1; 32] };
        let step = d.received(line, welcome, 0, &mut OsEntropy);
        sent.extend(run(d, step).await);
    }
    let address = d.messenger.address();
    let authed = RelayFrame::Authenticated { address, queued: 0 };
    let step = d.received(Line::Mailbox, authed, 0, &mut OsEntropy);
    sent.extend(run(d, step).await);
    sent
}

/// Waits for the step's commit; the envelopes it then lets go.
async fn run(d: &Driver<Sealed>, step: Step) -> Vec<(MessageId, Vec<u8>)> {
    let Some(commit) = step.commit else { return Vec::new() };
    let frames = commit.durable().await.expect("IndexedDB commits");
    d.sendable(frames)
        .into_iter()
        .filter_map(|(_, f)| match f {
            ClientFrame::Send { id, payload, .. } | ClientFrame::SendAsContact { id, payload, .. } => {
                Some((id, payload))
            }
            _ => None,
        })
        .collect()
}

/// Hands envelopes over as the relay would; the envelopes the receiver sends back.
async fn deliver(envelopes: Vec<(MessageId, Vec<u8>)>, to: &mut Driver<Sealed>) -> Vec<(MessageId, Vec<u8>)> {
    let mut back = Vec::new();
    for (id, payload) in envelopes {
        let deliver = RelayFrame::Deliver { id, received_at: 0, payload };
        let step = to.received(Line::Mailbox, deliver, 0, &mut OsEntropy);
        back.extend(run(to, step).await);
    }
    let step = to.flush_receipts(0, &mut OsEntropy);
    back.extend(run(to, step).await);
    back
}

/// The messenger's driver over the real IndexedDB store, in the page: an invite, texts both
/// ways, a reload of one side from IndexedDB, and the chat goes on.
#[wasm_bindgen_test]
async fn a_full_conversation_over_indexeddb() {
    let (mut ada, _) = person("conversation-ada", "Ada").await;
    let (mut bo, _) = person("conversation-bo", "Bo").await;
    let (link, fx) = ada.messenger.create_invite(ORIGIN, 0, &mut OsEntropy).unwrap();
    let step = ada.apply(fx);
    run(&ada, step).await;
    let preview = bo.messenger.preview_invite(link.rsplit('/').next().unwrap(), ORIGIN, 0).unwrap();
    let step = bo.act(|m| m.accept_invite(&preview, 0, &mut OsEntropy)).unwrap();
    let hello = run(&bo, step).await;
    deliver(hello, &mut ada).await;
    let (to_bo, to_ada) =
        (ConversationId::Direct(bo.messenger.address()), ConversationId::Direct(ada.messenger.address()));
    for i in 0..5 {
        let step = ada.act(|m| m.send_text(&to_bo, &format!("a{i}"), 0, &mut OsEntropy)).unwrap();
        let out = run(&ada, step).await;
        deliver(out, &mut bo).await;
        let step = bo.act(|m| m.send_text(&to_ada, &format!("b{i}"), 0, &mut OsEntropy)).unwrap();
        let out = run(&bo, step).await;
        deliver(out, &mut ada).await;
    }
    // Bo reloads the page: everything comes back from IndexedDB and the chat goes on.
    let store = bo.store().clone();
    let mut bo = Driver::load(store, Connection::new(ORIGIN, "t")).await.expect("loads");
    login(&mut bo).await;
    let step = ada.act(|m| m.send_text(&to_bo, "after reload", 0, &mut OsEntropy)).unwrap();
    let out = run(&ada, step).await;
    deliver(out, &mut bo).await;
    let texts: Vec<_> = bo.messenger.messages(&to_ada).iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), 11);
    assert_eq!(texts.last().map(String::as_str), Some("after reload"));
    assert_eq!(bo.messenger.safety(&ada.messenger.address()), ada.messenger.safety(&bo.messenger.address()));
}

/// The IndexedDB store, sealed with a vault, behaves as every store must.
#[wasm_bindgen_test]
async fn indexeddb_store_conforms() {
    let idb = Idb::open("conformance").await.expect("IndexedDB opens");
    let vault = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    sotto_messenger::store::conformance::run(&Sealed::new(idb, vault)).await;
}

/// A new data key re-seals every record in one transaction: afterwards the old key opens none,
/// the new one opens all, and reads and writes go on under the new key.
#[wasm_bindgen_test]
async fn resealing_moves_every_record_to_the_new_key() {
    use sotto_messenger::{RecordBytes, RecordKey, RecordStore};
    let idb = Idb::open("reseal").await.expect("IndexedDB opens");
    let old = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    let store = Sealed::new(idb.clone(), old.clone());
    let ada = RecordKey::Contact(sotto_shared::Address([0xad; 32]));
    let writes = vec![
        (RecordKey::Profile, Some(RecordBytes::new(b"profile".to_vec()))),
        (RecordKey::Outbox(1), Some(RecordBytes::new(b"one".to_vec()))),
        (ada.clone(), Some(RecordBytes::new(b"ada".to_vec()))),
    ];
    store.save_changes(writes).await.unwrap();
    let new = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    let saving = store.reseal(new.clone(), b"new header".to_vec());
    // Written after the re-seal was started: sealed under the new key, and ordered after it.
    let later = store.save_changes(vec![(RecordKey::Outbox(2), Some(RecordBytes::new(b"two".to_vec())))]);
    saving.await.expect("re-sealed");
    later.await.unwrap();
    let raw = idb.load_all().await.unwrap();
    assert_eq!(
        raw.iter().find(|(n, _)| n == "vault").map(|(_, v)| v.as_slice()),
        Some(b"new header".as_slice())
    );
    let (old_names, new_names) = (layout::names(&old).unwrap(), layout::names(&new).unwrap());
    let index = raw.iter().find(|(n, _)| n == layout::INDEX_RECORD).map(|(_, v)| v).unwrap();
    assert!(layout::open_index(&old, index).is_err() && layout::open_index(&new, index).is_ok());
    for (name, sealed) in raw.iter().filter(|(n, _)| !layout::is_raw(n) && n != layout::INDEX_RECORD) {
        assert!(layout::open(&old, &old_names, name, sealed).is_err(), "{name} still opens with the old key");
        assert!(
            layout::open(&new, &new_names, name, sealed).is_ok(),
            "{name} does not open with the new key"
        );
    }
    // The keyed names changed with the key.
    assert!(raw.iter().any(|(n, _)| *n == ada.stored(|p| new_names.keyed(p))));
    assert!(!raw.iter().any(|(n, _)| *n == ada.stored(|p| old_names.keyed(p))));
    assert_eq!(raw.len(), 7, "vault, layout, index, profile, a contact, two outbox entries");
    assert_eq!(store.get(&ada).await.unwrap().as_deref().map(Vec::as_slice), Some(b"ada".as_slice()));
    assert_eq!(
        store.get(&RecordKey::Outbox(1)).await.unwrap().as_deref().map(Vec::as_slice),
        Some(b"one".as_slice())
    );
}

/// A re-seal that fails (a record that does not open) changes nothing, and what is written
/// after it is sealed under the old key, which still opens everything.
#[wasm_bindgen_test]
async fn a_failed_reseal_leaves_the_old_key_in_charge() {
    use sotto_messenger::{RecordBytes, RecordKey, RecordStore};
    let idb = Idb::open("reseal-fails").await.expect("IndexedDB opens");
    let old = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    let store = Sealed::new(idb.clone(), old.clone());
    store
        .save_changes(vec![(RecordKey::Profile, Some(RecordBytes::new(b"profile".to_vec())))])
        .await
        .unwrap();
    // A record sealed under some other key: the re-seal cannot open it.
    let stranger = Vault::create(&mut OsEntropy).unwrap();
    let foreign = stranger.seal("contact/zz", b"?", &mut OsEntropy).unwrap();
    idb.commit(
        vec![("contact/zz".into(), Some(foreign)), ("vault".into(), Some(b"old header".to_vec()))],
        false,
    )
    .await
    .unwrap();
    let new = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    assert!(store.reseal(new.clone(), b"new header".to_vec()).await.is_err());
    store
        .save_changes(vec![(RecordKey::Outbox(1), Some(RecordBytes::new(b"after".to_vec())))])
        .await
        .unwrap();
    let raw = idb.load_all().await.unwrap();
    assert_eq!(
        raw.iter().find(|(n, _)| n == "vault").map(|(_, v)| v.as_slice()),
        Some(b"old header".as_slice())
    );
    let names = layout::names(&old).unwrap();
    for (name, sealed) in raw.iter().filter(|(n, _)| n.as_str() == "profile" || n.starts_with("outbox/")) {
        assert!(layout::open(&old, &names, name, sealed).is_ok(), "{name} is not under the old key");
    }
}

/// A store written before names were keyed (layout 1: names in the clear) is brought to the
/// keyed layout in one step, and reads the same through the store afterwards.
#[wasm_bindgen_test]
async fn a_layout_1_store_is_upgraded_to_keyed_names() {
    use sotto_messenger::{ConversationId, Order, RecordKey, RecordRange, RecordStore};
    let idb = Idb::open("layout-1").await.expect("IndexedDB opens");
    let vault = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    let bo = sotto_shared::Address([0xb0; 32]);
    let chat = ConversationId::Direct(bo);
    let old: Vec<(RecordKey, &[u8])> = vec![
        (RecordKey::Profile, b"me"),
        (RecordKey::Contact(bo), b"bo"),
        (RecordKey::Message(chat, 1), b"one"),
        (RecordKey::Message(chat, 2), b"two"),
    ];
    let mut raw: Vec<(String, Option<Vec<u8>>)> = old
        .iter()
        .map(|(k, v)| (k.to_string(), Some(vault.seal(&k.to_string(), v, &mut OsEntropy).unwrap())))
        .collect();
    raw.push(("vault".into(), Some(b"header".to_vec())));
    raw.push(("later/kind".into(), Some(b"a newer version's".to_vec())));
    idb.commit(raw, false).await.unwrap();

    let store = Sealed::open(idb.clone(), vault.clone()).await.expect("upgraded");
    Sealed::open(idb.clone(), vault.clone()).await.expect("a second time only opens");
    let names: Vec<String> = idb.load_all().await.unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.contains(&bo.to_hex()[..8])), "{names:?}");
    assert!(names.contains(&"layout".to_string()) && names.contains(&"vault".to_string()));
    assert!(!names.contains(&"later/kind".to_string()), "a newer version's kind cannot be re-keyed: dropped");
    assert_eq!(
        store.get(&RecordKey::Contact(bo)).await.unwrap().as_deref().map(Vec::as_slice),
        Some(b"bo".as_slice())
    );
    let all = RecordRange::Messages { conversation: chat, from: 0, to: u64::MAX };
    let page = store.range(all, Order::Descending, None).await.unwrap();
    let texts: Vec<&[u8]> = page.iter().map(|(_, v)| v.as_slice()).collect();
    assert_eq!(texts, [b"two".as_slice(), b"one".as_slice()], "in order, newest first");
}

/// An old copy of a record put back in its place is noticed when it is read, and so is an
/// old index put back (records written after it are newer than it says).
#[wasm_bindgen_test]
async fn an_old_copy_put_back_is_noticed() {
    use sotto_engine::device::StorageKey;
    use sotto_messenger::{ConversationId, RecordBytes, RecordKey, RecordStore, StoreError};
    let idb = Idb::open("rollback").await.expect("IndexedDB opens");
    let raw_layout = layout::layout_record();
    idb.commit(vec![(raw_layout.0, Some(raw_layout.1))], false).await.unwrap();
    let vault = Rc::new(Vault::create(&mut OsEntropy).unwrap());
    let store = Sealed::new(idb.clone(), vault.clone());
    let bo = sotto_shared::Address([5; 32]);
    let session: RecordKey = StorageKey::Conversation(bo).into();
    let body = |b: &[u8]| Some(RecordBytes::new(b.to_vec()));
    store.save_changes(vec![(session.clone(), body(b"chain at 1"))]).await.unwrap();
    let first = idb.load_all().await.unwrap();
    store.save_changes(vec![(session.clone(), body(b"chain at 2"))]).await.unwrap();
    let message = RecordKey::Message(ConversationId::Direct(bo), 9);
    store.save_changes(vec![(message.clone(), body(b"later"))]).await.unwrap();
    let reopened = Sealed::open(idb.clone(), vault.clone()).await.unwrap();
    assert_eq!(
        reopened.get(&session).await.unwrap().as_deref().map(Vec::as_slice),
        Some(b"chain at 2".as_slice())
    );

    // The session as it was after the first commit, put back.
    let old_session = first.iter().find(|(n, _)| n.starts_with("session/")).cloned().unwrap();
    idb.commit(vec![(old_session.0, Some(old_session.1))], false).await.unwrap();
    let reopened = Sealed::open(idb.clone(), vault.clone()).await.unwrap();
    assert!(matches!(reopened.get(&session).await, Err(StoreError::Damaged(_))), "an old session noticed");
    let sessions =
        reopened.range(sotto_messenger::RecordRange::Sessions, sotto_messenger::Order::Ascending, None).await;
    assert!(matches!(sessions, Err(StoreError::Damaged(_))));

    // The index as it was after the first commit, put back: the message written later is
    // newer than it knows.
    let old_index = first.iter().find(|(n, _)| n == layout::INDEX_RECORD).cloned().unwrap();
    idb.commit(vec![(old_index.0, Some(old_index.1))], false).await.unwrap();
    let reopened = Sealed::open(idb.clone(), vault.clone()).await.unwrap();
    assert!(matches!(reopened.get(&message).await, Err(StoreError::Damaged(_))), "an old index noticed");

    // A listed record removed is noticed too.
    let store = Sealed::open(idb.clone(), vault.clone()).await.unwrap();
    let contact = RecordKey::Contact(bo);
    store.save_changes(vec![(contact.clone(), body(b"bo"))]).await.unwrap();
    let names = layout::names(&vault).unwrap();
    idb.commit(vec![(contact.stored(|p| names.keyed(p)), None)], false).await.unwrap();
    let reopened = Sealed::open(idb.clone(), vault.clone()).await.unwrap();
    assert!(matches!(reopened.get(&contact).await, Err(StoreError::Damaged(_))), "a removed contact noticed");
}
