//! The placement engine: `(workload spec, cluster snapshots, current placement) → (desired
//! placement, explanation)`. Pure: no client, no clock, no randomness.
//!
//! A decision runs in four steps:
//! 1. **filter** ([`eligibility`]): each cluster is matched to its first tier and classified as
//!    Eligible (receives and keeps), Hold (keeps, receives nothing: cordoned, recovering, not yet
//!    probed), Evict (loses its replicas: unhealthy, drained, workload failing there) or Excluded.
//! 2. **prefer**: the placement the spec prefers over the Eligible clusters (`candidates`,
//!    `selection`) — Divided (tiers share by weight, a tier's clusters share equally; bounded
//!    largest remainder, [`apportion`]) and Duplicated (`divided`), or Failover (`failover`: the
//!    first tier with an eligible cluster takes all, the next gets the standby replicas).
//! 3. **stick** (`sticky`): with [`Rebalance::Sticky`] every replica that may stay stays; only replicas that
//!    must move, or that the total adds or removes, are placed, toward the preferred placement.
//!    With [`Rebalance::ToPreferred`] the preferred placement is taken as it is.
//! 4. **explain** (`explain`, [`decision`]): a reason and score for every cluster, and
//!    [`notes`] on constraints not met.
//!
//! [`decide`] runs the four steps.
//!
//! [`migrate`] then plans the way there, make-before-break: growth first, capacity removed only
//! once the target placement is available.
//!
//! Fail static: when no cluster may receive replicas, the current placement is returned as is.

pub mod apportion;
mod candidates;
pub mod decide;
pub mod decision;
mod divided;
pub mod eligibility;
mod explain;
mod failover;
pub mod input;
pub mod migrate;
pub mod notes;
mod selection;
mod sticky;

#[cfg(test)]
mod tests;

pub use decide::decide;
pub use decision::{ClusterDecision, Decision, Outcome};
pub use input::{ClusterSnapshot, Rebalance, Replicas, Request, Resources};
