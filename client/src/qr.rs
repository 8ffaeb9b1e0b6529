//! QR codes as one SVG path (the `qrcode` crate computes the modules).

use qrcode::{Color, EcLevel, QrCode};

/// The module count and an SVG path drawing the dark modules, with a 4-module quiet zone.
pub fn svg_path(data: &[u8]) -> Option<(usize, String)> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    let width = code.width();
    let mut d = String::new();
    for (i, c) in code.to_colors().iter().enumerate() {
        if *c == Color::Dark {
            d.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    Some((width + 8, d))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_fits_and_draws() {
        let (size, d) = super::svg_path(&[b'a'; 600]).unwrap();
        assert!(size > 21 && d.starts_with('M'));
    }
}
