//! A group's members and roles; for admins, adding contacts and removing members; leaving.

use crate::action::Action;
use crate::components::{colour, initial};
use crate::dom::input_value;
use crate::route::Route;
use sotto_engine::sender_keys::GroupId;
use sotto_messenger::ConversationId;
use sotto_shared::Address;
use yew::prelude::*;

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
}

const RENAME: &str = "group-rename";

pub struct Props<'a> {
    pub id: GroupId,
    pub name: &'a str,
    pub members: Vec<MemberRow>,
    /// Contacts not in the group, which we (an admin) may add.
    pub addable: Vec<(Address, String)>,
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
                }
                <h3>{ format!("Members ({})", props.members.len()) }</h3>
                <ul class="members">{ for props.members.iter().map(member) }</ul>
                if props.admin && !props.addable.is_empty() {
                    <h3>{ "Add from your contacts" }</h3>
                    <ul class="members">{ for props.addable.iter().map(add) }</ul>
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
