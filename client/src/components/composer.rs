//! The message composer of a chat: Enter sends, Shift+Enter breaks the line, and what is typed
//! is kept as the chat's draft. Files come by the attach button, by dropping them on the chat
//! or by pasting; the microphone records a voice message.

use crate::action::{Action, MessageAction};
use crate::dom::{COMPOSER, take_composer, target};
use crate::files::Files;
use sotto_engine::consts::MAX_TEXT_BYTES;
use sotto_messenger::ConversationId;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, FileList, HtmlInputElement, HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;

fn list(files: Option<FileList>) -> Vec<web_sys::File> {
    files.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect()).unwrap_or_default()
}

/// Handlers that take files dropped on an element (`ondragover`, `ondrop`).
pub fn drop_files(
    to: ConversationId,
    on_action: &Callback<Action>,
) -> (Callback<DragEvent>, Callback<DragEvent>) {
    let over = Callback::from(|e: DragEvent| e.prevent_default());
    let on_action = on_action.clone();
    let dropped = Callback::from(move |e: DragEvent| {
        e.prevent_default();
        let files = list(e.data_transfer().and_then(|d| d.files()));
        if !files.is_empty() {
            on_action.emit(Action::Attach(to, files));
        }
    });
    (over, dropped)
}

/// What the composer's next text does besides being sent: answer a message, or replace one.
#[derive(Clone, PartialEq)]
pub struct Composing {
    pub editing: bool,
    /// Who wrote the message, and its words.
    pub author: String,
    pub text: String,
}

pub fn composer(
    to: ConversationId,
    files: &Files,
    composing: Option<&Composing>,
    on_action: &Callback<Action>,
) -> Html {
    if let Some((_, _, started)) = files.recording.as_ref().filter(|(c, _, _)| *c == to) {
        let secs = ((js_sys::Date::now() - started) / 1000.0).max(0.0) as u64;
        return html! {
            <div class="composer recording" data-testid="recording">
                <span class="rec-dot" aria-hidden="true" />
                <span role="timer" aria-live="off">{ format!("Recording {}:{:02}", secs / 60, secs % 60) }</span>
                <button class="secondary" onclick={on_action.reform(|_| Action::StopRecording(false))}>{ "Cancel" }</button>
                <button onclick={on_action.reform(|_| Action::StopRecording(true))} data-testid="send-voice">{ "Send" }</button>
            </div>
        };
    }
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
    let picked = on_action.reform(move |e: Event| {
        let input = target::<HtmlInputElement>(&e);
        let files = list(input.as_ref().and_then(HtmlInputElement::files));
        if let Some(i) = input {
            i.set_value("");
        }
        Action::Attach(to, files)
    });
    let on_paste = {
        let on_action = on_action.clone();
        Callback::from(move |e: Event| {
            let files = list(
                e.dyn_ref::<web_sys::ClipboardEvent>()
                    .and_then(|c| c.clipboard_data())
                    .and_then(|d| d.files()),
            );
            if !files.is_empty() {
                e.prevent_default();
                on_action.emit(Action::Attach(to, files));
            }
        })
    };
    let (over, dropped) = drop_files(to, on_action);
    let bar = composing.map(|c| {
        let what = if c.editing { "Editing".to_string() } else { format!("Replying to {}", c.author) };
        let stop = on_action.reform(move |_| Action::Message(to, MessageAction::StopComposing));
        html! {
            <div class="composing" data-testid="composing">
                <div><strong>{ what }</strong><span>{ c.text.clone() }</span></div>
                <button type="button" class="icon-button" aria-label="Cancel" onclick={stop}>{ "×" }</button>
            </div>
        }
    });
    html! {
        <>
        { for bar }
        <form class="composer" onsubmit={on_submit} ondragover={over} ondrop={dropped}>
            <label class="icon-button attach" title="Attach files">
                { super::icon(super::PAPERCLIP) }
                <input type="file" multiple=true class="visually-hidden" aria-label="Attach files" onchange={picked}
                    data-testid="attach" />
            </label>
            <textarea id={COMPOSER} rows="1" aria-label="Message" placeholder="Message" onkeydown={on_key} oninput={on_input}
                onpaste={on_paste} maxlength={MAX_TEXT_BYTES.to_string()} />
            <button type="button" class="icon-button" aria-label="Record a voice message" title="Record a voice message"
                onclick={on_action.reform(move |_| Action::Record(to))} data-testid="record">{ super::icon(super::MICROPHONE) }</button>
            <button type="submit" aria-label="Send">{ "Send" }</button>
        </form>
        </>
    }
}
