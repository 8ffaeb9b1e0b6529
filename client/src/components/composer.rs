//! The message composer of a chat (direct or group): Enter sends, Shift+Enter breaks the line,
//! and what is typed is kept as the chat's draft.

use crate::action::Action;
use crate::dom::{COMPOSER, take_composer, target};
use sotto_engine::consts::MAX_TEXT_BYTES;
use sotto_messenger::ConversationId;
use web_sys::{HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;

pub fn composer(to: ConversationId, on_action: &Callback<Action>) -> Html {
    let send = {
        let on_action = on_action.clone();
        move || {
            if let Some(text) = take_composer()
                && !text.trim().is_empty()
            {
                on_action.emit(Action::SendText(to, text));
            }
        }
    };
    let on_input = on_action.reform(move |e: InputEvent| {
        Action::Draft(to, target::<HtmlTextAreaElement>(&e).map(|a| a.value()).unwrap_or_default())
    });
    let send_key = send.clone();
    let on_key = Callback::from(move |e: KeyboardEvent| {
        // Enter while composing (IME) is left alone.
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            send_key();
        }
    });
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        send();
    });
    html! {
        <form class="composer" onsubmit={on_submit}>
            <textarea id={COMPOSER} rows="1" aria-label="Message" placeholder="Message" onkeydown={on_key} oninput={on_input}
                maxlength={MAX_TEXT_BYTES.to_string()} />
            <button type="submit" aria-label="Send">{ "Send" }</button>
        </form>
    }
}
