//! Rate limits (token buckets from `governor`): per connection for signaling and for room
//! joins, with flood detection, and per client IP for new connections and for TURN
//! credentials (`GET /api/rtc-config`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;

/// A bucket refilling at `rate` per second and holding `burst`; `None` when `rate` is 0.
fn quota(rate: u32, burst: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rate).max(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// The quotas every connection gets, from the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quotas {
    signal: Option<Quota>,
    join: Option<Quota>,
    flood: Option<Quota>,
}

impl Quotas {
    pub(crate) fn new(config: &LimitsConfig) -> Self {
        Self {
            signal: quota(config.signal_rate, config.signal_burst),
            join: quota(config.join_rate, config.join_burst),
            flood: quota((config.flood_tolerance / 10).max(1), config.flood_tolerance)
                .filter(|_| config.flood_tolerance > 0),
        }
    }
}

/// What a rate limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    /// Over the limit: drop the event.
    Dropped,
    /// Over the limit for too long: drop the connection.
    Flooding,
}

/// One connection's buckets.
#[derive(Debug)]
pub(crate) struct PeerLimits {
    signal: Option<DefaultDirectRateLimiter>,
    join: Option<DefaultDirectRateLimiter>,
    flood: Option<DefaultDirectRateLimiter>,
}

impl PeerLimits {
    pub(crate) fn new(quotas: &Quotas) -> Self {
        Self {
            signal: quotas.signal.map(RateLimiter::direct),
            join: quotas.join.map(RateLimiter::direct),
            flood: quotas.flood.map(RateLimiter::direct),
        }
    }

    pub(crate) fn signal(&self) -> Verdict {
        self.verdict(self.signal.as_ref())
    }

    pub(crate) fn join(&self) -> Verdict {
        self.verdict(self.join.as_ref())
    }

    fn verdict(&self, bucket: Option<&DefaultDirectRateLimiter>) -> Verdict {
        match bucket.map(RateLimiter::check) {
            None | Some(Ok(())) => Verdict::Allowed,
            // Every dropped event also draws on the flood bucket; an empty one means the
            // client keeps sending far over its limit.
            Some(Err(_)) => match self.flood.as_ref().map(RateLimiter::check) {
                Some(Err(_)) => Verdict::Flooding,
                _ => Verdict::Dropped,
            },
        }
    }
}

/// Requests per client IP, at `CONNECT_RATE`/`CONNECT_BURST`: new connections, and on its
/// own bucket the RTC configurations (each holds fresh TURN credentials).
#[derive(Debug, Clone)]
pub(crate) struct ConnectLimiter {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    checks: Arc<AtomicU64>,
}

/// How often the per-IP table is pruned of full buckets, in checks.
const PRUNE_EVERY: u64 = 1024;

impl ConnectLimiter {
    pub(crate) fn new(config: &LimitsConfig) -> Self {
        Self {
            limiter: quota(config.connect_rate, config.connect_burst)
                .map(|q| Arc::new(RateLimiter::keyed(q))),
            checks: Arc::default(),
        }
    }

    /// Whether `ip` may make one more request now; if not, how long until it may.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        // Forget IPs whose buckets are full again, so the table stays as small as the set
        // of recently active clients.
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> LimitsConfig {
        crate::config::config_from(args).unwrap().limits
    }

    #[test]
    fn a_burst_passes_then_events_drop_then_a_flood_is_detected() {
        let c = config(&[
            "--signal-rate",
            "1",
            "--signal-burst",
            "5",
            "--flood-tolerance",
            "3",
        ]);
        let peer = PeerLimits::new(&Quotas::new(&c));
        let verdicts: Vec<Verdict> = (0..9).map(|_| peer.signal()).collect();
        assert_eq!(&verdicts[..5], [Verdict::Allowed; 5]);
        assert_eq!(&verdicts[5..8], [Verdict::Dropped; 3]);
        assert_eq!(verdicts[8], Verdict::Flooding);
        // Joins have their own bucket.
        assert_eq!(peer.join(), Verdict::Allowed);
    }

    #[test]
    fn zero_rate_disables_a_limit() {
        let c = config(&["--signal-rate", "0", "--connect-rate", "0"]);
        let peer = PeerLimits::new(&Quotas::new(&c));
        assert!((0..10_000).all(|_| peer.signal() == Verdict::Allowed));
        let ip = ConnectLimiter::new(&c);
        assert!((0..10_000).all(|_| ip.check(IpAddr::from([127, 0, 0, 1])).is_ok()));
    }

    #[test]
    fn connections_are_limited_per_ip() {
        let c = config(&["--connect-rate", "1", "--connect-burst", "3"]);
        let limiter = ConnectLimiter::new(&c);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert!((0..3).all(|_| limiter.check(a).is_ok()));
        assert!(limiter.check(a).is_err());
        assert!(
            limiter.check(b).is_ok(),
            "one IP's flood must not lock out another"
        );
        let wait = limiter.check(a).unwrap_err();
        assert!(
            Duration::ZERO < wait && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }
}
