//! Connection hygiene against the real binary: deadlines for every stage of a connection, origin
//! checks, per-client limits behind a trusted proxy, private metrics and a draining shutdown.

use futures_util::{SinkExt, StreamExt};
use sotto_engine::Identity;
use sotto_shared::{ClientFrame, ErrorCode, RelayFrame, decode_relay, encode_client};
use sotto_tests::{Conn, LIFTED, Relay, message_id};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Reads until the peer closes; `true` if it closed within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn half_sent_and_silent_http_requests_are_dropped_after_the_header_timeout() {
    let relay = Relay::start(&["--header-timeout-secs", "1"]).await;
    let mut held = Vec::new();
    for i in 0..40 {
        let mut s = TcpStream::connect(&relay.addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        }
        held.push(s);
    }
    for s in &mut held {
        assert!(closed_within(s, Duration::from_secs(5)).await, "a half-open request was still held");
    }
    // A complete request is served as usual.
    let mut ok = TcpStream::connect(&relay.addr).await.unwrap();
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    ok.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[tokio::test]
async fn a_websocket_that_never_says_hello_is_closed_with_a_reason() {
    let relay = Relay::start(&["--hello-timeout-secs", "1"]).await;
    let mut conn = Conn::connect(&relay).await;
    match conn.recv_within(Duration::from_secs(5)).await {
        Ok(Some(RelayFrame::Error { code: ErrorCode::Timeout, message, .. })) => {
            assert!(message.contains("hello"))
        }
        other => panic!("expected a Timeout error, got {other:?}"),
    }
    assert_eq!(conn.recv_within(Duration::from_secs(5)).await, Ok(None), "closed after the timeout");
}

#[tokio::test]
async fn a_silent_peer_is_pinged_then_closed_while_a_live_one_stays() {
    let relay = Relay::start(&["--ping-interval-secs", "1", "--idle-timeout-secs", "2"]).await;
    // Live: keeps reading, so its WebSocket library answers the relay's pings.
    let mut live = Conn::connect(&relay).await;
    live.hello().await;
    // Dead: says hello, then is never read (so it never answers a ping).
    let mut dead = Conn::connect(&relay).await;
    dead.hello().await;
    let reading = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut pings = 0;
        while let Ok(next) = tokio::time::timeout_at(deadline, live.ws.next()).await {
            match next {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(other)) => panic!("the live connection got {other:?}"),
                _ => panic!("the live connection was closed"),
            }
        }
        (live, pings)
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (mut live, pings) = reading.await.unwrap();
    assert!(pings >= 2, "the relay pinged a quiet connection {pings} times in 5 s");
    live.send(&ClientFrame::Ping { nonce: 7 }).await;
    assert_eq!(live.recv().await, Some(RelayFrame::Pong { nonce: 7 }), "the live connection is still open");

    let mut reason = None;
    loop {
        // Had the relay not closed it by now, reading would answer its pings and keep it open.
        let next = tokio::time::timeout(Duration::from_secs(10), dead.ws.next()).await;
        match next.expect("the silent connection was not closed") {
            Some(Ok(Message::Binary(b))) => reason = Some(decode_relay(&b).unwrap()),
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    assert!(
        matches!(reason, Some(RelayFrame::Error { code: ErrorCode::Timeout, .. })),
        "expected a Timeout before the close, got {reason:?}"
    );
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_cut_off() {
    let relay = Relay::start(&[
        "--write-stall-secs",
        "1",
        "--rate-per-connection",
        "100000",
        "--rate-per-ip",
        "100000",
        "--ip-bytes-per-sec",
        "100000000",
        "--ip-bytes-burst",
        "200000000",
        "--max-stranger-envelopes",
        "100000",
    ])
    .await;
    let bob = Identity::generate().unwrap();
    // Bob logs in and then never reads again.
    let bob_conn = Conn::login(&relay, &bob).await.conn;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let body = vec![3u8; 60_000];
    for _ in 0..300 {
        sender
            .send(&ClientFrame::Send {
                id: message_id(),
                to: bob.address(),
                ttl_secs: 600,
                payload: body.clone(),
            })
            .await;
    }
    let mut sent = 0;
    while sent < 300 {
        if let Some(RelayFrame::Sent { .. }) = sender.recv().await {
            sent += 1;
        }
    }
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, metrics) = sotto_tests::http_get(&relay, "/metrics").await;
        if metrics.contains("sotto_authenticated_connections 0") {
            gone = true;
            break;
        }
    }
    assert!(gone, "the stalled reader is still connected");
    drop(bob_conn);
}

async fn ws_with_headers(relay: &Relay, headers: &[(&str, &str)]) -> Result<sotto_tests::Ws, u16> {
    let mut request = relay.ws_url().into_client_request().unwrap();
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        request.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn websockets_from_foreign_origins_are_refused() {
    let relay = Relay::start(&[]).await;
    assert_eq!(ws_with_headers(&relay, &[("origin", "https://evil.example")]).await.err(), Some(403));
    let own = relay.http("");
    assert!(ws_with_headers(&relay, &[("origin", &own)]).await.is_ok());
    let localhost = own.replace("127.0.0.1", "localhost");
    assert!(ws_with_headers(&relay, &[("origin", &localhost)]).await.is_ok());

    // A login signed for an origin the relay never accepts fails even if `Host` names it.
    let alice = Identity::generate().unwrap();
    let mut ws = ws_with_headers(&relay, &[("host", "evil.example")]).await.unwrap();
    ws.send(Message::Binary(encode_client(&ClientFrame::Hello { client: "t".into() }).into())).await.unwrap();
    let Some(Ok(Message::Binary(b))) = ws.next().await else { panic!("no welcome") };
    let Ok(RelayFrame::Welcome { challenge, .. }) = decode_relay(&b) else { panic!("no welcome") };
    let signature = alice.sign(&sotto_shared::frames::auth_message("http://evil.example", &challenge));
    let auth = ClientFrame::Authenticate { identity: Box::new(alice.public()), signature };
    ws.send(Message::Binary(encode_client(&auth).into())).await.unwrap();
    let Some(Ok(Message::Binary(b))) = ws.next().await else { panic!("no answer") };
    assert!(matches!(decode_relay(&b), Ok(RelayFrame::Error { code: ErrorCode::AuthFailed, .. })));
}

#[tokio::test]
async fn listening_on_all_interfaces_needs_a_public_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(sotto_tests::relay_bin())
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--public-origin"), "{text}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_count_the_clients_it_names() {
    let relay = Relay::start(&["--trusted-proxy", "127.0.0.0/8", "--max-connections-per-ip", "2"]).await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    let mut held = Vec::new();
    for nonce in 0..2 {
        let mut ws = ws_with_headers(&relay, &a).await.unwrap();
        // Counted in once it answers (the relay counts a connection after its handshake, in
        // a task of its own: without this, the third could be counted before the second).
        ws.send(Message::Binary(encode_client(&ClientFrame::Ping { nonce }).into())).await.unwrap();
        let Some(Ok(Message::Binary(b))) = ws.next().await else { panic!("no pong") };
        assert_eq!(decode_relay(&b), Ok(RelayFrame::Pong { nonce }));
        held.push(ws);
    }
    // A client's own `Forwarded` header names nobody: only `X-Forwarded-For` is read.
    let spoof = [("x-forwarded-for", "198.51.100.1"), ("forwarded", "for=192.0.2.77")];
    let mut third = ws_with_headers(&relay, &spoof).await.unwrap();
    let Some(Ok(Message::Binary(b))) = third.next().await else { panic!("no refusal") };
    assert!(matches!(decode_relay(&b), Ok(RelayFrame::Error { code: ErrorCode::TooManyConnections, .. })));
    // Another client behind the same proxy is counted on its own.
    let mut other = ws_with_headers(&relay, &[("x-forwarded-for", "198.51.100.2")]).await.unwrap();
    other.send(Message::Binary(encode_client(&ClientFrame::Ping { nonce: 1 }).into())).await.unwrap();
    let Some(Ok(Message::Binary(b))) = other.next().await else { panic!("no pong") };
    assert_eq!(decode_relay(&b), Ok(RelayFrame::Pong { nonce: 1 }));
}

async fn get_metrics(relay: &Relay, headers: &str) -> String {
    let mut s = TcpStream::connect(&relay.addr).await.unwrap();
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn metrics_answer_loopback_or_the_token_only() {
    // Directly on loopback: open; a forwarded header from an untrusted peer changes nothing.
    let relay = Relay::start(&[]).await;
    assert!(get_metrics(&relay, "").await.starts_with("HTTP/1.1 200"));
    assert!(get_metrics(&relay, "X-Forwarded-For: 203.0.113.5\r\n").await.starts_with("HTTP/1.1 200"));

    // Behind a trusted proxy on loopback, everyone arrives from loopback: only the token opens
    // it, whatever the forwarded headers claim.
    let relay = Relay::start(&["--trusted-proxy", "127.0.0.0/8", "--metrics-token", "s3cret"]).await;
    let remote = "X-Forwarded-For: 203.0.113.5\r\n";
    assert!(get_metrics(&relay, remote).await.starts_with("HTTP/1.1 404"));
    assert!(get_metrics(&relay, "X-Forwarded-For: 127.0.0.1\r\n").await.starts_with("HTTP/1.1 404"));
    assert!(get_metrics(&relay, "Forwarded: for=unknown\r\n").await.starts_with("HTTP/1.1 404"));
    let wrong = format!("{remote}Authorization: Bearer wrong\r\n");
    assert!(get_metrics(&relay, &wrong).await.starts_with("HTTP/1.1 404"));
    let right = format!("{remote}Authorization: Bearer s3cret\r\n");
    let ok = get_metrics(&relay, &right).await;
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains("sotto_connections"), "{ok}");
}

/// SIGTERM while a client streams sends: every send the relay read is answered before the
/// socket closes, the relay exits cleanly, and everything answered `Sent` is kept.
#[tokio::test]
async fn sigterm_answers_pending_sends_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let flags = [LIFTED, &["--log", "info"]].concat();
    let mut relay = Relay::start_in(dir.path(), "127.0.0.1:0", &flags).await;
    assert!(relay.log().contains("connection ceiling"), "{}", relay.log());
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let (mut tx, mut rx) = sender.ws.split();
    let to = bob.address();
    let writer = tokio::spawn(async move {
        for i in 0u32..20_000 {
            let frame = encode_client(&ClientFrame::Send {
                id: message_id(),
                to,
                ttl_secs: 600,
                payload: i.to_be_bytes().to_vec(),
            });
            if tx.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
    });
    let reader = tokio::spawn(async move {
        let (mut sent, mut answered, mut clean_close) = (HashSet::new(), 0, false);
        while let Some(msg) = rx.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    answered += 1;
                    if let Ok(RelayFrame::Sent { id }) = decode_relay(&b) {
                        sent.insert(id);
                    }
                }
                Ok(Message::Close(_)) => clean_close = true,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (sent, answered, clean_close)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(relay.terminate().await, "the relay did not exit cleanly on SIGTERM");
    let _ = writer.await;
    let (sent, answered, clean_close) = reader.await.unwrap();
    assert!(clean_close, "the socket was dropped without a close frame");
    assert!(!sent.is_empty() && answered >= sent.len());
    let relay = Relay::start_in(dir.path(), "127.0.0.1:0", &[]).await;
    let authed = Conn::login(&relay, &bob).await;
    assert_eq!(authed.queued as usize, sent.len(), "every Sent envelope was kept, nothing more");
}
