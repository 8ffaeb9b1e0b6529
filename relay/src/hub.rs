//! Who is online: the connections attached to each mailbox, and pushing to them.
//!
//! Pushes never block and never buffer without bound: each connection has a bounded delivery
//! queue; when it is full the connection is marked lagging and later re-reads what it missed
//! from the store, in order (see `connection::write_loop`).

use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use sotto_shared::{Address, RelayFrame, encode_relay};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// An envelope ready to go out: its store sequence number and the encoded `Deliver` frame.
#[derive(Clone)]
pub struct Delivery {
    pub seq: u64,
    pub frame: Bytes,
}

/// Something for a connection's socket other than a delivery. Frames travel encoded, so a
/// queued item is small (this queue exists for every idle connection too).
pub enum Control {
    /// A frame; the permit, if any, bounds the connection's replies in flight.
    Frame(Bytes, Option<OwnedSemaphorePermit>),
    /// The connection now reads this mailbox.
    Attach(Address),
    /// Wake the writer (it has lagged deliveries to load).
    Kick,
    /// Send a WebSocket ping (the connection has been quiet).
    Ping,
    /// A live topic post (counted in the outbox's post bytes until written).
    Post(Bytes),
    Close,
}

/// A connection as the hub sees it: what waits to be written to its socket. One lock and one
/// wake-up per connection instead of two channels: an idle connection's queues hold no memory
/// (tokio's channels allocate a block of 32 slots each up front, 3 KiB per connection), and a
/// queue that grew in a burst is released once it drains.
pub struct Handle {
    pub id: u64,
    outbox: Mutex<Outbox>,
    wake: Notify,
    /// Woken whenever queued post bytes go down (a topic's pages wait for room).
    drained: Notify,
    pub lagging: AtomicBool,
    /// The highest sequence number this connection missed while lagging.
    pub lag_seq: AtomicU64,
}

#[derive(Default)]
struct Outbox {
    control: VecDeque<Control>,
    deliveries: VecDeque<Delivery>,
    /// Bytes of frames waiting in `deliveries`.
    delivery_bytes: usize,
    /// Bytes of live topic posts waiting in `control`.
    post_bytes: usize,
    /// The writer has stopped: nothing more is queued (so permits are released at once).
    closed: bool,
}

/// What a connection's writer takes next.
pub enum Outgoing {
    Control(Control),
    Delivery(Delivery),
    /// The outbox was closed. Only the writer closes it, on its way out, so it never sees
    /// this in practice; it exists so that `next` cannot wait on a closed outbox.
    Closed,
}

enum Queued {
    Yes,
    Full(Delivery),
    Closed,
}

impl Handle {
    pub fn new(id: u64) -> Handle {
        Handle {
            id,
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            drained: Notify::new(),
            lagging: AtomicBool::new(false),
            lag_seq: AtomicU64::new(0),
        }
    }

    fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // Nothing panics while holding it; if something ever did, the queue is still consistent.
        self.outbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a reply or notice; dropped (with its permit) once the writer has stopped.
    pub fn control(&self, c: Control) {
        let mut outbox = self.outbox();
        if !outbox.closed {
            outbox.control.push_back(c);
            drop(outbox);
            self.wake.notify_one();
        }
    }

    /// Queues a live topic post unless `max_bytes` of them already wait; `false` if it was
    /// not queued.
    pub fn post(&self, frame: Bytes, max_bytes: usize) -> bool {
        let mut outbox = self.outbox();
        if outbox.closed || outbox.post_bytes + frame.len() > max_bytes {
            return false;
        }
        outbox.post_bytes += frame.len();
        outbox.control.push_back(Control::Post(frame));
        drop(outbox);
        self.wake.notify_one();
        true
    }

    /// Queues a post of a page the connection asked for, counted like live posts but never
    /// refused (the page was read only once there was room, see [`Handle::room`]).
    pub fn page(&self, frame: Bytes) {
        let mut outbox = self.outbox();
        if !outbox.closed {
            outbox.post_bytes += frame.len();
            outbox.control.push_back(Control::Post(frame));
            drop(outbox);
            self.wake.notify_one();
        }
    }

    /// Waits until fewer than `max_bytes` of posts wait to be written (or the connection is
    /// closed): a reader that does not read gets no further page read for it.
    pub async fn room(&self, max_bytes: usize) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let outbox = self.outbox();
                if outbox.closed || outbox.post_bytes < max_bytes {
                    return;
                }
            }
            drained.await;
        }
    }

    /// Queues a delivery unless `max_frames` or `max_bytes` are already waiting.
    fn deliver(&self, d: Delivery, max_frames: usize, max_bytes: usize) -> Queued {
        let mut outbox = self.outbox();
        if outbox.closed {
            return Queued::Closed;
        }
        if outbox.deliveries.len() >= max_frames || outbox.delivery_bytes + d.frame.len() > max_bytes {
            return Queued::Full(d);
        }
        outbox.delivery_bytes += d.frame.len();
        outbox.deliveries.push_back(d);
        drop(outbox);
        self.wake.notify_one();
        Queued::Yes
    }

    /// The next thing to write: replies and notices first, then deliveries (only once
    /// `deliveries` is true, i.e. the writer has read the backlog of its mailbox).
    pub async fn next(&self, deliveries: bool) -> Outgoing {
        loop {
            {
                let mut outbox = self.outbox();
                if let Some(c) = outbox.control.pop_front() {
                    if let Control::Post(frame) = &c {
                        outbox.post_bytes -= frame.len();
                        self.drained.notify_waiters();
                    }
                    release_if_drained(&mut outbox.control);
                    return Outgoing::Control(c);
                }
                if deliveries && let Some(d) = outbox.deliveries.pop_front() {
                    outbox.delivery_bytes -= d.frame.len();
                    release_if_drained(&mut outbox.deliveries);
                    return Outgoing::Delivery(d);
                }
                if outbox.closed {
                    return Outgoing::Closed;
                }
            }
            // A notification sent since the check above is kept for this wait (one permit).
            self.wake.notified().await;
        }
    }

    /// Whether nothing is ready for the writer (it flushes the socket then).
    pub fn is_idle(&self, deliveries: bool) -> bool {
        let outbox = self.outbox();
        outbox.control.is_empty() && (!deliveries || outbox.deliveries.is_empty())
    }

    /// The writer has stopped: drop what waits (releasing the permits of unsent replies) and
    /// refuse more.
    pub fn close(&self) {
        let mut outbox = self.outbox();
        outbox.closed = true;
        outbox.control = VecDeque::new();
        outbox.deliveries = VecDeque::new();
        outbox.delivery_bytes = 0;
        outbox.post_bytes = 0;
        drop(outbox);
        self.drained.notify_waiters();
    }
}

/// Slots a drained queue may keep; beyond this its memory goes back (a burst of a thousand
/// replies must not stay allocated on an idle connection).
const KEPT_SLOTS: usize = 64;

fn release_if_drained<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > KEPT_SLOTS {
        *queue = VecDeque::new();
    }
}

pub struct Hub {
    online: Mutex<HashMap<Address, Vec<Arc<Handle>>>>,
    /// Deliveries (and their bytes) one connection may have waiting before it counts as lagging.
    max_queued_frames: usize,
    max_queued_bytes: usize,
}

impl Hub {
    pub fn new(max_queued_frames: usize, max_queued_bytes: usize) -> Hub {
        Hub {
            online: Mutex::new(HashMap::new()),
            max_queued_frames: max_queued_frames.max(1),
            max_queued_bytes,
        }
    }

    /// Attaches a connection. It starts lagging so that its writer loads the stored backlog
    /// once everything allocated so far is committed; its writer takes no delivery before it
    /// has handled `Attach`, so no live push can overtake the backlog. `allocated` is read only
    /// after the connection is listed, so any envelope numbered later is also pushed to it.
    pub async fn attach(
        &self,
        address: Address,
        handle: &Arc<Handle>,
        allocated: impl FnOnce() -> u64,
        test_delay: std::time::Duration,
    ) {
        handle.lagging.store(true, Ordering::SeqCst);
        if let Ok(mut online) = self.online.lock() {
            online.entry(address).or_default().push(handle.clone());
        }
        handle.lag_seq.fetch_max(allocated(), Ordering::SeqCst);
        if !test_delay.is_zero() {
            tokio::time::sleep(test_delay).await;
        }
        handle.control(Control::Attach(address));
    }

    pub fn detach(&self, address: &Address, id: u64) {
        if let Ok(mut online) = self.online.lock()
            && let Some(list) = online.get_mut(address)
        {
            list.retain(|h| h.id != id);
            if list.is_empty() {
                online.remove(address);
            }
        }
    }

    /// Pushes a stored envelope to every connection of `to`. Returns how many took it.
    pub fn push(&self, to: &Address, delivery: Delivery) -> usize {
        let Ok(online) = self.online.lock() else { return 0 };
        let Some(list) = online.get(to) else { return 0 };
        let mut pushed = 0;
        for h in list {
            match h.deliver(delivery.clone(), self.max_queued_frames, self.max_queued_bytes) {
                Queued::Yes => pushed += 1,
                Queued::Full(d) => {
                    h.lag_seq.fetch_max(d.seq, Ordering::SeqCst);
                    if !h.lagging.swap(true, Ordering::SeqCst) {
                        h.control(Control::Kick);
                    }
                }
                Queued::Closed => {}
            }
        }
        pushed
    }

    /// Sends a control frame to every connection of `to`; returns how many there were.
    pub fn notify(&self, to: &Address, frame: RelayFrame) -> usize {
        let Ok(online) = self.online.lock() else { return 0 };
        let Some(list) = online.get(to) else { return 0 };
        let bytes = Bytes::from(encode_relay(&frame));
        for h in list {
            h.control(Control::Frame(bytes.clone(), None));
        }
        list.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of replies must not stay allocated once the connection is idle again; a closed
    /// outbox takes nothing more.
    #[tokio::test]
    async fn drained_queues_give_their_memory_back_and_closed_outboxes_refuse() {
        let h = Handle::new(1);
        for _ in 0..1000 {
            h.control(Control::Kick);
        }
        assert!(h.outbox().control.capacity() >= 1000);
        for _ in 0..1000 {
            assert!(matches!(h.next(false).await, Outgoing::Control(Control::Kick)));
        }
        assert_eq!(h.outbox().control.capacity(), 0);
        h.close();
        h.control(Control::Kick);
        assert!(matches!(h.next(true).await, Outgoing::Closed));
        let d = Delivery { seq: 1, frame: Bytes::from_static(b"x") };
        assert!(matches!(h.deliver(d, 10, 10), Queued::Closed));
    }

    /// A page waits for room: posts queued past the limit hold the next page back until the
    /// writer has taken them.
    #[tokio::test]
    async fn pages_wait_until_the_reader_takes_what_is_queued() {
        let h = Arc::new(Handle::new(1));
        h.page(Bytes::from(vec![0; 600]));
        h.page(Bytes::from(vec![0; 600]));
        let waiting = tokio::spawn({
            let h = h.clone();
            async move { h.room(1000).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "1,200 bytes wait: no room for another page");
        assert!(matches!(h.next(false).await, Outgoing::Control(Control::Post(_))));
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.unwrap().unwrap();
        h.close();
        h.room(0).await;
    }
}
