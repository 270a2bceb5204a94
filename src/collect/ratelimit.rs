//! Token-bucket rate limits, so a run never exceeds a limit an API publishes,
//! and the process-wide registry of buckets shared by every source that uses
//! one account (an MSP's many organisations on one RMM instance or one
//! multi-tenant app): see [`shared_limiter`]. Beside it, the memory of
//! throttling that a server blocking IP addresses needs shared the same way
//! ([`shared_throttle_memory`], behind
//! [`ThrottleBlock::shared`](super::http::ThrottleBlock::shared)).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token bucket: `capacity` requests at once, refilled evenly over `period`.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// At most `requests` per `period`, with bursts up to `requests`.
    pub fn new(requests: u32, period: Duration) -> RateLimiter {
        let capacity = f64::from(requests.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / period.as_secs_f64().max(1e-3),
            state: Mutex::new(Bucket {
                tokens: capacity,
                last: Instant::now(),
            }),
        }
    }

    /// Wait until one request may be sent, and take its token.
    pub async fn acquire(&self) {
        let mut bucket = self.state.lock().await;
        loop {
            let now = Instant::now();
            let refill = now.duration_since(bucket.last).as_secs_f64() * self.per_second;
            bucket.tokens = (bucket.tokens + refill).min(self.capacity);
            bucket.last = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return;
            }
            let wait = (1.0 - bucket.tokens) / self.per_second;
            // Holding the lock while sleeping keeps waiters in arrival order.
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

/// The account a limit belongs to: the API (`kind`), its base URL and a
/// SHA-256 digest of the credential's identity (a client id, or an API key),
/// so that the key never holds a secret, even in memory dumps of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccountKey {
    kind: &'static str,
    base: String,
    identity: String,
}

impl AccountKey {
    /// The account of `identity` (client id or API key) at `base_url` of API
    /// `kind` (e.g. `ninjaone`). The base URL is compared without a trailing
    /// slash and case-insensitively.
    pub fn new(kind: &'static str, base_url: &str, identity: &str) -> AccountKey {
        AccountKey {
            kind,
            base: base_url.trim_end_matches('/').to_ascii_lowercase(),
            identity: hex::encode(Sha256::digest(identity.as_bytes())),
        }
    }
}

/// The process-wide bucket of `account` for `requests` per `period`: every
/// source of that account with the same limit draws from the same bucket,
/// so that organisations sharing an RMM account or an app registration
/// together stay under the account's limit. (Sources of one account that
/// state different limits get different buckets: give them the same.)
pub fn shared_limiter(account: &AccountKey, requests: u32, period: Duration) -> Arc<RateLimiter> {
    type Registry = StdMutex<HashMap<(AccountKey, u32, Duration), Arc<RateLimiter>>>;
    static BUCKETS: OnceLock<Registry> = OnceLock::new();
    let buckets = BUCKETS.get_or_init(|| StdMutex::new(HashMap::new()));
    let make = || Arc::new(RateLimiter::new(requests, period));
    match buckets.lock() {
        Ok(mut map) => map
            .entry((account.clone(), requests, period))
            .or_insert_with(make)
            .clone(),
        // A poisoned map only means another thread panicked while inserting;
        // a private bucket still enforces the limit for this source.
        Err(_) => make(),
    }
}

/// When a source of `account`'s API host last met a 429, shared by every
/// source of that host in the process whatever its credential: a server that
/// blocks a client's IP address after throttling it (Datto RMM) blocks every
/// account and site this process collects from it.
pub(crate) fn shared_throttle_memory(account: &AccountKey) -> Arc<StdMutex<Option<Instant>>> {
    type Memory = Arc<StdMutex<Option<Instant>>>;
    type Registry = StdMutex<HashMap<(&'static str, String), Memory>>;
    static MEMORY: OnceLock<Registry> = OnceLock::new();
    let memory = MEMORY.get_or_init(|| StdMutex::new(HashMap::new()));
    match memory.lock() {
        Ok(mut map) => map
            .entry((account.kind, account.base.clone()))
            .or_default()
            .clone(),
        // As for the buckets: a private memory still works for this source.
        Err(_) => Memory::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_account_and_limit() {
        let a = AccountKey::new("ninjaone", "https://app.ninjarmm.com/", "client-1");
        let same = AccountKey::new("ninjaone", "https://APP.ninjarmm.com", "client-1");
        let other = AccountKey::new("ninjaone", "https://app.ninjarmm.com", "client-2");
        let minute = Duration::from_secs(60);
        let x = shared_limiter(&a, 300, minute);
        assert!(Arc::ptr_eq(&x, &shared_limiter(&same, 300, minute)));
        assert!(!Arc::ptr_eq(&x, &shared_limiter(&other, 300, minute)));
        assert!(
            !format!("{a:?}").contains("client-1"),
            "the identity is hashed"
        );
    }

    #[test]
    fn throttling_is_remembered_per_api_host_for_every_credential() {
        let a = AccountKey::new("datto-rmm", "https://merlot-api.centrastage.net", "key-1");
        let b = AccountKey::new("datto-rmm", "https://MERLOT-api.centrastage.net/", "key-2");
        let other = AccountKey::new("datto-rmm", "https://syrah-api.centrastage.net", "key-1");
        assert!(Arc::ptr_eq(
            &shared_throttle_memory(&a),
            &shared_throttle_memory(&b)
        ));
        assert!(!Arc::ptr_eq(
            &shared_throttle_memory(&a),
            &shared_throttle_memory(&other)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn two_organisations_on_one_account_draw_from_one_bucket() {
        let account = AccountKey::new("datto-rmm", "https://pinotage-api.centrastage.net", "key");
        let org_a = shared_limiter(&account, 6, Duration::from_secs(60));
        let org_b = shared_limiter(&account, 6, Duration::from_secs(60));
        let start = Instant::now();
        // 12 requests between them: 6 at once, then one every 10 s.
        for _ in 0..6 {
            org_a.acquire().await;
            org_b.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(61));
    }

    #[tokio::test(start_paused = true)]
    async fn never_exceeds_the_rate() {
        let limiter = RateLimiter::new(5, Duration::from_secs(10));
        let start = Instant::now();
        for _ in 0..15 {
            limiter.acquire().await;
        }
        // 5 at once, then 10 more at 2 s each.
        assert!(start.elapsed() >= Duration::from_secs(20));
        assert!(start.elapsed() < Duration::from_secs(21));
    }
}
