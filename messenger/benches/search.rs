//! Search over a history of 100,000 messages, natively (the same in the browser:
//! client/benches/engine_in_browser.rs). Run: scripts/bench-engine.sh.

use criterion::{Criterion, criterion_group, criterion_main};
use sotto_messenger::RecordKey;
use sotto_messenger::search::{MAX_RESULTS, SearchIndex, sample_index};
use std::hint::black_box;

const MESSAGES: usize = 100_000;

fn search(c: &mut Criterion) {
    let (index, parts) = sample_index(MESSAGES);
    assert_eq!(index.search("lighthouse", MAX_RESULTS).len(), MAX_RESULTS.min(MESSAGES / 1000));
    c.bench_function("search_100k_word", |b| b.iter(|| index.search(black_box("lighthouse"), MAX_RESULTS)));
    c.bench_function("search_100k_two_words", |b| {
        b.iter(|| index.search(black_box("kalo lighthouse"), MAX_RESULTS))
    });
    c.bench_function("search_100k_first_letters", |b| b.iter(|| index.search(black_box("li"), MAX_RESULTS)));
    c.bench_function("search_index_load_100k", |b| {
        b.iter(|| {
            let mut again = SearchIndex::default();
            for (key, bytes) in &parts {
                let RecordKey::Search(n) = key else { unreachable!() };
                again.restore(*n, key, bytes).unwrap();
            }
            again
        })
    });
}

criterion_group!(benches, search);
criterion_main!(benches);
