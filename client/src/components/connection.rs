//! The relay link as the person sees it: online, connecting or offline (with what waits).

use crate::action::Action;
use sotto_messenger::Link;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub link: Link,
    /// Envelopes waiting for the relay.
    pub pending: usize,
    pub on_action: Callback<Action>,
}

#[function_component(ConnectionStatus)]
pub fn connection_status(props: &Props) -> Html {
    let (class, text) = match props.link {
        Link::Online => ("online", "Online"),
        Link::Connecting | Link::LoggingIn => ("connecting", "Connecting…"),
        Link::Offline => ("offline", "Offline"),
    };
    let pending = props.pending;
    html! {
        <p class={classes!("conn", class)} role="status" data-testid="connection">
            <span class="dot" aria-hidden="true"></span>{ text }
            if pending > 0 && props.link != Link::Online {
                <span>{ format!(" · {pending} queued") }</span>
            }
            if props.link == Link::Offline {
                <button class="link" onclick={props.on_action.reform(|_| Action::Reconnect)} aria-label="Retry now" title="Retry now">{ "↻" }</button>
            }
        </p>
    }
}
