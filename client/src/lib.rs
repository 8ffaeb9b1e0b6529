//! The Sotto web app. The UI (Yew) exists only on wasm32; what it builds on (the engine,
//! the wire types) is tested natively.

#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
mod app;

pub mod messenger;
pub mod onboarding;

/// Mounts the app into the page's `<body>`.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    yew::Renderer::<app::App>::new().render();
}
