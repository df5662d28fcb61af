//! How long to wait before trying a run again: exponential backoff with jitter, never less than what the
//! server asked for with `Retry-After`.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a run fails for good.
    pub max_attempts: u32,
    /// The first wait; doubled each attempt.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// How long a worker may hold a run before another takes it over.
    pub lease: Duration,
    /// Each API call's time limit.
    pub call_timeout: Duration,
    /// How often idle workers look for work queued by other instances.
    pub poll_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_secs(5),
            cap: Duration::from_secs(15 * 60),
            lease: Duration::from_secs(5 * 60),
            call_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        use rand::Rng;
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.cap);
        // Up to a quarter more, so that runs failed together do not all come back together.
        let jitter = exp.mul_f64(rand::thread_rng().gen_range(0.0..0.25));
        (exp + jitter)
            .max(retry_after.unwrap_or_default())
            .min(self.cap.max(retry_after.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        let d1 = p.delay(1, None);
        assert!(
            d1 >= Duration::from_secs(2) && d1 <= Duration::from_millis(2500),
            "{d1:?}"
        );
        let d3 = p.delay(3, None);
        assert!(
            d3 >= Duration::from_secs(8) && d3 <= Duration::from_secs(10),
            "{d3:?}"
        );
        assert!(p.delay(30, None) <= Duration::from_secs(60));
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        // The server's word wins even over the cap.
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }
}
