//! Randomness. The engine takes it through [`Entropy`], so that tests and pinned vectors can
//! run deterministically; real use is [`OsEntropy`] (the browser's `crypto.getRandomValues` on
//! wasm32, the OS elsewhere).

use crate::EngineError;
#[cfg(any(test, feature = "hazmat"))]
use crate::primitives::sha256;

pub trait Entropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EngineError>;

    fn bytes32(&mut self) -> Result<[u8; 32], EngineError> {
        let mut b = [0u8; 32];
        self.fill(&mut b)?;
        Ok(b)
    }
}

/// The operating system's (or browser's) secure random generator.
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EngineError> {
        fill(buf)
    }
}

/// A deterministic stream from a seed, for tests and pinned vectors only: block `i` is
/// `SHA-256("sotto-test-entropy" || seed || i)`. Never use it for real keys: it exists only in
/// the engine's tests and with the `hazmat` feature.
#[cfg(any(test, feature = "hazmat"))]
pub struct SeededEntropy {
    seed: [u8; 32],
    counter: u64,
}

#[cfg(any(test, feature = "hazmat"))]
impl SeededEntropy {
    pub fn new(seed: [u8; 32]) -> Self {
        SeededEntropy { seed, counter: 0 }
    }
}

#[cfg(any(test, feature = "hazmat"))]
impl Entropy for SeededEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), EngineError> {
        for chunk in buf.chunks_mut(32) {
            let block = sha256(&[b"sotto-test-entropy", &self.seed, &self.counter.to_be_bytes()]);
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// Fills `buf` with secure random bytes from the OS.
pub fn fill(buf: &mut [u8]) -> Result<(), EngineError> {
    getrandom::fill(buf).map_err(|_| EngineError::NoRandomness)
}

/// A fresh random 32-byte array from the OS.
pub fn bytes32() -> Result<[u8; 32], EngineError> {
    OsEntropy.bytes32()
}
