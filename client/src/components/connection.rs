//! The relay link as the person sees it: online, connecting or offline (with what waits).

use crate::action::Action;
use sotto_messenger::Link;
use yew::prelude::*;

/// `pending`: envelopes waiting for the relay.
pub fn connection_status(link: Link, pending: usize, on_action: &Callback<Action>) -> Html {
    let (class, text) = match link {
        Link::Online => ("online", "Online"),
        Link::Connecting | Link::LoggingIn => ("connecting", "Connecting…"),
        Link::Offline => ("offline", "Offline"),
    };
    html! {
        <p class={classes!("conn", class)} role="status" data-testid="connection">
            <span class="dot" aria-hidden="true"></span>{ text }
            if pending > 0 && link != Link::Online {
                <span>{ format!(" · {pending} queued") }</span>
            }
            if link == Link::Offline {
                <button class="link" onclick={on_action.reform(|_| Action::Reconnect)} aria-label="Retry now" title="Retry now">{ "↻" }</button>
            }
        </p>
    }
}
