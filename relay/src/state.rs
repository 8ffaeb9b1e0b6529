//! The state every connection and route shares: configuration, store, writer, hub, topic
//! subscriptions, limits, metrics; and the relay's life cycle around it (housekeeping, drain).

use crate::config::Config;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::store::{Quotas, Store, Write, WriteResult};
use crate::subscriptions::Subscriptions;
use crate::views::Views;
use crate::writer::{Budgets, Writer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A mailbox owner is told to upload more one-time prekeys when fewer than this remain.
pub const LOW_PREKEYS: u32 = 20;
/// Most expired envelopes one purge removes, so a purge never holds the writer for long.
const PURGE_BATCH: usize = 50_000;
/// How often counted views are written.
const VIEWS_FLUSH_SECS: u64 = 5;

/// State every connection shares.
pub struct Relay {
    pub config: Config,
    /// Origins accepted for WebSockets and signed logins (see `peer::allowed_origins`).
    pub origins: Vec<String>,
    /// Turns true when the relay drains its connections to stop.
    pub stopping: tokio::sync::watch::Sender<bool>,
    pub store: Arc<dyn Store>,
    pub writer: Writer,
    pub hub: Hub,
    pub subscriptions: Subscriptions,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Views of channel posts not yet written.
    pub views: Views,
    /// Encrypted file blobs.
    pub blobs: crate::blobs::Blobs,
    /// The operator's token for `/admin`, if any.
    pub admin_token: Option<String>,
    next_connection: AtomicU64,
}

impl Relay {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        origins: Vec<String>,
        admin_token: Option<String>,
    ) -> Result<Relay, crate::store::StoreError> {
        let quotas = Quotas {
            max_envelopes: config.limits.max_queued_envelopes,
            max_bytes: config.limits.max_queued_bytes,
            max_stranger_envelopes: config.limits.max_stranger_envelopes,
            max_one_time_prekeys: sotto_shared::limits::MAX_STORED_ONE_TIME_PREKEYS,
            max_topic_posts: config.limits.max_topic_posts.max(1),
            max_topic_bytes: config.limits.max_topic_bytes.max(1),
        };
        let budgets = Budgets { quotas, max_store_bytes: config.limits.max_store_bytes };
        let metrics = Metrics::default();
        let totals = store.totals()?;
        metrics.envelopes_queued.store(i64::try_from(totals.envelopes).unwrap_or(i64::MAX), Relaxed);
        let blobs = crate::blobs::Blobs::open(
            &config.data_dir,
            config.max_blob_bytes,
            config.max_blob_store_bytes,
            config.blob_ttl_secs,
        )
        .map_err(|e| crate::store::StoreError::DataDir { path: config.data_dir.join("blobs"), source: e })?;
        Ok(Relay {
            writer: Writer::start(store.clone(), budgets, Duration::from_micros(config.commit_window_us))?,
            limits: Limits::new(&config.limits),
            hub: Hub::new(config.limits.max_outbound_frames, config.limits.max_outbound_bytes),
            subscriptions: Subscriptions::new(config.limits.max_outbound_bytes),
            metrics,
            store,
            config,
            origins,
            stopping: tokio::sync::watch::Sender::new(false),
            views: Views::default(),
            blobs,
            admin_token,
            next_connection: AtomicU64::new(1),
        })
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Relaxed)
    }

    /// Asks every connection to finish: no new requests are read, pending answers go out, the
    /// socket closes. Resolves once all are gone or `within` has passed.
    pub async fn drain(&self, within: Duration) {
        self.stopping.send_replace(true);
        let deadline = tokio::time::Instant::now() + within;
        while self.metrics.connections.load(Relaxed) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.metrics.connections.load(Relaxed);
        if left > 0 {
            tracing::warn!(left, "connections still open after the drain period");
        }
    }

    /// Writes the views counted since the last time, every few seconds, forever.
    pub async fn flush_views(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(VIEWS_FLUSH_SECS));
        loop {
            tick.tick().await;
            for (channel, views) in self.views.take() {
                // Views are approximate: a failed write loses them, nothing else.
                let _ = self.writer.write(Write::Views { channel, views }).await;
            }
        }
    }

    /// Purges expired envelopes and idle rate-limit state, forever.
    pub async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config.purge_interval_secs.max(1)));
        loop {
            tick.tick().await;
            self.limits.housekeeping();
            let relay = self.clone();
            let purged = tokio::task::spawn_blocking(move || relay.blobs.purge(PURGE_BATCH, unix_now()))
                .await
                .unwrap_or(0);
            if purged > 0 {
                tracing::info!(purged, "deleted expired file blobs");
            }
            if let Ok(WriteResult::Purged { removed, prekeys, posts, topics, .. }) =
                self.writer.write(Write::Purge { now: unix_now(), limit: PURGE_BATCH }).await
            {
                if removed > 0 {
                    self.metrics.envelopes_expired.fetch_add(removed, Relaxed);
                    self.metrics.envelopes_queued.fetch_sub(i64::try_from(removed).unwrap_or(0), Relaxed);
                    tracing::info!(removed, "purged expired envelopes");
                }
                if prekeys > 0 {
                    tracing::info!(prekeys, "dropped one-time prekeys nobody took");
                }
                if posts > 0 || topics > 0 {
                    tracing::info!(posts, topics, "purged expired posts and silent topics");
                }
            }
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
