//! What the person does to messages and chats beyond writing: replying, editing, forwarding,
//! deleting, reacting, timers and their countdowns, search, export, answering a key warning.

use super::{App, Compose, Msg, TYPING_SHOWN_MS};
use crate::action::{Action, MessageAction};
use crate::components::Composing;
use crate::dates::clock;
use crate::dom::{self, navigate, now_ms};
use crate::files::FileError;
use crate::pages::shell::Found;
use crate::route::Route;
use gloo::timers::callback::{Interval, Timeout};
use sotto_engine::random::OsEntropy;
use sotto_messenger::{ChatMessage, ConversationId, Messenger};
use sotto_shared::Address;
use yew::prelude::*;

impl App {
    /// The actions of this module; `None` for any other.
    pub(super) fn on_chat_action(&mut self, ctx: &Context<Self>, action: Action) -> Option<bool> {
        match action {
            Action::Message(to, a) => return Some(self.on_message(ctx, to, a)),
            Action::SetTimer(to, secs) => {
                self.act(ctx, |m| m.set_timer(&to, secs, now_ms(), &mut OsEntropy));
            }
            Action::Search(query) => self.search = query,
            Action::OpenFound(to, seq) => {
                self.search.clear();
                self.jump_to = Some((to, seq));
                navigate(&Route::Chat(to));
                self.load_until_found(ctx);
            }
            Action::ExportChat(to) => {
                self.exporting = Some(to);
                self.load_until_found(ctx);
            }
            Action::ForwardTo(None) => self.forwarding = None,
            Action::ForwardTo(Some(to)) => {
                let Some((from, id)) = self.forwarding.take() else { return Some(false) };
                let Some(m) = self.messenger().and_then(|m| m.message(&from, &id)).cloned() else {
                    return Some(true);
                };
                let sent = match m.attachment {
                    Some(mut a) => {
                        a.caption = m.text;
                        self.act(ctx, |ms| ms.send_file(&to, *a, now_ms(), &mut OsEntropy))
                    }
                    None => self.act(ctx, |ms| ms.send_text(&to, &m.text, now_ms(), &mut OsEntropy)),
                };
                if sent {
                    navigate(&Route::Chat(to));
                }
            }
            Action::AcceptKey(who) => {
                self.act(ctx, |m| Ok(m.accept_key(&who)));
            }
            Action::Scan(None) => self.scanning = None,
            Action::Scan(Some(who)) => {
                self.scanning = Some(who);
                self.scans += 1;
                self.toast = None;
                let (link, scan) = (ctx.link().clone(), self.scans);
                wasm_bindgen_futures::spawn_local(async move {
                    link.send_message(Msg::Scanned(scan, who, crate::files::scan_qr().await));
                });
            }
            _ => return None,
        }
        Some(true)
    }

    fn on_message(&mut self, ctx: &Context<Self>, to: ConversationId, action: MessageAction) -> bool {
        match action {
            MessageAction::Reply(id) => {
                self.composing = Some((to, Compose::Reply(id)));
                dom::focus_composer();
            }
            MessageAction::Edit(id) => {
                let text = self.found(&to, &id).map(|m| m.text.clone()).unwrap_or_default();
                self.composing = Some((to, Compose::Edit(id)));
                // The words being edited are the chat's draft while the edit lasts (so that
                // leaving and coming back shows them, not an older draft).
                dom::restore_draft(&text);
                self.drafts.insert(to, text);
                dom::focus_composer();
            }
            MessageAction::StopComposing => self.stop_composing(),
            MessageAction::Forward(id) => self.forwarding = Some((to, id)),
            MessageAction::DeleteForMe(seq) => {
                self.act(ctx, |m| Ok(m.delete_for_me(&to, seq)));
            }
            MessageAction::DeleteForEveryone(id) => {
                self.act(ctx, |m| m.delete_for_everyone(&to, id, now_ms(), &mut OsEntropy));
            }
            MessageAction::React(id, emoji) => {
                self.act(ctx, |m| m.react(&to, id, emoji, now_ms(), &mut OsEntropy));
            }
            MessageAction::Show(seq) => {
                dom::show_message(seq);
                return false;
            }
        }
        true
    }

    fn found(&self, to: &ConversationId, id: &[u8; 16]) -> Option<&ChatMessage> {
        self.messenger()?.message(to, id)
    }

    /// Leaves replying or editing (an edit's words leave the composer with it).
    fn stop_composing(&mut self) {
        if let Some((to, Compose::Edit(_))) = self.composing {
            dom::restore_draft("");
            self.drafts.remove(&to);
        }
        self.composing = None;
    }

    /// Sends the composer's text: a reply or an edit if one is under way, else a new message.
    /// Whether it went. A reply whose message went meanwhile (deleted, disappeared) goes as a
    /// plain text; an edit of one that went is dropped, and said.
    pub(super) fn send_composed(&mut self, ctx: &Context<Self>, to: ConversationId, text: &str) -> bool {
        let composing = self.composing.filter(|(c, _)| *c == to).map(|(_, how)| how);
        let target = match composing {
            Some(Compose::Reply(id) | Compose::Edit(id)) => self.found(&to, &id).is_some_and(|m| !m.deleted),
            None => true,
        };
        let composing = match (composing, target) {
            (Some(Compose::Reply(_)), false) => {
                self.composing = None;
                None
            }
            (Some(Compose::Edit(_)), false) => {
                self.stop_composing();
                self.toast = Some("The message you were editing is gone.".into());
                return true;
            }
            (how, _) => how,
        };
        let sent = match composing {
            Some(Compose::Reply(id)) => self.act(ctx, |m| m.reply(&to, id, text, now_ms(), &mut OsEntropy)),
            Some(Compose::Edit(id)) => self.act(ctx, |m| m.edit(&to, id, text, now_ms(), &mut OsEntropy)),
            None => self.act(ctx, |m| m.send_text(&to, text, now_ms(), &mut OsEntropy)),
        };
        if sent && composing.is_some() {
            self.composing = None;
        }
        sent
    }

    /// What the composer of chat `to` says it is doing.
    pub(super) fn composing_in(&self, m: &Messenger, to: &ConversationId) -> Option<Composing> {
        let (c, how) = self.composing.filter(|(c, _)| c == to)?;
        let (editing, id) = match how {
            Compose::Reply(id) => (false, id),
            Compose::Edit(id) => (true, id),
        };
        let target = m.message(&c, &id)?;
        let author = m.writer_name(target).unwrap_or_else(|| "yourself".into());
        Some(Composing { editing, author, text: target.preview() })
    }

    /// Reads earlier pages of the chat a jump or an export waits for, until the message is
    /// loaded (or everything is); then does what waited.
    pub(super) fn load_until_found(&mut self, ctx: &Context<Self>) {
        let Some(d) = &self.driver else { return };
        let jump =
            self.jump_to.filter(|(c, seq)| d.messenger.messages(c).first().is_none_or(|m| m.seq > *seq));
        let waiting = jump.map(|(c, _)| c).or(self.exporting);
        if let Some(reading) = waiting.and_then(|c| d.earlier(c)) {
            let (link, generation) = (ctx.link().clone(), self.generation);
            wasm_bindgen_futures::spawn_local(async move {
                link.send_message(Msg::Page(generation, reading.await))
            });
            return;
        }
        // Everything is loaded: a message still missing went meanwhile (deleted, disappeared).
        if jump.is_some() {
            self.jump_to = None;
        }
        if let Some(to) = self.exporting.take() {
            self.export(&to);
        }
    }

    /// Saves chat `to` as a text file: a line per message, with its time and author.
    fn export(&self, to: &ConversationId) {
        let Some(m) = self.messenger() else { return };
        let title =
            m.chat_list().into_iter().find(|r| r.conversation == *to).map(|r| r.title).unwrap_or_default();
        let mut text = format!("Sotto chat: {title}\nExported {}\n\n", js_date(now_ms()));
        for x in m.messages(to) {
            let author = m.writer_name(x).unwrap_or_else(|| "You".into());
            let words = match (&x.notice, x.deleted, &x.attachment) {
                (Some(_), _, _) => continue,
                (None, true, _) => "(deleted)".to_string(),
                (None, false, Some(a)) if x.text.is_empty() => format!("[file: {}]", a.name),
                (None, false, Some(a)) => format!("[file: {}] {}", a.name, x.text),
                (None, false, None) => x.text.clone(),
            };
            let edited = if x.edited { " (edited)" } else { "" };
            text.push_str(&format!(
                "[{} {}] {author}: {words}{edited}\n",
                js_date(x.sent_at_ms),
                clock(x.sent_at_ms)
            ));
        }
        crate::files::save_text(&text, &format!("sotto-{}.txt", title.replace(['/', '\\'], "-")));
    }

    /// After a render: a message waiting to be shown is scrolled to; a countdown on screen
    /// ticks each second; the next disappearing message has a timer.
    pub(super) fn after_render(&mut self, ctx: &Context<Self>) {
        if let (Some((c, seq)), Route::Chat(open)) = (self.jump_to, &self.route)
            && c == *open
            && dom::show_message(seq)
        {
            self.jump_to = None;
        }
        let counting = match (&self.route, self.messenger()) {
            (Route::Chat(c), Some(m)) => m.messages(c).iter().any(|x| x.counting_to().is_some()),
            _ => false,
        };
        if counting != self._countdown.is_some() {
            let link = ctx.link().clone();
            self._countdown = counting.then(|| Interval::new(1_000, move || link.send_message(Msg::Redraw)));
        }
        let next = self.messenger().and_then(Messenger::next_expiry);
        if next != self.expiry_at {
            self.expiry_at = next;
            let link = ctx.link().clone();
            self.expiry = next.map(|at| {
                let wait = at.saturating_sub(now_ms()).min(i32::MAX as u64) as u32;
                Timeout::new(wait, move || link.send_message(Msg::Expire))
            });
        }
    }

    /// Tells the other side of a direct chat that we write (again every few seconds while we
    /// do), or that we stopped (the composer emptied).
    pub(super) fn say_typing(&mut self, ctx: &Context<Self>, to: ConversationId, writing: bool) {
        if !matches!(to, ConversationId::Direct(_)) {
            return;
        }
        let now = now_ms();
        let said = self.typing_sent.filter(|(c, _)| *c == to).map(|(_, at)| at);
        let due = match (writing, said) {
            (true, Some(at)) => now.saturating_sub(at) >= TYPING_SHOWN_MS / 2,
            (true, None) => true,
            (false, said) => said.is_some(),
        };
        if due {
            self.typing_sent = writing.then_some((to, now));
            self.act(ctx, |m| m.typing(&to, writing, now, &mut OsEntropy));
        }
    }

    /// Whether the other side of chat `c` is writing.
    pub(super) fn typing_in(&self, c: &ConversationId) -> bool {
        self.typing.get(c).is_some_and(|until| *until > now_ms())
    }

    /// Messages found for the search box's words, with their chats' titles.
    pub(super) fn found_messages(&self, m: &Messenger) -> Vec<Found> {
        if self.search.trim().is_empty() {
            return Vec::new();
        }
        let titles = m.chat_list();
        m.search(&self.search)
            .into_iter()
            .map(|e| Found {
                conversation: e.conversation,
                seq: e.seq,
                title: titles
                    .iter()
                    .find(|r| r.conversation == e.conversation)
                    .map(|r| r.title.clone())
                    .unwrap_or_default(),
                text: e.text.clone(),
                sent_at_ms: e.sent_at_ms,
            })
            .collect()
    }

    /// The chats a message may be forwarded to, over the page.
    pub(super) fn forward_picker(&self, on_action: &Callback<Action>) -> Html {
        let (Some(_), Some(m)) = (self.forwarding, self.messenger()) else { return Html::default() };
        let rows = m.chat_list().into_iter().filter(|r| m.can_write(&r.conversation).is_ok());
        html! {
            <div class="overlay" role="dialog" aria-label="Forward to" data-testid="forward">
                <div class="dialog">
                    <h2>{ "Forward to…" }</h2>
                    <ul class="pick">
                        { for rows.map(|r| {
                            let to = r.conversation;
                            html! { <li><button type="button" class="secondary" onclick={on_action.reform(move |_| Action::ForwardTo(Some(to)))}>{ r.title }</button></li> }
                        }) }
                    </ul>
                    <button type="button" onclick={on_action.reform(|_| Action::ForwardTo(None))}>{ "Cancel" }</button>
                </div>
            </div>
        }
    }
}

impl App {
    /// What the camera read while scanning `who`'s code: their safety number verifies them;
    /// anything else is said, and changes nothing.
    pub(super) fn scanned(
        &mut self,
        ctx: &Context<Self>,
        scan: u32,
        who: Address,
        read: Result<Vec<u8>, FileError>,
    ) {
        // A scan cancelled and started again: the first one's end is not the second's.
        if scan != self.scans {
            return;
        }
        self.scanning = None;
        let Some((name, expected)) =
            self.messenger().and_then(|m| Some((m.contact(&who)?.name.clone(), m.safety(&who)?.1)))
        else {
            return;
        };
        match read {
            Ok(code) if code == expected => {
                self.act(ctx, |m| Ok(m.set_verified(&who, true)));
                self.toast = Some(format!("The codes match: {name} is verified."));
            }
            Ok(_) => {
                self.toast = Some(format!(
                    "That code does not match your safety number with {name}. Check that you scanned {name}'s code; if it is theirs, someone may be in the middle."
                ));
            }
            Err(FileError::Cancelled) => {}
            Err(why) => self.toast = Some(format!("The camera could not be used: {why}")),
        }
    }

    /// The camera while it looks for a code.
    pub(super) fn scanner(&self, on_action: &Callback<Action>) -> Html {
        if self.scanning.is_none() {
            return Html::default();
        }
        html! {
            <div class="overlay" role="dialog" aria-label="Scan their code" data-testid="scanner">
                <div class="dialog">
                    <h2>{ "Scan their code" }</h2>
                    <p class="muted small">{ "Point the camera at the QR code on their safety-number screen." }</p>
                    <video id={crate::files::SCANNER} class="scanner" muted=true playsinline=true />
                    <button type="button" onclick={on_action.reform(|_| Action::Scan(None))}>{ "Cancel" }</button>
                </div>
            </div>
        }
    }
}

/// "2026-11-24" in local time.
fn js_date(ms: u64) -> String {
    let d = js_sys::Date::new(&(ms as f64).into());
    format!("{}-{:02}-{:02}", d.get_full_year(), d.get_month() + 1, d.get_date())
}
