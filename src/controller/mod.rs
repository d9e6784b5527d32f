//! Controller: the wiring between the hub, the members and the placement engine. Pure policy
//! lives here too, beside the I/O that uses it: `conditions` (kstatus merging) and `rebalance`
//! (when a decision may move replicas between healthy clusters) and `status` (what a workload
//! shows, from the decision and the members' reports).

pub mod conditions;
pub mod rebalance;
pub mod status;
