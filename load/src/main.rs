//! `sotto-load`: drives a running relay with many native clients and prints figures.
//! Not a test: it measures. See docs/benchmarks.md for the commands behind each figure.

#![forbid(unsafe_code)]

mod arrivals;
mod channel;
mod group;
mod wire;

use clap::{Parser, Subcommand};
use futures_util::FutureExt;
use hdrhistogram::Histogram;
use sotto_engine::Identity;
use sotto_shared::{ClientFrame, RelayFrame};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use wire::{FORWARDED_CLIENTS, Result, contact_send, login, open, recv, send, stamped};

#[derive(Parser)]
#[command(name = "sotto-load", about = "Load generator for the Sotto relay")]
struct Cli {
    /// The relay, as host:port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    relay: String,
    /// Give every connection its own client address in `X-Forwarded-For` (10.0.0.0/8), as a
    /// reverse proxy in front of many people would; the relay must trust 127.0.0.1 as a proxy.
    /// This measures the relay with its default per-IP limits in force.
    #[arg(long)]
    forwarded_clients: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Pairs of connected clients; senders keep `window` envelopes in flight (or send at `rate`).
    Pairs {
        #[arg(long, default_value_t = 1000)]
        pairs: usize,
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Total messages per second offered across all pairs; 0 = as fast as acks allow.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Unacknowledged sends each sender keeps in flight when saturating.
        #[arg(long, default_value_t = 32)]
        window: usize,
    },
    /// Authenticated idle connections; reports the relay's RSS growth per connection.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// The relay's process id, to read its RSS from /proc.
        #[arg(long)]
        relay_pid: u32,
    },
    /// One group topic read by `members` connections; one member posts `rate` posts a second.
    Group {
        #[arg(long, default_value_t = 1000)]
        members: usize,
        #[arg(long, default_value_t = 320)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 10)]
        rate: u64,
    },
    /// One channel read by `subscribers` connections; its admin publishes `rate` signed posts
    /// a second.
    Channel {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
        /// Characters of text per post (sealed and signed, as the app posts).
        #[arg(long, default_value_t = 200)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        rate: u64,
        /// The relay's process id, to read its CPU time from /proc.
        #[arg(long)]
        relay_pid: Option<u32>,
    },
    /// Sends to offline mailboxes: how many durable `Sent` acknowledgements per second.
    Durable {
        #[arg(long, default_value_t = 100)]
        senders: usize,
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    FORWARDED_CLIENTS.store(cli.forwarded_clients, Relaxed);
    let origin = format!("http://{}", cli.relay);
    let url = format!("ws://{}/ws", cli.relay);
    let result = match cli.scenario {
        Scenario::Pairs { pairs, size, seconds, rate, window } => {
            run_pairs(&url, &origin, pairs, size, seconds, rate, window).await
        }
        Scenario::Idle { connections, relay_pid } => run_idle(&url, &origin, connections, relay_pid).await,
        Scenario::Group { members, size, seconds, rate } => {
            group::run(&url, &origin, members, size, seconds, rate).await
        }
        Scenario::Channel { subscribers, size, seconds, rate, relay_pid } => {
            channel::run(&url, &origin, subscribers, size, seconds, rate, relay_pid).await
        }
        Scenario::Durable { senders, size, seconds, window } => {
            run_durable(&url, &origin, senders, size, seconds, window).await
        }
    };
    if let Err(e) = result {
        eprintln!("sotto-load: {e}");
        std::process::exit(1);
    }
}

async fn run_pairs(
    url: &str,
    origin: &str,
    pairs: usize,
    size: usize,
    seconds: u64,
    rate: u64,
    window: usize,
) -> Result<()> {
    let epoch = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));

    // Receivers first, so nothing queues offline.
    let mut receivers = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..pairs {
        let identity = Identity::generate()?;
        addresses.push((identity.address(), *identity.delivery_token()?));
        let (mut tx, mut rx) = login(url, origin, &identity).await?;
        let delivered = delivered.clone();
        let measuring = measuring.clone();
        let latencies = latencies.clone();
        receivers.push(tokio::spawn(async move {
            // Like the app, which acks each envelope once stored, the receiver acks what has
            // arrived as soon as nothing more is waiting (up to 16 ids per Ack under load). An
            // ack that reaches the relay within its commit window spares it the disk.
            let mut pending_acks = Vec::new();
            let mut next = recv(&mut rx).await;
            while let Ok(frame) = next {
                if let RelayFrame::Deliver { id, payload, .. } = frame {
                    if measuring.load(Relaxed) {
                        delivered.fetch_add(1, Relaxed);
                        if let (Ok(mut h), Ok(ts)) = (latencies.lock(), payload[..8].try_into()) {
                            let now = epoch.elapsed().as_micros() as u64;
                            let _ = h.record(now.saturating_sub(u64::from_be_bytes(ts)).max(1));
                        }
                    }
                    pending_acks.push(id);
                }
                next = match recv(&mut rx).now_or_never() {
                    Some(ready) if pending_acks.len() < 16 => ready,
                    ready => {
                        if !pending_acks.is_empty() {
                            let ids = std::mem::take(&mut pending_acks);
                            if send(&mut tx, &ClientFrame::Ack { ids }).await.is_err() {
                                break;
                            }
                        }
                        match ready {
                            Some(ready) => ready,
                            None => recv(&mut rx).await,
                        }
                    }
                };
            }
        }));
    }
    eprintln!("{pairs} receivers logged in");

    let per_sender_interval =
        if rate > 0 { Some(Duration::from_secs_f64(pairs as f64 / rate as f64)) } else { None };
    let mut senders = Vec::new();
    for (to, token) in addresses {
        let (mut tx, mut rx) = open(url, origin).await?;
        let sent = sent.clone();
        let stop = stop.clone();
        let in_flight = Arc::new(tokio::sync::Semaphore::new(window));
        let acks = in_flight.clone();
        // Sent acknowledgements free window slots.
        tokio::spawn(async move {
            while let Ok(frame) = recv(&mut rx).await {
                if matches!(frame, RelayFrame::Sent { .. } | RelayFrame::Error { .. }) {
                    acks.add_permits(1);
                }
            }
        });
        senders.push(tokio::spawn(async move {
            // Spread rate-limited senders over the interval so they do not fire in lockstep.
            let mut ticker = per_sender_interval.map(|i| {
                let mut t =
                    tokio::time::interval_at(tokio::time::Instant::now() + i.mul_f64(rand_fraction()), i);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            while !stop.load(Relaxed) {
                match ticker.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => match in_flight.acquire().await {
                        Ok(p) => p.forget(),
                        Err(_) => break,
                    },
                }
                let frame = contact_send(to, token, stamped(size, epoch));
                if send(&mut tx, &frame).await.is_err() {
                    break;
                }
                sent.fetch_add(1, Relaxed);
            }
        }));
    }
    eprintln!("{pairs} senders connected; warming up for 2 s");
    tokio::time::sleep(Duration::from_secs(2)).await;
    measuring.store(true, Relaxed);
    let sent_before = sent.load(Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = start.elapsed().as_secs_f64();
    let got = delivered.load(Relaxed);
    let offered = sent.load(Relaxed) - sent_before;
    measuring.store(false, Relaxed);
    stop.store(true, Relaxed);
    for r in &receivers {
        r.abort();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let h = latencies.lock().map_err(|_| "histogram lock poisoned")?;
    println!(
        "pairs={pairs} size={size} rate={} window={window}: sent {:.0}/s, delivered {:.0}/s over {elapsed:.1} s; \
         send→deliver latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (n={})",
        if rate == 0 { "max".to_string() } else { rate.to_string() },
        offered as f64 / elapsed,
        got as f64 / elapsed,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        h.len(),
    );
    Ok(())
}

fn rand_fraction() -> f64 {
    let mut b = [0u8; 4];
    let _ = sotto_engine::random::fill(&mut b);
    f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX)
}

pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

async fn run_idle(url: &str, origin: &str, connections: usize, pid: u32) -> Result<()> {
    let before = rss_kib(pid)?;
    let mut held = Vec::with_capacity(connections);
    for i in 0..connections {
        let identity = Identity::generate()?;
        held.push(login(url, origin, &identity).await?);
        if (i + 1) % 2000 == 0 {
            eprintln!("{} connections", i + 1);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    println!(
        "idle authenticated connections={connections}: relay RSS {before} KiB → {after} KiB, {:.2} KiB per connection",
        (after.saturating_sub(before)) as f64 / connections as f64
    );
    drop(held);
    Ok(())
}

async fn run_durable(
    url: &str,
    origin: &str,
    senders: usize,
    size: usize,
    seconds: u64,
    window: usize,
) -> Result<()> {
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..senders {
        // Each sender writes to its own offline mailbox: opened once by logging in, then left.
        let owner = Identity::generate()?;
        drop(login(url, origin, &owner).await?);
        let (to, token) = (owner.address(), *owner.delivery_token()?);
        let (mut tx, mut rx) = open(url, origin).await?;
        let in_flight = Arc::new(tokio::sync::Semaphore::new(window));
        let acks = in_flight.clone();
        let counter = acked.clone();
        tokio::spawn(async move {
            while let Ok(frame) = recv(&mut rx).await {
                match frame {
                    RelayFrame::Sent { .. } => {
                        counter.fetch_add(1, Relaxed);
                        acks.add_permits(1);
                    }
                    RelayFrame::Error { message, .. } => {
                        eprintln!("error: {message}");
                        acks.add_permits(1);
                    }
                    _ => {}
                }
            }
        });
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let payload = vec![0x42; size];
            while !stop.load(Relaxed) {
                match in_flight.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                let frame = contact_send(to, token, payload.clone());
                if send(&mut tx, &frame).await.is_err() {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = acked.load(Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let n = acked.load(Relaxed) - before;
    stop.store(true, Relaxed);
    println!(
        "durable sends to offline mailboxes, senders={senders} size={size} window={window}: {:.0} Sent/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
