//! One conversation: its messages (the loaded ones, with a way back to earlier pages) and the
//! composer.

use crate::action::Action;
use crate::components::{Marks, back_link, composer, initial, key_banner, message_list};
use crate::route::Route;
use sotto_messenger::{ChatMessage, Contact, ContactNotice, ConversationId};
use yew::prelude::*;

pub struct Props<'a> {
    pub conversation: ConversationId,
    /// The other person.
    pub contact: &'a Contact,
    /// See [`key_banner`].
    pub other_name: Option<String>,
    pub messages: &'a [ChatMessage],
    /// Storage holds earlier messages than these.
    pub earlier: bool,
    pub files: &'a crate::files::Files,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let (to, c) = (props.conversation, props.contact);
    html! {
        <section key={c.address.to_hex()} class="conversation" aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(&c.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ c.name.clone() }</h2>
                    <span class="muted small">{ if c.verified { "Verified ✓" } else { "Not verified" } }</span>
                </div>
                <a class="button secondary" href={Route::Safety(c.address).hash()}>{ "Safety number" }</a>
            </header>
            { key_banner(c, props.other_name.as_deref()) }
            { message_list(
                format!("Messages with {}", c.name),
                format!("This is the start of your encrypted chat with {}.", c.name),
                props.messages,
                props.earlier,
                &Marks { name: &|_| String::new(), reads: &|_| None, report: None, files: props.files, conversation: to },
                &props.on_action,
            ) }
            if c.notice != Some(ContactNotice::InviteUsed) {
                { composer(to, props.files, &props.on_action) }
            }
        </section>
    }
}
