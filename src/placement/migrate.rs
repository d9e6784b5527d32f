//! Make-before-break: how many replicas each cluster should run *now*, on the way from what the
//! members run to the decision's placement. Pure.
//!
//! Clusters that grow get their target at once. Clusters that shrink keep what they run until
//! the whole target placement is available (every reachable target cluster has at least its
//! target of available replicas); only then is capacity removed. A cluster that cannot be
//! reached is left as it is: it can be neither grown nor shrunk, and its replicas are not
//! counted as available.
//!
//! The workload's `purgeMode` changes what happens to a cluster being left entirely:
//! `Gracefully` is the above, `Directly` removes its replicas at once, `Never` leaves them.

use std::collections::BTreeMap;

use super::input::Replicas;
use crate::api::PurgeMode;

/// What one cluster runs of the workload, as its member reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Running {
    /// `spec.replicas` of the workload's Deployment/StatefulSet there (0 if it has none).
    pub replicas: u32,
    /// Replicas available there (of the current template).
    pub available: u32,
}

/// Per cluster: what it runs, or `None` when the member cannot be reached (or not yet read).
/// Clusters left out run nothing.
pub type Fleet = BTreeMap<String, Option<Running>>;

/// The replicas to run now, per cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Replicas each reachable cluster should run now (0: remove the workload there). Clusters
    /// that cannot be reached are left out: nothing is sent to them.
    pub replicas: Replicas,
    /// Clusters held above their target until the target placement is available.
    pub held: Vec<String>,
}

/// The next step toward `target` (the decision's placement) from `fleet`. With `settling`
/// (some cluster concerned is still recovering or not yet probed after an outage), nothing
/// shrinks: removals wait until the fleet's health has settled.
pub fn step(target: &Replicas, fleet: &Fleet, purge: PurgeMode, settling: bool) -> Step {
    let target_available = target.iter().all(|(name, &want)| match fleet.get(name) {
        Some(Some(r)) => r.available >= want,
        Some(None) => true, // unreachable: nothing to wait for there
        None => want == 0,
    });
    let mut out = Step::default();
    let names = target
        .keys()
        .chain(fleet.keys())
        .collect::<std::collections::BTreeSet<_>>();
    for name in names {
        let want = target.get(name).copied().unwrap_or(0);
        let running = match fleet.get(name) {
            Some(None) => continue,
            Some(Some(r)) => r.replicas,
            None => 0,
        };
        let release = match purge {
            _ if want >= running => true,
            _ if settling => false,
            PurgeMode::Directly => true,
            PurgeMode::Never if want == 0 => false,
            PurgeMode::Gracefully | PurgeMode::Never => target_available,
        };
        let now = if release {
            want
        } else {
            out.held.push(name.clone());
            running
        };
        out.replicas.insert(name.clone(), now);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn replicas(v: &[(&str, u32)]) -> Replicas {
        v.iter().map(|(n, r)| (n.to_string(), *r)).collect()
    }

    fn run(replicas: u32, available: u32) -> Option<Running> {
        Some(Running {
            replicas,
            available,
        })
    }

    #[test]
    fn a_move_surges_first_and_drains_once_the_target_is_available() {
        let target = replicas(&[("gke", 10)]);
        // Before: eks runs 10. The surge starts; eks keeps its 10.
        let fleet: Fleet = [("eks".into(), run(10, 10))].into();
        let s = step(&target, &fleet, PurgeMode::Gracefully, false);
        assert_eq!(s.replicas, replicas(&[("eks", 10), ("gke", 10)]));
        assert_eq!(s.held, vec!["eks"]);
        // gke has 6 of 10 available: still held.
        let fleet: Fleet = [("eks".into(), run(10, 10)), ("gke".into(), run(10, 6))].into();
        assert_eq!(
            step(&target, &fleet, PurgeMode::Gracefully, false).held,
            vec!["eks"]
        );
        // gke is available: eks is drained.
        let fleet: Fleet = [("eks".into(), run(10, 10)), ("gke".into(), run(10, 10))].into();
        let s = step(&target, &fleet, PurgeMode::Gracefully, false);
        assert_eq!(s.replicas, replicas(&[("eks", 0), ("gke", 10)]));
        assert!(s.held.is_empty());
    }

    #[test]
    fn unreachable_clusters_are_left_alone_and_not_waited_for() {
        let target = replicas(&[("gke", 10)]);
        let fleet: Fleet = [("eks".into(), None), ("gke".into(), run(0, 0))].into();
        let s = step(&target, &fleet, PurgeMode::Gracefully, false);
        assert_eq!(s.replicas, replicas(&[("gke", 10)]));
        // An unreachable target cluster does not block draining elsewhere.
        let target = replicas(&[("eks", 5), ("gke", 5)]);
        let fleet: Fleet = [("eks".into(), None), ("gke".into(), run(10, 10))].into();
        assert_eq!(
            step(&target, &fleet, PurgeMode::Gracefully, false).replicas,
            replicas(&[("gke", 5)])
        );
    }

    #[test]
    fn a_plain_scale_down_applies_at_once() {
        let target = replicas(&[("eks", 5)]);
        let fleet: Fleet = [("eks".into(), run(10, 10))].into();
        assert_eq!(
            step(&target, &fleet, PurgeMode::Gracefully, false).replicas,
            target
        );
    }

    #[test]
    fn purge_modes_for_a_cluster_being_left() {
        let target = replicas(&[("gke", 10)]);
        let fleet: Fleet = [("eks".into(), run(10, 10)), ("gke".into(), run(0, 0))].into();
        let s = step(&target, &fleet, PurgeMode::Directly, false);
        assert_eq!(s.replicas, replicas(&[("eks", 0), ("gke", 10)]));
        let fleet: Fleet = [("eks".into(), run(10, 10)), ("gke".into(), run(10, 10))].into();
        let s = step(&target, &fleet, PurgeMode::Never, false);
        assert_eq!(
            s.replicas,
            replicas(&[("eks", 10), ("gke", 10)]),
            "left running"
        );
        assert_eq!(s.held, vec!["eks"]);
    }

    #[test]
    fn nothing_shrinks_while_the_fleet_settles() {
        let target = replicas(&[("eks", 10)]);
        let fleet: Fleet = [("eks".into(), run(10, 10)), ("gke".into(), run(2, 2))].into();
        let s = step(&target, &fleet, PurgeMode::Directly, true);
        assert_eq!(s.replicas, replicas(&[("eks", 10), ("gke", 2)]));
        assert_eq!(s.held, vec!["gke"]);
    }

    proptest! {
        /// Capacity is never removed while the target is not available, growth is never
        /// delayed, and unreachable clusters are never sent anything.
        #[test]
        fn make_before_break(
            target in proptest::collection::btree_map("[a-d]", 0u32..6, 0..4),
            fleet in proptest::collection::btree_map(
                "[a-d]",
                proptest::option::of((0u32..6, 0u32..6).prop_map(|(r, a)| Running { replicas: r, available: a.min(r) })),
                0..4,
            ),
        ) {
            let s = step(&target, &fleet, PurgeMode::Gracefully, false);
            let available = target.iter().all(|(n, &w)| match fleet.get(n) {
                Some(Some(r)) => r.available >= w,
                Some(None) => true,
                None => w == 0,
            });
            for (name, running) in &fleet {
                match running {
                    None => prop_assert!(!s.replicas.contains_key(name)),
                    Some(r) => {
                        let now = s.replicas[name];
                        let want = target.get(name).copied().unwrap_or(0);
                        prop_assert!(now >= want.min(r.replicas).max(want));
                        if !available {
                            prop_assert!(now >= r.replicas, "{name} shrank before the target was available");
                        }
                    }
                }
            }
            for (name, &want) in &target {
                if fleet.get(name).is_none_or(Option::is_some) {
                    prop_assert!(s.replicas[name] >= want);
                }
            }
        }
    }
}
