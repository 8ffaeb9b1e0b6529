//! The HTTP routes: `/ws`, `/metrics`, `/healthz`, the operator's `/admin` and the embedded app.

use crate::state::Relay;
use crate::{admin, assets, blob_routes, ws};
use std::sync::Arc;
use warp::Filter;
use warp::reply::Reply as _;

/// Every route: `/ws`, `/metrics`, and the embedded app.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let metrics_relay = relay.clone();
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::ext::optional::<crate::peer::Peer>())
        .and(warp::header::optional::<String>("authorization"))
        .map(move |peer: Option<crate::peer::Peer>, authorization: Option<String>| {
            // Loopback only, unless the operator set a token (then anyone holding it). The TCP
            // peer decides, never a forwarded header; a trusted proxy on loopback relays
            // strangers, so through it only the token opens the page.
            let ip = ws::tcp_peer(peer);
            let proxied = metrics_relay.config.trusted_proxy.iter().any(|net| net.contains(&ip));
            let allowed = match &metrics_relay.config.metrics_token {
                Some(token) => {
                    authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).is_some_and(|given| {
                        bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), token.as_bytes()))
                    })
                }
                None => ip.is_loopback() && !proxied,
            };
            if !allowed {
                return warp::reply::with_status("Not found", warp::http::StatusCode::NOT_FOUND)
                    .into_response();
            }
            let mut body = metrics_relay.metrics.render();
            body.push_str(&format!(
                "# HELP sotto_store_budget_used_bytes Storage budget in use (payloads plus record costs).\n\
                 # TYPE sotto_store_budget_used_bytes gauge\nsotto_store_budget_used_bytes {}\n",
                metrics_relay.writer.budget_used()
            ));
            warp::http::Response::builder()
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .header("cache-control", "no-store")
                .body(body)
                .map(warp::reply::Reply::into_response)
                .unwrap_or_else(|_| warp::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
        });
    let health_relay = relay.clone();
    let relay_for_admin = relay.clone();
    let relay_for_blobs = relay.clone();
    let health = warp::path("healthz").and(warp::path::end()).and(warp::get()).map(move || {
        let (status, body) = if health_relay.writer.healthy() {
            (warp::http::StatusCode::OK, "ok: store writable\n")
        } else {
            (warp::http::StatusCode::SERVICE_UNAVAILABLE, "failing: the store cannot be written\n")
        };
        warp::reply::with_header(warp::reply::with_status(body, status), "cache-control", "no-store")
            .into_response()
    });
    warp::path("ws")
        .and(warp::path::end())
        .and(ws::upgrade(relay))
        .or(metrics)
        .unify()
        .or(health)
        .unify()
        .or(admin::routes(relay_for_admin))
        .unify()
        .or(blob_routes::routes(relay_for_blobs))
        .unify()
        .or(assets::routes())
        .unify()
        .recover(ws::recover)
        .unify()
        .with(warp::reply::with::headers(assets::security_headers()))
        .map(warp::reply::Reply::into_response)
}
