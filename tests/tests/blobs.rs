//! File blobs through the real relay (issue 14, first part): a file encrypted on the client,
//! uploaded in pieces, resumed after the relay is killed mid-upload, downloaded whole and by
//! range, and opened; only the uploader fills a blob; no plaintext on the relay's disk.

use sotto_engine::consts::FILE_CHUNK_BYTES;
use sotto_engine::file::{FileKey, Opener, Sealer, chunk_count};
use sotto_engine::random::OsEntropy;
use sotto_tests::Relay;

const MARKER: &[u8] = b"PLAINTEXT-MARKER-blobs-5e0c";

fn json_field(body: &str, field: &str) -> Option<String> {
    let start = body.find(&format!("\"{field}\":"))? + field.len() + 3;
    let rest = &body[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    Some(rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect())
}

#[tokio::test]
async fn a_file_uploads_in_pieces_survives_a_killed_relay_and_downloads_by_range() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = Relay::start_in(dir.path(), "127.0.0.1:0", &[]).await;
    let http = reqwest::Client::new();

    // A 200 KiB file with a marker in it, sealed in 64 KiB chunks.
    let mut plain: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
    plain[1000..1000 + MARKER.len()].copy_from_slice(MARKER);
    let key = FileKey::generate(&mut OsEntropy).unwrap();
    let mut sealer = Sealer::new(&key);
    let n = plain.chunks(FILE_CHUNK_BYTES).count();
    let mut sealed = Vec::new();
    for (i, chunk) in plain.chunks(FILE_CHUNK_BYTES).enumerate() {
        sealed.extend(sealer.seal(chunk, i + 1 == n).unwrap());
    }
    let file = sealer.finish().unwrap();

    let made = http
        .post(relay.http("/blobs"))
        .header("x-sotto-blob-size", sealed.len().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(made.status().as_u16(), 201);
    let body = made.text().await.unwrap();
    let (id, cap) = (json_field(&body, "id").unwrap(), json_field(&body, "upload").unwrap());
    let put = |relay: &Relay, offset: usize, piece: Vec<u8>, cap: &str| {
        http.put(relay.http(&format!("/blobs/{id}")))
            .header("authorization", format!("Bearer {cap}"))
            .header("x-sotto-offset", offset.to_string())
            .body(piece)
            .send()
    };
    // Someone without the capability cannot fill it.
    let wrong = put(&relay, 0, sealed[..10].to_vec(), &"00".repeat(32)).await.unwrap();
    assert_eq!(wrong.status().as_u16(), 404);
    // The first piece, acknowledged; then the relay dies.
    let half = 100 * 1024;
    assert_eq!(put(&relay, 0, sealed[..half].to_vec(), &cap).await.unwrap().status().as_u16(), 200);
    relay.kill().await;
    let relay = Relay::start_in(dir.path(), "127.0.0.1:0", &[]).await;
    // Resumed from what the relay says it holds; a piece at the wrong offset is refused.
    let status = http
        .get(relay.http(&format!("/blobs/{id}/received")))
        .header("authorization", format!("Bearer {cap}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let received: usize = json_field(&status, "received").unwrap().parse().unwrap();
    assert_eq!(received, half);
    assert_eq!(put(&relay, 5, sealed[5..].to_vec(), &cap).await.unwrap().status().as_u16(), 409);
    // Not downloadable before it is whole.
    assert_eq!(http.get(relay.http(&format!("/blobs/{id}"))).send().await.unwrap().status().as_u16(), 404);
    assert_eq!(put(&relay, half, sealed[half..].to_vec(), &cap).await.unwrap().status().as_u16(), 200);

    // Downloaded whole, and opened.
    let whole = http.get(relay.http(&format!("/blobs/{id}"))).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&whole[..], &sealed[..]);
    let chunk = FILE_CHUNK_BYTES + 16;
    let mut opener = Opener::new(&key, file.size, file.digest).unwrap();
    let mut opened = Vec::new();
    for c in whole.chunks(chunk) {
        opened.extend(opener.open(c).unwrap());
    }
    opener.finish().unwrap();
    assert_eq!(opened, plain);
    // By range: the third chunk alone (seeking), opened at its place.
    let range = http
        .get(relay.http(&format!("/blobs/{id}")))
        .header("range", format!("bytes={}-{}", 2 * chunk, 3 * chunk - 1))
        .send()
        .await
        .unwrap();
    assert_eq!(range.status().as_u16(), 206);
    let third = range.bytes().await.unwrap();
    let o = Opener::new(&key, file.size, file.digest).unwrap();
    assert_eq!(chunk_count(file.size), 4);
    assert_eq!(o.open_at(2, &third).unwrap(), plain[2 * FILE_CHUNK_BYTES..3 * FILE_CHUNK_BYTES]);
    // An upload in progress or a blob's metadata is never served.
    for name in [format!("{id}.meta"), format!("{id}.part")] {
        let got = http.get(relay.http(&format!("/blobs/{name}"))).send().await.unwrap();
        assert_ne!(got.status().as_u16(), 200, "{name}");
    }
    // No plaintext on the relay's disk.
    for entry in sotto_tests::files_under(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER), "plaintext in {}", entry.display());
    }
}

/// One address starts only so many file bytes an hour, and all blobs together only so many.
#[tokio::test]
async fn blobs_keep_to_their_budgets() {
    let relay = Relay::start(&["--blob-mib-per-ip-hour", "2", "--max-blob-store-bytes", "3000000"]).await;
    let http = reqwest::Client::new();
    let make =
        |size: u64| http.post(relay.http("/blobs")).header("x-sotto-blob-size", size.to_string()).send();
    assert_eq!(make(0).await.unwrap().status().as_u16(), 413, "empty");
    assert_eq!(make(1 << 20).await.unwrap().status().as_u16(), 201);
    assert_eq!(make(1 << 20).await.unwrap().status().as_u16(), 201);
    assert_eq!(make(1 << 20).await.unwrap().status().as_u16(), 429, "2 MiB from this address this hour");
    let relay = Relay::start(&["--max-blob-store-bytes", "3000000"]).await;
    let make =
        |size: u64| http.post(relay.http("/blobs")).header("x-sotto-blob-size", size.to_string()).send();
    assert_eq!(make(2_000_000).await.unwrap().status().as_u16(), 201);
    assert_eq!(make(2_000_000).await.unwrap().status().as_u16(), 507, "past the store's budget");
}

/// A piece's body is read only once the piece is wanted, from at most four requests of one
/// address at a time: slow or unwanted bodies cannot pin the relay's memory, and others go on.
#[tokio::test]
async fn slow_or_unwanted_pieces_hold_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let relay = Relay::start(&[]).await;
    let http = reqwest::Client::new();
    let made = http.post(relay.http("/blobs")).header("x-sotto-blob-size", "8000000").send().await.unwrap();
    let body = made.text().await.unwrap();
    let (id, cap) = (json_field(&body, "id").unwrap(), json_field(&body, "upload").unwrap());
    // Headers announcing 4 MB, then nothing.
    let stall = |cap: String| {
        let (addr, id) = (relay.addr.clone(), id.clone());
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "PUT /blobs/{id} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {cap}\r\nx-sotto-offset: 0\r\ncontent-length: 4000000\r\n\r\nabc"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            s
        }
    };
    // Someone else's capability is refused at once, before its 4 MB come.
    let mut wrong = stall("11".repeat(32)).await;
    let mut answer = [0u8; 12];
    tokio::time::timeout(std::time::Duration::from_secs(5), wrong.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 404");
    // Four stalled pieces from this address; the fifth is told to come back.
    let mut stalled = Vec::new();
    for _ in 0..4 {
        stalled.push(stall(cap.clone()).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let first_piece = || {
        http.put(relay.http(&format!("/blobs/{id}")))
            .header("authorization", format!("Bearer {cap}"))
            .header("x-sotto-offset", "0")
            .body(vec![1u8; 1000])
            .send()
    };
    let busy = first_piece().await.unwrap();
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    // They hang up: the room is free again and the piece is taken.
    drop(stalled);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ok = first_piece().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200, "{:?}", ok.text().await);
}
