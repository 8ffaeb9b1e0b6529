//! Getting the person's attention while the tab is hidden: the unread count in the title and,
//! once they opted in, a desktop notification naming the sender.

use wasm_bindgen::prelude::*;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

pub fn set_title(unread: usize) {
    if let Some(d) = web_sys::window().and_then(|w| w.document()) {
        d.set_title(&if unread == 0 { "Sotto".to_string() } else { format!("({unread}) Sotto") });
    }
}

pub fn page_hidden() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| d.hidden())
}

pub fn permission_granted() -> bool {
    Notification::permission() == NotificationPermission::Granted
}

/// Asks the browser for permission; `done` gets the answer.
pub fn ask_permission(done: yew::Callback<bool>) {
    let Ok(p) = Notification::request_permission() else {
        done.emit(false);
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        let answer = wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|v| v.as_string());
        done.emit(answer.as_deref() == Some("granted"));
    });
}

/// A notification naming the sender; the text only with previews on. Clicking it focuses the
/// tab and opens `hash` (the sender's chat).
pub fn notify(sender: &str, text: Option<&str>, hash: String) {
    if !permission_granted() {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(text.unwrap_or("New message"));
    options.set_tag("sotto-message");
    options.set_icon("/icon.svg");
    if let Ok(n) = Notification::new_with_options(&format!("Message from {sender}"), &options) {
        let on_click = Closure::<dyn FnMut()>::new(move || {
            if let Some(w) = web_sys::window() {
                let _ = w.focus();
                let _ = w.location().set_hash(&hash);
            }
        });
        n.set_onclick(Some(on_click.as_ref().unchecked_ref()));
        on_click.forget();
    }
}
