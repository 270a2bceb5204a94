//! Rate limits the simulated APIs enforce: token buckets keyed by what the
//! real API counts against (an Entra tenant, an RMM account), answering 429
//! with `Retry-After` once a bucket is empty, as the real services do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// `requests` per `period`, with bursts up to `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimLimit {
    /// Requests allowed per period.
    pub requests: u32,
    /// The period.
    pub period: Duration,
}

impl SimLimit {
    /// `requests` per `secs` seconds.
    pub const fn per_secs(requests: u32, secs: u64) -> SimLimit {
        SimLimit {
            requests,
            period: Duration::from_secs(secs),
        }
    }
}

/// The limits the simulator enforces; `None` leaves a limit out. Datto RMM's
/// limit (with its IP block) is [`crate::simulate::DattoThrottle`] on the
/// Datto account.
#[derive(Clone, Debug, Default)]
pub struct SimRateLimits {
    /// Every Graph request, per tenant.
    pub graph_per_tenant: Option<SimLimit>,
    /// `/reports/authenticationMethods/*`, per tenant.
    pub graph_identity_reports: Option<SimLimit>,
    /// `/identity/conditionalAccess/policies`, per tenant; its 429 carries no
    /// `Retry-After`, as Microsoft documents.
    pub graph_conditional_access: Option<SimLimit>,
    /// `/deviceManagement/*`, per tenant.
    pub graph_intune: Option<SimLimit>,
    /// Every Graph request of the app, across all tenants.
    pub graph_global: Option<SimLimit>,
    /// Defender for Endpoint API, per tenant, per minute ...
    pub defender_per_minute: Option<SimLimit>,
    /// ... and per hour.
    pub defender_per_hour: Option<SimLimit>,
    /// Every NinjaOne request of the API client (the MSP's one account).
    pub ninja_per_account: Option<SimLimit>,
    /// Every Tactical RMM request of the API key.
    pub tactical_per_account: Option<SimLimit>,
}

impl SimRateLimits {
    /// The limits the vendors publish: Graph users 3,500 / 10 s per tenant (the smallest tier),
    /// identity reports 5 / 10 s, Conditional Access 1 / s, Intune 2,000 /
    /// 20 s, the app's global 130,000 / 10 s, Defender 100 / min and 1,500 /
    /// h. NinjaOne and Tactical RMM publish no number; `ninja_per_account`
    /// and `tactical_per_account` stay unset unless the caller picks one.
    pub fn documented() -> SimRateLimits {
        SimRateLimits {
            graph_per_tenant: Some(SimLimit::per_secs(3_500, 10)),
            graph_identity_reports: Some(SimLimit::per_secs(5, 10)),
            graph_conditional_access: Some(SimLimit::per_secs(1, 1)),
            graph_intune: Some(SimLimit::per_secs(2_000, 20)),
            graph_global: Some(SimLimit::per_secs(130_000, 10)),
            defender_per_minute: Some(SimLimit::per_secs(100, 60)),
            defender_per_hour: Some(SimLimit::per_secs(1_500, 3_600)),
            ninja_per_account: None,
            tactical_per_account: None,
        }
    }
}

/// The buckets, by key, with a count of refused requests.
#[derive(Debug, Default)]
pub(crate) struct Buckets {
    state: Mutex<HashMap<String, (f64, Instant)>>,
    refused: AtomicUsize,
}

impl Buckets {
    /// Take one token from each bucket named in `draws` (skipping unset
    /// limits), or none and `Some(wait)` until the emptiest has one again.
    pub(crate) fn draw(&self, draws: &[(String, Option<SimLimit>)]) -> Option<Duration> {
        let mut state = self.state.lock().ok()?;
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        let mut levels = Vec::new();
        for (key, limit) in draws {
            let Some(limit) = limit else { continue };
            let capacity = f64::from(limit.requests.max(1));
            let rate = capacity / limit.period.as_secs_f64().max(1e-3);
            let (tokens, last) = state.get(key).copied().unwrap_or((capacity, now));
            let level = (tokens + now.duration_since(last).as_secs_f64() * rate).min(capacity);
            if level < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - level) / rate));
            }
            levels.push((key.clone(), level));
        }
        if !wait.is_zero() {
            for (key, level) in levels {
                state.insert(key, (level, now));
            }
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Some(wait);
        }
        for (key, level) in levels {
            state.insert(key, (level - 1.0, now));
        }
        None
    }

    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refuses_beyond_its_limit_and_says_how_long_to_wait() {
        let b = Buckets::default();
        let draw = [("t1".to_owned(), Some(SimLimit::per_secs(2, 10)))];
        assert!(b.draw(&draw).is_none() && b.draw(&draw).is_none());
        let wait = b.draw(&draw).expect("third is refused");
        assert!(wait > Duration::from_secs(4) && wait <= Duration::from_secs(5));
        // Another key has its own bucket.
        assert!(b
            .draw(&[("t2".to_owned(), Some(SimLimit::per_secs(2, 10)))])
            .is_none());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(b.draw(&draw).is_none());
        assert_eq!(b.refused(), 1);
    }
}
