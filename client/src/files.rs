//! Files in chats, the app's side: what is moving and what is open, and the calls into the
//! page's file plumbing (`client/static/files.js`, which runs the worker that seals and opens
//! them). Sealing happens there, never here: the page's thread stays free while 2 GiB move.

use js_sys::{Function, Promise, Reflect, Uint8Array};
use sotto_engine::attachment::{Attachment, AttachmentKind};
use sotto_engine::consts::{
    MAX_FILE_NAME_BYTES, MAX_MEDIA_TYPE_BYTES, MAX_THUMBNAIL_BYTES, MAX_WAVEFORM_LEVELS,
};
use sotto_engine::file::FileKey;
use sotto_messenger::ConversationId;
use sotto_shared::ids::BlobId;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::File;
use yew::Callback;

/// A transfer's progress for the app: tag, bytes done, bytes in all.
pub type Progress = Callback<(u32, u64, u64)>;

#[wasm_bindgen(js_namespace = sottoFiles)]
extern "C" {
    #[wasm_bindgen(catch, js_name = upload)]
    fn js_upload(tag: u32, file: &File, progress: &Function) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = download)]
    fn js_download(
        tag: u32,
        blob: &str,
        key: &[u8],
        digest: &[u8],
        size: f64,
        media_type: &str,
        progress: &Function,
    ) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = cancel)]
    fn js_cancel(tag: u32) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_name = describe)]
    fn js_describe(file: &File, max_thumbnail: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = record)]
    fn js_record(max_levels: u32) -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = save)]
    fn js_save(file: &File, name: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(catch, js_name = forgetOpened)]
    fn js_forget_opened() -> Result<Promise, JsValue>;
    #[wasm_bindgen(catch, js_name = scanQr)]
    fn js_scan_qr(video_id: &str) -> Result<Promise, JsValue>;

    /// A voice message being recorded (the microphone is on).
    pub type Recorder;
    #[wasm_bindgen(method)]
    fn stop(this: &Recorder) -> Promise;
    #[wasm_bindgen(method, js_name = cancel)]
    pub fn discard(this: &Recorder);
}

/// A file moving between this tab and the relay.
pub struct Transfer {
    pub tag: u32,
    pub conversation: ConversationId,
    pub name: String,
    /// Ciphertext bytes moved, of `total` (0 of 0 while a photo's thumbnail is made).
    pub done: u64,
    pub total: u64,
    /// An upload: the words that go with it (what was typed when it was attached).
    pub caption: String,
    /// A download: the file it opens, and the message that asked.
    pub opens: Option<(FileRef, [u8; 16])>,
}

/// Which file an attachment names: its blob, key and digest together. Opened files are
/// found by all three, never by a message id alone (a sender picks those: a copy of someone
/// else's id must not show someone else's file).
#[derive(Clone, PartialEq)]
pub struct FileRef {
    blob: BlobId,
    key: FileKey,
    digest: [u8; 32],
}

impl From<&Attachment> for FileRef {
    fn from(a: &Attachment) -> FileRef {
        FileRef { blob: a.blob, key: a.key.clone(), digest: a.digest }
    }
}

/// A downloaded and opened file (on disk, in the origin's private file system).
pub struct Opened {
    pub file_ref: FileRef,
    pub url: String,
    pub file: File,
}

/// How a message's file stands here.
#[derive(Clone, Debug, PartialEq)]
pub enum FileState {
    Closed,
    /// Downloading and opening: percent done, and the transfer's tag (to cancel it).
    Opening(u8, u32),
    /// Opened: its address in this tab.
    Open(String),
    Failed(String),
}

/// Every file moving or open in this tab, and the voice message being recorded.
#[derive(Default)]
pub struct Files {
    next_tag: u32,
    pub transfers: Vec<Transfer>,
    pub opened: Vec<Opened>,
    pub failed: Vec<(FileRef, FileError)>,
    pub recording: Option<(ConversationId, Recorder, f64)>,
    /// The browser is asking for the microphone (a recording is about to start).
    pub asking_microphone: bool,
    /// The photo shown whole, over the chat.
    pub viewing: Option<[u8; 16]>,
}

impl Files {
    fn start(
        &mut self,
        conversation: ConversationId,
        name: String,
        caption: String,
        opens: Option<(FileRef, [u8; 16])>,
    ) -> u32 {
        self.next_tag += 1;
        let tag = self.next_tag;
        self.transfers.push(Transfer { tag, conversation, name, done: 0, total: 0, caption, opens });
        tag
    }

    pub fn progress(&mut self, tag: u32, done: u64, total: u64) {
        if let Some(t) = self.transfers.iter_mut().find(|t| t.tag == tag) {
            (t.done, t.total) = (done, total);
        }
    }

    pub fn finish(&mut self, tag: u32) -> Option<Transfer> {
        let i = self.transfers.iter().position(|t| t.tag == tag)?;
        Some(self.transfers.remove(i))
    }

    pub fn state(&self, a: &Attachment) -> FileState {
        let wanted = FileRef::from(a);
        if let Some(t) = self.transfers.iter().find(|t| t.opens.as_ref().is_some_and(|(f, _)| *f == wanted)) {
            return FileState::Opening(percent(t.done, t.total), t.tag);
        }
        if let Some(o) = self.opened(a) {
            return FileState::Open(o.url.clone());
        }
        match self.failed.iter().find(|(f, _)| *f == wanted) {
            Some((_, why)) => FileState::Failed(why.to_string()),
            None => FileState::Closed,
        }
    }

    pub fn opened(&self, a: &Attachment) -> Option<&Opened> {
        let wanted = FileRef::from(a);
        self.opened.iter().find(|o| o.file_ref == wanted)
    }

    /// Seals and uploads `file` for `to` (a photo's thumbnail made first, unless `kind` says
    /// how it shows); `done` gets what its message carries, or why not.
    pub fn send(
        &mut self,
        to: ConversationId,
        file: File,
        kind: Option<AttachmentKind>,
        caption: String,
        progress: Progress,
        done: Callback<(u32, Result<Attachment, FileError>)>,
    ) {
        let tag = self.start(to, file.name(), caption, None);
        wasm_bindgen_futures::spawn_local(async move {
            let (kind, file) = match kind {
                Some(k) => (k, file),
                None => describe(file).await,
            };
            let sent = upload(tag, file, kind, move |d, t| progress.emit((tag, d, t))).await;
            done.emit((tag, sent));
        });
    }

    /// Downloads and opens the file of message `id` in `conversation`.
    pub fn open(
        &mut self,
        conversation: ConversationId,
        id: [u8; 16],
        a: Attachment,
        progress: Progress,
        done: Callback<(u32, Result<File, FileError>)>,
    ) {
        let wanted = FileRef::from(&a);
        if self.transfers.iter().any(|t| t.opens.as_ref().is_some_and(|(f, _)| *f == wanted)) {
            return;
        }
        self.failed.retain(|(f, _)| *f != wanted);
        let tag = self.start(conversation, a.name.clone(), String::new(), Some((wanted, id)));
        wasm_bindgen_futures::spawn_local(async move {
            let opened = download(tag, &a, move |d, t| progress.emit((tag, d, t))).await;
            done.emit((tag, opened));
        });
    }

    /// A download ended: the message that asked for it, its file now open (or failed, with why).
    pub fn opened_as(&mut self, tag: u32, result: Result<File, FileError>) -> Option<[u8; 16]> {
        let (file_ref, message) = self.finish(tag)?.opens?;
        match result {
            Ok(file) => {
                let url = web_sys::Url::create_object_url_with_blob(&file).ok()?;
                self.opened.push(Opened { file_ref, url, file });
            }
            Err(FileError::Cancelled) => {}
            Err(why) => self.failed.push((file_ref, why)),
        }
        Some(message)
    }

    /// Stops every transfer and the microphone (another tab took over).
    pub fn stop_all(&mut self) {
        for t in std::mem::take(&mut self.transfers) {
            let _ = js_cancel(t.tag);
        }
        if let Some((_, recorder, _)) = self.recording.take() {
            recorder.discard();
        }
    }

    /// Stops a transfer (the worker drops what it was doing).
    pub fn cancel(&mut self, tag: u32) {
        let _ = js_cancel(tag);
        self.finish(tag);
    }

    /// Files this tab is sending to `conversation`.
    pub fn uploads(&self, conversation: &ConversationId) -> impl Iterator<Item = &Transfer> {
        self.transfers.iter().filter(move |t| t.opens.is_none() && t.conversation == *conversation)
    }
}

/// Why a file did not move.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FileError {
    /// The person stopped it.
    #[error("stopped")]
    Cancelled,
    /// What the browser, the worker or the relay said, in words.
    #[error("{0}")]
    Refused(String),
    #[error("the file worker answered wrongly")]
    Garbled,
    #[error("nothing was recorded")]
    NothingRecorded,
}

pub fn percent(done: u64, total: u64) -> u8 {
    (done.min(total) * 100).checked_div(total).unwrap_or(0) as u8
}

/// What JavaScript threw: a transfer cancelled (an `AbortError`), or words.
fn words(e: JsValue) -> FileError {
    if e.dyn_ref::<web_sys::DomException>().is_some_and(|d| d.name() == "AbortError") {
        return FileError::Cancelled;
    }
    FileError::Refused(match e.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => e.as_string().unwrap_or_else(|| "the browser refused".into()),
    })
}

fn field(object: &JsValue, name: &str) -> JsValue {
    Reflect::get(object, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

fn bytes<const N: usize>(value: JsValue) -> Result<[u8; N], FileError> {
    value.dyn_into::<Uint8Array>().ok().and_then(|a| a.to_vec().try_into().ok()).ok_or(FileError::Garbled)
}

async fn wait(promise: Result<Promise, JsValue>) -> Result<JsValue, FileError> {
    JsFuture::from(promise.map_err(words)?).await.map_err(words)
}

/// A progress callback for JavaScript: `(done, total)` in bytes.
fn on_progress(mut f: impl FnMut(u64, u64) + 'static) -> Closure<dyn FnMut(f64, f64)> {
    Closure::new(move |done: f64, total: f64| f(done as u64, total as u64))
}

/// A name the message may carry: no path, no control or direction characters, at most the
/// limit's bytes (cut at a character).
fn file_name(name: &str) -> String {
    let mut name: String = name.chars().filter(|c| !sotto_engine::attachment::unfit_in_name(*c)).collect();
    while name.len() > MAX_FILE_NAME_BYTES {
        name.pop();
    }
    if name.is_empty() { "file".into() } else { name }
}

/// How a picked file shows (a photo's thumbnail and size, a video's or song's length), and
/// what to send of it (a photo drawn again without its metadata).
pub async fn describe(file: File) -> (AttachmentKind, File) {
    let Ok(d) = wait(js_describe(&file, MAX_THUMBNAIL_BYTES as u32)).await else {
        return (AttachmentKind::File, file);
    };
    let file = field(&d, "file").dyn_into::<File>().unwrap_or(file);
    let number = |name| field(&d, name).as_f64().unwrap_or(0.0) as u32;
    let kind = match field(&d, "kind").as_string().as_deref() {
        Some("image") => match field(&d, "thumbnail").dyn_into::<Uint8Array>() {
            Ok(t) => AttachmentKind::Image {
                width: number("width"),
                height: number("height"),
                thumbnail: t.to_vec(),
            },
            Err(_) => AttachmentKind::File,
        },
        Some("media") => AttachmentKind::Media { duration_ms: number("duration_ms") },
        _ => AttachmentKind::File,
    };
    (kind, file)
}

/// Seals and uploads `file` (in the worker), then says what its message carries.
pub async fn upload(
    tag: u32,
    file: File,
    kind: AttachmentKind,
    progress: impl FnMut(u64, u64) + 'static,
) -> Result<Attachment, FileError> {
    let progress = on_progress(progress);
    let r = wait(js_upload(tag, &file, progress.as_ref().unchecked_ref())).await?;
    let blob = field(&r, "blob").as_string().and_then(|b| BlobId::parse(&b));
    let blob = blob.ok_or(FileError::Garbled)?;
    let mut media_type = file.type_();
    if media_type.len() > MAX_MEDIA_TYPE_BYTES {
        media_type = "application/octet-stream".into();
    }
    Ok(Attachment {
        blob,
        key: FileKey::from_bytes(bytes(field(&r, "key"))?),
        digest: bytes(field(&r, "digest"))?,
        size: file.size() as u64,
        name: file_name(&file.name()),
        media_type,
        kind,
        caption: String::new(),
    })
}

/// Downloads and opens a message's file (in the worker): the file, on disk.
pub async fn download(
    tag: u32,
    a: &Attachment,
    progress: impl FnMut(u64, u64) + 'static,
) -> Result<File, FileError> {
    let progress = on_progress(progress);
    let key = zeroize::Zeroizing::new(a.key.to_bytes());
    let opened = js_download(
        tag,
        &a.blob.to_hex(),
        key.as_ref(),
        &a.digest,
        a.size as f64,
        &a.media_type,
        progress.as_ref().unchecked_ref(),
    );
    wait(opened).await?.dyn_into::<File>().map_err(|_| FileError::Garbled)
}

pub fn save(file: &File, name: &str) {
    let _ = js_save(file, name);
}

/// Saves `text` as a UTF-8 text file named `name`.
pub fn save_text(text: &str, name: &str) {
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::FilePropertyBag::new();
    options.set_type("text/plain;charset=utf-8");
    if let Ok(file) = File::new_with_str_sequence_and_options(&parts, name, &options) {
        save(&file, name);
    }
}

/// Deletes the files opened by earlier visits (plaintext in the origin's private file system).
pub fn forget_opened() {
    let _ = js_forget_opened();
}

/// Turns the microphone on and starts recording.
pub async fn record() -> Result<Recorder, FileError> {
    Ok(wait(js_record(MAX_WAVEFORM_LEVELS as u32)).await?.unchecked_into())
}

/// The id of the `<video>` a QR scan shows the camera in.
pub const SCANNER: &str = "scanner";

/// Reads the camera (shown in the element with id [`SCANNER`]) until a QR code is found: its
/// bytes. Ends with `Cancelled` once that element is gone.
pub async fn scan_qr() -> Result<Vec<u8>, FileError> {
    Ok(wait(js_scan_qr(SCANNER)).await?.dyn_into::<Uint8Array>().map(|b| b.to_vec()).unwrap_or_default())
}

/// Stops recording: the voice message's file and how it shows.
pub async fn stop(recorder: Recorder) -> Result<(File, AttachmentKind), FileError> {
    let r = JsFuture::from(recorder.stop()).await.map_err(words)?;
    let file = field(&r, "file").dyn_into::<File>().map_err(|_| FileError::NothingRecorded)?;
    let duration_ms = field(&r, "duration_ms").as_f64().unwrap_or(0.0) as u32;
    let waveform = field(&r, "waveform").dyn_into::<Uint8Array>().map(|w| w.to_vec()).unwrap_or_default();
    Ok((file, AttachmentKind::Voice { duration_ms, waveform }))
}
