//! One conversation: its messages (the loaded ones, with a way back to earlier pages) and the
//! composer, held back while a warning about the contact's key waits for an answer.

use crate::action::Action;
use crate::components::{
    Composing, Marks, back_link, chat_menu, composer, initial, key_banner, message_list, secret_mark,
};
use crate::route::Route;
use sotto_messenger::{ChatMessage, Contact, ConversationId};
use yew::prelude::*;

pub struct Props<'a> {
    pub conversation: ConversationId,
    /// The other person.
    pub contact: &'a Contact,
    /// See [`key_banner`].
    pub other_name: Option<String>,
    /// Our identity key (notices name it).
    pub me: [u8; 32],
    pub messages: &'a [ChatMessage],
    /// Storage holds earlier messages than these.
    pub earlier: bool,
    pub files: &'a crate::files::Files,
    /// The disappearing-message timer, in seconds.
    pub timer: Option<u32>,
    pub composing: Option<&'a Composing>,
    /// The other person is writing.
    pub typing: bool,
    /// We may write here now.
    pub writable: bool,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let (to, c) = (props.conversation, props.contact);
    let name_of = |key: &[u8; 32]| if *key == props.me { "You".to_string() } else { c.name.clone() };
    let status = match (props.typing, c.verified) {
        (true, _) => "writing…",
        (false, true) => "Verified ✓",
        (false, false) => "Not verified",
    };
    html! {
        <section key={c.address.to_hex()} class={classes!("conversation", props.timer.map(|_| "secret-chat"))}
            aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(&c.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ c.name.clone() }{ secret_mark(props.timer) }</h2>
                    <span class="muted small" data-testid="chat-status">{ status }</span>
                </div>
                <a class="button secondary" href={Route::Safety(c.address).hash()}>{ "Safety number" }</a>
                { chat_menu(to, props.timer, &props.on_action) }
            </header>
            { key_banner(c, props.other_name.as_deref(), &props.on_action) }
            { message_list(
                format!("Messages with {}", c.name),
                format!("This is the start of your encrypted chat with {}.", c.name),
                props.messages,
                props.earlier,
                &Marks {
                    name: &name_of,
                    them: &c.name,
                    reads: &|_| None,
                    report: None,
                    files: props.files,
                    conversation: to,
                    writable: props.writable,
                },
                &props.on_action,
            ) }
            if c.notice.is_none() {
                { composer(to, props.files, props.composing, &props.on_action) }
            }
        </section>
    }
}
