//! A contact request: someone wrote without an invite link of ours. What they wrote, and the
//! choice to accept them as a contact or ignore them; no composer until accepted.

use crate::action::Action;
use crate::components::{Marks, back_link, initial, timeline};
use sotto_messenger::ChatMessage;
use sotto_messenger::requests::Request;
use yew::prelude::*;

pub struct Props<'a> {
    pub request: &'a Request,
    pub messages: &'a [ChatMessage],
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let (r, address) = (props.request, props.request.address);
    html! {
        <section key={r.address.to_hex()} class="conversation" aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(&r.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ r.name.clone() }</h2>
                    <span class="muted small">{ "Message request" }</span>
                </div>
            </header>
            <div class="warning" role="note" data-testid="request">
                <span>
                    { format!("{} is not in your contacts: they wrote without an invite link from you, so anyone could be using this name. ", r.name) }
                    { "They will not know you read this unless you accept." }
                </span>
            </div>
            <ol class="messages" aria-label={format!("Messages from {}", r.name)} tabindex="0">
                { timeline(
                    props.messages,
                    &Marks {
                        name: &|_| String::new(),
                        them: &r.name,
                        reads: &|_| None,
                        report: None,
                        files: &crate::files::Files::default(),
                        conversation: sotto_messenger::ConversationId::Direct(address),
                        writable: false,
                    },
                    &props.on_action,
                ) }
            </ol>
            <div class="request-answer actions">
                <button onclick={props.on_action.reform(move |_| Action::AcceptRequest(address))}>{ "Accept" }</button>
                <button class="secondary" onclick={props.on_action.reform(move |_| Action::IgnoreRequest(address))}>
                    { "Ignore and delete" }
                </button>
            </div>
        </section>
    }
}
