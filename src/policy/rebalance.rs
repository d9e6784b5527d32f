//! When a decision may move replicas between healthy clusters (`Rebalance::ToPreferred`) rather
//! than only re-home the replicas that must move (`Rebalance::Sticky`). Pure.
//!
//! - The spec changed (a new generation): place as the new spec prefers.
//! - Failback `Automatic`: once every cluster has kept its health for the stabilization window
//!   (none Recovering or not yet probed, none changed state within the window). Right after a
//!   failure the decision is therefore sticky, so healthy clusters never lose replicas to it.
//! - Failback `Manual`: when the annotation `bascule.dev/failback-requested` carries a value not
//!   yet handled (recorded in status), for example `kubectl annotate mcw web
//!   bascule.dev/failback-requested=$(date +%s) --overwrite`.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{ClusterHealth, FailbackMode, MultiCloudWorkloadSpec};
use crate::placement::{ClusterSnapshot, Rebalance};

pub const FAILBACK_ANNOTATION: &str = "bascule.dev/failback-requested";

/// Why the rebalance mode is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Nothing decided yet (no `status.observedGeneration`).
    FirstPlacement,
    /// A new generation of the spec.
    SpecChanged,
    /// The failback annotation carries a value not handled yet.
    FailbackRequested,
    /// Failback `Manual`, and no new request.
    FailbackManual,
    /// Failback `Automatic`: every cluster kept its health for the stabilization window.
    ClustersStable,
    /// Failback `Automatic`: some cluster changed health within the window.
    Stabilizing,
    /// The caller chose the mode (`bascule plan`'s what-ifs).
    Requested,
}

impl Why {
    /// A decision made for this reason places as the user asked, never as a failover or
    /// failback: the first placement, or a new spec.
    pub fn is_users_change(self) -> bool {
        matches!(self, Why::FirstPlacement | Why::SpecChanged)
    }
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Why::FirstPlacement => "first placement",
            Why::SpecChanged => "spec changed",
            Why::FailbackRequested => "failback requested",
            Why::FailbackManual => "failback is manual",
            Why::ClustersStable => "clusters stable",
            Why::Stabilizing => "stabilizing",
            Why::Requested => "as requested",
        })
    }
}

/// What the controller knows when it decides.
pub struct Inputs<'a> {
    pub spec: &'a MultiCloudWorkloadSpec,
    pub generation: Option<i64>,
    /// The generation the last decision was made for.
    pub decided_generation: Option<i64>,
    /// The failback annotation's value, if any, and the last value acted on.
    pub failback_requested: Option<&'a str>,
    pub failback_handled: Option<&'a str>,
    pub clusters: &'a [ClusterSnapshot],
    pub now: Timestamp,
}

/// The rebalance mode and why.
pub fn mode(i: &Inputs) -> (Rebalance, Why) {
    if i.decided_generation.is_none() {
        return (Rebalance::ToPreferred, Why::FirstPlacement);
    }
    if i.generation != i.decided_generation {
        return (Rebalance::ToPreferred, Why::SpecChanged);
    }
    match i.spec.failover.failback.mode {
        FailbackMode::Manual => match i.failback_requested {
            Some(v) if Some(v) != i.failback_handled => {
                (Rebalance::ToPreferred, Why::FailbackRequested)
            }
            _ => (Rebalance::Sticky, Why::FailbackManual),
        },
        FailbackMode::Automatic => {
            let window = SignedDuration::from_secs(i64::from(
                i.spec.failover.failback.stabilization_window_seconds.max(0),
            ));
            let stable = i.clusters.iter().all(|c| {
                matches!(c.health, ClusterHealth::Healthy | ClusterHealth::Unhealthy)
                    && c.health_since
                        .is_none_or(|since| crate::api::time::after(since, window) <= i.now)
            });
            if stable {
                (Rebalance::ToPreferred, Why::ClustersStable)
            } else {
                (Rebalance::Sticky, Why::Stabilizing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Provider;

    fn spec(mode: &str) -> MultiCloudWorkloadSpec {
        serde_json::from_value(serde_json::json!({
            "replicas": 2,
            "failover": {"failback": {"mode": mode, "stabilizationWindowSeconds": 300}},
            "template": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}}]}
        }))
        .unwrap()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn cluster(health: ClusterHealth, since: i64) -> ClusterSnapshot {
        let mut c = ClusterSnapshot::healthy("c", Provider::Aws, "r");
        c.health = health;
        c.health_since = Some(at(since));
        c
    }

    fn inputs<'a>(
        spec: &'a MultiCloudWorkloadSpec,
        clusters: &'a [ClusterSnapshot],
        now: i64,
    ) -> Inputs<'a> {
        Inputs {
            spec,
            generation: Some(2),
            decided_generation: Some(2),
            failback_requested: None,
            failback_handled: None,
            clusters,
            now: at(now),
        }
    }

    #[test]
    fn spec_changes_and_first_placement_rebalance() {
        let s = spec("Automatic");
        let clusters = [cluster(ClusterHealth::Recovering, 0)];
        let mut i = inputs(&s, &clusters, 10);
        i.generation = Some(3);
        assert_eq!(mode(&i), (Rebalance::ToPreferred, Why::SpecChanged));
        i.decided_generation = None;
        assert_eq!(mode(&i).0, Rebalance::ToPreferred);
    }

    #[test]
    fn automatic_failback_waits_for_the_window_on_every_cluster() {
        let s = spec("Automatic");
        let recovered = [
            cluster(ClusterHealth::Healthy, 0),
            cluster(ClusterHealth::Healthy, -1000),
        ];
        assert_eq!(mode(&inputs(&s, &recovered, 299)).0, Rebalance::Sticky);
        assert_eq!(mode(&inputs(&s, &recovered, 300)).0, Rebalance::ToPreferred);
        let just_failed = [
            cluster(ClusterHealth::Unhealthy, 0),
            cluster(ClusterHealth::Healthy, -1000),
        ];
        assert_eq!(
            mode(&inputs(&s, &just_failed, 5)).0,
            Rebalance::Sticky,
            "a failure is handled sticky"
        );
        let recovering = [cluster(ClusterHealth::Recovering, -1000)];
        assert_eq!(mode(&inputs(&s, &recovering, 0)).0, Rebalance::Sticky);
    }

    #[test]
    fn manual_failback_needs_a_new_request() {
        let s = spec("Manual");
        let clusters = [cluster(ClusterHealth::Healthy, -1000)];
        let mut i = inputs(&s, &clusters, 0);
        assert_eq!(mode(&i), (Rebalance::Sticky, Why::FailbackManual));
        i.failback_requested = Some("1");
        assert_eq!(mode(&i), (Rebalance::ToPreferred, Why::FailbackRequested));
        i.failback_handled = Some("1");
        assert_eq!(mode(&i).0, Rebalance::Sticky, "already handled");
    }
}
