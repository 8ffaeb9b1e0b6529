//! A native messenger client: the one driver over a memory store and two real WebSockets (the
//! logged-in mailbox line and the anonymous sending line), as a bot would run it. The e2ee
//! tests and the `sotto-stranger` helper of the browser tests use it.

use crate::Conn;
use sotto_engine::random::OsEntropy;
use sotto_messenger::{Connection, ConversationId, Driver, Event, Line, Link, MemoryStore, Step};
use sotto_shared::Address;

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub struct Client {
    pub d: Driver<MemoryStore>,
    /// Logged in to the mailbox.
    mailbox: Conn,
    /// Never logged in: sends and bundle fetches.
    anonymous: Conn,
}

impl Client {
    /// A new identity named `name` on the relay at `origin` (`http://host:port`), online once
    /// its prekeys are published.
    pub async fn join(origin: &str, name: &str) -> Client {
        let connection = Connection::new(origin, "sotto-tests");
        let (d, step) = Driver::create(MemoryStore::default(), connection, name, now(), &mut OsEntropy)
            .expect("an identity is made");
        let mut c = Client::online(origin, d).await;
        c.run(step).await;
        while !c.d.messenger.profile().prekeys_published {
            c.pump().await;
        }
        c
    }

    /// Opens both lines: one logs in, the other stays anonymous.
    pub async fn online(origin: &str, mut d: Driver<MemoryStore>) -> Client {
        let ws_url = origin.replacen("http", "ws", 1) + "/ws";
        let (mut mailbox, mut anonymous) =
            (Conn::connect_url(&ws_url).await, Conn::connect_url(&ws_url).await);
        for (line, conn) in [(Line::Mailbox, &mut mailbox), (Line::Anonymous, &mut anonymous)] {
            d.connecting(line, now());
            conn.send(&d.opened(line, now())).await;
        }
        let mut c = Client { d, mailbox, anonymous };
        while c.d.link() != Link::Online {
            c.pump().await;
        }
        c
    }

    fn conn(&mut self, line: Line) -> &mut Conn {
        match line {
            Line::Mailbox => &mut self.mailbox,
            Line::Anonymous => &mut self.anonymous,
        }
    }

    pub fn address(&self) -> Address {
        self.d.messenger.address()
    }

    /// The I/O layer: frames to send at once, then the commit, then its frames.
    pub async fn run(&mut self, step: Step) -> Vec<Event> {
        for (line, f) in &step.send {
            self.conn(*line).send(f).await;
        }
        if let Some(commit) = step.commit {
            for (line, f) in self.d.sendable(commit.durable().await.expect("a memory store commits")) {
                self.conn(line).send(&f).await;
            }
        }
        step.events
    }

    /// One frame from the relay, handled; receipts owed are sent at once.
    pub async fn pump(&mut self) -> Vec<Event> {
        let (line, frame) = tokio::select! {
            f = self.mailbox.recv() => (Line::Mailbox, f),
            f = self.anonymous.recv() => (Line::Anonymous, f),
        };
        self.handle(line, frame.expect("the relay is still there")).await
    }

    /// Like [`Client::pump`], but `None` if no frame comes within `d` (only the wait is cut
    /// short, never the handling).
    pub async fn pump_within(&mut self, d: std::time::Duration) -> Option<Vec<Event>> {
        let (line, frame) = tokio::select! {
            f = self.mailbox.recv_within(d) => (Line::Mailbox, f.ok()?),
            f = self.anonymous.recv_within(d) => (Line::Anonymous, f.ok()?),
        };
        Some(self.handle(line, frame.expect("the relay is still there")).await)
    }

    /// Handles frames of one line only, until none comes within `d` (to make frames of the
    /// two lines arrive in a chosen order).
    pub async fn drain_line(&mut self, line: Line, d: std::time::Duration) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(Some(frame)) = self.conn(line).recv_within(d).await {
            events.extend(self.handle(line, frame).await);
        }
        events
    }

    async fn handle(&mut self, line: Line, frame: sotto_shared::RelayFrame) -> Vec<Event> {
        let step = self.d.received(line, frame, now(), &mut OsEntropy);
        let mut events = self.run(step).await;
        if self.d.receipts_due() {
            let step = self.d.flush_receipts(now(), &mut OsEntropy);
            events.extend(self.run(step).await);
        }
        events
    }

    /// Sends a text to a contact and waits until the relay has it.
    pub async fn say(&mut self, to: Address, words: &str) {
        self.say_in(ConversationId::Direct(to), words).await;
    }

    /// The clock, as the app's timer runs it: pings, and sends the relay refused for a while.
    pub async fn tick(&mut self) -> Vec<Event> {
        let step = self.d.tick(now());
        self.run(step).await
    }

    /// Sends a text in a chat (direct or group) and waits until the relay has it.
    pub async fn say_in(&mut self, chat: ConversationId, words: &str) {
        let step =
            self.d.act(|m| m.send_text(&chat, words, now(), &mut OsEntropy)).expect("the text is sent");
        self.run(step).await;
        while self.d.messenger.pending() > 0 {
            self.pump().await;
        }
    }

    /// Makes `other` a contact through an invite link of ours, as two people would.
    pub async fn befriend(&mut self, other: &mut Client, origin: &str) {
        let (link, fx) = self.d.messenger.create_invite(origin, now(), &mut OsEntropy).expect("an invite");
        let step = self.d.apply(fx);
        self.run(step).await;
        let token = link.rsplit('/').next().expect("a link with a token");
        let preview = other.d.messenger.preview_invite(token, origin, now()).expect("a valid invite");
        let step = other.d.act(|m| m.accept_invite(&preview, now(), &mut OsEntropy)).expect("accepted");
        other.run(step).await;
        let address = other.address();
        while self.d.messenger.contact(&address).is_none() {
            self.pump().await;
        }
    }

    /// Waits for an event `pick` accepts; a problem on the way is a failure.
    pub async fn wait_for<T>(&mut self, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        loop {
            for e in self.pump().await {
                if let Event::Problem(p) = &e {
                    panic!("{p}");
                }
                if let Some(found) = pick(&e) {
                    return found;
                }
            }
        }
    }

    /// Waits for a problem `pick` accepts (other events and problems pass by).
    pub async fn wait_for_problem<T>(
        &mut self,
        mut pick: impl FnMut(&sotto_messenger::Notice) -> Option<T>,
    ) -> T {
        loop {
            for e in self.pump().await {
                if let Event::Problem(p) = &e
                    && let Some(found) = pick(p)
                {
                    return found;
                }
            }
        }
    }

    /// The next text that arrives.
    pub async fn hear(&mut self) -> String {
        self.wait_for(|e| match e {
            Event::Message { text, .. } => Some(text.clone()),
            _ => None,
        })
        .await
    }

    /// Writes to `to` without an invite (it becomes a contact request there): waits until the
    /// introduction is out.
    pub async fn write_to(&mut self, to: Address) {
        let step = self.d.act(|m| m.write_to(to)).expect("an address to write to");
        self.run(step).await;
        self.wait_for(|e| matches!(e, Event::ContactAdded(a) if *a == to).then_some(())).await;
        while self.d.messenger.pending() > 0 {
            self.pump().await;
        }
    }
}
