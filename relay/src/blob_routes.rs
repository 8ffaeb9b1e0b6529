//! The HTTP routes of the blob store (see `blobs.rs` for what they do and promise).

use crate::blobs::{BlobError, BlobId, PUT_DEADLINE_SECS};
use crate::state::Relay;
use sotto_shared::limits::MAX_BLOB_PIECE_BYTES;
use std::sync::Arc;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Reply as _;

fn answer(status: StatusCode, body: String) -> warp::reply::Response {
    warp::http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(body.into())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn refused(e: BlobError) -> warp::reply::Response {
    let status = match e {
        BlobError::BadSize(_) | BlobError::TooLong => StatusCode::PAYLOAD_TOO_LARGE,
        BlobError::Full => StatusCode::INSUFFICIENT_STORAGE,
        BlobError::NotFound | BlobError::NotYours => StatusCode::NOT_FOUND,
        BlobError::WrongOffset { .. } => StatusCode::CONFLICT,
        BlobError::Io => StatusCode::INTERNAL_SERVER_ERROR,
        BlobError::Busy => StatusCode::SERVICE_UNAVAILABLE,
    };
    let received = match e {
        BlobError::WrongOffset { received } => format!(",\"received\":{received}"),
        _ => String::new(),
    };
    let mut res = answer(status, format!("{{\"error\":\"{e}\"{received}}}"));
    if e == BlobError::Busy {
        res.headers_mut().insert("retry-after", warp::http::HeaderValue::from_static("1"));
    }
    res
}

/// A refusal sent before the request's body was read: the connection closes after it (its
/// unread body is still on the way), and says so, so that no client sends its next request on
/// it.
fn unread(mut res: warp::reply::Response) -> warp::reply::Response {
    res.headers_mut().insert("connection", warp::http::HeaderValue::from_static("close"));
    res
}

/// Why a piece's body was not taken.
enum Piece {
    /// Past [`MAX_BLOB_PIECE_BYTES`].
    TooLong,
    /// The line broke before its end.
    Broken,
}

/// A piece's body, at most [`MAX_BLOB_PIECE_BYTES`].
async fn read_piece(
    body: impl futures_util::Stream<Item = Result<impl bytes::Buf, warp::Error>>,
) -> Result<Vec<u8>, Piece> {
    use futures_util::StreamExt;
    let mut piece = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| Piece::Broken)?;
        if piece.len() + chunk.remaining() > MAX_BLOB_PIECE_BYTES {
            return Err(Piece::TooLong);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            piece.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(piece)
}

/// The capability in `Authorization: Bearer <64 hex digits>`.
fn capability(authorization: Option<String>) -> Option<[u8; 32]> {
    sotto_shared::ids::unhex(authorization?.strip_prefix("Bearer ")?.trim())
}

pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let dir = relay.blobs.dir().to_path_buf();
    let trusted = relay.config.trusted_proxy.clone();
    let with_relay = warp::any().map(move || relay.clone());
    let id = warp::path::param::<String>()
        .and_then(|text: String| async move { BlobId::parse(&text).ok_or_else(warp::reject::not_found) });
    let create = warp::path("blobs")
        .and(warp::path::end())
        .and(warp::post())
        .and(with_relay.clone())
        .and(warp::header::<u64>("x-sotto-blob-size"))
        .and(crate::ws::client_ip(trusted.clone()))
        .then(|relay: Arc<Relay>, size: u64, ip: std::net::IpAddr| async move {
            // A size refused anyway costs the address nothing.
            let max = relay.config.max_blob_bytes;
            if size == 0 || size > max {
                return refused(BlobError::BadSize(max));
            }
            if !relay.limits.blob_allowed(ip, size) {
                let msg = "{\"error\":\"too many file bytes from your address this hour; try later\"}";
                return answer(StatusCode::TOO_MANY_REQUESTS, msg.into());
            }
            match relay.blobs.create(size, crate::state::unix_now()).await {
                Ok((id, cap)) => {
                    let (id, cap) = (id.to_hex(), sotto_shared::ids::hex(&cap));
                    answer(StatusCode::CREATED, format!("{{\"id\":\"{id}\",\"upload\":\"{cap}\"}}"))
                }
                Err(e) => refused(e),
            }
        });
    let append = warp::path("blobs")
        .and(id)
        .and(warp::path::end())
        .and(warp::put())
        .and(with_relay.clone())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::<u64>("x-sotto-offset"))
        .and(crate::ws::client_ip(trusted.clone()))
        .and(warp::body::content_length_limit(MAX_BLOB_PIECE_BYTES as u64))
        .and(warp::body::stream())
        .then(|id, relay: Arc<Relay>, auth: Option<String>, offset, ip, body| async move {
            let Some(cap) = capability(auth) else { return unread(refused(BlobError::NotYours)) };
            // Nothing of the body is read before the piece is known to be wanted, and only
            // within bounds: a slow or unwanted body cannot hold the relay's memory.
            let _receiving = match relay.blobs.admit(ip) {
                Ok(r) => r,
                Err(e) => return unread(refused(e)),
            };
            if let Err(e) = relay.blobs.check(id, &cap, offset, crate::state::unix_now()).await {
                return unread(refused(e));
            }
            let deadline = std::time::Duration::from_secs(PUT_DEADLINE_SECS);
            let piece = match tokio::time::timeout(deadline, read_piece(body)).await {
                Ok(Ok(piece)) => piece,
                Ok(Err(Piece::TooLong)) => return unread(refused(BlobError::TooLong)),
                Ok(Err(Piece::Broken)) => {
                    return unread(answer(
                        StatusCode::BAD_REQUEST,
                        "{\"error\":\"the piece came broken\"}".into(),
                    ));
                }
                Err(_) => {
                    return unread(answer(
                        StatusCode::REQUEST_TIMEOUT,
                        "{\"error\":\"the piece came too slowly\"}".into(),
                    ));
                }
            };
            match relay.blobs.append(id, &cap, offset, &piece, crate::state::unix_now()).await {
                Ok(received) => answer(StatusCode::OK, format!("{{\"received\":{received}}}")),
                Err(e) => refused(e),
            }
        });
    // The uploader gives up (a cancelled upload): the blob goes and its room comes back.
    let delete = warp::path("blobs")
        .and(id)
        .and(warp::path::end())
        .and(warp::delete())
        .and(with_relay.clone())
        .and(warp::header::optional::<String>("authorization"))
        .then(|id: BlobId, relay: Arc<Relay>, auth: Option<String>| async move {
            let Some(cap) = capability(auth) else { return refused(BlobError::NotYours) };
            match relay.blobs.delete(id, &cap).await {
                Ok(()) => answer(StatusCode::OK, "{}".into()),
                Err(e) => refused(e),
            }
        });
    let received = warp::path("blobs")
        .and(id)
        .and(warp::path("received"))
        .and(warp::path::end())
        .and(warp::get())
        .and(with_relay.clone())
        .and(warp::header::optional::<String>("authorization"))
        .then(|id: BlobId, relay: Arc<Relay>, auth: Option<String>| async move {
            let Some(cap) = capability(auth) else { return refused(BlobError::NotYours) };
            match relay.blobs.received(id, &cap, crate::state::unix_now()).await {
                Ok((received, size)) => {
                    answer(StatusCode::OK, format!("{{\"received\":{received},\"size\":{size}}}"))
                }
                Err(e) => refused(e),
            }
        });
    // A whole blob, with ranges (warp's directory reply answers `Range` and conditional
    // requests). Only a bare id is served: never an upload in progress (`.part`) or its
    // metadata (`.meta`).
    let whole_id = warp::path::peek().and_then(|tail: warp::path::Peek| async move {
        if BlobId::parse(tail.as_str()).is_some() { Ok(()) } else { Err(warp::reject::not_found()) }
    });
    let download = warp::path("blobs")
        .and(warp::get().or(warp::head()).unify())
        .and(whole_id)
        .untuple_one()
        .and(warp::fs::dir(dir))
        .map(|file: warp::fs::File| {
            let mut res = file.into_response();
            res.headers_mut().insert(
                "cache-control",
                warp::http::HeaderValue::from_static("private, max-age=31536000, immutable"),
            );
            res
        });
    create.or(append).unify().or(delete).unify().or(received).unify().or(download).unify()
}
