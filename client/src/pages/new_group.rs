//! Making a group: its name and which contacts are in it from the start.

use crate::action::Action;
use crate::components::{back_link, initial};
use crate::dom::{input_value, is_checked};
use sotto_shared::Address;
use yew::prelude::*;

pub struct Props {
    /// Every contact: address and name.
    pub contacts: Vec<(Address, String)>,
    pub on_action: Callback<Action>,
}

const NAME: &str = "group-name";
const DESCRIPTION: &str = "group-description";

fn checkbox_id(a: &Address) -> String {
    format!("member-{}", a.to_hex())
}

pub fn view(props: &Props) -> Html {
    let addresses: Vec<Address> = props.contacts.iter().map(|(a, _)| *a).collect();
    let on_submit = props.on_action.reform(move |e: SubmitEvent| {
        e.prevent_default();
        let members = addresses.iter().filter(|a| is_checked(&checkbox_id(a))).copied().collect();
        Action::CreateGroup { name: input_value(NAME), description: input_value(DESCRIPTION), members }
    });
    html! {
        <section class="sheet" aria-labelledby="new-group-title">
            <header class="pane-head">
                { back_link() }
                <div class="pane-title"><h2 id="new-group-title">{ "New group" }</h2></div>
            </header>
            <form class="sheet-body" onsubmit={on_submit}>
                <label for={NAME}>{ "Group name" }</label>
                <input type="text" id={NAME} required=true maxlength="64" autocomplete="off" />
                <label for={DESCRIPTION}>{ "Description (optional)" }</label>
                <input type="text" id={DESCRIPTION} maxlength="280" autocomplete="off" />
                <fieldset>
                    <legend>{ "Members" }</legend>
                    if props.contacts.is_empty() {
                        <p class="muted">{ "Invite someone first: groups are made of your contacts." }</p>
                    }
                    { for props.contacts.iter().map(|(a, name)| html! {
                        <label class="member">
                            <input type="checkbox" id={checkbox_id(a)} />
                            <span class="avatar" aria-hidden="true">{ initial(name) }</span>
                            <span class="name">{ name.clone() }</span>
                        </label>
                    }) }
                </fieldset>
                <button type="submit">{ "Create group" }</button>
            </form>
        </section>
    }
}
