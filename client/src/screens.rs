//! What the person sees: one function per screen, all reading the `App` state.
//!
//! Text is always inserted as text nodes (Yew escapes it), never as HTML: a message containing
//! markup is shown literally.

use crate::app::{App, Msg, Phase, now_ms, target};
use crate::onboarding::{MAX_DISPLAY_NAME_CHARS, validate_display_name};
use crate::qr;
use crate::route::Route;
use crate::status;
use sotto_engine::consts::MAX_TEXT_BYTES;
use sotto_messenger::{ChatMessage, ChatSummary, Contact, ContactNotice, ConversationId, Link, Messenger};
use sotto_shared::invite::Invite;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlTextAreaElement, KeyboardEvent};
use yew::prelude::*;

pub fn view(app: &App, ctx: &Context<App>) -> Html {
    let toast = app.toast.clone().map(|t| {
        let close = ctx.link().callback(|_| Msg::Toast(None));
        html! {
            <div class="toast" role="alert">
                <span>{ t }</span>
                <button class="ghost" aria-label="Dismiss" onclick={close}>{ "✕" }</button>
            </div>
        }
    });
    let body = match &app.phase {
        // Keyed, so the next screen replaces this element instead of reshaping it: morphing the
        // full-width `main` into the narrow first screen was a layout shift of 0.33 on desktop.
        Phase::Starting => {
            html! { <main key="starting" class="center"><p class="muted" role="status">{ "Opening Sotto…" }</p></main> }
        }
        Phase::OtherTab | Phase::TakenOver => other_tab(app, ctx),
        Phase::Fatal(e) => html! {
            <main class="center"><section class="card">
                <h2>{ "Sotto cannot continue" }</h2>
                <p role="alert" class="error">{ e.clone() }</p>
                <p class="muted">{ "Reload the page to try again." }</p>
            </section></main>
        },
        Phase::Welcome => welcome(app, ctx),
        Phase::Locked => locked(app, ctx),
        Phase::Ready => match app.messenger() {
            Some(m) => ready(app, ctx, m),
            None => html! {},
        },
    };
    html! { <>{ body }{ for toast }</> }
}

fn brand() -> Html {
    html! {
        <header class="brand">
            <img src="/icon.svg" alt="" width="56" height="56" />
            <h1>{ "Sotto" }</h1>
            <p class="tagline">{ "Private messages, end-to-end encrypted in your browser. Share a link, start talking." }</p>
        </header>
    }
}

fn other_tab(app: &App, ctx: &Context<App>) -> Html {
    let text = if app.phase == Phase::TakenOver {
        "Sotto was opened in another tab, so this one stopped."
    } else {
        "Sotto is open in another tab. One tab at a time keeps your encrypted sessions consistent."
    };
    html! {
        <main class="center"><section class="card">
            <h2>{ "Open in another tab" }</h2>
            <p>{ text }</p>
            <button onclick={ctx.link().callback(|_| Msg::UseHere)}>{ "Use Sotto in this tab" }</button>
        </section></main>
    }
}

/// The element with this id, as `T`.
fn element<T: JsCast>(id: &str) -> Option<T> {
    web_sys::window()?.document()?.get_element_by_id(id)?.dyn_into::<T>().ok()
}

fn input_value(id: &str) -> String {
    element::<HtmlInputElement>(id).map(|i| i.value()).unwrap_or_default()
}

fn welcome(app: &App, ctx: &Context<App>) -> Html {
    let invited = match &app.route {
        Route::Invite(payload) => Invite::decode(payload, now_ms() / 1000).ok().map(|i| i.display_name),
        _ => None,
    };
    let link = ctx.link().clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let passphrase = input_value("new-passphrase");
        match validate_display_name(&input_value("display-name")) {
            Ok(name) => link.send_message(Msg::Create {
                name,
                passphrase: (!passphrase.is_empty()).then_some(passphrase),
            }),
            Err(err) => link.send_message(Msg::Toast(Some(err.to_string()))),
        }
    });
    html! {
        <main class="onboarding">
            { brand() }
            if let Some(name) = invited {
                <p class="banner" data-testid="invited-by">{ format!("{name} invited you. Create your identity to accept.") }</p>
            }
            <form class="card" onsubmit={on_submit} aria-labelledby="create-title" novalidate=true>
                <h2 id="create-title">{ "Create your identity" }</h2>
                <p class="hint">{ "No phone number, no e-mail. Pick the name your contacts will see." }</p>
                <label for="display-name">{ "Display name" }</label>
                <input id="display-name" type="text" autocomplete="nickname" maxlength={MAX_DISPLAY_NAME_CHARS.to_string()} placeholder="e.g. Ada" required=true />
                <label for="new-passphrase">{ "Passphrase (optional)" }</label>
                <input id="new-passphrase" type="password" autocomplete="new-password"
                    aria-describedby="passphrase-hint" />
                <p id="passphrase-hint" class="hint small">{ "Encrypts what Sotto keeps in this browser; asked for each time Sotto opens. It cannot be recovered." }</p>
                <button type="submit" disabled={app.busy}>{ if app.busy { "Creating keys…" } else { "Create your identity" } }</button>
            </form>
            { restore_form(app, ctx) }
            <footer class="foot">{ "Keys never leave this device. The relay only ever sees sealed envelopes." }</footer>
        </main>
    }
}

fn restore_form(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link().clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let file = element::<HtmlInputElement>("backup-file").and_then(|i| i.files()).and_then(|f| f.get(0));
        match file {
            Some(f) => link.send_message(Msg::Import(f, input_value("backup-passphrase"))),
            None => link.send_message(Msg::Toast(Some("Choose a backup file first.".into()))),
        }
    });
    html! {
        <details class="card">
            <summary>{ "Restore from a backup" }</summary>
            <form onsubmit={on_submit} class="stack">
                <p class="hint small">{ "This replaces any identity in this browser. Stop using Sotto where the backup was made." }</p>
                <label for="backup-file">{ "Backup file" }</label>
                <input id="backup-file" type="file" accept=".sotto,application/octet-stream" />
                <label for="backup-passphrase">{ "Backup passphrase" }</label>
                <input id="backup-passphrase" type="password" autocomplete="current-password" />
                <p class="error" role="alert">{ app.form_error.clone().unwrap_or_default() }</p>
                <button type="submit" class="secondary" disabled={app.busy}>{ "Restore" }</button>
            </form>
        </details>
    }
}

fn locked(app: &App, ctx: &Context<App>) -> Html {
    let link = ctx.link().clone();
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        link.send_message(Msg::Unlock(input_value("unlock-passphrase")));
    });
    html! {
        <main class="onboarding">
            { brand() }
            <form class="card" onsubmit={on_submit} aria-labelledby="unlock-title">
                <h2 id="unlock-title">{ "Sotto is locked" }</h2>
                <label for="unlock-passphrase">{ "Passphrase" }</label>
                <input id="unlock-passphrase" type="password" autocomplete="current-password" autofocus=true />
                <p class="error" role="alert">{ app.form_error.clone().unwrap_or_default() }</p>
                <button type="submit" disabled={app.busy}>{ if app.busy { "Unlocking…" } else { "Unlock" } }</button>
            </form>
        </main>
    }
}

fn initial(name: &str) -> String {
    name.chars().next().map(|c| c.to_uppercase().collect()).unwrap_or_default()
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn date(ms: u64) -> js_sys::Date {
    js_sys::Date::new(&(ms as f64).into())
}

/// "14:05", local time.
fn clock(ms: u64) -> String {
    let d = date(ms);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// The local calendar day, for comparing.
fn day(ms: u64) -> (u32, u32, u32) {
    let d = date(ms);
    (d.get_full_year(), d.get_month(), d.get_date())
}

/// "14:05" today, "3 Mar" otherwise (the chat list).
fn short_time(ms: u64) -> String {
    if day(ms) == day(now_ms()) {
        return clock(ms);
    }
    let d = date(ms);
    format!("{} {}", d.get_date(), MONTHS[(d.get_month() as usize).min(11)])
}

/// "Today", "Yesterday" or "3 Mar 2026" (day separators in a chat).
fn day_label(ms: u64) -> String {
    let now = now_ms();
    if day(ms) == day(now) {
        return "Today".into();
    }
    if day(ms) == day(now.saturating_sub(24 * 3600 * 1000)) {
        return "Yesterday".into();
    }
    let d = date(ms);
    format!("{} {} {}", d.get_date(), MONTHS[(d.get_month() as usize).min(11)], d.get_full_year())
}

/// Bubbles with a separator before each new day.
fn timeline(messages: &[ChatMessage]) -> Html {
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
        items.push(html! { <Bubble key={m.seq} message={m.clone()} /> });
    }
    items.into_iter().collect()
}

fn status_line(app: &App, ctx: &Context<App>, m: &Messenger) -> Html {
    let link = app.driver.as_ref().map_or(Link::Offline, |d| d.link());
    let (class, text) = match link {
        Link::Online => ("online", "Online"),
        Link::Connecting | Link::LoggingIn => ("connecting", "Connecting…"),
        Link::Offline => ("offline", "Offline"),
    };
    let pending = m.pending();
    html! {
        <p class={classes!("conn", class)} role="status" data-testid="connection">
            <span class="dot" aria-hidden="true"></span>{ text }
            if pending > 0 && link != Link::Online {
                <span>{ format!(" · {pending} queued") }</span>
            }
            if link == Link::Offline {
                <button class="link" onclick={ctx.link().callback(|_| Msg::Reconnect)} aria-label="Retry now" title="Retry now">{ "↻" }</button>
            }
        </p>
    }
}

fn ready(app: &App, ctx: &Context<App>, m: &Messenger) -> Html {
    let in_pane = !matches!(app.route, Route::Chats);
    let pane = match &app.route {
        Route::Chats => html! {
            <section class="placeholder" aria-label="No chat open">
                <p>{ "Choose a chat, or invite someone to start one." }</p>
            </section>
        },
        Route::Chat(chat) => match chat.peer().and_then(|a| m.contact(&a)) {
            Some(c) => conversation(app, ctx, m, *chat, c),
            None => not_found(),
        },
        Route::Safety(a) => match m.contact(a) {
            Some(c) => safety(ctx, m, c),
            None => not_found(),
        },
        Route::Invite(payload) => invite_preview(ctx, m, payload),
        Route::NewInvite => new_invite(app, ctx),
        Route::Settings => settings(app, ctx, m),
    };
    let rows = m.chat_list();
    html! {
        <div class={classes!("shell", in_pane.then_some("in-pane"))}>
            <aside class="sidebar">
                <header class="me">
                    <div class="avatar" aria-hidden="true">{ initial(&m.profile().display_name) }</div>
                    <div class="me-text">
                        <strong>{ m.profile().display_name.clone() }</strong>
                        { status_line(app, ctx, m) }
                    </div>
                    <a class="icon-button" href="#/settings" aria-label="Settings" title="Settings">{ "⚙" }</a>
                </header>
                <a class="button invite" href="#/new">{ "Invite someone" }</a>
                <nav aria-label="Chats">
                    if rows.is_empty() {
                        <p class="empty">{ "No chats yet. Invite someone with a link: it works once and only they can use it." }</p>
                    } else {
                        <ul class="chat-list">
                            { for rows.iter().map(|r| chat_row(r, &app.route)) }
                        </ul>
                    }
                </nav>
            </aside>
            <main class="pane">{ pane }</main>
        </div>
    }
}

fn chat_row(r: &ChatSummary, route: &Route) -> Html {
    let current = *route == Route::Chat(r.conversation) || *route == Route::Safety(r.contact.address);
    let preview = r.last.as_ref().map_or_else(
        || "New contact: say hello".to_string(),
        |m| if m.outgoing { format!("You: {}", m.text) } else { m.text.clone() },
    );
    html! {
        <li key={r.contact.address.to_hex()}>
            <a href={Route::Chat(r.conversation).hash()} class="chat-row" aria-current={current.then_some("page")}
                data-testid="chat-row">
                <div class="avatar" aria-hidden="true">{ initial(&r.contact.name) }</div>
                <div class="row-main">
                    <div class="row-top">
                        <span class="name">{ r.contact.name.clone() }</span>
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

fn not_found() -> Html {
    html! { <section class="placeholder"><p>{ "This chat is not on this device." }</p><a href="#/">{ "Back to chats" }</a></section> }
}

fn back_link() -> Html {
    html! { <a class="back icon-button" href="#/" aria-label="Back to chats">{ "‹" }</a> }
}

#[derive(Properties, PartialEq)]
struct BubbleProps {
    message: ChatMessage,
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
            <p class="text">{ m.text.clone() }</p>
            <p class="meta">
                <time>{ clock(m.sent_at_ms) }</time>
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

fn key_banner(m: &Messenger, c: &Contact) -> Html {
    let text = match &c.notice {
        None => return html! {},
        Some(ContactNotice::Changed) => {
            format!("{}'s identity key changed. Compare safety numbers before you trust it.", c.name)
        }
        Some(ContactNotice::SameNameAs(other)) => {
            let other = m.contact(other).map_or("another contact".to_string(), |o| o.name.clone());
            format!(
                "You already have a contact named {other} with a different key. If they started over on a new device, compare safety numbers; otherwise this may be someone else."
            )
        }
        Some(ContactNotice::InviteUsed) => {
            return html! {
                <div class="warning" role="alert" data-testid="invite-used">
                    <span>{ format!("The invite link from {} had already been used, so {} cannot read this chat. Ask {} for a new link.", c.name, c.name, c.name) }</span>
                </div>
            };
        }
    };
    html! {
        <div class="warning" role="alert" data-testid="key-warning">
            <span>{ text }</span>
            <a href={Route::Safety(c.address).hash()}>{ "Compare safety numbers" }</a>
        </div>
    }
}

fn conversation(app: &App, ctx: &Context<App>, m: &Messenger, to: ConversationId, c: &Contact) -> Html {
    let link = ctx.link().clone();
    let drafts = app.drafts.clone();
    let send = move |area: &HtmlTextAreaElement| {
        let text = area.value();
        if !text.trim().is_empty() {
            link.send_message(Msg::SendText(to, text));
            area.set_value("");
            drafts.borrow_mut().remove(&to);
        }
    };
    // Drafts are kept per chat, outside the component state, so typing renders nothing.
    let drafts = app.drafts.clone();
    let on_input = Callback::from(move |e: InputEvent| {
        if let Some(area) = target::<HtmlTextAreaElement>(&e) {
            drafts.borrow_mut().insert(to, area.value());
        }
    });
    let send_key = send.clone();
    let on_key = Callback::from(move |e: KeyboardEvent| {
        // Enter sends; Shift+Enter breaks the line; Enter while composing (IME) is left alone.
        if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
            e.prevent_default();
            if let Some(area) = target::<HtmlTextAreaElement>(&e) {
                send_key(&area);
            }
        }
    });
    let on_submit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        if let Some(area) = element::<HtmlTextAreaElement>("composer") {
            send(&area);
            let _ = area.focus();
        }
    });
    // Long histories load their newest page; older messages come on request.
    let messages = m.messages(&to);
    let earlier = m.earlier(&to).is_some();
    html! {
        <section key={c.address.to_hex()} class="conversation" aria-labelledby="chat-title">
            <header class="pane-head">
                { back_link() }
                <div class="avatar" aria-hidden="true">{ initial(&c.name) }</div>
                <div class="pane-title">
                    <h2 id="chat-title">{ c.name.clone() }</h2>
                    <span class="muted small">{ if c.verified { "Verified ✓" } else { "Not verified" } }</span>
                </div>
                <a class="button secondary" href={Route::Safety(c.address).hash()}>{ "Safety number" }</a>
            </header>
            { key_banner(m, c) }
            <ol class="messages" aria-label={format!("Messages with {}", c.name)} aria-live="polite" tabindex="0">
                if earlier {
                    <li class="earlier">
                        <button class="secondary" onclick={ctx.link().callback(|_| Msg::ShowEarlier)}>
                            { "Show earlier messages" }
                        </button>
                    </li>
                }
                if messages.is_empty() && !earlier {
                    <li class="empty">{ format!("This is the start of your encrypted chat with {}.", c.name) }</li>
                }
                { timeline(messages) }
            </ol>
            if c.notice != Some(ContactNotice::InviteUsed) {
                <form class="composer" onsubmit={on_submit}>
                    <textarea id="composer" rows="1" aria-label="Message" placeholder="Message" onkeydown={on_key} oninput={on_input}
                        maxlength={MAX_TEXT_BYTES.to_string()} />
                    <button type="submit" aria-label="Send">{ "Send" }</button>
                </form>
            }
        </section>
    }
}

fn qr_svg(data: &[u8], label: &str) -> Html {
    match qr::svg_path(data) {
        Some((size, d)) => html! {
            <svg class="qr" viewBox={format!("0 0 {size} {size}")} role="img" aria-label={label.to_string()}
                shape-rendering="crispEdges">
                <rect width={size.to_string()} height={size.to_string()} fill="#fff" />
                <path d={d} fill="#000" />
            </svg>
        },
        None => html! {},
    }
}

fn new_invite(app: &App, ctx: &Context<App>) -> Html {
    let body = match &app.invite_link {
        None => html! {
            <>
                <p>{ "A contact link works once, for 7 days. Whoever opens it first can start an encrypted chat with you, so send it only to the person you mean, over a channel you trust." }</p>
                <button onclick={ctx.link().callback(|_| Msg::MakeInvite)}>{ "Create invite link" }</button>
            </>
        },
        Some(link) => {
            let copy = {
                let (link, scope) = (link.clone(), ctx.link().clone());
                Callback::from(move |_: MouseEvent| {
                    let Some(w) = web_sys::window() else { return };
                    let written =
                        wasm_bindgen_futures::JsFuture::from(w.navigator().clipboard().write_text(&link));
                    scope.send_future(async move {
                        Msg::Toast(Some(match written.await {
                            Ok(_) => "Link copied.".into(),
                            Err(_) => {
                                "This browser did not allow copying: select the link and copy it.".into()
                            }
                        }))
                    });
                })
            };
            html! {
                <>
                    <label for="invite-link">{ "Invite link" }</label>
                    <div class="copy-row">
                        <input id="invite-link" type="text" readonly=true value={link.clone()} data-testid="invite-link"
                            onfocus={Callback::from(|e: FocusEvent| if let Some(i) = target::<HtmlInputElement>(&e) { i.select() })} />
                        <button onclick={copy}>{ "Copy link" }</button>
                    </div>
                    { qr_svg(link.as_bytes(), "QR code of the invite link") }
                    <p class="hint small">{ "The secret part of the link (after #) never reaches any server." }</p>
                    <button class="secondary" onclick={ctx.link().callback(|_| Msg::MakeInvite)}>{ "Make another link" }</button>
                </>
            }
        }
    };
    html! {
        <section class="sheet" aria-labelledby="invite-title">
            <header class="pane-head">{ back_link() }<h2 id="invite-title">{ "Invite someone" }</h2></header>
            <div class="sheet-body">{ body }</div>
        </section>
    }
}

fn invite_preview(ctx: &Context<App>, m: &Messenger, payload: &str) -> Html {
    let content = match m.preview_invite(payload, now_ms()) {
        Err(e) => html! {
            <>
                <h2 id="invite-title">{ "This invite cannot be used" }</h2>
                <p class="error" role="alert" data-testid="invite-error">{ e.to_string() }</p>
                <a class="button secondary" href="#/">{ "Go to your chats" }</a>
            </>
        },
        Ok(p) if p.known => {
            let open = Route::Chat(ConversationId::Direct(p.address)).hash();
            html! {
                <>
                    <h2 id="invite-title">{ format!("{} is already in your chats", p.invite.display_name) }</h2>
                    <a class="button" href={open}>{ "Open chat" }</a>
                </>
            }
        }
        Ok(p) => {
            let name = p.invite.display_name.clone();
            let fingerprint = p.fingerprint.clone();
            let accept = ctx.link().callback(move |_| Msg::Accept(Box::new(p.clone())));
            html! {
                <>
                    <div class="avatar big" aria-hidden="true">{ initial(&name) }</div>
                    <h2 id="invite-title">{ format!("{name} invites you to chat") }</h2>
                    <p>{ "Accepting starts an end-to-end encrypted chat. Only the two of you can read it." }</p>
                    <p class="key"><span class="key-label">{ format!("{name}'s key") }</span><code>{ fingerprint }</code></p>
                    <div class="actions">
                        <button onclick={accept}>{ "Accept" }</button>
                        <a class="button secondary" href="#/">{ "Not now" }</a>
                    </div>
                </>
            }
        }
    };
    html! {
        <section class="sheet center-sheet" aria-labelledby="invite-title">
            <div class="card">{ content }</div>
        </section>
    }
}

fn safety(ctx: &Context<App>, m: &Messenger, c: &Contact) -> Html {
    let Some((number, qr_payload)) = m.safety(&c.address) else { return not_found() };
    let who = c.address;
    let verified = c.verified;
    let toggle = ctx.link().callback(move |_| Msg::SetVerified(who, !verified));
    html! {
        <section class="sheet" aria-labelledby="safety-title">
            <header class="pane-head">
                <a class="icon-button" href={Route::Chat(ConversationId::Direct(c.address)).hash()} aria-label="Back to chat">{ "‹" }</a>
                <h2 id="safety-title">{ format!("Safety number with {}", c.name) }</h2>
            </header>
            <div class="sheet-body">
                { key_banner(m, c) }
                <p>{ format!("Compare these digits with {} in person or on a call, or scan each other's code. If they match, nobody is in the middle of your chat.", c.name) }</p>
                <p class="safety-number" data-testid="safety-number" aria-label="Safety number">
                    { for number.split(' ').map(|g| html! { <span>{ g.to_string() }</span> }) }
                </p>
                { qr_svg(&qr_payload, "QR code of the safety number") }
                <button onclick={toggle} aria-pressed={verified.to_string()}>
                    { if verified { "Verified ✓ (tap to undo)" } else { "Mark as verified" } }
                </button>
            </div>
        </section>
    }
}

fn settings(app: &App, ctx: &Context<App>, m: &Messenger) -> Html {
    let p = m.profile().clone();
    let link = ctx.link().clone();
    let set_pass = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let pass = input_value("settings-passphrase");
        if pass.is_empty() {
            link.send_message(Msg::Toast(Some("Type a passphrase first.".into())));
        } else {
            link.send_message(Msg::SetPassphrase(Some(pass)));
        }
    });
    let remove_pass = ctx.link().callback(|_| Msg::SetPassphrase(None));
    let link = ctx.link().clone();
    let export = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        let pass = input_value("export-passphrase");
        if pass.chars().count() < 8 {
            link.send_message(Msg::Toast(Some("Use a backup passphrase of at least 8 characters.".into())));
        } else {
            link.send_message(Msg::Export(pass));
        }
    });
    let previews = p.previews;
    let notify = if p.notifications {
        ctx.link().callback(move |_| Msg::SetNotifications(false, previews))
    } else {
        ctx.link().callback(|_| Msg::AskNotifications)
    };
    let on = p.notifications;
    let toggle_previews = ctx.link().callback(move |_| Msg::SetNotifications(on, !previews));
    let fingerprint = sotto_engine::identity::fingerprint(&m.identity());
    html! {
        <section class="sheet" aria-labelledby="settings-title">
            <header class="pane-head">{ back_link() }<h2 id="settings-title">{ "Settings" }</h2></header>
            <div class="sheet-body">
                <section class="group">
                    <h3>{ "You" }</h3>
                    <p><strong>{ p.display_name.clone() }</strong></p>
                    <p class="key"><span class="key-label">{ "Your key" }</span><code>{ fingerprint }</code></p>
                </section>
                <section class="group">
                    <h3>{ "Notifications" }</h3>
                    <label class="check"><input type="checkbox" checked={p.notifications} onchange={notify} />
                        { "Desktop notifications while Sotto is in the background" }</label>
                    <label class="check"><input type="checkbox" checked={p.previews} disabled={!p.notifications} onchange={toggle_previews} />
                        { "Show message text in notifications" }</label>
                </section>
                <section class="group">
                    <h3>{ "Passphrase" }</h3>
                    <p class="hint small">{ if app.has_passphrase { "Sotto's data in this browser is locked with a passphrase." } else { "Anyone using this browser profile can open Sotto. A passphrase encrypts its data here." } }</p>
                    <form onsubmit={set_pass} class="copy-row">
                        <input id="settings-passphrase" type="password" autocomplete="new-password" aria-label="New passphrase" />
                        <button type="submit" disabled={app.busy}>{ if app.has_passphrase { "Change" } else { "Set" } }</button>
                    </form>
                    if app.has_passphrase {
                        <button class="secondary" onclick={remove_pass} disabled={app.busy}>{ "Remove passphrase" }</button>
                    }
                </section>
                <section class="group">
                    <h3>{ "Backup" }</h3>
                    <p class="hint small">{ "An encrypted file with your identity, contacts and history. Restoring it elsewhere moves Sotto there: stop using this copy afterwards." }</p>
                    <form onsubmit={export} class="copy-row">
                        <input id="export-passphrase" type="password" autocomplete="new-password" aria-label="Backup passphrase" />
                        <button type="submit" disabled={app.busy}>{ if app.busy { "Working…" } else { "Download backup" } }</button>
                    </form>
                </section>
            </div>
        </section>
    }
}

/// Saves `bytes` as a backup file through a temporary link.
pub fn download(bytes: &[u8]) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    let Ok(blob) = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options) else { return };
    let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
    if let Ok(a) = document
        .create_element("a")
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().map_err(Into::into))
    {
        a.set_href(&url);
        let day = js_sys::Date::new_0().to_iso_string().as_string().unwrap_or_default();
        a.set_download(&format!("sotto-backup-{}.sotto", day.get(..10).unwrap_or("")));
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
}

/// Puts a chat's unsent text back into its (new) composer.
pub fn restore_draft(text: &str) {
    if let Some(area) = element::<HtmlTextAreaElement>("composer") {
        area.set_value(text);
    }
}

/// Keeps the newest message in view.
pub fn scroll_to_end() {
    if let Some(list) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(".messages").ok().flatten())
    {
        list.set_scroll_top(list.scroll_height());
    }
}
