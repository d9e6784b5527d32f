//! Sync: what Bascule writes to member clusters. `render` turns a workload's template into the
//! objects for one cluster (pure); applying them (server-side apply, pruning, ownership checks)
//! builds on it.

pub mod apply;
pub mod diff;
pub mod inventory;
pub mod observe;
pub mod render;
