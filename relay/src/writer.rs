//! The single writer: a thread that owns every write transaction and commits in groups, and the
//! admission of envelopes in front of it.
//!
//! Each job carries a completion callback that runs after its batch is durably committed, so a
//! `Sent` can never be acknowledged before the envelope is on disk. After the first job of a
//! batch the thread sleeps through a short commit window, then takes whatever arrived (and
//! whatever came while the previous commit ran): under load, many sends share one fsync.
//!
//! **Admission.** An envelope is judged before anyone sees it: its mailbox must exist, it must
//! not be a duplicate, and it must fit the mailbox quota and the relay's storage budget. Only an
//! admitted envelope gets a sequence number and is pushed to the recipient's open connections,
//! at once and without waiting for the disk. Judging, numbering and pushing happen under one
//! lock, so pushes reach every connection in sequence order, and the queue to this thread is fed
//! under the same lock, so batches hold consecutive numbers. The committed-sequence watermark
//! tells a lagging connection when the store holds everything up to a given number (see
//! `connection::write_loop`).
//!
//! Admission reads the store's view of the mailbox outside the lock, from a snapshot the writer
//! takes after each commit and shares, and counts on top of it the envelopes admitted but not
//! in that snapshot (`pending`, numbered from the snapshot's `next_seq` on). The writer never
//! takes the admission lock per batch: entries below a snapshot's `next_seq` are in it (or were
//! refused), and admissions drop them lazily under the lock. `pruned_below` records how far
//! entries were dropped; an admission whose snapshot is older than that reads again, so
//! nothing is counted twice or missed. Now and then the writer sweeps mailboxes nobody sends
//! to any more.
//!
//! **Failure.** A batch that fails to commit (disk full, I/O error) fails every job in it and
//! stops the writer: the relay then shuts down and exits non-zero, so that a supervisor restarts
//! it on a freshly opened store. It never stays up unable to write.

use crate::store::{MailboxView, NewEnvelope, Quotas, Snapshot, Store, StoreError, Write, WriteResult};
use arc_swap::ArcSwapOption;
use sotto_shared::{Address, MessageId};
// Mailbox addresses are hashed on every send's path: foldhash (randomly seeded) is several
// times faster than SipHash. It claims no resistance to collisions chosen by an attacker who
// can observe timings, so the sets of message ids (which senders choose) keep SipHash.
use foldhash::{HashMap, HashMapExt};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tracing::error;

/// Most jobs in one transaction: bounds commit latency and transaction size.
const MAX_BATCH: usize = 8192;
/// How often the writer drops settled entries of mailboxes nobody sends to any more.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// What each stored record costs in the storage budget, beyond an envelope's payload: redb's
/// keys, the index entries and record headers. Rough but fixed, so the budget is predictable.
pub const ENVELOPE_COST: u64 = 160;
pub const ONE_TIME_PREKEY_COST: u64 = 64;
pub const IDENTITY_COST: u64 = 320;
pub const POST_COST: u64 = 200;
pub const TOPIC_COST: u64 = 160;
/// A channel's record and its kept admin lists (at most 16 of up to 64 keys of 32 bytes, with
/// their signatures and headers), an upper bound.
pub const CHANNEL_COST: u64 = 36 * 1024;
/// A report beyond its stored bytes.
pub const REPORT_COST: u64 = 64;

pub type Done = Box<dyn FnOnce(Result<WriteResult, ()>) + Send>;

type Completion = (Done, Result<WriteResult, ()>);

/// The limits admission enforces.
#[derive(Debug, Clone, Copy)]
pub struct Budgets {
    pub quotas: Quotas,
    /// Budget bytes (payloads plus the fixed costs above) the store may hold in total.
    pub max_store_bytes: u64,
}

/// Why an envelope was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nobody ever logged in to that mailbox.
    UnknownMailbox,
    MailboxFull,
    /// The mailbox holds as much mail from senders without its delivery token as it may.
    StrangersFull,
    /// The relay's storage budget is used up.
    StoreFull,
    /// The store could not be read, or the writer has stopped.
    Unavailable,
}

/// The outcome of [`Writer::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Numbered, pushed, and queued for the disk; `done` reports the commit.
    Accepted { seq: u64 },
    /// Already stored or queued: nothing is pushed or stored again, and `done` runs once the
    /// original has settled.
    Duplicate,
    /// Refused; `done` is dropped without running.
    Refused(Refusal),
}

struct Job {
    /// `None` for a barrier: it only waits for everything queued before it to settle.
    op: Option<Write>,
    done: Done,
    /// For an admitted envelope: its number and budget cost, to account for afterwards.
    admitted: Option<(u64, u64)>,
}

/// An admitted envelope whose batch has not settled yet.
struct Entry {
    seq: u64,
    id: MessageId,
    size: u64,
    stranger: bool,
    /// Payload bytes of this and every earlier entry of the mailbox (a running sum).
    cumulative: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct InFlight {
    count: u64,
    bytes: u64,
    strangers: u64,
}

/// The envelopes admitted for one mailbox whose batches have not settled yet, in sequence order
/// (batches settle in order, so settled ones are always a prefix).
#[derive(Default)]
struct Pending {
    entries: VecDeque<Entry>,
    ids: HashSet<MessageId>,
}

impl Pending {
    fn push(&mut self, seq: u64, id: MessageId, size: u64, stranger: bool) {
        let cumulative = self.entries.back().map_or(0, |e| e.cumulative) + size;
        self.entries.push_back(Entry { seq, id, size, stranger, cumulative });
        self.ids.insert(id);
    }

    /// What is numbered from `from` on (what a store snapshot does not hold yet): envelopes,
    /// bytes, and envelopes from strangers.
    fn from(&self, from: u64) -> InFlight {
        let i = self.entries.partition_point(|e| e.seq < from);
        match (self.entries.get(i), self.entries.back()) {
            (Some(first), Some(last)) => InFlight {
                count: (self.entries.len() - i) as u64,
                bytes: last.cumulative - (first.cumulative - first.size),
                // Strangers' mail is capped small, so counting it is cheap.
                strangers: self.entries.range(i..).filter(|e| e.stranger).count() as u64,
            },
            _ => InFlight::default(),
        }
    }

    /// Forgets every entry numbered up to `high`.
    fn settle(&mut self, high: u64) {
        while self.entries.front().is_some_and(|e| e.seq <= high) {
            if let Some(e) = self.entries.pop_front() {
                self.ids.remove(&e.id);
            }
        }
    }
}

struct Queue {
    tx: Sender<Job>,
    next_seq: u64,
    pending: HashMap<Address, Pending>,
    /// Pending entries numbered below this may have been dropped: a snapshot must be at least
    /// this new (its `next_seq`) to be judged with.
    pruned_below: u64,
}

struct Shared {
    store: Arc<dyn Store>,
    budgets: Budgets,
    queue: Mutex<Queue>,
    /// Budget bytes stored plus admitted and pending.
    used: AtomicU64,
    /// The store snapshot admissions share, with its `next_seq` (taken by the writer after each
    /// commit).
    snapshot: ArcSwapOption<(u64, Arc<dyn Snapshot>)>,
    last_sweep: Mutex<Instant>,
    /// Where a committed batch's callbacks run: a task on the runtime, so that the wake-ups
    /// they cause (a reply queued on each connection) stay inside it. Run on this thread, each
    /// would wake a runtime worker from outside, thousands of times a second. `None` outside a
    /// runtime (unit tests): callbacks run on the writer thread.
    completions: Option<tokio::sync::mpsc::UnboundedSender<Vec<Completion>>>,
    failed: AtomicBool,
    stopped: Notify,
}

pub struct Writer {
    shared: Arc<Shared>,
    committed: watch::Receiver<u64>,
}

impl Writer {
    pub fn start(store: Arc<dyn Store>, budgets: Budgets, window: Duration) -> Result<Writer, StoreError> {
        let next_seq = store.next_seq()?;
        let t = store.totals()?;
        let used = t.payload_bytes
            + t.envelopes * ENVELOPE_COST
            + t.one_time_prekeys * ONE_TIME_PREKEY_COST
            + t.owners * IDENTITY_COST
            + t.post_bytes
            + t.posts * POST_COST
            + t.topics * TOPIC_COST
            + t.channels * CHANNEL_COST
            + t.report_bytes
            + t.reports * REPORT_COST;
        let (tx, rx) = channel();
        let (committed_tx, committed) = watch::channel(next_seq - 1);
        let completions = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<Completion>>();
            runtime.spawn(async move {
                while let Some(batch) = rx.recv().await {
                    for (done, outcome) in batch {
                        done(outcome);
                    }
                }
            });
            tx
        });
        let shared = Arc::new(Shared {
            store,
            budgets,
            queue: Mutex::new(Queue { tx, next_seq, pending: HashMap::new(), pruned_below: 0 }),
            used: AtomicU64::new(used),
            snapshot: ArcSwapOption::empty(),
            last_sweep: Mutex::new(Instant::now()),
            completions,
            failed: AtomicBool::new(false),
            stopped: Notify::new(),
        });
        let thread = shared.clone();
        std::thread::Builder::new()
            .name("sotto-writer".into())
            .spawn(move || run(thread, window, rx, committed_tx))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer { shared, committed })
    }

    fn lock(&self) -> Option<MutexGuard<'_, Queue>> {
        self.shared.queue.lock().ok()
    }

    /// Queues a write; `done` runs once it is durable (or failed), on a runtime task (on the
    /// writer thread outside a runtime). Callbacks must be quick and must not block.
    pub fn submit(&self, op: Write, done: Done) {
        match self.lock() {
            Some(q) => send(&q.tx, Job { op: Some(op), done, admitted: None }),
            None => done(Err(())),
        }
    }

    /// Judges an envelope (see the module docs); if admitted, numbers it, calls `push` with its
    /// number under the admission lock, and queues it for the disk. `token_hash` is the hash of
    /// the delivery token the sender presented, if any: a sender without the mailbox's token is
    /// a stranger, held to the small stranger quota.
    pub fn enqueue(
        &self,
        mut envelope: NewEnvelope,
        token_hash: Option<[u8; 32]>,
        done: Done,
        push: impl FnOnce(u64),
    ) -> Admission {
        let (to, id, size) = (envelope.to, envelope.id, envelope.payload.len() as u64);
        let mut fresh = false;
        let (view, mut q) = loop {
            let snapshot = match self.snapshot(fresh) {
                Ok(s) => s,
                Err(e) => {
                    error!("cannot read the store to admit an envelope: {e}");
                    return Admission::Refused(Refusal::Unavailable);
                }
            };
            let view = match snapshot.mailbox_view(&to, &id) {
                Ok(view) => view,
                Err(e) => {
                    error!("cannot read a mailbox to admit an envelope: {e}");
                    return Admission::Refused(Refusal::Unavailable);
                }
            };
            let Some(q) = self.lock() else { return Admission::Refused(Refusal::Unavailable) };
            if view.next_seq >= q.pruned_below {
                break (view, q);
            }
            // Another admission judged with a newer snapshot and dropped what this one would
            // need: read again (the shared snapshot first, the store if that is still older).
            fresh = self.shared.snapshot.load().as_ref().is_some_and(|c| c.0 <= view.next_seq);
        };
        if !view.exists {
            // Before `pending` gets an entry: sends to made-up addresses must cost no memory.
            return Admission::Refused(Refusal::UnknownMailbox);
        }
        let q = &mut *q;
        let stranger = view.token_hash.is_none() || token_hash != view.token_hash;
        // What the snapshot holds leaves `pending`.
        let (mut in_flight, mut queued) = (InFlight::default(), false);
        if let Some(pending) = q.pending.get_mut(&to) {
            pending.settle(view.next_seq.saturating_sub(1));
            q.pruned_below = q.pruned_below.max(view.next_seq);
            queued = pending.ids.contains(&id);
            in_flight = pending.from(view.next_seq);
        }
        if view.duplicate || queued {
            send(&q.tx, Job { op: None, done, admitted: None });
            return Admission::Duplicate;
        }
        if let Some(refusal) = self.judge(&view, in_flight, stranger, self.shared.used.load(SeqCst), size) {
            return Admission::Refused(refusal);
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        let cost = size + ENVELOPE_COST;
        self.shared.used.fetch_add(cost, SeqCst);
        // Only admitted envelopes create an entry: refusals cost no memory.
        q.pending.entry(to).or_default().push(seq, id, size, stranger);
        envelope.seq = seq;
        envelope.stranger = stranger;
        push(seq);
        send(&q.tx, Job { op: Some(Write::Enqueue(envelope)), done, admitted: Some((seq, cost)) });
        Admission::Accepted { seq }
    }

    /// The hash of the delivery token mailbox `to` published, as of the last snapshot.
    pub fn delivery_token_hash(&self, to: &Address) -> Option<[u8; 32]> {
        let view = self.snapshot(false).ok()?.mailbox_view(to, &MessageId([0; 16])).ok()?;
        view.token_hash
    }

    /// The snapshot to admit with: the one the writer shares (read lock-free, as every send
    /// does), or a new one from the store when there is none or it is too old (`fresh`).
    fn snapshot(&self, fresh: bool) -> Result<Arc<dyn Snapshot>, StoreError> {
        if !fresh && let Some(cached) = self.shared.snapshot.load().as_ref() {
            return Ok(cached.1.clone());
        }
        Ok(Arc::from(self.shared.store.snapshot()?))
    }

    /// `in_flight`: pending envelopes numbered from the snapshot's `next_seq` on; those below
    /// it are already in the snapshot's usage.
    fn judge(
        &self,
        view: &MailboxView,
        in_flight: InFlight,
        stranger: bool,
        used: u64,
        size: u64,
    ) -> Option<Refusal> {
        if !view.exists {
            return Some(Refusal::UnknownMailbox);
        }
        let (count, bytes) = (view.usage.0 + in_flight.count, view.usage.1 + in_flight.bytes);
        let quotas = &self.shared.budgets.quotas;
        if count + 1 > quotas.max_envelopes || bytes + size > quotas.max_bytes {
            return Some(Refusal::MailboxFull);
        }
        if stranger && view.strangers + in_flight.strangers + 1 > quotas.max_stranger_envelopes {
            return Some(Refusal::StrangersFull);
        }
        if used + size + ENVELOPE_COST > self.shared.budgets.max_store_bytes {
            return Some(Refusal::StoreFull);
        }
        None
    }

    /// Counts `cost` budget bytes as used ahead of a write that may store them (a post, a new
    /// topic), so that writes queued together cannot overrun the budget; `false`, with nothing
    /// counted, if they do not fit. Give back with [`Writer::release`] what the write did not
    /// store.
    pub fn reserve(&self, cost: u64) -> bool {
        let max = self.shared.budgets.max_store_bytes;
        self.shared.used.fetch_update(SeqCst, SeqCst, |u| (u + cost <= max).then_some(u + cost)).is_ok()
    }

    pub fn release(&self, cost: u64) {
        let _ = self.shared.used.fetch_update(SeqCst, SeqCst, |u| Some(u.saturating_sub(cost)));
    }

    /// Whether `extra` more budget bytes fit in the store (for prekeys and identities).
    pub fn has_room(&self, extra: u64) -> bool {
        self.shared.used.load(SeqCst) + extra <= self.shared.budgets.max_store_bytes
    }

    /// Budget bytes in use (stored and pending).
    pub fn budget_used(&self) -> u64 {
        self.shared.used.load(SeqCst)
    }

    /// The highest sequence number allocated so far.
    pub fn allocated(&self) -> u64 {
        self.lock().map(|q| q.next_seq - 1).unwrap_or(0)
    }

    /// Watches the highest sequence number whose job has been committed (or refused).
    pub fn committed(&self) -> watch::Receiver<u64> {
        self.committed.clone()
    }

    /// Whether the last commit succeeded (the writer stops at the first failure).
    pub fn healthy(&self) -> bool {
        !self.shared.failed.load(SeqCst)
    }

    /// Resolves once the writer has stopped after a failed commit.
    pub async fn failed(&self) {
        let stopped = self.shared.stopped.notified();
        if self.shared.failed.load(SeqCst) {
            return;
        }
        stopped.await;
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

fn send(tx: &Sender<Job>, job: Job) {
    if let Err(e) = tx.send(job) {
        // The writer thread is gone: fail the job, never drop it silently.
        (e.0.done)(Err(()));
    }
}

fn run(shared: Arc<Shared>, window: Duration, rx: Receiver<Job>, committed: watch::Sender<u64>) {
    let mut backlog = false;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        // Gather for a short window: online recipients already have their envelopes (pushed
        // at admission), and acks that arrive within the window cancel the writes entirely.
        // The thread sleeps through the window and then takes what came: blocked on the
        // channel instead, it would be woken (a futex call and a context switch on both
        // sides) by every single send. After a full batch more is waiting: no window then.
        if !backlog {
            std::thread::sleep(window);
        }
        while jobs.len() < MAX_BATCH {
            let Ok(job) = rx.try_recv() else { break };
            jobs.push(job);
        }
        backlog = jobs.len() >= MAX_BATCH;
        // A purge commits on its own, after the batch: it never fails client writes beside it.
        let (purges, jobs): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| matches!(j.op, Some(Write::Purge { .. })));
        let ok = commit(&shared, jobs, &committed)
            && purges.into_iter().all(|p| commit(&shared, vec![p], &committed));
        if !ok {
            shared.failed.store(true, SeqCst);
            shared.stopped.notify_waiters();
            // Fail whatever is still queued, after the answers of earlier batches (the same
            // hand-over); later submissions fail as the channel closes.
            let failed: Vec<Completion> = rx.try_iter().map(|job| (job.done, Err(()))).collect();
            complete(&shared, failed);
            return;
        }
    }
}

/// Runs a batch's callbacks: handed to the runtime task when there is one. If that task is
/// gone (the runtime is shutting down) they run here; if it ended with batches still queued
/// (a callback panicked), those are dropped unanswered and their connections see the relay
/// close instead, like any other failure.
fn complete(shared: &Shared, batch: Vec<Completion>) {
    match &shared.completions {
        Some(tx) => {
            if let Err(unsent) = tx.send(batch) {
                unsent.0.into_iter().for_each(|(done, outcome)| done(outcome));
            }
        }
        None => batch.into_iter().for_each(|(done, outcome)| done(outcome)),
    }
}

/// Applies one batch in one transaction, then settles it: callbacks, the budget, the shared
/// snapshot and the committed watermark. Returns whether the commit succeeded.
fn commit(shared: &Shared, jobs: Vec<Job>, committed: &watch::Sender<u64>) -> bool {
    let high = jobs.iter().filter_map(|j| j.admitted.map(|(seq, _)| seq)).max();
    let cancelled = acked_in_batch(&jobs);
    let mut ops = Vec::with_capacity(jobs.len());
    let mut dones = Vec::with_capacity(jobs.len());
    for (job, cancelled) in jobs.into_iter().zip(cancelled) {
        let stored = match job.op {
            Some(op) if !cancelled => {
                ops.push(op);
                true
            }
            _ => false,
        };
        dones.push((job.done, stored, cancelled, job.admitted.map(|(_, cost)| cost)));
    }
    // Numbers of envelopes never written (cancelled by an ack) are used up all the same.
    let numbered = high.map(|h| Write::Numbered { below: h + 1 });
    let marker = numbered.is_some();
    ops.extend(numbered);
    let results = match shared.store.write(ops, &shared.budgets.quotas) {
        Ok(mut results) => {
            if marker {
                results.pop();
            }
            Some(results)
        }
        Err(e) => {
            error!("write batch failed, nothing in it was acknowledged; the relay will exit: {e}");
            None
        }
    };
    let ok = results.is_some();
    // Budget changes: what left the store, and what an envelope's admission counted in vain.
    let mut freed = 0u64;
    let mut added = 0u64;
    let mut outcomes = Vec::with_capacity(dones.len());
    let mut results_iter = results.map(Vec::into_iter);
    for (_, stored, cancelled, admitted_cost) in &dones {
        let outcome: Result<WriteResult, ()> = if *cancelled {
            Ok(WriteResult::EnqueuedAndAcked)
        } else if !*stored {
            // A duplicate's barrier: the original was in this batch or an earlier one, so it
            // is stored now, unless this batch failed.
            if ok { Ok(WriteResult::Duplicate) } else { Err(()) }
        } else {
            results_iter.as_mut().and_then(Iterator::next).ok_or(())
        };
        match &outcome {
            Ok(WriteResult::Acked { removed, bytes }) => freed += bytes + u64::from(*removed) * ENVELOPE_COST,
            Ok(WriteResult::Purged { removed, bytes, prekeys, posts, post_bytes, topics, .. }) => {
                freed += bytes
                    + removed * ENVELOPE_COST
                    + prekeys * ONE_TIME_PREKEY_COST
                    + post_bytes
                    + posts * POST_COST
                    + topics * TOPIC_COST
            }
            // Channels and reports are checked against the budget before they are written
            // (`has_room`) and counted once they are. Counted members are not charged (see
            // `MAX_MEMBERS`): made-up member tokens must never stop messaging.
            Ok(WriteResult::ChannelStored { new: true }) => added += CHANNEL_COST,
            Ok(WriteResult::Reported { bytes, new, .. }) => {
                added += bytes + if *new { REPORT_COST } else { 0 }
            }
            Ok(WriteResult::Dismissed { bytes }) if *bytes > 0 => freed += bytes + REPORT_COST,
            // A post's and a new topic's own cost was reserved before they were written.
            Ok(WriteResult::Posted { dropped, freed: bytes, .. }) => freed += bytes + dropped * POST_COST,
            Ok(WriteResult::PrekeysStored { added: n, new_owner, .. }) => {
                added += u64::from(*n) * ONE_TIME_PREKEY_COST + if *new_owner { IDENTITY_COST } else { 0 }
            }
            Ok(WriteResult::Bundle { bundle: Some(b), .. }) if b.one_time_prekey.is_some() => {
                freed += ONE_TIME_PREKEY_COST
            }
            Ok(WriteResult::Registered { new: true }) => added += IDENTITY_COST,
            _ => {}
        }
        if let Some(cost) = admitted_cost
            && !matches!(outcome, Ok(WriteResult::Enqueued))
        {
            freed += cost;
        }
        outcomes.push(outcome);
    }
    // Budget: what left the store, and what admission counted for envelopes never stored.
    shared.used.fetch_add(added, SeqCst);
    let _ = shared.used.fetch_update(SeqCst, SeqCst, |u| Some(u.saturating_sub(freed)));
    // The snapshot admissions will share, taken right after the commit: they never open a read
    // transaction themselves (which could wait on a commit in progress).
    if ok && let Ok(fresh) = shared.store.snapshot() {
        let fresh: Arc<dyn Snapshot> = Arc::from(fresh);
        let next_seq = fresh.next_seq();
        shared.snapshot.store(Some(Arc::new((next_seq, fresh))));
        sweep(shared, next_seq);
    }
    complete(shared, dones.into_iter().zip(outcomes).map(|((done, ..), o)| (done, o)).collect());
    // Even a failed batch advances the watermark: its envelopes will never appear, and a
    // lagging reader must not wait for them forever.
    if let Some(high) = high {
        committed.send_if_modified(|c| {
            let moved = high > *c;
            *c = (*c).max(high);
            moved
        });
    }
    ok
}

/// Every second or so, drops from `pending` what the writer's newest snapshot holds, in all
/// mailboxes (admissions only prune the mailbox they send to).
fn sweep(shared: &Shared, below: u64) {
    let due = shared.last_sweep.lock().is_ok_and(|mut last| {
        let due = last.elapsed() >= SWEEP_INTERVAL;
        if due {
            *last = Instant::now();
        }
        due
    });
    if !due {
        return;
    }
    if let Ok(mut q) = shared.queue.lock() {
        q.pending.retain(|_, p| {
            p.settle(below.saturating_sub(1));
            !p.entries.is_empty()
        });
        q.pruned_below = q.pruned_below.max(below);
    }
}

/// Marks each `Enqueue` that a later `Ack` in the same batch acknowledges. Such an envelope is
/// already stored by its recipient, so the relay need not write it (nor delete it): the sender's
/// `Sent` is then true without touching the disk. The `Ack` itself is still applied, so it also
/// removes any older stored copy of the same id.
fn acked_in_batch(jobs: &[Job]) -> Vec<bool> {
    let mut last_ack: HashMap<(Address, MessageId), usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(Write::Ack { mailbox, ids }) = &job.op {
            for id in ids {
                last_ack.insert((*mailbox, *id), i);
            }
        }
    }
    jobs.iter()
        .enumerate()
        .map(|(i, job)| match &job.op {
            Some(Write::Enqueue(e)) => last_ack.get(&(e.to, e.id)).is_some_and(|&j| j > i),
            _ => false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEnvelope;

    fn job(op: Write) -> Job {
        Job { op: Some(op), done: Box::new(|_| {}), admitted: None }
    }

    fn enqueue(to: u8, id: u8) -> Job {
        job(Write::Enqueue(NewEnvelope {
            seq: 0,
            to: Address([to; 32]),
            id: MessageId([id; 16]),
            received_at: 0,
            expires_at: 1,
            payload: vec![],
            stranger: false,
        }))
    }

    fn ack(mailbox: u8, ids: &[u8]) -> Job {
        job(Write::Ack {
            mailbox: Address([mailbox; 32]),
            ids: ids.iter().map(|i| MessageId([*i; 16])).collect(),
        })
    }

    /// Refused sends leave nothing behind in `pending`: a stranger spraying sends at full or
    /// unknown mailboxes costs no memory.
    #[test]
    fn refusals_create_no_pending_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::RedbStore::open(dir.path(), 1 << 20).unwrap());
        let identity = sotto_shared::frames::IdentityPublic {
            signing_key: [7; 32],
            dh_key: [8; 32],
            dh_signature: sotto_shared::frames::Signature([0; 64]),
        };
        let quotas = Quotas {
            max_envelopes: 0,
            max_bytes: 1000,
            max_stranger_envelopes: 0,
            max_one_time_prekeys: 5,
            max_topic_posts: 10,
            max_topic_bytes: 1000,
        };
        store.write(vec![Write::Register { identity }], &quotas).unwrap();
        let owner = Address::from_identity_key(&[7; 32]);
        let budgets = Budgets { quotas, max_store_bytes: 1 << 30 };
        let writer = Writer::start(store, budgets, Duration::ZERO).unwrap();
        let send = |to: Address, id: u8| {
            let envelope = NewEnvelope {
                seq: 0,
                to,
                id: MessageId([id; 16]),
                received_at: 1,
                expires_at: 100,
                payload: vec![1; 10],
                stranger: true,
            };
            writer.enqueue(envelope, None, Box::new(|_| {}), |_| panic!("a refused envelope was pushed"))
        };
        assert!(matches!(send(Address([9; 32]), 1), Admission::Refused(Refusal::UnknownMailbox)));
        assert!(matches!(send(owner, 2), Admission::Refused(Refusal::MailboxFull)));
        assert_eq!(writer.shared.queue.lock().unwrap().pending.len(), 0);
    }

    #[test]
    fn only_later_acks_of_the_same_mailbox_cancel() {
        let jobs = [ack(1, &[3]), enqueue(1, 1), enqueue(1, 2), enqueue(1, 3), enqueue(2, 1), ack(1, &[1])];
        assert_eq!(acked_in_batch(&jobs), vec![false, true, false, false, false, false]);
    }
}
