//! Leader election on a Lease in the operator's namespace: of several `bascule run` processes
//! (the chart runs two), only the holder probes members and reconciles; the others wait.
//!
//! The Lease lasts 15 s and is renewed 5 s before it ends, so a standby takes over within about
//! 15 s of the leader's death. Besides the renewal loop (kube-lease-manager), the holder checks the
//! Lease itself every 2 s: if it cannot confirm that it still holds a live Lease — the hub is
//! unreachable or frozen, or another process took it — it steps down within 10 s of its last
//! confirmation, before the Lease can expire, rather than risk two writers: every reconcile and
//! member write stops, `/readyz` answers 503, and the process waits to lead again (it does not
//! exit: a frozen hub must not become a crash loop).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Seconds a Lease stays valid after its last renewal.
pub const LEASE_SECONDS: u64 = 15;
/// Seconds before the end of the Lease at which the holder renews it.
pub const GRACE_SECONDS: u64 = 5;
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Which Lease, and who this process is.
#[derive(Clone, Debug)]
pub struct LeaderOptions {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("cannot use Lease {namespace}/{name}: {message}")]
    Lease {
        namespace: String,
        name: String,
        message: String,
    },
    #[error("leadership lost: {0}")]
    Lost(String),
}

/// This process holds the Lease.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    leases: Api<Lease>,
    opts: LeaderOptions,
}

/// Waits until this process holds the Lease (creating it if needed).
pub async fn acquire(hub: kube::Client, opts: LeaderOptions) -> Result<Leadership, LeaderError> {
    let lease_error = |e: kube_lease_manager::LeaseManagerError| LeaderError::Lease {
        namespace: opts.namespace.clone(),
        name: opts.lease_name.clone(),
        message: e.to_string(),
    };
    let manager = LeaseManagerBuilder::new(hub.clone(), &opts.lease_name)
        .with_namespace(&opts.namespace)
        .with_identity(&opts.identity)
        .with_duration(LEASE_SECONDS)
        .with_grace(GRACE_SECONDS)
        .with_field_manager(format!("bascule-{}", opts.identity))
        .build()
        .await
        .map_err(lease_error)?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(lease = %opts.lease_name, identity = %opts.identity, "waiting for the leader Lease");
    if state.wait_for(|leader| *leader).await.is_err() {
        let why = match task.await {
            Ok(Err(e)) => e.to_string(),
            _ => "the Lease manager stopped".to_string(),
        };
        return Err(LeaderError::Lost(why));
    }
    tracing::info!(lease = %opts.lease_name, "leader Lease acquired");
    Ok(Leadership {
        state,
        task,
        leases: Api::namespaced(hub, &opts.namespace),
        opts,
    })
}

impl Leadership {
    /// Resolves when leadership is lost or cannot be confirmed, with the reason.
    pub async fn lost(&mut self) -> String {
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut confirmed = Timestamp::now();
        loop {
            tokio::select! {
                changed = self.state.changed() => {
                    if changed.is_err() || !*self.state.borrow() {
                        return "another process holds the Lease".to_string();
                    }
                }
                _ = check.tick() => {
                    let now = Timestamp::now();
                    // A frozen hub never answers: without a deadline, this check would wait for it
                    // past the Lease's end.
                    match tokio::time::timeout(CHECK_EVERY, self.leases.get(&self.opts.lease_name)).await {
                        Ok(Ok(lease)) => match holds(&lease, &self.opts.identity, now) {
                            Ok(()) => confirmed = now,
                            Err(why) => return why,
                        },
                        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the leader Lease"),
                        Err(_) => tracing::warn!("the leader Lease could not be read within {}s", CHECK_EVERY.as_secs()),
                    }
                    let limit = SignedDuration::from_secs((LEASE_SECONDS - GRACE_SECONDS) as i64);
                    if now.duration_since(confirmed) > limit {
                        return format!("the Lease could not be confirmed for {}s", limit.as_secs());
                    }
                }
            }
        }
    }

    /// Stops renewing a Lease this process no longer holds (or cannot confirm): nothing is
    /// written, the hub may not answer.
    pub fn abandon(self) {
        self.task.abort();
    }

    /// Gives the Lease up (a clean shutdown), so that a standby takes over at once.
    pub async fn release(self) {
        drop(self.state);
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader Lease released"),
            other => tracing::warn!(?other, "leader Lease not released cleanly"),
        }
    }
}

/// Whether the Lease names `identity` as holder and has not expired at `now`.
fn holds(lease: &Lease, identity: &str, now: Timestamp) -> Result<(), String> {
    let spec = lease.spec.as_ref().ok_or("the Lease has no spec")?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return Err(format!(
            "the Lease is held by {}",
            spec.holder_identity.as_deref().unwrap_or("nobody")
        ));
    }
    let duration = spec
        .lease_duration_seconds
        .map_or(LEASE_SECONDS as i64, i64::from);
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    match renewed {
        Some(t) if crate::api::time::after(t, SignedDuration::from_secs(duration)) > now => Ok(()),
        _ => Err("the Lease expired without renewal".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: Timestamp) -> Lease {
        Lease {
            spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
                holder_identity: Some(holder.into()),
                lease_duration_seconds: Some(15),
                renew_time: Some(MicroTime(renewed)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_live_lease_of_ours_is_held_and_anything_else_is_not() {
        let t = Timestamp::from_second(1_790_000_000).unwrap();
        let ten = SignedDuration::from_secs(10);
        assert_eq!(holds(&lease("a", t), "a", t + ten), Ok(()));
        assert!(
            holds(&lease("b", t), "a", t)
                .unwrap_err()
                .contains("held by b")
        );
        assert!(
            holds(&lease("a", t), "a", t + ten + ten)
                .unwrap_err()
                .contains("expired")
        );
        // A renewal time at the end of time (written by anyone who can write the Lease) holds
        // instead of panicking.
        assert_eq!(holds(&lease("a", Timestamp::MAX), "a", t), Ok(()));
    }
}
