//! The safety number shared with a contact, or with a group member who is not one, to compare
//! out of band.

use crate::action::Action;
use crate::components::{key_banner, qr_code};
use crate::route::Route;
use sotto_messenger::{Contact, ConversationId};
use yew::prelude::*;

pub struct Props<'a> {
    /// The contact, if they are one (only a contact can be marked verified).
    pub contact: Option<&'a Contact>,
    pub name: String,
    /// Where the back arrow leads.
    pub back: Route,
    /// See [`key_banner`].
    pub other_name: Option<String>,
    /// Digits in groups of five.
    pub number: String,
    pub qr_payload: Vec<u8>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let name = &props.name;
    let verify = props.contact.map(|c| {
        let (who, verified) = (c.address, c.verified);
        let toggle = props.on_action.reform(move |_| Action::SetVerified(who, !verified));
        html! {
            <div class="actions">
                <button onclick={props.on_action.reform(move |_| Action::Scan(Some(who)))} data-testid="scan">
                    { "Scan their code" }
                </button>
                <button class="secondary" onclick={toggle} aria-pressed={verified.to_string()} data-testid="verified">
                    { if verified { "Verified ✓ (tap to undo)" } else { "Mark as verified" } }
                </button>
            </div>
        }
    });
    let (back_label, what) = match props.back {
        Route::Chat(ConversationId::Direct(_)) => ("Back to chat", "your chat"),
        _ => ("Back to the group", "the group"),
    };
    html! {
        <section class="sheet" aria-labelledby="safety-title">
            <header class="pane-head">
                <a class="icon-button" href={props.back.hash()} aria-label={back_label}>{ "‹" }</a>
                <h2 id="safety-title">{ format!("Safety number with {name}") }</h2>
            </header>
            <div class="sheet-body">
                { for props.contact.map(|c| key_banner(c, props.other_name.as_deref(), &props.on_action)) }
                <p>{ format!("Compare these digits with {name} in person or on a call, or scan each other's code. If they match, nobody is in the middle of {what}.") }</p>
                <p class="safety-number" data-testid="safety-number" aria-label="Safety number">
                    { for props.number.split(' ').map(|g| html! { <span>{ g.to_string() }</span> }) }
                </p>
                { qr_code(&props.qr_payload, "QR code of the safety number") }
                { for verify }
            </div>
        </section>
    }
}
