//! Identifiers that travel on the wire.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A mailbox address: SHA-256 over a domain label and the owner's Ed25519 identity key.
///
/// Hashing (rather than using the key itself) keeps the address format independent of the
/// signature scheme and lets the relay index mailboxes without parsing keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address of the identity whose Ed25519 public key is `identity_key`.
    pub fn from_identity_key(identity_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(b"sotto-address-v1");
        h.update(identity_key);
        Address(h.finalize().into())
    }

    /// Lower-case hex, as used in logs and URLs.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses [`Address::to_hex`]'s form (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Address> {
        unhex(text).map(Address)
    }
}

/// Parses `N` bytes of hex (either case); `None` for anything else.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut a = [0u8; N];
    for (i, b) in a.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(a)
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to tell mailboxes apart in logs.
        write!(f, "Address({}…)", &self.to_hex()[..8])
    }
}

/// A client-chosen message id (random 128 bits). The relay deduplicates sends by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<MessageId> {
        unhex(text).map(MessageId)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

/// A file blob's id at the relay: 16 random bytes (never derived from content), written in hex
/// in its URL. Knowing it lets anyone download the ciphertext, which only the message's key opens.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    pub fn parse(text: &str) -> Option<BlobId> {
        unhex(text).map(BlobId)
    }

    pub fn to_hex(self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

/// A group's topic at the relay: 32 random bytes that only members know. Knowing it is what
/// lets a connection read the topic's log (the read capability), so it is never printed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TopicId(pub [u8; 32]);

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TopicId(..)")
    }
}

/// The secret that lets a connection post to a topic (the write capability). The relay keeps
/// only its hash (`topic_write_hash` in the frames module).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteKey(pub [u8; 32]);

impl fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WriteKey(..)")
    }
}

/// `bytes` in lower-case hex (what [`unhex`] reads).
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_stable_and_key_dependent() {
        let a = Address::from_identity_key(&[1; 32]);
        assert_eq!(a, Address::from_identity_key(&[1; 32]));
        assert_ne!(a, Address::from_identity_key(&[2; 32]));
        assert_eq!(a.to_hex().len(), 64);
        assert_eq!(Address::from_hex(&a.to_hex()), Some(a));
        assert_eq!(Address::from_hex(&a.to_hex().to_uppercase()), Some(a));
        assert_eq!(Address::from_hex(&a.to_hex()[1..]), None);
        assert_eq!(Address::from_hex(&"zz".repeat(32)), None);
        assert_eq!(Address::from_hex(&"é".repeat(32)), None);
    }
}
