//! What shows before the messenger runs: opening, another tab leads, or nothing can work.

use crate::action::Action;
use yew::prelude::*;

pub fn starting() -> Html {
    // Keyed, so the next screen replaces this element instead of reshaping it: morphing the
    // full-width `main` into the narrow first screen was a layout shift of 0.33 on desktop.
    html! { <main key="starting" class="center"><p class="muted" role="status">{ "Opening Sotto…" }</p></main> }
}

/// `taken_over`: this tab led until another took over (rather than waiting from the start).
pub fn other_tab(taken_over: bool, on_action: &Callback<Action>) -> Html {
    let text = if taken_over {
        "Sotto was opened in another tab, so this one stopped."
    } else {
        "Sotto is open in another tab. One tab at a time keeps your encrypted sessions consistent."
    };
    html! {
        <main class="center"><section class="card">
            <h2>{ "Open in another tab" }</h2>
            <p>{ text }</p>
            <button onclick={on_action.reform(|_| Action::UseHere)}>{ "Use Sotto in this tab" }</button>
        </section></main>
    }
}

pub fn fatal(message: &str) -> Html {
    html! {
        <main class="center"><section class="card">
            <h2>{ "Sotto cannot continue" }</h2>
            <p role="alert" class="error">{ message.to_string() }</p>
            <p class="muted">{ "Reload the page to try again." }</p>
        </section></main>
    }
}
