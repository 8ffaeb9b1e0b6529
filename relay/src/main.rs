//! The Sotto relay binary. See README.md for flags and docs/protocol.md for what it speaks.

#![forbid(unsafe_code)]

mod assets;
mod config;
mod connection;
mod hub;
mod limits;
mod metrics;
mod server;
mod store;
mod writer;
mod ws;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use tokio::net::{TcpListener, TcpSocket};
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
    let relay = Arc::new(server::Relay::new(config.clone(), Arc::new(store))?);
    tokio::spawn(relay.clone().housekeeping());
    let routes = server::routes(relay.clone());

    let listener = listen(config.listen)?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this exact line to learn the port.
    info!("listening on http://{addr}");
    let failed = relay.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {},
            _ = failed.writer.failed() => error!("the store cannot be written; shutting down"),
        }
    };
    warp::serve(routes).incoming(listener).graceful(stop).run().await;
    if !relay.writer.healthy() {
        // A supervisor restarts the relay on a freshly opened store.
        return Err("exiting after a failed write: nothing unacknowledged was lost".into());
    }
    info!("shut down cleanly");
    Ok(())
}

/// A listening socket with TCP_NODELAY, which Linux passes on to accepted connections: small
/// frames must leave at once, not wait for Nagle's algorithm and delayed ACKs (40 ms stalls).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    info!("shutdown requested");
}
