//! The person's own settings and key-rotation bookkeeping.

use serde::{Deserialize, Serialize};

/// Longest display name, in characters (ours, and what we keep of a contact's).
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// How often the signed prekey is replaced.
pub const SIGNED_PREKEY_ROTATION_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub display_name: String,
    pub created_at_ms: u64,
    /// The relay has our one-time prekeys (set on `PrekeysStored`).
    pub prekeys_published: bool,
    pub signed_prekey_at_ms: u64,
    /// Desktop notifications for messages while the tab is hidden.
    pub notifications: bool,
    /// Show the message text in notifications.
    pub previews: bool,
}

impl Profile {
    pub fn new(display_name: &str, now_ms: u64) -> Profile {
        Profile {
            display_name: display_name.into(),
            created_at_ms: now_ms,
            prekeys_published: false,
            signed_prekey_at_ms: now_ms,
            notifications: false,
            previews: false,
        }
    }

    /// The signed prekey is older than [`SIGNED_PREKEY_ROTATION_MS`].
    pub fn rotation_due(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.signed_prekey_at_ms) > SIGNED_PREKEY_ROTATION_MS
    }
}
