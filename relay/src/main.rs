//! The Sotto relay binary. See README.md for flags and docs/protocol.md for what it speaks.

#![forbid(unsafe_code)]

mod admin;
mod assets;
mod blob_routes;
mod blobs;
mod config;
mod connection;
mod handlers;
mod hub;
mod limits;
mod listener;
mod metrics;
mod outbound;
mod peer;
mod routes;
mod session;
mod state;
mod store;
mod subscriptions;
mod views;
mod writer;
mod ws;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

/// Threads for store reads (`spawn_blocking`): each read is short, so a few threads keep up,
/// while tokio's default of 512 let a burst of subscribers hold a thread (and its allocator
/// heap) each: 10,000 channel subscribers at once cost 100 MB more with it.
const STORE_READ_THREADS: usize = 16;

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(STORE_READ_THREADS)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start()),
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn start() -> std::process::ExitCode {
    let config = config::Config::parse();
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    let store = store::RedbStore::open(&config.data_dir, config.cache_mib << 20)?;
    info!(
        data_dir = %config.data_dir.display(),
        schema = store.schema_version()?,
        assets = assets::ASSETS.len(),
        "store opened"
    );
    let files = listener::raise_file_limit();
    // A few descriptors go to the store, the listener and logs; each connection takes one.
    let ceiling =
        config.limits.max_connections.min(usize::try_from(files.saturating_sub(64)).unwrap_or(usize::MAX));
    info!(open_files = files, connections = ceiling, "connection ceiling");
    // Past it, connections are refused politely instead of accept() failing for lack of files.
    let mut config = config;
    config.limits.max_connections = ceiling;

    let listener = listener::listen(config.listen)?;
    let addr = listener.local_addr()?;
    let origins = peer::allowed_origins(config.public_origin.as_deref(), addr)?;
    let admin_token = admin::token(&config)?;
    if admin_token.is_some() {
        info!("the operator's page is on at /admin");
    }
    let relay = Arc::new(state::Relay::new(config.clone(), Arc::new(store), origins.clone(), admin_token)?);
    tokio::spawn(relay.clone().housekeeping());
    tokio::spawn(relay.clone().flush_views());
    let routes = routes::routes(relay.clone());
    let signal = shutdown_signal();
    // Tests and scripts read this exact line to learn the port.
    info!("listening on http://{addr}");
    info!(?origins, "accepting these origins");
    let failed = relay.clone();
    let stop = async move {
        tokio::select! {
            _ = signal => {},
            _ = failed.writer.failed() => error!("the store cannot be written; shutting down"),
        }
    };
    let header_timeout = Duration::from_secs(config.timeouts.header_timeout_secs.max(1));
    // The accept loop runs on the runtime's workers; the main thread only waits for it.
    let _ = tokio::spawn(listener::serve(listener, routes, header_timeout, stop)).await;
    relay.drain(Duration::from_secs(config.timeouts.drain_secs)).await;
    for (channel, views) in relay.views.take() {
        let _ = relay.writer.write(store::Write::Views { channel, views }).await;
    }
    if !relay.writer.healthy() {
        // A supervisor restarts the relay on a freshly opened store.
        return Err("exiting after a failed write: nothing unacknowledged was lost".into());
    }
    info!("shut down cleanly");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a SIGTERM right after the "listening" line must not kill the process.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        info!("shutdown requested");
    }
}
