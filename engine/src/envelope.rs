//! Sealed sender: the envelope payload the relay carries. Only the recipient learns who sent
//! it. The sender's identity travels inside, encrypted to the recipient's identity X25519 key
//! with a fresh ephemeral key:
//!
//! key || nonce = HKDF-SHA256(salt = eph_pub || recipient_dh, ikm = DH(eph, recipient_dh),
//!                            info = "sotto-seal-v1"), AD = "sotto-seal-v1" || eph_pub ||
//! recipient Ed25519 key. Encoding: postcard `Sealed { v: 1, ephemeral, ciphertext }`, the
//! plaintext a postcard `SealedContent { v: 2, sender, delivery_token, message }`: the sender's
//! delivery token travels with its messages to contacts, so they can answer as contacts (it is
//! withheld from automatic replies to strangers).
//! Content of version 1 (without the token) is still read.

use crate::EngineError;
use crate::identity::{Identity, verify_identity};
use crate::primitives::{hkdf_sha256, open, seal, x25519, x25519_public};
use crate::random::Entropy;
use crate::session::WireMessage;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::IdentityPublic;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const CONTENT_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u8,
    ephemeral: [u8; 32],
    #[serde(with = "serde_bytes")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct SealedContent {
    v: u8,
    sender: IdentityPublic,
    delivery_token: Option<[u8; 32]>,
    message: WireMessage,
}

/// Content before delivery tokens.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SealedContentV1 {
    v: u8,
    sender: IdentityPublic,
    message: WireMessage,
}

/// What an opened envelope holds.
pub struct Opened {
    pub sender: IdentityPublic,
    /// The sender's delivery token (absent from older clients' envelopes).
    pub delivery_token: Option<[u8; 32]>,
    pub message: WireMessage,
}

/// The AEAD key, nonce and associated data of one sealed envelope.
struct SealKeys {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 12],
    ad: Vec<u8>,
}

fn keys(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    recipient: &IdentityPublic,
) -> Result<SealKeys, EngineError> {
    let mut okm = Zeroizing::new([0u8; 44]);
    hkdf_sha256(&[ephemeral.as_slice(), &recipient.dh_key].concat(), shared, b"sotto-seal-v1", &mut okm[..])?;
    let mut key = Zeroizing::new([0u8; 32]);
    let mut nonce = [0u8; 12];
    key.copy_from_slice(&okm[..32]);
    nonce.copy_from_slice(&okm[32..]);
    let ad = [b"sotto-seal-v1".as_slice(), ephemeral, &recipient.signing_key].concat();
    Ok(SealKeys { key, nonce, ad })
}

/// Seals `message` from `sender` for `recipient`, with the sender's delivery token if
/// `share_token` (only for contacts: whoever holds it may send as a contact).
pub fn seal_envelope(
    sender: &Identity,
    recipient: &IdentityPublic,
    message: &WireMessage,
    share_token: bool,
    entropy: &mut dyn Entropy,
) -> Result<Vec<u8>, EngineError> {
    verify_identity(recipient)?;
    let eph = StaticSecret::from(entropy.bytes32()?);
    let ephemeral = x25519_public(&eph);
    let shared = x25519(&eph, &recipient.dh_key)?;
    let k = keys(&shared, &ephemeral, recipient)?;
    let content = Zeroizing::new(postcard::to_allocvec(&SealedContent {
        v: CONTENT_VERSION,
        sender: sender.public(),
        delivery_token: if share_token { Some(*sender.delivery_token()?) } else { None },
        message: message.clone(),
    })?);
    let ciphertext = seal(&k.key, &k.nonce, &k.ad, &content)?;
    Ok(postcard::to_allocvec(&Sealed { v: VERSION, ephemeral, ciphertext })?)
}

/// Opens an envelope addressed to `me`: the sender's (verified) identity, its delivery token and
/// the message.
pub fn open_envelope(me: &Identity, bytes: &[u8]) -> Result<Opened, EngineError> {
    let sealed: Sealed = postcard::from_bytes(bytes)?;
    if sealed.v != VERSION {
        return Err(EngineError::UnsupportedVersion(sealed.v));
    }
    let shared = x25519(me.dh_secret(), &sealed.ephemeral)?;
    let k = keys(&shared, &sealed.ephemeral, &me.public())?;
    let content = Zeroizing::new(open(&k.key, &k.nonce, &k.ad, &sealed.ciphertext)?);
    let opened = match content.first().copied() {
        Some(CONTENT_VERSION) => {
            let c: SealedContent = postcard::from_bytes(&content)?;
            Opened { sender: c.sender, delivery_token: c.delivery_token, message: c.message }
        }
        Some(1) => {
            let c: SealedContentV1 = postcard::from_bytes(&content)?;
            debug_assert_eq!(c.v, 1);
            Opened { sender: c.sender, delivery_token: None, message: c.message }
        }
        Some(v) => return Err(EngineError::UnsupportedVersion(v)),
        None => return Err(EngineError::BadEncoding("empty sealed content".into())),
    };
    verify_identity(&opened.sender)?;
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsEntropy;

    fn wire() -> WireMessage {
        let mut alice = crate::prekeys::Prekeys::new(&mut OsEntropy).unwrap();
        let bob = Identity::generate().unwrap();
        let bundle = alice.invite_bundle(&bob, &mut OsEntropy).unwrap();
        let me = Identity::generate().unwrap();
        let mut c = crate::session::Conversation::initiate(&me, &bundle, &mut OsEntropy).unwrap();
        c.encrypt(b"hi").unwrap()
    }

    #[test]
    fn the_sender_and_its_delivery_token_travel_sealed() {
        let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let sealed = seal_envelope(&alice, &bob.public(), &wire(), true, &mut OsEntropy).unwrap();
        let opened = open_envelope(&bob, &sealed).unwrap();
        assert_eq!(opened.sender, alice.public());
        assert_eq!(opened.delivery_token, Some(*alice.delivery_token().unwrap()));
        assert!(open_envelope(&alice, &sealed).is_err(), "only the recipient opens it");
        let withheld = seal_envelope(&alice, &bob.public(), &wire(), false, &mut OsEntropy).unwrap();
        assert_eq!(open_envelope(&bob, &withheld).unwrap().delivery_token, None);
    }

    #[test]
    fn content_of_version_1_still_opens_without_a_token() {
        let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let eph = StaticSecret::from([9u8; 32]);
        let ephemeral = x25519_public(&eph);
        let k = keys(&x25519(&eph, &bob.public().dh_key).unwrap(), &ephemeral, &bob.public()).unwrap();
        let content = SealedContentV1 { v: 1, sender: alice.public(), message: wire() };
        let ciphertext = seal(&k.key, &k.nonce, &k.ad, &postcard::to_allocvec(&content).unwrap()).unwrap();
        let sealed = postcard::to_allocvec(&Sealed { v: VERSION, ephemeral, ciphertext }).unwrap();
        let opened = open_envelope(&bob, &sealed).unwrap();
        assert_eq!((opened.sender, opened.delivery_token), (alice.public(), None));
    }
}
