//! A group's chat: its messages, each incoming one under its author's name, and the composer
//! (gone once we left or were removed).

use crate::action::Action;
use crate::components::{
    Composing, Marks, back_link, chat_menu, composer, initial, message_list, secret_mark,
};
use crate::route::Route;
use sotto_engine::sender_keys::GroupId;
use sotto_messenger::{ChatMessage, ConversationId};
use yew::prelude::*;

pub struct Props<'a> {
    pub id: GroupId,
    pub name: &'a str,
    pub members: usize,
    /// We left or were removed.
    pub gone: bool,
    pub messages: &'a [ChatMessage],
    /// Storage holds earlier messages than these.
    pub earlier: bool,
    pub files: &'a crate::files::Files,
    /// A member's name, from their identity key.
    pub name_of: &'a dyn Fn(&[u8; 32]) -> String,
    /// How many read a message of ours, of how many.
    pub reads: &'a crate::components::Reads<'a>,
    /// The disappearing-message timer, in seconds.
    pub timer: Option<u32>,
    pub composing: Option<&'a Composing>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let conversation = ConversationId::Group(props.id);
    let members =
        if props.members == 1 { "1 member".to_string() } else { format!("{} members", props.members) };
    html! {
        <section key={conversation.to_string()} class={classes!("conversation", props.timer.map(|_| "secret-chat"))}
            aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(props.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ props.name }{ secret_mark(props.timer) }</h2>
                    <span class="muted small" data-testid="group-members">{ members }</span>
                </div>
                <a class="button secondary" href={Route::GroupInfo(props.id).hash()}>{ "Group info" }</a>
                { chat_menu(conversation, props.timer, &props.on_action) }
            </header>
            { message_list(
                format!("Messages in {}", props.name),
                format!("This is the start of {}: only its members can read it.", props.name),
                props.messages,
                props.earlier,
                &Marks {
                    name: props.name_of,
                    them: "",
                    reads: props.reads,
                    report: None,
                    files: props.files,
                    conversation,
                    writable: !props.gone,
                },
                &props.on_action,
            ) }
            if props.gone {
                <p class="warning" role="note" data-testid="group-gone">{ "You are no longer in this group." }</p>
            } else {
                { composer(conversation, props.files, props.composing, &props.on_action) }
            }
        </section>
    }
}
