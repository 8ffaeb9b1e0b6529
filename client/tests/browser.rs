//! Runs in headless Chromium: the engine works with the browser's randomness and crypto, and a
//! whole conversation (invite bundle, X3DH, ratchet both ways, sealed envelopes, a restart from
//! storage) runs inside the page.
#![cfg(target_arch = "wasm32")]

use sotto_engine::Identity;
use sotto_engine::device::{Device, MemoryStorage, Output, Storage, text};
use sotto_engine::identity::verify_identity;
use sotto_engine::message::Body;
use sotto_engine::random::OsEntropy;
use sotto_engine::safety::safety_number;
use sotto_shared::MessageId;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn identity_is_made_from_browser_randomness() {
    let a = Identity::generate().expect("crypto.getRandomValues works");
    let b = Identity::generate().expect("crypto.getRandomValues works");
    assert_ne!(a.address(), b.address());
    verify_identity(&a.public()).expect("self-signed identity verifies");
}

fn envelope(out: &Output) -> (MessageId, Vec<u8>) {
    let (id, payload) = out.envelope().expect("an envelope to send");
    (id, payload.to_vec())
}

#[wasm_bindgen_test]
fn a_full_conversation_in_the_browser() {
    let e = &mut OsEntropy;
    let (mut alice, out) = Device::create(e).unwrap();
    let mut alice_store = MemoryStorage::default();
    alice_store.commit(&out.persist).unwrap();
    let (mut bob, out) = Device::create(e).unwrap();
    let mut bob_store = MemoryStorage::default();
    bob_store.commit(&out.persist).unwrap();

    let (bundle, out) = bob.invite_bundle(e).unwrap();
    bob_store.commit(&out.persist).unwrap();
    alice.start_conversation(&bundle, e).unwrap();
    for i in 0..10 {
        let out = alice
            .send(&bob.address(), &text(&format!("a{i}"), 0, e).unwrap(), MessageId([i; 16]), e)
            .unwrap();
        let (id, payload) = envelope(&out);
        let (got, result) = bob.receive(id, &payload, e);
        result.unwrap();
        bob_store.commit(&got.persist).unwrap();
        assert_eq!(got.received[0].message.body, Body::Text(format!("a{i}")));
        let out = bob
            .send(&alice.address(), &text(&format!("b{i}"), 0, e).unwrap(), MessageId([100 + i; 16]), e)
            .unwrap();
        bob_store.commit(&out.persist).unwrap();
        let (id, payload) = envelope(&out);
        let (got, result) = alice.receive(id, &payload, e);
        result.unwrap();
        assert_eq!(got.received[0].message.body, Body::Text(format!("b{i}")));
    }
    // Bob reloads the page: everything comes back from storage and the conversation goes on.
    let mut bob = Device::restore(bob_store.load_all().unwrap()).unwrap();
    let out =
        alice.send(&bob.address(), &text("after reload", 0, e).unwrap(), MessageId([200; 16]), e).unwrap();
    let (id, payload) = envelope(&out);
    let (got, result) = bob.receive(id, &payload, e);
    result.unwrap();
    assert_eq!(got.received[0].message.body, Body::Text("after reload".into()));
    let (a, b) = (alice.identity().public(), bob.identity().public());
    assert_eq!(safety_number(&a, &b), safety_number(&b, &a));
}
