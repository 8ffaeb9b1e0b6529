//! Runs in headless Chromium: the engine works with the browser's randomness and crypto.
#![cfg(target_arch = "wasm32")]

use sotto_engine::Identity;
use sotto_engine::identity::verify_identity;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn identity_is_made_from_browser_randomness() {
    let a = Identity::generate().expect("crypto.getRandomValues works");
    let b = Identity::generate().expect("crypto.getRandomValues works");
    assert_ne!(a.address(), b.address());
    verify_identity(&a.public()).expect("self-signed identity verifies");
}
