//! Warnings about a contact's key: it changed, another contact has the same name, or the invite
//! they sent had already been used. Nothing is sent to a changed or doubtful key until the
//! person answers the warning (the composer waits for it).

use crate::action::Action;
use crate::route::Route;
use sotto_messenger::{Contact, ContactNotice};
use yew::prelude::*;

/// `other_name`: the name of the other contact a `SameNameAs` notice points at.
pub fn key_banner(c: &Contact, other_name: Option<&str>, on_action: &Callback<Action>) -> Html {
    let text = match &c.notice {
        None => return html! {},
        Some(ContactNotice::Changed) => {
            format!(
                "{}'s identity key changed: nothing is sent to the new key until you say so. Compare safety numbers before you trust it.",
                c.name
            )
        }
        Some(ContactNotice::SameNameAs(_)) => {
            let other = other_name.unwrap_or("another contact");
            format!(
                "You already have a contact named {other} with a different key. If they started over on a new device, compare safety numbers; otherwise this may be someone else. Nothing is sent to them until you choose."
            )
        }
        Some(ContactNotice::InviteUsed) => {
            return html! {
                <div class="warning" role="alert" data-testid="invite-used">
                    <span>{ format!("The invite link from {} had already been used, so {} cannot read this chat. Ask {} for a new link.", c.name, c.name, c.name) }</span>
                </div>
            };
        }
    };
    let address = c.address;
    html! {
        <div class="warning" role="alert" data-testid="key-warning">
            <span>{ text }</span>
            <a href={Route::Safety(c.address).hash()}>{ "Compare safety numbers" }</a>
            <button type="button" class="secondary small" onclick={on_action.reform(move |_| Action::AcceptKey(address))}
                data-testid="accept-key">{ "Continue without checking" }</button>
        </div>
    }
}
