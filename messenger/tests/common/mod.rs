//! The harness the messenger's tests share: one person is a driver over a memory store, and
//! frames are handed from one to the other the way the relay would.
#![allow(dead_code)]

use sotto_engine::random::OsEntropy;
use sotto_messenger::{Connection, Driver, Effects, Event, Line, Link, MemoryStore, Messenger, Step};
use sotto_shared::{ClientFrame, MessageId, RelayFrame};
use std::collections::BTreeMap;

pub const ORIGIN: &str = "http://127.0.0.1:8080";
pub const NOW: u64 = 1_800_000_000_000;

/// One person: the driver over a memory store, as a bot or the web app runs it.
pub struct Person {
    pub d: Driver<MemoryStore>,
    /// Envelopes sent, as the relay would hold them.
    pub sent: Vec<(MessageId, Vec<u8>)>,
    /// The last prekey upload, as the relay would hold it (to answer bundle fetches).
    pub uploaded: Option<ClientFrame>,
}

impl Person {
    pub async fn new(name: &str) -> Person {
        let (d, step) =
            Driver::create(MemoryStore::default(), Connection::new(ORIGIN, "t"), name, NOW, &mut OsEntropy)
                .unwrap();
        let mut p = Person { d, sent: Vec::new(), uploaded: None };
        assert!(p.run(step).await.is_empty());
        assert!(p.sent.is_empty(), "nothing is sent before login");
        p
    }

    /// Logs in through the connection machine, as against a relay, and opens the anonymous
    /// line for sending.
    pub async fn login(&mut self, now: u64) -> Vec<Event> {
        let mut events = self.login_mailbox(now).await;
        events.extend(self.open_sending(now).await);
        events
    }

    pub async fn login_mailbox(&mut self, now: u64) -> Vec<Event> {
        self.d.connecting(Line::Mailbox, now);
        self.d.opened(Line::Mailbox, now);
        let step = self.d.received(Line::Mailbox, welcome(), now, &mut OsEntropy);
        assert!(matches!(step.send[..], [(Line::Mailbox, ClientFrame::Authenticate { .. })]));
        let address = self.m().address();
        let authed = RelayFrame::Authenticated { address, queued: 0 };
        let step = self.d.received(Line::Mailbox, authed, now, &mut OsEntropy);
        self.run(step).await
    }

    pub async fn open_sending(&mut self, now: u64) -> Vec<Event> {
        self.d.connecting(Line::Anonymous, now);
        self.d.opened(Line::Anonymous, now);
        let step = self.d.received(Line::Anonymous, welcome(), now, &mut OsEntropy);
        assert!(step.send.is_empty(), "the anonymous line never signs anything");
        self.run(step).await
    }

    /// Both lines drop (frames wait in the outbox until the sending line is back).
    pub fn drop_link(&mut self) {
        for line in Line::BOTH {
            let _ = self.d.closed(line, 0.5);
        }
    }

    pub fn m(&self) -> &Messenger {
        &self.d.messenger
    }

    /// What the I/O layer does with a step: wait for the commit, then send what may leave.
    pub async fn run(&mut self, step: Step) -> Vec<Event> {
        if let Some(commit) = step.commit {
            let frames = commit.durable().await.unwrap();
            for (line, f) in self.d.sendable(frames) {
                if let ClientFrame::Send { id, payload, .. }
                | ClientFrame::SendAsContact { id, payload, .. } = f
                {
                    assert_eq!(line, Line::Anonymous, "an envelope on the logged-in line");
                    self.sent.push((id, payload))
                } else if let ClientFrame::UploadPrekeys { .. } = f {
                    self.uploaded = Some(f);
                }
            }
        }
        step.events
    }

    pub async fn apply(&mut self, fx: Effects) -> Vec<Event> {
        let step = self.d.apply(fx);
        self.run(step).await
    }

    /// A frame on the line the relay would answer on.
    pub async fn frame(&mut self, f: RelayFrame) -> Vec<Event> {
        let line = match f {
            RelayFrame::Sent { .. } | RelayFrame::Bundle { .. } | RelayFrame::Error { id: Some(_), .. } => {
                Line::Anonymous
            }
            _ => Line::Mailbox,
        };
        let step = self.d.received(line, f, NOW, &mut OsEntropy);
        self.run(step).await
    }

    /// Reloads from storage, as a page reload would (still logged in: the relay link is
    /// the I/O layer's, not the store's).
    pub async fn reload(&mut self) {
        let online = self.d.link() == Link::Online;
        self.d = Driver::load(self.d.store().clone(), Connection::new(ORIGIN, "t")).await.unwrap();
        if online {
            self.login(NOW).await;
        }
    }

    /// The bundle the relay would hand out for this person (with a one-time prekey it holds).
    pub fn bundle(&self) -> sotto_shared::frames::PrekeyBundle {
        let Some(ClientFrame::UploadPrekeys { signed_prekey, one_time }) = &self.uploaded else {
            panic!("no prekeys uploaded yet")
        };
        sotto_shared::frames::PrekeyBundle {
            identity: self.m().identity(),
            signed_prekey: *signed_prekey,
            one_time_prekey: one_time.first().copied(),
        }
    }

    pub fn records(&self) -> BTreeMap<String, Vec<u8>> {
        self.d.store().snapshot()
    }

    /// The relay confirms every envelope and hands them to `to`, whose app then sends the
    /// receipts it owes (as the web app does a moment later).
    pub async fn flush_to(&mut self, to: &mut Person) -> Vec<Event> {
        let mut events = Vec::new();
        for (id, payload) in std::mem::take(&mut self.sent) {
            self.frame(RelayFrame::Sent { id }).await;
            events.extend(to.frame(RelayFrame::Deliver { id, received_at: 0, payload }).await);
        }
        let step = to.d.flush_receipts(NOW, &mut OsEntropy);
        to.run(step).await;
        events
    }
}

pub fn welcome() -> RelayFrame {
    RelayFrame::Welcome { version: 1, relay: "r".into(), challenge: [1; 32] }
}

pub async fn connect(a: &mut Person, b: &mut Person) {
    a.login(NOW).await;
    let (link, fx) = a.d.messenger.create_invite(ORIGIN, NOW, &mut OsEntropy).unwrap();
    a.apply(fx).await;
    let payload = link.strip_prefix(&format!("{ORIGIN}/#/invite/")).unwrap();
    let preview = b.d.messenger.preview_invite(payload, ORIGIN, NOW).unwrap();
    assert_eq!(preview.invite.display_name, a.d.messenger.profile().display_name);
    assert!(!preview.known);
    let fx = b.d.messenger.accept_invite(&preview, NOW, &mut OsEntropy).unwrap();
    assert!(fx.events.contains(&Event::ContactAdded(a.d.messenger.address())));
    b.apply(fx).await;
    if b.d.link() != Link::Online {
        // B is offline: the introduction waits in the outbox and goes out at login.
        assert!(b.sent.is_empty());
        b.login(NOW).await;
    }
    assert_eq!(b.sent.len(), 1, "the introduction is sent");
    assert_eq!(b.d.messenger.pending(), 1);
    let events = b.flush_to(a).await;
    assert!(events.contains(&Event::ContactAdded(b.d.messenger.address())));
    assert_eq!(b.d.messenger.pending(), 0);
}
