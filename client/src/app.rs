//! The root component: the life cycle of a session (lead the tab, open the store, unlock, log
//! in, stay connected) and every user action. The screens themselves are in `screens.rs`.
//!
//! Every change goes through [`App::apply`]: the messenger's writes are sealed with the vault
//! and committed in one IndexedDB transaction, and the frames go to the relay only once that
//! transaction is durable.

use crate::attention;
use crate::backup::{self, VAULT_RECORD};
use crate::route::Route;
use crate::socket::{NetEvent, Socket};
use crate::store::Store;
use crate::tabs::{self, Leadership};
use gloo::events::EventListener;
use gloo::timers::callback::{Interval, Timeout};
use sotto_engine::random::OsEntropy;
use sotto_engine::vault::{KdfParams, Vault, VaultHeader};
use sotto_messenger::{
    Connection, ConversationId, Effects, Event, InvitePreview, Link, Messenger, MessengerError, Received,
    Tick,
};
use sotto_shared::{Address, ClientFrame, RelayFrame};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use yew::prelude::*;

/// How often the connection machine looks at the clock (it pings and gives up on its own
/// schedule, see `sotto_messenger::connection`).
const TICK_MS: u32 = 5_000;
/// Our name in `Hello`.
const CLIENT: &str = concat!("sotto-web/", env!("CARGO_PKG_VERSION"));
/// Receipts wait this long, so a burst of deliveries is answered with one receipt per contact.
const RECEIPT_DELAY_MS: u32 = 30;
/// Messages rendered when a chat opens, and added by each "show earlier".
const HISTORY_WINDOW: usize = 200;

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

pub fn origin() -> String {
    location().and_then(|l| l.origin().ok()).unwrap_or_default()
}

pub fn navigate(route: &Route) {
    if let Some(l) = location() {
        let _ = l.set_hash(&route.hash());
    }
}

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
    Leader(Leadership),
    UseHere,
    Opened(Result<(Store, Option<VaultHeader>), String>),
    Loaded(Rc<Vault>, Result<Vec<(String, Vec<u8>)>, String>),
    Create {
        name: String,
        passphrase: Option<String>,
    },
    Unlock(String),
    Route(Route),
    Net(NetEvent),
    Reconnect,
    Tick,
    Committed(Vec<ClientFrame>),
    StoreFailed(String),
    SendText(ConversationId, String),
    MakeInvite,
    Accept(Box<InvitePreview>),
    SetVerified(Address, bool),
    SetNotifications(bool, bool),
    AskNotifications,
    SetPassphrase(Option<String>),
    Export(String),
    Import(web_sys::File, String),
    Imported(Result<backup::Restored, String>),
    Visibility,
    Toast(Option<String>),
    /// A slow background step finished, with something to tell.
    Done(Option<String>),
    /// Renders older messages of the open chat.
    ShowEarlier,
    /// Sends the receipts owed for what arrived.
    FlushReceipts,
    /// Runs a slow step (Argon2id) after the "working" state is painted.
    Later(Box<Msg>),
}

pub struct App {
    pub phase: Phase,
    pub route: Route,
    pub connection: Connection,
    pub messenger: Option<Messenger>,
    pub toast: Option<String>,
    pub invite_link: Option<String>,
    /// A slow operation is running (shown as "working…").
    pub busy: bool,
    pub form_error: Option<String>,
    pub has_passphrase: bool,
    /// How many of the open chat's newest messages are rendered.
    pub history_window: usize,
    /// Unsent text per chat (in memory only).
    pub drafts: Rc<RefCell<HashMap<ConversationId, String>>>,
    store: Option<Store>,
    /// The vault header while the unlock screen shows.
    locked: Option<VaultHeader>,
    vault: Option<Rc<Vault>>,
    socket: Option<Socket>,
    retry: Option<Timeout>,
    receipt_timer: Option<Timeout>,
    _ping: Option<Interval>,
    _listeners: Vec<EventListener>,
    /// The chat and message count the view last scrolled to the end for.
    scrolled_for: Option<(ConversationId, usize)>,
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
            listeners.push(EventListener::new(&w, "online", move |_| l.send_message(Msg::Reconnect)));
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
            connection: Connection::new(&origin(), CLIENT),
            messenger: None,
            toast: None,
            invite_link: None,
            busy: false,
            form_error: None,
            has_passphrase: false,
            history_window: HISTORY_WINDOW,
            drafts: Rc::default(),
            store: None,
            locked: None,
            vault: None,
            socket: None,
            retry: None,
            receipt_timer: None,
            _ping: None,
            _listeners: listeners,
            scrolled_for: None,
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Leader(Leadership::Held) => {
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let opened = async {
                        let store = Store::open().await?;
                        let header = store.get(VAULT_RECORD).await?;
                        Ok::<_, crate::store::StoreError>((store, header))
                    }
                    .await;
                    link.send_message(Msg::Opened(match opened {
                        Ok((store, None)) => Ok((store, None)),
                        Ok((store, Some(bytes))) => VaultHeader::from_bytes(&bytes)
                            .map(|h| (store, Some(h)))
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }));
                });
            }
            Msg::Leader(Leadership::Busy) => self.phase = Phase::OtherTab,
            Msg::Leader(Leadership::Lost) => self.stop(Phase::TakenOver),
            Msg::UseHere => {
                self.phase = Phase::Starting;
                tabs::request(true, ctx.link().callback(Msg::Leader));
            }
            Msg::Opened(Err(e)) => self.phase = Phase::Fatal(e),
            Msg::Opened(Ok((store, header))) => {
                self.store = Some(store);
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
            Msg::Loaded(vault, records) => {
                self.busy = false;
                let restored = records.and_then(|records| restore_sealed(&vault, &records));
                match restored {
                    Ok(m) => {
                        self.vault = Some(vault);
                        self.locked = None;
                        self.start(ctx, m);
                    }
                    Err(e) => self.phase = Phase::Fatal(e),
                }
            }
            Msg::Unlock(passphrase) => return self.later(ctx, Msg::Unlock(passphrase)),
            Msg::Create { name, passphrase } => return self.later(ctx, Msg::Create { name, passphrase }),
            Msg::Later(inner) => self.slow(ctx, *inner),
            Msg::ShowEarlier => self.history_window += HISTORY_WINDOW,
            Msg::FlushReceipts => {
                self.receipt_timer = None;
                if let Some(fx) = self.with(|m| m.flush_receipts(now_ms(), &mut OsEntropy)) {
                    self.apply(ctx, fx);
                }
                return false;
            }
            Msg::Route(route) => {
                self.route = route;
                self.history_window = HISTORY_WINDOW;
                self.invite_link = None;
                self.form_error = None;
                self.read_current(ctx);
            }
            Msg::Net(event) => self.on_net(ctx, event),
            Msg::Reconnect => {
                if self.phase == Phase::Ready && self.connection.link() == Link::Offline {
                    self.connect(ctx);
                }
            }
            Msg::Tick => match self.connection.tick(now_ms()) {
                Tick::Ping(ping) => {
                    if let Some(s) = &self.socket {
                        s.send(&ping);
                    }
                }
                Tick::Stale => self.disconnected(ctx),
                Tick::Nothing => {}
            },
            Msg::Committed(frames) => {
                if self.connection.link() == Link::Online
                    && let Some(s) = &self.socket
                {
                    for f in &frames {
                        s.send(f);
                    }
                }
                return false;
            }
            Msg::StoreFailed(e) => {
                // The in-memory state is ahead of storage: stop rather than diverge.
                self.stop(Phase::Fatal(format!("Saving failed, so Sotto stopped to protect your data: {e}")));
            }
            Msg::SendText(to, text) => {
                let result = self.with(|m| m.send_text(&to, &text, now_ms(), &mut OsEntropy));
                self.apply_result(ctx, result);
            }
            Msg::MakeInvite => {
                let result = self.with(|m| m.create_invite(&origin(), now_ms(), &mut OsEntropy));
                if let Some(Ok((link, fx))) = result {
                    self.invite_link = Some(link);
                    self.apply(ctx, fx);
                }
            }
            Msg::Accept(preview) => {
                let result = self.with(|m| m.accept_invite(&preview, now_ms(), &mut OsEntropy));
                if matches!(result, Some(Ok(_))) {
                    navigate(&Route::Chat(ConversationId::Direct(preview.address)));
                }
                self.apply_result(ctx, result);
            }
            Msg::SetVerified(who, verified) => {
                if let Some(fx) = self.with(|m| m.set_verified(&who, verified)) {
                    self.apply(ctx, fx);
                }
            }
            Msg::SetNotifications(on, previews) => {
                if let Some(fx) = self.with(|m| m.set_notifications(on, previews)) {
                    self.apply(ctx, fx);
                }
            }
            Msg::AskNotifications => {
                let previews = self.messenger.as_ref().is_some_and(|m| m.profile().previews);
                attention::ask_permission(ctx.link().callback(move |granted: bool| {
                    if granted {
                        Msg::SetNotifications(true, previews)
                    } else {
                        Msg::Toast(Some("Notifications are blocked in this browser's site settings.".into()))
                    }
                }));
            }
            Msg::SetPassphrase(p) => return self.later(ctx, Msg::SetPassphrase(p)),
            Msg::Export(p) => return self.later(ctx, Msg::Export(p)),
            Msg::Import(file, passphrase) => {
                self.busy = true;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let bytes = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
                        .await
                        .map(|b| js_sys::Uint8Array::new(&b).to_vec())
                        .map_err(|_| "The file could not be read.".to_string());
                    // Argon2id runs after this task yields, so "working…" is on screen.
                    gloo::timers::future::TimeoutFuture::new(30).await;
                    let opened =
                        bytes.and_then(|b| backup::import(&b, &passphrase).map_err(|e| e.to_string()));
                    link.send_message(Msg::Imported(opened));
                });
            }
            Msg::Imported(result) => {
                self.busy = false;
                match result {
                    Err(e) => self.form_error = Some(e),
                    Ok(r) => self.install_backup(ctx, r),
                }
            }
            Msg::Visibility => self.read_current(ctx),
            Msg::Toast(t) => self.toast = t,
            Msg::Done(t) => {
                self.busy = false;
                self.toast = t;
            }
        }
        true
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        attention::set_title(self.messenger.as_ref().map_or(0, Messenger::unread_total));
        // Follow the newest message when a chat opens or grows, not on every repaint (a status
        // change must not pull someone reading older messages back down).
        if let (Route::Chat(who), Some(m)) = (&self.route, &self.messenger) {
            let shown = (*who, m.messages(who).len());
            if self.scrolled_for.map(|(a, _)| a) != Some(*who) {
                // A chat just opened (its composer is new): put its draft back.
                crate::screens::restore_draft(self.drafts.borrow().get(who).map_or("", String::as_str));
            }
            if self.scrolled_for != Some(shown) {
                self.scrolled_for = Some(shown);
                crate::screens::scroll_to_end();
            }
        } else {
            self.scrolled_for = None;
        }
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        crate::screens::view(self, ctx)
    }
}

/// Opens sealed records (all but the vault header) and rebuilds the messenger from them.
fn restore_sealed(vault: &Vault, records: &[(String, Vec<u8>)]) -> Result<Messenger, String> {
    let mut open = Vec::with_capacity(records.len());
    for (name, sealed) in records.iter().filter(|(n, _)| n != VAULT_RECORD) {
        let plain = vault.open(name, sealed).map_err(|e| format!("{name}: {e}"))?;
        open.push((name.clone(), plain.to_vec()));
    }
    Messenger::restore(open).map_err(|e| e.to_string())
}

fn current_route() -> Route {
    Route::parse(&location().and_then(|l| l.hash().ok()).unwrap_or_default())
}

impl App {
    fn with<T>(&mut self, f: impl FnOnce(&mut Messenger) -> T) -> Option<T> {
        self.messenger.as_mut().map(f)
    }

    /// Shows "working…", then runs `msg`'s slow part once that is painted.
    fn later(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        self.busy = true;
        self.form_error = None;
        let link = ctx.link().clone();
        Timeout::new(30, move || link.send_message(Msg::Later(Box::new(msg)))).forget();
        true
    }

    fn slow(&mut self, ctx: &Context<Self>, msg: Msg) {
        self.busy = false;
        let params = KdfParams::default();
        match msg {
            Msg::Unlock(passphrase) => {
                let Some(header) = &self.locked else { return };
                match Vault::unlock(header, Some(&passphrase)) {
                    Ok(v) => {
                        self.busy = true;
                        self.load(ctx, v);
                    }
                    Err(e) => self.form_error = Some(e.to_string()),
                }
            }
            Msg::Create { name, passphrase } => {
                let created = (|| {
                    let vault = Vault::create(&mut OsEntropy).map_err(|e| e.to_string())?;
                    let header = vault
                        .header(passphrase.as_deref(), params, &mut OsEntropy)
                        .map_err(|e| e.to_string())?;
                    let (m, fx) =
                        Messenger::create(&name, now_ms(), &mut OsEntropy).map_err(|e| e.to_string())?;
                    Ok::<_, String>((vault, header, m, fx))
                })();
                match created {
                    Err(e) => self.form_error = Some(e),
                    Ok((vault, header, m, fx)) => {
                        self.has_passphrase = passphrase.is_some();
                        self.vault = Some(Rc::new(vault));
                        self.commit(ctx, vec![(VAULT_RECORD.into(), Some(header.to_bytes()))], fx, false);
                        self.start(ctx, m);
                    }
                }
            }
            Msg::SetPassphrase(p) => {
                let Some(vault) = &self.vault else { return };
                match vault.header(p.as_deref(), params, &mut OsEntropy) {
                    Ok(h) => {
                        self.has_passphrase = p.is_some();
                        self.commit(
                            ctx,
                            vec![(VAULT_RECORD.into(), Some(h.to_bytes()))],
                            Effects::default(),
                            false,
                        );
                        self.toast = Some(if p.is_some() {
                            "Passphrase set: it will be asked for when Sotto opens.".into()
                        } else {
                            "Passphrase removed.".into()
                        });
                    }
                    Err(e) => self.form_error = Some(e.to_string()),
                }
            }
            Msg::Export(passphrase) => {
                let (Some(vault), Some(store)) = (self.vault.clone(), self.store.clone()) else { return };
                self.busy = true;
                let link = ctx.link().clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = match store.load_all().await {
                        Ok(records) => backup::export(&vault, records, &passphrase, params, &mut OsEntropy)
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    link.send_message(Msg::Done(Some(match result {
                        Ok(bytes) => {
                            crate::screens::download(&bytes);
                            "Backup saved. Keep the file and its passphrase somewhere safe.".into()
                        }
                        Err(e) => e,
                    })));
                });
            }
            _ => {}
        }
    }

    fn install_backup(&mut self, ctx: &Context<Self>, restored: backup::Restored) {
        let backup::Restored { vault, header, records } = restored;
        let m = match restore_sealed(&vault, &records) {
            Ok(m) => m,
            Err(e) => return self.form_error = Some(format!("The backup is damaged: {e}")),
        };
        self.stop_connection();
        let mut raw: Vec<(String, Option<Vec<u8>>)> = vec![(VAULT_RECORD.into(), Some(header.to_bytes()))];
        raw.extend(records.into_iter().map(|(n, v)| (n, Some(v))));
        self.vault = Some(Rc::new(vault));
        self.has_passphrase = true;
        self.commit(ctx, raw, Effects::default(), true);
        self.toast = Some("Backup restored. Stop using Sotto where the backup came from.".into());
        navigate(&Route::Chats);
        self.start(ctx, m);
    }

    fn load(&mut self, ctx: &Context<Self>, vault: Vault) {
        let Some(store) = self.store.clone() else { return };
        let link = ctx.link().clone();
        let vault = Rc::new(vault);
        wasm_bindgen_futures::spawn_local(async move {
            let records = store.load_all().await.map_err(|e| e.to_string());
            link.send_message(Msg::Loaded(vault, records));
        });
    }

    fn start(&mut self, ctx: &Context<Self>, m: Messenger) {
        self.messenger = Some(m);
        self.phase = Phase::Ready;
        let link = ctx.link().clone();
        self._ping = Some(Interval::new(TICK_MS, move || link.send_message(Msg::Tick)));
        self.read_current(ctx);
        self.connect(ctx);
    }

    fn stop_connection(&mut self) {
        self.socket = None;
        self.retry = None;
        self._ping = None;
        self.connection.stopped();
    }

    fn stop(&mut self, phase: Phase) {
        self.stop_connection();
        self.messenger = None;
        self.vault = None;
        self.store = None;
        self.phase = phase;
    }

    fn connect(&mut self, ctx: &Context<Self>) {
        self.retry = None;
        let url = origin().replacen("http", "ws", 1) + "/ws";
        match Socket::connect(&url, ctx.link().callback(Msg::Net)) {
            Ok(s) => {
                self.socket = Some(s);
                self.connection.connecting(now_ms());
            }
            Err(_) => self.disconnected(ctx),
        }
    }

    fn disconnected(&mut self, ctx: &Context<Self>) {
        self.socket = None;
        if self.phase != Phase::Ready {
            self.connection.stopped();
            return;
        }
        let delay = self.connection.closed(js_sys::Math::random());
        let link = ctx.link().clone();
        self.retry = Some(Timeout::new(delay as u32, move || link.send_message(Msg::Reconnect)));
    }

    fn on_net(&mut self, ctx: &Context<Self>, event: NetEvent) {
        match event {
            NetEvent::Open => {
                let hello = self.connection.opened(now_ms());
                if let Some(s) = &self.socket {
                    s.send(&hello);
                }
            }
            NetEvent::Closed => self.disconnected(ctx),
            NetEvent::Unreadable(e) => {
                self.toast = Some(format!("The relay sent something this app cannot read: {e}"))
            }
            NetEvent::Frame(frame) => {
                let Some(m) = &self.messenger else { return };
                let frame = match self.connection.received(frame, now_ms(), |o, c| m.authenticate(o, c)) {
                    Received::Reply(login) => {
                        if let Some(s) = &self.socket {
                            s.send(&login);
                        }
                        return;
                    }
                    Received::Done => return,
                    Received::Refused(RelayFrame::Error { code, message, .. }) => {
                        self.toast =
                            Some(format!("The relay refused the login ({}): {message}", code.as_str()));
                        return self.disconnected(ctx);
                    }
                    Received::Refused(_) => return self.disconnected(ctx),
                    Received::Pass(RelayFrame::Error { code, message, id: None }) => {
                        self.toast =
                            Some(format!("The relay refused a request ({}): {message}", code.as_str()));
                        return;
                    }
                    Received::LoggedIn(frame) | Received::Pass(frame) => frame,
                };
                if let Some(fx) = self.with(|m| m.on_frame(frame, now_ms(), &mut OsEntropy)) {
                    self.apply(ctx, fx);
                }
                if self.receipt_timer.is_none()
                    && self.messenger.as_ref().is_some_and(Messenger::receipts_due)
                {
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
        if let Some(fx) = self.with(|m| {
            m.set_reading(reading);
            reading.map(|who| m.mark_read(&who, now_ms(), &mut OsEntropy))
        }) && let Some(fx) = fx
        {
            self.apply(ctx, fx);
        }
    }

    fn apply_result(&mut self, ctx: &Context<Self>, result: Option<Result<Effects, MessengerError>>) {
        match result {
            Some(Ok(fx)) => self.apply(ctx, fx),
            Some(Err(e)) => self.toast = Some(e.to_string()),
            None => {}
        }
    }

    /// Commits the effects' writes, then sends their frames; shows their events.
    pub fn apply(&mut self, ctx: &Context<Self>, fx: Effects) {
        let mut fx = fx;
        let events = std::mem::take(&mut fx.events);
        self.commit(ctx, Vec::new(), fx, false);
        for event in events {
            match event {
                Event::Message { conversation, name, text } => {
                    // Only a hidden tab notifies: a visible one shows the message itself.
                    if let Some(p) = self.messenger.as_ref().map(Messenger::profile)
                        && p.notifications
                        && attention::page_hidden()
                    {
                        attention::notify(
                            &name,
                            p.previews.then_some(text.as_str()),
                            Route::Chat(conversation).hash(),
                        );
                    }
                }
                Event::ContactAdded(_) => {}
                Event::Problem(p) => self.toast = Some(p),
            }
        }
    }

    /// One transaction: `raw` records as given, the effects' records sealed; then the frames.
    fn commit(&mut self, ctx: &Context<Self>, raw: Vec<(String, Option<Vec<u8>>)>, fx: Effects, clear: bool) {
        let (Some(store), Some(vault)) = (&self.store, &self.vault) else { return };
        let mut writes = raw;
        for (key, value) in fx.writes {
            // The record's name is the storage key and the vault's associated data.
            let name = key.to_string();
            let sealed = match value {
                Some(v) => match vault.seal(&name, &v, &mut OsEntropy) {
                    Ok(s) => Some(s),
                    Err(e) => return ctx.link().send_message(Msg::StoreFailed(e.to_string())),
                },
                None => None,
            };
            writes.push((name, sealed));
        }
        let done = store.commit(writes, clear);
        let frames = fx.frames;
        let link = ctx.link().clone();
        wasm_bindgen_futures::spawn_local(async move {
            match done.await {
                Ok(()) => link.send_message(Msg::Committed(frames)),
                Err(e) => link.send_message(Msg::StoreFailed(e.to_string())),
            }
        });
    }
}

/// The element an event came from, as `T`.
pub fn target<T: JsCast>(e: &web_sys::Event) -> Option<T> {
    e.target().and_then(|t| t.dyn_into::<T>().ok())
}
