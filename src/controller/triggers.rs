//! What makes a workload reconcile besides its own changes: a member's health, spec or
//! connection changed, or one of its objects in a member changed. Only the workloads a change
//! can affect are enqueued; there is no periodic sweep.
//!
//! The same task keeps the member watches ([`Observer`]) in step with the pool's connections and
//! starts the orphan collection ([`super::gc`]) when a member becomes healthy.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::gc;
use super::reconcile::{Context, Guarded};
use crate::api::ClusterHealth;
use crate::members::MemberEvent;
use crate::placement::ClusterSnapshot;
use crate::policy::request::{decision_for, placement_in_force};
use crate::sync::observe::WorkloadRef;

pub type Trigger = ObjectRef<Guarded>;

/// Turns the observer's "this workload's objects changed" into reconcile requests.
pub async fn from_observer(
    mut changed: mpsc::UnboundedReceiver<WorkloadRef>,
    out: mpsc::UnboundedSender<Trigger>,
) {
    while let Some(w) = changed.recv().await {
        if out
            .send(ObjectRef::new(&w.name).within(&w.namespace))
            .is_err()
        {
            return;
        }
    }
}

/// Follows the pool: member watches, orphan collection, and the workloads each change affects.
pub async fn from_members(
    ctx: Arc<Context>,
    store: Store<Guarded>,
    out: mpsc::UnboundedSender<Trigger>,
) {
    let mut events = ctx.pool.subscribe();
    // Owned by this task: when it is aborted (leadership lost, shutdown), the watches and any
    // orphan collection under way stop with it.
    let mut watches = Watches::default();
    let mut collections = tokio::task::JoinSet::new();
    let mut health: BTreeMap<String, ClusterHealth> = BTreeMap::new();
    // Members already known before this task subscribed.
    let mut pending: Vec<String> = ctx.pool.names();
    loop {
        let clusters = if pending.is_empty() {
            match events.recv().await {
                Ok(MemberEvent::Changed { cluster }) => vec![cluster],
                Err(broadcast::error::RecvError::Lagged(_)) => ctx.pool.names(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        } else {
            std::mem::take(&mut pending)
        };
        let snapshots = ctx.pool.snapshots();
        for cluster in clusters {
            follow_connection(&ctx, &cluster, &mut watches);
            let now = ctx.pool.snapshot(&cluster).map(|s| s.health);
            ctx.metrics.set_health(&cluster, now);
            let before = match now {
                Some(h) => health.insert(cluster.clone(), h),
                None => health.remove(&cluster),
            };
            if now == Some(ClusterHealth::Healthy)
                && before != Some(ClusterHealth::Healthy)
                && !ctx.dry_run
            {
                collections.spawn(gc::collect(ctx.clone(), store.clone(), cluster.clone()));
                while collections.try_join_next().is_some() {}
            }
            for w in affected(&ctx, &store, &snapshots, &cluster) {
                if out.send(w).is_err() {
                    return;
                }
            }
        }
    }
}

/// The member watches' tasks per cluster, aborted when dropped.
#[derive(Default)]
struct Watches(HashMap<String, Vec<JoinHandle<()>>>);

impl Drop for Watches {
    fn drop(&mut self) {
        for task in self.0.values().flatten() {
            task.abort();
        }
    }
}

/// Starts, restarts or stops the member's watches to match its connection.
fn follow_connection(ctx: &Context, cluster: &str, watches: &mut Watches) {
    let watches = &mut watches.0;
    let connection = ctx.pool.connection(cluster);
    let id = connection.as_ref().map(|(id, _)| *id);
    if id.is_some() && id == ctx.observer.connection(cluster) && watches.contains_key(cluster) {
        return;
    }
    for task in watches.remove(cluster).unwrap_or_default() {
        task.abort();
    }
    ctx.cache.forget(cluster);
    match connection {
        Some((id, client)) => {
            watches.insert(
                cluster.to_string(),
                ctx.observer.watch(cluster, id, &client),
            );
        }
        None => ctx.observer.forget(cluster),
    }
}

/// Workloads a change of `cluster` can affect: those placed there or with objects there, and
/// those whose decision would now differ from the one in force.
fn affected(
    ctx: &Context,
    store: &Store<Guarded>,
    snapshots: &[ClusterSnapshot],
    cluster: &str,
) -> Vec<Trigger> {
    let there: std::collections::HashSet<String> = ctx
        .observer
        .workloads_in(cluster)
        .into_iter()
        .map(|w| w.uid)
        .collect();
    let now = Timestamp::now();
    store
        .state()
        .into_iter()
        .filter(|g| {
            // An unreadable workload is left as it is: a member's change cannot fix it.
            let Ok(w) = &g.0 else { return false };
            let status = w.status.clone().unwrap_or_default();
            if status.clusters.iter().any(|c| c.name == cluster)
                || w.uid().is_some_and(|uid| there.contains(&uid))
            {
                return true;
            }
            // The decision would change, or a failback becomes possible (its window then needs
            // a reconcile to be timed). A panic of the engine over one workload reconciles that
            // workload (where the panic is caught and reported) instead of ending this task,
            // which every workload's member triggers depend on.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let d = decision_for(w, snapshots, now).decision;
                d.placement != placement_in_force(&status) || d.preferred != d.summary()
            }))
            .unwrap_or(true)
        })
        .map(|g| ObjectRef::from_obj(&*g))
        .collect()
}
