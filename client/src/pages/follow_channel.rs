//! An opened channel link: what the channel is, and following it.

use crate::action::Action;
use crate::route::Route;
use sotto_engine::channel::ChannelLink;
use sotto_messenger::{ConversationId, MessengerError};
use yew::prelude::*;

pub struct Props {
    pub payload: String,
    pub preview: Result<ChannelLink, MessengerError>,
    /// We follow (or run) it already.
    pub following: bool,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props) -> Html {
    let content = match &props.preview {
        Err(e) => html! {
            <>
                <h2 id="follow-title">{ "This channel link cannot be used" }</h2>
                <p class="error" role="alert">{ e.to_string() }</p>
                <a class="button secondary" href="#/">{ "Go to your chats" }</a>
            </>
        },
        Ok(link) => {
            let open = Route::Chat(ConversationId::Channel(link.id)).hash();
            let follow = {
                let payload = props.payload.clone();
                props.on_action.reform(move |_| Action::FollowChannel(payload.clone()))
            };
            html! {
                <>
                    <h2 id="follow-title">{ link.name.clone() }</h2>
                    if !link.description.is_empty() {
                        <p>{ link.description.clone() }</p>
                    }
                    if props.following {
                        <a class="button" href={open}>{ "Open channel" }</a>
                    } else {
                        <p class="muted">{ "A channel: its admins post, you read. Nobody, not even the relay, learns that you follow it." }</p>
                        <div class="actions">
                            <button onclick={follow}>{ "Follow" }</button>
                            <a class="button secondary" href="#/">{ "Not now" }</a>
                        </div>
                    }
                </>
            }
        }
    };
    html! {
        <section class="sheet center-sheet" aria-labelledby="follow-title">
            <div class="card">{ content }</div>
        </section>
    }
}
