//! Writes one member's status to the hub, apart from its probe loop: a slow or unavailable hub
//! delays status writes, never probes (nor the pool, which the controller reads).
//!
//! The probe loop hands over each status worth writing through a watch channel; only the latest
//! one is written (an older one that was never written is simply superseded). A failed write is
//! retried with backoff, or at once when a newer status arrives.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use tokio::sync::watch;

use crate::api::{FIELD_MANAGER, MemberCluster, MemberClusterStatus};

/// Deadline of one write.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays after a failed write: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Writes the statuses sent on `statuses` to MemberCluster `name` until the sender is dropped.
pub async fn write_statuses(
    hub: Client,
    name: String,
    mut statuses: watch::Receiver<Option<MemberClusterStatus>>,
) {
    let api = Api::<MemberCluster>::all(hub);
    let mut retry = RETRY_FIRST;
    while statuses.changed().await.is_ok() {
        loop {
            let Some(status) = statuses.borrow_and_update().clone() else {
                break;
            };
            match write(&api, &name, &status).await {
                Ok(()) => {
                    retry = RETRY_FIRST;
                    break;
                }
                Err(e) => {
                    tracing::warn!(cluster = %name, "writing member status failed (retrying in {retry:?}): {e}");
                    // Retry after the delay, or at once with a newer status.
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        changed = statuses.changed() => if changed.is_err() { return },
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

/// One server-side apply of the status subresource. A MemberCluster deleted meanwhile is not an
/// error (its task is being stopped).
async fn write(
    api: &Api<MemberCluster>,
    name: &str,
    status: &MemberClusterStatus,
) -> Result<(), String> {
    let body = serde_json::json!({
        "apiVersion": MemberCluster::api_version(&()),
        "kind": MemberCluster::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&body);
    match tokio::time::timeout(WRITE_TIMEOUT, api.patch_status(name, &params, &patch)).await {
        Ok(Ok(_)) => {
            tracing::debug!(cluster = %name, "member status written");
            Ok(())
        }
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {WRITE_TIMEOUT:?}")),
    }
}
