//! The app's root component and its first screen.

use crate::onboarding::validate_display_name;
use sotto_engine::Identity;
use sotto_engine::identity::fingerprint;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// The identity made for this visit. Made on load so the keys exist before the person commits
/// to a name: the page proves, visibly, that keys are born in the browser.
enum KeyState {
    Ready { identity: Box<Identity>, fingerprint: String },
    Failed(String),
}

fn make_key() -> KeyState {
    match Identity::generate() {
        Ok(identity) => {
            let fingerprint = fingerprint(&identity.public());
            KeyState::Ready { identity: Box::new(identity), fingerprint }
        }
        Err(e) => KeyState::Failed(e.to_string()),
    }
}

#[function_component(App)]
pub fn app() -> Html {
    let key = use_memo((), |_| make_key());
    let name = use_state(String::new);
    let error = use_state(|| None::<String>);
    let created = use_state(|| None::<String>);

    let on_input = {
        let name = name.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            name.set(e.target_unchecked_into::<HtmlInputElement>().value());
            error.set(None);
        })
    };
    let on_submit = {
        let name = name.clone();
        let error = error.clone();
        let created = created.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match validate_display_name(&name) {
                Ok(n) => created.set(Some(n)),
                Err(err) => error.set(Some(err.to_string())),
            }
        })
    };

    let key_line = match &*key {
        KeyState::Ready { fingerprint, .. } => html! {
            <p class="key" data-testid="key-fingerprint">
                <span class="key-label">{ "Your new key, made in this browser:" }</span>
                <code>{ fingerprint.clone() }</code>
            </p>
        },
        KeyState::Failed(e) => {
            html! { <p class="error" role="alert">{ format!("Sotto cannot run here: {e}") }</p> }
        }
    };

    let body = if let Some(display_name) = &*created {
        let address = match &*key {
            KeyState::Ready { identity, .. } => identity.address().to_hex(),
            KeyState::Failed(_) => String::new(),
        };
        html! {
            <section class="card" aria-labelledby="welcome-title" data-testid="welcome">
                <h2 id="welcome-title">{ format!("Welcome, {display_name}") }</h2>
                <p>{ "Your identity exists only on this device. Nobody, including this relay, can read your messages." }</p>
                <p class="address"><span class="key-label">{ "Mailbox address" }</span><code>{ address }</code></p>
            </section>
        }
    } else {
        html! {
            <form class="card" onsubmit={on_submit} aria-labelledby="create-title" novalidate=true>
                <h2 id="create-title">{ "Create your identity" }</h2>
                <p class="hint">{ "No phone number, no e-mail. Pick the name your contacts will see." }</p>
                <label for="display-name">{ "Display name" }</label>
                <input
                    id="display-name"
                    name="display-name"
                    type="text"
                    autocomplete="nickname"
                    maxlength="64"
                    placeholder="e.g. Ada"
                    value={(*name).clone()}
                    oninput={on_input}
                    aria-invalid={error.is_some().to_string()}
                    aria-describedby="name-error"
                />
                <p id="name-error" class="error" role="alert">{ (*error).clone().unwrap_or_default() }</p>
                <button type="submit" disabled={matches!(&*key, KeyState::Failed(_))}>{ "Create your identity" }</button>
                { key_line }
            </form>
        }
    };

    html! {
        <main class="onboarding">
            <header class="brand">
                <img src="/icon.svg" alt="" width="56" height="56" />
                <h1>{ "Sotto" }</h1>
                <p class="tagline">{ "Private messages, end-to-end encrypted in your browser. Share a link, start talking." }</p>
            </header>
            { body }
            <footer class="foot">{ "Keys never leave this device. The relay only ever sees sealed envelopes." }</footer>
        </main>
    }
}
