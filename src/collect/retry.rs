//! Retry bounds and delays: one policy for every request and token endpoint,
//! `Retry-After` honoured (capped), exponential backoff with jitter otherwise.

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
    /// Longest `Retry-After` honoured; longer waits are cut to this.
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

/// The delay before attempt `attempt + 1`: the server's `Retry-After` if given
/// (capped), else exponential backoff with jitter in [½, 1] of the step.
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
}
