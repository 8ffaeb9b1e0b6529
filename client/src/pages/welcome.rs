//! The first screen: create an identity, or restore one from a backup.

use crate::action::Action;
use crate::components::brand;
use crate::dom::{chosen_file, input_value};
use sotto_messenger::names::validate;
use sotto_messenger::profile::MAX_DISPLAY_NAME_CHARS;
use yew::prelude::*;

pub struct Props {
    /// The name in the invite link that brought the person here, if any.
    pub invited_by: Option<String>,
    pub busy: bool,
    pub form_error: Option<String>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props) -> Html {
    let on_action = props.on_action.clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let passphrase = input_value("new-passphrase");
        on_action.emit(match validate(&input_value("display-name")) {
            Ok(name) => Action::Create { name, passphrase: (!passphrase.is_empty()).then_some(passphrase) },
            Err(err) => Action::Toast(Some(err.to_string())),
        });
    });
    let busy = props.busy;
    html! {
        <main class="onboarding">
            { brand() }
            if let Some(name) = &props.invited_by {
                <p class="banner" data-testid="invited-by">{ format!("{name} invited you. Create your identity to accept.") }</p>
            }
            <form class="card" onsubmit={on_submit} aria-labelledby="create-title" novalidate=true>
                <h2 id="create-title">{ "Create your identity" }</h2>
                <p class="hint">{ "No phone number, no e-mail. Pick the name your contacts will see." }</p>
                <label for="display-name">{ "Display name" }</label>
                <input id="display-name" type="text" autocomplete="nickname" maxlength={MAX_DISPLAY_NAME_CHARS.to_string()} placeholder="e.g. Ada" required=true />
                <label for="new-passphrase">{ "Passphrase (optional)" }</label>
                <input id="new-passphrase" type="password" autocomplete="new-password"
                    aria-describedby="passphrase-hint" />
                <p id="passphrase-hint" class="hint small">{ "Encrypts what Sotto keeps in this browser; asked for each time Sotto opens. It cannot be recovered." }</p>
                <button type="submit" disabled={busy}>{ if busy { "Creating keys…" } else { "Create your identity" } }</button>
            </form>
            { restore_form(props) }
            <footer class="foot">{ "Keys never leave this device. The relay only ever sees sealed envelopes." }</footer>
        </main>
    }
}

fn restore_form(props: &Props) -> Html {
    let on_action = props.on_action.clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        on_action.emit(match chosen_file("backup-file") {
            Some(f) => Action::Import(f, input_value("backup-passphrase")),
            None => Action::Toast(Some("Choose a backup file first.".into())),
        });
    });
    html! {
        <details class="card">
            <summary>{ "Restore from a backup" }</summary>
            <form onsubmit={on_submit} class="stack">
                <p class="hint small">{ "This replaces any identity in this browser. Stop using Sotto where the backup was made." }</p>
                <label for="backup-file">{ "Backup file" }</label>
                <input id="backup-file" type="file" accept=".sotto,application/octet-stream" />
                <label for="backup-passphrase">{ "Backup code or passphrase" }</label>
                <input id="backup-passphrase" type="password" autocomplete="current-password" />
                <p class="error" role="alert">{ props.form_error.clone().unwrap_or_default() }</p>
                <button type="submit" class="secondary" disabled={props.busy}>{ "Restore" }</button>
            </form>
        </details>
    }
}
