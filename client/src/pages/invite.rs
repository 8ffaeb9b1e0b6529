//! Invite links: making one to send, and what an opened one offers.

use crate::action::Action;
use crate::components::{back_link, initial, qr_code};
use crate::dom::{copy, target};
use crate::route::Route;
use sotto_messenger::{ConversationId, InvitePreview, MessengerError};
use web_sys::HtmlInputElement;
use yew::prelude::*;

pub struct NewInviteProps {
    /// The link made last, if any.
    pub link: Option<String>,
    pub on_action: Callback<Action>,
}

pub fn new_invite(props: &NewInviteProps) -> Html {
    let make = props.on_action.reform(|_| Action::MakeInvite);
    let body = match &props.link {
        None => html! {
            <>
                <p>{ "A contact link works once, for 7 days. Whoever opens it first can start an encrypted chat with you, so send it only to the person you mean, over a channel you trust." }</p>
                <button onclick={make}>{ "Create invite link" }</button>
            </>
        },
        Some(link) => {
            let on_copy = {
                let (link, on_action) = (link.clone(), props.on_action.clone());
                Callback::from(move |_: MouseEvent| {
                    let (link, on_action) = (link.clone(), on_action.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        on_action.emit(Action::Toast(Some(if copy(link).await {
                            "Link copied.".into()
                        } else {
                            "This browser did not allow copying: select the link and copy it.".into()
                        })));
                    });
                })
            };
            html! {
                <>
                    <label for="invite-link">{ "Invite link" }</label>
                    <div class="copy-row">
                        <input id="invite-link" type="text" readonly=true value={link.clone()} data-testid="invite-link"
                            onfocus={Callback::from(|e: FocusEvent| if let Some(i) = target::<HtmlInputElement>(&e) { i.select() })} />
                        <button onclick={on_copy}>{ "Copy link" }</button>
                    </div>
                    { qr_code(link.as_bytes(), "QR code of the invite link") }
                    <p class="hint small">{ "The secret part of the link (after #) never reaches any server." }</p>
                    <button class="secondary" onclick={make}>{ "Make another link" }</button>
                </>
            }
        }
    };
    html! {
        <section class="sheet" aria-labelledby="invite-title">
            <header class="pane-head">{ back_link() }<h2 id="invite-title">{ "Invite someone" }</h2></header>
            <div class="sheet-body">{ body }</div>
        </section>
    }
}

pub struct InviteProps {
    /// The opened link, checked.
    pub preview: Result<InvitePreview, MessengerError>,
    pub on_action: Callback<Action>,
}

pub fn opened(props: &InviteProps) -> Html {
    let content = match &props.preview {
        Err(e) => html! {
            <>
                <h2 id="invite-title">{ "This invite cannot be used" }</h2>
                <p class="error" role="alert" data-testid="invite-error">{ e.to_string() }</p>
                <a class="button secondary" href="#/">{ "Go to your chats" }</a>
            </>
        },
        Ok(p) if p.known => {
            let open = Route::Chat(ConversationId::Direct(p.address)).hash();
            html! {
                <>
                    <h2 id="invite-title">{ format!("{} is already in your chats", p.invite.display_name) }</h2>
                    <a class="button" href={open}>{ "Open chat" }</a>
                </>
            }
        }
        Ok(p) => {
            let name = p.invite.display_name.clone();
            let preview = p.clone();
            let accept = props.on_action.reform(move |_| Action::Accept(Box::new(preview.clone())));
            html! {
                <>
                    <div class="avatar big" aria-hidden="true">{ initial(&name) }</div>
                    <h2 id="invite-title">{ format!("{name} invites you to chat") }</h2>
                    <p>{ "Accepting starts an end-to-end encrypted chat. Only the two of you can read it." }</p>
                    <p class="key"><span class="key-label">{ format!("{name}'s key") }</span><code>{ p.fingerprint.clone() }</code></p>
                    <div class="actions">
                        <button onclick={accept}>{ "Accept" }</button>
                        <a class="button secondary" href="#/">{ "Not now" }</a>
                    </div>
                </>
            }
        }
    };
    html! {
        <section class="sheet center-sheet" aria-labelledby="invite-title">
            <div class="card">{ content }</div>
        </section>
    }
}
