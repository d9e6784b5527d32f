//! Orphan collection: when a member becomes healthy, remove what Bascule placed there for
//! workloads that no longer exist (deleted while the member was unreachable).
//!
//! Fail static: an object is deleted only when it carries this hub's id (`bascule.dev/hub`) and
//! the hub answers that its workload does not exist (a 404, or an object with another UID under
//! that name). A cache not yet filled, an error or
//! an empty list is never a reason to delete.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Preconditions};
use kube::runtime::reflector::Store;
use kube::{Error as KubeError, ResourceExt};

use super::reconcile::{Context, Guarded};
use crate::api::MultiCloudWorkload;
use crate::api::labels;
use crate::sync::apply::type_key;

/// Kinds always looked at, beside those of the workloads that exist.
const COMMON_KINDS: [&str; 6] = [
    "apps/v1/Deployment",
    "apps/v1/StatefulSet",
    "v1/Service",
    "v1/ConfigMap",
    "v1/ServiceAccount",
    "autoscaling/v2/HorizontalPodAutoscaler",
];

/// Collects the member's orphans; logs what it did. Runs once per return of the member.
pub async fn collect(ctx: Arc<Context>, store: Store<Guarded>, cluster: String) {
    if store.wait_until_ready().await.is_err() {
        return;
    }
    match collect_once(&ctx, &store, &cluster).await {
        Ok(0) => tracing::debug!(cluster, "no orphaned objects"),
        Ok(n) => tracing::info!(cluster, deleted = n, "removed objects of deleted workloads"),
        Err(error) => {
            tracing::warn!(cluster, %error, "orphan collection stopped; retried on the next return")
        }
    }
}

async fn collect_once(
    ctx: &Context,
    store: &Store<Guarded>,
    cluster: &str,
) -> Result<usize, KubeError> {
    let Some((_, client)) = ctx.pool.connection(cluster) else {
        return Ok(0);
    };
    let workloads = store.state();
    // Unreadable workloads count as live: their objects stay until they are fixed or deleted.
    let live: BTreeSet<String> = workloads.iter().filter_map(|w| w.uid()).collect();
    let mut kinds: BTreeSet<String> = COMMON_KINDS.iter().map(|k| k.to_string()).collect();
    for w in workloads.iter().filter_map(|g| g.0.as_ref().ok()) {
        kinds.extend(w.spec.template.manifests.iter().map(|m| type_key(&m.0)));
        kinds.extend(w.status.iter().flat_map(|s| s.kinds.iter().cloned()));
    }
    let managed = ListParams::default().labels(&format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    ));
    let mut deleted = 0;
    for kind in kinds {
        let Ok(resource) = ctx.cache.resource(cluster, &client, &kind).await else {
            continue; // not served by this member: nothing of that kind to collect
        };
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        for item in api.list_metadata(&managed).await?.items {
            let l = item.metadata.labels.clone().unwrap_or_default();
            let (Some(uid), Some(ns), Some(name)) = (
                l.get(labels::WORKLOAD_UID),
                l.get(labels::WORKLOAD_NAMESPACE),
                l.get(labels::WORKLOAD_NAME),
            ) else {
                continue;
            };
            // Only what this hub placed: another hub's objects (or an earlier release's,
            // unlabelled, which their workload labels when it next applies them) are left.
            if l.get(labels::HUB) != Some(&ctx.hub_id) {
                continue;
            }
            if live.contains(uid) || workload_exists(ctx, ns, name, uid).await? {
                continue;
            }
            let namespaced = Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &item.namespace().unwrap_or_default(),
                &resource,
            );
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: item.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..DeleteParams::background()
            };
            match namespaced.delete(&item.name_any(), &dp).await {
                Ok(_) => deleted += 1,
                Err(KubeError::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(deleted)
}

/// Asks the hub itself, not the cache: does the workload with this UID exist?
async fn workload_exists(
    ctx: &Context,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<bool, KubeError> {
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.hub.clone(), namespace);
    Ok(api
        .get_metadata_opt(name)
        .await?
        .is_some_and(|w| w.metadata.uid.as_deref() == Some(uid)))
}
