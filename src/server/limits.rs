//! Rate limits on callers (`callerrate` requests per second, `callerburst` at once): a
//! token bucket per caller address and, when `auth` is on, one per identity (each
//! distinct credential), so that neither a busy address nor a shared token can take the
//! tunnel for itself. A caller over either gets 429 with `Retry-After`.
//!
//! Memory is bounded: past [`MAX_BUCKETS`] buckets, the full ones (callers idle long
//! enough to have their whole burst back, who lose nothing by being forgotten) go.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Most buckets kept before the full ones are forgotten.
pub const MAX_BUCKETS: usize = 100_000;

/// Whose bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Address(IpAddr),
    /// A credential, hashed: the credential itself is never kept.
    Identity(u64),
}

impl Key {
    /// What the refusal and the metrics call it.
    pub fn kind(self) -> &'static str {
        match self {
            Key::Address(_) => "address",
            Key::Identity(_) => "identity",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every caller.
#[derive(Debug)]
pub struct RateLimits {
    /// Tokens added per second.
    rate: f64,
    /// Most tokens a bucket holds.
    burst: f64,
    buckets: Mutex<HashMap<Key, Bucket>>,
    /// Keyed per process: a credential's hash means nothing outside it.
    hasher: RandomState,
}

impl RateLimits {
    /// `rate` requests per second, `burst` at once (at least 1).
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimits {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    /// The key of a credential (the value of `Authorization` or `Proxy-Authorization`).
    pub fn identity(&self, credentials: &str) -> Key {
        Key::Identity(self.hasher.hash_one(credentials))
    }

    /// Takes a token from `key`'s bucket; `Err` with how long until one is back when it
    /// is empty.
    pub fn take(&self, key: Key) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock();
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refill(bucket, now, self.rate, self.burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - tokens) / self.rate))
    }
}

/// The tokens `bucket` holds at `now`.
fn refill(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_others_are_apart() {
        let limits = RateLimits::new(10.0, 3);
        let one = Key::Address([127, 0, 0, 1].into());
        let two = Key::Address([127, 0, 0, 2].into());
        for _ in 0..3 {
            assert_eq!(limits.take(one), Ok(()));
        }
        let wait = limits.take(one).expect_err("burst spent");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(
            limits.take(two),
            Ok(()),
            "another caller has its own bucket"
        );
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(limits.take(one), Ok(()), "a token is back after 100 ms");
    }

    #[test]
    fn identities_are_hashed_and_distinct() {
        let limits = RateLimits::new(1.0, 1);
        let (a, b) = (limits.identity("Bearer a"), limits.identity("Bearer b"));
        assert_ne!(a, b);
        assert_eq!(a, limits.identity("Bearer a"));
        assert_eq!(limits.take(a), Ok(()));
        assert!(limits.take(a).is_err());
        assert_eq!(limits.take(b), Ok(()));
        assert_eq!(a.kind(), "identity");
    }
}
