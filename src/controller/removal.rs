//! A MemberCluster removed while workloads run on it. Each MemberCluster carries the finalizer
//! `bascule.dev/member-cleanup`; once it is deleted, the engine sees the cluster tainted
//! `bascule.dev/member-removed:NoExecute` (its replicas move elsewhere, make-before-break, not
//! paid for from the workloads' move budgets) and each workload removes what it placed there
//! while the member is reachable. The finalizer goes when the member holds nothing of this hub's
//! any more — or, for a member that cannot be reached, after `--member-removal-timeout`, with a
//! Warning Event saying what was left.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use super::events::Kind;
use super::reconcile::{Context, Guarded};
use crate::api::{ClusterHealth, MemberCluster};

/// Holds a MemberCluster until what was placed on it is removed.
pub const MEMBER_FINALIZER: &str = "bascule.dev/member-cleanup";

/// How often deleted MemberClusters are looked at again while their workloads move away.
const RECHECK: Duration = Duration::from_secs(5);

/// What to do with a deleted MemberCluster's finalizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Workloads still have objects there (or it cannot be asked yet): keep it.
    Wait,
    /// Nothing of this hub's is left there: remove the finalizer.
    Release,
    /// Out of time with `workloads` still placed there (or unknown): remove it anyway, warning.
    Abandon { workloads: Vec<String> },
}

/// What is known of a deleted member.
#[derive(Clone, Debug)]
pub struct Departure {
    pub deleted_at: Timestamp,
    /// Reachable and its placed objects listed: what `workloads` says can be trusted.
    pub observed: bool,
    /// Workloads with objects there, or whose status still places replicas there.
    pub workloads: Vec<String>,
}

/// Pure: when a deleted member may go.
pub fn verdict(d: &Departure, now: Timestamp, timeout: Duration) -> Verdict {
    if d.observed && d.workloads.is_empty() {
        return Verdict::Release;
    }
    let limit = SignedDuration::try_from(timeout).unwrap_or(SignedDuration::MAX);
    if now.duration_since(d.deleted_at) >= limit {
        return Verdict::Abandon {
            workloads: d.workloads.clone(),
        };
    }
    Verdict::Wait
}

/// Adds the finalizer to every MemberCluster and releases deleted ones; runs until dropped.
pub async fn run(ctx: Arc<Context>, workloads: Store<Guarded>, timeout: Duration) {
    let api: Api<MemberCluster> = Api::all(ctx.hub.clone());
    let metadata: Api<PartialObjectMeta<MemberCluster>> = Api::all(ctx.hub.clone());
    let (store, writer) = reflector::store::<PartialObjectMeta<MemberCluster>>();
    let events = reflector(writer, watcher(metadata, watcher::Config::default()))
        .default_backoff()
        .touched_objects();
    let mut events = std::pin::pin!(events);
    let mut recheck = tokio::time::interval(RECHECK);
    loop {
        tokio::select! {
            e = events.next() => if e.is_none() { return },
            _ = recheck.tick() => {}
        }
        if ctx.dry_run {
            continue;
        }
        for mc in store.state() {
            if let Err(error) = look_at(&ctx, &api, &workloads, &mc, timeout).await {
                tracing::warn!(cluster = %mc.name_any(), %error, "MemberCluster finalizer: retrying");
            }
        }
    }
}

async fn look_at(
    ctx: &Context,
    api: &Api<MemberCluster>,
    workloads: &Store<Guarded>,
    mc: &PartialObjectMeta<MemberCluster>,
    timeout: Duration,
) -> Result<(), kube::Error> {
    let name = mc.name_any();
    let index = mc.finalizers().iter().position(|f| f == MEMBER_FINALIZER);
    let Some(deleted) = &mc.metadata.deletion_timestamp else {
        if index.is_none() {
            let patch = match mc.metadata.finalizers {
                Some(_) => serde_json::json!([
                    {"op": "add", "path": "/metadata/finalizers/-", "value": MEMBER_FINALIZER}]),
                None => serde_json::json!([
                    {"op": "add", "path": "/metadata/finalizers", "value": [MEMBER_FINALIZER]}]),
            };
            patch_json(api, &name, patch).await?;
        }
        return Ok(());
    };
    let Some(index) = index else {
        return Ok(());
    };
    let departure = Departure {
        deleted_at: deleted.0,
        observed: ctx.pool.snapshot(&name).is_some_and(|s| {
            matches!(s.health, ClusterHealth::Healthy | ClusterHealth::Recovering)
        }) && ctx.observer.synced(&name),
        workloads: placed_on(ctx, workloads, &name),
    };
    let verdict = verdict(&departure, Timestamp::now(), timeout);
    match &verdict {
        Verdict::Wait => return Ok(()),
        Verdict::Release => {
            tracing::info!(cluster = %name, "MemberCluster removed: nothing of this hub's is left on it");
        }
        Verdict::Abandon { workloads } => {
            let note = format!(
                "removed after {}s without being able to clean it up (unreachable, or its objects could not be removed); objects of {} workload(s) may be left on it: {}",
                timeout.as_secs(),
                workloads.len(),
                workloads.join(", ")
            );
            tracing::warn!(cluster = %name, %note, "MemberCluster removed");
            ctx.events
                .publish(
                    &mc.object_ref(&()),
                    Kind::Warning,
                    "ObjectsAbandoned",
                    "RemoveMember",
                    &note,
                )
                .await;
        }
    }
    let path = format!("/metadata/finalizers/{index}");
    patch_json(
        api,
        &name,
        serde_json::json!([
            {"op": "test", "path": path, "value": MEMBER_FINALIZER},
            {"op": "remove", "path": path}]),
    )
    .await
}

/// Workloads with objects on `cluster`, or whose status still places replicas there.
fn placed_on(ctx: &Context, workloads: &Store<Guarded>, cluster: &str) -> Vec<String> {
    let mut out: Vec<String> = ctx
        .observer
        .workloads_in(cluster)
        .into_iter()
        .map(|w| format!("{}/{}", w.namespace, w.name))
        .collect();
    for w in workloads.state() {
        let Ok(w) = &w.0 else { continue };
        let placed = w.status.as_ref().is_some_and(|s| {
            s.clusters
                .iter()
                .any(|c| c.name == cluster && (c.desired > 0 || c.ready > 0))
        });
        if placed {
            out.push(format!(
                "{}/{}",
                w.namespace().unwrap_or_default(),
                w.name_any()
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

async fn patch_json(
    api: &Api<MemberCluster>,
    name: &str,
    patch: serde_json::Value,
) -> Result<(), kube::Error> {
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a valid JSON patch");
    match api
        .patch_metadata(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(_) => Ok(()),
        // Gone already, or changed meanwhile (the next look sees the new version).
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    #[test]
    fn a_member_goes_once_nothing_is_left_or_its_time_is_up() {
        let timeout = Duration::from_secs(600);
        let mut d = Departure {
            deleted_at: at(0),
            observed: true,
            workloads: vec!["shop/web".into()],
        };
        assert_eq!(verdict(&d, at(10), timeout), Verdict::Wait, "still placed");
        d.workloads.clear();
        assert_eq!(verdict(&d, at(10), timeout), Verdict::Release);
        // Unreachable: what it holds is unknown, so it waits for the timeout.
        d.observed = false;
        assert_eq!(verdict(&d, at(10), timeout), Verdict::Wait);
        assert_eq!(
            verdict(&d, at(600), timeout),
            Verdict::Abandon { workloads: vec![] }
        );
        d.workloads = vec!["shop/web".into()];
        d.observed = true;
        assert_eq!(
            verdict(&d, at(601), timeout),
            Verdict::Abandon {
                workloads: vec!["shop/web".into()]
            }
        );
    }
}
