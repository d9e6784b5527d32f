//! The status Bascule writes on a MemberCluster, built from what it observed, and the rule that
//! decides whether it is worth a write.
//!
//! Pure: time is an input. Conditions keep their `lastTransitionTime` while their status stays
//! the same; the fields that vary from one probe to the next (the probe latency) do not cause a
//! write on their own unless they change a lot.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::connection::ConnectionError;
use super::detect::NodeFacts;
use crate::api::conditions::{Desired, merge};
use crate::api::member_cluster::NodeSummary;
use crate::api::{ClusterHealth, MemberClusterSpec, MemberClusterStatus};
use crate::health::{Probe, ProbeFailure};

/// `Ready`: Bascule places workloads on the cluster (its health is Healthy).
pub const READY: &str = "Ready";
/// `Reachable`: the cluster's API server answers Bascule.
pub const REACHABLE: &str = "Reachable";

/// Everything the status of one MemberCluster is made from.
#[derive(Clone, Copy, Debug)]
pub struct MemberFacts<'a> {
    /// `metadata.generation` of the MemberCluster.
    pub generation: Option<i64>,
    pub spec: &'a MemberClusterSpec,
    /// Health after hysteresis, and since when.
    pub health: ClusterHealth,
    pub health_since: Option<Timestamp>,
    /// Why no client could be built from the MemberCluster's connection, if so.
    pub connection: Option<&'a ConnectionError>,
    /// The latest probe's outcome; `None` before the first probe of this connection.
    pub last_probe: Option<&'a Probe>,
    /// The failure behind the current run of failed probes (none after a success).
    pub last_failure: Option<&'a ProbeFailure>,
    /// What the latest probe that could list the nodes learned from them.
    pub nodes: Option<&'a NodeFacts>,
    pub version: Option<&'a str>,
    /// Duration of the latest successful probe.
    pub latency_ms: Option<i64>,
}

/// The status to write. Fields that were not observed this time keep their previous values (the
/// node counts of an unreachable cluster are its last known ones).
pub fn desired(
    o: &MemberFacts<'_>,
    previous: Option<&MemberClusterStatus>,
    now: Timestamp,
) -> MemberClusterStatus {
    let prev = previous.cloned().unwrap_or_default();
    let (ready, reachable) = conditions(o);
    let desired = |(status, reason, message): Cond<'_>, type_: &'static str| {
        Desired::with_status(type_, status, reason, message)
    };
    let conditions = merge(
        &prev.conditions,
        &[desired(ready, READY), desired(reachable, REACHABLE)],
        o.generation,
        now,
    );
    MemberClusterStatus {
        conditions,
        health: o.health,
        health_since: o.health_since.map(Time),
        provider: o
            .spec
            .provider_in_force(o.nodes.and_then(|n| n.provider), prev.provider),
        region: o.spec.region_in_force(
            o.nodes.and_then(|n| n.region.as_deref()),
            prev.region.as_deref(),
        ),
        kubernetes_version: o.version.map(String::from).or(prev.kubernetes_version),
        nodes: o
            .nodes
            .map(|n| NodeSummary {
                ready: n.ready as i32,
                total: n.total as i32,
                summary: format!("{}/{}", n.ready, n.total),
            })
            .or(prev.nodes),
        allocatable: o
            .nodes
            .map(|n| n.allocatable.clone())
            .unwrap_or(prev.allocatable),
        // Not measured yet (it needs the pods' requests); never written by this version.
        available: Default::default(),
        last_probe_latency_ms: o.latency_ms.or(prev.last_probe_latency_ms),
        observed_generation: o.generation,
    }
}

/// Whether `desired` differs from what was last written enough to write it: any field but the
/// probe latency, or the latency when it changed a lot (see [`latency_changed_a_lot`]).
pub fn needs_write(previous: Option<&MemberClusterStatus>, desired: &MemberClusterStatus) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    let without_latency = |s: &MemberClusterStatus| MemberClusterStatus {
        last_probe_latency_ms: None,
        ..s.clone()
    };
    if without_latency(previous) != without_latency(desired) {
        return true;
    }
    match (
        previous.last_probe_latency_ms,
        desired.last_probe_latency_ms,
    ) {
        (Some(old), Some(new)) => latency_changed_a_lot(old, new),
        (old, new) => old != new,
    }
}

/// A latency is worth a write of its own when it at least doubled or halved, by a second or
/// more: a slow API server shows in `kubectl get -o yaml`; jitter, and the spikes of a few
/// hundred milliseconds a busy machine gives every member at once, cost no write (they broke the
/// "an idle operator writes nothing" promise, two writes per member per spike).
pub fn latency_changed_a_lot(old_ms: i64, new_ms: i64) -> bool {
    let (lo, hi) = (old_ms.min(new_ms).max(0), old_ms.max(new_ms));
    hi - lo >= 1000 && hi >= 2 * lo
}

/// (status, reason, message) of `Ready` and of `Reachable`.
type Cond<'r> = (&'static str, &'r str, String);

fn conditions<'a>(o: &MemberFacts<'a>) -> (Cond<'a>, Cond<'a>) {
    if let Some(e) = o.connection {
        let message = e.to_string();
        return (
            ("False", e.reason(), message.clone()),
            ("Unknown", e.reason(), message),
        );
    }
    let reachable = match o.last_probe {
        None => ("Unknown", "NotProbed", "not probed yet".to_string()),
        Some(Probe::Success)
        | Some(Probe::Failure(ProbeFailure::NotReady(_)))
        | Some(Probe::Failure(ProbeFailure::NoReadyNodes)) => {
            ("True", "Responding", "the API server answers".to_string())
        }
        Some(Probe::Failure(f)) => ("False", f.reason(), f.message()),
    };
    let ready = match (o.health, o.last_failure) {
        (ClusterHealth::Healthy, _) => (
            "True",
            "Healthy",
            "probes pass: the API server is ready and nodes are Ready".to_string(),
        ),
        (ClusterHealth::Recovering, _) => (
            "False",
            "Recovering",
            format!(
                "probes pass again; trusted after {} successful probes in a row (spec.health.successThreshold)",
                o.spec.health.success_threshold
            ),
        ),
        (ClusterHealth::Unhealthy, Some(f)) => ("False", f.reason(), f.message()),
        (ClusterHealth::Unhealthy, None) => (
            "False",
            "Unhealthy",
            "unhealthy when last probed".to_string(),
        ),
        (ClusterHealth::Unknown, Some(f)) => ("Unknown", f.reason(), f.message()),
        (ClusterHealth::Unknown, None) => ("Unknown", "NotProbed", "not probed yet".to_string()),
    };
    (ready, reachable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Connection, HealthSettings, Provider, SecretKeyRef};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn spec() -> MemberClusterSpec {
        MemberClusterSpec {
            provider: None,
            region: None,
            connection: Connection {
                kubeconfig_secret_ref: Some(SecretKeyRef {
                    name: "member-eks".into(),
                    key: "kubeconfig".into(),
                }),
                eks: None,
                gke: None,
            },
            taints: vec![],
            health: HealthSettings::default(),
        }
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            ready: 3,
            total: 3,
            allocatable: [("cpu".to_string(), "11760m".to_string())].into(),
            provider: Some(Provider::Aws),
            region: Some("us-east-1".into()),
        }
    }

    fn observed<'a>(spec: &'a MemberClusterSpec, nodes: &'a NodeFacts) -> MemberFacts<'a> {
        MemberFacts {
            generation: Some(1),
            spec,
            health: ClusterHealth::Healthy,
            health_since: Some(at(0)),
            connection: None,
            last_probe: Some(&Probe::Success),
            last_failure: None,
            nodes: Some(nodes),
            version: Some("v1.35.4"),
            latency_ms: Some(12),
        }
    }

    fn condition<'s>(
        s: &'s MemberClusterStatus,
        t: &str,
    ) -> &'s k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn a_healthy_probe_fills_everything_with_detected_provider_and_region() {
        let (spec, nodes) = (spec(), facts());
        let s = desired(&observed(&spec, &nodes), None, at(5));
        assert_eq!(condition(&s, READY).status, "True");
        assert_eq!(condition(&s, READY).reason, "Healthy");
        assert_eq!(condition(&s, REACHABLE).status, "True");
        assert_eq!(condition(&s, READY).last_transition_time, Time(at(5)));
        assert_eq!(s.provider, Some(Provider::Aws));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert_eq!(s.nodes.as_ref().unwrap().summary, "3/3");
        assert_eq!(s.kubernetes_version.as_deref(), Some("v1.35.4"));
        assert_eq!(s.health_since, Some(Time(at(0))));
        assert_eq!(s.observed_generation, Some(1));
        // The spec wins over detection.
        let mut declared = spec.clone();
        declared.region = Some("us-east-2".into());
        let s = desired(&observed(&declared, &nodes), None, at(5));
        assert_eq!(s.region.as_deref(), Some("us-east-2"));
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let (spec, nodes) = (spec(), facts());
        let first = desired(&observed(&spec, &nodes), None, at(5));
        // Same status, different message: the time stays.
        let again = desired(&observed(&spec, &nodes), Some(&first), at(50));
        assert_eq!(condition(&again, READY).last_transition_time, Time(at(5)));
        assert!(!needs_write(Some(&first), &again));
        // Unhealthy: Ready turns False now, with the failure's reason; nodes stay as last seen.
        let refused = ProbeFailure::Refused("connection refused".into());
        let probe = Probe::Failure(refused.clone());
        let down = MemberFacts {
            health: ClusterHealth::Unhealthy,
            health_since: Some(at(60)),
            last_probe: Some(&probe),
            last_failure: Some(&refused),
            nodes: None,
            version: None,
            latency_ms: None,
            ..observed(&spec, &nodes)
        };
        let s = desired(&down, Some(&again), at(60));
        let ready = condition(&s, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Unreachable")
        );
        assert_eq!(ready.last_transition_time, Time(at(60)));
        assert_eq!(condition(&s, REACHABLE).status, "False");
        assert_eq!(s.nodes.as_ref().unwrap().summary, "3/3");
        assert_eq!(s.kubernetes_version.as_deref(), Some("v1.35.4"));
        assert_eq!(s.last_probe_latency_ms, Some(12));
        assert!(needs_write(Some(&again), &s));
    }

    #[test]
    fn a_blip_while_healthy_shows_in_reachable_only() {
        let (spec, nodes) = (spec(), facts());
        let probe = Probe::Failure(ProbeFailure::Timeout);
        let o = MemberFacts {
            last_probe: Some(&probe),
            last_failure: Some(&ProbeFailure::Timeout),
            ..observed(&spec, &nodes)
        };
        let s = desired(&o, None, at(1));
        assert_eq!(condition(&s, READY).status, "True");
        assert_eq!(condition(&s, REACHABLE).reason, "ProbeTimeout");
    }

    #[test]
    fn recovering_and_unknown_and_nodes_not_ready() {
        let (spec, nodes) = (spec(), facts());
        let o = MemberFacts {
            health: ClusterHealth::Recovering,
            ..observed(&spec, &nodes)
        };
        let s = desired(&o, None, at(1));
        assert_eq!(condition(&s, READY).reason, "Recovering");
        assert!(
            condition(&s, READY)
                .message
                .contains("15 successful probes")
        );

        let none_ready = Probe::Failure(ProbeFailure::NoReadyNodes);
        let o = MemberFacts {
            health: ClusterHealth::Unknown,
            last_probe: Some(&none_ready),
            last_failure: Some(&ProbeFailure::NoReadyNodes),
            ..observed(&spec, &nodes)
        };
        let s = desired(&o, None, at(1));
        assert_eq!(condition(&s, READY).status, "Unknown");
        assert_eq!(condition(&s, READY).reason, "NoReadyNodes");
        assert_eq!(condition(&s, REACHABLE).status, "True", "the API answered");
    }

    #[test]
    fn a_connection_error_is_ready_false_with_its_reason_and_no_credentials() {
        let (spec, nodes) = (spec(), facts());
        let e = ConnectionError::SecretNotFound {
            namespace: "bascule-system".into(),
            name: "member-eks".into(),
        };
        let o = MemberFacts {
            health: ClusterHealth::Unknown,
            connection: Some(&e),
            last_probe: None,
            nodes: None,
            ..observed(&spec, &nodes)
        };
        let s = desired(&o, None, at(1));
        let ready = condition(&s, READY);
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "KubeconfigSecretNotFound")
        );
        assert!(ready.message.contains("bascule-system/member-eks"));
        assert_eq!(condition(&s, REACHABLE).status, "Unknown");
    }

    #[test]
    fn latency_alone_is_written_only_when_it_changes_a_lot() {
        let (spec, nodes) = (spec(), facts());
        let base = desired(&observed(&spec, &nodes), None, at(0));
        let with = |ms| {
            let o = MemberFacts {
                latency_ms: Some(ms),
                ..observed(&spec, &nodes)
            };
            desired(&o, Some(&base), at(10))
        };
        assert!(!needs_write(Some(&base), &with(12)));
        assert!(
            !needs_write(Some(&base), &with(90)),
            "7x but under a second"
        );
        assert!(
            !needs_write(Some(&base), &with(400)),
            "a busy machine's spike"
        );
        assert!(needs_write(Some(&base), &with(1500)));
        assert!(!latency_changed_a_lot(1400, 2100), "+50 %");
        assert!(latency_changed_a_lot(2600, 250));
        assert!(needs_write(None, &base));
        // A change of generation alone is written.
        let o = MemberFacts {
            generation: Some(2),
            ..observed(&spec, &nodes)
        };
        assert!(needs_write(Some(&base), &desired(&o, Some(&base), at(10))));
    }
}
