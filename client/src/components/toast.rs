//! A passing message, dismissable.

use crate::action::Action;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub text: String,
    pub on_action: Callback<Action>,
}

#[function_component(Toast)]
pub fn toast(props: &Props) -> Html {
    html! {
        <div class="toast" role="alert">
            <span>{ props.text.clone() }</span>
            <button class="ghost" aria-label="Dismiss" onclick={props.on_action.reform(|_| Action::Toast(None))}>{ "✕" }</button>
        </div>
    }
}
