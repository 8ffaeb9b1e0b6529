//! The passphrase prompt when Sotto opens.

use crate::action::Action;
use crate::components::brand;
use crate::dom::input_value;
use yew::prelude::*;

pub struct Props {
    pub busy: bool,
    pub form_error: Option<String>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props) -> Html {
    let on_action = props.on_action.clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        on_action.emit(Action::Unlock(input_value("unlock-passphrase")));
    });
    let busy = props.busy;
    html! {
        <main class="onboarding">
            { brand() }
            <form class="card" onsubmit={on_submit} aria-labelledby="unlock-title">
                <h2 id="unlock-title">{ "Sotto is locked" }</h2>
                <label for="unlock-passphrase">{ "Passphrase" }</label>
                <input id="unlock-passphrase" type="password" autocomplete="current-password" autofocus=true />
                <p class="error" role="alert">{ props.form_error.clone().unwrap_or_default() }</p>
                <button type="submit" disabled={busy}>{ if busy { "Unlocking…" } else { "Unlock" } }</button>
            </form>
        </main>
    }
}
