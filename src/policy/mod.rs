//! The policy layer, between the placement engine and the controller: pure, no I/O. It turns a
//! workload, its status and what the members report into what the controller carries out and
//! writes.
//!
//! - [`request`]: the engine's request for a workload (placement in force, rebalance mode,
//!   application failures), one place for the controller and `bascule plan`.
//! - [`intent`]: what a reconcile sets out to do: admission of a move before any apply, its
//!   settlement (started or postponed) from the apply's results.
//! - [`reasons`]: every problem reason a workload's conditions carry, and what it means to
//!   kstatus and the GitOps health checks.
//! - [`rebalance`]: when a decision may move replicas between healthy clusters, and why.
//! - [`moves`]: which decisions are failovers or failbacks, the move budget, the move record.
//! - [`status`]: the status a workload shows.
//! - [`events`]: which Events a change of status tells.
//! - [`tenancy`]: what any workload may place in a member (kinds, namespaces, RBAC), checked on
//!   the rendered objects.

pub mod events;
pub mod intent;
pub mod moves;
pub mod reasons;
pub mod rebalance;
pub mod request;
pub mod status;
pub mod tenancy;
