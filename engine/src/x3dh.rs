//! X3DH key agreement, as in Signal's specification (revision 1), with X25519 and HKDF-SHA256.
//!
//! SK = HKDF(salt = 32 zero bytes, ikm = 0xFF×32 || DH1 || DH2 || DH3 [|| DH4],
//!           info = "sotto-x3dh-v1"), where DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B),
//! DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B).
//! AD = "sotto-ad-v1" || IK_A (Ed25519 || X25519) || IK_B (Ed25519 || X25519).

use crate::EngineError;
use crate::identity::Identity;
use crate::prekeys::{Prekeys, verify_bundle};
use crate::primitives::{hkdf_sha256, x25519, x25519_public};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::{IdentityPublic, PrekeyBundle};
use x25519_dalek::StaticSecret;
use zeroize::Zeroizing;

/// What the initiator sends alongside its first messages so the responder can derive SK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct X3dhHeader {
    pub identity: IdentityPublic,
    pub base_key: [u8; 32],
    pub signed_prekey_id: u32,
    pub one_time_prekey_id: Option<u32>,
}

pub struct Agreement {
    pub shared: Zeroizing<[u8; 32]>,
    pub ad: Vec<u8>,
}

pub fn associated_data(initiator: &IdentityPublic, responder: &IdentityPublic) -> Vec<u8> {
    [
        b"sotto-ad-v1".as_slice(),
        &initiator.signing_key,
        &initiator.dh_key,
        &responder.signing_key,
        &responder.dh_key,
    ]
    .concat()
}

fn kdf(dhs: &[&[u8; 32]]) -> Result<Zeroizing<[u8; 32]>, EngineError> {
    let mut ikm = Zeroizing::new(vec![0xFFu8; 32]);
    for dh in dhs {
        ikm.extend_from_slice(&dh[..]);
    }
    let mut sk = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&[0u8; 32], &ikm, b"sotto-x3dh-v1", &mut sk[..])?;
    Ok(sk)
}

/// Initiator side: verify the bundle, make an ephemeral key, derive SK.
pub fn initiate(
    me: &Identity,
    bundle: &PrekeyBundle,
    entropy: &mut dyn Entropy,
) -> Result<(Agreement, X3dhHeader), EngineError> {
    verify_bundle(bundle)?;
    let ephemeral = StaticSecret::from(entropy.bytes32()?);
    let spk = &bundle.signed_prekey.key;
    let dh1 = x25519(me.dh_secret(), spk)?;
    let dh2 = x25519(&ephemeral, &bundle.identity.dh_key)?;
    let dh3 = x25519(&ephemeral, spk)?;
    let shared = match &bundle.one_time_prekey {
        Some(opk) => kdf(&[&*dh1, &*dh2, &*dh3, &*x25519(&ephemeral, &opk.key)?])?,
        None => kdf(&[&*dh1, &*dh2, &*dh3])?,
    };
    let header = X3dhHeader {
        identity: me.public(),
        base_key: x25519_public(&ephemeral),
        signed_prekey_id: bundle.signed_prekey.id,
        one_time_prekey_id: bundle.one_time_prekey.map(|k| k.id),
    };
    Ok((Agreement { shared, ad: associated_data(&header.identity, &bundle.identity) }, header))
}

/// Responder side. Does not consume the one-time prekey: the caller does so once the first
/// message decrypts, so a forged first message cannot burn it.
pub fn respond(
    me: &Identity,
    prekeys: &Prekeys,
    header: &X3dhHeader,
) -> Result<(Agreement, StaticSecret), EngineError> {
    crate::identity::verify_identity(&header.identity)?;
    let spk = prekeys.signed_secret(header.signed_prekey_id).ok_or(EngineError::UnknownPrekey)?;
    let dh1 = x25519(&spk, &header.identity.dh_key)?;
    let dh2 = x25519(me.dh_secret(), &header.base_key)?;
    let dh3 = x25519(&spk, &header.base_key)?;
    let shared = match header.one_time_prekey_id {
        Some(id) => {
            let opk = prekeys.one_time_secret(id).ok_or(EngineError::UnknownPrekey)?;
            kdf(&[&*dh1, &*dh2, &*dh3, &*x25519(&opk, &header.base_key)?])?
        }
        None => kdf(&[&*dh1, &*dh2, &*dh3])?,
    };
    Ok((Agreement { shared, ad: associated_data(&header.identity, &me.public()) }, spk))
}
