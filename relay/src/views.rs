//! Approximate view counts of channel posts: each delivery of a post to a reader that had not
//! read it (a live push, or a page past the reader's cursor) counts one view. Counted in
//! memory and written to the store every few seconds (`Relay::flush_views`), so a post read by
//! 10,000 subscribers costs one write, not 10,000. A relay that stops loses the views of its
//! last few seconds; views name nobody.

use foldhash::{HashMap, HashMapExt};
use sotto_shared::channel::ChannelId;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub struct Views {
    pending: Mutex<HashMap<ChannelId, BTreeMap<u64, u64>>>,
}

impl Views {
    fn lock(&self) -> MutexGuard<'_, HashMap<ChannelId, BTreeMap<u64, u64>>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, channel: ChannelId, seq: u64, n: u64) {
        if n > 0 {
            *self.lock().entry(channel).or_default().entry(seq).or_default() += n;
        }
    }

    /// Views counted but not yet written, added to `stored` (sorted by seq).
    pub fn with_pending(&self, channel: &ChannelId, mut stored: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        if let Some(pending) = self.lock().get(channel) {
            for (&seq, &n) in pending {
                match stored.binary_search_by_key(&seq, |v| v.0) {
                    Ok(i) => stored[i].1 += n,
                    Err(i) => stored.insert(i, (seq, n)),
                }
            }
        }
        let over = stored.len().saturating_sub(sotto_shared::limits::CHANNEL_VIEWS_SHOWN);
        stored.drain(..over);
        stored
    }

    /// Everything counted since the last call.
    pub fn take(&self) -> Vec<(ChannelId, Vec<(u64, u64)>)> {
        std::mem::replace(&mut *self.lock(), HashMap::new())
            .into_iter()
            .map(|(c, v)| (c, v.into_iter().collect()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_add_up_and_are_taken_once() {
        let v = Views::default();
        let c = ChannelId([1; 16]);
        v.add(c, 5, 2);
        v.add(c, 5, 3);
        v.add(c, 7, 1);
        v.add(c, 9, 0);
        assert_eq!(v.with_pending(&c, vec![(3, 1), (5, 10)]), vec![(3, 1), (5, 15), (7, 1)]);
        assert_eq!(v.take(), vec![(c, vec![(5, 5), (7, 1)])]);
        assert!(v.take().is_empty());
    }
}
