//! Sender keys, for groups: each member has a sending chain of its own, and a group message is
//! encrypted once under the chain's next message key and signed with the chain's signing key.
//! The chain's current state (a *distribution*) is given to every member over the pairwise
//! sessions; each member keeps a receiving copy of every other member's chain.
//!
//! The chain is a symmetric ratchet, as in Signal's sender keys: message key material =
//! HMAC(chain key, 0x01), next chain key = HMAC(chain key, 0x02), so a member who joins with the
//! chain at iteration n reads nothing sent before n, and a key, once used, is gone. A message is
//! checked against the chain's signing key before any chain work (a member cannot forge
//! another's messages; an outsider cannot make anyone advance a chain); replays are refused;
//! skipping ahead is bounded like the pairwise ratchet.

use crate::EngineError;
use crate::consts::MAX_SKIP;
use crate::identity::verify;
use crate::primitives::{ed25519_public, ed25519_sign, hkdf_sha256, hmac_sha256, open, seal};
use crate::random::Entropy;
use serde::{Deserialize, Serialize};
use sotto_shared::frames::Signature;
use std::collections::BTreeMap;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const VERSION: u8 = 1;
const KEY_INFO: &[u8] = b"sotto-sender-key-v1";
const AD_LABEL: &[u8] = b"sotto-group-message-v1";
const SIGNATURE_LABEL: &[u8] = b"sotto-group-signature-v1";

/// A group, by a random id its members share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub [u8; 16]);

/// Our sending chain in one group. Zeroized on drop; never printed.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct SenderChain {
    #[zeroize(skip)]
    group: GroupId,
    chain_id: u32,
    iteration: u32,
    chain_key: [u8; 32],
    signing_seed: [u8; 32],
}

impl std::fmt::Debug for SenderChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderChain {{ chain_id: {}, iteration: {} }}", self.chain_id, self.iteration)
    }
}

/// A chain's state as handed to a member (over a pairwise session): from it on, they read what
/// the chain's owner sends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Distribution {
    #[zeroize(skip)]
    pub group: GroupId,
    pub chain_id: u32,
    pub iteration: u32,
    pub chain_key: [u8; 32],
    #[zeroize(skip)]
    pub signing_key: [u8; 32],
}

impl std::fmt::Debug for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Distribution {{ chain_id: {}, iteration: {} }}", self.chain_id, self.iteration)
    }
}

/// A member's chain as we hold it, to read what they send. Zeroized on drop; never printed.
#[derive(Clone, Serialize, Deserialize)]
pub struct ReceiverChain {
    group: GroupId,
    chain_id: u32,
    /// The next iteration expected.
    iteration: u32,
    chain_key: [u8; 32],
    signing_key: [u8; 32],
    /// Message key material of iterations skipped over (a message late or lost), by iteration.
    skipped: BTreeMap<u32, [u8; 32]>,
}

impl Drop for ReceiverChain {
    fn drop(&mut self) {
        self.chain_key.zeroize();
        self.skipped.values_mut().for_each(Zeroize::zeroize);
    }
}

impl std::fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReceiverChain {{ chain_id: {}, iteration: {}, skipped: {} }}",
            self.chain_id,
            self.iteration,
            self.skipped.len()
        )
    }
}

/// A group message: encrypted once for every member, signed by the sender's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMessage {
    pub v: u8,
    pub group: GroupId,
    pub chain_id: u32,
    pub iteration: u32,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
    pub signature: Signature,
}

/// The bytes a group message's signature covers.
fn signed_part(v: u8, group: &GroupId, chain_id: u32, iteration: u32, ciphertext: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_LABEL.len() + 25 + ciphertext.len());
    m.extend_from_slice(SIGNATURE_LABEL);
    m.push(v);
    m.extend_from_slice(&group.0);
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(&iteration.to_be_bytes());
    m.extend_from_slice(ciphertext);
    m
}

fn ad(group: &GroupId, chain_id: u32, iteration: u32, signing_key: &[u8; 32]) -> Vec<u8> {
    [AD_LABEL, &group.0, &chain_id.to_be_bytes(), &iteration.to_be_bytes(), signing_key].concat()
}

/// The message key material of a chain key, and the next chain key.
fn step(chain_key: &[u8; 32]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    (Zeroizing::new(hmac_sha256(chain_key, &[1])), Zeroizing::new(hmac_sha256(chain_key, &[2])))
}

/// The AEAD key and nonce of one message's key material.
fn message_key(material: &[u8; 32]) -> Result<(Zeroizing<[u8; 32]>, [u8; 12]), EngineError> {
    let mut okm = Zeroizing::new([0u8; 44]);
    hkdf_sha256(&[0; 32], material, KEY_INFO, okm.as_mut())?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    Ok((key, nonce))
}

impl SenderChain {
    /// A new chain for `group` (at the start, and after every membership change that removes
    /// someone: the removed member holds the old chain, never the new one).
    pub fn new(group: GroupId, entropy: &mut dyn Entropy) -> Result<SenderChain, EngineError> {
        let mut id = [0u8; 4];
        entropy.fill(&mut id)?;
        Ok(SenderChain {
            group,
            chain_id: u32::from_be_bytes(id),
            iteration: 0,
            chain_key: entropy.bytes32()?,
            signing_seed: entropy.bytes32()?,
        })
    }

    /// The chain's state now, for a member: they read from the next message on.
    pub fn distribution(&self) -> Distribution {
        Distribution {
            group: self.group,
            chain_id: self.chain_id,
            iteration: self.iteration,
            chain_key: self.chain_key,
            signing_key: ed25519_public(&self.signing_seed),
        }
    }

    /// Encrypts `plaintext` under the next message key, signs it, and moves the chain on.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<GroupMessage, EngineError> {
        let (material, next) = step(&self.chain_key);
        let (key, nonce) = message_key(&material)?;
        let signing_key = ed25519_public(&self.signing_seed);
        let ciphertext =
            seal(&key, &nonce, &ad(&self.group, self.chain_id, self.iteration, &signing_key), plaintext)?;
        let signed = signed_part(VERSION, &self.group, self.chain_id, self.iteration, &ciphertext);
        let message = GroupMessage {
            v: VERSION,
            group: self.group,
            chain_id: self.chain_id,
            iteration: self.iteration,
            ciphertext,
            signature: Signature(ed25519_sign(&self.signing_seed, &signed)),
        };
        self.chain_key = *next;
        self.iteration = self.iteration.checked_add(1).ok_or(EngineError::Internal("chain exhausted"))?;
        Ok(message)
    }
}

impl ReceiverChain {
    pub fn from_distribution(d: &Distribution) -> ReceiverChain {
        ReceiverChain {
            group: d.group,
            chain_id: d.chain_id,
            iteration: d.iteration,
            chain_key: d.chain_key,
            signing_key: d.signing_key,
            skipped: BTreeMap::new(),
        }
    }

    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The public key the chain's messages are signed with.
    pub fn signing_key(&self) -> [u8; 32] {
        self.signing_key
    }

    /// Opens a message of this chain. Works on a copy: `Ok` gives the state to keep, an error
    /// leaves the chain as it was. The signature is checked first.
    pub fn decrypt(&self, m: &GroupMessage) -> Result<(ReceiverChain, Vec<u8>), EngineError> {
        if m.v != VERSION {
            return Err(EngineError::UnsupportedVersion(m.v));
        }
        if m.group != self.group || m.chain_id != self.chain_id {
            return Err(EngineError::NoSession);
        }
        let signed = signed_part(m.v, &m.group, m.chain_id, m.iteration, &m.ciphertext);
        verify(&self.signing_key, &signed, &m.signature).map_err(|_| EngineError::ForgedSender)?;
        let mut next = self.clone();
        let material = if m.iteration < next.iteration {
            Zeroizing::new(next.skipped.remove(&m.iteration).ok_or(EngineError::Duplicate)?)
        } else {
            let ahead = m.iteration - next.iteration;
            if ahead > MAX_SKIP || next.skipped.len() as u32 + ahead > MAX_SKIP {
                return Err(EngineError::TooManySkipped);
            }
            while next.iteration < m.iteration {
                let (material, key) = step(&next.chain_key);
                next.skipped.insert(next.iteration, *material);
                next.chain_key = *key;
                next.iteration += 1;
            }
            let (material, key) = step(&next.chain_key);
            next.chain_key = *key;
            next.iteration = next.iteration.checked_add(1).ok_or(EngineError::Internal("chain exhausted"))?;
            material
        };
        let (key, nonce) = message_key(&material)?;
        let plaintext =
            open(&key, &nonce, &ad(&m.group, m.chain_id, m.iteration, &next.signing_key), &m.ciphertext)?;
        Ok((next, plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SeededEntropy;

    fn chain() -> (SenderChain, ReceiverChain) {
        let e = &mut SeededEntropy::new([9; 32]);
        let sender = SenderChain::new(GroupId([1; 16]), e).unwrap();
        let receiver = ReceiverChain::from_distribution(&sender.distribution());
        (sender, receiver)
    }

    #[test]
    fn members_read_in_any_order_once_and_never_before_they_joined() {
        let (mut sender, mut bo) = chain();
        let m0 = sender.encrypt(b"zero").unwrap();
        // Cy joins now: the chain as it is, so message 0 is not hers to read.
        let cy = ReceiverChain::from_distribution(&sender.distribution());
        let m1 = sender.encrypt(b"one").unwrap();
        let m2 = sender.encrypt(b"two").unwrap();
        assert_eq!(cy.decrypt(&m0).err(), Some(EngineError::Duplicate), "sent before she joined");
        assert_eq!(cy.decrypt(&m1).unwrap().1, b"one");
        for (m, text) in [(&m2, b"two".as_slice()), (&m0, b"zero"), (&m1, b"one")] {
            let (next, plain) = bo.decrypt(m).unwrap();
            assert_eq!(plain, text);
            bo = next;
        }
        assert_eq!(bo.decrypt(&m1).err(), Some(EngineError::Duplicate), "a replay");
        assert!(bo.skipped.is_empty());
    }

    #[test]
    fn forgeries_and_tampering_are_refused_before_any_chain_work() {
        let (mut sender, bo) = chain();
        let m = sender.encrypt(b"hello").unwrap();
        let mut tampered = m.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(bo.decrypt(&tampered).err(), Some(EngineError::ForgedSender));
        // A member who holds the chain (its chain key) still cannot sign as its owner.
        let e = &mut SeededEntropy::new([3; 32]);
        let mut forger = SenderChain::new(GroupId([1; 16]), e).unwrap();
        forger.chain_id = m.chain_id;
        forger.chain_key = sender.distribution().chain_key;
        forger.iteration = sender.distribution().iteration;
        let forged = forger.encrypt(b"trust me").unwrap();
        assert_eq!(bo.decrypt(&forged).err(), Some(EngineError::ForgedSender));
        let far = GroupMessage { iteration: m.iteration + MAX_SKIP + 1, ..m.clone() };
        assert!(bo.decrypt(&far).is_err());
        let other = GroupMessage { v: 9, ..m.clone() };
        assert_eq!(bo.decrypt(&other).err(), Some(EngineError::UnsupportedVersion(9)));
        assert_eq!(bo.decrypt(&m).unwrap().1, b"hello", "the chain is untouched by what was refused");
    }

    #[test]
    fn skipping_is_bounded_and_a_new_chain_locks_out_the_old_holder() {
        let (mut sender, bo) = chain();
        let mut last = None;
        for _ in 0..=MAX_SKIP + 1 {
            last = Some(sender.encrypt(b"x").unwrap());
        }
        assert_eq!(bo.decrypt(&last.unwrap()).err(), Some(EngineError::TooManySkipped));
        // After a removal the sender starts a new chain, given only to those who stay.
        let e = &mut SeededEntropy::new([4; 32]);
        let mut renewed = SenderChain::new(GroupId([1; 16]), e).unwrap();
        let after = renewed.encrypt(b"after the removal").unwrap();
        assert_eq!(
            bo.decrypt(&after).err(),
            Some(EngineError::NoSession),
            "the removed member's chain is the old one"
        );
        let stays = ReceiverChain::from_distribution(&renewed.distribution());
        assert!(stays.decrypt(&after).is_err(), "joined after it was sent");
        let next = renewed.encrypt(b"next").unwrap();
        assert_eq!(stays.decrypt(&next).unwrap().1, b"next");
    }

    #[test]
    fn debug_never_shows_keys() {
        let (sender, receiver) = chain();
        let d = sender.distribution();
        for shown in [format!("{sender:?}"), format!("{receiver:?}"), format!("{d:?}")] {
            assert!(
                !shown.contains(&format!("{:?}", d.chain_key)) && !shown.contains("chain_key"),
                "{shown}"
            );
        }
    }
}
