//! The layout once Sotto runs: the sidebar (who you are, the link, the chat list) and the pane
//! with the page the route names.

use crate::action::Action;
use crate::components::{connection_status, initial};
use crate::dates::short_time;
use crate::dom::target;
use crate::route::Route;
use sotto_messenger::{ChatSummary, ConversationId, Link};
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// A message found by search, as the sidebar lists it.
pub struct Found {
    pub conversation: ConversationId,
    pub seq: u64,
    pub title: String,
    pub text: String,
    pub sent_at_ms: u64,
}

pub struct Props {
    pub me: String,
    pub link: Link,
    pub pending: usize,
    pub rows: Vec<ChatSummary>,
    /// The words in the search box, and the messages they find.
    pub search: String,
    pub found: Vec<Found>,
    pub route: Route,
    pub on_action: Callback<Action>,
    /// The page in the pane.
    pub pane: Html,
}

pub fn view(props: &Props) -> Html {
    let in_pane = !matches!(props.route, Route::Chats);
    html! {
        <div class={classes!("shell", in_pane.then_some("in-pane"))}>
            <aside class="sidebar">
                <header class="me">
                    <div class="avatar" aria-hidden="true">{ initial(&props.me) }</div>
                    <div class="me-text">
                        <strong>{ props.me.clone() }</strong>
                        { connection_status(props.link, props.pending, &props.on_action) }
                    </div>
                    <a class="icon-button" href="#/settings" aria-label="Settings" title="Settings">{ "⚙" }</a>
                </header>
                <div class="sidebar-actions">
                    <a class="button invite" href="#/new">{ "Invite someone" }</a>
                    <a class="button secondary" href="#/new-group">{ "New group" }</a>
                    <a class="button secondary" href="#/new-channel">{ "New channel" }</a>
                </div>
                <input type="search" class="search" placeholder="Search messages" aria-label="Search messages"
                    value={props.search.clone()} data-testid="search"
                    oninput={props.on_action.reform(|e: InputEvent| {
                        Action::Search(target::<HtmlInputElement>(&e).map(|i| i.value()).unwrap_or_default())
                    })} />
                if !props.search.trim().is_empty() {
                    { results(&props.found, &props.on_action) }
                }
                <nav aria-label="Chats" hidden={!props.search.trim().is_empty()}>
                    if props.rows.is_empty() {
                        <p class="empty">{ "No chats yet. Invite someone with a link: it works once and only they can use it." }</p>
                    } else {
                        <ul class="chat-list">
                            { for props.rows.iter().map(|r| chat_row(r, &props.route)) }
                        </ul>
                    }
                </nav>
            </aside>
            <main class="pane">{ props.pane.clone() }</main>
        </div>
    }
}

/// What search found, newest first: each with its chat and a way to it.
fn results(found: &[Found], on_action: &Callback<Action>) -> Html {
    html! {
        <section class="results" aria-label="Search results" data-testid="results">
            if found.is_empty() {
                <p class="empty">{ "No messages found." }</p>
            }
            <ul class="chat-list">
                { for found.iter().map(|f| {
                    let (to, seq) = (f.conversation, f.seq);
                    html! {
                        <li key={format!("{to}/{seq}")}>
                            <button type="button" class="chat-row" data-testid="result"
                                onclick={on_action.reform(move |_| Action::OpenFound(to, seq))}>
                                <div class="row-main">
                                    <div class="row-top">
                                        <span class="name">{ f.title.clone() }</span>
                                        <time>{ short_time(f.sent_at_ms) }</time>
                                    </div>
                                    <div class="row-bottom"><span class="preview">{ f.text.clone() }</span></div>
                                </div>
                            </button>
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}

/// A message in a line: its words, else what its file is.
fn preview(m: &sotto_messenger::ChatMessage) -> String {
    use sotto_engine::attachment::AttachmentKind;
    match m.attachment.as_deref().map(|a| &a.kind) {
        _ if !m.text.is_empty() => m.text.clone(),
        Some(AttachmentKind::Image { .. }) => "Photo".into(),
        Some(AttachmentKind::Voice { .. }) => "Voice message".into(),
        _ => m.preview(),
    }
}

fn chat_row(r: &ChatSummary, route: &Route) -> Html {
    let current = *route == Route::Chat(r.conversation)
        || matches!(route, Route::Safety(a) if r.conversation.peer() == Some(*a))
        || matches!((route, r.conversation),
            (Route::GroupInfo(g) | Route::MemberSafety(g, _), ConversationId::Group(c)) if *g == c)
        || matches!((route, r.conversation), (Route::Report(a, _), ConversationId::Channel(b)) if *a == b);
    let preview = r.last.as_ref().map_or_else(
        || if r.request { "Wants to talk to you".to_string() } else { "New contact: say hello".to_string() },
        |m| match (&m.notice, m.outgoing) {
            (Some(sotto_messenger::history::ChatNotice::Timer { secs: Some(_), .. }), _) => {
                "Disappearing messages on".to_string()
            }
            (Some(sotto_messenger::history::ChatNotice::Timer { secs: None, .. }), _) => {
                "Disappearing messages off".to_string()
            }
            (Some(_), _) => "Group updated".to_string(),
            (None, true) => format!("You: {}", preview(m)),
            (None, false) => preview(m),
        },
    );
    html! {
        <li key={r.conversation.to_string()}>
            <a href={Route::Chat(r.conversation).hash()} class="chat-row" aria-current={current.then_some("page")}
                data-testid="chat-row">
                <div class="avatar" aria-hidden="true">{ initial(&r.title) }</div>
                <div class="row-main">
                    <div class="row-top">
                        <span class="name">{ r.title.clone() }</span>
                        if r.request {
                            <span class="tag" data-testid="request-tag">{ "Request" }</span>
                        }
                        <time>{ short_time(r.activity_ms) }</time>
                    </div>
                    <div class="row-bottom">
                        <span class="preview">{ preview }</span>
                        if r.unread > 0 {
                            <span class="badge" aria-label={format!("{} unread", r.unread)}>{ r.unread }</span>
                        }
                    </div>
                </div>
            </a>
        </li>
    }
}

/// The pane when no chat is open.
pub fn placeholder() -> Html {
    html! {
        <section class="placeholder" aria-label="No chat open">
            <p>{ "Choose a chat, or invite someone to start one." }</p>
        </section>
    }
}
