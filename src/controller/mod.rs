//! Controller: the wiring between the hub, the members and the placement engine.
//!
//! - [`run`]: `bascule run` — the member supervisor, member watches and workload controller.
//! - [`reconcile`]: the entry point of one reconcile (finalizer, panics, retry policy).
//! - [`place`]: a workload placed (decide, step, apply, status, Events).
//! - [`cleanup`]: a deleted workload's objects removed from every member.
//! - [`context`]: what every reconcile shares, and the reconcile error.
//! - [`triggers`]: which workloads a member change affects; member watches; orphan collection.
//! - [`events`]: Events on the hub.
//! - [`leader`]: leader election on a Lease.
//! - [`retry`]: per-workload exponential retry backoff.
//! - [`gc`]: objects of deleted workloads removed from a member when it returns.
//! - [`invalid`]: workloads the typed client cannot read (reported, left in place, deletable).
//!
//! The pure decisions it carries out are in [`crate::policy`].

pub mod cleanup;
pub mod context;
pub mod dry_run;
pub mod events;
pub mod gc;
pub mod invalid;
pub mod leader;
pub mod place;
pub mod reconcile;
pub mod removal;
pub mod retry;
pub mod run;
pub mod triggers;
