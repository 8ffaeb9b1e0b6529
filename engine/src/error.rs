use thiserror::Error;

/// Everything the engine can refuse. Messages are written for people, not for developers.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    #[error("this device has no source of secure randomness")]
    NoRandomness,
    #[error("a signature did not verify: {0}")]
    BadSignature(&'static str),
    #[error("a public key is invalid: {0}")]
    InvalidKey(&'static str),
    #[error("stored data is damaged or from an unknown version: {0}")]
    BadEncoding(String),
}
