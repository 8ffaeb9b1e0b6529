//! Reading a QR code off a camera frame, for comparing safety numbers by scanning
//! (`client/static/files.js`, `scanQr`). Its own small wasm, fetched only when the camera
//! opens: the decoder's tables would cost the app (or the file worker) about 90 KB gzipped.

#![forbid(unsafe_code)]

/// The bytes of the first QR code in an RGBA frame, or nothing (for JavaScript).
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = decodeQr)]
pub fn decode_qr(rgba: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
    decode(rgba, width as usize, height as usize)
}

/// The bytes of the first QR code found in an RGBA frame `width` pixels wide, if any.
pub fn decode(rgba: &[u8], width: usize, height: usize) -> Option<Vec<u8>> {
    if width == 0 || rgba.len() < width.checked_mul(height)?.checked_mul(4)? {
        return None;
    }
    // Luma (Rec. 601 weights, in integers).
    let luma = |x: usize, y: usize| {
        let p = &rgba[(y * width + x) * 4..][..3];
        ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    image.detect_grids().into_iter().find_map(|grid| {
        let mut bytes = Vec::new();
        grid.decode_to(&mut bytes).ok().map(|_| bytes)
    })
}

#[cfg(test)]
mod tests {
    use qrcode::{Color, EcLevel, QrCode};

    /// A code drawn as a camera would see it: grey on lighter grey, each module 6 pixels,
    /// off-centre in a larger frame.
    fn frame(data: &[u8]) -> (Vec<u8>, usize, usize) {
        let code = QrCode::with_error_correction_level(data, EcLevel::L).unwrap();
        let (n, scale, (w, h)) = (code.width(), 6, (640, 480));
        let colors = code.to_colors();
        let mut rgba = vec![0u8; w * h * 4];
        for y in 0..h {
            for x in 0..w {
                let (mx, my) = ((x as isize - 100) / scale as isize, (y as isize - 40) / scale as isize);
                let dark = x >= 100
                    && y >= 40
                    && (mx as usize) < n
                    && (my as usize) < n
                    && colors[my as usize * n + mx as usize] == Color::Dark;
                let v = if dark { 40 } else { 210 };
                rgba[(y * w + x) * 4..][..4].copy_from_slice(&[v, v, v + 10, 255]);
            }
        }
        (rgba, w, h)
    }

    #[test]
    fn a_safety_number_code_reads_back_byte_for_byte() {
        let payload = [b"SOTTO-SN1".as_slice(), &[0x00, 0xff, 0x80, 0x7f], &[0xa5; 60]].concat();
        let (rgba, w, h) = frame(&payload);
        assert_eq!(super::decode(&rgba, w, h), Some(payload));
        assert_eq!(super::decode(&vec![200; w * h * 4], w, h), None, "no code in a blank frame");
        assert_eq!(super::decode(&rgba[..100], w, h), None, "a short frame is refused");
    }
}
