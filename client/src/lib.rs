//! The Sotto web app. The UI (Yew) and the browser plumbing exist only on wasm32; what they
//! build on (the messenger, routes, backups, QR codes) is tested natively.
//!
//! - the messenger (contacts, conversations, outbox) is the `sotto-messenger` crate
//! - `backup`, `route`, `qr`, `status`: small pure pieces
//! - wasm32 only: `app` (life cycle, actions, which page shows); `pages` (one component per
//!   screen) and `components` (pieces they share), which take props and report an `action`;
//!   `dom` (every imperative touch of the page), `dates`, `files` (files moving through the
//!   page's file worker, and voice recording), `store` (IndexedDB), `socket`
//!   (WebSocket), `tabs` (one leading tab), `attention` (title, notifications)

#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod action;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod attention;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod dates;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod pages;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
pub mod store;
#[cfg(target_arch = "wasm32")]
mod tabs;

pub mod backup;
pub mod layout;
pub mod qr;
pub mod route;
pub mod status;

/// Mounts the app into the page's `<body>`.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    yew::Renderer::<app::App>::new().render();
}
