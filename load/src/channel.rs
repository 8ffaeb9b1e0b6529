//! A channel's fan-out: `subscribers` connections read one channel, as each follower's app does
//! on its anonymous line; its admin publishes real signed posts at a steady rate, each checked
//! by the relay against the owner's admin list. Measures, per post, the time from its upload to
//! its arrival at each subscriber and at the last one, and the relay's CPU time per delivery.

use crate::arrivals::Arrivals;
use crate::wire::{Result, open, recv, send};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use sotto_engine::channel::{ChannelKey, ChannelLink, PostBody, sign_list};
use sotto_engine::random::OsEntropy;
use sotto_shared::channel::ChannelPost;
use sotto_shared::{ClientFrame, RelayFrame};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Connections opened at once while subscribing.
const OPENING: usize = 256;

/// Post nonce → its number and upload time (a post's nonce names it).
type Sent = RwLock<HashMap<[u8; 16], (usize, u64)>>;

/// The relay's CPU time so far (user + system), in seconds, from /proc.
fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("no stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).ok_or("no utime")?.parse::<f64>()?
        + fields.get(12).ok_or("no stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

pub async fn run(
    url: &str,
    origin: &str,
    subscribers: usize,
    size: usize,
    seconds: u64,
    rate: u64,
    relay_pid: Option<u32>,
) -> Result<()> {
    let epoch = Instant::now();
    let e = &mut OsEntropy;
    let owner = ChannelKey::generate(e)?;
    let admin = ChannelKey::generate(e)?;
    let link = ChannelLink::new("Load", "", &owner, e)?;
    let list = sign_list(&owner, link.id, 1, vec![admin.public()]);
    let (mut tx, mut rx) = open(url, origin).await?;
    send(&mut tx, &ClientFrame::ChannelAdmins { owner: link.owner, list: Box::new(list) }).await?;
    match recv(&mut rx).await? {
        RelayFrame::ChannelState(_) => {}
        other => return Err(format!("expected ChannelState, got {other:?}").into()),
    }

    let posts = usize::try_from(rate * seconds)?.max(1);
    let arrivals = Arc::new(Arrivals::new(posts, subscribers));
    let sent_posts: Arc<Sent> = Arc::new(RwLock::new(HashMap::new()));
    let each = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let failed = Arc::new(AtomicBool::new(false));
    let live = Arc::new(AtomicUsize::new(0));
    let joining = Instant::now();
    let channel = link.id;
    let mut readers = Vec::with_capacity(subscribers);
    let mut opened = futures_util::stream::iter(0..subscribers)
        .map(|_| async move {
            let (mut tx, rx) = open(url, origin).await?;
            let mut member = [0u8; 16];
            sotto_engine::random::fill(&mut member)?;
            send(&mut tx, &ClientFrame::SubscribeChannel { channel, after: 0, member }).await?;
            Result::Ok((tx, rx))
        })
        .buffer_unordered(OPENING);
    while let Some(conn) = opened.next().await {
        let (tx, mut rx) = conn?;
        let (arrivals, each, failed, live) = (arrivals.clone(), each.clone(), failed.clone(), live.clone());
        let sent_posts = sent_posts.clone();
        readers.push(tokio::spawn(async move {
            let _tx = tx;
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut got = 0;
            while got < posts {
                match recv(&mut rx).await {
                    Ok(RelayFrame::Subscribed { more: false, .. }) => {
                        live.fetch_add(1, Relaxed);
                    }
                    Ok(RelayFrame::Posted { payload, .. }) => {
                        let now = epoch.elapsed().as_micros() as u64;
                        let Ok(post) = postcard::from_bytes::<ChannelPost>(&payload) else { continue };
                        let Some((i, sent)) =
                            sent_posts.read().ok().and_then(|s| s.get(&post.nonce).copied())
                        else {
                            continue;
                        };
                        let _ = local.record(now.saturating_sub(sent).max(1));
                        arrivals.arrived(i, now);
                        got += 1;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        failed.store(true, Relaxed);
                        break;
                    }
                }
            }
            if let Ok(mut h) = each.lock() {
                let _ = h.add(&local);
            }
        }));
    }
    while live.load(Relaxed) < subscribers {
        if failed.load(Relaxed) {
            return Err("a subscriber's connection failed while subscribing".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{subscribers} subscribers live in {:.1} s", joining.elapsed().as_secs_f64());
    if let Some(pid) = relay_pid {
        eprintln!("relay RSS with them live: {} MiB", crate::rss_kib(pid)? / 1024);
    }

    let acks = tokio::spawn(async move {
        let mut sent = 0;
        while sent < posts {
            match recv(&mut rx).await {
                Ok(RelayFrame::Sent { .. }) => sent += 1,
                Ok(RelayFrame::Error { code, message, .. }) => eprintln!("post refused: {code:?}: {message}"),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let cpu_before = relay_pid.map(cpu_secs).transpose()?;
    let started = Instant::now();
    let text = "x".repeat(size);
    let mut sent_at = Vec::with_capacity(posts);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..posts {
        ticker.tick().await;
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        let post = link.post(&admin, 1, &PostBody::Text(text.clone()), now_ms, &mut OsEntropy)?;
        let at = epoch.elapsed().as_micros() as u64;
        sent_posts.write().map_err(|_| "lock")?.insert(post.nonce, (i, at));
        sent_at.push(at);
        send(&mut tx, &ClientFrame::PublishPost { post: Box::new(post), ttl_secs: 3600 }).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for r in readers {
        if tokio::time::timeout_at(deadline, r).await.is_err() {
            failed.store(true, Relaxed);
        }
    }
    let busy = started.elapsed().as_secs_f64();
    let cpu = match (relay_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_secs(pid)? - before),
        _ => None,
    };
    acks.abort();
    let (to_last, incomplete) = arrivals.to_last(&sent_at)?;
    let each = each.lock().map_err(|_| "histogram lock poisoned")?;
    let ms = |v: u64| v as f64 / 1000.0;
    let deliveries = (posts * subscribers) as f64;
    let cpu_words = cpu.map_or(String::new(), |c| {
        format!(
            "; relay CPU {c:.2} s over {busy:.1} s ({:.2} µs per delivery, {:.1} ms per post)",
            c * 1e6 / deliveries,
            c * 1e3 / posts as f64
        )
    });
    println!(
        "channel subscribers={subscribers} size={size} rate={rate}/s posts={posts}: upload→each subscriber p50 \
         {:.1} ms, p99 {:.1} ms (n={}); upload→last subscriber p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
         {incomplete} posts not seen by every subscriber{}{cpu_words}",
        ms(each.value_at_quantile(0.5)),
        ms(each.value_at_quantile(0.99)),
        each.len(),
        ms(to_last.value_at_quantile(0.5)),
        ms(to_last.value_at_quantile(0.99)),
        ms(to_last.max()),
        if failed.load(Relaxed) { " (some connections failed)" } else { "" },
    );
    Ok(())
}
