//! An opened group invite link: what group it is into, and asking to join it.

use crate::action::Action;
use crate::route::Route;
use sotto_messenger::doors::LinkPreview;
use sotto_messenger::{ConversationId, MessengerError};
use yew::prelude::*;

/// Where we stand with the group a link is into.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Outside,
    /// We asked; an admin's device lets us in.
    Asked,
    Member,
}

pub struct Props {
    pub payload: String,
    pub preview: Result<LinkPreview, MessengerError>,
    pub standing: Standing,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props) -> Html {
    let content = match &props.preview {
        Err(e) => html! {
            <>
                <h2 id="join-title">{ "This group link cannot be used" }</h2>
                <p class="error" role="alert" data-testid="join-error">{ e.to_string() }</p>
                <a class="button secondary" href="#/">{ "Go to your chats" }</a>
            </>
        },
        Ok(p) => {
            let name = p.link.name.clone();
            let open = Route::Chat(ConversationId::Group(p.link.group)).hash();
            let ask = {
                let payload = props.payload.clone();
                props.on_action.reform(move |_| Action::AskToJoin(payload.clone()))
            };
            match props.standing {
                Standing::Member => html! {
                    <>
                        <h2 id="join-title">{ format!("You are in {name}") }</h2>
                        <a class="button" href={open}>{ "Open group" }</a>
                    </>
                },
                Standing::Asked => html! {
                    <>
                        <h2 id="join-title">{ format!("You asked to join {name}") }</h2>
                        <p role="status" data-testid="join-waiting">{ "An admin's device lets you in when it is online (or once an admin approves). The group appears in your chats then." }</p>
                        <a class="button secondary" href="#/">{ "Go to your chats" }</a>
                    </>
                },
                Standing::Outside => html! {
                    <>
                        <h2 id="join-title">{ format!("Join {name}?") }</h2>
                        <p>{ "The group is end-to-end encrypted. Its admins see your name and key; the relay learns neither who you are nor which group you join." }</p>
                        <div class="actions">
                            <button onclick={ask}>{ "Ask to join" }</button>
                            <a class="button secondary" href="#/">{ "Not now" }</a>
                        </div>
                    </>
                },
            }
        }
    };
    html! {
        <section class="sheet center-sheet" aria-labelledby="join-title">
            <div class="card">{ content }</div>
        </section>
    }
}
