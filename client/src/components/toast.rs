//! A passing message, dismissable.

use crate::action::Action;
use yew::prelude::*;

pub fn toast(text: &str, on_action: &Callback<Action>) -> Html {
    html! {
        <div class="toast" role="alert">
            <span>{ text.to_string() }</span>
            <button class="ghost" aria-label="Dismiss" onclick={on_action.reform(|_| Action::Toast(None))}>{ "✕" }</button>
        </div>
    }
}
