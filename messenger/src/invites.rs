//! Invite links: one-time contact links whose secret rides in the URL fragment, signed by the
//! inviter over everything they say.

use crate::error::MessengerError;
use sotto_engine::prekeys::verify_invite;
use sotto_shared::Address;
use sotto_shared::invite::{INVITE_LIFETIME_SECS, Invite};

/// What an invite link shows before it is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitePreview {
    pub invite: Invite,
    pub address: Address,
    pub fingerprint: String,
    /// Already a contact: accepting would only open the chat.
    pub known: bool,
}

/// When a link made now expires, in Unix seconds.
pub fn expiry(now_ms: u64) -> u64 {
    now_ms / 1000 + INVITE_LIFETIME_SECS
}

/// Checks an invite payload (from the URL fragment) before showing it: unexpired, signed by
/// the identity it names, and not our own.
pub fn preview(
    payload: &str,
    relay_origin: &str,
    now_ms: u64,
    own: Address,
    known: impl Fn(&Address) -> bool,
) -> Result<InvitePreview, MessengerError> {
    let mut invite = Invite::decode(payload, now_ms / 1000)?;
    verify_invite(&invite).map_err(|_| MessengerError::ForgedInvite)?;
    // The inviter listens on the relay the link names (signed): accepting it through another
    // relay would send our introduction where they never look.
    if invite.relay.trim_end_matches('/') != relay_origin.trim_end_matches('/') {
        return Err(MessengerError::OtherRelay(invite.relay));
    }
    // The name is the inviter's to choose (and signed as chosen): shown only once made safe.
    invite.display_name = crate::names::clean(&invite.display_name);
    let address = Address::from_identity_key(&invite.bundle.identity.signing_key);
    if address == own {
        return Err(MessengerError::OwnInvite);
    }
    Ok(InvitePreview {
        fingerprint: sotto_engine::identity::fingerprint(&invite.bundle.identity),
        known: known(&address),
        address,
        invite,
    })
}
