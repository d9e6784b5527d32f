//! The clusters under consideration, with their bounds and what Hold clusters keep.

use crate::api::{ClusterHealth, MultiCloudWorkloadSpec, PlacementMode, Provider};

use super::eligibility::{CompiledSpec, Role};
use super::input::Request;

/// One cluster under consideration.
pub(super) struct Candidate<'a> {
    pub(super) name: &'a str,
    pub(super) provider: Option<Provider>,
    pub(super) tier: Option<usize>,
    pub(super) role: Role,
    pub(super) current: u64,
    pub(super) min: u64,
    /// `minReplicas` as declared (within `max`), before `spread` raises `min` to 1.
    pub(super) declared_min: u64,
    pub(super) max: u64,
    /// `max` was lowered by known free capacity.
    pub(super) capacity_limited: bool,
    /// Replicas a Hold cluster keeps whatever the spec prefers (see `cap_holds`).
    pub(super) hold: u64,
    /// The cluster itself is Unhealthy (not merely filtered, drained or tainted).
    pub(super) unhealthy: bool,
}

impl Candidate<'_> {
    pub(super) fn can_receive(&self) -> bool {
        self.role == Role::Eligible
    }
    /// Replicas a Hold cluster keeps regardless of the spec's preferences.
    pub(super) fn held(&self) -> u64 {
        self.hold
    }
}

/// Every cluster in the snapshot, plus clusters of the current placement that have vanished,
/// in name order. Names are unique, so index order is name order: sorts break ties by index.
pub(super) fn candidates<'a>(spec: &CompiledSpec, req: &Request<'a>) -> Vec<Candidate<'a>> {
    let mut snaps: Vec<_> = req.clusters.iter().collect();
    snaps.sort_by(|a, b| a.name.cmp(&b.name));
    snaps.dedup_by(|a, b| a.name == b.name);
    let replicas = req.spec.replicas.max(0) as u64;
    let mut in_force = req.current.iter().peekable();

    let mut out: Vec<Candidate> = snaps
        .iter()
        .map(|c| {
            // Both sorted by name: walk the current placement alongside.
            while let Some((n, _)) = in_force.peek()
                && n.as_str() < c.name.as_str()
            {
                in_force.next();
            }
            let current = match in_force.peek() {
                Some(&(n, &r)) if *n == c.name => u64::from(r),
                _ => 0,
            };
            let (tier, role) = match spec.role(c, req) {
                Ok((t, r)) => (Some(t), r),
                Err(why) => (None, Role::Excluded(why)),
            };
            let bounds = tier
                .and_then(|t| spec.tier(t))
                .and_then(|t| t.cluster_replicas.as_ref())
                .or(req.spec.placement.cluster_replicas.as_ref());
            let min = bounds.and_then(|b| b.min_replicas).unwrap_or(0).max(0) as u64;
            let mut max = bounds
                .and_then(|b| b.max_replicas)
                .map_or(u64::MAX, |m| m.max(0) as u64);
            if req.spec.placement.mode == PlacementMode::Duplicated {
                max = max.min(replicas);
            }
            let mut capacity_limited = false;
            if let Some(fit) = c.available.and_then(|a| a.fits(&spec.per_replica))
                && fit < max
            {
                max = fit;
                capacity_limited = true;
            }
            Candidate {
                name: &c.name,
                provider: c.provider,
                tier,
                role,
                current,
                min: min.min(max),
                declared_min: min.min(max),
                max,
                capacity_limited,
                hold: 0,
                unhealthy: c.health == ClusterHealth::Unhealthy,
            }
        })
        .collect();

    for (name, &r) in req.current.iter() {
        let known = snaps
            .binary_search_by(|c| c.name.as_str().cmp(name.as_str()))
            .is_ok();
        if r > 0 && !known {
            out.push(Candidate {
                name,
                provider: None,
                tier: None,
                role: Role::Evict("MemberCluster not found".to_string()),
                current: u64::from(r),
                min: 0,
                declared_min: 0,
                max: 0,
                capacity_limited: false,
                hold: 0,
                unhealthy: false,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(b.name));
    cap_holds(req, &mut out);
    out
}

/// Hold clusters keep their replicas, but never more than the spec asks for: a scale-down takes
/// from them too, least preferred first. In Failover mode, what a Hold cluster keeps outside the
/// active tier is standby and counts against `standbyReplicas`, not against the active replicas.
fn cap_holds(req: &Request, cands: &mut [Candidate]) {
    let replicas = req.spec.replicas.max(0) as u64;
    let mode = req.spec.placement.mode;
    let active = (mode == PlacementMode::Failover)
        .then(|| active_tier(cands))
        .flatten();
    let mut holds: Vec<usize> = (0..cands.len())
        .filter(|&i| matches!(cands[i].role, Role::Hold(_)))
        .collect();
    holds.sort_by_key(|&i| (cands[i].tier, i));
    let mut left = replicas;
    let mut standby_left = standby_of(req.spec);
    for i in holds {
        let c = &mut cands[i];
        let keep = c.current.min(c.max);
        let budget = if active.is_some() && c.tier > active {
            &mut standby_left
        } else {
            &mut left
        };
        c.hold = if mode == PlacementMode::Duplicated {
            keep
        } else {
            keep.min(*budget)
        };
        *budget -= c.hold.min(*budget);
    }
}

/// Failover mode: the tier that runs the workload, the first with a cluster that may receive
/// replicas or that holds some. A Recovering cluster of the preferred tier still holding the
/// replicas keeps its tier active, so the standby stays on the next one.
pub(super) fn active_tier(cands: &[Candidate]) -> Option<usize> {
    cands
        .iter()
        .filter(|c| {
            (c.can_receive() && c.max > 0)
                || (matches!(c.role, Role::Hold(_)) && c.current.min(c.max) > 0)
        })
        .filter_map(|c| c.tier)
        .min()
}

/// Standby replicas asked for: never more than the replicas they stand in for (the CRD rejects
/// it too).
pub(super) fn standby_of(spec: &MultiCloudWorkloadSpec) -> u64 {
    if spec.placement.mode != PlacementMode::Failover {
        return 0;
    }
    let replicas = spec.replicas.max(0) as u64;
    (spec.placement.standby_replicas.unwrap_or(0).max(0) as u64).min(replicas)
}

/// Replicas the spec asks for in total (Duplicated: per cluster × eligible clusters is not a
/// shortfall, so it asks for what the preferred placement could hold at best).
pub(super) fn wanted_total(spec: &CompiledSpec, cands: &[Candidate]) -> u64 {
    let replicas = spec.spec.replicas.max(0) as u64;
    match spec.spec.placement.mode {
        PlacementMode::Duplicated => {
            let n = cands
                .iter()
                .filter(|c| c.can_receive() || c.held() > 0)
                .count() as u64;
            let n = spec
                .spec
                .placement
                .spread
                .as_ref()
                .and_then(|s| s.max_clusters)
                .map_or(n, |m| n.min(m as u64));
            replicas * n
        }
        _ => replicas,
    }
}

/// Participants in preference order: clusters holding replicas first (they cannot be emptied),
/// then by tier, then those running more replicas of the workload already, then by name.
pub(super) fn ranked(cands: &[Candidate]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cands.len())
        .filter(|&i| (cands[i].can_receive() && cands[i].max > 0) || cands[i].held() > 0)
        .collect();
    idx.sort_by_key(|&i| {
        (
            cands[i].held() == 0,
            cands[i].tier,
            std::cmp::Reverse(cands[i].current),
            i,
        )
    });
    idx
}
