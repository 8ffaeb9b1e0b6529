//! Wire types shared by the Sotto client and relay.
//!
//! Everything here is plain data plus a codec; there is no I/O, so both the browser app and
//! the relay (and tests, load tools, bots) use exactly the same definitions.

#![forbid(unsafe_code)]

pub mod channel;
pub mod codec;
pub mod frames;
pub mod ids;
pub mod invite;
pub mod limits;
pub mod signature;

pub use codec::{DecodeError, decode_client, decode_relay, encode_client, encode_relay};
pub use frames::{ClientFrame, ErrorCode, RelayFrame};
pub use ids::{Address, MessageId, TopicId, WriteKey};
