//! What the engine answers: the placement, an outcome, and a reason for every cluster.

use serde::Serialize;

use super::input::Replicas;

/// The engine's answer for one workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Replicas per cluster (clusters with none are left out).
    pub placement: Replicas,
    /// Every cluster considered, in name order, selected or not.
    pub clusters: Vec<ClusterDecision>,
    pub outcome: Outcome,
    /// Sentences on constraints not met, fail static, pending failback.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The placement the spec prefers (`cluster=n,...`); differs from `placement` while a
    /// failback is pending.
    pub preferred: String,
}

impl Decision {
    pub fn total(&self) -> u64 {
        self.placement.values().map(|&r| u64::from(r)).sum()
    }

    /// `eks-use1=7,gke-euw1=3`, or `nothing`.
    pub fn summary(&self) -> String {
        super::input::summary(self.placement.iter().map(|(n, &r)| (n, u64::from(r))))
    }
}

/// One cluster in a decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDecision {
    pub name: String,
    /// 1-based tier the cluster belongs to for this workload; none if it matches no tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<usize>,
    pub selected: bool,
    pub replicas: u32,
    /// Replicas it had in the current placement.
    pub current: u32,
    /// 0–100: a Divided tier's share of the weight, 100 for Duplicated, a Failover tier's rank
    /// (100 for the first); 0 for clusters that may not be used.
    pub score: u32,
    pub reason: String,
}

/// How well the placement meets the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Everything the spec asks for is met.
    Satisfied,
    /// Placed, but short of the spec (capacity, spread constraints, pending failback is not
    /// counted here).
    Degraded,
    /// No eligible cluster is healthy; the current placement is kept as it is.
    FailStatic,
    /// Nothing could be placed.
    Unschedulable,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Satisfied => "Satisfied",
            Outcome::Degraded => "Degraded",
            Outcome::FailStatic => "FailStatic",
            Outcome::Unschedulable => "Unschedulable",
        })
    }
}
