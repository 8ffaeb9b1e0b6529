//! Abuse limits: connection counts (per IP and in total), frame rates (per connection and per
//! IP) and envelope bytes per IP. Rates are token buckets from the `governor` crate.
//!
//! "Per IP" means per IPv4 address, or per IPv6 /64: one customer of an ISP usually holds a
//! whole /64, so counting single IPv6 addresses would let one person act as billions.

use crate::store::TopicKey;
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use sotto_shared::channel::ChannelId;
use sotto_shared::limits::PREKEYS_LOW_INTERVAL_SECS;

/// Admin-list changes one channel makes an hour (each goes to every reader).
const LIST_CHANGES_PER_CHANNEL_HOUR: u32 = 20;
use sotto_shared::{Address, ErrorCode};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub type ConnectionRate = RateLimiter<NotKeyed, InMemoryState, DefaultClock>;
type IpRate = RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>;

/// The key per-IP limits count under: the address itself for IPv4 (and IPv4-mapped IPv6), its
/// /64 prefix for IPv6.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_second.saturating_mul(2).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

fn per_hour(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_hour(n).allow_burst(n)
}

fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(n).allow_burst(n)
}

fn byte_quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    // A burst below one largest envelope would refuse it forever.
    let floor = u32::try_from(sotto_shared::limits::MAX_ENVELOPE_BYTES).unwrap_or(u32::MAX);
    let burst = NonZeroU32::new(burst.max(floor)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

pub struct Limits {
    max_per_ip: usize,
    max_total: usize,
    per_connection_rate: u32,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    ip_rate: IpRate,
    /// Envelope payload bytes per IP.
    ip_bytes: IpRate,
    bundles_per_ip: IpRate,
    new_mailboxes_per_ip: IpRate,
    new_topics_per_ip: IpRate,
    channel_reads_per_ip: IpRate,
    reports_per_ip: IpRate,
    counted_members_per_ip: IpRate,
    blob_mib_per_ip: IpRate,
    lists_per_channel: RateLimiter<ChannelId, DefaultKeyedStateStore<ChannelId>, DefaultClock>,
    one_time_per_target: RateLimiter<Address, DefaultKeyedStateStore<Address>, DefaultClock>,
    posts_per_topic: RateLimiter<TopicKey, DefaultKeyedStateStore<TopicKey>, DefaultClock>,
    /// When each identity was last told its prekeys run low.
    low_notices: Mutex<HashMap<Address, Instant>>,
}

impl Limits {
    pub fn new(config: &crate::config::Limits) -> Limits {
        Limits {
            max_per_ip: config.max_connections_per_ip,
            max_total: config.max_connections,
            per_connection_rate: config.rate_per_connection,
            open: Mutex::new((0, HashMap::new())),
            ip_rate: RateLimiter::keyed(quota(config.rate_per_ip)),
            ip_bytes: RateLimiter::keyed(byte_quota(config.ip_bytes_per_sec, config.ip_bytes_burst)),
            bundles_per_ip: RateLimiter::keyed(per_minute(config.bundles_per_ip_minute)),
            new_mailboxes_per_ip: RateLimiter::keyed(per_hour(config.new_mailboxes_per_ip_hour)),
            new_topics_per_ip: RateLimiter::keyed(per_hour(config.new_topics_per_ip_hour)),
            channel_reads_per_ip: RateLimiter::keyed(per_minute(config.channel_reads_per_ip_minute)),
            reports_per_ip: RateLimiter::keyed(per_hour(config.reports_per_ip_hour)),
            counted_members_per_ip: RateLimiter::keyed(per_hour(config.counted_subscribers_per_ip_hour)),
            blob_mib_per_ip: RateLimiter::keyed(per_hour(config.blob_mib_per_ip_hour)),
            lists_per_channel: RateLimiter::keyed(per_hour(LIST_CHANGES_PER_CHANNEL_HOUR)),
            one_time_per_target: RateLimiter::keyed(per_minute(config.one_time_per_target_minute)),
            posts_per_topic: RateLimiter::keyed(quota(config.topic_posts_per_sec)),
            low_notices: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` may open one more mailbox now.
    pub fn new_mailbox_allowed(&self, ip: IpAddr) -> bool {
        self.new_mailboxes_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether `topic` takes one more post now.
    pub fn topic_post_allowed(&self, topic: &TopicKey) -> bool {
        self.posts_per_topic.check_key(topic).is_ok()
    }

    /// Whether `ip` may open one more topic now.
    pub fn new_topic_allowed(&self, ip: IpAddr) -> bool {
        self.new_topics_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether `ip` may subscribe to (or ask the counts of) one more channel now.
    pub fn channel_read_allowed(&self, ip: IpAddr) -> bool {
        self.channel_reads_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether a subscription from `ip` is counted among a channel's members now.
    pub fn count_member_allowed(&self, ip: IpAddr) -> bool {
        self.counted_members_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether `ip` may start a blob of `bytes` now (counted in started mebibytes).
    pub fn blob_allowed(&self, ip: IpAddr, bytes: u64) -> bool {
        let mib = u32::try_from(bytes.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX);
        let Some(n) = NonZeroU32::new(mib) else { return false };
        matches!(self.blob_mib_per_ip.check_key_n(&ip_key(ip), n), Ok(Ok(())))
    }

    /// Whether `channel` may change its admin list now.
    pub fn list_change_allowed(&self, channel: &ChannelId) -> bool {
        self.lists_per_channel.check_key(channel).is_ok()
    }

    /// Whether `ip` may send the operator one more report now.
    pub fn report_allowed(&self, ip: IpAddr) -> bool {
        self.reports_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether `ip` may fetch one more prekey bundle now.
    pub fn bundle_allowed(&self, ip: IpAddr) -> bool {
        self.bundles_per_ip.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether one more one-time prekey of `target` may be handed out now.
    pub fn one_time_allowed(&self, target: &Address) -> bool {
        self.one_time_per_target.check_key(target).is_ok()
    }

    /// Whether `owner` may be told now that its prekeys run low (at most once a minute).
    pub fn low_notice_due(&self, owner: &Address) -> bool {
        let interval = Duration::from_secs(PREKEYS_LOW_INTERVAL_SECS);
        self.low_notices.lock().is_ok_and(|last| last.get(owner).is_none_or(|t| t.elapsed() >= interval))
    }

    /// Notes that `owner` was told (a notice nobody received does not count).
    pub fn low_notice_sent(&self, owner: &Address) {
        if let Ok(mut last) = self.low_notices.lock() {
            last.insert(*owner, Instant::now());
        }
    }

    /// Counts a new connection in, or says which limit it breaks.
    pub fn admit(&self, ip: IpAddr) -> Result<ConnectionSlot<'_>, ErrorCode> {
        let ip = ip_key(ip);
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
        self.ip_rate.check_key(&ip_key(ip)).is_ok()
    }

    /// Whether `ip` may send an envelope of `bytes` more payload now.
    pub fn ip_allows_bytes(&self, ip: IpAddr, bytes: usize) -> bool {
        let n = NonZeroU32::new(u32::try_from(bytes.max(1)).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        matches!(self.ip_bytes.check_key_n(&ip_key(ip), n), Ok(Ok(())))
    }

    /// Forgets idle IP buckets so the limiter's memory stays bounded.
    pub fn housekeeping(&self) {
        self.ip_rate.retain_recent();
        self.ip_rate.shrink_to_fit();
        self.ip_bytes.retain_recent();
        self.ip_bytes.shrink_to_fit();
        self.bundles_per_ip.retain_recent();
        self.bundles_per_ip.shrink_to_fit();
        self.new_mailboxes_per_ip.retain_recent();
        self.new_mailboxes_per_ip.shrink_to_fit();
        self.new_topics_per_ip.retain_recent();
        self.new_topics_per_ip.shrink_to_fit();
        self.channel_reads_per_ip.retain_recent();
        self.channel_reads_per_ip.shrink_to_fit();
        self.reports_per_ip.retain_recent();
        self.reports_per_ip.shrink_to_fit();
        self.blob_mib_per_ip.retain_recent();
        self.blob_mib_per_ip.shrink_to_fit();
        self.counted_members_per_ip.retain_recent();
        self.counted_members_per_ip.shrink_to_fit();
        self.lists_per_channel.retain_recent();
        self.lists_per_channel.shrink_to_fit();
        self.one_time_per_target.retain_recent();
        self.one_time_per_target.shrink_to_fit();
        self.posts_per_topic.retain_recent();
        self.posts_per_topic.shrink_to_fit();
        if let Ok(mut last) = self.low_notices.lock() {
            let interval = Duration::from_secs(PREKEYS_LOW_INTERVAL_SECS);
            last.retain(|_, t| t.elapsed() < interval);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        assert_eq!(ip_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(ip_key("192.0.2.7".parse().unwrap()), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
