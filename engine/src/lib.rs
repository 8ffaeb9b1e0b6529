//! Sotto's end-to-end encryption engine.
//!
//! Sans-IO: no browser, network or clock types. Callers pass in what arrived and what the user
//! wants; the engine returns what to send and what to persist. It runs in the browser (wasm32),
//! in native tests, in the load tool and in bots alike.

#![forbid(unsafe_code)]

pub mod error;
pub mod identity;
pub mod random;

pub use error::EngineError;
pub use identity::Identity;
