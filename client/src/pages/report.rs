//! Reporting a channel's post to the relay's operator: the post, what the operator will see,
//! and a reason.

use crate::action::Action;
use crate::dom::input_value;
use crate::route::Route;
use sotto_messenger::ConversationId;
use sotto_shared::channel::ChannelId;
use yew::prelude::*;

const REASON: &str = "report-reason";

pub struct Props<'a> {
    pub channel: ChannelId,
    pub name: &'a str,
    pub id: [u8; 16],
    pub text: &'a str,
    pub on_action: Callback<Action>,
}

pub fn view(props: &Props<'_>) -> Html {
    let (channel, id) = (props.channel, props.id);
    let back = Route::Chat(ConversationId::Channel(channel)).hash();
    let on_submit = props.on_action.reform(move |e: SubmitEvent| {
        e.prevent_default();
        Action::Report(channel, id, input_value(REASON))
    });
    html! {
        <section class="sheet" aria-labelledby="report-title">
            <header class="pane-head">
                <a class="back icon-button" href={back.clone()} aria-label="Back to the channel">{ "‹" }</a>
                <div class="pane-title"><h2 id="report-title">{ format!("Report a post in {}", props.name) }</h2></div>
            </header>
            <form class="sheet-body" onsubmit={on_submit}>
                <blockquote class="reported" data-testid="reported-post">{ props.text }</blockquote>
                <p class="muted">{ "The relay's operator will be able to read this post, and only this one, and to check that this channel really published it. Your name is not sent." }</p>
                <label for={REASON}>{ "Why are you reporting it?" }</label>
                <input type="text" id={REASON} maxlength="120" autocomplete="off" />
                <div class="actions">
                    <button type="submit">{ "Send report" }</button>
                    <a class="button secondary" href={back}>{ "Cancel" }</a>
                </div>
            </form>
        </section>
    }
}
