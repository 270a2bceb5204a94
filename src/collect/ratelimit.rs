//! Token-bucket rate limits, so a run never exceeds a limit an API publishes.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
