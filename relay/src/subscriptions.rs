//! Who reads which topic, and pushing each committed post to them: one encoded frame shared by
//! every reader, whatever the group's size.
//!
//! A connection that subscribes first catches up from the store, page by page, while live
//! posts for it are held aside; once the last page is sent, the held posts numbered past it
//! follow and the reader is live. Held or queued posts are bounded per connection: a live
//! reader that falls further behind is sent back to the store (told to subscribe again from
//! the last post it got) and gets no pushes until it does; one catching up drops what it held
//! and reads the store once more. So a slow member never costs the relay unbounded memory, nor
//! holds up the others, nor loses a post.

use crate::hub::{Control, Handle};
use crate::store::TopicKey;
use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use sotto_shared::{RelayFrame, TopicId, encode_relay};
use std::sync::{Arc, Mutex, MutexGuard};

enum State {
    /// Reading the stored log; live posts wait here (`bytes` of them). `overflowed`: some
    /// were dropped, so the reader must read the store once more before going live (and holds
    /// nothing more until then).
    CatchingUp { held: Vec<(u64, Bytes)>, bytes: usize, overflowed: bool },
    /// Has every post through `through`: later ones are pushed, earlier ones (a push racing
    /// the page that already held it) are not.
    Live { through: u64 },
    /// Fell behind while live and was told to read the store again: nothing is pushed until
    /// it subscribes again.
    Behind,
}

struct Reader {
    handle: Arc<Handle>,
    topic: TopicId,
    state: State,
}

/// What became of a reader that finished catching up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caught {
    /// It is live now.
    Live,
    /// Posts arrived faster than it could hold them: read the store again from where the page
    /// ended.
    ReadAgain,
    /// It is no longer subscribed (closed, or unsubscribed meanwhile).
    Gone,
}

/// What one push did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pushed {
    /// Readers that took the post.
    pub taken: usize,
    /// Live readers sent back to the store for being too far behind.
    pub sent_back: usize,
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
    pub fn subscribe(&self, key: TopicKey, topic: TopicId, handle: &Arc<Handle>) {
        let mut topics = self.lock();
        let readers = topics.entry(key).or_default();
        let state = State::CatchingUp { held: Vec::new(), bytes: 0, overflowed: false };
        match readers.iter_mut().find(|r| r.handle.id == handle.id) {
            Some(r) => r.state = state,
            None => readers.push(Reader { handle: handle.clone(), topic, state }),
        }
    }

    /// The reader has been sent the log through `through`: unless it must read the store
    /// again, `announce` queues its reply, then the held posts numbered past `through` follow
    /// and it is live (all under the lock, so no live post can come between).
    pub fn catch_up(&self, key: &TopicKey, id: u64, through: u64, announce: impl FnOnce()) -> Caught {
        let mut topics = self.lock();
        let Some(reader) = topics.get_mut(key).and_then(|rs| rs.iter_mut().find(|r| r.handle.id == id))
        else {
            return Caught::Gone;
        };
        let state = std::mem::replace(&mut reader.state, State::Live { through });
        let State::CatchingUp { held, overflowed, .. } = state else { return Caught::Live };
        if overflowed {
            reader.state = State::CatchingUp { held: Vec::new(), bytes: 0, overflowed: false };
            return Caught::ReadAgain;
        }
        announce();
        let mut last = through;
        for (seq, frame) in held {
            if seq > last {
                // Held posts fit the budget when held; queued together they may not, and then
                // the reader is behind like any other.
                if !reader.handle.post(frame, self.max_bytes) {
                    reader.state = State::Behind;
                    send_back(&reader.handle, reader.topic, last);
                    return Caught::Live;
                }
                last = seq;
            }
        }
        reader.state = State::Live { through: last };
        Caught::Live
    }

    pub fn unsubscribe(&self, key: &TopicKey, id: u64) {
        let mut topics = self.lock();
        if let Some(readers) = topics.get_mut(key) {
            readers.retain(|r| r.handle.id != id);
            if readers.is_empty() {
                topics.remove(key);
            }
        }
    }

    /// Queues `frame` (not a post: a channel's new state) for every reader of `topic`.
    pub fn announce(&self, key: &TopicKey, frame: &Bytes) {
        if let Some(readers) = self.lock().get(key) {
            for r in readers {
                r.handle.control(Control::Frame(frame.clone(), None));
            }
        }
    }

    /// Queues `frame` for every reader of `topic` and stops reading it for them (a channel the
    /// operator blocked).
    pub fn close(&self, key: &TopicKey, frame: &Bytes) {
        if let Some(readers) = self.lock().remove(key) {
            for r in readers {
                r.handle.control(Control::Frame(frame.clone(), None));
            }
        }
    }

    /// Pushes a committed post to every reader of `topic`.
    pub fn push(&self, key: &TopicKey, seq: u64, frame: &Bytes) -> Pushed {
        let mut topics = self.lock();
        let Some(readers) = topics.get_mut(key) else { return Pushed::default() };
        let mut pushed = Pushed::default();
        for r in readers.iter_mut() {
            match &mut r.state {
                State::Live { through } if seq <= *through => {}
                State::Live { through } => {
                    if r.handle.post(frame.clone(), self.max_bytes) {
                        *through = seq;
                        pushed.taken += 1;
                    } else {
                        let through = *through;
                        r.state = State::Behind;
                        send_back(&r.handle, r.topic, through);
                        pushed.sent_back += 1;
                    }
                }
                State::CatchingUp { overflowed: true, .. } | State::Behind => {}
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
                }
            }
        }
        pushed
    }
}

/// Tells a reader that fell behind to read the store again from `through` (the paging reply,
/// saying there is more).
fn send_back(handle: &Handle, topic: TopicId, through: u64) {
    let frame = RelayFrame::Subscribed { topic, first: 0, through, more: true };
    handle.control(Control::Frame(Bytes::from(encode_relay(&frame)), None));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Outgoing;
    use sotto_shared::decode_relay;

    const T: TopicId = TopicId([9; 32]);

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
    /// already held, and in order; a push racing the page that had it is not sent again.
    #[tokio::test]
    async fn held_posts_follow_the_page_without_repeats() {
        let subs = Subscriptions::new(1000);
        let h = Arc::new(Handle::new(1));
        let t = TopicKey([1; 32]);
        subs.subscribe(t, T, &h);
        assert_eq!(subs.push(&t, 5, &frame(5)).taken, 0);
        assert_eq!(subs.push(&t, 6, &frame(6)).taken, 0);
        assert_eq!(subs.catch_up(&t, 1, 5, || {}), Caught::Live);
        assert_eq!(next_post(&h).await, frame(6));
        // Post 6's own push arrives late (committed before the page was read): not again.
        assert_eq!(subs.push(&t, 6, &frame(6)).taken, 0);
        assert_eq!(subs.push(&t, 7, &frame(7)).taken, 1);
        assert_eq!(next_post(&h).await, frame(7));
        subs.unsubscribe(&t, 1);
        assert_eq!(subs.push(&t, 8, &frame(8)), Pushed::default());
    }

    /// A reader that cannot keep up is sent back to the store (live) or reads it again
    /// (catching up); nothing is lost, and the others are not held up.
    #[tokio::test]
    async fn slow_readers_are_sent_back_to_the_store() {
        let subs = Subscriptions::new(25);
        let (slow, fast) = (Arc::new(Handle::new(1)), Arc::new(Handle::new(2)));
        let t = TopicKey([2; 32]);
        subs.subscribe(t, T, &slow);
        for seq in 1..=3 {
            subs.push(&t, seq, &frame(seq as u8));
        }
        assert_eq!(subs.catch_up(&t, 1, 0, || {}), Caught::ReadAgain);
        assert_eq!(subs.catch_up(&t, 1, 3, || {}), Caught::Live);
        subs.subscribe(t, T, &fast);
        assert_eq!(subs.catch_up(&t, 2, 3, || {}), Caught::Live);
        assert_eq!(subs.push(&t, 4, &frame(4)).taken, 2);
        assert_eq!(subs.push(&t, 5, &frame(5)).taken, 2);
        assert_eq!(next_post(&fast).await, frame(4));
        assert_eq!(next_post(&fast).await, frame(5));
        // `slow` reads nothing: its third post does not fit, so it is told to read the store
        // again from post 5, and gets no more pushes until it subscribes again.
        assert_eq!(subs.push(&t, 6, &frame(6)), Pushed { taken: 1, sent_back: 1 });
        assert_eq!(subs.push(&t, 7, &frame(7)).taken, 1);
        assert_eq!(next_post(&slow).await, frame(4));
        assert_eq!(next_post(&slow).await, frame(5));
        match slow.next(false).await {
            Outgoing::Control(Control::Frame(bytes, _)) => assert_eq!(
                decode_relay(&bytes).unwrap(),
                RelayFrame::Subscribed { topic: T, first: 0, through: 5, more: true }
            ),
            _ => panic!("expected the notice to read the store again"),
        }
        assert_eq!(next_post(&fast).await, frame(6));
        subs.subscribe(t, T, &slow);
        assert_eq!(subs.catch_up(&t, 1, 7, || {}), Caught::Live);
        assert_eq!(subs.push(&t, 8, &frame(8)).taken, 2);
    }
}
