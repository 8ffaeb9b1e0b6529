//! A group's fan-out: `members` connections read one topic, as each member's app reads its
//! group on its anonymous line; one member posts at a steady rate. Measures, for each post,
//! the time from its upload to its arrival at each member and at the last member.

use crate::arrivals::Arrivals;
use crate::wire::{Result, open, random_id, recv, send, stamped};
use hdrhistogram::Histogram;
use sotto_shared::frames::{Subscription, topic_write_hash};
use sotto_shared::{ClientFrame, RelayFrame, TopicId, WriteKey};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub async fn run(
    url: &str,
    origin: &str,
    members: usize,
    size: usize,
    seconds: u64,
    rate: u64,
) -> Result<()> {
    let epoch = Instant::now();
    let mut id = [0u8; 32];
    let mut write = [0u8; 32];
    sotto_engine::random::fill(&mut id)?;
    sotto_engine::random::fill(&mut write)?;
    let (topic, write) = (TopicId(id), WriteKey(write));
    let subscribe = ClientFrame::Subscribe {
        topics: vec![Subscription { topic, write_hash: topic_write_hash(&write), after: 0 }],
    };
    let posts = usize::try_from(rate * seconds)?.max(1);
    let arrivals = Arc::new(Arrivals::new(posts, members));
    let each = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?));
    let failed = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    let joining = Instant::now();
    for _ in 0..members {
        let (mut tx, mut rx) = open(url, origin).await?;
        send(&mut tx, &subscribe).await?;
        match recv(&mut rx).await? {
            RelayFrame::Subscribed { .. } => {}
            other => return Err(format!("expected Subscribed, got {other:?}").into()),
        }
        let (arrivals, each, failed) = (arrivals.clone(), each.clone(), failed.clone());
        readers.push(tokio::spawn(async move {
            let _tx = tx;
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let mut got = 0;
            while got < posts {
                match recv(&mut rx).await {
                    Ok(RelayFrame::Posted { payload, .. }) => {
                        let now = epoch.elapsed().as_micros() as u64;
                        let sent = u64::from_be_bytes(payload[..8].try_into().unwrap_or_default());
                        let i = u64::from_be_bytes(payload[8..16].try_into().unwrap_or_default()) as usize;
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
    eprintln!("{members} members subscribed in {:.1} s", joining.elapsed().as_secs_f64());

    let (mut tx, mut rx) = open(url, origin).await?;
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
    let mut sent_at = Vec::with_capacity(posts);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..posts {
        ticker.tick().await;
        let mut payload = stamped(size.max(16), epoch);
        payload[8..16].copy_from_slice(&(i as u64).to_be_bytes());
        sent_at.push(u64::from_be_bytes(payload[..8].try_into()?));
        let post = ClientFrame::Post { id: random_id(), topic, write, ttl_secs: 3600, payload };
        send(&mut tx, &post).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for r in readers {
        if tokio::time::timeout_at(deadline, r).await.is_err() {
            failed.store(true, Relaxed);
        }
    }
    acks.abort();
    let (to_last, incomplete) = arrivals.to_last(&sent_at)?;
    let each = each.lock().map_err(|_| "histogram lock poisoned")?;
    let ms = |v: u64| v as f64 / 1000.0;
    println!(
        "group members={members} size={size} rate={rate}/s posts={posts}: upload→each member p50 {:.2} ms, \
         p99 {:.2} ms (n={}); upload→last member p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {incomplete} posts \
         not seen by every member{}",
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
