//! The single writer: a thread that owns every write transaction and commits in groups.
//!
//! Each job carries a completion callback that runs after its batch is durably committed, so a
//! `Sent` can never be acknowledged before the envelope is on disk. Whatever arrived while the
//! previous commit was running forms the next batch: under load, many sends share one fsync.

use crate::store::{Quotas, Store, StoreError, Write, WriteResult};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use tracing::error;

/// Most jobs in one transaction: bounds commit latency and transaction size.
const MAX_BATCH: usize = 8192;

pub type Done = Box<dyn FnOnce(Result<WriteResult, ()>) + Send>;

struct Job {
    op: Write,
    done: Done,
}

#[derive(Clone)]
pub struct Writer {
    tx: Sender<Job>,
}

impl Writer {
    pub fn start(store: Arc<dyn Store>, quotas: Quotas) -> Writer {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("sotto-writer".into())
            .spawn(move || run(store, quotas, rx))
            .expect("spawn the writer thread");
        Writer { tx }
    }

    /// Queues a write; `done` runs on the writer thread once it is durable (or failed).
    /// Callbacks must be quick and must not block.
    pub fn submit(&self, op: Write, done: Done) {
        if let Err(e) = self.tx.send(Job { op, done }) {
            // The writer thread is gone (shutdown or panic): fail the job, never drop it silently.
            (e.0.done)(Err(()));
        }
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

fn run(store: Arc<dyn Store>, quotas: Quotas, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut ops = Vec::with_capacity(64);
        let mut dones = Vec::with_capacity(64);
        ops.push(first.op);
        dones.push(first.done);
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    ops.push(job.op);
                    dones.push(job.done);
                }
                Err(_) => break,
            }
        }
        match store.write(ops, &quotas) {
            Ok(results) => {
                for (done, r) in dones.into_iter().zip(results) {
                    done(Ok(r));
                }
            }
            Err(e) => {
                log_failure(&e);
                for done in dones {
                    done(Err(()));
                }
            }
        }
    }
}

fn log_failure(e: &StoreError) {
    error!("write batch failed, nothing in it was acknowledged: {e}");
}
