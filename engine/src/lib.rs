//! Sotto's end-to-end encryption engine.
//!
//! Sans-IO: no browser, network or clock types. Callers pass in what arrived and what the user
//! wants; the engine returns what to send and what to persist. It runs in the browser (wasm32),
//! in native tests, in the load tool and in bots alike.
//!
//! Layers, bottom up: `primitives` (the only place RustCrypto/dalek are called), `identity`,
//! `prekeys`, `x3dh`, `ratchet`, `session` (X3DH + ratchet for one contact), `envelope`
//! (sealed sender), `message` (what is inside), `safety` (safety numbers), `sender_keys` (a
//! group member's signed sending chain), `roster` (a group's members, from signed changes),
//! `group` (a member's whole group: roster, epochs, every member's chain, sealed posts).

#![forbid(unsafe_code)]

pub mod attachment;
pub mod channel;
pub mod consts;
pub mod device;
pub mod envelope;
pub mod error;
pub mod file;
pub mod group;
pub mod group_link;
pub mod handover;
pub mod identity;
pub mod message;
mod padding;
pub mod prekeys;
pub mod random;
pub mod roster;
pub mod safety;
pub mod sender_keys;
pub mod session;
pub mod vault;
pub mod wipe;

// The protocol's internals are public only with the `hazmat` feature, which the engine's own
// tests and benchmarks turn on: callers use `Device`, `Identity`, `session` and `envelope`.
#[cfg(feature = "hazmat")]
pub mod primitives;
#[cfg(not(feature = "hazmat"))]
mod primitives;
#[cfg(feature = "hazmat")]
pub mod ratchet;
#[cfg(not(feature = "hazmat"))]
mod ratchet;
#[cfg(feature = "hazmat")]
pub mod workloads;
#[cfg(feature = "hazmat")]
pub mod x3dh;
#[cfg(not(feature = "hazmat"))]
mod x3dh;

pub use error::EngineError;
pub use identity::Identity;
