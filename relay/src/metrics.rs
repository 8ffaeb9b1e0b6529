//! Counters exposed at `/metrics` in the Prometheus text format.

use sotto_shared::ErrorCode;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub connections: AtomicI64,
    pub authenticated: AtomicI64,
    pub envelopes_queued: AtomicI64,
    pub envelopes_sent: AtomicU64,
    pub envelopes_pushed: AtomicU64,
    pub envelopes_acked: AtomicU64,
    pub envelopes_expired: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub prekey_bundles: AtomicU64,
    pub posts_stored: AtomicU64,
    pub posts_pushed: AtomicU64,
    pub readers_sent_back: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        if let Ok(mut e) = self.errors.lock() {
            *e.entry(code.as_str()).or_default() += 1;
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ =
                writeln!(out, "# HELP sotto_{name} {help}\n# TYPE sotto_{name} {kind}\nsotto_{name} {value}");
        };
        metric(
            "connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections.load(Relaxed).to_string(),
        );
        metric(
            "authenticated_connections",
            "gauge",
            "Connections attached to a mailbox.",
            self.authenticated.load(Relaxed).to_string(),
        );
        metric(
            "envelopes_queued",
            "gauge",
            "Envelopes stored and not yet acknowledged.",
            self.envelopes_queued.load(Relaxed).to_string(),
        );
        for (name, help, v) in [
            ("envelopes_sent_total", "Envelopes durably stored (Sent).", &self.envelopes_sent),
            ("envelopes_pushed_total", "Envelopes pushed to an online connection.", &self.envelopes_pushed),
            ("posts_stored_total", "Topic posts durably stored.", &self.posts_stored),
            ("posts_pushed_total", "Topic posts pushed to a subscribed connection.", &self.posts_pushed),
            (
                "topic_readers_sent_back_total",
                "Topic readers told to read the store again for falling behind its live posts.",
                &self.readers_sent_back,
            ),
            (
                "envelopes_delivered_total",
                "Envelopes acknowledged by their recipient.",
                &self.envelopes_acked,
            ),
            ("envelopes_expired_total", "Envelopes purged at the end of their TTL.", &self.envelopes_expired),
            ("bytes_received_total", "Frame bytes received.", &self.bytes_in),
            ("bytes_sent_total", "Frame bytes sent.", &self.bytes_out),
            ("prekey_bundles_total", "Prekey bundles handed out.", &self.prekey_bundles),
        ] {
            metric(name, "counter", help, v.load(Relaxed).to_string());
        }
        let _ = writeln!(
            out,
            "# HELP sotto_errors_total Error frames sent, by kind.\n# TYPE sotto_errors_total counter"
        );
        if let Ok(errors) = self.errors.lock() {
            for (kind, n) in errors.iter() {
                let _ = writeln!(out, "sotto_errors_total{{kind=\"{kind}\"}} {n}");
            }
        }
        out
    }
}
