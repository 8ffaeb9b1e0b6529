//! Messages: one bubble each, with a separator before each new day.

use crate::action::Action;
use crate::dates::{clock, day, day_label};
use crate::files::{FileState, Files};
use crate::status;
use sotto_messenger::history::GroupNotice;
use sotto_messenger::{ChatMessage, ConversationId};
use yew::prelude::*;

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
    on_action: Callback<Action>,
}

/// One message. A component with comparable props, so a new message re-renders one bubble,
/// not the whole history.
#[function_component(Bubble)]
fn bubble(props: &BubbleProps) -> Html {
    let m = &props.message;
    let (label, class) = (status::label(m.status), status::class(m.status));
    html! {
        <li class={classes!("bubble", if m.outgoing { "out" } else { "in" })} data-testid="message"
            data-status={class}>
            if let (Some(name), Some(key)) = (&props.author, &m.author) {
                <p class={classes!("author", super::colour(key))} data-testid="author">{ name.clone() }</p>
            }
            if let (Some(a), Some(state)) = (&m.attachment, &props.file) {
                { super::attachment::attachment(m.id, a, state, &props.on_action) }
            }
            if !m.text.is_empty() {
                <p class="text">{ m.text.clone() }</p>
            }
            <p class="meta">
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
    /// A group member's name, from their identity key.
    pub name: &'a dyn Fn(&[u8; 32]) -> String,
    /// What to say under a message.
    pub reads: &'a Reads<'a>,
    /// Where reporting an incoming message goes (a channel's posts).
    pub report: Option<&'a Reads<'a>>,
    /// Files moving or open in this tab.
    pub files: &'a Files,
    pub conversation: ConversationId,
}

/// The loaded messages of a chat, oldest first, with what `marks` adds.
pub fn timeline(messages: &[ChatMessage], marks: &Marks<'_>, on_action: &Callback<Action>) -> Html {
    let Marks { name, reads, report, files, .. } = *marks;
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
                items.push(html! { <Bubble key={m.seq} message={m.clone()} {author} {reads} {report} {file} {on_action} /> })
            }
        }
    }
    items.into_iter().collect()
}

/// A group notice in words, with the members' names.
fn notice_words(n: &GroupNotice, name: &dyn Fn(&[u8; 32]) -> String) -> String {
    // "You" starts a sentence; as its object it is "you".
    let object = |key: &[u8; 32]| match name(key) {
        you if you == "You" => "you".to_string(),
        other => other,
    };
    match n {
        GroupNotice::Created { by, name: group } => {
            format!("{} made the group \u{201c}{group}\u{201d}", name(by))
        }
        GroupNotice::Added { by, member } => format!("{} added {}", name(by), object(member)),
        GroupNotice::Removed { by, member } => format!("{} removed {}", name(by), object(member)),
        GroupNotice::Left { member } => format!("{} left", name(member)),
        GroupNotice::Renamed { by, name: group } => {
            format!("{} renamed the group \u{201c}{group}\u{201d}", name(by))
        }
        GroupNotice::Promoted { by, member } => format!("{} made {} an admin", name(by), object(member)),
        GroupNotice::Demoted { by, member } => format!("{} made {} a member again", name(by), object(member)),
        GroupNotice::Described { by } => format!("{} changed the group's description", name(by)),
    }
}
