//! Who is online: the connections attached to each mailbox, and pushing to them.
//!
//! Pushes never block and never buffer without bound: each connection has a bounded delivery
//! queue; when it is full the connection is marked lagging and later re-reads what it missed
//! from the store, in order (see `connection::write_loop`).

use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use sotto_shared::{Address, RelayFrame, encode_relay};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

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
    Close,
}

/// A connection as the hub sees it.
pub struct Handle {
    pub id: u64,
    pub deliveries: mpsc::Sender<Delivery>,
    pub control: mpsc::UnboundedSender<Control>,
    pub lagging: AtomicBool,
    /// The highest sequence number this connection missed while lagging.
    pub lag_seq: AtomicU64,
    /// Bytes of frames waiting in `deliveries`.
    pub queued_bytes: AtomicUsize,
}

pub struct Hub {
    online: Mutex<HashMap<Address, Vec<Arc<Handle>>>>,
    /// Bytes of deliveries one connection may have waiting before it counts as lagging.
    max_queued_bytes: usize,
}

impl Hub {
    pub fn new(max_queued_bytes: usize) -> Hub {
        Hub { online: Mutex::new(HashMap::new()), max_queued_bytes }
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
        let _ = handle.control.send(Control::Attach(address));
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
        let len = delivery.frame.len();
        for h in list {
            // Counted before the send, so the writer's decrement never comes first.
            let before = h.queued_bytes.fetch_add(len, Ordering::Relaxed);
            let sent = if before + len <= self.max_queued_bytes {
                h.deliveries.try_send(delivery.clone())
            } else {
                Err(TrySendError::Full(delivery.clone()))
            };
            if sent.is_err() {
                h.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            }
            match sent {
                Ok(()) => pushed += 1,
                Err(TrySendError::Full(d)) => {
                    h.lag_seq.fetch_max(d.seq, Ordering::SeqCst);
                    if !h.lagging.swap(true, Ordering::SeqCst) {
                        let _ = h.control.send(Control::Kick);
                    }
                }
                Err(TrySendError::Closed(_)) => {}
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
            let _ = h.control.send(Control::Frame(bytes.clone(), None));
        }
        list.len()
    }
}
