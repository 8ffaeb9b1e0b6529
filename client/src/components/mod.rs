//! Pieces several pages show: functions of what they show (and, if the person can act on it,
//! a `Callback<Action>`); none reads app state. Only a message bubble is a Yew component, so
//! that a new message re-renders one bubble, not the history (each component costs about
//! 2 KB of compressed wasm in Yew's lifecycle code).

mod attachment;
mod bubble;
mod chat_tools;
mod composer;
mod connection;
mod key_banner;
mod qr_code;
mod toast;

pub use bubble::{Marks, Reads, message_list, timeline};
pub use chat_tools::{chat_menu, secret_mark};
pub use composer::{Composing, composer};
pub use connection::connection_status;
pub use key_banner::key_banner;
pub use qr_code::qr_code;
pub use toast::toast;

use yew::prelude::*;

/// A group member's colour (one of eight classes `c0`…`c7` in the style sheet, since the
/// content security policy allows no inline style), the same on every device: from their
/// identity key.
pub fn colour(key: &[u8; 32]) -> String {
    format!("c{}", key[0] % 8)
}

/// The first letter of a name, for avatars.
pub fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

pub fn brand() -> Html {
    html! {
        <header class="brand">
            <img src="/icon.svg" alt="" width="56" height="56" />
            <h1>{ "Sotto" }</h1>
            <p class="tagline">{ "Private messages, end-to-end encrypted in your browser. Share a link, start talking." }</p>
        </header>
    }
}

/// Line icons drawn in SVG (emoji fonts are not everywhere), 24 units square.
pub fn icon(path: &'static str) -> Html {
    html! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d={path} /></svg>
    }
}

pub const PAPERCLIP: &str = "M21 11.5l-8.6 8.6a5 5 0 0 1-7.1-7.1l8.6-8.6a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4l7.9-7.9";
pub const MICROPHONE: &str =
    "M12 3a3 3 0 0 1 3 3v5a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zM5 11a7 7 0 0 0 14 0M12 18v3";
pub const DOCUMENT: &str = "M6 3h8l4 4v14H6zM14 3v4h4";

pub fn back_link() -> Html {
    html! { <a class="back icon-button" href="#/" aria-label="Back to chats">{ "‹" }</a> }
}

pub fn not_found() -> Html {
    html! { <section class="placeholder"><p>{ "This chat is not on this device." }</p><a href="#/">{ "Back to chats" }</a></section> }
}
