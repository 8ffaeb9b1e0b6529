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
    pub brotli: Option<&'static [u8]>,
}

/// The smallest encoding the browser takes of those we have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    /// From an `Accept-Encoding` header (a coding with `q=0` is refused).
    fn accepted(header: Option<&str>) -> (bool, bool) {
        let takes = |coding: &str| {
            header.is_some_and(|h| {
                h.split(',').any(|t| {
                    let mut parts = t.split(';').map(str::trim);
                    parts.next() == Some(coding) && !parts.any(|p| p.replace(' ', "") == "q=0")
                })
            })
        };
        (takes("br"), takes("gzip"))
    }

    fn choose(asset: &Asset, header: Option<&str>) -> (Encoding, &'static [u8]) {
        let (br, gzip) = Encoding::accepted(header);
        match (asset.brotli, asset.gzip) {
            (Some(b), _) if br => (Encoding::Brotli, b),
            (_, Some(g)) if gzip => (Encoding::Gzip, g),
            _ => (Encoding::Identity, asset.body),
        }
    }
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

fn respond(asset: Option<&'static Asset>, accept_encoding: Option<&str>) -> warp::reply::Response {
    let mut builder = Response::builder();
    let body = match asset {
        Some(a) => {
            builder =
                builder.header(header::CONTENT_TYPE, a.mime).header(header::VARY, "Accept-Encoding").header(
                    header::CACHE_CONTROL,
                    if a.immutable { "public, max-age=31536000, immutable" } else { "no-cache" },
                );
            let (encoding, body) = Encoding::choose(a, accept_encoding);
            match encoding {
                Encoding::Brotli => builder = builder.header(header::CONTENT_ENCODING, "br"),
                Encoding::Gzip => builder = builder.header(header::CONTENT_ENCODING, "gzip"),
                Encoding::Identity => {}
            }
            body
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
        .map(|tail: warp::path::Tail, enc: Option<String>| respond(find(tail.as_str()), enc.as_deref()))
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
        ("permissions-policy", "camera=(self), geolocation=(), microphone=(self)"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_encoding_the_browser_takes_is_chosen() {
        static BODY: [u8; 3] = [1, 2, 3];
        let a = Asset {
            path: "x",
            mime: "t",
            immutable: false,
            body: &BODY,
            gzip: Some(&[2]),
            brotli: Some(&[3]),
        };
        let chosen = |h: Option<&str>| Encoding::choose(&a, h).0;
        assert_eq!(chosen(Some("gzip, deflate, br, zstd")), Encoding::Brotli);
        assert_eq!(chosen(Some("gzip, deflate")), Encoding::Gzip);
        assert_eq!(chosen(Some("br;q=0, gzip")), Encoding::Gzip);
        assert_eq!(chosen(Some("brotli-ish")), Encoding::Identity);
        assert_eq!(chosen(None), Encoding::Identity);
        let only_gzip = Asset { brotli: None, ..a };
        assert_eq!(Encoding::choose(&only_gzip, Some("br, gzip")).0, Encoding::Gzip);
    }
}
