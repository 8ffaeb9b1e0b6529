//! Invite links: `<relay origin>/#/invite/<payload>`.
//!
//! The payload sits in the URL fragment, which browsers never send to a server, so the relay
//! serving the app never sees it. It is `base64url(version || postcard(Invite))`, unpadded.
//! Version 2 is signed by the inviter's identity key over everything it says (name, relay,
//! expiry, bundle). It carries no delivery token: a link can be seen by others than the person
//! it was meant for, and a token never expires.

use crate::frames::{PrekeyBundle, Signature};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const INVITE_VERSION: u8 = 2;
/// The fragment prefix that marks an invite.
pub const INVITE_PATH: &str = "#/invite/";
/// Longest payload accepted (a real one is about 400 characters).
pub const MAX_INVITE_CHARS: usize = 2048;
/// How long an invite stays valid.
pub const INVITE_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// What a contact link carries: enough to start an encrypted session without any round trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The inviter's identity and prekeys; the one-time prekey exists only in this link.
    pub bundle: PrekeyBundle,
    pub display_name: String,
    /// The inviter's relay origin, e.g. `https://relay.example`.
    pub relay: String,
    /// Unix seconds after which the link is refused.
    pub expires_at: u64,
    /// Ed25519 by `bundle.identity` over [`Invite::signed_message`].
    pub signature: Signature,
}

/// What the inviter signs: everything but the signature.
#[derive(Serialize)]
struct Signed<'a> {
    bundle: &'a PrekeyBundle,
    display_name: &'a str,
    relay: &'a str,
    expires_at: u64,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InviteError {
    #[error("this invite link is incomplete or damaged; ask for a new one")]
    Malformed,
    #[error(
        "this invite link is in a format this version of Sotto does not read (format {0}); ask for a new one"
    )]
    UnsupportedVersion(u8),
    #[error("this invite link has expired; ask for a new one")]
    Expired,
}

impl Invite {
    /// The bytes the inviter signs: a domain label, then everything the link says but the
    /// signature.
    pub fn signed_message(&self) -> Vec<u8> {
        let signed = Signed {
            bundle: &self.bundle,
            display_name: &self.display_name,
            relay: &self.relay,
            expires_at: self.expires_at,
        };
        match postcard::to_extend(&signed, b"sotto-invite-v2".to_vec()) {
            Ok(m) => m,
            Err(e) => unreachable!("postcard cannot fail on an owned invite: {e}"),
        }
    }

    /// The payload for the fragment.
    pub fn encode(&self) -> String {
        let mut bytes = vec![INVITE_VERSION];
        match postcard::to_extend(self, bytes) {
            Ok(b) => bytes = b,
            Err(e) => unreachable!("postcard cannot fail on an owned invite: {e}"),
        }
        Base64UrlUnpadded::encode_string(&bytes)
    }

    /// The full link.
    pub fn link(&self) -> String {
        format!("{}/{INVITE_PATH}{}", self.relay.trim_end_matches('/'), self.encode())
    }

    /// Parses a payload and refuses it once `now_secs` is past its expiry.
    pub fn decode(payload: &str, now_secs: u64) -> Result<Invite, InviteError> {
        let payload = payload.trim();
        if payload.is_empty() || payload.len() > MAX_INVITE_CHARS {
            return Err(InviteError::Malformed);
        }
        let bytes = Base64UrlUnpadded::decode_vec(payload).map_err(|_| InviteError::Malformed)?;
        let (&version, body) = bytes.split_first().ok_or(InviteError::Malformed)?;
        if version != INVITE_VERSION {
            return Err(InviteError::UnsupportedVersion(version));
        }
        let (invite, rest): (Invite, _) =
            postcard::take_from_bytes(body).map_err(|_| InviteError::Malformed)?;
        if !rest.is_empty() {
            return Err(InviteError::Malformed);
        }
        if now_secs > invite.expires_at {
            return Err(InviteError::Expired);
        }
        Ok(invite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{IdentityPublic, OneTimePrekey, Signature, SignedPrekey};

    fn invite() -> Invite {
        Invite {
            bundle: PrekeyBundle {
                identity: IdentityPublic {
                    signing_key: [1; 32],
                    dh_key: [2; 32],
                    dh_signature: Signature([3; 64]),
                },
                signed_prekey: SignedPrekey { id: 7, key: [4; 32], signature: Signature([5; 64]) },
                one_time_prekey: Some(OneTimePrekey { id: 9, key: [6; 32] }),
            },
            display_name: "Zoë 🌙".into(),
            relay: "http://127.0.0.1:8080".into(),
            expires_at: 1_000,
            signature: Signature([9; 64]),
        }
    }

    #[test]
    fn the_signature_covers_everything_else() {
        let i = invite();
        let base = i.signed_message();
        let mut renamed = i.clone();
        renamed.display_name = "Zoe".into();
        let mut later = i.clone();
        later.expires_at += 1;
        let mut resigned = i.clone();
        resigned.signature = Signature([0; 64]);
        for other in [&renamed, &later] {
            assert_ne!(other.signed_message(), base);
        }
        assert_eq!(resigned.signed_message(), base, "the signature is not part of what it signs");
    }

    #[test]
    fn round_trip_and_link_shape() {
        let i = invite();
        let link = i.link();
        let payload = link.strip_prefix("http://127.0.0.1:8080/#/invite/").unwrap();
        assert!(payload.len() < 600, "link payload is {} chars", payload.len());
        assert!(payload.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(Invite::decode(payload, 999).unwrap(), i);
    }

    #[test]
    fn refuses_bad_links() {
        let payload = invite().encode();
        assert_eq!(Invite::decode(&payload, 1_001), Err(InviteError::Expired));
        assert_eq!(Invite::decode("", 0), Err(InviteError::Malformed));
        assert_eq!(Invite::decode("not base64!", 0), Err(InviteError::Malformed));
        assert_eq!(Invite::decode(&payload[..payload.len() - 8], 0), Err(InviteError::Malformed));
        assert_eq!(Invite::decode(&"A".repeat(5000), 0), Err(InviteError::Malformed));
        let mut bytes = Base64UrlUnpadded::decode_vec(&payload).unwrap();
        bytes[0] = 1;
        assert_eq!(
            Invite::decode(&Base64UrlUnpadded::encode_string(&bytes), 0),
            Err(InviteError::UnsupportedVersion(1)),
            "unsigned links of version 1"
        );
        bytes[0] = 2;
        bytes.push(0);
        assert_eq!(Invite::decode(&Base64UrlUnpadded::encode_string(&bytes), 0), Err(InviteError::Malformed));
    }
}
