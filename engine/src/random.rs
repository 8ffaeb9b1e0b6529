//! Randomness from the operating system (the browser's `crypto.getRandomValues` on wasm32).

use crate::EngineError;

/// Fills `buf` with secure random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), EngineError> {
    getrandom::fill(buf).map_err(|_| EngineError::NoRandomness)
}

/// A fresh random 32-byte array (key seeds, nonces).
pub fn bytes32() -> Result<[u8; 32], EngineError> {
    let mut b = [0u8; 32];
    fill(&mut b)?;
    Ok(b)
}
