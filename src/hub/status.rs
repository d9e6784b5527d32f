//! The hub's one status writer.
//!
//! - [`apply`]: a server-side apply of `status` (the whole status this process owns), used for
//!   MultiCloudWorkloads by the controller and for MemberClusters by [`write_latest`].
//! - [`merge`]: a merge patch of some status fields, for an object whose status must keep what
//!   this write does not name (an unreadable workload keeps its placement in force).
//! - [`write_latest`]: writes the statuses handed over on a watch channel, only the latest one,
//!   retrying with backoff: a member's probe loop hands its status over and goes on probing, so
//!   that a slow hub delays status writes, never probes.

use std::fmt::Debug;
use std::time::Duration;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::api::FIELD_MANAGER;

/// Deadline of one write: a frozen hub must not hold a reconcile or a writer forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Retry delays of [`write_latest`] after a failed write: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Why a status write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl WriteError {
    /// A bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            WriteError::Api(_) => "HubApi",
            WriteError::Timeout(_) => "HubTimeout",
        }
    }
}

/// Server-side apply of `status` to object `name`, forcing this field manager's ownership; the
/// object's new `resourceVersion`. An object deleted meanwhile is not an error (there is nothing
/// left to report on, and no version).
pub async fn apply<K>(
    api: &Api<K>,
    name: &str,
    status: &impl Serialize,
) -> Result<Option<String>, WriteError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    send(api, name, &params, &Patch::Apply(&body)).await
}

/// Merge patch of the status fields in `status` (a JSON object), leaving the others as they are.
pub async fn merge<K>(
    api: &Api<K>,
    name: &str,
    status: &serde_json::Value,
) -> Result<(), WriteError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let body = serde_json::json!({ "status": status });
    send(api, name, &params, &Patch::Merge(&body))
        .await
        .map(drop)
}

async fn send<K, P>(
    api: &Api<K>,
    name: &str,
    params: &PatchParams,
    patch: &Patch<P>,
) -> Result<Option<String>, WriteError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    P: Serialize + Debug,
{
    match tokio::time::timeout(WRITE_TIMEOUT, api.patch_status(name, params, patch)).await {
        Ok(Ok(written)) => Ok(written.meta().resource_version.clone()),
        Ok(Err(kube::Error::Api(s))) if s.code == 404 => Ok(None),
        Ok(Err(e)) => Err(WriteError::Api(e)),
        Err(_) => Err(WriteError::Timeout(WRITE_TIMEOUT)),
    }
}

/// Writes the statuses sent on `statuses` to object `name` until the sender is dropped: only
/// the latest (an older one never written is superseded); a failed write is retried with
/// backoff, or at once when a newer status arrives.
pub async fn write_latest<K, S>(api: Api<K>, name: String, mut statuses: watch::Receiver<Option<S>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + Clone,
{
    let kind = K::kind(&());
    let mut retry = RETRY_FIRST;
    while statuses.changed().await.is_ok() {
        loop {
            let Some(status) = statuses.borrow_and_update().clone() else {
                break;
            };
            match apply(&api, &name, &status).await {
                Ok(_) => {
                    tracing::debug!(%kind, %name, "status written");
                    retry = RETRY_FIRST;
                    break;
                }
                Err(e) => {
                    tracing::warn!(%kind, %name, category = e.category(), "writing status failed (retrying in {retry:?}): {e}");
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
