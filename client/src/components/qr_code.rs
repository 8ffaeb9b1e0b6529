//! A QR code drawn as one SVG path.

use crate::qr;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub data: Vec<u8>,
    pub label: AttrValue,
}

#[function_component(QrCode)]
pub fn qr_code(props: &Props) -> Html {
    match qr::svg_path(&props.data) {
        Some((size, d)) => html! {
            <svg class="qr" viewBox={format!("0 0 {size} {size}")} role="img" aria-label={props.label.clone()}
                shape-rendering="crispEdges">
                <rect width={size.to_string()} height={size.to_string()} fill="#fff" />
                <path d={d} fill="#000" />
            </svg>
        },
        None => html! {},
    }
}
