//! Per-workload exponential retry backoff (kube's controller has none): a workload whose
//! reconcile keeps failing is retried less and less often, so that one broken object or member
//! cannot keep the controller busy, while a single failure is retried quickly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry after a failure.
const FIRST: Duration = Duration::from_secs(5);
/// Retries are never further apart than this.
const MAX: Duration = Duration::from_secs(300);

/// Failures in a row per workload (by uid or name), forgotten after a success.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        delay(*n)
    }

    /// Forgets the failures of `key`.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(key);
    }
}

/// The wait after `failures` failures in a row: 5 s, 10 s, 20 s, … up to 5 minutes.
pub fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_5s_to_5min() {
        let secs: Vec<u64> = (1..=8).map(|n| delay(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(delay(u32::MAX), MAX);
    }

    #[test]
    fn a_success_starts_again_from_the_first_delay() {
        let b = Backoff::default();
        assert_eq!(b.failed("a"), FIRST);
        assert_eq!(b.failed("a"), FIRST * 2);
        assert_eq!(b.failed("other"), FIRST, "per workload");
        b.succeeded("a");
        assert_eq!(b.failed("a"), FIRST);
    }
}
