//! Who reads which topic, and pushing each committed post to them: one encoded frame shared by
//! every reader, whatever the group's size.
//!
//! A connection that subscribes first catches up from the store, page by page, while live
//! posts for it are held aside; once the last page is sent, the held posts numbered past it
//! follow and the reader is live. Held or queued posts are bounded per connection: a reader
//! that falls further behind is closed, and reconnects to read from its cursor, so a slow
//! member never costs the relay unbounded memory nor holds up the others.

use crate::hub::Handle;
use crate::store::TopicKey;
use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use std::sync::{Arc, Mutex, MutexGuard};

enum State {
    /// Reading the stored log; live posts wait here (`bytes` of them). `overflowed`: some
    /// were dropped, so the reader must read the store once more before going live.
    CatchingUp {
        held: Vec<(u64, Bytes)>,
        bytes: usize,
        overflowed: bool,
    },
    Live,
}

struct Reader {
    handle: Arc<Handle>,
    state: State,
}

/// What became of a reader that finished catching up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    /// It is live now.
    Live,
    /// Posts arrived faster than it could hold them: read the store again from the cursor.
    ReadAgain,
    /// It is no longer subscribed (closed, or unsubscribed meanwhile).
    Gone,
}

pub struct Subscriptions {
    topics: Mutex<HashMap<TopicKey, Vec<Reader>>>,
    /// Post bytes one connection may have waiting (held or queued).
    max_bytes: usize,
}

impl Subscriptions {
    pub fn new(max_bytes: usize) -> Subscriptions {
        Subscriptions { topics: Mutex::new(HashMap::new()), max_bytes: max_bytes.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TopicKey, Vec<Reader>>> {
        // Nothing panics while holding it; if something ever did, the map is still consistent.
        self.topics.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts (or restarts) catching up `handle` on `topic`; live posts are held from now on.
    pub fn subscribe(&self, topic: TopicKey, handle: &Arc<Handle>) {
        let mut topics = self.lock();
        let readers = topics.entry(topic).or_default();
        let state = State::CatchingUp { held: Vec::new(), bytes: 0, overflowed: false };
        match readers.iter_mut().find(|r| r.handle.id == handle.id) {
            Some(r) => r.state = state,
            None => readers.push(Reader { handle: handle.clone(), state }),
        }
    }

    /// The reader has been sent the log through `through`: unless it must read the store
    /// again, `announce` queues its reply, then the held posts numbered past `through` follow
    /// and it is live (all under the lock, so no live post can come between).
    pub fn catch_up(&self, topic: &TopicKey, id: u64, through: u64, announce: impl FnOnce()) -> Caught {
        let mut topics = self.lock();
        let Some(reader) = topics.get_mut(topic).and_then(|rs| rs.iter_mut().find(|r| r.handle.id == id))
        else {
            return Caught::Gone;
        };
        let state = std::mem::replace(&mut reader.state, State::Live);
        let State::CatchingUp { held, overflowed, .. } = state else { return Caught::Live };
        if overflowed {
            reader.state = State::CatchingUp { held: Vec::new(), bytes: 0, overflowed: false };
            return Caught::ReadAgain;
        }
        announce();
        for (seq, frame) in held {
            if seq > through && !reader.handle.post(frame, self.max_bytes) {
                reader.handle.close();
                return Caught::Gone;
            }
        }
        Caught::Live
    }

    pub fn unsubscribe(&self, topic: &TopicKey, id: u64) {
        let mut topics = self.lock();
        if let Some(readers) = topics.get_mut(topic) {
            readers.retain(|r| r.handle.id != id);
            if readers.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Pushes a committed post to every reader of `topic`. Returns how many took it and how
    /// many were closed for being too far behind.
    pub fn push(&self, topic: &TopicKey, seq: u64, frame: &Bytes) -> (usize, usize) {
        let mut topics = self.lock();
        let Some(readers) = topics.get_mut(topic) else { return (0, 0) };
        let (mut pushed, mut closed) = (0, 0);
        readers.retain_mut(|r| {
            let kept = match &mut r.state {
                State::Live => r.handle.post(frame.clone(), self.max_bytes),
                State::CatchingUp { held, bytes, overflowed } => {
                    if *bytes + frame.len() <= self.max_bytes {
                        *bytes += frame.len();
                        held.push((seq, frame.clone()));
                    } else {
                        // It reads the store again before going live: nothing is lost.
                        *held = Vec::new();
                        *bytes = 0;
                        *overflowed = true;
                    }
                    true
                }
            };
            if kept {
                pushed += usize::from(matches!(r.state, State::Live));
            } else {
                r.handle.close();
                closed += 1;
            }
            kept
        });
        if readers.is_empty() {
            topics.remove(topic);
        }
        (pushed, closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Control, Outgoing};

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    async fn next_post(h: &Handle) -> Bytes {
        match h.next(false).await {
            Outgoing::Control(Control::Post(b)) => b,
            _ => panic!("expected a post"),
        }
    }

    /// Posts that arrive while a reader catches up follow its page, without the ones the page
    /// already held, and in order.
    #[tokio::test]
    async fn held_posts_follow_the_page_without_repeats() {
        let subs = Subscriptions::new(1000);
        let h = Arc::new(Handle::new(1));
        let t = TopicKey([1; 32]);
        subs.subscribe(t, &h);
        assert_eq!(subs.push(&t, 5, &frame(5)), (0, 0));
        assert_eq!(subs.push(&t, 6, &frame(6)), (0, 0));
        assert_eq!(subs.catch_up(&t, 1, 5, || {}), Caught::Live);
        assert_eq!(next_post(&h).await, frame(6));
        assert_eq!(subs.push(&t, 7, &frame(7)), (1, 0));
        assert_eq!(next_post(&h).await, frame(7));
        subs.unsubscribe(&t, 1);
        assert_eq!(subs.push(&t, 8, &frame(8)), (0, 0));
    }

    /// A reader that cannot keep up is closed (live) or sent back to the store (catching up);
    /// the others are not held up.
    #[tokio::test]
    async fn slow_readers_are_closed_or_read_again() {
        let subs = Subscriptions::new(25);
        let (slow, fast) = (Arc::new(Handle::new(1)), Arc::new(Handle::new(2)));
        let t = TopicKey([2; 32]);
        subs.subscribe(t, &slow);
        for seq in 1..=3 {
            subs.push(&t, seq, &frame(seq as u8));
        }
        assert_eq!(subs.catch_up(&t, 1, 0, || {}), Caught::ReadAgain);
        assert_eq!(subs.catch_up(&t, 1, 3, || {}), Caught::Live);
        subs.subscribe(t, &fast);
        assert_eq!(subs.catch_up(&t, 2, 3, || {}), Caught::Live);
        assert_eq!(subs.push(&t, 4, &frame(4)), (2, 0));
        assert_eq!(subs.push(&t, 5, &frame(5)), (2, 0));
        assert_eq!(next_post(&fast).await, frame(4));
        assert_eq!(next_post(&fast).await, frame(5));
        // `slow` reads nothing: its third post does not fit.
        assert_eq!(subs.push(&t, 6, &frame(6)), (1, 1));
        assert!(matches!(slow.next(false).await, Outgoing::Closed));
        assert_eq!(next_post(&fast).await, frame(6));
        assert_eq!(subs.catch_up(&t, 1, 6, || {}), Caught::Gone);
    }
}
