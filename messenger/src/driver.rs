//! The one driver of the messenger, shared by the web app, the tests and bots: it owns the
//! [`Messenger`], its two relay connections and a [`RecordStore`], and turns each input (a
//! relay frame, an action, the clock) into a [`Step`] for the I/O layer.
//!
//! Two connections, so that the relay never learns who sends: the [`Line::Mailbox`] one logs in
//! and carries what only the mailbox's owner may do (reading, acknowledging, uploading prekeys,
//! publishing the delivery token); the [`Line::Anonymous`] one never logs in and carries every
//! envelope sent, every bundle fetched and every group topic read or written. The sealed envelopes name only their recipient.
//!
//! Commit-then-send lives here: every step's records are saved in one transaction, and its
//! frames leave only once that transaction is durable ([`Commit::durable`]). Transactions are
//! ordered at the call, so frames of later steps never overtake those of earlier ones. Only
//! the handshake's reply and pings are sent at once; they carry nothing that needs storing.

use crate::connection::{Connection, Link, Received, Tick};
use crate::conversation::ConversationId;
use crate::effects::{Effects, Event, Notice};
use crate::error::MessengerError;
use crate::history::PAGE_SIZE;
use crate::messenger::Messenger;
use crate::records::{RecordBytes, RecordKey};
use crate::store::{Order, RecordRange, RecordStore, Saving, StoreError};
use sotto_engine::device::StorageKey;
use sotto_engine::random::Entropy;
use sotto_shared::{ClientFrame, RelayFrame};
use std::future::Future;

/// A transaction in flight and the frames that wait for it.
#[must_use = "the frames must be sent once the commit is durable"]
pub struct Commit {
    saving: Saving,
    frames: Vec<ClientFrame>,
}

impl Commit {
    /// Waits until the records are durable; then the frames may go (through
    /// [`Driver::sendable`], as the link may have dropped meanwhile).
    pub async fn durable(self) -> Result<Vec<ClientFrame>, StoreError> {
        self.saving.await?;
        Ok(self.frames)
    }
}

/// One of the driver's two relay connections, each on its own socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Line {
    /// Logged in to our mailbox: deliveries in, acks, prekeys and the delivery token out.
    Mailbox,
    /// Never logged in: sealed envelopes and bundle fetches, so the relay cannot tell who sent.
    Anonymous,
}

impl Line {
    pub const BOTH: [Line; 2] = [Line::Mailbox, Line::Anonymous];

    /// The line a frame must travel on.
    pub fn of(frame: &ClientFrame) -> Line {
        match frame {
            ClientFrame::Send { .. }
            | ClientFrame::SendAsContact { .. }
            | ClientFrame::FetchBundle { .. }
            | ClientFrame::Subscribe { .. }
            | ClientFrame::Post { .. }
            | ClientFrame::Unsubscribe { .. }
            | ClientFrame::ChannelAdmins { .. }
            | ClientFrame::SubscribeChannel { .. }
            | ClientFrame::PublishPost { .. }
            | ClientFrame::LeaveChannel { .. }
            | ClientFrame::ReportPost { .. }
            | ClientFrame::ChannelCounts { .. }
            | ClientFrame::SendLive { .. } => Line::Anonymous,
            _ => Line::Mailbox,
        }
    }
}

/// What the I/O layer does after an input.
#[derive(Default)]
#[must_use = "a step holds frames to send and a commit to wait for"]
pub struct Step {
    /// Send these at once, each on its line, before anything else.
    pub send: Vec<(Line, ClientFrame)>,
    /// Wait for it, then send its frames.
    pub commit: Option<Commit>,
    pub events: Vec<Event>,
    /// Close these lines' sockets (the relay refused the handshake, or the line went silent),
    /// then call [`Driver::closed`] for each.
    pub close: Vec<Line>,
}

pub struct Driver<S> {
    /// Read it for views; change it only through [`Driver::act`] (or hand what it returns to
    /// [`Driver::apply`]), so that every change is saved before its frames leave.
    pub messenger: Messenger,
    mailbox: Connection,
    anonymous: Connection,
    store: S,
}

impl<S: RecordStore> Driver<S> {
    /// A new identity, saved in `store`. `connection` is the logged-in one; the anonymous one
    /// goes to the same relay.
    pub fn create(
        store: S,
        connection: Connection,
        display_name: &str,
        now_ms: u64,
        e: &mut dyn Entropy,
    ) -> Result<(Self, Step), MessengerError> {
        let (messenger, fx) = Messenger::create(display_name, now_ms, e)?;
        let anonymous = connection.anonymous();
        let mut d = Driver { messenger, mailbox: connection, anonymous, store };
        let step = d.apply(fx);
        Ok((d, step))
    }

    /// Opens what `store` holds: everything but the history, then each conversation's newest
    /// page (and further back, until every unread and unsent message is in).
    pub async fn load(store: S, connection: Connection) -> Result<Self, MessengerError> {
        // Every read is started before the first is awaited (stores start a read at the call,
        // so a browser store answers them concurrently); only the rare further pages of a
        // conversation wait for the one before.
        let singles: [RecordKey; 7] = [
            StorageKey::Identity.into(),
            StorageKey::Prekeys.into(),
            StorageKey::DeliveryTokens.into(),
            RecordKey::Profile,
            RecordKey::Restored,
            RecordKey::Disappearing,
            RecordKey::Indexed,
        ];
        let values: Vec<_> = singles.iter().map(|key| store.get(key)).collect();
        let kinds = [
            RecordRange::Sessions,
            RecordRange::Contacts,
            RecordRange::Outbox,
            RecordRange::Told,
            RecordRange::Requests,
            RecordRange::Groups,
            RecordRange::Joining,
            RecordRange::Asked,
            RecordRange::Search,
        ];
        let runs: Vec<_> =
            kinds.into_iter().map(|range| store.range(range, Order::Ascending, None)).collect();
        let mut records = Vec::new();
        for (key, value) in singles.into_iter().zip(values) {
            records.extend(value.await?.map(|v| (key, v)));
        }
        for run in runs {
            records.extend(run.await?);
        }
        let mut messenger = Messenger::restore(records)?;
        // A restored backup: its sessions stop sending, durably, before anything can be sent.
        if let Some(fx) = messenger.restored_work() {
            store.save_changes(fx.writes).await?;
        }
        let conversations = messenger.conversations();
        let newest: Vec<_> = conversations
            .iter()
            .filter_map(|c| messenger.must_load(c))
            .map(|range| read_page(&store, range))
            .collect();
        for page in newest {
            add_read(&mut messenger, page.await?)?;
        }
        for conversation in &conversations {
            while let Some(range) = messenger.must_load(conversation) {
                add_read(&mut messenger, read_page(&store, range).await?)?;
            }
        }
        // A store from before the search index: its history is indexed once, here, one
        // conversation at a time (channels too).
        if messenger.unindexed() {
            let mut writes = Vec::new();
            for summary in messenger.chat_list() {
                let all = RecordRange::Messages { conversation: summary.conversation, from: 0, to: u64::MAX };
                let stored = store.range(all, Order::Ascending, None).await?;
                writes.extend(messenger.index_stored(stored).writes);
            }
            writes.extend(messenger.indexed());
            store.save_changes(writes).await?;
        }
        let anonymous = connection.anonymous();
        Ok(Driver { messenger, mailbox: connection, anonymous, store })
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Saves the effects' records; their frames wait for the commit. Their events are for
    /// the person.
    pub fn apply(&mut self, fx: Effects) -> Step {
        let Effects { writes, frames, events } = fx;
        let commit = (!writes.is_empty() || !frames.is_empty())
            .then(|| Commit { saving: self.store.save_changes(writes), frames });
        Step { commit, events, ..Step::default() }
    }

    /// Runs an action of the person on the messenger and applies what it asks.
    pub fn act(
        &mut self,
        action: impl FnOnce(&mut Messenger) -> Result<Effects, MessengerError>,
    ) -> Result<Step, MessengerError> {
        let fx = action(&mut self.messenger)?;
        Ok(self.apply(fx))
    }

    /// The frames of a durable commit that may leave now, each with its line: none for a line
    /// that is not ready (what matters waits in the outbox and is resent when the anonymous
    /// line comes up; the mailbox line's work is redone at the next login).
    pub fn sendable(&self, frames: Vec<ClientFrame>) -> Vec<(Line, ClientFrame)> {
        frames
            .into_iter()
            .map(|f| (Line::of(&f), f))
            .filter(|(line, _)| self.connection(*line).link() == Link::Online)
            .collect()
    }

    fn connection(&self, line: Line) -> &Connection {
        match line {
            Line::Mailbox => &self.mailbox,
            Line::Anonymous => &self.anonymous,
        }
    }

    fn connection_mut(&mut self, line: Line) -> &mut Connection {
        match line {
            Line::Mailbox => &mut self.mailbox,
            Line::Anonymous => &mut self.anonymous,
        }
    }

    /// How ready the messenger is: the less ready of the two lines (messages neither arrive
    /// nor leave unless both are up).
    pub fn link(&self) -> Link {
        self.mailbox.link().min(self.anonymous.link())
    }

    pub fn line(&self, line: Line) -> Link {
        self.connection(line).link()
    }

    /// A socket is being opened for `line`.
    pub fn connecting(&mut self, line: Line, now_ms: u64) {
        self.connection_mut(line).connecting(now_ms);
    }

    /// The socket of `line` opened: the frame to send first.
    pub fn opened(&mut self, line: Line, now_ms: u64) -> ClientFrame {
        self.connection_mut(line).opened(now_ms)
    }

    /// The socket of `line` closed or failed: how long to wait before the next attempt.
    pub fn closed(&mut self, line: Line, jitter: f64) -> u64 {
        self.connection_mut(line).closed(jitter)
    }

    /// Connecting is given up for good on both lines (logout, another tab took over).
    pub fn stopped(&mut self) {
        self.mailbox.stopped();
        self.anonymous.stopped();
    }

    /// The clock: pings to send, silent lines to close, refused envelopes to send again,
    /// disappearing messages whose time is up (an app that wakes for those on time calls
    /// [`Messenger::expire`] itself too).
    pub fn tick(&mut self, now_ms: u64) -> Step {
        let mut fx = self.messenger.expire(now_ms);
        if self.anonymous.link() == Link::Online {
            fx.merge(self.messenger.retry_refused(now_ms));
        }
        let mut step =
            if fx.frames.is_empty() && fx.writes.is_empty() { Step::default() } else { self.apply(fx) };
        for line in Line::BOTH {
            match self.connection_mut(line).tick(now_ms) {
                Tick::Ping(ping) => step.send.push((line, ping)),
                Tick::Stale => step.close.push(line),
                Tick::Nothing => {}
            }
        }
        step
    }

    /// A frame from the relay on `line`.
    pub fn received(&mut self, line: Line, frame: RelayFrame, now_ms: u64, e: &mut dyn Entropy) -> Step {
        let m = &self.messenger;
        let connection = match line {
            Line::Mailbox => &mut self.mailbox,
            Line::Anonymous => &mut self.anonymous,
        };
        let frame = match connection.received(frame, now_ms, |o, c| m.authenticate(o, c)) {
            Received::Reply(login) => return Step { send: vec![(line, login)], ..Step::default() },
            Received::Done => return Step::default(),
            Received::Ready => {
                let mut fx = self.messenger.resend();
                if line == Line::Anonymous {
                    fx.merge(self.messenger.resubscribe(now_ms));
                }
                return self.apply(fx);
            }
            Received::Refused(frame) => {
                let notice =
                    if line == Line::Mailbox { Notice::LoginRefused } else { Notice::RequestRefused };
                let events = refusal(frame, notice).into_iter().collect();
                return Step { events, close: vec![line], ..Step::default() };
            }
            Received::Pass(frame @ RelayFrame::Error { id: None, .. }) => {
                let events = refusal(frame, Notice::RequestRefused).into_iter().collect();
                return Step { events, ..Step::default() };
            }
            // Deliveries and the login's work only count on the line logged in to our mailbox.
            Received::Pass(
                RelayFrame::Deliver { .. } | RelayFrame::PrekeysLow { .. } | RelayFrame::Live { .. },
            ) if line == Line::Anonymous => {
                return Step::default();
            }
            Received::LoggedIn(frame) | Received::Pass(frame) => frame,
        };
        let fx = self.messenger.on_frame(frame, now_ms, e);
        self.apply(fx)
    }

    /// Receipts are owed: call [`Driver::flush_receipts`] shortly (a burst of deliveries is
    /// then answered with one receipt per conversation).
    pub fn receipts_due(&self) -> bool {
        self.messenger.receipts_due()
    }

    pub fn flush_receipts(&mut self, now_ms: u64, e: &mut dyn Entropy) -> Step {
        let fx = self.messenger.flush_receipts(now_ms, e);
        self.apply(fx)
    }
}

impl<S: RecordStore + Clone + 'static> Driver<S> {
    /// Reads the page of `conversation` before the loaded messages (hand it to
    /// [`Driver::add_page`]); `None` if everything is loaded.
    pub fn earlier(
        &self,
        conversation: ConversationId,
    ) -> Option<impl Future<Output = Result<Page, StoreError>> + use<S>> {
        let range = self.messenger.earlier(&conversation)?;
        let store = self.store.clone();
        Some(async move { read_page(&store, range).await })
    }
}

impl<S> Driver<S> {
    /// Adds a page read with [`Driver::earlier`]. The history may have moved on while it was
    /// read (it only grows at the new end, so the page still fits unless another came first).
    pub fn add_page(&mut self, page: Page) -> Result<(), MessengerError> {
        add_read(&mut self.messenger, page)
    }
}

/// Adds a page read for [`Messenger::earlier`]; ignored if it no longer is that page.
fn add_read(m: &mut Messenger, page: Page) -> Result<(), MessengerError> {
    let RecordRange::Messages { conversation, .. } = page.range else {
        return Err(MessengerError::Damaged("a page of something other than messages".into()));
    };
    if m.earlier(&conversation) != Some(page.range) {
        return Ok(());
    }
    m.add_page(conversation, page.records, page.complete)
}

/// Stored messages of one conversation, newest first.
pub struct Page {
    range: RecordRange,
    records: Vec<(RecordKey, RecordBytes)>,
    complete: bool,
}

/// Starts reading a page (at the call, like the store's reads).
fn read_page<S: RecordStore>(
    store: &S,
    range: RecordRange,
) -> impl Future<Output = Result<Page, StoreError>> {
    let reading = store.range(range, Order::Descending, Some(PAGE_SIZE));
    async move {
        let records = reading.await?;
        Ok(Page { range, complete: records.len() < PAGE_SIZE, records })
    }
}

fn refusal(frame: RelayFrame, notice: fn(sotto_shared::ErrorCode, String) -> Notice) -> Option<Event> {
    match frame {
        RelayFrame::Error { code, message, .. } => Some(Event::Problem(notice(code, message))),
        _ => None,
    }
}
