//! Native figure to set beside the browser's (`tests/browser/file-speed.mjs`): sealing and
//! opening 256 MiB piece by piece, as the file worker does.
//!   cargo run --release -p sotto-worker --example speed

use sotto_worker::{Opening, PIECE_BYTES, Sealing};
use std::time::Instant;

fn main() {
    const PIECES: usize = 64;
    let piece = vec![7u8; PIECE_BYTES];
    let mut s = Sealing::new().expect("entropy");
    let t = Instant::now();
    let sealed: Vec<Vec<u8>> = (0..PIECES).map(|i| s.seal(&piece, i + 1 == PIECES).expect("seals")).collect();
    let digest = s.finish().expect("finishes");
    let seal = t.elapsed();
    let mut o = Opening::new(s.key(), (PIECES * PIECE_BYTES) as u64, digest).expect("opens");
    let t = Instant::now();
    for p in &sealed {
        o.open(p).expect("opens");
    }
    o.finish().expect("the digest matches");
    let open = t.elapsed();
    let mb = (PIECES * PIECE_BYTES) as f64 / 1e6;
    println!(
        "native: seal {:.0} MB/s, open {:.0} MB/s ({mb:.0} MB)",
        mb / seal.as_secs_f64(),
        mb / open.as_secs_f64()
    );
}
