//! The published Microsoft Graph, Intune and Defender throttling limits as
//! token buckets: one set per source (one source is one tenant), plus the
//! global Graph cap per app shared by every tenant in the process.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::collect::ratelimit::{shared_limiter, AccountKey, RateLimiter};

/// A limit written `"<requests>/<period>"`, e.g. `"5/10s"`, `"100/1m"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests allowed per period.
    pub requests: u32,
    /// The period.
    pub period: Duration,
}

impl Limit {
    const fn new(requests: u32, secs: u64) -> Limit {
        Limit {
            requests,
            period: Duration::from_secs(secs),
        }
    }

    fn parse(text: &str) -> Result<Limit, String> {
        let bad = || format!("`{}` is not a limit like \"5/10s\"", text.escape_debug());
        let (n, period) = text.split_once('/').ok_or_else(bad)?;
        let requests: u32 = n.trim().parse().map_err(|_| bad())?;
        let period = parse_duration(period.trim()).ok_or_else(bad)?;
        if requests == 0 || period.is_zero() {
            return Err(bad());
        }
        Ok(Limit { requests, period })
    }

    fn limiter(self) -> RateLimiter {
        RateLimiter::new(self.requests, self.period)
    }
}

/// `"250ms"`, `"10s"`, `"1m"`, `"1h"`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (n, unit) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = text.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        return None;
    };
    let n: u64 = n.trim().parse().ok()?;
    Some(Duration::from_millis(n.checked_mul(unit)?))
}

/// `[sources.<name>.rate_limits]`: replace a published limit, e.g. for a
/// tenant Microsoft granted more, or a simulator. Each value is
/// `"<requests>/<period>"`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    users: Option<String>,
    identity_reports: Option<String>,
    conditional_access: Option<String>,
    directory: Option<String>,
    intune: Option<String>,
    defender_per_minute: Option<String>,
    defender_per_hour: Option<String>,
}

/// The limits in force for one source.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `/users`: 3,500 per 10 s per app and tenant (the smallest tenant tier).
    pub users: Limit,
    /// `/reports/authenticationMethods/*`: about 5 per 10 s.
    pub identity_reports: Limit,
    /// `/identity/conditionalAccess/policies`: 1 per second, no `Retry-After`.
    pub conditional_access: Limit,
    /// Other directory reads (roles, groups, policies, reviews, Secure Score).
    pub directory: Limit,
    /// Intune (`/deviceManagement/*`): 2,000 per 20 s.
    pub intune: Limit,
    /// Defender for Endpoint API: 100 per minute ...
    pub defender_per_minute: Limit,
    /// ... and 1,500 per hour.
    pub defender_per_hour: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            users: Limit::new(3_500, 10),
            identity_reports: Limit::new(5, 10),
            conditional_access: Limit::new(1, 1),
            directory: Limit::new(3_500, 10),
            intune: Limit::new(2_000, 20),
            defender_per_minute: Limit::new(100, 60),
            defender_per_hour: Limit::new(1_500, 3_600),
        }
    }
}

impl Limits {
    /// The published limits with `overrides` applied.
    ///
    /// # Errors
    /// When an override is not a valid limit (the message names the key).
    pub fn with(overrides: &LimitOverrides) -> Result<Limits, String> {
        let mut limits = Limits::default();
        for (key, given, slot) in [
            ("users", &overrides.users, &mut limits.users),
            (
                "identity_reports",
                &overrides.identity_reports,
                &mut limits.identity_reports,
            ),
            (
                "conditional_access",
                &overrides.conditional_access,
                &mut limits.conditional_access,
            ),
            ("directory", &overrides.directory, &mut limits.directory),
            ("intune", &overrides.intune, &mut limits.intune),
            (
                "defender_per_minute",
                &overrides.defender_per_minute,
                &mut limits.defender_per_minute,
            ),
            (
                "defender_per_hour",
                &overrides.defender_per_hour,
                &mut limits.defender_per_hour,
            ),
        ] {
            if let Some(text) = given {
                *slot = Limit::parse(text).map_err(|e| format!("rate_limits.{key}: {e}"))?;
            }
        }
        Ok(limits)
    }
}

/// The token buckets of one source.
pub struct Buckets {
    /// See [`Limits::users`].
    pub users: RateLimiter,
    /// See [`Limits::identity_reports`].
    pub identity_reports: RateLimiter,
    /// See [`Limits::conditional_access`].
    pub conditional_access: RateLimiter,
    /// See [`Limits::directory`].
    pub directory: RateLimiter,
    /// See [`Limits::intune`].
    pub intune: RateLimiter,
    /// See [`Limits::defender_per_minute`].
    pub defender_per_minute: RateLimiter,
    /// See [`Limits::defender_per_hour`].
    pub defender_per_hour: RateLimiter,
    /// The global Graph cap of the app (shared across sources).
    pub global: Arc<RateLimiter>,
}

impl Buckets {
    /// Fresh buckets for one tenant of app `client_id`.
    pub fn new(limits: &Limits, client_id: &str) -> Buckets {
        Buckets {
            users: limits.users.limiter(),
            identity_reports: limits.identity_reports.limiter(),
            conditional_access: limits.conditional_access.limiter(),
            directory: limits.directory.limiter(),
            intune: limits.intune.limiter(),
            defender_per_minute: limits.defender_per_minute.limiter(),
            defender_per_hour: limits.defender_per_hour.limiter(),
            global: global_graph_limit(client_id),
        }
    }
}

/// Microsoft Graph's global limit: 130,000 requests per 10 s per app across
/// all tenants.
pub const GLOBAL_GRAPH_LIMIT: (u32, Duration) = (130_000, Duration::from_secs(10));

/// The process-wide bucket for app `client_id`: every source using the same
/// app registration (an MSP's many tenants) draws from it.
pub fn global_graph_limit(client_id: &str) -> Arc<RateLimiter> {
    let app = AccountKey::new("graph", "", &client_id.to_ascii_lowercase());
    shared_limiter(&app, GLOBAL_GRAPH_LIMIT.0, GLOBAL_GRAPH_LIMIT.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_and_override() {
        assert_eq!(
            Limit::parse("5/10s"),
            Ok(Limit {
                requests: 5,
                period: Duration::from_secs(10)
            })
        );
        assert_eq!(
            Limit::parse("100/1m").map(|l| l.period),
            Ok(Duration::from_secs(60))
        );
        assert!(Limit::parse("0/1s").is_err() && Limit::parse("5").is_err());
        let o = LimitOverrides {
            conditional_access: Some("50/1s".into()),
            ..LimitOverrides::default()
        };
        let l = Limits::with(&o).expect("valid");
        assert_eq!(l.conditional_access.requests, 50);
        assert_eq!(l.identity_reports.requests, 5);
    }

    #[test]
    fn one_global_bucket_per_app() {
        let a = global_graph_limit("App-1");
        let b = global_graph_limit("app-1");
        let c = global_graph_limit("app-2");
        assert!(Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&a, &c));
    }
}
