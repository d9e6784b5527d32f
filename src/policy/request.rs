//! The engine's request for one workload, built in one place from the workload, its status and
//! the clusters: the placement in force, the rebalance mode (spec changes, failback windows and
//! requests), where the workload has failed. The controller, `bascule plan` and
//! `kubectl bascule plan` all decide through here, so that they cannot disagree.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::rebalance::{self, FAILBACK_ANNOTATION, Why};
use crate::api::member_cluster::REMOVAL_TAINT;
use crate::api::{MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::placement::{ClusterSnapshot, Decision, Rebalance, Replicas, Request, decide};

/// A decision and the rebalance mode it was made with.
#[derive(Clone, Debug)]
pub struct Decided {
    pub decision: Decision,
    pub rebalance: Rebalance,
    pub why: Why,
    /// Clusters whose MemberCluster is being deleted: replicas leaving them are not a move the
    /// workload's budget pays for.
    pub leaving: std::collections::BTreeSet<String>,
}

/// The decision the controller makes for `w` now, from the placement in force.
pub fn decision_for(
    w: &MultiCloudWorkload,
    clusters: &[ClusterSnapshot],
    now: Timestamp,
) -> Decided {
    let status = w.status.clone().unwrap_or_default();
    decision_from(w, clusters, &placement_in_force(&status), None, now)
}

/// The decision for `w` from `current`, with the rebalance mode the controller would use, or
/// `forced` (a what-if's choice).
pub fn decision_from(
    w: &MultiCloudWorkload,
    clusters: &[ClusterSnapshot],
    current: &Replicas,
    forced: Option<Rebalance>,
    now: Timestamp,
) -> Decided {
    let status = w.status.clone().unwrap_or_default();
    let (rebalance, why) = match forced {
        Some(r) => (r, Why::Requested),
        None => rebalance::mode(&rebalance::Inputs {
            spec: &w.spec,
            generation: w.metadata.generation,
            decided_generation: status.observed_generation,
            failback_requested: w.annotations().get(FAILBACK_ANNOTATION).map(String::as_str),
            failback_handled: status.handled_failback_request.as_deref(),
            clusters,
            now,
        }),
    };
    let decision = decide(&Request {
        spec: &w.spec,
        clusters,
        current,
        rebalance,
        now,
        app_unavailable_since: &unavailable_since(
            &status,
            w.metadata.generation,
            fresh_failback_request(w, &status).is_some(),
        ),
    });
    Decided {
        decision,
        rebalance,
        why,
        leaving: clusters
            .iter()
            .filter(|c| c.taints.iter().any(|t| t.key == REMOVAL_TAINT))
            .map(|c| c.name.clone())
            .collect(),
    }
}

/// The placement in force: the last decision's replicas per cluster, kept in `status.clusters`.
pub fn placement_in_force(status: &MultiCloudWorkloadStatus) -> Replicas {
    status
        .clusters
        .iter()
        .filter(|c| c.desired > 0)
        .map(|c| (c.name.clone(), c.desired as u32))
        .collect()
}

/// Since when the workload has been unavailable per cluster: where it runs now, and where this
/// generation failed before (no return there until the spec changes or a failback is requested).
fn unavailable_since(
    status: &MultiCloudWorkloadStatus,
    generation: Option<i64>,
    failback_requested: bool,
) -> BTreeMap<String, Timestamp> {
    let mut since: BTreeMap<String, Timestamp> = status
        .clusters
        .iter()
        .filter_map(|c| c.unavailable_since.as_ref().map(|t| (c.name.clone(), t.0)))
        .collect();
    if !failback_requested {
        for f in status
            .application_failures
            .iter()
            .filter(|f| f.observed_generation == generation)
        {
            since.entry(f.cluster.clone()).or_insert(f.since.0);
        }
    }
    since
}

/// The value of the failback annotation when it has not been acted on yet.
pub fn fresh_failback_request<'a>(
    w: &'a MultiCloudWorkload,
    status: &MultiCloudWorkloadStatus,
) -> Option<&'a String> {
    w.annotations()
        .get(FAILBACK_ANNOTATION)
        .filter(|v| Some(v.as_str()) != status.handled_failback_request.as_deref())
}
