//! An opened channel link: what the channel is, and following it.

use crate::action::Action;
use crate::route::Route;
use sotto_engine::channel::ChannelLink;
use sotto_messenger::{ConversationId, MessengerError};
use yew::prelude::*;

pub struct Props {
    pub payload: String,
    pub preview: Result<ChannelLink, MessengerError>,
    /// The epoch of the link we hold, if we follow (or run) it already.
    pub following: Option<u32>,
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
                    if props.following.is_some_and(|e| e < link.epoch) {
                        <p>{ "This is a newer link of a channel you follow: the owner made it to cut off old links. Posts from now on need it." }</p>
                        <div class="actions">
                            <button onclick={follow}>{ "Use this new link" }</button>
                            <a class="button secondary" href={open}>{ "Open channel" }</a>
                        </div>
                    } else if props.following.is_some() {
                        <a class="button" href={open}>{ "Open channel" }</a>
                    } else {
                        <p class="muted">{ "A channel: its admins post, you read. The relay does not learn who you are: it counts followers by a token made for this channel alone." }</p>
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
