//! The operations we benchmark, defined once so that native (criterion) and in-browser
//! figures measure exactly the same work (engine/benches, client/tests/engine_speed.rs).

use crate::identity::Identity;
use crate::prekeys::Prekeys;
use crate::random::OsEntropy;
use crate::ratchet::{Ratchet, RatchetMessage};
use crate::{EngineError, primitives, x3dh};

/// Two parties with a fresh ratchet session (Alice initiated, Bob has answered once).
pub struct Pair {
    pub alice: Ratchet,
    pub bob: Ratchet,
}

/// One X3DH handshake: verify the bundle, agree on both sides.
pub fn x3dh_handshake(
    alice: &Identity,
    bob: &Identity,
    bob_prekeys: &mut Prekeys,
) -> Result<(), EngineError> {
    let bundle = bob_prekeys.invite_bundle(bob, u64::MAX, &mut OsEntropy)?;
    let (a, header) = x3dh::initiate(alice, &bundle, &mut OsEntropy)?;
    let (b, _) = x3dh::respond(bob, bob_prekeys, &header)?;
    if *a.shared != *b.shared {
        return Err(EngineError::Internal("X3DH disagreement"));
    }
    Ok(())
}

pub fn pair() -> Result<Pair, EngineError> {
    let alice_id = Identity::generate()?;
    let bob_id = Identity::generate()?;
    let mut prekeys = Prekeys::new(&mut OsEntropy)?;
    let bundle = prekeys.invite_bundle(&bob_id, u64::MAX, &mut OsEntropy)?;
    let (a, header) = x3dh::initiate(&alice_id, &bundle, &mut OsEntropy)?;
    let (b, spk) = x3dh::respond(&bob_id, &prekeys, &header)?;
    let mut alice = Ratchet::init_initiator(&a.shared, a.ad, bundle.signed_prekey.key, &mut OsEntropy)?;
    let mut bob = Ratchet::init_responder(&b.shared, b.ad, &spk);
    let first = alice.encrypt(b"hello")?;
    bob.decrypt(&first, &mut OsEntropy)?;
    Ok(Pair { alice, bob })
}

/// Alice encrypts `plaintext`, Bob decrypts it (same chain: no DH step).
pub fn encrypt_decrypt(pair: &mut Pair, plaintext: &[u8]) -> Result<(), EngineError> {
    let m: RatchetMessage = pair.alice.encrypt(plaintext)?;
    pair.bob.decrypt(&m, &mut OsEntropy)?;
    Ok(())
}

/// One message each way: each receipt performs a DH ratchet step.
pub fn dh_round_trip(pair: &mut Pair) -> Result<(), EngineError> {
    let m = pair.bob.encrypt(b"ping")?;
    pair.alice.decrypt(&m, &mut OsEntropy)?;
    let m = pair.alice.encrypt(b"pong")?;
    pair.bob.decrypt(&m, &mut OsEntropy)?;
    Ok(())
}

/// Seals a ratchet message of `pair` from `sender` for `recipient` and opens it: the sealed
/// sender layer every message goes through (ephemeral and static-static agreements, the
/// sender's identity check).
pub fn seal_open(sender: &Identity, recipient: &Identity, pair: &mut Pair) -> Result<(), EngineError> {
    let message = crate::session::WireMessage::Normal(pair.alice.encrypt(&[0x42; 160])?);
    let sealed = crate::envelope::seal_envelope(sender, &recipient.public(), &message, true, &mut OsEntropy)?;
    crate::envelope::open_envelope(recipient, &sealed)?;
    Ok(())
}

/// ChaCha20-Poly1305 over `data`.
pub fn aead(data: &[u8]) -> Result<Vec<u8>, EngineError> {
    primitives::seal(&[7; 32], &[1; 12], b"", data)
}
