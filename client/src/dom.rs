//! Every imperative touch of the page in one place: the clock and location, form fields read
//! on submit, focus, scrolling, the composer's text, clipboard and file downloads. Views stay
//! declarative (Yew) and call these from their callbacks; `app` calls them after a render.

use crate::route::Route;
use wasm_bindgen::JsCast;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

fn location() -> Option<web_sys::Location> {
    web_sys::window().map(|w| w.location())
}

pub fn origin() -> String {
    location().and_then(|l| l.origin().ok()).unwrap_or_default()
}

pub fn current_route() -> Route {
    Route::parse(&location().and_then(|l| l.hash().ok()).unwrap_or_default())
}

pub fn navigate(route: &Route) {
    if let Some(l) = location() {
        let _ = l.set_hash(&route.hash());
    }
}

/// The element an event came from, as `T`.
pub fn target<T: JsCast>(e: &web_sys::Event) -> Option<T> {
    e.target().and_then(|t| t.dyn_into::<T>().ok())
}

/// The element with this id, as `T`.
fn element<T: JsCast>(id: &str) -> Option<T> {
    web_sys::window()?.document()?.get_element_by_id(id)?.dyn_into::<T>().ok()
}

/// The value of the input with this id ("" if there is none).
pub fn input_value(id: &str) -> String {
    element::<HtmlInputElement>(id).map(|i| i.value()).unwrap_or_default()
}

/// Whether the checkbox with this id is ticked.
pub fn is_checked(id: &str) -> bool {
    element::<HtmlInputElement>(id).is_some_and(|i| i.checked())
}

/// The file chosen in the file input with this id.
pub fn chosen_file(id: &str) -> Option<web_sys::File> {
    element::<HtmlInputElement>(id)?.files()?.get(0)
}

/// The composer's id (one composer is on screen at a time).
pub const COMPOSER: &str = "composer";

/// Takes the composer's text for sending (and empties it), keeping focus there.
pub fn take_composer() -> Option<String> {
    let area = element::<HtmlTextAreaElement>(COMPOSER)?;
    let text = area.value();
    area.set_value("");
    let _ = area.focus();
    Some(text)
}

pub fn focus_composer() {
    if let Some(area) = element::<HtmlTextAreaElement>(COMPOSER) {
        let _ = area.focus();
    }
}

/// Puts a chat's unsent text back into its (new) composer.
pub fn restore_draft(text: &str) {
    if let Some(area) = element::<HtmlTextAreaElement>(COMPOSER) {
        area.set_value(text);
    }
}

fn message_list() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.query_selector(".messages").ok().flatten()
}

/// Keeps the newest message in view.
pub fn scroll_to_end() {
    if let Some(list) = message_list() {
        list.set_scroll_top(list.scroll_height());
    }
}

/// How far the message list is scrolled up from its bottom.
pub fn distance_from_bottom() -> Option<i32> {
    message_list().map(|list| list.scroll_height() - list.scroll_top())
}

/// Scrolls the message list to `distance` from its bottom (after messages went in above).
pub fn set_distance_from_bottom(distance: i32) {
    if let Some(list) = message_list() {
        list.set_scroll_top(list.scroll_height() - distance);
    }
}

/// Closes the menu (`<details>`) an event came from (a click, a choice).
pub fn close_menu(e: &web_sys::Event) {
    let menu = target::<web_sys::Element>(e).and_then(|t| t.closest("details").ok().flatten());
    if let Some(menu) = menu {
        let _ = menu.remove_attribute("open");
    }
}

/// Scrolls message `seq` of the open chat into view and marks it for a moment; whether it is
/// on the page.
pub fn show_message(seq: u64) -> bool {
    let Some(el) =
        web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&format!("m{seq}")))
    else {
        return false;
    };
    el.scroll_into_view();
    // Taken off and put back (a layout read in between), so the mark shows again each time.
    let _ = el.class_list().remove_1("found");
    let _ = el.client_width();
    let _ = el.class_list().add_1("found");
    true
}

/// Copies `text`; resolves to whether the browser allowed it.
pub async fn copy(text: String) -> bool {
    let Some(w) = web_sys::window() else { return false };
    wasm_bindgen_futures::JsFuture::from(w.navigator().clipboard().write_text(&text)).await.is_ok()
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

/// Says on `<html data-saving>` how many store transactions are not durable yet.
pub fn set_saving(n: usize) {
    if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
        let _ = root.set_attribute("data-saving", &n.to_string());
    }
}
