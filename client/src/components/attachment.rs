//! A file inside a message bubble (a photo's thumbnail, a player, a voice message's waveform,
//! a file to save), and the files this tab is still sending.

use crate::action::Action;
use crate::files::{FileState, Transfer, percent};
use base64ct::{Base64, Encoding};
use sotto_engine::attachment::{Attachment, AttachmentKind};
use yew::prelude::*;

/// "4.8 MB", "312 KB", "17 bytes".
fn size_words(bytes: u64) -> String {
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{} KB", bytes / 1_000),
        // Integers only: formatting a float costs the app about 12 KB of wasm.
        _ => {
            let tenths = (bytes + 50_000) / 100_000;
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
    }
}

/// A photo's size in its bubble: at most 280 pixels wide, its shape kept.
fn fit(width: u32, height: u32) -> (u32, u32) {
    const MAX: u32 = 280;
    // A sender's numbers: kept inside the bubble whatever they say.
    let (w, h) = match width {
        0 => (MAX, MAX),
        w if w <= MAX => (w, height),
        w => (MAX, (u64::from(height) * u64::from(MAX) / u64::from(w)) as u32),
    };
    (w.max(16), h.clamp(16, 2 * MAX))
}

/// "0:07", "12:30".
fn duration(ms: u32) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// While opening: how far, and a way to stop.
fn opening(state: &FileState, on_action: &Callback<Action>) -> Html {
    match state {
        FileState::Opening(p, tag) => {
            let tag = *tag;
            html! {
                <span class="transfer" data-testid="opening">
                    <progress max="100" value={p.to_string()} aria-label="Downloading" />{ format!(" {p} %") }
                    <button class="secondary small" onclick={on_action.reform(move |_| Action::CancelTransfer(tag))}>
                        { "Cancel" }
                    </button>
                </span>
            }
        }
        FileState::Failed(why) => html! { <span class="warning small" role="alert">{ why.clone() }</span> },
        _ => Html::default(),
    }
}

/// The file of message `id`, as its bubble shows it.
pub fn attachment(id: [u8; 16], a: &Attachment, state: &FileState, on_action: &Callback<Action>) -> Html {
    let open = on_action.reform(move |_: MouseEvent| Action::OpenFile(id));
    let url = match state {
        FileState::Open(url) => Some(url.clone()),
        _ => None,
    };
    let about = format!("{} · {}", a.name, size_words(a.size));
    match (&a.kind, url) {
        (AttachmentKind::Image { width, height, thumbnail }, _) => html! {
            <div class="file-photo">
                <button class="photo" onclick={open} aria-label={format!("Open photo {about}")} data-testid="photo">
                    <img src={format!("data:image/jpeg;base64,{}", Base64::encode_string(thumbnail))}
                        width={fit(*width, *height).0.to_string()} height={fit(*width, *height).1.to_string()} alt="" />
                </button>
                { opening(state, on_action) }
            </div>
        },
        (AttachmentKind::Voice { duration_ms, .. } | AttachmentKind::Media { duration_ms }, Some(url)) => {
            if a.media_type.starts_with("video/") {
                html! { <video class="player" src={url} controls=true autoplay=true data-testid="player" /> }
            } else {
                html! { <audio class="player" src={url} controls=true autoplay=true data-testid="player"
                aria-label={format!("{} ({})", a.name, duration(*duration_ms))} /> }
            }
        }
        (AttachmentKind::Voice { duration_ms, waveform }, None) => {
            // Five units a level: a bar of three and a gap of two.
            let bars: Html = waveform
                .iter()
                .enumerate()
                .map(|(i, level)| {
                    let h = 2 + u32::from(*level) * 28 / 255;
                    html! { <rect x={(i * 5).to_string()} y={(16 - h / 2).to_string()} width="3" height={h.to_string()} rx="1" /> }
                })
                .collect();
            let view_box = format!("0 0 {} 32", waveform.len().max(1) * 5);
            html! {
                <div class="file-voice" data-testid="voice">
                    <button class="icon-button" onclick={open} aria-label={format!("Play voice message, {}", duration(*duration_ms))}>{ "▶" }</button>
                    <svg class="waveform" viewBox={view_box} preserveAspectRatio="none" aria-hidden="true">{ bars }</svg>
                    <span class="small">{ duration(*duration_ms) }</span>
                    { opening(state, on_action) }
                </div>
            }
        }
        (AttachmentKind::Media { duration_ms }, None) => html! {
            <div class="file-row">
                <button class="icon-button" onclick={open} aria-label={format!("Play {about}")} data-testid="play">{ "▶" }</button>
                <span>{ format!("{about} · {}", duration(*duration_ms)) }</span>
                { opening(state, on_action) }
            </div>
        },
        (AttachmentKind::File, _) => html! {
            <div class="file-row" data-testid="file">
                <span class="file-icon">{ super::icon(super::DOCUMENT) }</span>
                <span class="file-about">{ about }<br/><span class="muted small">{ a.media_type.clone() }</span></span>
                <button class="secondary" onclick={open} data-testid="save">{ "Save" }</button>
                { opening(state, on_action) }
            </div>
        },
    }
}

/// The files this tab is sending to a chat: name, progress, a way to stop.
pub fn uploads<'a>(transfers: impl Iterator<Item = &'a Transfer>, on_action: &Callback<Action>) -> Html {
    transfers
        .map(|t| {
            let tag = t.tag;
            let p = percent(t.done, t.total);
            html! {
                <li key={format!("up-{tag}")} class="bubble out upload" data-testid="upload">
                    <p class="text">{ format!("{} · {}", t.name, if t.total == 0 { "preparing".to_string() } else { format!("{p} %") }) }</p>
                    <progress max="100" value={p.to_string()} aria-label={format!("Sending {}", t.name)} />
                    <button class="secondary small" onclick={on_action.reform(move |_| Action::CancelTransfer(tag))}
                        data-testid="cancel-upload">{ "Cancel" }</button>
                </li>
            }
        })
        .collect()
}
