//! Who you are, notifications, the passphrase and backups.

use crate::action::Action;
use crate::components::back_link;
use crate::dom::input_value;
use sotto_engine::consts::MIN_PASSPHRASE_CHARS;
use sotto_messenger::Profile;
use yew::prelude::*;

pub struct Props<'a> {
    pub profile: &'a Profile,
    /// Our identity key's fingerprint.
    pub fingerprint: String,
    pub has_passphrase: bool,
    pub busy: bool,
    /// The code of the backup just saved, to write down.
    pub backup_code: Option<&'a str>,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let p = props.profile;
    let set_pass = props.on_action.reform(|e: SubmitEvent| {
        e.prevent_default();
        let pass = input_value("settings-passphrase");
        if pass.chars().count() < MIN_PASSPHRASE_CHARS {
            Action::Toast(Some(format!("Use a passphrase of at least {MIN_PASSPHRASE_CHARS} characters.")))
        } else {
            Action::SetPassphrase(Some(pass))
        }
    });
    let remove_pass = props.on_action.reform(|_| Action::SetPassphrase(None));
    let export = props.on_action.reform(|e: SubmitEvent| {
        e.prevent_default();
        let pass = input_value("export-passphrase");
        if pass.chars().count() < MIN_PASSPHRASE_CHARS {
            Action::Toast(Some(format!(
                "Use a backup passphrase of at least {MIN_PASSPHRASE_CHARS} characters."
            )))
        } else {
            Action::Export(Some(pass))
        }
    });
    let export_with_code = props.on_action.reform(|_| Action::Export(None));
    let (on, previews) = (p.notifications, p.previews);
    let notify = props.on_action.reform(move |_| {
        if on { Action::SetNotifications { on: false, previews } } else { Action::AskNotifications }
    });
    let toggle_previews =
        props.on_action.reform(move |_| Action::SetNotifications { on, previews: !previews });
    let (busy, has_passphrase) = (props.busy, props.has_passphrase);
    html! {
        <section class="sheet" aria-labelledby="settings-title">
            <header class="pane-head">{ back_link() }<h2 id="settings-title">{ "Settings" }</h2></header>
            <div class="sheet-body">
                <section class="group">
                    <h3>{ "You" }</h3>
                    <p><strong>{ p.display_name.clone() }</strong></p>
                    <p class="key"><span class="key-label">{ "Your key" }</span><code>{ props.fingerprint.clone() }</code></p>
                </section>
                <section class="group">
                    <h3>{ "Notifications" }</h3>
                    <label class="check"><input type="checkbox" checked={p.notifications} onchange={notify} />
                        { "Desktop notifications while Sotto is in the background" }</label>
                    <label class="check"><input type="checkbox" checked={p.previews} disabled={!p.notifications} onchange={toggle_previews} />
                        { "Show message text in notifications" }</label>
                </section>
                <section class="group">
                    <h3>{ "Passphrase" }</h3>
                    <p class="hint small">{ if has_passphrase { "Sotto's data in this browser is locked with a passphrase." } else { "Anyone using this browser profile can open Sotto. A passphrase encrypts its data here." } }</p>
                    <form onsubmit={set_pass} class="copy-row">
                        <input id="settings-passphrase" type="password" autocomplete="new-password" aria-label="New passphrase" />
                        <button type="submit" disabled={busy}>{ if has_passphrase { "Change" } else { "Set" } }</button>
                    </form>
                    if has_passphrase {
                        <button class="secondary" onclick={remove_pass} disabled={busy}>{ "Remove passphrase" }</button>
                    }
                </section>
                <section class="group">
                    <h3>{ "Backup" }</h3>
                    <p class="hint small">{ "An encrypted file with your identity, contacts and history, locked with a code Sotto makes for you. Restoring it elsewhere moves Sotto there: stop using this copy afterwards." }</p>
                    if let Some(code) = props.backup_code {
                        <div class="backup-code" role="status">
                            <p>{ "Write this code down and keep it apart from the file. Nothing else opens the backup, and Sotto will not show it again." }</p>
                            <code data-testid="backup-code">{ code }</code>
                        </div>
                    }
                    <button onclick={export_with_code} disabled={busy}>{ if busy { "Working…" } else { "Download backup" } }</button>
                    <details>
                        <summary>{ "Use a passphrase of my own instead" }</summary>
                        <p class="hint small">{ "Only as strong as the passphrase: anyone who gets the file can try guesses offline." }</p>
                        <form onsubmit={export} class="copy-row">
                            <input id="export-passphrase" type="password" autocomplete="new-password" aria-label="Backup passphrase" />
                            <button type="submit" disabled={busy}>{ "Download with this passphrase" }</button>
                        </form>
                    </details>
                </section>
            </div>
        </section>
    }
}
