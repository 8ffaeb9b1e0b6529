//! No stranger can fill the disk, a mailbox or the prekey store, and a full disk does not leave
//! the relay up but unable to write. Against the real binary.

use sotto_engine::Identity;
use sotto_shared::frames::{OneTimePrekey, SignedPrekey, signed_prekey_message};
use sotto_shared::{ClientFrame, ErrorCode, RelayFrame};
use sotto_tests::{Conn, LIFTED, Relay, http_get, message_id, send_frame as send};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[tokio::test]
async fn at_the_storage_budget_sends_are_refused_while_reads_and_acks_go_on() {
    let relay = Relay::start(&["--max-store-bytes", "300000"]).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let body = vec![7u8; 20_000];
    let mut stored = Vec::new();
    loop {
        let id = message_id();
        sender.send(&send(bob.address(), id, &body)).await;
        match sender.recv().await {
            Some(RelayFrame::Sent { id: got }) if got == id => stored.push(id),
            Some(RelayFrame::Error { code: ErrorCode::StoreFull, id: Some(got), .. }) if got == id => break,
            other => panic!("expected Sent or StoreFull, got {other:?}"),
        }
        assert!(stored.len() < 20, "300 kB held more than 20 envelopes of 20 kB");
    }
    assert!(stored.len() >= 13, "only {} envelopes of 20 kB fit in 300 kB", stored.len());

    // Reading and acknowledging still work, and free room for new mail.
    let mut bob_conn = Conn::login(&relay, &bob).await;
    assert_eq!(bob_conn.queued as usize, stored.len());
    let mut got = Vec::new();
    for _ in 0..stored.len() {
        match bob_conn.conn.recv().await {
            Some(RelayFrame::Deliver { id, .. }) => got.push(id),
            other => panic!("expected Deliver, got {other:?}"),
        }
    }
    assert_eq!(got, stored);
    bob_conn.conn.send(&ClientFrame::Ack { ids: got }).await;
    let id = message_id();
    let mut accepted = false;
    for _ in 0..50 {
        sender.send(&send(bob.address(), id, &body)).await;
        match sender.recv().await {
            Some(RelayFrame::Sent { .. }) => {
                accepted = true;
                break;
            }
            Some(RelayFrame::Error { code: ErrorCode::StoreFull, .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(accepted, "acknowledged mail did not free the budget");
    let (_, metrics) = http_get(&relay, "/metrics").await;
    assert!(metrics.contains("sotto_errors_total{kind=\"store_full\"}"), "{metrics}");
    assert!(metrics.contains("sotto_store_budget_used_bytes "), "{metrics}");
}

#[tokio::test]
async fn one_address_cannot_send_more_than_its_byte_budget() {
    let relay = Relay::start(&["--ip-bytes-per-sec", "1000", "--ip-bytes-burst", "200000"]).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let body = vec![1u8; 50_000];
    let mut sent = 0;
    for _ in 0..6 {
        let id = message_id();
        sender.send(&send(bob.address(), id, &body)).await;
        match sender.recv().await {
            Some(RelayFrame::Sent { .. }) => sent += 1,
            Some(RelayFrame::Error { code: ErrorCode::RateLimited, id: Some(got), .. }) => {
                assert_eq!(got, id)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sent, 4, "a 200 kB burst takes four envelopes of 50 kB");
}

fn upload(identity: &Identity, ids: &[u32]) -> ClientFrame {
    let key = [9u8; 32];
    ClientFrame::UploadPrekeys {
        signed_prekey: SignedPrekey { id: 1, key, signature: identity.sign(&signed_prekey_message(1, &key)) },
        one_time: ids.iter().map(|&id| OneTimePrekey { id, key: [id as u8; 32] }).collect(),
    }
}

#[tokio::test]
async fn an_upload_naming_a_prekey_id_twice_is_refused() {
    let relay = Relay::start(&[]).await;
    let alice = Identity::generate().unwrap();
    let mut conn = Conn::login(&relay, &alice).await.conn;
    conn.send(&upload(&alice, &[1, 2, 2, 3])).await;
    assert!(matches!(conn.recv().await, Some(RelayFrame::Error { code: ErrorCode::InvalidRequest, .. })));
    conn.send(&upload(&alice, &[1, 2, 3])).await;
    assert_eq!(conn.recv().await, Some(RelayFrame::PrekeysStored { one_time: 3 }));
}

/// One IP fetching bundles fast gets refused past its rate; an identity hands out a bounded
/// number of one-time prekeys per minute, then bundles come without one.
#[tokio::test]
async fn nobody_can_drain_an_identitys_one_time_prekeys() {
    let relay = Relay::start(&["--bundles-per-ip-minute", "25", "--one-time-per-target-minute", "10"]).await;
    let alice = Identity::generate().unwrap();
    let mut owner = Conn::login(&relay, &alice).await.conn;
    owner.send(&upload(&alice, &(1..=200).collect::<Vec<_>>())).await;
    assert_eq!(owner.recv().await, Some(RelayFrame::PrekeysStored { one_time: 200 }));
    let mut fetcher = Conn::connect(&relay).await;
    fetcher.hello().await;
    let (mut with_one_time, mut without, mut refused) = (0, 0, 0);
    for _ in 0..30 {
        fetcher.send(&ClientFrame::FetchBundle { address: alice.address() }).await;
        match fetcher.recv().await {
            Some(RelayFrame::Bundle { bundle: Some(b), .. }) if b.one_time_prekey.is_some() => {
                with_one_time += 1
            }
            Some(RelayFrame::Bundle { bundle: Some(_), .. }) => without += 1,
            Some(RelayFrame::Error { code: ErrorCode::RateLimited, .. }) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((with_one_time, without, refused), (10, 15, 5));
}

/// Each new mailbox costs storage that stays: one address opens a bounded number per hour.
/// Past it, a login still works (to read), but nothing is stored for the new mailbox.
#[tokio::test]
async fn one_address_opens_a_bounded_number_of_mailboxes() {
    let relay = Relay::start(&["--new-mailboxes-per-ip-hour", "2"]).await;
    let people: Vec<Identity> = (0..3).map(|_| Identity::generate().unwrap()).collect();
    let mut conns = Vec::new();
    for p in &people {
        conns.push(Conn::login(&relay, p).await.conn);
    }
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    for (i, p) in people.iter().enumerate() {
        let id = message_id();
        sender.send(&send(p.address(), id, b"hi")).await;
        match sender.recv().await {
            Some(RelayFrame::Sent { .. }) => assert!(i < 2),
            Some(RelayFrame::Error { code: ErrorCode::UnknownMailbox, .. }) => assert_eq!(i, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
    // The third may neither publish prekeys nor a token for its unopened mailbox.
    conns[2].send(&upload(&people[2], &[1])).await;
    assert!(matches!(conns[2].recv().await, Some(RelayFrame::Error { code: ErrorCode::RateLimited, .. })));
    let hash = sotto_shared::frames::delivery_token_hash(&people[2].delivery_token().unwrap());
    conns[2].send(&ClientFrame::PublishDeliveryToken { hash }).await;
    assert!(matches!(conns[2].recv().await, Some(RelayFrame::Error { code: ErrorCode::RateLimited, .. })));
}

#[tokio::test]
async fn healthz_reports_a_writable_store() {
    let relay = Relay::start(&[]).await;
    let (status, body) = http_get(&relay, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ok: store writable"));
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs needs root (CI and scripts/test.sh run as root)");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.dir.path()).status();
    }
}

/// The disk fills up under a stream of sends: the relay stops (non-zero) instead of staying up
/// unable to write; once space is freed it starts again and every envelope it acknowledged is
/// delivered.
#[tokio::test]
async fn a_full_disk_stops_the_relay_and_after_space_is_freed_nothing_acknowledged_is_lost() {
    let fs = Tmpfs::mount("6m");
    let data: PathBuf = fs.path().join("data");
    let flags = [LIFTED, &["--cache-mib", "1"]].concat();
    let mut relay = Relay::start_in(&data, "127.0.0.1:0", &flags).await;
    let bob = Identity::generate().unwrap();
    Conn::open_mailbox(&relay, &bob).await;
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    let body = vec![0x5a; 60_000];
    let mut acknowledged = HashSet::new();
    let mut refused = 0;
    'fill: for _ in 0..400 {
        let id = message_id();
        sender.send(&send(bob.address(), id, &body)).await;
        match sender.recv_within(Duration::from_secs(10)).await {
            Ok(Some(RelayFrame::Sent { id: got })) => {
                assert_eq!(got, id);
                acknowledged.insert(id);
            }
            Ok(Some(RelayFrame::Error { code: ErrorCode::Internal, .. })) => refused += 1,
            Ok(Some(RelayFrame::Error { code: ErrorCode::RateLimited, .. })) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Ok(None) => break 'fill,
            other => panic!("unexpected {other:?}"),
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(10), relay.child.wait())
        .await
        .expect("the relay keeps running after a failed write")
        .unwrap();
    assert!(!status.success(), "the relay must exit non-zero so a supervisor restarts it");
    assert!(relay.log().contains("the store cannot be written"), "{}", relay.log());
    assert!(!acknowledged.is_empty(), "nothing fitted before the disk was full");
    eprintln!("{} acknowledged, {refused} refused before the disk filled", acknowledged.len());

    // Space is freed: the relay starts again on the same store and delivers everything it said
    // it had stored.
    fs.resize("64m");
    let relay = Relay::start_in(&data, "127.0.0.1:0", &flags).await;
    assert_eq!(http_get(&relay, "/healthz").await.0, 200);
    let mut bob_conn = Conn::login(&relay, &bob).await;
    let mut delivered = HashSet::new();
    for _ in 0..bob_conn.queued {
        match bob_conn.conn.recv().await {
            Some(RelayFrame::Deliver { id, .. }) => {
                delivered.insert(id);
            }
            other => panic!("expected Deliver, got {other:?}"),
        }
    }
    let lost = acknowledged.difference(&delivered).count();
    assert_eq!(lost, 0, "{lost} acknowledged envelopes were lost");
    // And it writes again.
    let id = message_id();
    let mut sender = Conn::connect(&relay).await;
    sender.hello().await;
    sender.send(&send(bob.address(), id, b"after")).await;
    assert_eq!(sender.recv().await, Some(RelayFrame::Sent { id }));
}
