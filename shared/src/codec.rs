//! The binary codec: one version byte, then the postcard encoding of the frame.
//!
//! Decoding never panics; every failure is a [`DecodeError`] value.

use crate::frames::{ClientFrame, RelayFrame};
use crate::limits::MAX_FRAME_BYTES;
use serde::{Serialize, de::DeserializeOwned};
use thiserror::Error;

/// The wire version this build speaks. Bumped on any incompatible change.
pub const WIRE_VERSION: u8 = 1;
/// Every wire version this build can decode.
pub const SUPPORTED_VERSIONS: &[u8] = &[WIRE_VERSION];

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty frame")]
    Empty,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("unsupported protocol version {0} (supported: {SUPPORTED_VERSIONS:?})")]
    UnsupportedVersion(u8),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

fn encode<T: Serialize>(frame: &T) -> Vec<u8> {
    let out = vec![WIRE_VERSION];
    // Serializing our own in-memory types to a Vec cannot fail: every type here is
    // postcard-representable and the Vec grows as needed.
    match postcard::to_extend(frame, out) {
        Ok(v) => v,
        Err(e) => unreachable!("postcard cannot fail on owned wire types: {e}"),
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let (frame, rest) = postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!("{} trailing bytes", rest.len())));
    }
    Ok(frame)
}

pub fn encode_client(frame: &ClientFrame) -> Vec<u8> {
    encode(frame)
}

pub fn encode_relay(frame: &RelayFrame) -> Vec<u8> {
    encode(frame)
}

pub fn decode_client(bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
    decode(bytes)
}

pub fn decode_relay(bytes: &[u8]) -> Result<RelayFrame, DecodeError> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::ErrorCode;
    use crate::ids::{Address, MessageId};
    use proptest::prelude::*;

    #[test]
    fn roundtrip_client_frames() {
        let frames = [
            ClientFrame::Hello { client: "test".into() },
            ClientFrame::Send {
                id: MessageId([7; 16]),
                to: Address([9; 32]),
                ttl_secs: 60,
                payload: vec![1, 2, 3],
            },
            ClientFrame::Ack { ids: vec![MessageId([1; 16])] },
            ClientFrame::Ping { nonce: 42 },
        ];
        for f in frames {
            let bytes = encode_client(&f);
            assert_eq!(bytes[0], WIRE_VERSION);
            assert_eq!(decode_client(&bytes), Ok(f));
        }
    }

    /// Payloads are encoded as one byte string; the bytes on the wire are pinned so that a
    /// change of encoding (which would break deployed clients) cannot pass unnoticed.
    #[test]
    fn payload_bytes_are_pinned() {
        let f = RelayFrame::Deliver { id: MessageId([7; 16]), received_at: 300, payload: vec![1, 2, 3] };
        let mut want = vec![WIRE_VERSION, 3];
        want.extend([7; 16]);
        want.extend([0xac, 0x02, 3, 1, 2, 3]);
        assert_eq!(encode_relay(&f), want);
        let f = ClientFrame::Send {
            id: MessageId([7; 16]),
            to: Address([9; 32]),
            ttl_secs: 1,
            payload: vec![0xff; 2],
        };
        let mut want = vec![WIRE_VERSION, 2];
        want.extend([7; 16]);
        want.extend([9; 32]);
        want.extend([1, 2, 0xff, 0xff]);
        assert_eq!(encode_client(&f), want);
    }

    #[test]
    fn roundtrip_relay_frame() {
        let f = RelayFrame::Error { code: ErrorCode::RateLimited, message: "slow down".into(), id: None };
        assert_eq!(decode_relay(&encode_relay(&f)), Ok(f));
    }

    #[test]
    fn rejects_bad_frames_with_values() {
        assert_eq!(decode_client(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_client(&[99, 0]), Err(DecodeError::UnsupportedVersion(99)));
        assert!(matches!(decode_client(&[WIRE_VERSION, 200]), Err(DecodeError::Malformed(_))));
        let big = vec![WIRE_VERSION; MAX_FRAME_BYTES + 1];
        assert_eq!(decode_client(&big), Err(DecodeError::TooLarge(MAX_FRAME_BYTES + 1)));
        let mut ok = encode_client(&ClientFrame::Ping { nonce: 1 });
        ok.push(0);
        assert!(matches!(decode_client(&ok), Err(DecodeError::Malformed(_))));
    }

    proptest! {
        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_client(&bytes);
            let _ = decode_relay(&bytes);
        }

        #[test]
        fn truncated_frames_are_errors(cut in 0usize..40) {
            let f = ClientFrame::Send { id: MessageId([3; 16]), to: Address([4; 32]), ttl_secs: 5, payload: vec![5; 8] };
            let bytes = encode_client(&f);
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode_client(&bytes[..cut]).is_err());
        }
    }
}
