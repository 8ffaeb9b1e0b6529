//! Safety numbers: what two people compare (aloud or by QR code) to know no one sits between
//! them. Each side's half is 30 digits derived from its identity key by iterated SHA-512 (as
//! Signal's numeric fingerprints, 5,200 iterations); the halves are ordered so both people see
//! the same 60 digits.

use sha2::{Digest, Sha512};
use sotto_shared::Address;

const ITERATIONS: usize = 5200;
const VERSION: u16 = 1;

fn half(key: &[u8; 32]) -> [u8; 32] {
    let address = Address::from_identity_key(key);
    let mut hash: Vec<u8> = Sha512::new()
        .chain_update(VERSION.to_be_bytes())
        .chain_update(key)
        .chain_update(address.0)
        .finalize()
        .to_vec();
    for _ in 0..ITERATIONS {
        hash = Sha512::new().chain_update(&hash).chain_update(key).finalize().to_vec();
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash[..32]);
    out
}

fn digits(h: &[u8; 32]) -> String {
    h[..30]
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", v % 100_000)
        })
        .collect()
}

/// The 60-digit safety number of two identities (their Ed25519 identity keys), in 12 groups of
/// 5, identical on both sides.
pub fn safety_number(a: &[u8; 32], b: &[u8; 32]) -> String {
    let (mut x, mut y) = (digits(&half(a)), digits(&half(b)));
    if y < x {
        std::mem::swap(&mut x, &mut y);
    }
    let all = x + &y;
    all.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// The QR code payload: a version tag and both halves, ordered, so a scan compares them all.
pub fn qr_payload(a: &[u8; 32], b: &[u8; 32]) -> Vec<u8> {
    let (mut x, mut y) = (half(a), half(b));
    if y < x {
        std::mem::swap(&mut x, &mut y);
    }
    [b"SOTTO-SN1".as_slice(), &x, &y].concat()
}
