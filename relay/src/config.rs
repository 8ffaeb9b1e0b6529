//! Command-line flags, each with an environment-variable fallback.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "sotto-relay",
    version,
    about = "Sotto relay: serves the web app and forwards end-to-end encrypted envelopes"
)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen one is logged).
    #[arg(long, env = "SOTTO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the relay's store (created if missing).
    #[arg(long, env = "SOTTO_DATA_DIR", default_value = "./sotto-data")]
    pub data_dir: PathBuf,

    /// Log filter: a level (error, warn, info, debug, trace) or a tracing directive list.
    #[arg(long = "log", env = "SOTTO_LOG", default_value = "info")]
    pub log: String,

    /// The origin clients use to reach this relay (e.g. https://chat.example.org). Browsers
    /// must present it as `Origin` to open /ws, and clients sign it when they log in. When
    /// unset, only `http://` origins of the listening address are accepted (for a loopback
    /// address also `localhost`); listening on all interfaces then needs this flag.
    #[arg(long, env = "SOTTO_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,

    /// Reverse proxies (CIDR, repeatable or comma-separated) whose `X-Forwarded-For` header
    /// names the real client, so per-IP limits count clients, not the proxy.
    #[arg(long, env = "SOTTO_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Vec<ipnet::IpNet>,

    /// Bearer token that opens /metrics to any address. Without it, /metrics answers only
    /// loopback clients.
    #[arg(long, env = "SOTTO_METRICS_TOKEN")]
    pub metrics_token: Option<String>,

    /// Token that opens the operator's page, `/admin` (reports on channel posts, blocking
    /// channels). Without it (or `--admin-token-file`) the page is off.
    #[arg(long, env = "SOTTO_ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// A file holding the operator's token (its first line), so it stays out of `ps` and the
    /// environment.
    #[arg(long, env = "SOTTO_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Largest file blob, in bytes (default: a 2 GiB file once encrypted).
    #[arg(long, env = "SOTTO_MAX_BLOB_BYTES", default_value_t = sotto_engine::file::sealed_size(sotto_engine::consts::MAX_FILE_BYTES))]
    pub max_blob_bytes: u64,

    /// Bytes all file blobs together may take on disk (a blob's size counts from its making;
    /// an upload idle for an hour gives it back).
    #[arg(long, env = "SOTTO_MAX_BLOB_STORE_BYTES", default_value_t = 20 << 30)]
    pub max_blob_store_bytes: u64,

    /// How long a file blob is kept once whole, in seconds (30 days).
    #[arg(long, env = "SOTTO_BLOB_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub blob_ttl_secs: u64,

    /// Memory the store may use to cache its pages, in MiB.
    #[arg(long, env = "SOTTO_CACHE_MIB", default_value_t = 128)]
    pub cache_mib: usize,

    /// Microseconds the writer gathers sends before a durable commit. Online recipients get
    /// envelopes at once regardless; a longer window means fewer fsyncs and lets acks that
    /// arrive within it cancel the write.
    #[arg(long, env = "SOTTO_COMMIT_WINDOW_US", default_value_t = 2000)]
    pub commit_window_us: u64,

    /// Seconds between purges of expired envelopes.
    #[arg(long, env = "SOTTO_PURGE_INTERVAL_SECS", default_value_t = 60)]
    pub purge_interval_secs: u64,

    #[command(flatten)]
    pub limits: Limits,

    #[command(flatten)]
    pub timeouts: Timeouts,

    /// Tests only: hold a logging-in connection this long between being listed as online and
    /// its writer learning its mailbox, so tests can make live pushes land in that window.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_attach_delay_ms: u64,
}

/// Abuse and resource limits. Defaults suit a small self-hosted relay.
#[derive(Debug, Clone, clap::Args)]
pub struct Limits {
    /// Largest accepted WebSocket message in bytes (capped at the protocol's own limit).
    #[arg(long, env = "SOTTO_MAX_FRAME_BYTES", default_value_t = sotto_shared::limits::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Most envelopes queued for one mailbox.
    #[arg(long, env = "SOTTO_MAX_QUEUED_ENVELOPES", default_value_t = 10_000)]
    pub max_queued_envelopes: u64,

    /// Most bytes queued for one mailbox.
    #[arg(long, env = "SOTTO_MAX_QUEUED_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_queued_bytes: u64,

    /// Of those, how many may come from senders without the mailbox's delivery token (first
    /// contacts, or strangers who only know the address).
    #[arg(long, env = "SOTTO_MAX_STRANGER_ENVELOPES", default_value_t = 50)]
    pub max_stranger_envelopes: u64,

    /// Storage budget of the whole relay, in bytes: envelopes' payloads plus a fixed cost per
    /// stored record. At the budget, sends are refused with `StoreFull`; reads and acks go on.
    /// The store file takes up to about twice this on disk.
    #[arg(long, env = "SOTTO_MAX_STORE_BYTES", default_value_t = 1 << 30)]
    pub max_store_bytes: u64,

    /// Frames per second one connection may send (sustained; bursts up to twice that).
    #[arg(long, env = "SOTTO_RATE_PER_CONNECTION", default_value_t = 200)]
    pub rate_per_connection: u32,

    /// Frames per second all connections from one IP address may send together.
    #[arg(long, env = "SOTTO_RATE_PER_IP", default_value_t = 5_000)]
    pub rate_per_ip: u32,

    /// Envelope payload bytes one IP address (an IPv6 /64) may send per second, sustained.
    #[arg(long, env = "SOTTO_IP_BYTES_PER_SEC", default_value_t = 1 << 20)]
    pub ip_bytes_per_sec: u32,

    /// Envelope payload bytes one IP address may send in a burst.
    #[arg(long, env = "SOTTO_IP_BYTES_BURST", default_value_t = 16 << 20)]
    pub ip_bytes_burst: u32,

    /// New mailboxes (first logins) one IP address may open per hour: each costs storage that
    /// stays.
    #[arg(long, env = "SOTTO_NEW_MAILBOXES_PER_IP_HOUR", default_value_t = 30)]
    pub new_mailboxes_per_ip_hour: u32,

    /// New group topics one IP address may open per hour (bursts up to the same number): each
    /// costs storage until it has been silent for 30 days.
    #[arg(long, env = "SOTTO_NEW_TOPICS_PER_IP_HOUR", default_value_t = 60)]
    pub new_topics_per_ip_hour: u32,

    /// Posts one topic takes per second, sustained (bursts up to twice that), from all its
    /// members together: one member flooding a group cannot bury it.
    #[arg(long, env = "SOTTO_TOPIC_POSTS_PER_SEC", default_value_t = 50)]
    pub topic_posts_per_sec: u32,

    /// Channel reads (subscribing, asking for counts) one IP address may make per minute
    /// (bursts up to the same number).
    #[arg(long, env = "SOTTO_CHANNEL_READS_PER_IP_MINUTE", default_value_t = 600)]
    pub channel_reads_per_ip_minute: u32,

    /// Subscriptions from one IP address counted among channels' subscribers per hour (bursts
    /// up to the same number); the rest read uncounted, so made-up subscribers cannot inflate
    /// a count or grow the store.
    #[arg(long, env = "SOTTO_COUNTED_SUBSCRIBERS_PER_IP_HOUR", default_value_t = 120)]
    pub counted_subscribers_per_ip_hour: u32,

    /// Mebibytes of new file blobs one IP address may start per hour (bursts up to the same):
    /// one address cannot take the whole blob store.
    #[arg(long, env = "SOTTO_BLOB_MIB_PER_IP_HOUR", default_value_t = 8192)]
    pub blob_mib_per_ip_hour: u32,

    /// Reports one IP address may send the operator per hour (bursts up to the same number).
    #[arg(long, env = "SOTTO_REPORTS_PER_IP_HOUR", default_value_t = 20)]
    pub reports_per_ip_hour: u32,

    /// Most posts one topic's log keeps; past it the oldest are dropped.
    #[arg(long, env = "SOTTO_MAX_TOPIC_POSTS", default_value_t = 10_000)]
    pub max_topic_posts: u64,

    /// Most payload bytes one topic's log keeps; past it the oldest posts are dropped.
    #[arg(long, env = "SOTTO_MAX_TOPIC_BYTES", default_value_t = 64 << 20)]
    pub max_topic_bytes: u64,

    /// Prekey bundles one IP address may fetch per minute (bursts up to the same number).
    #[arg(long, env = "SOTTO_BUNDLES_PER_IP_MINUTE", default_value_t = 60)]
    pub bundles_per_ip_minute: u32,

    /// One-time prekeys handed out per identity per minute (bursts up to the same number);
    /// past it, bundles come without one, so nobody can drain an identity's prekeys.
    #[arg(long, env = "SOTTO_ONE_TIME_PER_TARGET_MINUTE", default_value_t = 10)]
    pub one_time_per_target_minute: u32,

    /// Most simultaneous WebSocket connections from one IP address.
    #[arg(long, env = "SOTTO_MAX_CONNECTIONS_PER_IP", default_value_t = 50)]
    pub max_connections_per_ip: usize,

    /// Most simultaneous WebSocket connections in total.
    #[arg(long, env = "SOTTO_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Deliveries the relay buffers for one slow reader before it marks it lagging (the
    /// reader then re-reads what it missed from the store).
    #[arg(long, env = "SOTTO_MAX_OUTBOUND_FRAMES", default_value_t = 256)]
    pub max_outbound_frames: usize,

    /// Bytes of deliveries the relay buffers for one slow reader (same effect as the count).
    #[arg(long, env = "SOTTO_MAX_OUTBOUND_BYTES", default_value_t = 1 << 20)]
    pub max_outbound_bytes: usize,
}

/// How long the relay waits for peers, in seconds.
#[derive(Debug, Clone, clap::Args)]
pub struct Timeouts {
    /// An HTTP request's headers must arrive within this time (also between keep-alive requests).
    #[arg(long, env = "SOTTO_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// A new WebSocket must say `Hello` within this time.
    #[arg(long, env = "SOTTO_HELLO_TIMEOUT_SECS", default_value_t = 10)]
    pub hello_timeout_secs: u64,

    /// The relay pings a WebSocket that has been quiet this long.
    #[arg(long, env = "SOTTO_PING_INTERVAL_SECS", default_value_t = 30)]
    pub ping_interval_secs: u64,

    /// A WebSocket from which nothing (not even a pong) arrives for this long is closed.
    #[arg(long, env = "SOTTO_IDLE_TIMEOUT_SECS", default_value_t = 75)]
    pub idle_timeout_secs: u64,

    /// A WebSocket whose reader takes nothing for this long while the relay has frames for it is
    /// closed.
    #[arg(long, env = "SOTTO_WRITE_STALL_SECS", default_value_t = 20)]
    pub write_stall_secs: u64,

    /// On SIGTERM, how long open connections get to receive their pending answers.
    #[arg(long, env = "SOTTO_DRAIN_SECS", default_value_t = 10)]
    pub drain_secs: u64,
}
