//! The engine's benchmark workloads in headless Chromium (wasm32), measured with the
//! Criterion port in wasm-bindgen-test. Run: scripts/bench-engine.sh.
#![cfg(target_arch = "wasm32")]

use sotto_engine::identity::Identity;
use sotto_engine::prekeys::Prekeys;
use sotto_engine::random::OsEntropy;
use sotto_engine::workloads;
use std::hint::black_box;
use std::time::Duration;
use wasm_bindgen_test::{Criterion, wasm_bindgen_bench, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A benchmark blocks the page; the test runner gives up on a page silent for 20 s, so each
/// one stays well under that.
fn quick(c: &mut Criterion) {
    let configured = std::mem::take(c)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    *c = configured;
}

#[wasm_bindgen_bench]
fn x3dh_handshake(c: &mut Criterion) {
    quick(c);
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut prekeys = Prekeys::new(&mut OsEntropy).unwrap();
    c.bench_function("x3dh_handshake", |b| {
        b.iter(|| workloads::x3dh_handshake(&alice, &bob, &mut prekeys).unwrap())
    });
}

#[wasm_bindgen_bench]
fn ratchet_encrypt_decrypt(c: &mut Criterion) {
    quick(c);
    let mut pair = workloads::pair().unwrap();
    let msg = [0x42u8; 256];
    c.bench_function("ratchet_encrypt_decrypt_256B", |b| {
        b.iter(|| workloads::encrypt_decrypt(&mut pair, black_box(&msg)).unwrap())
    });
}

#[wasm_bindgen_bench]
fn dh_round_trip(c: &mut Criterion) {
    quick(c);
    let mut pair = workloads::pair().unwrap();
    c.bench_function("dh_ratchet_round_trip", |b| b.iter(|| workloads::dh_round_trip(&mut pair).unwrap()));
}

#[wasm_bindgen_bench]
fn seal_open(c: &mut Criterion) {
    quick(c);
    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let mut pair = workloads::pair().unwrap();
    c.bench_function("seal_open", |b| b.iter(|| workloads::seal_open(&alice, &bob, &mut pair).unwrap()));
}

#[wasm_bindgen_bench]
fn aead_1mib(c: &mut Criterion) {
    quick(c);
    let data = vec![0u8; 1 << 20];
    c.bench_function("chacha20poly1305_1MiB", |b| b.iter(|| workloads::aead(black_box(&data)).unwrap()));
}

/// A file's encryption as the web app will run it (issue 14): 64 KiB chunks and the
/// ciphertext's digest, sealed then opened; a quarter MiB, to fit the runner's time.
#[wasm_bindgen_bench]
fn file_1mib(c: &mut Criterion) {
    // Short, like group_send: the runner gives up on the whole run past about 20 s.
    let configured = std::mem::take(c)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    *c = configured;
    let data = vec![0u8; 256 << 10];
    c.bench_function("file_seal_and_open_256KiB", |b| {
        b.iter(|| workloads::file_round_trip(black_box(&data)).unwrap())
    });
}

/// Sending costs the same whatever the group's size (one encryption, one signature); the
/// group is small here so that making it fits the runner's 20 s. A join of a 1,000-member group
/// is measured end to end in the browser instead (tests/browser/group-join.mjs).
#[wasm_bindgen_bench]
fn group_send(c: &mut Criterion) {
    // Shorter than the others: the runner gives up on the whole run past about 20 s of it.
    let configured = std::mem::take(c)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    *c = configured;
    let mut group = workloads::big_group(10).unwrap();
    c.bench_function("group_send", |b| b.iter(|| workloads::group_send(&mut group).unwrap()));
}

/// Search over 100,000 messages as the app runs it (messenger/benches/search.rs natively):
/// each keystroke's search, and reading the stored index back at start.
#[wasm_bindgen_bench]
fn search_100k(c: &mut Criterion) {
    let configured = std::mem::take(c)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2));
    *c = configured;
    let (index, parts) = sotto_messenger::search::sample_index(100_000);
    c.bench_function("search_100k_word", |b| b.iter(|| index.search(black_box("lighthouse"), 50)));
    c.bench_function("search_100k_first_letters", |b| b.iter(|| index.search(black_box("li"), 50)));
    c.bench_function("search_index_load_100k", |b| {
        b.iter(|| {
            let mut again = sotto_messenger::search::SearchIndex::default();
            for (key, bytes) in &parts {
                let sotto_messenger::RecordKey::Search(n) = key else { unreachable!() };
                again.restore(*n, key, bytes).unwrap();
            }
            again
        })
    });
}
