//! The WebSocket to the relay: binary frames in, decoded frames out. Login, keep-alive and the
//! reconnection schedule are `sotto_messenger::connection`'s (driven by `app.rs`), so this
//! stays a thin, replaceable pipe.

use sotto_shared::{ClientFrame, RelayFrame, decode_relay, encode_client};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};
use yew::Callback;

#[derive(Debug)]
pub enum NetEvent {
    Open,
    Frame(RelayFrame),
    /// The relay sent something this build cannot read.
    Unreadable(String),
    Closed,
}

pub struct Socket {
    ws: WebSocket,
    _on_open: Closure<dyn FnMut(Event)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    pub fn connect(url: &str, events: Callback<NetEvent>) -> Result<Socket, String> {
        let ws = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let cb = events.clone();
        let on_open = Closure::<dyn FnMut(Event)>::new(move |_| cb.emit(NetEvent::Open));
        let cb = events.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Ok(buf) = e.data().dyn_into::<js_sys::ArrayBuffer>() else {
                cb.emit(NetEvent::Unreadable("a text frame".into()));
                return;
            };
            match decode_relay(&js_sys::Uint8Array::new(&buf).to_vec()) {
                Ok(frame) => cb.emit(NetEvent::Frame(frame)),
                Err(err) => cb.emit(NetEvent::Unreadable(err.to_string())),
            }
        });
        // `error` is always followed by `close`, so only `close` is handled.
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_| events.emit(NetEvent::Closed));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// Sends a frame; false when the socket is not open.
    pub fn send(&self, frame: &ClientFrame) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(&encode_client(frame)).is_ok()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
