//! One tab leads: only the tab holding the `sotto-leader` Web Lock opens the store and the
//! relay connection, so two tabs never advance the same ratchet from two copies of its state.
//! Another tab shows "open in another tab" and can take over (`steal`), which makes the old
//! leader stop at once.

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use yew::Callback;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leadership {
    Held,
    /// Another tab leads.
    Busy,
    /// Another tab took over.
    Lost,
}

/// Asks for the lock; `steal` takes it from the current leader.
pub fn request(steal: bool, events: Callback<Leadership>) {
    let locks = web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| Reflect::get(&n, &"locks".into()).ok())
        .filter(|l| !l.is_undefined());
    let Some(locks) = locks else {
        // Browsers without Web Locks (very old ones) get no coordination: this tab leads.
        events.emit(Leadership::Held);
        return;
    };
    let options = Object::new();
    let _ = Reflect::set(&options, &(if steal { "steal" } else { "ifAvailable" }).into(), &true.into());
    let cb = events.clone();
    let granted = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |lock: JsValue| {
        if lock.is_null() {
            cb.emit(Leadership::Busy);
            return JsValue::UNDEFINED;
        }
        cb.emit(Leadership::Held);
        // Held for the life of the tab.
        Promise::new(&mut |_, _| {}).into()
    });
    let request = Reflect::get(&locks, &"request".into()).ok().and_then(|f| f.dyn_into::<Function>().ok());
    let result =
        request.and_then(|f| f.call3(&locks, &"sotto-leader".into(), &options, granted.as_ref()).ok());
    granted.forget();
    if let Some(p) = result.and_then(|p| p.dyn_into::<Promise>().ok()) {
        let lost = Closure::<dyn FnMut(JsValue)>::new(move |_| events.emit(Leadership::Lost));
        let _ = p.catch(&lost);
        lost.forget();
    }
}
