//! Retry bounds and delays: one policy for every request and token endpoint,
//! `Retry-After` honoured, exponential backoff with jitter otherwise. A
//! server asking to wait longer than the policy allows
//! ([`RetryPolicy::max_retry_after`]) is not asked again early: the request
//! stops there with a reason saying how long the server asked to wait (see
//! [`wait_refused`]).
//! Every wait before another attempt is logged as a `retry` event (see
//! [`crate::progress`]) naming the endpoint without its query string.

use std::time::Duration;

use reqwest::StatusCode;

/// Bounds on retrying one request.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff delay when the server gives no `Retry-After`.
    pub base_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited for; a server asking for longer is not
    /// retried at all (retrying before the server's time only gets throttled
    /// again, or blocked), and the request fails saying so.
    pub max_retry_after: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            timeout: Duration::from_secs(60),
        }
    }
}

/// Why a request is not retried when the server's `Retry-After` is longer
/// than the policy waits: `Some(reason)` naming both times, or `None` when the
/// wait is within the policy (or the server gave none).
pub fn wait_refused(policy: &RetryPolicy, retry_after: Option<Duration>) -> Option<String> {
    let wait = retry_after.filter(|w| *w > policy.max_retry_after)?;
    Some(format!(
        "the server asked to wait {} s before trying again (Retry-After), longer than the {} s a run waits (max_retry_after), so the request was not retried",
        wait.as_secs(),
        policy.max_retry_after.as_secs()
    ))
}

/// The delay before attempt `attempt + 1`: the server's `Retry-After` if given
/// (never more than `max_retry_after`: callers check [`wait_refused`] first),
/// else exponential backoff with jitter in [½, 1] of the step.
pub fn backoff_delay(
    policy: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(wait) = retry_after {
        return wait.min(policy.max_retry_after);
    }
    let step = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(policy.max_delay);
    step.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// One failed attempt about to be tried again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attempt<'a> {
    /// The attempt that failed (1 for the first).
    pub number: u32,
    /// What went wrong (never a URL with its query, never a header).
    pub reason: &'a str,
    /// HTTP status of the answer, if there was one.
    pub status: Option<u16>,
    /// The server's `Retry-After`, if it gave one.
    pub retry_after: Option<Duration>,
    /// The URL asked; only its scheme, host and path are logged.
    pub url: &'a str,
}

/// Wait before the next attempt, as [`backoff_delay`] says, and log the wait
/// as a `retry` event: attempt, delay, reason, status and `Retry-After`.
pub(crate) async fn pause(policy: &RetryPolicy, attempt: Attempt<'_>) {
    let delay = backoff_delay(policy, attempt.number, attempt.retry_after);
    tracing::info!(
        event = "retry",
        attempt = attempt.number,
        max_attempts = policy.max_attempts,
        delay_ms = millis(delay),
        http_status = attempt.status,
        retry_after_ms = attempt.retry_after.map(millis),
        throttled = attempt.status == Some(429),
        reason = attempt.reason,
        endpoint = %endpoint(attempt.url),
        "retrying after a failed request"
    );
    tokio::time::sleep(delay).await;
}

/// A duration in whole milliseconds, for log fields.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `url` as it may be logged: scheme, host, port and path only. Query
/// strings (pre-signed download signatures, API keys some servers take
/// there), fragments and user information are dropped.
pub(crate) fn endpoint(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(port) => format!("{}://{host}:{port}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Whether an answer with `status` is worth another attempt.
pub(crate) fn is_retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let secs = (when.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(secs.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            let d = backoff_delay(&p, attempt, None);
            assert!(d <= p.max_delay);
        }
        let d3 = backoff_delay(&p, 3, None);
        assert!(d3 >= Duration::from_secs(1) && d3 <= Duration::from_secs(2));
        assert_eq!(
            backoff_delay(&p, 1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            backoff_delay(&p, 1, Some(Duration::from_secs(9999))),
            p.max_retry_after
        );
    }

    #[test]
    fn a_retry_after_beyond_the_policy_is_refused_not_shortened() {
        let tiny = RetryPolicy {
            max_retry_after: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        assert_eq!(wait_refused(&tiny, None), None);
        assert_eq!(wait_refused(&tiny, Some(Duration::from_secs(2))), None);
        let why = wait_refused(&tiny, Some(Duration::from_secs(3600))).expect("refused");
        assert!(
            why.contains("asked to wait 3600 s")
                && why.contains("2 s")
                && why.contains("not retried"),
            "{why}"
        );
    }

    #[test]
    fn endpoints_lose_query_fragment_and_user_information() {
        let canary = "CANARY-8f2c";
        for (url, want) in [
            (
                format!("https://graph.example/v1.0/users?$top=999&sig={canary}"),
                "https://graph.example/v1.0/users",
            ),
            (
                format!("http://user:{canary}@127.0.0.1:8080/dl#{canary}"),
                "http://127.0.0.1:8080/dl",
            ),
            (format!("not a url {canary}"), "(not a URL)"),
        ] {
            let got = endpoint(&url);
            assert_eq!(got, want);
            assert!(!got.contains(canary));
        }
    }
}
