//! Prometheus metrics of the operator. Labels have bounded cardinality: result, error category,
//! member cluster name, move kind — never a workload name.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::ClusterHealth;
use crate::members::requests::RequestCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or an error category (`HubApi`, `CleanupIncomplete`, ...).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HealthLabels {
    pub cluster: String,
    /// `Healthy`, `Recovering`, `Unhealthy` or `Unknown`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MoveLabels {
    /// `failover` or `failback`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    /// `paused` or `budget`.
    pub reason: String,
}

/// Every metric the operator exports, shared by cheap clones.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconciles: Family<ResultLabels, Counter>,
    pub reconcile_seconds: Histogram,
    pub member_health: Family<HealthLabels, Gauge>,
    pub moves: Family<MoveLabels, Counter>,
    pub moves_held: Family<HeldLabels, Counter>,
    pub moves_paused: Gauge,
    pub leader: Gauge,
    pub member_requests: RequestCounts,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bascule");
        let reconciles = Family::<ResultLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Workload reconciles, by result (ok or the error's category)",
            reconciles.clone(),
        );
        // 1 ms .. ~16 s
        let reconcile_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "reconcile_duration_seconds",
            "Duration of one workload reconcile",
            reconcile_seconds.clone(),
        );
        let member_health = Family::<HealthLabels, Gauge>::default();
        registry.register(
            "member_health",
            "1 for the member cluster's current health state, 0 for the others",
            member_health.clone(),
        );
        let moves = Family::<MoveLabels, Counter>::default();
        registry.register("moves", "Failovers and failbacks started", moves.clone());
        let moves_held = Family::<HeldLabels, Counter>::default();
        registry.register(
            "moves_held",
            "Reconciles that kept the placement in force although the engine would move replicas, by reason (paused, budget)",
            moves_held.clone(),
        );
        let moves_paused = Gauge::default();
        registry.register(
            "moves_paused",
            "1 while every workload's moves are paused (--pause-moves)",
            moves_paused.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this process holds the leader Lease (or runs without leader election)",
            leader.clone(),
        );
        let member_requests = RequestCounts::default();
        registry.register(
            "member_requests",
            "Requests sent to member API servers, by cluster and verb (get, list, watch, create, update, patch, delete)",
            member_requests.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            reconcile_seconds,
            member_health,
            moves,
            moves_held,
            moves_paused,
            leader,
            member_requests,
        }
    }

    /// Counts a reconcile that ended with `result` after `seconds`.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_seconds.observe(seconds);
    }

    /// Sets the member's health (`None`: the member is gone).
    pub fn set_health(&self, cluster: &str, health: Option<ClusterHealth>) {
        for state in [
            ClusterHealth::Healthy,
            ClusterHealth::Recovering,
            ClusterHealth::Unhealthy,
            ClusterHealth::Unknown,
        ] {
            let labels = HealthLabels {
                cluster: cluster.to_string(),
                state: format!("{state:?}"),
            };
            match health {
                Some(h) => {
                    self.member_health
                        .get_or_create(&labels)
                        .set(i64::from(h == state));
                }
                None => {
                    self.member_health.remove(&labels);
                }
            }
        }
    }

    /// Counts a move that started (`failover` or `failback`).
    pub fn move_started(&self, kind: &str) {
        self.moves
            .get_or_create(&MoveLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts a reconcile that held a move (`paused` or `budget`).
    pub fn move_held(&self, reason: &str) {
        self.moves_held
            .get_or_create(&HeldLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_family_and_health_is_one_hot() {
        let m = Metrics::new();
        m.reconciled("ok", 0.01);
        m.reconciled("HubApi", 0.2);
        m.set_health("eks-use1", Some(ClusterHealth::Unhealthy));
        m.move_started("failover");
        m.move_held("paused");
        m.moves_paused.set(1);
        m.leader.set(1);
        let text = m.encode();
        for line in [
            "bascule_reconciles_total{result=\"ok\"} 1",
            "bascule_reconciles_total{result=\"HubApi\"} 1",
            "bascule_member_health{cluster=\"eks-use1\",state=\"Unhealthy\"} 1",
            "bascule_member_health{cluster=\"eks-use1\",state=\"Healthy\"} 0",
            "bascule_moves_total{kind=\"failover\"} 1",
            "bascule_moves_held_total{reason=\"paused\"} 1",
            "bascule_moves_paused 1",
            "bascule_leader 1",
            "bascule_reconcile_duration_seconds_count 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        m.set_health("eks-use1", None);
        assert!(!m.encode().contains("eks-use1"));
    }
}
