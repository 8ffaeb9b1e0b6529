//! What a chat's header offers beside its title: the disappearing-message timer (with a mark
//! while it is on) and exporting the chat.

use crate::action::Action;
use crate::dates::span;
use crate::dom::{close_menu, target};
use sotto_engine::consts::DISAPPEARING_TIMERS;
use sotto_messenger::ConversationId;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

/// "⏱ 1h" in a chat's header while its messages disappear.
pub fn secret_mark(timer: Option<u32>) -> Html {
    match timer {
        Some(s) => html! {
            <span class="secret" data-testid="secret-mark" title="Messages disappear after they are read">
                { format!("⏱ {}", span(u64::from(s))) }
            </span>
        },
        None => Html::default(),
    }
}

/// The chat's menu: its timer and an export.
pub fn chat_menu(to: ConversationId, timer: Option<u32>, on_action: &Callback<Action>) -> Html {
    let changed = on_action.reform(move |e: Event| {
        let value = target::<HtmlSelectElement>(&e).map(|s| s.value()).unwrap_or_default();
        close_menu(&e);
        Action::SetTimer(to, value.parse().ok())
    });
    let export = {
        let on_action = on_action.clone();
        Callback::from(move |e: MouseEvent| {
            close_menu(&e);
            on_action.emit(Action::ExportChat(to));
        })
    };
    html! {
        <details class="menu chat-menu">
            <summary class="icon-button" aria-label="Chat settings" title="Chat settings" data-testid="chat-menu">{ "⋯" }</summary>
            <div class="menu-items">
                <label>
                    { "Disappearing messages" }
                    <select onchange={changed} data-testid="timer">
                        <option value="off" selected={timer.is_none()}>{ "Off" }</option>
                        { for DISAPPEARING_TIMERS.iter().map(|s| html! {
                            <option value={s.to_string()} selected={timer == Some(*s)}>{ span(u64::from(*s)) }</option>
                        }) }
                    </select>
                </label>
                <button type="button" class="secondary" onclick={export} data-testid="export">{ "Export chat" }</button>
            </div>
        </details>
    }
}
