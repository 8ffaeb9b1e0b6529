//! The root component: the life cycle of a session (lead the tab, open the store, unlock, log
//! in, stay connected), what the pages ask ([`Action`]) and which page shows (`view`). The
//! pages themselves are in `pages/`, and take what they show as props.
//!
//! The messenger runs in its driver (`sotto_messenger::Driver`) over the sealed IndexedDB
//! store; every step it returns goes through [`App::run`]: frames to send at once, a commit
//! whose frames go to the relay once it is durable, events for the person.

use crate::action::Action;
use crate::attention;
use crate::backup;
use crate::components::{not_found, toast};
use crate::dom::{self, current_route, navigate, now_ms, origin};
use crate::files::{self, FileError, Files};
use crate::layout::{self, VAULT_RECORD};
use crate::pages::{
    channel, chat, follow_channel, group, group_info, invite, join_group, locked, new_channel, new_group,
    report, request, safety, settings, shell, start, welcome,
};
use crate::route::Route;
use crate::socket::{NetEvent, Socket};
use crate::store::{DB_NAME, Idb, Sealed};
use crate::tabs::{self, Leadership};
use gloo::events::EventListener;
use gloo::timers::callback::{Interval, Timeout};
use sotto_engine::attachment::{Attachment, AttachmentKind};
use sotto_engine::consts::MAX_FILE_BYTES;
use sotto_engine::random::OsEntropy;
use sotto_engine::roster::Role;
use sotto_engine::sender_keys::GroupId;
use sotto_engine::vault::{KdfParams, Vault, VaultHeader};
use sotto_messenger::channels::CHANNEL_LINK_PATH;
use sotto_messenger::doors::GROUP_LINK_PATH;
use sotto_messenger::groups::GroupEntry;
use sotto_messenger::names::clean;
use sotto_messenger::store::Saving;
use sotto_messenger::{
    Connection, Contact, ContactNotice, ConversationId, Driver, Effects, Event, Line, Link, Messenger,
    MessengerError, Page, RecordKey, Step, StoreError,
};
use sotto_shared::ClientFrame;
use sotto_shared::invite::Invite;
use std::collections::HashMap;
use std::rc::Rc;
use yew::prelude::*;
use zeroize::Zeroizing;

// Replying, editing, forwarding, deleting, reacting, timers, search, export, key warnings
// and scanning: more of `App`'s methods.
mod messages;

/// How long "writing…" shows after the other side said they write (they say so again while
/// they go on, and say when they stop).
const TYPING_SHOWN_MS: u64 = 6_000;

/// What the composer's next text does, in a chat.
#[derive(Clone, Copy, PartialEq)]
enum Compose {
    Reply([u8; 16]),
    Edit([u8; 16]),
}

/// How often the connection machine looks at the clock (it pings and gives up on its own
/// schedule, see `sotto_messenger::connection`).
const TICK_MS: u32 = 5_000;
/// Our name in `Hello`.
const CLIENT: &str = concat!("sotto-web/", env!("CARGO_PKG_VERSION"));
/// Receipts wait this long, so a burst of deliveries is answered with one receipt per contact.
const RECEIPT_DELAY_MS: u32 = 30;

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Starting,
    /// Another tab leads; this one waits.
    OtherTab,
    /// Another tab took over; this one stopped.
    TakenOver,
    /// No identity in this browser yet.
    Welcome,
    Locked,
    Ready,
    /// Nothing can work (no storage, damaged data).
    Fatal(String),
}

pub enum Msg {
    /// What a page asks.
    Act(Action),
    Leader(Leadership),
    Opened(Result<(Idb, Option<VaultHeader>), String>),
    Loaded(Result<Box<Driver<Sealed>>, MessengerError>),
    Route(Route),
    Net(Line, NetEvent),
    /// A line's reconnection delay is over.
    Retry(Line),
    Tick,
    Committed(Vec<ClientFrame>),
    StoreFailed(String),
    Imported(Result<backup::Restored, String>),
    /// A backup was saved; with the generated code it is under, if it is.
    Exported(Result<Option<Zeroizing<String>>, String>),
    Visibility,
    /// A page of earlier messages, read for the driver of that generation (see `generation`).
    Page(u32, Result<Page, StoreError>),
    /// Sends the receipts owed for what arrived.
    FlushReceipts,
    /// Runs a slow step (Argon2id) after the "working" state is painted.
    Later(Action),
    /// A file moving: its tag, bytes done, bytes in all.
    FileProgress((u32, u64, u64)),
    Uploaded((u32, Result<Attachment, FileError>)),
    Downloaded((u32, Result<web_sys::File, FileError>)),
    Recording(ConversationId, Result<files::Recorder, FileError>),
    Recorded(ConversationId, Result<(web_sys::File, AttachmentKind), FileError>),
    /// Paints again (a recording's timer, a countdown).
    Redraw,
    /// A disappearing message's time is up.
    Expire,
    /// A QR code read off the camera while scanning a contact's safety number.
    Scanned(u32, sotto_shared::Address, Result<Vec<u8>, FileError>),
}

pub struct App {
    phase: Phase,
    route: Route,
    /// The messenger, its relay connection and its store, once unlocked.
    driver: Option<Driver<Sealed>>,
    toast: Option<String>,
    invite_link: Option<String>,
    /// The code of the backup just made, shown until the person leaves the page.
    backup_code: Option<Zeroizing<String>>,
    /// A slow operation is running (shown as "working…").
    busy: bool,
    form_error: Option<String>,
    has_passphrase: bool,
    /// Unsent text per chat (in memory only).
    drafts: HashMap<ConversationId, String>,
    /// Store transactions not yet durable (shown on `<html data-saving>`, for tests and tools
    /// that must not reload before an action is saved).
    saving: usize,
    idb: Option<Idb>,
    /// The vault header while the unlock screen shows.
    locked: Option<VaultHeader>,
    /// One socket per line: the logged-in one and the anonymous one that sends.
    sockets: HashMap<Line, Socket>,
    retry: HashMap<Line, Timeout>,
    receipt_timer: Option<Timeout>,
    _ping: Option<Interval>,
    _listeners: Vec<EventListener>,
    /// The chat and newest message the view last scrolled to the end for.
    scrolled_for: Option<(ConversationId, Option<u64>)>,
    /// Counts drivers started, so that a page read for an earlier one (before a backup was
    /// restored) is not added to the current one.
    generation: u32,
    /// The open chat's distance from the bottom of its list before earlier messages were added
    /// at the top, kept across the render so the view does not jump.
    keep_from_bottom: Option<i32>,
    /// Files moving or open in this tab, and a voice message being recorded.
    files: Files,
    /// Repaints a recording's timer.
    _redraw: Option<Interval>,
    /// A reply or an edit under way in a chat's composer.
    composing: Option<(ConversationId, Compose)>,
    /// A message to forward (its chat and id), while the person picks where.
    forwarding: Option<(ConversationId, [u8; 16])>,
    /// The words in the search box.
    search: String,
    /// A message to scroll to once its chat shows it (local sequence number).
    jump_to: Option<(ConversationId, u64)>,
    /// A chat to export once all of it is loaded.
    exporting: Option<ConversationId>,
    /// Wakes the app when the next disappearing message goes (at `expiry_at`).
    expiry: Option<Timeout>,
    expiry_at: Option<u64>,
    /// Repaints countdowns on screen each second.
    _countdown: Option<Interval>,
    /// Until when (our clock) the other side of a direct chat is said to be writing.
    typing: HashMap<ConversationId, u64>,
    /// The contact whose safety-number code the camera is looking for.
    scanning: Option<sotto_shared::Address>,
    /// Scans started, so that the end of one cancelled is not taken for a later one's.
    scans: u32,
    /// The chat we last told we are writing in, and when.
    typing_sent: Option<(ConversationId, u64)>,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        let link = ctx.link().clone();
        let mut listeners = Vec::new();
        if let Some(w) = web_sys::window() {
            let l = link.clone();
            listeners.push(EventListener::new(&w, "hashchange", move |_| {
                l.send_message(Msg::Route(current_route()))
            }));
            let l = link.clone();
            listeners
                .push(EventListener::new(&w, "online", move |_| l.send_message(Msg::Act(Action::Reconnect))));
            if let Some(d) = w.document() {
                let l = link.clone();
                listeners.push(EventListener::new(&d, "visibilitychange", move |_| {
                    l.send_message(Msg::Visibility)
                }));
            }
        }
        tabs::request(false, link.callback(Msg::Leader));
        App {
            phase: Phase::Starting,
            route: current_route(),
            driver: None,
            toast: None,
            invite_link: None,
            backup_code: None,
            busy: false,
            form_error: None,
            has_passphrase: false,
            drafts: HashMap::new(),
            saving: 0,
            idb: None,
            locked: None,
            sockets: HashMap::new(),
            retry: HashMap::new(),
            receipt_timer: None,
            _ping: None,
            _listeners: listeners,
            scrolled_for: None,
            generation: 0,
            keep_from_bottom: None,
            files: Files::default(),
            _redraw: None,
            composing: None,
            forwarding: None,
            search: String::new(),
            jump_to: None,
            exporting: None,
            expiry: None,
            expiry_at: None,
            _countdown: None,
            typing: HashMap::new(),
            scanning: None,
            scans: 0,
            typing_sent: None,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Act(action) => return self.on_action(ctx, action),
            Msg::Leader(Leadership::Held) => {
                // Only the leading tab shows chats: files opened by earlier visits can go.
                files::forget_opened();
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let opened = async {
                        let idb = Idb::open(DB_NAME).await?;
                        let header = idb.get(VAULT_RECORD).await?;
                        Ok::<_, StoreError>((idb, header))
                    }
                    .await;
                    link.send_message(Msg::Opened(match opened {
                        Ok((idb, None)) => Ok((idb, None)),
                        Ok((idb, Some(bytes))) => {
                            VaultHeader::from_bytes(&bytes).map(|h| (idb, Some(h))).map_err(|e| e.to_string())
                        }
                        Err(e) => Err(e.to_string()),
                    }));
                });
            }
            Msg::Leader(Leadership::Busy) => self.phase = Phase::OtherTab,
            Msg::Leader(Leadership::Lost) => self.stop(Phase::TakenOver),
            Msg::Opened(Err(e)) => self.phase = Phase::Fatal(e),
            Msg::Opened(Ok((idb, header))) => {
                self.idb = Some(idb);
                match header {
                    None => self.phase = Phase::Welcome,
                    Some(h) if h.needs_passphrase() => {
                        self.has_passphrase = true;
                        self.locked = Some(h);
                        self.phase = Phase::Locked;
                    }
                    Some(h) => match Vault::unlock(&h, None) {
                        Ok(v) => self.load(ctx, v),
                        Err(e) => self.phase = Phase::Fatal(e.to_string()),
                    },
                }
            }
            Msg::Loaded(loaded) => {
                self.busy = false;
                match loaded {
                    Ok(driver) => {
                        self.locked = None;
                        self.start(ctx, *driver);
                    }
                    Err(e) => self.phase = Phase::Fatal(e.to_string()),
                }
            }
            Msg::Later(action) => self.slow(ctx, action),
            Msg::Page(generation, _) if generation != self.generation => return false,
            Msg::Page(_, page) => {
                self.keep_from_bottom = dom::distance_from_bottom();
                let added = match (page, &mut self.driver) {
                    (Ok(page), Some(d)) => d.add_page(page),
                    (Err(e), _) => Err(e.into()),
                    (_, None) => Ok(()),
                };
                match added {
                    // A page that could not be read ends what waited for it (asking again
                    // would fail again).
                    Err(e) => {
                        self.toast = Some(e.to_string());
                        (self.jump_to, self.exporting) = (None, None);
                    }
                    Ok(()) if self.jump_to.is_some() || self.exporting.is_some() => {
                        self.load_until_found(ctx)
                    }
                    Ok(()) => {}
                }
            }
            Msg::FlushReceipts => {
                self.receipt_timer = None;
                if let Some(step) = self.driver.as_mut().map(|d| d.flush_receipts(now_ms(), &mut OsEntropy)) {
                    self.run(ctx, step);
                }
                return false;
            }
            Msg::Route(route) => {
                self.route = route;
                self.invite_link = None;
                self.backup_code = None;
                self.form_error = None;
                self.read_current(ctx);
                // A channel's counts are asked for afresh each time its page opens.
                if let Route::Chat(ConversationId::Channel(id)) = self.route {
                    self.act(ctx, |m| Ok(m.refresh_channel(&id)));
                }
            }
            Msg::Net(line, event) => self.on_net(ctx, line, event),
            Msg::Retry(line) => {
                if self.phase == Phase::Ready
                    && self.driver.as_ref().is_some_and(|d| d.line(line) == Link::Offline)
                {
                    self.connect_line(ctx, line);
                }
            }
            Msg::Tick => {
                if let Some(step) = self.driver.as_mut().map(|d| d.tick(now_ms())) {
                    self.run(ctx, step);
                }
            }
            Msg::Committed(frames) => {
                self.saving = self.saving.saturating_sub(1);
                dom::set_saving(self.saving);
                if let Some(d) = &self.driver {
                    for (line, f) in d.sendable(frames) {
                        if let Some(s) = self.sockets.get(&line) {
                            s.send(&f);
                        }
                    }
                }
                return false;
            }
            Msg::StoreFailed(e) => {
                // The in-memory state is ahead of storage: stop rather than diverge.
                self.stop(Phase::Fatal(format!("Saving failed, so Sotto stopped to protect your data: {e}")));
            }
            Msg::Imported(result) => {
                self.busy = false;
                match result {
                    Err(e) => self.form_error = Some(e),
                    Ok(r) => self.install_backup(ctx, r),
                }
            }
            Msg::Exported(result) => {
                self.busy = false;
                match result {
                    // A code is shown on the page, which says what to do with it.
                    Ok(Some(code)) => self.backup_code = Some(code),
                    Ok(None) => {
                        self.toast =
                            Some("Backup saved. Keep the file and its passphrase somewhere safe.".into())
                    }
                    Err(e) => self.toast = Some(e),
                }
            }
            Msg::Visibility => self.read_current(ctx),
            Msg::FileProgress((tag, done, total)) => self.files.progress(tag, done, total),
            Msg::Uploaded((tag, sent)) => {
                let Some(t) = self.files.finish(tag) else { return false };
                match sent {
                    Ok(mut a) => {
                        a.caption = t.caption;
                        self.act(ctx, |m| m.send_file(&t.conversation, a, now_ms(), &mut OsEntropy));
                    }
                    Err(FileError::Cancelled) => {}
                    Err(why) => {
                        self.toast = Some(format!("{} was not sent: {why}", t.name));
                        // Its caption goes back to the composer, unless something new is there.
                        if !t.caption.is_empty()
                            && self.drafts.get(&t.conversation).is_none_or(String::is_empty)
                        {
                            if self.route == Route::Chat(t.conversation) {
                                dom::restore_draft(&t.caption);
                            }
                            self.drafts.insert(t.conversation, t.caption);
                        }
                    }
                }
            }
            Msg::Downloaded((tag, opened)) => {
                let Some(id) = self.files.opened_as(tag, opened) else { return true };
                self.show_file(id);
            }
            Msg::Recording(to, Ok(recorder)) => {
                self.files.asking_microphone = false;
                self.files.recording = Some((to, recorder, js_sys::Date::now()));
                let link = ctx.link().clone();
                self._redraw = Some(Interval::new(500, move || link.send_message(Msg::Redraw)));
            }
            Msg::Recording(_, Err(why)) => {
                self.files.asking_microphone = false;
                self.toast = Some(format!("The microphone could not be used: {why}"))
            }
            Msg::Recorded(to, Ok((file, kind))) => self.send_file(ctx, to, file, Some(kind), String::new()),
            Msg::Recorded(_, Err(why)) => self.toast = Some(format!("The voice message was not sent: {why}")),
            Msg::Redraw => {}
            Msg::Scanned(scan, who, read) => self.scanned(ctx, scan, who, read),
            Msg::Expire => {
                self.expiry_at = None;
                self.act(ctx, |m| Ok(m.expire(now_ms())));
            }
        }
        true
    }

    fn rendered(&mut self, ctx: &Context<Self>, _first: bool) {
        self.after_render(ctx);
        attention::set_title(self.messenger().map_or(0, Messenger::unread_total));
        // Follow the newest message when a chat opens or grows, not on every repaint (a status
        // change must not pull someone reading older messages back down).
        if let (Route::Chat(who), Some(m)) = (&self.route, self.messenger()) {
            let shown = (*who, m.messages(who).last().map(|m| m.seq));
            if self.scrolled_for.map(|(a, _)| a) != Some(*who) {
                // A chat just opened (its composer is new): put its draft back.
                dom::restore_draft(self.drafts.get(who).map_or("", String::as_str));
            }
            let keep = self.keep_from_bottom.take();
            if self.scrolled_for != Some(shown) {
                self.scrolled_for = Some(shown);
                dom::scroll_to_end();
            } else if let Some(distance) = keep {
                // Earlier messages went in above: stay on the message that was in view.
                dom::set_distance_from_bottom(distance);
            }
        } else {
            self.scrolled_for = None;
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let on_action = ctx.link().callback(Msg::Act);
        let toast = self.toast.as_deref().map(|text| toast(text, &on_action));
        let viewer = self.viewer(&on_action);
        let forward = self.forward_picker(&on_action);
        let scanner = self.scanner(&on_action);
        let (busy, form_error) = (self.busy, self.form_error.clone());
        let body = match &self.phase {
            Phase::Starting => start::starting(),
            Phase::OtherTab | Phase::TakenOver => {
                start::other_tab(self.phase == Phase::TakenOver, &on_action)
            }
            Phase::Fatal(message) => start::fatal(message),
            Phase::Welcome => {
                let invited_by = match &self.route {
                    Route::Invite(payload) => {
                        Invite::decode(payload, now_ms() / 1000).ok().map(|i| i.display_name)
                    }
                    _ => None,
                };
                welcome::view(&welcome::Props { invited_by, busy, form_error, on_action })
            }
            Phase::Locked => locked::view(&locked::Props { busy, form_error, on_action }),
            Phase::Ready => match &self.driver {
                Some(d) => shell::view(&shell::Props {
                    me: d.messenger.profile().display_name.clone(),
                    link: d.link(),
                    pending: d.messenger.pending(),
                    rows: d.messenger.chat_list(),
                    search: self.search.clone(),
                    found: self.found_messages(&d.messenger),
                    route: self.route.clone(),
                    pane: self.pane(&d.messenger, on_action.clone()),
                    on_action,
                }),
                None => html! {},
            },
        };
        html! { <>{ body }{ viewer }{ forward }{ scanner }{ for toast }</> }
    }
}

impl App {
    pub fn messenger(&self) -> Option<&Messenger> {
        self.driver.as_ref().map(|d| &d.messenger)
    }

    /// The photo shown whole over the chat, with a way to save it and to close.
    fn viewer(&self, on_action: &Callback<Action>) -> Html {
        let Some(id) = self.files.viewing else { return Html::default() };
        let Some(a) = self.attachment(&id) else { return Html::default() };
        let Some(o) = self.files.opened(&a) else { return Html::default() };
        html! {
            <div class="viewer" role="dialog" aria-modal="true" aria-label={a.name.clone()} data-testid="viewer">
                <img src={o.url.clone()} alt={a.name.clone()} />
                <div class="actions">
                    <button class="secondary" onclick={on_action.reform(move |_| Action::SaveFile(id))}>{ "Save" }</button>
                    <button onclick={on_action.reform(|_| Action::CloseViewer)} data-testid="close-viewer">{ "Close" }</button>
                </div>
            </div>
        }
    }

    /// Shows the opened file of message `id`: a photo whole, any other file saved (media plays
    /// in its bubble).
    fn show_file(&mut self, id: [u8; 16]) {
        let Some(a) = self.attachment(&id) else { return };
        match (&a.kind, self.files.opened(&a)) {
            (AttachmentKind::Image { .. }, Some(_)) => self.files.viewing = Some(id),
            (AttachmentKind::File, Some(o)) => files::save(&o.file, &a.name),
            _ => {}
        }
    }

    /// Whether we may write in `to` now; if not, the toast says why. Asked before a file
    /// uploads or a recording starts, so that nothing moves in vain (a file dropped on a
    /// channel we only follow).
    fn writable(&mut self, to: &ConversationId) -> bool {
        match self.messenger().map(|m| m.can_write(to)) {
            Some(Err(e)) => {
                self.toast = Some(e.to_string());
                false
            }
            _ => true,
        }
    }

    /// The file of the open chat's message `id`.
    fn attachment(&self, id: &[u8; 16]) -> Option<Attachment> {
        let (Route::Chat(chat), Some(m)) = (&self.route, self.messenger()) else { return None };
        m.message(chat, id)?.attachment.as_deref().cloned()
    }

    /// Seals, uploads and then sends a file to `to` (see `Files::send`).
    fn send_file(
        &mut self,
        ctx: &Context<Self>,
        to: ConversationId,
        file: web_sys::File,
        kind: Option<AttachmentKind>,
        caption: String,
    ) {
        if file.size() > MAX_FILE_BYTES as f64 {
            let most = MAX_FILE_BYTES >> 30;
            self.toast = Some(format!("{} is larger than {most} GiB, the most Sotto sends.", file.name()));
            return;
        }
        let (progress, done) = (ctx.link().callback(Msg::FileProgress), ctx.link().callback(Msg::Uploaded));
        self.files.send(to, file, kind, caption, progress, done);
    }

    fn connection() -> Connection {
        Connection::new(&origin(), CLIENT)
    }

    /// Runs an action on the messenger; false (with the error shown) if it was refused.
    fn act(
        &mut self,
        ctx: &Context<Self>,
        action: impl FnOnce(&mut Messenger) -> Result<Effects, MessengerError>,
    ) -> bool {
        let outcome = self.driver.as_mut().map(|d| action(&mut d.messenger));
        self.settle(ctx, outcome)
    }

    /// The rest of `act`, compiled once rather than into each of its callers: applying the
    /// effects (sealing and saving the records) is a few kilobytes of wasm.
    #[inline(never)]
    fn settle(&mut self, ctx: &Context<Self>, outcome: Option<Result<Effects, MessengerError>>) -> bool {
        match outcome {
            Some(Ok(fx)) => {
                if let Some(step) = self.driver.as_mut().map(|d| d.apply(fx)) {
                    self.run(ctx, step);
                }
                true
            }
            Some(Err(e)) => {
                self.toast = Some(e.to_string());
                false
            }
            None => false,
        }
    }

    /// Shows "working…", then runs the action's slow part once that is painted.
    fn later(&mut self, ctx: &Context<Self>, action: Action) -> bool {
        self.busy = true;
        self.form_error = None;
        let link = ctx.link().clone();
        Timeout::new(30, move || link.send_message(Msg::Later(action))).forget();
        true
    }

    /// What a page asked; whether to render.
    fn on_action(&mut self, ctx: &Context<Self>, action: Action) -> bool {
        match action {
            slow @ (Action::Unlock(_)
            | Action::Create { .. }
            | Action::SetPassphrase(_)
            | Action::Export(_)) => {
                return self.later(ctx, slow);
            }
            Action::UseHere => {
                self.phase = Phase::Starting;
                tabs::request(true, ctx.link().callback(Msg::Leader));
            }
            Action::Import(file, passphrase) => {
                self.busy = true;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let bytes = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
                        .await
                        .map(|b| js_sys::Uint8Array::new(&b).to_vec())
                        .map_err(|_| "The file could not be read.".to_string());
                    // Argon2id runs after this task yields, so "working…" is on screen.
                    gloo::timers::future::TimeoutFuture::new(30).await;
                    // Installed under a key of its own, so the file cannot open this store.
                    let opened = bytes.and_then(|b| {
                        backup::import(&b, &passphrase)
                            .and_then(|r| r.resealed(KdfParams::default(), &mut OsEntropy))
                            .map_err(|e| e.to_string())
                    });
                    link.send_message(Msg::Imported(opened));
                });
            }
            Action::SendText(to, text) => {
                self.drafts.remove(&to);
                // The message itself ends "writing…" on the other side.
                self.typing_sent = None;
                if !self.send_composed(ctx, to, &text) {
                    // Not sent (the toast says why): the words stay in the composer.
                    dom::restore_draft(&text);
                    self.drafts.insert(to, text);
                }
            }
            Action::Attach(to, picked) => {
                if !self.writable(&to) {
                    return true;
                }
                // What is typed goes with the first file, as its caption.
                let mut caption = dom::take_composer().filter(|t| !t.trim().is_empty()).unwrap_or_default();
                if !caption.is_empty() {
                    self.drafts.remove(&to);
                }
                for file in picked {
                    self.send_file(ctx, to, file, None, std::mem::take(&mut caption));
                }
            }
            Action::OpenFile(id) => {
                let (Route::Chat(chat), Some(a)) = (self.route.clone(), self.attachment(&id)) else {
                    return false;
                };
                if self.files.opened(&a).is_some() {
                    self.show_file(id);
                    return true;
                }
                self.files.open(
                    chat,
                    id,
                    a,
                    ctx.link().callback(Msg::FileProgress),
                    ctx.link().callback(Msg::Downloaded),
                );
            }
            Action::SaveFile(id) => {
                if let Some(a) = self.attachment(&id)
                    && let Some(o) = self.files.opened(&a)
                {
                    files::save(&o.file, &a.name);
                }
                return false;
            }
            Action::CloseViewer => self.files.viewing = None,
            Action::CancelTransfer(tag) => self.files.cancel(tag),
            Action::Record(to) => {
                // One recording at a time, also while the browser is still asking for the
                // microphone (a second tap would start a second one).
                if self.files.recording.is_some() || self.files.asking_microphone {
                    return false;
                }
                if !self.writable(&to) {
                    return true;
                }
                self.files.asking_microphone = true;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    link.send_message(Msg::Recording(to, files::record().await));
                });
            }
            Action::StopRecording(send) => {
                self._redraw = None;
                let Some((to, recorder, _)) = self.files.recording.take() else { return false };
                if send {
                    let link = ctx.link().clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        link.send_message(Msg::Recorded(to, files::stop(recorder).await));
                    });
                } else {
                    recorder.discard();
                }
            }
            Action::Draft(to, text) => {
                self.say_typing(ctx, to, !text.is_empty());
                self.drafts.insert(to, text);
                return false;
            }
            Action::ShowEarlier => {
                if let (Route::Chat(c), Some(d)) = (&self.route, &self.driver)
                    && let Some(reading) = d.earlier(*c)
                {
                    let (link, generation) = (ctx.link().clone(), self.generation);
                    wasm_bindgen_futures::spawn_local(async move {
                        link.send_message(Msg::Page(generation, reading.await))
                    });
                }
                return false;
            }
            Action::MakeInvite => {
                let mut link = None;
                self.act(ctx, |m| {
                    let (l, fx) = m.create_invite(&origin(), now_ms(), &mut OsEntropy)?;
                    link = Some(l);
                    Ok(fx)
                });
                if link.is_some() {
                    self.invite_link = link;
                }
            }
            Action::Accept(preview) => {
                if self.act(ctx, |m| m.accept_invite(&preview, now_ms(), &mut OsEntropy)) {
                    navigate(&Route::Chat(ConversationId::Direct(preview.address)));
                }
            }
            Action::AcceptRequest(who) => {
                self.act(ctx, |m| m.accept_request(&who, now_ms(), &mut OsEntropy));
            }
            Action::IgnoreRequest(who) => {
                if self.act(ctx, |m| m.ignore_request(&who)) {
                    navigate(&Route::Chats);
                }
            }
            Action::CreateGroup { name, description, members } => {
                let mut made = None;
                self.act(ctx, |m| {
                    let (chat, fx) = m.create_group(&name, now_ms(), &mut OsEntropy)?;
                    made = Some(chat);
                    Ok(fx)
                });
                if let Some(chat @ ConversationId::Group(id)) = made {
                    if !description.trim().is_empty() {
                        self.act(ctx, |m| m.describe_group(&id, &description, now_ms(), &mut OsEntropy));
                    }
                    for a in members {
                        self.act(ctx, |m| m.add_to_group(&id, &a, now_ms(), &mut OsEntropy));
                    }
                    navigate(&Route::Chat(chat));
                }
            }
            Action::AddToGroup(id, who) => {
                self.act(ctx, |m| m.add_to_group(&id, &who, now_ms(), &mut OsEntropy));
            }
            Action::RemoveFromGroup(id, key) => {
                self.act(ctx, |m| m.remove_from_group(&id, &key, now_ms(), &mut OsEntropy));
            }
            Action::MuteGroup(id, muted) => {
                self.act(ctx, |m| m.set_group_muted(&id, muted));
            }
            Action::DescribeGroup(id, text) => {
                self.act(ctx, |m| m.describe_group(&id, &text, now_ms(), &mut OsEntropy));
            }
            Action::RenameGroup(id, name) => {
                self.act(ctx, |m| m.rename_group(&id, &name, now_ms(), &mut OsEntropy));
            }
            Action::SetAdmin(id, key, admin) => {
                let role = if admin { Role::Admin } else { Role::Member };
                self.act(ctx, |m| m.set_group_role(&id, &key, role, now_ms(), &mut OsEntropy));
            }
            Action::OpenGroupLink(id, rules) => {
                self.act(ctx, |m| Ok(m.open_group_link(&id, rules, &origin(), &mut OsEntropy)?.1));
            }
            Action::CloseGroupLink(id, text) => {
                self.act(ctx, |m| m.close_group_link(&id, &text));
            }
            Action::AnswerJoin(id, key, true) => {
                self.act(ctx, |m| m.approve_join(&id, &key, now_ms()));
            }
            Action::AnswerJoin(id, key, false) => {
                self.act(ctx, |m| m.decline_join(&id, &key));
            }
            Action::AskToJoin(payload) => {
                self.act(ctx, |m| m.ask_to_join(&payload, &origin(), now_ms(), &mut OsEntropy));
            }
            Action::LeaveGroup(id) => {
                if self.act(ctx, |m| m.leave_group(&id, now_ms(), &mut OsEntropy)) {
                    navigate(&Route::Chat(ConversationId::Group(id)));
                }
            }
            Action::SetVerified(who, verified) => {
                self.act(ctx, |m| Ok(m.set_verified(&who, verified)));
            }
            Action::SetNotifications { on, previews } => {
                self.act(ctx, |m| Ok(m.set_notifications(on, previews)));
            }
            Action::AskNotifications => {
                let previews = self.messenger().is_some_and(|m| m.profile().previews);
                attention::ask_permission(ctx.link().callback(move |granted: bool| {
                    Msg::Act(if granted {
                        Action::SetNotifications { on: true, previews }
                    } else {
                        Action::Toast(Some(
                            "Notifications are blocked in this browser's site settings.".into(),
                        ))
                    })
                }));
            }
            Action::CreateChannel { name, description } => {
                let mut made = None;
                self.act(ctx, |m| {
                    let (id, fx) = m.create_channel(&name, &description, now_ms(), &mut OsEntropy)?;
                    made = Some(id);
                    Ok(fx)
                });
                if let Some(id) = made {
                    navigate(&Route::Chat(ConversationId::Channel(id)));
                }
            }
            Action::FollowChannel(payload) => {
                let mut followed = None;
                self.act(ctx, |m| {
                    let (id, fx) = m.follow_channel(&payload, now_ms(), &mut OsEntropy)?;
                    followed = Some(id);
                    Ok(fx)
                });
                if let Some(id) = followed {
                    navigate(&Route::Chat(ConversationId::Channel(id)));
                }
            }
            Action::Report(id, message, reason) => {
                if self.act(ctx, |m| m.report_post(&id, &message, &reason)) {
                    navigate(&Route::Chat(ConversationId::Channel(id)));
                }
            }
            Action::AddChannelAdmin(id, who) => {
                self.act(ctx, |m| m.add_channel_admin(&id, &who, now_ms(), &mut OsEntropy));
            }
            Action::RemoveChannelAdmin(id, who) => {
                self.act(ctx, |m| m.remove_channel_admin(&id, &who));
            }
            Action::MuteChannel(id, muted) => {
                self.act(ctx, |m| m.set_channel_muted(&id, muted));
            }
            Action::LeaveChannel(id) => {
                if self.act(ctx, |m| m.leave_channel(&id)) {
                    navigate(&Route::Chats);
                }
            }
            Action::NewChannelLink(id) => {
                if self.act(ctx, |m| m.rotate_channel_link(&id, now_ms(), &mut OsEntropy)) {
                    self.toast = Some(
                        "A new link is ready: people with the old one read nothing posted from now on."
                            .into(),
                    );
                }
            }
            Action::Reconnect => {
                if self.phase == Phase::Ready {
                    self.connect(ctx);
                }
            }
            Action::Toast(t) => self.toast = t,
            other => return self.on_chat_action(ctx, other).unwrap_or(false),
        }
        true
    }

    /// The page in the pane for the current route.
    fn pane(&self, m: &Messenger, on_action: Callback<Action>) -> Html {
        // The name a "same name as" warning points at.
        let other_name = |c: &Contact| match &c.notice {
            Some(ContactNotice::SameNameAs(other)) => m.contact(other).map(|o| o.name.clone()),
            _ => None,
        };
        match &self.route {
            Route::Chats => shell::placeholder(),
            Route::Chat(chat @ ConversationId::Group(id)) => match m.group(id) {
                Some(g) => {
                    let me = m.identity().signing_key;
                    let roster = g.group.roster();
                    group::view(&group::Props {
                        id: *id,
                        name: &roster.name,
                        members: roster.members.len(),
                        gone: g.gone,
                        messages: m.messages(chat),
                        earlier: m.earlier(chat).is_some(),
                        files: &self.files,
                        name_of: &|key| if *key == me { "You".to_string() } else { m.member_name(key) },
                        reads: &|message| {
                            m.group_reads(id, message).map(|(n, of)| format!("Read by {n} of {of}"))
                        },
                        timer: m.timer(chat),
                        composing: self.composing_in(m, chat).as_ref(),
                        on_action,
                    })
                }
                None => not_found(),
            },
            Route::Chat(chat @ ConversationId::Channel(id)) => match m.channel(id) {
                Some(c) => channel::view(&channel::Props {
                    id: *id,
                    name: &c.link.name,
                    description: &c.link.description,
                    subscribers: c.subscribers,
                    owner: c.is_owner(),
                    may_post: c.may_post(),
                    admins: (c.admins.iter())
                        .map(|(_, a)| (*a, m.contact(a).map_or_else(String::new, |c| c.name.clone())))
                        .collect(),
                    candidates: if c.is_owner() {
                        m.contacts()
                            .filter(|k| c.admins.iter().all(|(_, a)| *a != k.address))
                            .map(|k| (k.address, k.name.clone()))
                            .collect()
                    } else {
                        Vec::new()
                    },
                    muted: c.muted,
                    blocked: c.blocked.as_deref(),
                    link: format!(
                        "{}/{CHANNEL_LINK_PATH}{}",
                        origin(),
                        m.channel_link(id).unwrap_or_default()
                    ),
                    messages: m.messages(chat),
                    earlier: m.earlier(chat).is_some(),
                    views: &|message| m.post_views(id, message),
                    files: &self.files,
                    on_action,
                }),
                None => not_found(),
            },
            Route::NewChannel => new_channel::view(&on_action),
            Route::FollowChannel(payload) => {
                let preview = m.preview_channel(payload);
                let following = preview.as_ref().ok().and_then(|l| m.channel(&l.id)).map(|c| c.link.epoch);
                follow_channel::view(&follow_channel::Props {
                    payload: payload.clone(),
                    preview,
                    following,
                    on_action,
                })
            }
            Route::Report(id, message) => {
                let chat = ConversationId::Channel(*id);
                match (m.channel(id), m.messages(&chat).iter().find(|p| p.id == *message)) {
                    (Some(c), Some(post)) => report::view(&report::Props {
                        channel: *id,
                        name: &c.link.name,
                        id: *message,
                        text: &post.text,
                        on_action,
                    }),
                    _ => not_found(),
                }
            }
            Route::GroupInfo(id) => match m.group(id) {
                Some(g) => group_info(m, id, g, on_action),
                None => not_found(),
            },
            Route::NewGroup => new_group::view(&new_group::Props {
                contacts: m.contacts().map(|c| (c.address, c.name.clone())).collect(),
                on_action,
            }),
            Route::Chat(chat) => match chat.peer().map(|a| (m.contact(&a), m.request(&a))) {
                Some((Some(c), _)) => chat::view(&chat::Props {
                    conversation: *chat,
                    contact: c,
                    other_name: other_name(c),
                    me: m.identity().signing_key,
                    messages: m.messages(chat),
                    earlier: m.earlier(chat).is_some(),
                    files: &self.files,
                    timer: m.timer(chat),
                    composing: self.composing_in(m, chat).as_ref(),
                    typing: self.typing_in(chat),
                    writable: m.can_write(chat).is_ok(),
                    on_action,
                }),
                Some((None, Some(request))) => {
                    request::view(&request::Props { request, messages: m.messages(chat), on_action })
                }
                _ => not_found(),
            },
            Route::Safety(a) => match (m.contact(a), m.safety(a)) {
                (Some(c), Some((number, qr_payload))) => safety::view(&safety::Props {
                    contact: Some(c),
                    name: c.name.clone(),
                    back: Route::Chat(ConversationId::Direct(c.address)),
                    other_name: other_name(c),
                    number,
                    qr_payload,
                    on_action,
                }),
                _ => not_found(),
            },
            Route::MemberSafety(id, key) => match m.group(id) {
                Some(g) if g.group.roster().members.contains_key(key) => {
                    let (number, qr_payload) = m.safety_with(key);
                    safety::view(&safety::Props {
                        contact: None,
                        name: m.member_name(key),
                        back: Route::GroupInfo(*id),
                        other_name: None,
                        number,
                        qr_payload,
                        on_action,
                    })
                }
                _ => not_found(),
            },
            Route::Invite(payload) => invite::opened(&invite::InviteProps {
                preview: m.preview_invite(payload, &origin(), now_ms()),
                on_action,
            }),
            Route::JoinGroup(payload) => {
                let preview = m.preview_group_link(payload, &origin(), now_ms());
                let standing = match preview.as_ref().map(|p| m.link_standing(p)) {
                    Ok((true, _)) => join_group::Standing::Member,
                    Ok((false, true)) => join_group::Standing::Asked,
                    _ => join_group::Standing::Outside,
                };
                join_group::view(&join_group::Props {
                    payload: payload.clone(),
                    preview,
                    standing,
                    on_action,
                })
            }
            Route::NewInvite => {
                invite::new_invite(&invite::NewInviteProps { link: self.invite_link.clone(), on_action })
            }
            Route::Settings => settings::view(&settings::Props {
                profile: m.profile(),
                fingerprint: sotto_engine::identity::fingerprint(&m.identity()),
                has_passphrase: self.has_passphrase,
                busy: self.busy,
                backup_code: self.backup_code.as_ref().map(|c| c.as_str()),
                on_action,
            }),
        }
    }

    fn slow(&mut self, ctx: &Context<Self>, action: Action) {
        self.busy = false;
        let params = KdfParams::default();
        match action {
            Action::Unlock(passphrase) => {
                let Some(header) = &self.locked else { return };
                match backup::unlock_typed(header, &passphrase) {
                    Ok((v, _)) => {
                        self.busy = true;
                        self.load(ctx, v);
                    }
                    Err(e) => self.form_error = Some(e.to_string()),
                }
            }
            Action::Create { name, passphrase } => {
                let Some(idb) = self.idb.clone() else { return };
                let created = (|| {
                    let vault = Rc::new(Vault::create(&mut OsEntropy).map_err(|e| e.to_string())?);
                    let header = vault
                        .header(passphrase.as_deref(), params, &mut OsEntropy)
                        .map_err(|e| e.to_string())?;
                    // The header first (with the layout and an empty index): its transaction is
                    // ordered before the driver's.
                    let index =
                        layout::seal_index(&vault, &layout::Index::default()).map_err(|e| e.to_string())?;
                    let raw = [(VAULT_RECORD.to_string(), header.to_bytes()), layout::layout_record(), index];
                    let saving = idb.commit(raw.into_iter().map(|(n, v)| (n, Some(v))).collect(), false);
                    self.await_commit(ctx, saving);
                    let store = Sealed::new(idb, vault);
                    let (driver, step) =
                        Driver::create(store, App::connection(), &name, now_ms(), &mut OsEntropy)
                            .map_err(|e| e.to_string())?;
                    Ok::<_, String>((driver, step))
                })();
                match created {
                    Err(e) => self.form_error = Some(e),
                    Ok((driver, step)) => {
                        self.has_passphrase = passphrase.is_some();
                        self.start(ctx, driver);
                        self.run(ctx, step);
                    }
                }
            }
            Action::SetPassphrase(p) => {
                let Some(store) = self.driver.as_ref().map(|d| d.store().clone()) else { return };
                // A new passphrase gets a new data key: every record is re-sealed under it in one
                // transaction, so whoever learned the old key (or an old passphrase) learns
                // nothing new.
                let made = Vault::create(&mut OsEntropy).map_err(|e| e.to_string()).and_then(|v| {
                    v.header(p.as_deref(), params, &mut OsEntropy).map(|h| (v, h)).map_err(|e| e.to_string())
                });
                match made {
                    Ok((new, h)) => {
                        let new = Rc::new(new);
                        self.has_passphrase = p.is_some();
                        let saving = store.reseal(new, h.to_bytes());
                        let done = if p.is_some() {
                            "Passphrase set: it will be asked for when Sotto opens."
                        } else {
                            "Passphrase removed."
                        };
                        // Said once it is on disk, not before.
                        let link = ctx.link().clone();
                        wasm_bindgen_futures::spawn_local(async move {
                            link.send_message(match saving.await {
                                Ok(()) => Msg::Act(Action::Toast(Some(done.into()))),
                                Err(e) => Msg::StoreFailed(e.to_string()),
                            })
                        });
                    }
                    Err(e) => self.form_error = Some(e),
                }
            }
            Action::Export(chosen) => {
                // The vault the store seals with now (a new passphrase replaces it).
                let Some(vault) = self.driver.as_ref().map(|d| d.store().current()) else { return };
                let Some(idb) = self.idb.clone() else { return };
                // The default secret is a generated code, shown once the file is saved.
                let generated = chosen.is_none();
                let secret = match chosen {
                    Some(p) => Zeroizing::new(p),
                    None => match backup::new_code(&mut OsEntropy) {
                        Ok(code) => code,
                        Err(e) => return self.toast = Some(e.to_string()),
                    },
                };
                self.backup_code = None;
                self.busy = true;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = match idb.load_all().await {
                        Ok(records) => backup::export(&vault, records, &secret, params, &mut OsEntropy)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    link.send_message(Msg::Exported(result.map(|bytes| {
                        dom::download(&bytes);
                        generated.then_some(secret)
                    })));
                });
            }
            _ => {}
        }
    }

    fn install_backup(&mut self, ctx: &Context<Self>, restored: backup::Restored) {
        // Re-sealed (`Restored::resealed`), so every record was opened already.
        let backup::Restored { vault, header, records, .. } = restored;
        // Tells the messenger its sessions came from a backup (they must not send again).
        let marker = layout::names(&vault)
            .and_then(|names| layout::seal(&vault, &names, &RecordKey::Restored, 0, &[]));
        let marker = match marker {
            Ok(m) => m,
            Err(e) => return self.form_error = Some(format!("The backup could not be installed: {e}")),
        };
        let Some(idb) = self.idb.clone() else { return };
        self.stop_connection();
        self.driver = None;
        let mut raw: Vec<(String, Option<Vec<u8>>)> = vec![(VAULT_RECORD.into(), Some(header.to_bytes()))];
        raw.extend(records.into_iter().chain([marker, layout::layout_record()]).map(|(n, v)| (n, Some(v))));
        let saving = idb.commit(raw, true);
        self.await_commit(ctx, saving);
        self.has_passphrase = true;
        self.toast = Some(
            "Backup restored. Sotto here now opens with the backup's code or passphrase (change it in Settings). Stop using Sotto where the backup came from."
                .into(),
        );
        navigate(&Route::Chats);
        // Reads are ordered after the commit above, so they see the restored records.
        self.load(ctx, vault);
    }

    fn load(&mut self, ctx: &Context<Self>, vault: Vault) {
        let Some(idb) = self.idb.clone() else { return };
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            // A store from before names were keyed is brought to the current layout first.
            let loaded = match Sealed::open(idb, Rc::new(vault)).await {
                Ok(store) => Driver::load(store, App::connection()).await.map(Box::new),
                Err(e) => Err(e.into()),
            };
            link.send_message(Msg::Loaded(loaded));
        });
    }

    fn start(&mut self, ctx: &Context<Self>, driver: Driver<Sealed>) {
        if driver.messenger.unreadable_groups() > 0 {
            self.toast = Some(format!(
                "{} group(s) saved by an earlier test version of Sotto could not be opened: ask an admin to add you again.",
                driver.messenger.unreadable_groups()
            ));
        }
        self.driver = Some(driver);
        self.generation = self.generation.wrapping_add(1);
        self.phase = Phase::Ready;
        let link = ctx.link().clone();
        self._ping = Some(Interval::new(TICK_MS, move || link.send_message(Msg::Tick)));
        self.read_current(ctx);
        self.connect(ctx);
    }

    fn stop_connection(&mut self) {
        self.sockets.clear();
        self.retry.clear();
        self._ping = None;
        if let Some(d) = &mut self.driver {
            d.stopped();
        }
    }

    fn stop(&mut self, phase: Phase) {
        self.stop_connection();
        self.files.stop_all();
        self._redraw = None;
        self.driver = None;
        self.idb = None;
        self.phase = phase;
    }

    /// Opens a socket for each line that has none.
    fn connect(&mut self, ctx: &Context<Self>) {
        for line in Line::BOTH {
            let offline = self.driver.as_ref().is_some_and(|d| d.line(line) == Link::Offline);
            if offline {
                self.connect_line(ctx, line);
            }
        }
    }

    fn connect_line(&mut self, ctx: &Context<Self>, line: Line) {
        self.retry.remove(&line);
        let url = origin().replacen("http", "ws", 1) + "/ws";
        match Socket::connect(&url, ctx.link().callback(move |e| Msg::Net(line, e))) {
            Ok(s) => {
                self.sockets.insert(line, s);
                if let Some(d) = &mut self.driver {
                    d.connecting(line, now_ms());
                }
            }
            Err(_) => self.disconnected(ctx, line),
        }
    }

    fn disconnected(&mut self, ctx: &Context<Self>, line: Line) {
        self.sockets.remove(&line);
        let Some(d) = &mut self.driver else { return };
        if self.phase != Phase::Ready {
            return d.stopped();
        }
        let delay = d.closed(line, js_sys::Math::random());
        let link = ctx.link().clone();
        let retry = Timeout::new(delay as u32, move || link.send_message(Msg::Retry(line)));
        self.retry.insert(line, retry);
    }

    fn on_net(&mut self, ctx: &Context<Self>, line: Line, event: NetEvent) {
        let Some(d) = &mut self.driver else { return };
        match event {
            NetEvent::Open => {
                let hello = d.opened(line, now_ms());
                if let Some(s) = self.sockets.get(&line) {
                    s.send(&hello);
                }
            }
            NetEvent::Closed => self.disconnected(ctx, line),
            NetEvent::Unreadable(e) => {
                self.toast = Some(format!("The relay sent something this app cannot read: {e}"))
            }
            NetEvent::Frame(frame) => {
                let step = d.received(line, frame, now_ms(), &mut OsEntropy);
                let receipts_due = d.receipts_due();
                self.run(ctx, step);
                if self.receipt_timer.is_none() && receipts_due {
                    let link = ctx.link().clone();
                    self.receipt_timer =
                        Some(Timeout::new(RECEIPT_DELAY_MS, move || link.send_message(Msg::FlushReceipts)));
                }
            }
        }
    }

    /// The chat open in a visible page: what arrives there is read.
    fn reading(&self) -> Option<ConversationId> {
        match self.route {
            Route::Chat(who) if !attention::page_hidden() => Some(who),
            _ => None,
        }
    }

    /// Tells the messenger what is being looked at, and marks it read.
    fn read_current(&mut self, ctx: &Context<Self>) {
        let reading = self.reading();
        self.act(ctx, |m| {
            m.set_reading(reading);
            Ok(reading.map(|who| m.mark_read(&who, now_ms(), &mut OsEntropy)).unwrap_or_default())
        });
    }

    /// Does what a step of the driver asks: its immediate frames, its commit (whose frames go
    /// once it is durable), closing the socket; shows its events.
    fn run(&mut self, ctx: &Context<Self>, step: Step) {
        let Step { send, commit, events, close } = step;
        for (line, f) in &send {
            if let Some(s) = self.sockets.get(line) {
                s.send(f);
            }
        }
        if let Some(commit) = commit {
            self.saving += 1;
            dom::set_saving(self.saving);
            let link = ctx.link().clone();
            wasm_bindgen_futures::spawn_local(async move {
                link.send_message(match commit.durable().await {
                    Ok(frames) => Msg::Committed(frames),
                    Err(e) => Msg::StoreFailed(e.to_string()),
                })
            });
        }
        for event in events {
            match event {
                Event::Message { conversation, name, text } => {
                    self.typing.remove(&conversation);
                    let muted = match conversation {
                        ConversationId::Group(id) => {
                            self.messenger().and_then(|m| m.group(&id)).is_some_and(|g| g.muted)
                        }
                        ConversationId::Channel(id) => {
                            self.messenger().and_then(|m| m.channel(&id)).is_some_and(|c| c.muted)
                        }
                        ConversationId::Direct(_) => false,
                    };
                    // Only a hidden tab notifies: a visible one shows the message itself.
                    if let Some(p) = self.messenger().map(Messenger::profile)
                        && p.notifications
                        && !muted
                        && attention::page_hidden()
                    {
                        attention::notify(
                            &name,
                            p.previews.then_some(text.as_str()),
                            Route::Chat(conversation).hash(),
                        );
                    }
                }
                Event::ContactAdded(_) | Event::LeftGroup { .. } => {}
                Event::MadeChannelAdmin { conversation } => {
                    let name = self.messenger().and_then(|m| match conversation {
                        ConversationId::Channel(id) => m.channel(&id).map(|c| c.link.name.clone()),
                        _ => None,
                    });
                    self.toast =
                        name.map(|n| format!("You are now an admin of the channel {n}: you can post in it."));
                }
                Event::Reported => {
                    self.toast =
                        Some("Report sent. The relay's operator can read that one post and decide.".into());
                }
                Event::JoinedGroup { conversation, name } => {
                    if let Some(p) = self.messenger().map(Messenger::profile)
                        && p.notifications
                        && attention::page_hidden()
                    {
                        attention::notify(
                            &name,
                            Some("you were added to this group"),
                            Route::Chat(conversation).hash(),
                        );
                    }
                }
                Event::JoinRequest { conversation, name } => {
                    let ConversationId::Group(id) = conversation else { continue };
                    self.toast = Some(format!("{name} asks to join: see the group's info to let them in."));
                    if let Some(p) = self.messenger().map(Messenger::profile)
                        && p.notifications
                        && attention::page_hidden()
                    {
                        attention::notify(
                            &name,
                            Some("asks to join your group"),
                            Route::GroupInfo(id).hash(),
                        );
                    }
                }
                Event::Request { address, name } => {
                    // Told without the text: a stranger's words wait until the person looks.
                    if let Some(p) = self.messenger().map(Messenger::profile)
                        && p.notifications
                        && attention::page_hidden()
                    {
                        attention::notify(
                            &name,
                            Some("wants to talk to you (message request)"),
                            Route::Chat(ConversationId::Direct(address)).hash(),
                        );
                    }
                }
                Event::Problem(p) => self.toast = Some(p.to_string()),
                Event::Expired => {}
                Event::Typing { conversation, typing } => {
                    if typing {
                        self.typing.insert(conversation, now_ms() + TYPING_SHOWN_MS);
                        // Painted again once "writing…" is due to go.
                        let link = ctx.link().clone();
                        let wait = TYPING_SHOWN_MS as u32 + 50;
                        Timeout::new(wait, move || link.send_message(Msg::Redraw)).forget();
                    } else {
                        self.typing.remove(&conversation);
                    }
                }
            }
        }
        for line in close {
            self.disconnected(ctx, line);
        }
    }

    /// Watches a raw commit (the vault header, a restored backup) for failure.
    fn await_commit(&self, ctx: &Context<Self>, saving: Saving) {
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = saving.await {
                link.send_message(Msg::StoreFailed(e.to_string()));
            }
        });
    }
}

/// The group info page's props: each member with what we may do about them.
fn group_info(m: &Messenger, id: &GroupId, g: &GroupEntry, on_action: Callback<Action>) -> Html {
    let roster = g.group.roster();
    let me = m.identity().signing_key;
    let mine = roster.members.get(&me).filter(|_| !g.gone);
    let admin = mine.is_some_and(|x| x.role == Role::Admin);
    let mut members: Vec<group_info::MemberRow> = roster
        .members
        .iter()
        .map(|(key, member)| group_info::MemberRow {
            key: *key,
            name: m.member_name(key),
            admin: member.role == Role::Admin,
            me: *key == me,
            removable: admin
                && *key != me
                && (member.role != Role::Admin || mine.is_some_and(|x| x.admin_since < member.admin_since)),
            // Making an admin: any admin; making one a member again: one who outranks them.
            promotable: admin && *key != me && member.role != Role::Admin,
            demotable: admin
                && *key != me
                && member.role == Role::Admin
                && mine.is_some_and(|x| x.admin_since < member.admin_since),
            // A contact's is the one they are verified by; anyone else's is the group's to show.
            safety: (*key != me).then(|| {
                let address = sotto_shared::Address::from_identity_key(key);
                match m.contact(&address) {
                    Some(_) => Route::Safety(address),
                    None => Route::MemberSafety(*id, *key),
                }
            }),
        })
        .collect();
    // We come first, then the admins, then everyone by name.
    members.sort_by(|a, b| {
        (!a.me, !a.admin, a.name.to_lowercase()).cmp(&(!b.me, !b.admin, b.name.to_lowercase()))
    });
    let addable = if admin {
        m.contacts()
            .filter(|c| !roster.members.contains_key(&c.identity.signing_key))
            .map(|c| (c.address, c.name.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let links = g
        .doors
        .iter()
        .map(|d| group_info::LinkRow {
            text: d.text(),
            url: format!("{}/{}{}", origin().trim_end_matches('/'), GROUP_LINK_PATH, d.text()),
            rules: d.rules,
            uses: d.uses,
            waiting: d.waiting.iter().map(|w| (w.identity.signing_key, clean(&w.name))).collect(),
        })
        .collect();
    group_info::view(&group_info::Props {
        id: *id,
        name: &roster.name,
        description: sotto_messenger::names::clean_description(&roster.description),
        members,
        addable,
        links,
        admin,
        gone: g.gone,
        muted: g.muted,
        on_action,
    })
}
