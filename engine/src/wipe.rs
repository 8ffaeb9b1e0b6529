//! Encoding secrets (keys, session state, plaintext) without leaving copies behind: the buffer
//! is sized before anything is written, so it never grows (a grown buffer leaves the old one
//! freed but unwiped), and it wipes itself when dropped.

use serde::Serialize;
use zeroize::Zeroizing;

/// `prefix || postcard(value)`, with room for `spare` more bytes without growing.
pub fn encode<T: Serialize + ?Sized>(
    prefix: &[u8],
    value: &T,
    spare: usize,
) -> Result<Zeroizing<Vec<u8>>, postcard::Error> {
    let size = postcard::experimental::serialized_size(value)?;
    let mut out = Zeroizing::new(Vec::with_capacity(prefix.len() + size + spare));
    out.extend_from_slice(prefix);
    out.resize(prefix.len() + size, 0);
    postcard::to_slice(value, &mut out[prefix.len()..])?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_sized_once_and_matches_postcard() {
        let value = (7u32, "a secret".to_string(), [9u8; 32]);
        let out = encode(&[2], &value, 100).unwrap();
        assert_eq!(out[0], 2);
        assert_eq!(&out[1..], postcard::to_allocvec(&value).unwrap().as_slice());
        assert!(out.capacity() >= out.len() + 100, "room to pad without growing");
    }
}
