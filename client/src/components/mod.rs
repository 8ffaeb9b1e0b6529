//! Pieces several pages show. Each takes props (and, if the person can act on it, a
//! `Callback<Action>`); none reads app state.

mod bubble;
mod connection;
mod key_banner;
mod qr_code;
mod toast;

pub use bubble::Timeline;
pub use connection::ConnectionStatus;
pub use key_banner::KeyBanner;
pub use qr_code::QrCode;
pub use toast::Toast;

use yew::prelude::*;

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
