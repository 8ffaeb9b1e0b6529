//! Padding plaintexts before they are sealed (messages, group posts and requests, channel
//! posts): the postcard encoding, then 0x80, then zeros up to a multiple of [`PADDING_BLOCK`]
//! bytes (ISO/IEC 7816-4), so lengths show little.

use crate::EngineError;
use crate::consts::PADDING_BLOCK;
use serde::Serialize;

/// `postcard(value) || 0x80 || zeros`, to a multiple of [`PADDING_BLOCK`] (wiped when dropped;
/// padded without growing, see `wipe`): lengths tell only which block count a plaintext has.
pub(crate) fn padded<T: Serialize>(value: &T) -> Result<zeroize::Zeroizing<Vec<u8>>, EngineError> {
    let mut out = crate::wipe::encode(&[], value, PADDING_BLOCK)?;
    out.push(0x80);
    let padded = out.len().next_multiple_of(PADDING_BLOCK);
    out.resize(padded, 0);
    Ok(out)
}

/// The value [`padded`] encoded; anything else is refused.
pub(crate) fn unpadded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, EngineError> {
    if !bytes.len().is_multiple_of(PADDING_BLOCK) {
        return Err(EngineError::BadEncoding("message not padded to a block".into()));
    }
    let end = bytes.iter().rposition(|b| *b != 0);
    let unpadded = match end {
        Some(i) if bytes[i] == 0x80 => &bytes[..i],
        _ => return Err(EngineError::BadEncoding("message padding is damaged".into())),
    };
    let (value, rest) = postcard::take_from_bytes(unpadded)?;
    if !rest.is_empty() {
        return Err(EngineError::BadEncoding("bytes after the message".into()));
    }
    Ok(value)
}
