//! What a decision notes about constraints it could not meet, as values: the engine and the
//! outcome read them by variant, and they are rendered into text only for the status and
//! `bascule plan`.

use std::fmt;

/// One note of a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// No cluster may receive, replicas run: the current placement stays.
    FailStatic,
    /// No cluster may receive and `replicas` is 0.
    NothingToPlace,
    /// No cluster may receive, nothing runs.
    NothingPlaceable,
    /// Fewer replicas placed than the spec asks for.
    Shortfall { placed: u64, wanted: u64 },
    /// A sticky decision keeps replicas away from the preferred placement.
    FailbackPending { preferred: String },
    /// A `spread` constraint is not met.
    Spread(SpreadNote),
    /// Failover: a later tier takes what earlier tiers had no room for.
    SpillsOver { tier: String, replicas: u64 },
    /// Failover: the tier after the active one has no cluster with room left for the standby.
    StandbyTierFull { tier: String, standby: u64 },
    /// Failover: standby replicas with no tier to go to.
    NoStandbyTier { standby: u64 },
}

/// Which `spread` constraint is not met, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpreadNote {
    /// Too few providers among the eligible clusters.
    ProvidersEligible { min: usize, eligible: usize },
    /// Too few eligible clusters.
    ClustersEligible { min: usize, eligible: usize },
    /// Fewer replicas than clusters that must run one.
    ClustersUncovered { min: usize, replicas: u64 },
    /// The placement spans too few providers.
    ProvidersUsed { min: i32, used: usize },
    /// The placement spans too few clusters.
    ClustersUsed { min: i32, used: usize },
    /// The placement spans too many clusters (Hold clusters keep theirs beyond the maximum).
    ClustersExceeded { max: i32, used: usize },
}

impl Note {
    /// A `spread` constraint is not met: the outcome is Degraded.
    pub fn is_spread(&self) -> bool {
        matches!(self, Note::Spread(_))
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NO_RECEIVER: &str =
            "no cluster may receive replicas (unhealthy, drained, cordoned or filtered out)";
        match self {
            Note::FailStatic => {
                write!(
                    f,
                    "{NO_RECEIVER}: keeping the current placement (fail static)"
                )
            }
            Note::NothingToPlace => write!(f, "replicas is 0: nothing to place"),
            Note::NothingPlaceable => write!(f, "{NO_RECEIVER}: nothing can be placed"),
            Note::Shortfall { placed, wanted } => write!(
                f,
                "only {placed} of {wanted} replicas could be placed (capacity or per-cluster limits)"
            ),
            Note::FailbackPending { preferred } => write!(
                f,
                "kept on healthy clusters; the preferred placement is {preferred}: failback pending until a rebalance is allowed"
            ),
            Note::Spread(s) => s.fmt(f),
            Note::SpillsOver { tier, replicas } => write!(
                f,
                "{tier} spills over: earlier tiers had no room for {replicas} replica(s)"
            ),
            Note::StandbyTierFull { tier, standby } => write!(
                f,
                "{tier} has no room left for {standby} standby replica(s)"
            ),
            Note::NoStandbyTier { standby } => write!(
                f,
                "no healthy tier after the active one for {standby} standby replica(s)"
            ),
        }
    }
}

impl fmt::Display for SpreadNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpreadNote::ProvidersEligible { min, eligible } => write!(
                f,
                "spread.minProviders={min} not met: eligible clusters span {eligible} provider(s)"
            ),
            SpreadNote::ClustersEligible { min, eligible } => write!(
                f,
                "spread.minClusters={min} not met: only {eligible} eligible cluster(s)"
            ),
            SpreadNote::ClustersUncovered { min, replicas } => write!(
                f,
                "spread.minClusters={min} not met: {replicas} replica(s) cannot cover them"
            ),
            SpreadNote::ProvidersUsed { min, used } => write!(
                f,
                "spread.minProviders={min} not met: replicas run on {used} provider(s)"
            ),
            SpreadNote::ClustersUsed { min, used } => write!(
                f,
                "spread.minClusters={min} not met: replicas run on {used} cluster(s)"
            ),
            SpreadNote::ClustersExceeded { max, used } => write!(
                f,
                "spread.maxClusters={max} exceeded: replicas run on {used} clusters"
            ),
        }
    }
}
