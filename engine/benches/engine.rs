//! `cargo bench -p sotto-engine`: the engine's core operations, natively. The same workloads
//! run in headless Chromium via scripts/bench-engine.sh; both go into docs/benchmarks.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sotto_engine::identity::Identity;
use sotto_engine::prekeys::Prekeys;
use sotto_engine::random::OsEntropy;
use sotto_engine::workloads;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let alice = Identity::generate().unwrap();
    let bob = Identity::generate().unwrap();
    let mut prekeys = Prekeys::new(&mut OsEntropy).unwrap();
    c.bench_function("x3dh_handshake", |b| {
        b.iter(|| workloads::x3dh_handshake(&alice, &bob, &mut prekeys).unwrap())
    });

    let mut pair = workloads::pair().unwrap();
    let msg = [0x42u8; 256];
    c.bench_function("ratchet_encrypt_decrypt_256B", |b| {
        b.iter(|| workloads::encrypt_decrypt(&mut pair, black_box(&msg)).unwrap())
    });

    let mut pair = workloads::pair().unwrap();
    c.bench_function("dh_ratchet_round_trip (2 steps)", |b| {
        b.iter(|| workloads::dh_round_trip(&mut pair).unwrap())
    });

    let mut pair = workloads::pair().unwrap();
    c.bench_function("seal_open (sealed sender, one message)", |b| {
        b.iter(|| workloads::seal_open(&alice, &bob, &mut pair).unwrap())
    });

    let mut group = workloads::big_group(1000).unwrap();
    c.bench_function("group_send (one text, 1,000 members)", |b| {
        b.iter(|| workloads::group_send(&mut group).unwrap())
    });
    c.bench_function("group_join (welcome of a 1,000-member group)", |b| {
        b.iter(|| workloads::group_join(&group).unwrap())
    });

    let data = vec![0u8; 1 << 20];
    let mut g = c.benchmark_group("aead");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("chacha20poly1305_1MiB", |b| b.iter(|| workloads::aead(black_box(&data)).unwrap()));
    // Sealed in 64 KiB chunks with the ciphertext's digest, then opened and checked: both
    // directions, so half this rate is each side's.
    g.bench_function("file_seal_and_open_1MiB", |b| {
        b.iter(|| workloads::file_round_trip(black_box(&data)).unwrap())
    });
    g.finish();
}

criterion_group!(engine, benches);
criterion_main!(engine);
