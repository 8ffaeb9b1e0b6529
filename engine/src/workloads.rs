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

/// Encrypts `data` as a file (chunked, with its digest), then decrypts and checks it.
pub fn file_round_trip(data: &[u8]) -> Result<(), EngineError> {
    use crate::consts::FILE_CHUNK_BYTES;
    use crate::file::{FileKey, Opener, Sealer};
    let key = FileKey::generate(&mut crate::random::SeededEntropy::new([5; 32]))?;
    let mut sealer = Sealer::new(&key);
    let n = data.len().div_ceil(FILE_CHUNK_BYTES).max(1);
    let mut sealed = Vec::with_capacity(n);
    for (i, chunk) in data.chunks(FILE_CHUNK_BYTES).enumerate() {
        sealed.push(sealer.seal(chunk, i + 1 == n)?);
    }
    let file = sealer.finish()?;
    let mut opener = Opener::new(&key, file.size, file.digest)?;
    for chunk in &sealed {
        opener.open(chunk)?;
    }
    opener.finish()
}

/// A group of `members` added by one admin, and the welcome of one more member.
pub struct BigGroup {
    pub admin: Identity,
    pub group: crate::group::Group,
    pub newcomer: Identity,
    pub welcome: crate::handover::Welcome,
}

pub fn big_group(members: usize) -> Result<BigGroup, EngineError> {
    use crate::roster::Role;
    let admin = Identity::generate()?;
    let mut group = crate::group::Group::create(&admin, "Big", &mut OsEntropy)?;
    for _ in 0..members {
        group.add(&admin, Identity::generate()?.public(), Role::Member, &mut OsEntropy)?;
    }
    let newcomer = Identity::generate()?;
    let (_, welcome) = group.add(&admin, newcomer.public(), Role::Member, &mut OsEntropy)?;
    Ok(BigGroup { admin, group, newcomer, welcome })
}

/// The admin sends one short text to the group: encrypted once under their chain, signed,
/// sealed as a post (its cost does not depend on the group's size).
pub fn group_send(g: &mut BigGroup) -> Result<(), EngineError> {
    let message = crate::message::Message {
        v: crate::message::VERSION,
        id: [7; 16],
        sent_at_ms: 1,
        expires_after_secs: None,
        body: crate::message::Body::Text("see you at eight".into()),
    };
    g.group.send(&g.admin, &message, &mut OsEntropy)?;
    Ok(())
}

/// The newcomer joins from the whole welcome: every change's signature checked, the roster
/// replayed.
pub fn group_join(g: &BigGroup) -> Result<(), EngineError> {
    let key = g.admin.public().signing_key;
    crate::group::Group::join(&g.newcomer, &key, &g.welcome, &mut OsEntropy)?;
    Ok(())
}
