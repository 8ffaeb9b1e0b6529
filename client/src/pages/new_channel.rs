//! Making a channel: its name and what it is about.

use crate::action::Action;
use crate::components::back_link;
use crate::dom::input_value;
use yew::prelude::*;

const NAME: &str = "channel-name";
const DESCRIPTION: &str = "channel-description";

pub fn view(on_action: &Callback<Action>) -> Html {
    let on_submit = on_action.reform(|e: SubmitEvent| {
        e.prevent_default();
        Action::CreateChannel { name: input_value(NAME), description: input_value(DESCRIPTION) }
    });
    html! {
        <section class="sheet" aria-labelledby="new-channel-title">
            <header class="pane-head">
                { back_link() }
                <div class="pane-title"><h2 id="new-channel-title">{ "New channel" }</h2></div>
            </header>
            <form class="sheet-body" onsubmit={on_submit}>
                <p class="muted">{ "A channel broadcasts to everyone who has its link. Only you post; posts are encrypted and signed, and the relay never learns who follows." }</p>
                <label for={NAME}>{ "Channel name" }</label>
                <input type="text" id={NAME} required=true maxlength="64" autocomplete="off" />
                <label for={DESCRIPTION}>{ "Description (optional)" }</label>
                <input type="text" id={DESCRIPTION} maxlength="280" autocomplete="off" />
                <button type="submit">{ "Create channel" }</button>
            </form>
        </section>
    }
}
