//! Any bytes a peer sends must decode to a frame or an error, never a panic; and whatever
//! decodes must re-encode to the same bytes (the codec has one encoding per frame).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_shared::{decode_client, decode_relay, encode_client, encode_relay};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode_client(data) {
        assert_eq!(decode_client(&encode_client(&frame)).as_ref(), Ok(&frame));
    }
    if let Ok(frame) = decode_relay(data) {
        assert_eq!(decode_relay(&encode_relay(&frame)).as_ref(), Ok(&frame));
    }
});
