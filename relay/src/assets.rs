//! The web app, embedded at build time (see build.rs), served with caching and security headers.

use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use warp::hyper::body::Bytes;
use warp::reply::Reply;

pub struct Asset {
    pub path: &'static str,
    pub mime: &'static str,
    /// Content-addressed name: cache for a year.
    pub immutable: bool,
    pub body: &'static [u8],
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Allows the wasm to compile but no inline script, no foreign origin, no framing.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn find(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

fn respond(asset: Option<&'static Asset>, accepts_gzip: bool) -> warp::reply::Response {
    let mut builder = Response::builder();
    let body = match asset {
        Some(a) => {
            builder =
                builder.header(header::CONTENT_TYPE, a.mime).header(header::VARY, "Accept-Encoding").header(
                    header::CACHE_CONTROL,
                    if a.immutable { "public, max-age=31536000, immutable" } else { "no-cache" },
                );
            match a.gzip {
                Some(gz) if accepts_gzip => {
                    builder = builder.header(header::CONTENT_ENCODING, "gzip");
                    gz
                }
                _ => a.body,
            }
        }
        None if ASSETS.is_empty() => {
            builder = builder
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            b"This relay was built without the web app. Build it with scripts/build.sh.".as_slice()
        }
        None => {
            builder = builder
                .status(StatusCode::NOT_FOUND)
                .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
            b"Not found".as_slice()
        }
    };
    builder
        .body(Bytes::from_static(body))
        .map(Reply::into_response)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /` and `GET /<asset>`.
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::get()
        .or(warp::head())
        .unify()
        .and(warp::path::tail())
        .and(warp::header::optional::<String>("accept-encoding"))
        .map(|tail: warp::path::Tail, enc: Option<String>| {
            let gzip = enc.is_some_and(|e| e.split(',').any(|t| t.trim().starts_with("gzip")));
            respond(find(tail.as_str()), gzip)
        })
}

/// Hardening headers added to every response.
pub fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("permissions-policy", "camera=(), geolocation=(), microphone=(self)"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h
}
