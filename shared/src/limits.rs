//! Hard limits of the wire protocol. The relay may configure lower values, never higher ones.

/// Largest WebSocket message either side accepts, in bytes.
pub const MAX_FRAME_BYTES: usize = 80 * 1024;
/// Largest opaque envelope payload (ciphertext) a client may send in one `Send`.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;
/// Longest time-to-live a relay keeps an undelivered envelope (30 days).
pub const MAX_TTL_SECS: u32 = 30 * 24 * 3600;
/// Largest envelope sent live (`SendLive`): a padded typing notice and its sealing.
pub const MAX_LIVE_BYTES: usize = 2 * 1024;
/// Most one-time prekeys a single upload may carry.
pub const MAX_PREKEYS_PER_UPLOAD: usize = 200;
/// Most message ids one `Ack` may carry.
pub const MAX_ACK_IDS: usize = 512;
/// Size of the relay's authentication challenge nonce.
pub const CHALLENGE_BYTES: usize = 32;
/// Most one-time prekeys a relay keeps for one identity.
pub const MAX_STORED_ONE_TIME_PREKEYS: u32 = 1000;
/// A one-time prekey the relay has held this long without handing it out is dropped (the
/// device forgets its secret a little later, see the engine's `ONE_TIME_SECRET_MAX_AGE_SECS`).
pub const ONE_TIME_PREKEY_LIFETIME_SECS: u64 = 60 * 24 * 3600;
/// Shortest time between two `PrekeysLow` notices to one identity, so that someone draining
/// prekeys cannot make the owner mint keys without end.
pub const PREKEYS_LOW_INTERVAL_SECS: u64 = 60;
/// Most topics one `Subscribe` may name.
pub const MAX_TOPICS_PER_SUBSCRIBE: usize = 64;
/// Most topics one connection may read at once (a person's groups).
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 1024;
/// A topic that has held no post for this long is forgotten (its members open it again).
pub const TOPIC_IDLE_SECS: u64 = MAX_TTL_SECS as u64;
/// Most admin keys a channel's admin list names.
pub const MAX_CHANNEL_ADMINS: usize = 64;
/// Most admin lists a relay keeps per channel (the newest; posts under older ones can no
/// longer be checked by new readers and are not shown).
pub const MAX_CHANNEL_LISTS: usize = 16;
/// A channel post whose signed time is further than this from the relay's clock is refused,
/// so a post cannot be replayed as new once the log no longer holds it.
pub const CHANNEL_CLOCK_SKEW_SECS: u64 = 300;
/// A subscriber is counted while it subscribed within this long (30 days).
pub const CHANNEL_MEMBER_ACTIVE_SECS: u64 = MAX_TTL_SECS as u64;
/// How many of the newest posts a `ChannelState` gives view counts for.
pub const CHANNEL_VIEWS_SHOWN: usize = 100;
/// Longest reason a report or a block may give, in bytes.
pub const MAX_REASON_BYTES: usize = 500;
/// Most bytes one `PUT /blobs/<id>` carries (the app's file worker sends a piece of at most
/// this much sealed).
pub const MAX_BLOB_PIECE_BYTES: usize = 4 << 20;
