//! Polling helpers with deadlines that report what was last seen.

use std::future::Future;
use std::time::{Duration, Instant};

/// Calls `check` every `interval` until it returns `Ok`, or fails after `timeout` with the last
/// `Err` (which should describe what was observed, e.g. "2/3 available").
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return Ok(v),
            Err(last) => {
                if start.elapsed() >= timeout {
                    return Err(format!("{what}: not within {timeout:?}; last seen: {last}"));
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
}
