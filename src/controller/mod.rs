//! Controller: the wiring between the hub, the members and the placement engine.
//!
//! - [`run`]: `bascule run` — the member supervisor, member watches and workload controller.
//! - [`reconcile`]: one reconcile of a MultiCloudWorkload (decide, step, apply, status, Events).
//! - [`triggers`]: which workloads a member change affects; member watches; orphan collection.
//! - [`events`]: Events on the hub.
//! - [`leader`]: leader election on a Lease.
//! - [`gc`]: objects of deleted workloads removed from a member when it returns.
//! - [`invalid`]: workloads the typed client cannot read (reported, left in place, deletable).
//! - Pure policy: [`conditions`] (kstatus merging), [`failover`] (moves, budget, records), [`rebalance`] (when a decision may move
//!   replicas between healthy clusters), [`status`] (what a workload shows).

pub mod conditions;
pub mod events;
pub mod failover;
pub mod gc;
pub mod invalid;
pub mod leader;
pub mod rebalance;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod triggers;
