//! Every limit of the protocol the engine enforces, in one place (see docs/protocol.md). Wire
//! limits the relay also enforces live in `sotto_shared::limits`.

/// Longest text body, in bytes (fits a relay envelope with room to spare).
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// Message plaintexts are padded to a multiple of this many bytes, so an envelope's length does
/// not tell a receipt from a short text, or a short text from a longer one (as Signal does).
pub const PADDING_BLOCK: usize = 160;

/// One-time prekeys uploaded at a time.
pub const PREKEY_BATCH: usize = 100;

/// Most one-time prekey secrets a device keeps: twice what a relay holds for it, so that a
/// stranger who drains the relay (and makes the device top up) cannot grow its storage. The
/// oldest go first; a late first message that used an evicted one cannot be opened and is
/// answered like a spent invite (`UnknownPrekey`).
pub const MAX_ONE_TIME_SECRETS: usize = 2 * sotto_shared::limits::MAX_STORED_ONE_TIME_PREKEYS as usize;

/// Most invite-link secrets a device keeps (each link carries one; links expire after a week).
/// Past it the oldest link stops working.
pub const MAX_INVITE_SECRETS: usize = 200;

/// A relay one-time prekey's secret is forgotten this long after the device first counted it:
/// the relay drops the public half after `ONE_TIME_PREKEY_LIFETIME_SECS`, and a first message
/// that used it just before may wait at the relay as long as an envelope lives.
pub const ONE_TIME_SECRET_MAX_AGE_SECS: u64 =
    sotto_shared::limits::ONE_TIME_PREKEY_LIFETIME_SECS + sotto_shared::limits::MAX_TTL_SECS as u64;

/// After a restore, new prekey ids skip this many: the copy the backup was made from may have
/// used the next ones (a batch of 100 a top-up, 200 at most per upload).
pub const RESTORED_PREKEY_ID_GAP: u32 = 1 << 20;

/// Messages a session remembers having opened (their key and a digest), to tell a redelivery
/// from a different message under a number already used.
pub const SEEN_KEPT: usize = 32;

/// Signed prekeys kept: the current one and the one before it.
pub const SIGNED_PREKEYS_KEPT: usize = 2;

/// How long the relay keeps an envelope for an offline recipient: as long as it allows.
pub const ENVELOPE_TTL_SECS: u32 = sotto_shared::limits::MAX_TTL_SECS;

/// Sessions kept per contact (newest first); older ones are dropped.
pub const MAX_SESSIONS: usize = 3;

/// A message may skip at most this many message keys in all (the rest of the sender's previous
/// chain and its current one together).
pub const MAX_SKIP: u32 = 2000;

/// Skipped message keys kept, oldest evicted first.
pub const MAX_STORED_SKIPPED: usize = 2000;

/// Shortest passphrase the vault seals a data key under (the app's and a backup's).
pub const MIN_PASSPHRASE_CHARS: usize = 8;

/// Most Argon2id memory a vault header may ask for, in KiB: a header read from a file cannot
/// make the device spend more (a hostile backup would otherwise exhaust a browser tab).
pub const MAX_KDF_MEMORY_KIB: u32 = 256 * 1024;

/// Most Argon2id passes a vault header may ask for.
pub const MAX_KDF_PASSES: u32 = 10;

/// Remote ratchet keys remembered, to recognise replays of old chains.
pub const PREVIOUS_CHAINS: usize = 8;

/// Changes one group may have (each costs a replay step on every device, and travels in the
/// welcome of everyone added).
pub const MAX_CHANGES: usize = 10_000;

/// Additions stop this many changes short of [`MAX_CHANGES`], so that removals and departures
/// always fit.
pub const CHANGES_KEPT_FOR_LEAVING: usize = 500;

/// A welcome's changes are cut into parts of at most this many bytes each (encoded), so each
/// part fits one relay envelope with its message and ratchet framing around it.
pub const WELCOME_PART_BYTES: usize = 48 * 1024;

/// Most parts a welcome may come in: enough for [`MAX_CHANGES`] changes of the largest kind a
/// group has (an addition, about 310 bytes), with room.
pub const MAX_WELCOME_PARTS: usize = 128;

/// Plaintext bytes per chunk of an encrypted file (each chunk gains a 16-byte tag): small enough
/// that neither side ever holds much of a file, large enough that tags cost 0.02 %.
pub const FILE_CHUNK_BYTES: usize = 64 * 1024;

/// The largest file Sotto sends (2 GiB).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Most bytes of a photo's thumbnail inside its message (a small JPEG).
pub const MAX_THUMBNAIL_BYTES: usize = 16 * 1024;

/// The largest voice message (about an hour of Opus at 32 kbit/s).
pub const MAX_VOICE_BYTES: u64 = 16 << 20;

/// Most levels of a voice message's waveform (one byte each, 0 to 255).
pub const MAX_WAVEFORM_LEVELS: usize = 100;

/// The disappearing-message timers a conversation may have, in seconds: 5 s, 30 s, 1 min,
/// 1 h, 1 day, 1 week. A message's countdown starts when it is read.
pub const DISAPPEARING_TIMERS: [u32; 6] = [5, 30, 60, 3600, 86_400, 604_800];

/// The relay keeps a disappearing message's envelope for its timer and this much more (for a
/// recipient who is offline), and never longer than `ENVELOPE_TTL_SECS`.
pub const DISAPPEARING_GRACE_SECS: u32 = 86_400;

/// A text may be edited by its author for this long after it was sent (by the author's clock,
/// which both messages carry).
pub const EDIT_WINDOW_SECS: u64 = 24 * 3600;

/// A message may be deleted for everyone for this long after it was sent.
pub const DELETE_WINDOW_SECS: u64 = 24 * 3600;

/// Most bytes of a reaction (one emoji, family and flag sequences included).
pub const MAX_REACTION_BYTES: usize = 64;

/// Most bytes of a file's name and of its media type in its message.
pub const MAX_FILE_NAME_BYTES: usize = 255;
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;
