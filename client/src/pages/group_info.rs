//! A group's members and roles; for admins, adding contacts, removing members, and invite
//! links (with who waits to be let in); leaving.

use crate::action::Action;
use crate::components::{colour, initial, qr_code};
use crate::dom::{input_value, is_checked, now_ms};
use crate::route::Route;
use sotto_engine::sender_keys::GroupId;
use sotto_messenger::ConversationId;
use sotto_messenger::doors::DoorRules;
use sotto_shared::Address;
use yew::prelude::*;

/// One of our invite links into the group.
pub struct LinkRow {
    /// Its payload (names it to close it).
    pub text: String,
    /// The whole link to share.
    pub url: String,
    pub rules: DoorRules,
    pub uses: u32,
    /// Who waits for approval: identity key and the name they gave.
    pub waiting: Vec<([u8; 32], String)>,
}

/// One member as the list shows them.
pub struct MemberRow {
    pub key: [u8; 32],
    pub name: String,
    pub admin: bool,
    pub me: bool,
    /// We may remove them (we are an admin who became one before them, if they are one).
    pub removable: bool,
    pub promotable: bool,
    pub demotable: bool,
    /// Where their safety number shows (none for us).
    pub safety: Option<Route>,
}

const RENAME: &str = "group-rename";
const DESCRIBE: &str = "group-describe";
const LINK_APPROVAL: &str = "link-approval";
/// The expiry choices (hours; 0: never), each a radio button `link-expiry-<hours>`.
const LINK_EXPIRIES: [(u64, &str); 4] =
    [(0, "Never"), (1, "In an hour"), (24, "In a day"), (168, "In a week")];
const LINK_USES: &str = "link-uses";

/// The rules the new-link form asks for.
fn chosen_rules() -> DoorRules {
    let hours =
        LINK_EXPIRIES.iter().map(|(h, _)| *h).find(|h| is_checked(&format!("link-expiry-{h}"))).unwrap_or(0);
    DoorRules {
        expires_at_ms: (hours > 0).then(|| now_ms() + hours * 3600 * 1000),
        max_uses: input_value(LINK_USES).trim().parse().ok().filter(|n| *n > 0),
        approval: is_checked(LINK_APPROVAL),
    }
}

/// What a link's rules and use come to, in words.
fn link_terms(l: &LinkRow) -> String {
    let uses = match l.rules.max_uses {
        Some(max) => format!("used {} of {max} times", l.uses),
        None => format!("used {} times", l.uses),
    };
    let expiry = match l.rules.expires_at_ms {
        Some(at) if at <= now_ms() => "expired".to_string(),
        Some(at) => format!("expires in {}", crate::dates::duration_words(at - now_ms())),
        None => "never expires".to_string(),
    };
    let approval = if l.rules.approval { ", admins approve each request" } else { "" };
    format!("{uses}, {expiry}{approval}")
}

pub struct Props<'a> {
    pub id: GroupId,
    pub name: &'a str,
    pub description: String,
    pub members: Vec<MemberRow>,
    /// Contacts not in the group, which we (an admin) may add.
    pub addable: Vec<(Address, String)>,
    /// Our invite links into it.
    pub links: Vec<LinkRow>,
    pub admin: bool,
    pub gone: bool,
    pub muted: bool,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let id = props.id;
    let member = |m: &MemberRow| {
        let key = m.key;
        let remove = props.on_action.reform(move |_| Action::RemoveFromGroup(id, key));
        let promote = props.on_action.reform(move |_| Action::SetAdmin(id, key, true));
        let demote = props.on_action.reform(move |_| Action::SetAdmin(id, key, false));
        html! {
            <li class="member" data-testid="member">
                <div class={classes!("avatar", "member-avatar", colour(&m.key))} aria-hidden="true">{ initial(&m.name) }</div>
                <span class="name">{ if m.me { format!("{} (you)", m.name) } else { m.name.clone() } }</span>
                if m.admin { <span class="tag">{ "Admin" }</span> }
                if let Some(safety) = &m.safety {
                    <a class="small" href={safety.hash()} aria-label={format!("Safety number with {}", m.name)}>{ "Safety number" }</a>
                }
                if m.promotable {
                    <button class="secondary small" onclick={promote} aria-label={format!("Make {} an admin", m.name)}>{ "Make admin" }</button>
                }
                if m.demotable {
                    <button class="secondary small" onclick={demote} aria-label={format!("Make {} a member", m.name)}>{ "Make member" }</button>
                }
                if m.removable {
                    <button class="secondary small" onclick={remove} aria-label={format!("Remove {}", m.name)}>{ "Remove" }</button>
                }
            </li>
        }
    };
    let add = |(address, name): &(Address, String)| {
        let address = *address;
        let onclick = props.on_action.reform(move |_| Action::AddToGroup(id, address));
        html! {
            <li class="member">
                <div class="avatar" aria-hidden="true">{ initial(name) }</div>
                <span class="name">{ name.clone() }</span>
                <button class="small" {onclick} aria-label={format!("Add {name}")}>{ "Add" }</button>
            </li>
        }
    };
    let waiting = |key: [u8; 32], name: &String| {
        let let_in = props.on_action.reform(move |_| Action::AnswerJoin(id, key, true));
        let decline = props.on_action.reform(move |_| Action::AnswerJoin(id, key, false));
        html! {
            <li class="member" data-testid="join-request">
                <div class={classes!("avatar", "member-avatar", colour(&key))} aria-hidden="true">{ initial(name) }</div>
                <span class="name">{ format!("{name} asks to join") }</span>
                <button class="small" onclick={let_in} aria-label={format!("Let {name} in")}>{ "Let in" }</button>
                <button class="secondary small" onclick={decline} aria-label={format!("Decline {name}")}>{ "Decline" }</button>
            </li>
        }
    };
    let link = |l: &LinkRow| {
        let close = {
            let text = l.text.clone();
            props.on_action.reform(move |_| Action::CloseGroupLink(id, text.clone()))
        };
        html! {
            <li class="group-link">
                <input type="text" readonly=true value={l.url.clone()} aria-label="Group invite link" data-testid="group-link" />
                <span class="muted small">{ link_terms(l) }</span>
                <details>
                    <summary>{ "QR code" }</summary>
                    { qr_code(l.url.as_bytes(), "QR code of the group invite link") }
                </details>
                <ul class="members">{ for l.waiting.iter().map(|(k, n)| waiting(*k, n)) }</ul>
                <button class="secondary small" onclick={close}>{ "Close link" }</button>
            </li>
        }
    };
    let open_link = props.on_action.reform(move |e: SubmitEvent| {
        e.prevent_default();
        Action::OpenGroupLink(id, chosen_rules())
    });
    html! {
        <section class="sheet" aria-labelledby="group-title">
            <header class="pane-head">
                <a class="icon-button" href={Route::Chat(ConversationId::Group(id)).hash()} aria-label="Back to the group">{ "‹" }</a>
                <div class="pane-title">
                    <h2 id="group-title">{ props.name }</h2>
                    <span class="muted small">{ "End-to-end encrypted group: the relay does not know who is in it." }</span>
                </div>
            </header>
            <div class="sheet-body">
                if props.admin {
                    <form class="copy-row" onsubmit={props.on_action.reform(move |e: SubmitEvent| {
                        e.prevent_default();
                        Action::RenameGroup(id, input_value(RENAME))
                    })}>
                        <label for={RENAME} class="visually-hidden">{ "Group name" }</label>
                        <input type="text" id={RENAME} value={props.name.to_string()} maxlength="64" required=true />
                        <button type="submit" class="secondary">{ "Rename" }</button>
                    </form>
                    <form class="copy-row" onsubmit={props.on_action.reform(move |e: SubmitEvent| {
                        e.prevent_default();
                        Action::DescribeGroup(id, input_value(DESCRIBE))
                    })}>
                        <label for={DESCRIBE} class="visually-hidden">{ "Group description" }</label>
                        <input type="text" id={DESCRIBE} value={props.description.clone()} maxlength="280" placeholder="Description" />
                        <button type="submit" class="secondary">{ "Save" }</button>
                    </form>
                } else if !props.description.is_empty() {
                    <p class="description" data-testid="group-description">{ props.description.clone() }</p>
                }
                <h3>{ format!("Members ({})", props.members.len()) }</h3>
                <ul class="members">{ for props.members.iter().map(member) }</ul>
                if props.admin && !props.addable.is_empty() {
                    <h3>{ "Add from your contacts" }</h3>
                    <ul class="members">{ for props.addable.iter().map(add) }</ul>
                }
                if props.admin {
                    <h3>{ "Invite links" }</h3>
                    <p class="hint small">{ "Anyone with a link can ask to join; this device lets them in while it is online. The secret part (after #) never reaches any server." }</p>
                    <ul class="group-links">{ for props.links.iter().map(link) }</ul>
                    <form class="link-form" onsubmit={open_link}>
                        <label class="check"><input type="checkbox" id={LINK_APPROVAL} />{ "Admins approve each request" }</label>
                        <fieldset>
                            <legend>{ "Expires" }</legend>
                            { for LINK_EXPIRIES.iter().map(|(h, words)| html! {
                                <label class="check">
                                    <input type="radio" name="link-expiry" id={format!("link-expiry-{h}")} checked={*h == 0} />{ *words }
                                </label>
                            }) }
                        </fieldset>
                        <label for={LINK_USES}>{ "Most people who may join by it (empty: no limit)" }</label>
                        <input type="number" id={LINK_USES} min="1" max="1000" />
                        <button type="submit" class="secondary">{ "Create invite link" }</button>
                    </form>
                }
                <label class="check">
                    <input type="checkbox" checked={props.muted}
                        onchange={props.on_action.reform(move |e: Event| Action::MuteGroup(id, crate::dom::target::<web_sys::HtmlInputElement>(&e).is_some_and(|i| i.checked())))} />
                    { "Mute notifications" }
                </label>
                if !props.gone {
                    <button class="danger" onclick={props.on_action.reform(move |_| Action::LeaveGroup(id))}>{ "Leave group" }</button>
                }
            </div>
        </section>
    }
}
