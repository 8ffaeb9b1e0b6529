//! Abuse limits: connection counts (per IP and in total) and frame rates (per connection and
//! per IP). Rates are token buckets from the `governor` crate.

use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use sotto_shared::ErrorCode;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;

pub type ConnectionRate = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;
type IpRate = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_second.saturating_mul(2).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

pub struct Limits {
    max_per_ip: usize,
    max_total: usize,
    per_connection_rate: u32,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    ip_rate: IpRate,
}

impl Limits {
    pub fn new(config: &crate::config::Limits) -> Limits {
        Limits {
            max_per_ip: config.max_connections_per_ip,
            max_total: config.max_connections,
            per_connection_rate: config.rate_per_connection,
            open: Mutex::new((0, HashMap::new())),
            ip_rate: RateLimiter::keyed(quota(config.rate_per_ip)),
        }
    }

    /// Counts a new connection in, or says which limit it breaks.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot<'_>, ErrorCode> {
        let mut open = self.open.lock().map_err(|_| ErrorCode::Internal)?;
        let here = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= self.max_total || here >= self.max_per_ip {
            return Err(ErrorCode::TooManyConnections);
        }
        open.0 += 1;
        open.1.insert(ip, here + 1);
        Ok(ConnectionSlot { limits: self, ip })
    }

    pub fn connection_rate(&self) -> ConnectionRate {
        RateLimiter::direct(quota(self.per_connection_rate))
    }

    /// Whether one more frame from `ip` is within the per-IP rate.
    pub fn ip_allows(&self, ip: IpAddr) -> bool {
        self.ip_rate.check_key(&ip).is_ok()
    }

    /// Forgets idle IP buckets so the limiter's memory stays bounded.
    pub fn housekeeping(&self) {
        self.ip_rate.retain_recent();
        self.ip_rate.shrink_to_fit();
    }
}

/// An admitted connection; leaving scope counts it out.
pub struct ConnectionSlot<'a> {
    limits: &'a Limits,
    ip: IpAddr,
}

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&self.ip);
                }
            }
        }
    }
}
