//! The safety number shared with a contact, to compare out of band.

use crate::action::Action;
use crate::components::{key_banner, qr_code};
use crate::route::Route;
use sotto_messenger::{Contact, ConversationId};
use yew::prelude::*;

pub struct Props<'a> {
    pub contact: &'a Contact,
    /// See [`key_banner`].
    pub other_name: Option<String>,
    /// Digits in groups of five.
    pub number: String,
    pub qr_payload: Vec<u8>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let c = props.contact;
    let (who, verified) = (c.address, c.verified);
    let toggle = props.on_action.reform(move |_| Action::SetVerified(who, !verified));
    html! {
        <section class="sheet" aria-labelledby="safety-title">
            <header class="pane-head">
                <a class="icon-button" href={Route::Chat(ConversationId::Direct(c.address)).hash()} aria-label="Back to chat">{ "‹" }</a>
                <h2 id="safety-title">{ format!("Safety number with {}", c.name) }</h2>
            </header>
            <div class="sheet-body">
                { key_banner(c, props.other_name.as_deref()) }
                <p>{ format!("Compare these digits with {} in person or on a call, or scan each other's code. If they match, nobody is in the middle of your chat.", c.name) }</p>
                <p class="safety-number" data-testid="safety-number" aria-label="Safety number">
                    { for props.number.split(' ').map(|g| html! { <span>{ g.to_string() }</span> }) }
                </p>
                { qr_code(&props.qr_payload, "QR code of the safety number") }
                <button onclick={toggle} aria-pressed={verified.to_string()}>
                    { if verified { "Verified ✓ (tap to undo)" } else { "Mark as verified" } }
                </button>
            </div>
        </section>
    }
}
