//! A QR code drawn as one SVG path.

use crate::qr;
use yew::prelude::*;

pub fn qr_code(data: &[u8], label: &'static str) -> Html {
    match qr::svg_path(data) {
        Some((size, d)) => html! {
            <svg class="qr" viewBox={format!("0 0 {size} {size}")} role="img" aria-label={label}
                shape-rendering="crispEdges">
                <rect width={size.to_string()} height={size.to_string()} fill="#fff" />
                <path d={d} fill="#000" />
            </svg>
        },
        None => html! {},
    }
}
