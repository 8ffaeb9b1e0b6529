//! The relay binary serves the app, speaks the versioned hello on /ws, and shrugs off garbage.

use sotto_shared::codec::WIRE_VERSION;
use sotto_shared::{ClientFrame, ErrorCode, RelayFrame};
use sotto_tests::{Conn, Relay};

#[tokio::test]
async fn serves_the_app_with_security_headers() {
    let relay = Relay::start(&[]).await;
    let http = reqwest::Client::new();

    let index = http.get(relay.http("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = index.text().await.unwrap();
    assert!(!html.contains("<script>"), "no inline script");

    // The wasm named by the page is served as application/wasm and immutable.
    let wasm_path = html
        .split('"')
        .find(|s| s.starts_with("/sotto-") && s.ends_with(".wasm"))
        .expect("index.html names the wasm");
    let wasm = http.get(relay.http(wasm_path)).send().await.unwrap();
    assert_eq!(wasm.status(), 200);
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert!(wasm.headers()["cache-control"].to_str().unwrap().contains("immutable"));
    assert!(wasm.headers().contains_key("content-security-policy"));
    let bytes = wasm.bytes().await.unwrap();
    assert_eq!(&bytes[..4], b"\0asm");

    // gzip is offered to browsers that take it.
    let gz = http.get(relay.http(wasm_path)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz = gz.bytes().await.unwrap().len();
    assert!(gz < bytes.len());
    // Brotli to those that take it, smaller still.
    let br =
        http.get(relay.http(wasm_path)).header("accept-encoding", "gzip, deflate, br").send().await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    assert!(br.bytes().await.unwrap().len() < gz);

    let missing = http.get(relay.http("/no-such-file.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let plain_ws = http.get(relay.http("/ws")).send().await.unwrap();
    assert_eq!(plain_ws.status(), 426);
    assert!(plain_ws.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn hello_garbage_and_a_second_client() {
    let relay = Relay::start(&[]).await;

    let mut a = Conn::connect(&relay).await;
    a.send(&ClientFrame::Hello { client: "a".into() }).await;
    match a.recv().await {
        Some(RelayFrame::Welcome { version, relay, .. }) => {
            assert_eq!(version, WIRE_VERSION);
            assert!(relay.starts_with("sotto-relay/"));
        }
        other => panic!("expected Welcome, got {other:?}"),
    }

    // Garbage gets an error frame, not a dead relay.
    a.send_raw(vec![WIRE_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    assert!(matches!(a.recv().await, Some(RelayFrame::Error { code: ErrorCode::Malformed, .. })));
    a.send_raw(vec![]).await;
    assert!(matches!(a.recv().await, Some(RelayFrame::Error { code: ErrorCode::Malformed, .. })));

    // A second client is served normally meanwhile.
    let mut b = Conn::connect(&relay).await;
    b.hello().await;
    b.send(&ClientFrame::Ping { nonce: 7 }).await;
    assert_eq!(b.recv().await, Some(RelayFrame::Pong { nonce: 7 }));

    // An unknown version is named in an error, then the connection closes.
    a.send_raw(vec![200, 1, 2, 3]).await;
    match a.recv().await {
        Some(RelayFrame::Error { code: ErrorCode::UnsupportedVersion, message, .. }) => {
            assert!(message.contains("[1]"), "{message}")
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert_eq!(a.recv().await, None);

    b.send(&ClientFrame::Ping { nonce: 8 }).await;
    assert_eq!(b.recv().await, Some(RelayFrame::Pong { nonce: 8 }));
}

#[tokio::test]
async fn shuts_down_cleanly_on_sigterm() {
    let mut relay = Relay::start(&[]).await;
    assert!(relay.terminate().await, "relay exits 0 on SIGTERM");
    // The log reader may trail the exit by a moment.
    for _ in 0..50 {
        if relay.log().contains("shut down cleanly") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(relay.log().contains("shut down cleanly"), "{}", relay.log());
    assert!(relay.data_dir.join("relay.redb").exists(), "the redb store lives in the data dir");
}
