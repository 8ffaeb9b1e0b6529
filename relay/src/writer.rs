//! The single writer: a thread that owns every write transaction and commits in groups.
//!
//! Each job carries a completion callback that runs after its batch is durably committed, so a
//! `Sent` can never be acknowledged before the envelope is on disk. Whatever arrived while the
//! previous commit was running forms the next batch: under load, many sends share one fsync.
//!
//! Envelope sequence numbers are allocated here, at queueing time and in queue order. That lets
//! an online recipient get an envelope before its commit finishes (forwarding does not wait for
//! the disk), while the committed-sequence watermark tells a lagging connection when the store
//! holds everything up to a given number (see `connection::write_loop`).

use crate::store::{NewEnvelope, Quotas, Store, StoreError, Write, WriteResult};
use sotto_shared::{Address, MessageId};
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::error;

/// Most jobs in one transaction: bounds commit latency and transaction size.
const MAX_BATCH: usize = 8192;

pub type Done = Box<dyn FnOnce(Result<WriteResult, ()>) + Send>;

struct Job {
    op: Write,
    done: Done,
}

pub struct Writer {
    /// The queue and the next sequence number, locked together so numbers enter in order.
    queue: Mutex<(Sender<Job>, u64)>,
    committed: watch::Receiver<u64>,
}

impl Writer {
    pub fn start(store: Arc<dyn Store>, quotas: Quotas, window: Duration) -> Result<Writer, StoreError> {
        let next_seq = store.next_seq()?;
        let (tx, rx) = channel();
        let (committed_tx, committed) = watch::channel(next_seq - 1);
        std::thread::Builder::new()
            .name("sotto-writer".into())
            .spawn(move || run(store, quotas, window, rx, committed_tx))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { queue: Mutex::new((tx, next_seq)), committed })
    }

    /// Queues a write; `done` runs on the writer thread once it is durable (or failed).
    /// Callbacks must be quick and must not block.
    pub fn submit(&self, op: Write, done: Done) {
        match self.queue.lock() {
            Ok(q) => Self::send(&q.0, Job { op, done }),
            Err(_) => done(Err(())),
        }
    }

    /// Queues an envelope under a fresh sequence number, which it returns.
    pub fn enqueue(&self, mut envelope: NewEnvelope, done: Done) -> Option<u64> {
        let Ok(mut q) = self.queue.lock() else {
            done(Err(()));
            return None;
        };
        let seq = q.1;
        q.1 += 1;
        envelope.seq = seq;
        Self::send(&q.0, Job { op: Write::Enqueue(envelope), done });
        Some(seq)
    }

    fn send(tx: &Sender<Job>, job: Job) {
        if let Err(e) = tx.send(job) {
            // The writer thread is gone: fail the job, never drop it silently.
            (e.0.done)(Err(()));
        }
    }

    /// The highest sequence number allocated so far.
    pub fn allocated(&self) -> u64 {
        self.queue.lock().map(|q| q.1 - 1).unwrap_or(0)
    }

    /// Watches the highest sequence number whose job has been committed (or refused).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Queues a write and waits for its result.
    pub async fn write(&self, op: Write) -> Result<WriteResult, ()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(
            op,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or(Err(()))
    }
}

fn run(
    store: Arc<dyn Store>,
    quotas: Quotas,
    window: Duration,
    rx: Receiver<Job>,
    committed: watch::Sender<u64>,
) {
    while let Ok(first) = rx.recv() {
        let mut ops = Vec::with_capacity(64);
        let mut dones = Vec::with_capacity(64);
        ops.push(first.op);
        dones.push(first.done);
        // Gather for a short window: online recipients already have their envelopes (pushed
        // at queueing), and acks that arrive within the window cancel the writes entirely.
        let deadline = Instant::now() + window;
        while ops.len() < MAX_BATCH {
            let job = match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => rx.recv_timeout(left).ok(),
                _ => rx.try_recv().ok(),
            };
            let Some(job) = job else { break };
            ops.push(job.op);
            dones.push(job.done);
        }
        let high =
            ops.iter().filter_map(|op| if let Write::Enqueue(e) = op { Some(e.seq) } else { None }).max();
        let cancelled = acked_in_batch(&ops);
        let mut kept = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            if !cancelled[i] {
                kept.push(op);
            }
        }
        match store.write(kept, &quotas) {
            Ok(results) => {
                let mut results = results.into_iter();
                for (i, done) in dones.into_iter().enumerate() {
                    if cancelled[i] {
                        done(Ok(WriteResult::EnqueuedAndAcked));
                    } else {
                        done(results.next().ok_or(()));
                    }
                }
            }
            Err(e) => {
                log_failure(&e);
                for done in dones {
                    done(Err(()));
                }
            }
        }
        // Even a failed batch advances the watermark: its envelopes will never appear, and a
        // lagging reader must not wait for them forever.
        if let Some(high) = high {
            committed.send_if_modified(|c| {
                let moved = high > *c;
                *c = (*c).max(high);
                moved
            });
        }
    }
}

/// Marks each `Enqueue` that a later `Ack` in the same batch acknowledges. Such an envelope is
/// already stored by its recipient, so the relay need not write it (nor delete it): the sender's
/// `Sent` is then true without touching the disk. The `Ack` itself is still applied, so it also
/// removes any older stored copy of the same id.
fn acked_in_batch(ops: &[Write]) -> Vec<bool> {
    let mut last_ack: HashMap<(Address, MessageId), usize> = HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Write::Ack { mailbox, ids } = op {
            for id in ids {
                last_ack.insert((*mailbox, *id), i);
            }
        }
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| match op {
            Write::Enqueue(e) => last_ack.get(&(e.to, e.id)).is_some_and(|&j| j > i),
            _ => false,
        })
        .collect()
}

fn log_failure(e: &StoreError) {
    error!("write batch failed, nothing in it was acknowledged: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEnvelope;

    fn enqueue(to: u8, id: u8) -> Write {
        Write::Enqueue(NewEnvelope {
            seq: 0,
            to: Address([to; 32]),
            id: MessageId([id; 16]),
            received_at: 0,
            expires_at: 1,
            payload: vec![],
        })
    }

    fn ack(mailbox: u8, ids: &[u8]) -> Write {
        Write::Ack { mailbox: Address([mailbox; 32]), ids: ids.iter().map(|i| MessageId([*i; 16])).collect() }
    }

    #[test]
    fn only_later_acks_of_the_same_mailbox_cancel() {
        let ops = [ack(1, &[3]), enqueue(1, 1), enqueue(1, 2), enqueue(1, 3), enqueue(2, 1), ack(1, &[1])];
        assert_eq!(acked_in_batch(&ops), vec![false, true, false, false, false, false]);
    }
}
