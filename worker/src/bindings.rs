//! What the worker's JavaScript calls: the two streams, errors as plain words.

use wasm_bindgen::prelude::*;

fn fail(e: sotto_engine::EngineError) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
pub struct SealStream(crate::Sealing);

#[wasm_bindgen]
impl SealStream {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<SealStream, JsError> {
        crate::Sealing::new().map(SealStream).map_err(fail)
    }

    pub fn key(&self) -> Vec<u8> {
        self.0.key().to_vec()
    }

    /// Seals the next piece into `out` (one buffer the worker reuses, so that 2 GiB do not
    /// become 2 GiB of garbage); returns the sealed length.
    #[wasm_bindgen(js_name = sealInto)]
    pub fn seal_into(&mut self, piece: &[u8], last: bool, out: &mut [u8]) -> Result<u32, JsError> {
        copy_into(self.0.seal(piece, last).map_err(fail)?, out)
    }

    pub fn finish(&mut self) -> Result<Vec<u8>, JsError> {
        self.0.finish().map(|d| d.to_vec()).map_err(fail)
    }
}

#[wasm_bindgen]
pub struct OpenStream(crate::Opening);

#[wasm_bindgen]
impl OpenStream {
    /// `size` in plaintext bytes (a JavaScript number holds any size up to 2 GiB exactly).
    #[wasm_bindgen(constructor)]
    pub fn new(key: &[u8], size: f64, digest: &[u8]) -> Result<OpenStream, JsError> {
        let key: [u8; 32] = key.try_into().map_err(|_| JsError::new("a file key is 32 bytes"))?;
        let digest: [u8; 32] = digest.try_into().map_err(|_| JsError::new("a digest is 32 bytes"))?;
        if !(0.0..=sotto_engine::consts::MAX_FILE_BYTES as f64).contains(&size) || size.fract() != 0.0 {
            return Err(JsError::new("a file size out of range"));
        }
        crate::Opening::new(key, size as u64, digest).map(OpenStream).map_err(fail)
    }

    /// Opens the next piece into `out` (reused, like `sealInto`); returns the plaintext length.
    #[wasm_bindgen(js_name = openInto)]
    pub fn open_into(&mut self, sealed: &[u8], out: &mut [u8]) -> Result<u32, JsError> {
        copy_into(self.0.open(sealed).map_err(fail)?, out)
    }

    pub fn finish(&mut self) -> Result<(), JsError> {
        self.0.finish().map_err(fail)
    }
}

fn copy_into(bytes: Vec<u8>, out: &mut [u8]) -> Result<u32, JsError> {
    let room = out.get_mut(..bytes.len()).ok_or_else(|| JsError::new("the output buffer is too small"))?;
    room.copy_from_slice(&bytes);
    Ok(bytes.len() as u32)
}

/// The piece sizes the JavaScript reads and uploads by.
#[wasm_bindgen(js_name = pieceBytes)]
pub fn piece_bytes() -> u32 {
    crate::PIECE_BYTES as u32
}

/// The ciphertext's size for a file of `size` plaintext bytes (numbers up to 2 GiB are exact).
#[wasm_bindgen(js_name = sealedSize)]
pub fn sealed_size(size: f64) -> f64 {
    sotto_engine::file::sealed_size(size as u64) as f64
}

#[wasm_bindgen(js_name = sealedPieceBytes)]
pub fn sealed_piece_bytes() -> u32 {
    crate::SEALED_PIECE_BYTES as u32
}
