//! A channel's page: its posts with their view counts (each incoming one can be reported), the
//! composer for its owner, and an "About" panel with the description, the link to share, mute,
//! a new link and leaving. A channel the relay's operator blocked says so, with the reason.

use crate::action::Action;
use crate::components::{Marks, Reads, back_link, composer, initial, message_list, qr_code};
use crate::route::Route;
use sotto_messenger::{ChatMessage, ConversationId};
use sotto_shared::Address;
use sotto_shared::channel::ChannelId;
use yew::prelude::*;

pub struct Props<'a> {
    pub id: ChannelId,
    pub name: &'a str,
    pub description: &'a str,
    pub subscribers: u64,
    pub owner: bool,
    /// We may post (the owner, or an admin on the newest list).
    pub may_post: bool,
    /// If we own it: our admins, and the contacts who could be (address and name).
    pub admins: Vec<(Address, String)>,
    pub candidates: Vec<(Address, String)>,
    pub muted: bool,
    pub blocked: Option<&'a str>,
    /// The whole link to share.
    pub link: String,
    pub messages: &'a [ChatMessage],
    pub earlier: bool,
    pub files: &'a crate::files::Files,
    /// A post's views, by id.
    pub views: &'a dyn Fn(&[u8; 16]) -> Option<u64>,
    pub on_action: Callback<Action>,
}

fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

pub fn view(props: &Props<'_>) -> Html {
    let id = props.id;
    let conversation = ConversationId::Channel(id);
    let name_of = |_: &[u8; 32]| String::new();
    let marks = |m: &[u8; 16]| (props.views)(m).map(|n| count(n, "view", "views"));
    let report = |m: &[u8; 16]| Some(Route::Report(id, *m).hash());
    let mute = props.on_action.reform({
        let muted = props.muted;
        move |_| Action::MuteChannel(id, !muted)
    });
    let leave = props.on_action.reform(move |_| Action::LeaveChannel(id));
    let rotate = props.on_action.reform(move |_| Action::NewChannelLink(id));
    html! {
        <section key={conversation.to_string()} class="conversation" aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(props.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ props.name }</h2>
                    <span class="muted small" data-testid="channel-subscribers">
                        { count(props.subscribers, "subscriber", "subscribers") }
                    </span>
                </div>
            </header>
            if let Some(reason) = props.blocked {
                <p class="warning" role="alert" data-testid="channel-blocked">
                    { format!("This channel was blocked by this relay's operator: {reason}") }
                </p>
            }
            <details class="about">
                <summary>{ "About this channel" }</summary>
                if !props.description.is_empty() {
                    <p data-testid="channel-description">{ props.description }</p>
                }
                <p class="muted small">{ "Anyone with this link can read the channel; only its admins can post. The relay stores the posts encrypted and counts followers by tokens that name nobody." }</p>
                <input type="text" readonly=true value={props.link.clone()} aria-label="Channel link" data-testid="channel-link" />
                <details>
                    <summary>{ "QR code" }</summary>
                    { qr_code(props.link.as_bytes(), "QR code of the channel link") }
                </details>
                if props.owner {
                    <h3>{ "Admins" }</h3>
                    <ul class="admins" data-testid="channel-admins">
                        <li>{ "You (owner)" }</li>
                        { for props.admins.iter().map(|(a, name)| {
                            let a = *a;
                            let remove = props.on_action.reform(move |_| Action::RemoveChannelAdmin(id, a));
                            html! { <li>{ name.clone() }<button class="secondary small" onclick={remove}>{ "Remove" }</button></li> }
                        }) }
                        { for props.candidates.iter().map(|(a, name)| {
                            let a = *a;
                            let add = props.on_action.reform(move |_| Action::AddChannelAdmin(id, a));
                            html! { <li class="muted">{ name.clone() }<button class="secondary small" onclick={add}>{ "Make admin" }</button></li> }
                        }) }
                    </ul>
                }
                <div class="actions">
                    <button class="secondary small" onclick={mute}>{ if props.muted { "Unmute" } else { "Mute" } }</button>
                    if props.owner {
                        <button class="secondary small" onclick={rotate} data-testid="channel-rotate">{ "New link (old links read nothing new)" }</button>
                    } else {
                        <button class="secondary small" onclick={leave}>{ "Leave channel" }</button>
                    }
                </div>
            </details>
            { message_list(
                format!("Posts in {}", props.name),
                format!("No posts in {} yet.", props.name),
                props.messages,
                props.earlier,
                &Marks {
                    name: &name_of,
                    them: props.name,
                    reads: &marks,
                    report: (!props.owner).then_some(&report as &Reads<'_>),
                    files: props.files,
                    conversation,
                    writable: false,
                },
                &props.on_action,
            ) }
            if props.may_post && props.blocked.is_none() {
                { composer(conversation, props.files, None, &props.on_action) }
            }
        </section>
    }
}
