//! The operator's page, `/admin`: reports on channel posts, with each post opened by the key
//! its reporter gave and checked against the channel's own records, and blocking channels.
//! Open only with the token from the relay's configuration (`--admin-token` or
//! `--admin-token-file`), sent as `Authorization: Bearer`; without one the page is off.
//!
//! What the operator can read is exactly what subscribers reported: one post per report. Direct
//! chats and groups have no report path here at all.

use crate::config::Config;
use crate::state::{Relay, unix_now};
use crate::store::{Block, TopicKey, Write, WriteResult};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sotto_engine::channel::{PostBody, Report};
use sotto_shared::channel::ChannelId;
use sotto_shared::encode_relay;
use sotto_shared::limits::MAX_REASON_BYTES;
use std::sync::Arc;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply as _;

/// Reports one page lists at most (the oldest first).
const REPORTS_SHOWN: usize = 200;
/// Shortest token the relay accepts: a guessable one would open the page to anyone.
const MIN_TOKEN_CHARS: usize = 16;

const PAGE: &str = include_str!("../admin/index.html");
const SCRIPT: &str = include_str!("../admin/admin.js");
const STYLE: &str = include_str!("../admin/admin.css");

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the admin token file {0}: {1}")]
    File(std::path::PathBuf, std::io::Error),
    #[error("the admin token must be at least {MIN_TOKEN_CHARS} characters")]
    TooShort,
}

/// The operator's token, from the flag or the file's first line.
pub fn token(config: &Config) -> Result<Option<String>, TokenError> {
    let token = match (&config.admin_token, &config.admin_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| TokenError::File(path.clone(), e))?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        }
        (None, None) => None,
    };
    match token {
        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => Err(TokenError::TooShort),
        t => Ok(t),
    }
}

/// One report as the page shows it.
#[derive(Serialize)]
struct ReportRow {
    number: u64,
    channel: String,
    seq: u64,
    received_at: u64,
    posted_at_ms: u64,
    reason: String,
    /// How many reported the post.
    reporters: u32,
    /// The post opened by the reporter's key, if it checks.
    text: Option<String>,
    /// Why it does not check, in words.
    problem: Option<String>,
    subscribers: u64,
    blocked: Option<String>,
}

#[derive(Serialize)]
struct BlockRow {
    channel: String,
    reason: String,
    at: u64,
}

#[derive(Deserialize)]
struct BlockForm {
    channel: String,
    reason: String,
}

#[derive(Deserialize)]
struct ChannelForm {
    channel: String,
}

#[derive(Deserialize)]
struct ReportForm {
    number: u64,
}

fn status(code: StatusCode, message: &str) -> warp::reply::Response {
    warp::reply::with_status(message.to_owned(), code).into_response()
}

fn file(body: &'static str, mime: &'static str) -> warp::reply::Response {
    warp::http::Response::builder()
        .header("content-type", mime)
        .header("cache-control", "no-store")
        .body(Bytes::from_static(body.as_bytes()))
        .map(warp::reply::Reply::into_response)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether the request carries the operator's token.
fn allowed(relay: &Relay, authorization: Option<&str>) -> bool {
    let Some(token) = &relay.admin_token else { return false };
    authorization
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|given| bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes())))
}

/// Every report waiting, each opened and checked against the channel's stored owner and lists.
fn reports(relay: &Relay) -> Result<Vec<ReportRow>, crate::store::StoreError> {
    let mut rows = Vec::new();
    for (number, r) in relay.store.reports(REPORTS_SHOWN)? {
        let channel = relay.store.channel(&r.post.channel)?;
        let checked = match &channel {
            None => Err("the channel is gone from this relay".to_owned()),
            // Against the list kept with the report (checked against the channel's owner here
            // again): an owner cannot push it out of the relay to make the report uncheckable.
            Some(view) => Report::from_wire(r.post.clone(), r.key)
                .verify(&r.list, &view.record.owner)
                .map(|body| match body {
                    PostBody::Text(text) => text,
                    // The file itself stays sealed at rest here: its name, type and size are
                    // what the operator sees (opening its blob from this page is not built).
                    PostBody::File(a) => {
                        format!("{}\n[file: {}, {}, {} bytes]", a.caption, a.name, a.media_type, a.size)
                    }
                })
                .map_err(|e| format!("does not check: {e}")),
        };
        let (text, problem) = match checked {
            Ok(text) => (Some(text), None),
            Err(problem) => (None, Some(problem)),
        };
        rows.push(ReportRow {
            number,
            channel: r.post.channel.to_hex(),
            seq: r.seq,
            received_at: r.received_at,
            posted_at_ms: r.post.posted_at_ms,
            reason: r.reasons.join(" · "),
            reporters: r.reporters,
            text,
            problem,
            subscribers: channel.as_ref().map_or(0, |v| v.record.subscribers),
            blocked: channel.and_then(|v| v.block.map(|b| b.reason)),
        });
    }
    Ok(rows)
}

/// Blocks a channel (or lifts the block): stored first, then its live readers are told and
/// stop reading it.
async fn block(relay: &Relay, channel: ChannelId, reason: Option<String>) -> bool {
    let block = reason.map(|reason| Block::new(reason, unix_now()));
    let blocking = block.is_some();
    if !matches!(relay.writer.write(Write::Block { channel, block }).await, Ok(WriteResult::Counted)) {
        return false;
    }
    tracing::info!(channel = %channel.to_hex(), blocking, "the operator changed a channel's block");
    if blocking {
        let store = relay.store.clone();
        if let Ok(Ok(Some(view))) = tokio::task::spawn_blocking(move || store.channel(&channel)).await {
            let frame = crate::handlers::channel_state(relay, channel, view);
            relay.subscriptions.close(&TopicKey::of(&channel.topic()), &Bytes::from(encode_relay(&frame)));
        }
    }
    true
}

/// `/admin` (the page, its script and style) and `/admin/api/*`.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let page = warp::path("admin")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| file(PAGE, "text/html; charset=utf-8"));
    let script = warp::path!("admin" / "admin.js").and(warp::get()).map(|| file(SCRIPT, "text/javascript"));
    let style = warp::path!("admin" / "admin.css").and(warp::get()).map(|| file(STYLE, "text/css"));
    let with_relay = warp::any().map(move || relay.clone());
    let auth = with_relay.and(warp::header::optional::<String>("authorization")).and_then(
        |relay: Arc<Relay>, authorization: Option<String>| async move {
            if allowed(&relay, authorization.as_deref()) { Ok(relay) } else { Err(warp::reject::not_found()) }
        },
    );
    let json_body = warp::body::content_length_limit(4096);
    let list_reports = warp::path!("admin" / "api" / "reports").and(warp::get()).and(auth.clone()).then(
        |relay: Arc<Relay>| async move {
            let rows = tokio::task::spawn_blocking(move || reports(&relay)).await;
            match rows {
                Ok(Ok(rows)) => warp::reply::json(&rows).into_response(),
                _ => status(StatusCode::INTERNAL_SERVER_ERROR, "the store could not be read"),
            }
        },
    );
    let list_blocks = warp::path!("admin" / "api" / "blocks").and(warp::get()).and(auth.clone()).then(
        |relay: Arc<Relay>| async move {
            let blocks = tokio::task::spawn_blocking(move || relay.store.blocks()).await;
            match blocks {
                Ok(Ok(blocks)) => {
                    let rows: Vec<BlockRow> = blocks
                        .into_iter()
                        .map(|(c, b)| BlockRow { channel: c.to_hex(), reason: b.reason, at: b.at })
                        .collect();
                    warp::reply::json(&rows).into_response()
                }
                _ => status(StatusCode::INTERNAL_SERVER_ERROR, "the store could not be read"),
            }
        },
    );
    let do_block = warp::path!("admin" / "api" / "block")
        .and(warp::post())
        .and(auth.clone())
        .and(json_body)
        .and(warp::body::json())
        .then(|relay: Arc<Relay>, form: BlockForm| async move {
            let Some(channel) = ChannelId::from_hex(&form.channel) else {
                return status(StatusCode::BAD_REQUEST, "no such channel id");
            };
            let reason = form.reason.trim();
            if reason.is_empty() || reason.len() > MAX_REASON_BYTES {
                return status(
                    StatusCode::BAD_REQUEST,
                    "give a reason of 1 to 500 bytes: subscribers read it",
                );
            }
            if block(&relay, channel, Some(reason.to_owned())).await {
                status(StatusCode::OK, "blocked")
            } else {
                status(StatusCode::INTERNAL_SERVER_ERROR, "the block could not be stored")
            }
        });
    let do_unblock = warp::path!("admin" / "api" / "unblock")
        .and(warp::post())
        .and(auth.clone())
        .and(json_body)
        .and(warp::body::json())
        .then(|relay: Arc<Relay>, form: ChannelForm| async move {
            let Some(channel) = ChannelId::from_hex(&form.channel) else {
                return status(StatusCode::BAD_REQUEST, "no such channel id");
            };
            if block(&relay, channel, None).await {
                status(StatusCode::OK, "unblocked")
            } else {
                status(StatusCode::INTERNAL_SERVER_ERROR, "the change could not be stored")
            }
        });
    let dismiss = warp::path!("admin" / "api" / "dismiss")
        .and(warp::post())
        .and(auth)
        .and(json_body)
        .and(warp::body::json())
        .then(|relay: Arc<Relay>, form: ReportForm| async move {
            match relay.writer.write(Write::Dismiss { number: form.number }).await {
                Ok(_) => status(StatusCode::OK, "dismissed"),
                Err(()) => status(StatusCode::INTERNAL_SERVER_ERROR, "the change could not be stored"),
            }
        });
    page.or(script)
        .unify()
        .or(style)
        .unify()
        .or(list_reports)
        .unify()
        .or(list_blocks)
        .unify()
        .or(do_block)
        .unify()
        .or(do_unblock)
        .unify()
        .or(dismiss)
        .unify()
}
