//! Pieces several pages show: functions of what they show (and, if the person can act on it,
//! a `Callback<Action>`); none reads app state. Only a message bubble is a Yew component, so
//! that a new message re-renders one bubble, not the history (each component costs about
//! 2 KB of compressed wasm in Yew's lifecycle code).

mod attachment;
mod bubble;
mod composer;
mod connection;
mod key_banner;
mod qr_code;
mod toast;

pub use bubble::{Marks, Reads, message_list, timeline};
pub use composer::composer;
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

pub fn back_link() -> Html {
    html! { <a class="back icon-button" href="#/" aria-label="Back to chats">{ "‹" }</a> }
}

pub fn not_found() -> Html {
    html! { <section class="placeholder"><p>{ "This chat is not on this device." }</p><a href="#/">{ "Back to chats" }</a></section> }
}
