//! Test harness: the real relay binary on an ephemeral loopback port with a temp redb store,
//! a minimal native WebSocket client speaking the `shared` frames, and a whole messenger
//! client over real sockets (`client`).

pub mod client;

use futures_util::{SinkExt, StreamExt};
use sotto_messenger::{Connection, Received};
use sotto_shared::{ClientFrame, RelayFrame, decode_relay, encode_client};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The relay binary under test: `SOTTO_RELAY_BIN`, else the release build (scripts/build.sh).
pub fn relay_bin() -> PathBuf {
    std::env::var_os("SOTTO_RELAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/sotto-relay"))
}

/// A running relay process. Killed when dropped.
pub struct Relay {
    pub child: Child,
    pub addr: String,
    pub data_dir: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Relay {
    /// Starts the relay with a fresh data dir and extra flags.
    pub async fn start(extra: &[&str]) -> Relay {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path().to_owned();
        let mut r = Self::start_in(&dir, "127.0.0.1:0", extra).await;
        r._tmp = Some(tmp);
        r
    }

    /// Starts the relay on `data_dir` (kept by the caller, e.g. across restarts).
    pub async fn start_in(data_dir: &Path, listen: &str, extra: &[&str]) -> Relay {
        let bin = relay_bin();
        assert!(bin.exists(), "{} is missing: run scripts/build.sh", bin.display());
        let mut child = Command::new(&bin)
            .args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(if extra.contains(&"--log") { &[][..] } else { &["--log", "info"][..] })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn relay");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let addr = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push_str(&line);
                log.lock().unwrap().push('\n');
                if let Some(i) = line.find("listening on http://") {
                    return line[i + "listening on http://".len()..].trim().to_string();
                }
            }
            panic!("relay exited before listening:\n{}", log.lock().unwrap());
        })
        .await
        .expect("relay did not start within 15 s");
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Relay { child, addr, data_dir: data_dir.to_owned(), log, _tmp: None }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Everything the relay logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: no chance to flush anything.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM and wait for a clean exit; returns whether it exited successfully.
    pub async fn terminate(&mut self) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await,
            Ok(Ok(s)) if s.success()
        )
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw protocol client.
pub struct Conn {
    pub ws: Ws,
}

impl Conn {
    pub async fn connect(relay: &Relay) -> Conn {
        Conn::connect_url(&relay.ws_url()).await
    }

    pub async fn connect_url(ws_url: &str) -> Conn {
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(ws_url, None, true).await.expect("ws connect");
        Conn { ws }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_raw(encode_client(frame)).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("ws send");
    }

    /// The next relay frame, or `None` if the connection closed. Panics after 10 s.
    pub async fn recv(&mut self) -> Option<RelayFrame> {
        self.recv_within(Duration::from_secs(10)).await.expect("no frame within 10 s")
    }

    /// `Err(())` on timeout, `Ok(None)` on close.
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<RelayFrame>, ()> {
        loop {
            let next = tokio::time::timeout(d, self.ws.next()).await.map_err(|_| ())?;
            match next {
                Some(Ok(Message::Binary(b))) => {
                    return Ok(Some(decode_relay(&b).expect("relay sent a valid frame")));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Hello → Welcome; returns the challenge.
    pub async fn hello(&mut self) -> [u8; 32] {
        self.send(&ClientFrame::Hello { client: "sotto-tests".into() }).await;
        match self.recv().await {
            Some(RelayFrame::Welcome { challenge, .. }) => challenge,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }
}

/// A client that has proven an identity and reads its mailbox.
pub struct Authed {
    pub conn: Conn,
    pub address: sotto_shared::Address,
    /// Envelopes the relay said were queued at login.
    pub queued: u32,
}

impl Conn {
    /// Logs in through the messenger's connection machine, as the app does: hello, then the
    /// challenge signed and bound to the relay's origin.
    pub async fn login(relay: &Relay, identity: &sotto_engine::Identity) -> Authed {
        let mut conn = Conn::connect(relay).await;
        let mut link = Connection::new(&relay.http(""), "sotto-tests");
        conn.send(&link.opened(0)).await;
        loop {
            let frame = conn.recv().await.expect("the relay closed during login");
            match link.received(frame, 0, |origin, challenge| identity.login_frame(origin, challenge)) {
                Received::Reply(login) => conn.send(&login).await,
                Received::LoggedIn(RelayFrame::Authenticated { address, queued }) => {
                    return Authed { conn, address, queued };
                }
                Received::Done => {}
                other => panic!("expected Authenticated, got {other:?}"),
            }
        }
    }
}

impl Conn {
    /// Logs in once and leaves: the mailbox exists from then on (the relay refuses mail for
    /// mailboxes nobody ever opened), and stays offline.
    pub async fn open_mailbox(relay: &Relay, identity: &sotto_engine::Identity) {
        let mut authed = Conn::login(relay, identity).await;
        let _ = authed.conn.ws.close(None).await;
    }
}

/// A plain `GET` over HTTP/1.1: the status code and the whole response.
pub async fn http_get(relay: &Relay, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(&relay.addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", relay.addr);
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, out)
}

/// Relay flags that lift rates and quotas, for tests that stream envelopes from one address.
pub const LIFTED: &[&str] = &[
    "--rate-per-connection",
    "1000000",
    "--rate-per-ip",
    "1000000",
    "--max-queued-envelopes",
    "10000000",
    "--max-stranger-envelopes",
    "10000000",
    "--max-connections-per-ip",
    "1000",
    "--topic-posts-per-sec",
    "1000000",
];

/// A plain (stranger's) send with a one-hour TTL.
pub fn send_frame(to: sotto_shared::Address, id: sotto_shared::MessageId, body: &[u8]) -> ClientFrame {
    ClientFrame::Send { id, to, ttl_secs: 3600, payload: body.to_vec() }
}

/// A fresh random message id.
pub fn message_id() -> sotto_shared::MessageId {
    let mut id = [0u8; 16];
    sotto_engine::random::fill(&mut id).expect("randomness");
    sotto_shared::MessageId(id)
}

/// Every file under `dir`, in its subdirectories too (the relay's data: store and blobs).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
