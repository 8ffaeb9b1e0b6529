//! Messages: one bubble each, with a separator before each new day.

use crate::action::{Action, MessageAction};
use crate::dates::{clock, day, day_label, span};
use crate::dom::now_ms;
use crate::files::{FileState, Files};
use crate::status;
use sotto_messenger::history::ChatNotice;
use sotto_messenger::{ChatMessage, ConversationId};
use yew::prelude::*;

/// The reactions the menu offers (any emoji that arrives is shown).
const REACTIONS: [&str; 6] = ["👍", "❤️", "😂", "😮", "😢", "🙏"];

/// The message a reply answers, as its bubble quotes it.
#[derive(Clone, PartialEq)]
struct Quote {
    author: AttrValue,
    text: AttrValue,
    /// Where it is in the chat (not loaded: `None`).
    seq: Option<u64>,
}

/// What may be done to a message here, besides deleting it for oneself.
#[derive(Clone, Copy, PartialEq, Default)]
struct Can {
    reply: bool,
    edit: bool,
    withdraw: bool,
    react: bool,
    forward: bool,
}

#[derive(Properties, PartialEq)]
struct BubbleProps {
    message: ChatMessage,
    /// In a group, who wrote it.
    author: Option<AttrValue>,
    /// Under it: "Read by 2 of 5" (ours, in a group), "12 views" (in a channel).
    reads: Option<AttrValue>,
    /// Where reporting it goes (a channel's post).
    report: Option<AttrValue>,
    /// Its file, as it stands in this tab.
    file: Option<FileState>,
    quote: Option<Quote>,
    can: Can,
    /// How long until it disappears ("5s"), or its timer before it is read.
    left: Option<AttrValue>,
    conversation: ConversationId,
    on_action: Callback<Action>,
}

/// A button of a message's menu (`on_action` closes the menu).
fn item(
    label: &'static str,
    to: ConversationId,
    action: impl Fn() -> MessageAction + 'static,
    on_action: &Callback<Action>,
) -> Html {
    html! { <button type="button" role="menuitem" onclick={on_action.reform(move |_| Action::Message(to, action()))}>{ label }</button> }
}

/// The button that opens the menu of what can be done to message `m`, and the menu while it
/// is open (built only then: a chat of hundreds of messages would otherwise carry thousands of
/// buttons it never shows).
fn menu(
    m: &ChatMessage,
    can: Can,
    to: ConversationId,
    on_action: &Callback<Action>,
    open: &UseStateHandle<bool>,
) -> Html {
    let toggle = {
        let open = open.clone();
        Callback::from(move |_: MouseEvent| open.set(!*open))
    };
    let button = html! {
        <button type="button" class="menu-button" aria-label="Message actions" title="Message actions" aria-haspopup="menu"
            aria-expanded={open.to_string()} onclick={toggle} data-testid="message-menu">{ "⋯" }</button>
    };
    let items = (**open).then(|| items(m, can, to, on_action, open));
    html! { <div class="menu">{ button }{ for items }</div> }
}

/// The items of an open menu.
fn items(
    m: &ChatMessage,
    can: Can,
    to: ConversationId,
    on_action: &Callback<Action>,
    open: &UseStateHandle<bool>,
) -> Html {
    // Whatever is picked closes the menu.
    let on_action = {
        let (open, on_action) = (open.clone(), on_action.clone());
        Callback::from(move |a: Action| {
            open.set(false);
            on_action.emit(a);
        })
    };
    let on_action = &on_action;
    let (id, seq) = (m.id, m.seq);
    let copy = (!m.text.is_empty()).then(|| {
        let (text, on_action) = (m.text.clone(), on_action.clone());
        let onclick = Callback::from(move |_: MouseEvent| {
            let (text, on_action) = (text.clone(), on_action.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let said = if crate::dom::copy(text).await {
                    "Copied."
                } else {
                    "The browser did not allow copying."
                };
                on_action.emit(Action::Toast(Some(said.into())));
            });
        });
        html! { <button type="button" role="menuitem" {onclick}>{ "Copy" }</button> }
    });
    html! {
            <div class="menu-items" role="menu">
                if can.react {
                    <div class="react-row">
                        { for REACTIONS.iter().map(|e| {
                            let e = *e;
                            let onclick = on_action.reform(move |_| Action::Message(to, MessageAction::React(id, Some(e.into()))));
                            html! { <button type="button" aria-label={format!("React with {e}")} {onclick}>{ e }</button> }
                        }) }
                    </div>
                }
                if can.reply { { item("Reply", to, move || MessageAction::Reply(id), on_action) } }
                { for copy }
                if can.forward { { item("Forward", to, move || MessageAction::Forward(id), on_action) } }
                if can.edit { { item("Edit", to, move || MessageAction::Edit(id), on_action) } }
                { item("Delete for me", to, move || MessageAction::DeleteForMe(seq), on_action) }
                if can.withdraw { { item("Delete for everyone", to, move || MessageAction::DeleteForEveryone(id), on_action) } }
            </div>
    }
}

/// The reactions under a message, one chip per emoji with its count; ours is pressed, and
/// tapping a chip adds or takes back ours.
fn reactions(m: &ChatMessage, to: ConversationId, on_action: &Callback<Action>) -> Html {
    let mut counted: Vec<(&str, usize, bool)> = Vec::new();
    for r in &m.reactions {
        match counted.iter_mut().find(|(e, _, _)| *e == r.emoji) {
            Some((_, n, mine)) => {
                *n += 1;
                *mine |= r.by.is_none();
            }
            None => counted.push((&r.emoji, 1, r.by.is_none())),
        }
    }
    let id = m.id;
    html! {
        <div class="reactions" data-testid="reactions">
            { for counted.into_iter().map(|(emoji, n, mine)| {
                let choice = (!mine).then(|| emoji.to_string());
                html! {
                    <button type="button" class="chip" aria-pressed={mine.to_string()}
                        onclick={on_action.reform(move |_| Action::Message(to, MessageAction::React(id, choice.clone())))}>
                        { format!("{emoji} {n}") }
                    </button>
                }
            }) }
        </div>
    }
}

/// One message. A component with comparable props, so a new message re-renders one bubble,
/// not the whole history.
#[function_component(Bubble)]
fn bubble(props: &BubbleProps) -> Html {
    let open = use_state(|| false);
    // While its menu is open, Escape anywhere closes it.
    {
        let open = open.clone();
        use_effect_with(*open, move |is_open| {
            let document = web_sys::window().and_then(|w| w.document()).filter(|_| *is_open);
            let listener = document.map(|d| {
                gloo::events::EventListener::new(&d, "keydown", move |e| {
                    use wasm_bindgen::JsCast;
                    if e.dyn_ref::<KeyboardEvent>().is_some_and(|k| k.key() == "Escape") {
                        open.set(false);
                    }
                })
            });
            move || drop(listener)
        });
    }
    let m = &props.message;
    let (label, class) = (status::label(m.status), status::class(m.status));
    let to = props.conversation;
    html! {
        <li id={format!("m{}", m.seq)} class={classes!("bubble", if m.outgoing { "out" } else { "in" })} data-testid="message"
            data-status={class}>
            { menu(m, props.can, to, &props.on_action, &open) }
            if let (Some(name), Some(key)) = (&props.author, &m.author) {
                <p class={classes!("author", super::colour(key))} data-testid="author">{ name.clone() }</p>
            }
            if let Some(q) = &props.quote {
                <button type="button" class="quote" data-testid="quote" disabled={q.seq.is_none()}
                    onclick={q.seq.map(|seq| props.on_action.reform(move |_| Action::Message(to, MessageAction::Show(seq))))}>
                    <strong>{ q.author.clone() }</strong>
                    <span>{ q.text.clone() }</span>
                </button>
            }
            if let (Some(a), Some(state)) = (&m.attachment, &props.file) {
                { super::attachment::attachment(m.id, a, state, &props.on_action) }
            }
            if m.deleted {
                <p class="text deleted" data-testid="deleted">{ "This message was deleted" }</p>
            } else if !m.text.is_empty() {
                <p class="text">{ m.text.clone() }</p>
            }
            if !m.reactions.is_empty() {
                { reactions(m, to, &props.on_action) }
            }
            <p class="meta">
                if let Some(left) = &props.left {
                    <span class="expiry" data-testid="expiry" title="Disappears after it is read">{ format!("⏱ {left}") }</span>
                }
                if m.edited {
                    <span class="edited" data-testid="edited">{ "edited" }</span>
                }
                <time>{ clock(m.sent_at_ms) }</time>
                if let Some(reads) = &props.reads {
                    <span class="reads" data-testid="reads">{ reads.clone() }</span>
                }
                if let Some(href) = &props.report {
                    <a class="report" href={href.clone()} data-testid="report">{ "Report" }</a>
                }
                if m.outgoing {
                    <span class={classes!("status", class)} title={label}>
                        <span aria-hidden="true">{ status::icon(m.status) }</span>
                        <span class="visually-hidden">{ label }</span>
                    </span>
                }
            </p>
        </li>
    }
}

/// A chat's message list: a way back to earlier messages while storage holds some, else
/// `start` once the chat is empty, then the loaded messages.
pub fn message_list(
    label: String,
    start: String,
    messages: &[ChatMessage],
    earlier: bool,
    marks: &Marks<'_>,
    on_action: &Callback<Action>,
) -> Html {
    let (over, dropped) = super::composer::drop_files(marks.conversation, on_action);
    html! {
        <ol class="messages" aria-label={label} aria-live="polite" tabindex="0" ondragover={over} ondrop={dropped}>
            if earlier {
                <li class="earlier">
                    <button class="secondary" onclick={on_action.reform(|_| Action::ShowEarlier)}>
                        { "Show earlier messages" }
                    </button>
                </li>
            } else if messages.is_empty() {
                <li class="empty">{ start }</li>
            }
            { timeline(messages, marks, on_action) }
            { super::attachment::uploads(marks.files.uploads(&marks.conversation), on_action) }
        </ol>
    }
}

/// Words about a message, by its id: who read it, how often it was seen, or where reporting it
/// goes.
pub type Reads<'a> = dyn Fn(&[u8; 16]) -> Option<String> + 'a;

/// What a chat adds to its messages.
pub struct Marks<'a> {
    /// A group member's name, from their identity key ("You" for ours).
    pub name: &'a dyn Fn(&[u8; 32]) -> String,
    /// Who wrote the messages that name no author (the other person of a direct chat).
    pub them: &'a str,
    /// What to say under a message.
    pub reads: &'a Reads<'a>,
    /// Where reporting an incoming message goes (a channel's posts).
    pub report: Option<&'a Reads<'a>>,
    /// Files moving or open in this tab.
    pub files: &'a Files,
    pub conversation: ConversationId,
    /// We may write in it now (replies and changes are offered only then).
    pub writable: bool,
}

/// The loaded messages of a chat, oldest first, with what `marks` adds.
pub fn timeline(messages: &[ChatMessage], marks: &Marks<'_>, on_action: &Callback<Action>) -> Html {
    let Marks { name, them, reads, report, files, conversation, writable } = *marks;
    let now = now_ms();
    // Channel posts take no replies or changes; a chat we may not write in (a key in doubt, a
    // group we left) offers none either.
    let writable = writable && !matches!(conversation, ConversationId::Channel(_));
    let writer = |m: &ChatMessage| match (m.outgoing, &m.author) {
        (true, _) => "You".to_string(),
        (false, Some(key)) => name(key),
        (false, None) => them.to_string(),
    };
    let mut last_day = None;
    let mut items = Vec::with_capacity(messages.len() + 4);
    for m in messages {
        let this_day = Some(day(m.sent_at_ms));
        if this_day != last_day {
            items.push(html! {
                <li key={format!("day-{}", m.seq)} class="day">{ day_label(m.sent_at_ms) }</li>
            });
            last_day = this_day;
        }
        let author = m.author.as_ref().map(|k| AttrValue::from(name(k)));
        let reads = reads(&m.id).map(AttrValue::from);
        let report = report.filter(|_| !m.outgoing).and_then(|r| r(&m.id)).map(AttrValue::from);
        match &m.notice {
            Some(n) => items.push(html! {
                <li key={m.seq} class="notice" data-testid="notice">{ notice_words(n, name) }</li>
            }),
            None => {
                let file = m.attachment.as_deref().map(|a| files.state(a));
                let on_action = on_action.clone();
                let quote = m.reply_to.map(|r| match messages.iter().find(|t| t.id == r) {
                    Some(t) if t.deleted => {
                        Quote { author: writer(t).into(), text: "Deleted message".into(), seq: Some(t.seq) }
                    }
                    Some(t) => Quote { author: writer(t).into(), text: t.preview().into(), seq: Some(t.seq) },
                    None => Quote { author: "Earlier message".into(), text: "Not loaded".into(), seq: None },
                });
                let live = writable && !m.deleted;
                let can = Can {
                    reply: live,
                    edit: live && m.editable(now),
                    withdraw: live && m.withdrawable(now),
                    react: live,
                    forward: !m.deleted,
                };
                // Time left once its countdown runs; its timer until then.
                let left = m.expiry.map(|x| match m.counting_to() {
                    Some(at) => AttrValue::from(span(at.saturating_sub(now).div_ceil(1000))),
                    None => AttrValue::from(span(u64::from(x.after_secs))),
                });
                items.push(html! {
                    <Bubble key={m.seq} message={m.clone()} {author} {reads} {report} {file} {quote} {can} {left} {conversation} {on_action} />
                })
            }
        }
    }
    items.into_iter().collect()
}

/// A notice (a group's change, a timer) in words, with the members' names.
fn notice_words(n: &ChatNotice, name: &dyn Fn(&[u8; 32]) -> String) -> String {
    // "You" starts a sentence; as its object it is "you".
    let object = |key: &[u8; 32]| match name(key) {
        you if you == "You" => "you".to_string(),
        other => other,
    };
    match n {
        ChatNotice::Created { by, name: group } => {
            format!("{} made the group \u{201c}{group}\u{201d}", name(by))
        }
        ChatNotice::Added { by, member } => format!("{} added {}", name(by), object(member)),
        ChatNotice::Removed { by, member } => format!("{} removed {}", name(by), object(member)),
        ChatNotice::Left { member } => format!("{} left", name(member)),
        ChatNotice::Renamed { by, name: group } => {
            format!("{} renamed the group \u{201c}{group}\u{201d}", name(by))
        }
        ChatNotice::Promoted { by, member } => format!("{} made {} an admin", name(by), object(member)),
        ChatNotice::Demoted { by, member } => format!("{} made {} a member again", name(by), object(member)),
        ChatNotice::Described { by } => format!("{} changed the group's description", name(by)),
        ChatNotice::Timer { by, secs: Some(s) } => {
            format!("{} set messages to disappear {} after they are read", name(by), span(u64::from(*s)))
        }
        ChatNotice::Timer { by, secs: None } => format!("{} turned off disappearing messages", name(by)),
    }
}
