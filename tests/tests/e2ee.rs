//! Two engine devices talk end to end through the real relay binary, and the relay's data
//! directory and log never contain what they said.

use sotto_engine::consts::PREKEY_BATCH;
use sotto_engine::device::{Device, MemoryStorage, Output, Storage, text};
use sotto_engine::message::Body;
use sotto_engine::random::OsEntropy;
use sotto_shared::{ClientFrame, RelayFrame};
use sotto_tests::{Conn, Relay, message_id};

struct Person {
    device: Device,
    store: MemoryStorage,
    conn: Conn,
}

impl Person {
    async fn join(relay: &Relay) -> Person {
        let (device, out) = Device::create(&mut OsEntropy).unwrap();
        let conn = Conn::login(relay, device.identity()).await.conn;
        let mut p = Person { device, store: MemoryStorage::default(), conn };
        p.apply(out).await;
        assert!(
            matches!(p.conn.recv().await, Some(RelayFrame::PrekeysStored { one_time }) if one_time as usize == PREKEY_BATCH)
        );
        p
    }

    /// Persist first, then send: the order the engine requires.
    async fn apply(&mut self, out: Output) {
        self.store.commit(&out.persist).unwrap();
        for frame in &out.send {
            self.conn.send(frame).await;
        }
    }

    async fn say(&mut self, to: sotto_shared::Address, words: &str) {
        let id = message_id();
        let out =
            self.device.send(&to, &text(words, 0, &mut OsEntropy).unwrap(), id, &mut OsEntropy).unwrap();
        self.apply(out).await;
        assert_eq!(self.conn.recv().await, Some(RelayFrame::Sent { id }));
    }

    async fn hear(&mut self) -> String {
        loop {
            match self.conn.recv().await {
                Some(RelayFrame::Deliver { id, payload, .. }) => {
                    let (out, result) = self.device.receive(id, &payload, &mut OsEntropy);
                    result.unwrap();
                    let words = out.received.iter().find_map(|r| match &r.message.body {
                        Body::Text(t) => Some(t.clone()),
                        _ => None,
                    });
                    self.apply(out).await;
                    if let Some(w) = words {
                        return w;
                    }
                }
                Some(RelayFrame::PrekeysLow { .. }) => continue,
                other => panic!("expected a delivery, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn end_to_end_through_the_relay_leaves_no_plaintext_behind() {
    let mut relay = Relay::start(&["--log", "debug"]).await;
    let mut alice = Person::join(&relay).await;
    let mut bob = Person::join(&relay).await;

    // Alice fetches Bob's bundle from the relay (X3DH with a one-time prekey).
    alice.conn.send(&ClientFrame::FetchBundle { address: bob.device.address() }).await;
    let bundle = match alice.conn.recv().await {
        Some(RelayFrame::Bundle { bundle: Some(b), .. }) => b,
        other => panic!("expected a bundle, got {other:?}"),
    };
    assert!(bundle.one_time_prekey.is_some());
    let out = alice.device.start_conversation(&bundle, &mut OsEntropy).unwrap();
    alice.apply(out).await;

    let markers: Vec<String> = (0..10).map(|i| format!("PLAINTEXT-MARKER-{i}-zebra-quartz")).collect();
    for (i, m) in markers.iter().enumerate() {
        if i % 2 == 0 {
            alice.say(bob.device.address(), m).await;
            assert_eq!(&bob.hear().await, m);
        } else {
            bob.say(alice.device.address(), m).await;
            assert_eq!(&alice.hear().await, m);
        }
    }
    // Bob goes offline; Alice writes; Bob comes back with a restored device and reads it.
    let offline = "PLAINTEXT-MARKER-offline-zebra-quartz";
    let bob_records = bob.store.load_all().unwrap();
    let bob_address = bob.device.address();
    drop(bob.conn);
    alice.say(bob_address, offline).await;
    let device = Device::restore(bob_records).unwrap();
    let mut conn = Conn::connect(&relay).await;
    let challenge = conn.hello().await;
    conn.send(&device.authenticate(&relay.http(""), &challenge)).await;
    assert!(matches!(conn.recv().await, Some(RelayFrame::Authenticated { queued: 1, .. })));
    let mut bob = Person { device, store: bob.store, conn };
    assert_eq!(bob.hear().await, offline);

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
    let mut haystack = relay.log().into_bytes();
    for entry in walk(&relay.data_dir) {
        haystack.extend(std::fs::read(entry).unwrap());
    }
    assert!(haystack.windows(canary.len()).any(|w| w == canary), "the search finds stored bytes");
    for m in markers.iter().map(String::as_str).chain([offline]) {
        for needle in [m.as_bytes(), b"zebra-quartz".as_slice()] {
            assert!(!haystack.windows(needle.len()).any(|w| w == needle), "{m} leaked to the relay");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
