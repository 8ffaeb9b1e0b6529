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
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("the message was altered or is not for this conversation")]
    Tampered,
    #[error("the message claims a sender it does not come from")]
    ForgedSender,
    #[error("this message was already received")]
    Duplicate,
    #[error(
        "the sender used one message key for two different messages: their Sotto may be running in two places (a restored backup beside the old copy)"
    )]
    KeyReused,
    #[error("too many messages are missing in this conversation to catch up")]
    TooManySkipped,
    #[error("the one-time key this message needs is unknown or already used")]
    UnknownPrekey,
    #[error("no secure conversation exists with this contact yet")]
    NoSession,
    #[error("the sender's identity does not match the conversation")]
    IdentityMismatch,
    #[error("this group is waiting for its new key after someone left; try again in a moment")]
    RekeyPending,
    #[error("an addition to this group is on its way; try again in a moment")]
    AdditionPending,
    #[error("this group has had too many changes to take anyone more in")]
    GroupFull,
    #[error("this file is larger than Sotto sends (2 GiB)")]
    FileTooLarge,
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<postcard::Error> for EngineError {
    fn from(e: postcard::Error) -> Self {
        EngineError::BadEncoding(e.to_string())
    }
}
