//! The relay connection as a sans-IO state machine: the handshake (hello, then a signed login
//! unless the connection stays anonymous), keeping alive (pings, staleness) and the reconnection
//! schedule. The driver owns the socket and the
//! clock; it tells the machine what happened and does what it answers. The web app, the tests,
//! the load tool and bots all log in through it.

use sotto_shared::{ClientFrame, RelayFrame};

/// First reconnection delay; each failed attempt doubles it…
pub const BACKOFF_START_MS: u64 = 500;
/// …up to this.
pub const BACKOFF_MAX_MS: u64 = 30_000;
/// A quiet connection is pinged this often…
pub const PING_EVERY_MS: u64 = 20_000;
/// …and counts as dead after this long without any frame (the relay answers pings at once).
pub const STALE_MS: u64 = 50_000;

/// Where the connection stands, from least to most ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Link {
    /// No socket; see [`Connection::closed`] for when to try again.
    Offline,
    /// The socket is opening, or hello was sent and the relay's challenge is awaited.
    Connecting,
    /// The challenge was signed; waiting for `Authenticated`.
    LoggingIn,
    /// Logged in (or, for an anonymous connection, greeted): frames of the messenger may be
    /// sent.
    Online,
}

/// What a relay frame means for the connection.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// Send this answer now (the signed login for a challenge), before anything else.
    Reply(ClientFrame),
    /// The relay accepted the login; the frame goes on to the messenger too (it resends the
    /// outbox on it).
    LoggedIn(RelayFrame),
    /// An anonymous connection was greeted: it may carry sends now (the outbox goes out).
    Ready,
    /// The relay refused the handshake (an error before login): close the socket and call
    /// [`Connection::closed`]; the frame says why.
    Refused(RelayFrame),
    /// A frame for the messenger.
    Pass(RelayFrame),
    /// Nothing more to do (a pong).
    Done,
}

/// What the clock means for the connection.
#[derive(Debug, PartialEq)]
pub enum Tick {
    Ping(ClientFrame),
    /// Nothing heard for [`STALE_MS`]: close the socket and call [`Connection::closed`].
    Stale,
    Nothing,
}

#[derive(Debug)]
pub struct Connection {
    /// The relay's origin, bound into the login signature.
    origin: String,
    /// Our agent name, sent in `Hello`.
    client: String,
    /// Whether the challenge is signed. An anonymous connection never logs in, so the relay
    /// cannot tie what it carries to an identity.
    login: bool,
    link: Link,
    /// Failed attempts since the last login.
    attempt: u32,
    last_heard_ms: u64,
    last_ping_ms: u64,
}

impl Connection {
    /// A connection that logs in (to read its mailbox).
    pub fn new(origin: &str, client: &str) -> Connection {
        Connection {
            origin: origin.into(),
            client: client.into(),
            login: true,
            link: Link::Offline,
            attempt: 0,
            last_heard_ms: 0,
            last_ping_ms: 0,
        }
    }

    /// A connection to the same relay that never logs in (to send without saying who sends).
    pub fn anonymous(&self) -> Connection {
        Connection { login: false, ..Connection::new(&self.origin, &self.client) }
    }

    pub fn logs_in(&self) -> bool {
        self.login
    }

    pub fn link(&self) -> Link {
        self.link
    }

    /// The driver is opening a socket (the clock starts for staleness: an opening that hangs
    /// is given up like a silent connection).
    pub fn connecting(&mut self, now_ms: u64) {
        self.link = Link::Connecting;
        self.last_heard_ms = now_ms;
        self.last_ping_ms = now_ms;
    }

    /// The socket is open: the first frame to send.
    pub fn opened(&mut self, now_ms: u64) -> ClientFrame {
        self.link = Link::Connecting;
        self.last_heard_ms = now_ms;
        self.last_ping_ms = now_ms;
        ClientFrame::Hello { client: self.client.clone() }
    }

    /// A frame arrived. `login` signs the relay's challenge for our origin (the messenger's or
    /// an identity's `authenticate`).
    pub fn received(
        &mut self,
        frame: RelayFrame,
        now_ms: u64,
        login: impl FnOnce(&str, &[u8; 32]) -> ClientFrame,
    ) -> Received {
        self.last_heard_ms = now_ms;
        match frame {
            RelayFrame::Welcome { .. } if self.link == Link::Connecting && !self.login => {
                self.link = Link::Online;
                self.attempt = 0;
                Received::Ready
            }
            RelayFrame::Welcome { challenge, .. } if self.link == Link::Connecting => {
                self.link = Link::LoggingIn;
                Received::Reply(login(&self.origin, &challenge))
            }
            RelayFrame::Authenticated { .. } if self.link == Link::LoggingIn => {
                self.link = Link::Online;
                self.attempt = 0;
                Received::LoggedIn(frame)
            }
            // Not asked for: it must not start the messenger's login work.
            RelayFrame::Authenticated { .. } | RelayFrame::Pong { .. } => Received::Done,
            RelayFrame::Error { id: None, .. } if matches!(self.link, Link::Connecting | Link::LoggingIn) => {
                Received::Refused(frame)
            }
            other => Received::Pass(other),
        }
    }

    /// Called now and then (every few seconds is plenty).
    pub fn tick(&mut self, now_ms: u64) -> Tick {
        if self.link == Link::Offline {
            return Tick::Nothing;
        }
        if now_ms.saturating_sub(self.last_heard_ms) > STALE_MS {
            return Tick::Stale;
        }
        // Only a ready link is pinged: a handshake that stalls is not kept alive by pongs.
        if self.link == Link::Online
            && now_ms.saturating_sub(self.last_ping_ms.max(self.last_heard_ms)) >= PING_EVERY_MS
        {
            self.last_ping_ms = now_ms;
            return Tick::Ping(ClientFrame::Ping { nonce: now_ms });
        }
        Tick::Nothing
    }

    /// The driver gave the connection up for good (the person logged out, another tab took
    /// over): offline, and the next attempt starts the schedule over.
    pub fn stopped(&mut self) {
        self.link = Link::Offline;
        self.attempt = 0;
    }

    /// The socket closed (or never opened): how long to wait before the next attempt.
    /// Exponential backoff with ±20 % jitter (`jitter` in [0, 1)), so a relay restart is not
    /// met by a stampede.
    pub fn closed(&mut self, jitter: f64) -> u64 {
        self.link = Link::Offline;
        let base = BACKOFF_START_MS.saturating_mul(1 << self.attempt.min(10)).min(BACKOFF_MAX_MS);
        self.attempt = self.attempt.saturating_add(1);
        (base as f64 * (0.8 + 0.4 * jitter.clamp(0.0, 1.0))) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sotto_shared::Address;
    use sotto_shared::frames::ErrorCode;

    fn signed(origin: &str, challenge: &[u8; 32]) -> ClientFrame {
        ClientFrame::Hello { client: format!("{origin}:{}", challenge[0]) }
    }

    fn welcome(byte: u8) -> RelayFrame {
        RelayFrame::Welcome { version: 1, relay: "r".into(), challenge: [byte; 32] }
    }

    #[test]
    fn hello_then_signed_login_then_online() {
        let mut c = Connection::new("http://r", "t/1");
        c.connecting(0);
        assert_eq!(c.opened(0), ClientFrame::Hello { client: "t/1".into() });
        assert_eq!(c.received(welcome(7), 1, signed), Received::Reply(signed("http://r", &[7; 32])));
        assert_eq!(c.link(), Link::LoggingIn);
        let authed = RelayFrame::Authenticated { address: Address([1; 32]), queued: 0 };
        assert_eq!(c.received(authed.clone(), 2, signed), Received::LoggedIn(authed));
        assert_eq!(c.link(), Link::Online);
        // A second challenge is not signed again; it goes to the caller as any frame.
        assert_eq!(c.received(welcome(8), 3, signed), Received::Pass(welcome(8)));
        let refused = RelayFrame::Error { code: ErrorCode::RateLimited, message: "m".into(), id: None };
        assert_eq!(c.received(refused.clone(), 4, signed), Received::Pass(refused), "after login: a notice");
        assert_eq!(c.received(RelayFrame::Pong { nonce: 1 }, 5, signed), Received::Done);
    }

    #[test]
    fn an_anonymous_connection_never_signs_and_is_ready_after_hello() {
        let mut c = Connection::new("http://r", "t/1").anonymous();
        assert!(!c.logs_in());
        c.connecting(0);
        assert_eq!(c.opened(0), ClientFrame::Hello { client: "t/1".into() });
        let login = |_: &str, _: &[u8; 32]| -> ClientFrame { panic!("an anonymous connection signed") };
        assert_eq!(c.received(welcome(7), 1, login), Received::Ready);
        assert_eq!(c.link(), Link::Online);
        assert_eq!(c.tick(1 + PING_EVERY_MS), Tick::Ping(ClientFrame::Ping { nonce: 1 + PING_EVERY_MS }));
        let authed = RelayFrame::Authenticated { address: Address([1; 32]), queued: 0 };
        assert_eq!(c.received(authed, 2, login), Received::Done, "an unasked login is ignored");
        assert_eq!(c.received(welcome(8), 3, login), Received::Pass(welcome(8)));
        assert!(c.closed(0.5) <= BACKOFF_START_MS * 2, "being greeted starts the schedule over");
    }

    #[test]
    fn an_unasked_authenticated_does_not_log_in() {
        let mut c = Connection::new("http://r", "t");
        c.opened(0);
        let authed = RelayFrame::Authenticated { address: Address([1; 32]), queued: 0 };
        assert_eq!(c.received(authed, 1, signed), Received::Done, "not passed on to the messenger");
        assert_eq!(c.link(), Link::Connecting);
    }

    #[test]
    fn an_error_during_the_handshake_refuses_it() {
        let mut c = Connection::new("http://r", "t");
        c.opened(0);
        c.received(welcome(1), 1, signed);
        let refused = RelayFrame::Error { code: ErrorCode::RateLimited, message: "m".into(), id: None };
        assert_eq!(c.received(refused.clone(), 2, signed), Received::Refused(refused));
    }

    #[test]
    fn an_opening_socket_is_not_stale_and_a_stalled_handshake_is_not_kept_alive() {
        let mut c = Connection::new("http://r", "t");
        c.closed(0.5);
        // Long after the last frame of an earlier connection, a new one starts its own clock.
        c.connecting(10 * STALE_MS);
        assert_eq!(c.tick(10 * STALE_MS + 5_000), Tick::Nothing);
        c.opened(10 * STALE_MS + 100);
        c.received(welcome(1), 10 * STALE_MS + 200, signed);
        // Logging in: never pinged, so silence ends it.
        assert_eq!(c.tick(10 * STALE_MS + 200 + PING_EVERY_MS), Tick::Nothing);
        assert_eq!(c.tick(10 * STALE_MS + 201 + STALE_MS), Tick::Stale);
    }

    #[test]
    fn quiet_connections_are_pinged_then_given_up() {
        let mut c = Connection::new("http://r", "t");
        assert_eq!(c.tick(1_000_000), Tick::Nothing, "offline: nothing to ping");
        c.opened(0);
        c.received(welcome(1), 0, signed);
        c.received(RelayFrame::Authenticated { address: Address([1; 32]), queued: 0 }, 0, signed);
        assert_eq!(c.tick(PING_EVERY_MS - 1), Tick::Nothing);
        assert_eq!(c.tick(PING_EVERY_MS), Tick::Ping(ClientFrame::Ping { nonce: PING_EVERY_MS }));
        assert_eq!(c.tick(PING_EVERY_MS + 1), Tick::Nothing, "one ping per interval");
        // A frame resets the clock.
        c.received(RelayFrame::Pong { nonce: 0 }, PING_EVERY_MS + 10, signed);
        assert_eq!(c.tick(PING_EVERY_MS + 20), Tick::Nothing);
        assert_eq!(c.tick(PING_EVERY_MS + 10 + STALE_MS + 1), Tick::Stale);
    }

    #[test]
    fn reconnections_back_off_with_jitter_and_reset_on_login() {
        let mut c = Connection::new("http://r", "t");
        let delays: Vec<u64> = (0..9).map(|_| c.closed(0.5)).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(c.closed(0.0), 24_000, "jitter spans ±20 %");
        assert_eq!(c.closed(1.0), 36_000);
        c.opened(0);
        c.received(welcome(1), 1, signed);
        c.received(RelayFrame::Authenticated { address: Address([1; 32]), queued: 0 }, 2, signed);
        assert_eq!(c.closed(0.5), 500, "a login starts the schedule over");
        assert_eq!(c.link(), Link::Offline);
    }
}
