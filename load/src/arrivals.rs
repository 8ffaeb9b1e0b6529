//! Which readers have each post of a fan-out (a group's or a channel's), and when the last one
//! got it: the "upload → last reader" figure both scenarios print.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Per post: readers still to receive it, and the latest arrival (µs since the epoch).
pub struct Arrivals {
    left: Vec<AtomicU64>,
    last: Vec<AtomicU64>,
}

impl Arrivals {
    pub fn new(posts: usize, readers: usize) -> Arrivals {
        Arrivals {
            left: (0..posts).map(|_| AtomicU64::new(readers as u64)).collect(),
            last: (0..posts).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// A reader got post `i` at `now` (µs since the epoch); a number out of range is ignored.
    pub fn arrived(&self, i: usize, now: u64) {
        if let (Some(last), Some(left)) = (self.last.get(i), self.left.get(i)) {
            last.fetch_max(now, Relaxed);
            left.fetch_sub(1, Relaxed);
        }
    }

    /// From each post's upload (`sent_at`, µs since the epoch) to its last reader, for the
    /// posts every reader got; and how many some reader never got.
    pub fn to_last(&self, sent_at: &[u64]) -> Result<(Histogram<u64>, usize), hdrhistogram::CreationError> {
        let mut to_last = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut incomplete = 0;
        for (i, sent) in sent_at.iter().enumerate() {
            if self.left[i].load(Relaxed) > 0 {
                incomplete += 1;
            } else {
                let _ = to_last.record(self.last[i].load(Relaxed).saturating_sub(*sent).max(1));
            }
        }
        Ok((to_last, incomplete))
    }
}
