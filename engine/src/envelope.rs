//! Sealed sender: the envelope payload the relay carries. Only the recipient learns who sent
//! it. The sender's identity travels inside, encrypted to the recipient's identity X25519 key
//! with a fresh ephemeral key:
//!
//! key || nonce = HKDF-SHA256(salt = eph_pub || recipient_dh, ikm = DH(eph, recipient_dh),
//!                            info = "sotto-seal-v1"), AD = "sotto-seal-v1" || eph_pub ||
//! recipient Ed25519 key. Encoding: postcard `Sealed { v: 2, ephemeral, ciphertext, mac }`, the
//! plaintext a postcard `SealedContent { v: 2, sender, delivery_token, message }`: the sender's
//! delivery token travels with its messages to contacts, so they can answer as contacts (it is
//! withheld from automatic replies to strangers).
//!
//! The seal authenticates its sender before any ratchet work (as Signal's sealed sender does
//! with a static-static agreement): `mac = HMAC-SHA256(k, "sotto-seal-v2" || eph_pub ||
//! recipient Ed25519 key || sender Ed25519 key || ciphertext)` with `k = HKDF-SHA256(salt =
//! sender_dh || recipient_dh, ikm = DH(sender_dh_secret, recipient_dh), info =
//! "sotto-seal-sender-v1")`. Only the holder of the named sender's identity key can make it, so
//! a forged envelope naming a contact is refused at once. Envelopes of version 1 (no mac) are
//! refused as unsupported.

use crate::EngineError;
use crate::identity::{Identity, verify_identity};
use crate::primitives::{hkdf_sha256, hmac_sha256, hmac_sha256_verify, open, seal, x25519, x25519_public};
use crate::random::Entropy;
use crate::session::WireMessage;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::IdentityPublic;
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

const VERSION: u8 = 2;
const CONTENT_VERSION: u8 = 2;

#[derive(Serialize, Deserialize)]
struct Sealed {
    v: u8,
    ephemeral: [u8; 32],
    #[serde(with = "serde_bytes")]
    ciphertext: Vec<u8>,
    /// Authenticates the sender named inside (see the module's doc).
    mac: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct SealedContent {
    v: u8,
    sender: IdentityPublic,
    delivery_token: Option<[u8; 32]>,
    message: WireMessage,
}

/// What an opened envelope holds.
pub struct Opened {
    pub sender: IdentityPublic,
    /// The sender's delivery token (absent from older clients' envelopes).
    pub delivery_token: Option<[u8; 32]>,
    pub message: WireMessage,
}

/// The key of the sender's tag: from the static-static agreement of the two identities.
fn sender_key(
    dh: &[u8; 32],
    sender: &IdentityPublic,
    recipient: &IdentityPublic,
) -> Result<Zeroizing<[u8; 32]>, EngineError> {
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&[sender.dh_key, recipient.dh_key].concat(), dh, b"sotto-seal-sender-v1", &mut key[..])?;
    Ok(key)
}

/// What the sender's tag covers.
fn tagged(
    ephemeral: &[u8; 32],
    sender: &IdentityPublic,
    recipient: &IdentityPublic,
    ciphertext: &[u8],
) -> Vec<u8> {
    [b"sotto-seal-v2".as_slice(), ephemeral, &recipient.signing_key, &sender.signing_key, ciphertext].concat()
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
    let content = crate::wipe::encode(
        &[],
        &SealedContent {
            v: CONTENT_VERSION,
            sender: sender.public(),
            delivery_token: if share_token { Some(*sender.delivery_token()?) } else { None },
            message: message.clone(),
        },
        0,
    )?;
    let ciphertext = seal(&k.key, &k.nonce, &k.ad, &content)?;
    let me = sender.public();
    let key = sender_key(&*x25519(sender.dh_secret(), &recipient.dh_key)?, &me, recipient)?;
    let mac = hmac_sha256(key.as_slice(), &tagged(&ephemeral, &me, recipient, &ciphertext));
    Ok(postcard::to_allocvec(&Sealed { v: VERSION, ephemeral, ciphertext, mac })?)
}

/// Opens an envelope addressed to `me`: the sender's (verified) identity, its delivery token and
/// the message.
pub fn open_envelope(me: &Identity, bytes: &[u8]) -> Result<Opened, EngineError> {
    // The version comes first: an old envelope is refused as such, not as garbage.
    match bytes.first() {
        Some(&VERSION) => {}
        Some(v) => return Err(EngineError::UnsupportedVersion(*v)),
        None => return Err(EngineError::BadEncoding("empty envelope".into())),
    }
    let sealed: Sealed = postcard::from_bytes(bytes)?;
    let shared = x25519(me.dh_secret(), &sealed.ephemeral)?;
    let k = keys(&shared, &sealed.ephemeral, &me.public())?;
    let content = Zeroizing::new(open(&k.key, &k.nonce, &k.ad, &sealed.ciphertext)?);
    let opened = match content.first().copied() {
        Some(CONTENT_VERSION) => {
            let c: SealedContent = postcard::from_bytes(&content)?;
            Opened { sender: c.sender, delivery_token: c.delivery_token, message: c.message }
        }
        Some(v) => return Err(EngineError::UnsupportedVersion(v)),
        None => return Err(EngineError::BadEncoding("empty sealed content".into())),
    };
    verify_identity(&opened.sender)?;
    let me_public = me.public();
    let key = sender_key(&*x25519(me.dh_secret(), &opened.sender.dh_key)?, &opened.sender, &me_public)?;
    let covered = tagged(&sealed.ephemeral, &opened.sender, &me_public, &sealed.ciphertext);
    if !hmac_sha256_verify(key.as_slice(), &covered, &sealed.mac) {
        return Err(EngineError::ForgedSender);
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsEntropy;

    fn wire() -> WireMessage {
        let mut alice = crate::prekeys::Prekeys::new(&mut OsEntropy).unwrap();
        let bob = Identity::generate().unwrap();
        let bundle = alice.invite_bundle(&bob, u64::MAX, &mut OsEntropy).unwrap();
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

    /// Someone who knows only a contact's public keys can seal an envelope naming them, but not
    /// its tag: it is refused before the ratchet does anything.
    #[test]
    fn an_envelope_naming_a_sender_it_is_not_from_is_refused() {
        let (alice, bob, mallory) =
            (Identity::generate().unwrap(), Identity::generate().unwrap(), Identity::generate().unwrap());
        let eph = StaticSecret::from([9u8; 32]);
        let ephemeral = x25519_public(&eph);
        let k = keys(&x25519(&eph, &bob.public().dh_key).unwrap(), &ephemeral, &bob.public()).unwrap();
        let content = SealedContent {
            v: CONTENT_VERSION,
            sender: alice.public(),
            delivery_token: None,
            message: wire(),
        };
        let ciphertext = seal(&k.key, &k.nonce, &k.ad, &postcard::to_allocvec(&content).unwrap()).unwrap();
        // Mallory's own static agreement with Bob, claimed as Alice's.
        let key = sender_key(
            &x25519(mallory.dh_secret(), &bob.public().dh_key).unwrap(),
            &alice.public(),
            &bob.public(),
        )
        .unwrap();
        let mac =
            hmac_sha256(key.as_slice(), &tagged(&ephemeral, &alice.public(), &bob.public(), &ciphertext));
        let forged = postcard::to_allocvec(&Sealed { v: VERSION, ephemeral, ciphertext, mac }).unwrap();
        assert!(matches!(open_envelope(&bob, &forged), Err(EngineError::ForgedSender)));

        let genuine = seal_envelope(&alice, &bob.public(), &wire(), false, &mut OsEntropy).unwrap();
        let mut tampered = genuine.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1; // the tag's last byte
        assert!(matches!(open_envelope(&bob, &tampered), Err(EngineError::ForgedSender)));
        assert!(open_envelope(&bob, &genuine).is_ok());
    }

    #[test]
    fn envelopes_of_version_1_are_refused_as_unsupported() {
        let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let mut old = seal_envelope(&alice, &bob.public(), &wire(), false, &mut OsEntropy).unwrap();
        old[0] = 1;
        assert!(matches!(open_envelope(&bob, &old), Err(EngineError::UnsupportedVersion(1))));
    }
}
