//! The decision: filter → preferred placement → sticky adjustment → explanation.

use std::collections::BTreeSet;

use crate::api::{ClusterHealth, PlacementMode, Provider};

use super::apportion::{Share, apportion};
use super::decision::{ClusterDecision, Decision, Outcome};
use super::eligibility::{CompiledSpec, Role};
use super::input::{Rebalance, Replicas, Request};

/// One cluster under consideration.
struct Candidate<'a> {
    name: &'a str,
    provider: Option<Provider>,
    tier: Option<usize>,
    role: Role,
    current: u64,
    min: u64,
    /// `minReplicas` as declared (within `max`), before `spread` raises `min` to 1.
    declared_min: u64,
    max: u64,
    /// `max` was lowered by known free capacity.
    capacity_limited: bool,
    /// Replicas a Hold cluster keeps whatever the spec prefers (see `cap_holds`).
    hold: u64,
    /// The cluster itself is Unhealthy (not merely filtered, drained or tainted).
    unhealthy: bool,
}

impl Candidate<'_> {
    fn can_receive(&self) -> bool {
        self.role == Role::Eligible
    }
    /// Replicas a Hold cluster keeps regardless of the spec's preferences.
    fn held(&self) -> u64 {
        self.hold
    }
}

/// Decides where the workload's replicas go. Pure: the same request always gives the same
/// decision, whatever the order of `req.clusters`.
pub fn decide(req: &Request) -> Decision {
    let spec = CompiledSpec::new(req.spec);
    let mut cands = candidates(&spec, req);
    let mut notes = Vec::new();

    let current_total: u64 = cands.iter().map(|c| c.current).sum();
    if !cands.iter().any(Candidate::can_receive) {
        let (outcome, message) = if current_total > 0 {
            (
                Outcome::FailStatic,
                "no cluster may receive replicas (unhealthy, drained, cordoned or filtered out): keeping the current placement (fail static)"
                    .to_string(),
            )
        } else if req.spec.replicas <= 0 {
            // Nothing was asked (standby replicas never exceed replicas), and nothing runs:
            // satisfied, whatever state the clusters are in.
            (
                Outcome::Satisfied,
                "replicas is 0: nothing to place".to_string(),
            )
        } else {
            (
                Outcome::Unschedulable,
                "no cluster may receive replicas (unhealthy, drained, cordoned or filtered out): nothing can be placed".to_string(),
            )
        };
        notes.push(message);
        let placement: Replicas = req
            .current
            .iter()
            .filter(|&(_, &r)| r > 0)
            .map(|(n, &r)| (n.clone(), r))
            .collect();
        return explain(
            &spec,
            &cands,
            &vec![0; cands.len()],
            &placement_vec(&cands, &placement),
            outcome,
            notes,
        );
    }

    let (preferred, selected) = preferred(&spec, &mut cands, &mut notes);
    let out = match req.rebalance {
        Rebalance::ToPreferred => preferred.clone(),
        Rebalance::Sticky => sticky(&cands, &preferred, &selected),
    };

    let placed: u64 = out.iter().sum();
    let wanted = wanted_total(&spec, &cands);
    if placed < wanted {
        notes.push(format!(
            "only {placed} of {wanted} replicas could be placed (capacity or per-cluster limits)"
        ));
    }
    check_spread(&spec, &cands, &out, &mut notes);
    if out != preferred {
        let pref = render(&cands, &preferred);
        notes.push(format!(
            "kept on healthy clusters; the preferred placement is {pref}: failback pending until a rebalance is allowed"
        ));
    }
    let outcome = if placed == 0 && wanted > 0 {
        Outcome::Unschedulable
    } else if placed < wanted || notes.iter().any(|n| n.starts_with("spread")) {
        Outcome::Degraded
    } else {
        Outcome::Satisfied
    };
    explain(&spec, &cands, &preferred, &out, outcome, notes)
}

/// Every cluster in the snapshot, plus clusters of the current placement that have vanished,
/// in name order. Names are unique, so index order is name order: sorts break ties by index.
fn candidates<'a>(spec: &CompiledSpec, req: &Request<'a>) -> Vec<Candidate<'a>> {
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
fn active_tier(cands: &[Candidate]) -> Option<usize> {
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
fn standby_of(spec: &crate::api::MultiCloudWorkloadSpec) -> u64 {
    if spec.placement.mode != PlacementMode::Failover {
        return 0;
    }
    let replicas = spec.replicas.max(0) as u64;
    (spec.placement.standby_replicas.unwrap_or(0).max(0) as u64).min(replicas)
}

/// Replicas the spec asks for in total (Duplicated: per cluster × eligible clusters is not a
/// shortfall, so it asks for what the preferred placement could hold at best).
fn wanted_total(spec: &CompiledSpec, cands: &[Candidate]) -> u64 {
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

/// The placement the spec prefers, given who may receive, and which clusters may keep replicas
/// in a sticky decision (Divided and Duplicated: the selected ones, so that `maxClusters` holds;
/// Failover: any usable cluster, so that replicas stay on a fallback tier until failback).
/// Hold clusters keep what they hold.
fn preferred(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<String>,
) -> (Vec<u64>, Vec<bool>) {
    let (out, chosen) = match spec.spec.placement.mode {
        PlacementMode::Divided => divided(spec, cands, notes),
        PlacementMode::Duplicated => duplicated(spec, cands, notes),
        PlacementMode::Failover => {
            let out = failover(spec, cands, notes);
            return (out, vec![true; cands.len()]);
        }
    };
    let mut selected = vec![false; cands.len()];
    for i in chosen {
        selected[i] = true;
    }
    (out, selected)
}

/// Participants in preference order: clusters holding replicas first (they cannot be emptied),
/// then by tier, then those running more replicas of the workload already, then by name.
fn ranked(cands: &[Candidate]) -> Vec<usize> {
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

/// Applies `maxClusters` and `minProviders`/`minClusters`; returns the selected clusters and
/// raises the minimum of the clusters that must run at least one replica.
fn select(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<String>,
    replicas: u64,
) -> Vec<usize> {
    let spread = spec.spec.placement.spread.clone().unwrap_or_default();
    let ranked: Vec<usize> = ranked(cands)
        .into_iter()
        .filter(|&i| cands[i].can_receive())
        .collect();
    let max_clusters = spread
        .max_clusters
        .map_or(usize::MAX, |m| m.max(1) as usize);
    let min_providers = spread.min_providers.unwrap_or(0).max(0) as usize;
    let min_clusters = spread.min_clusters.unwrap_or(0).max(0) as usize;

    // One cluster per provider first, so that maxClusters cannot squeeze out minProviders.
    let mut chosen: Vec<usize> = Vec::new();
    let mut providers: Vec<Provider> = Vec::new();
    for &i in &ranked {
        if providers.len() >= min_providers || chosen.len() >= max_clusters {
            break;
        }
        if let Some(p) = cands[i].provider.filter(|p| !providers.contains(p)) {
            providers.push(p);
            chosen.push(i);
        }
    }
    let must_run: Vec<usize> = chosen.clone();
    let mut in_chosen = vec![false; cands.len()];
    for &i in &chosen {
        in_chosen[i] = true;
    }
    for &i in &ranked {
        if chosen.len() >= max_clusters {
            break;
        }
        if !in_chosen[i] {
            in_chosen[i] = true;
            chosen.push(i);
        }
    }
    // Back into preference order: by position in `ranked` (every chosen cluster is in it).
    let mut rank = vec![usize::MAX; cands.len()];
    for (k, &i) in ranked.iter().enumerate() {
        rank[i] = k;
    }
    chosen.sort_by_key(|&i| rank[i]);
    // The total comes first: no cluster is dropped because the minimums do not fit; the split
    // gives the more preferred their minimum first and the last ones less (see `reason`).
    // Hold clusters keep their replicas even beyond maxClusters: a cordon never evicts.
    let holds: Vec<usize> = (0..cands.len()).filter(|&i| cands[i].held() > 0).collect();

    if providers.len() < min_providers {
        notes.push(format!(
            "spread.minProviders={min_providers} not met: eligible clusters span {} provider(s)",
            providers.len()
        ));
    }
    if chosen.len() < min_clusters {
        notes.push(format!(
            "spread.minClusters={min_clusters} not met: only {} eligible cluster(s)",
            chosen.len()
        ));
    }

    // Clusters that must run a replica: one per required provider, then the most preferred up
    // to minClusters; dropped from the least preferred end when replicas are too few.
    let mut forced: Vec<usize> = must_run;
    for &i in &chosen {
        if forced.len() >= min_clusters {
            break;
        }
        if !forced.contains(&i) {
            forced.push(i);
        }
    }
    forced.truncate(usize::try_from(replicas).unwrap_or(usize::MAX));
    if spec.spec.placement.mode == PlacementMode::Divided
        && (forced.len() as u64) < min_clusters.min(chosen.len()) as u64
    {
        notes.push(format!(
            "spread.minClusters={min_clusters} not met: {replicas} replica(s) cannot cover them"
        ));
    }
    for &i in &forced {
        if cands[i].max >= 1 {
            cands[i].min = cands[i].min.max(1);
        }
    }
    chosen.extend(holds);
    chosen
}

fn divided(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<String>,
) -> (Vec<u64>, Vec<usize>) {
    let replicas = spec.spec.replicas.max(0) as u64;
    let chosen = select(spec, cands, notes, replicas);
    let mut out = vec![0; cands.len()];

    // Level 1: tiers share the replicas by weight. Level 2: a tier's clusters share equally.
    let mut tiers: Vec<usize> = chosen.iter().filter_map(|&i| cands[i].tier).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let members = |t: usize| -> Vec<usize> {
        let mut m: Vec<usize> = chosen
            .iter()
            .copied()
            .filter(|&i| cands[i].tier == Some(t))
            .collect();
        // Pinned replicas first: when the total cannot cover every minimum, what a Hold
        // cluster keeps is served before anything new.
        let pinned = |i: usize| cands[i].held() > 0 && !cands[i].can_receive();
        m.sort_by_key(|&i| (!pinned(i), std::cmp::Reverse(cands[i].current), i));
        m
    };
    let bounds = |i: usize| -> (u64, u64) {
        let c = &cands[i];
        if c.held() > 0 && !c.can_receive() {
            (c.held(), c.held())
        } else {
            (c.min, c.max)
        }
    };
    let tier_shares: Vec<Share> = tiers
        .iter()
        .map(|&t| {
            let weight = spec.tier(t).map_or(1, |tier| tier.weight.max(1) as u64);
            let (lo, hi) = members(t).iter().fold((0u64, 0u64), |(lo, hi), &i| {
                let (a, b) = bounds(i);
                (lo + a, hi.saturating_add(b))
            });
            Share::new(weight, lo, hi)
        })
        .collect();
    let per_tier = apportion(replicas, &tier_shares);
    for (k, &t) in tiers.iter().enumerate() {
        let m = members(t);
        let shares: Vec<Share> = m
            .iter()
            .map(|&i| {
                let (lo, hi) = bounds(i);
                Share::new(1, lo, hi)
            })
            .collect();
        for (j, v) in apportion(per_tier[k], &shares).into_iter().enumerate() {
            out[m[j]] = v;
        }
    }
    (out, chosen)
}

fn duplicated(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<String>,
) -> (Vec<u64>, Vec<usize>) {
    let replicas = spec.spec.replicas.max(0) as u64;
    let chosen = select(spec, cands, notes, replicas);
    let mut out = vec![0; cands.len()];
    for &i in &chosen {
        let c = &cands[i];
        out[i] = if c.can_receive() {
            replicas.clamp(c.min, c.max)
        } else {
            c.held()
        };
    }
    (out, chosen)
}

fn failover(spec: &CompiledSpec, cands: &mut [Candidate], notes: &mut Vec<String>) -> Vec<u64> {
    let replicas = spec.spec.replicas.max(0) as u64;
    // Spread constraints do not apply in Failover mode (the CRD rejects them): a tier's clusters
    // are listed by the tier itself.
    let (max_clusters, min_clusters) = (usize::MAX, 0usize);
    let active = active_tier(cands);
    let mut out: Vec<u64> = cands.iter().map(Candidate::held).collect();
    // What Hold clusters keep beyond the active tier is standby (see `cap_holds`).
    let held_standby: u64 = cands
        .iter()
        .filter(|c| c.tier > active)
        .map(Candidate::held)
        .sum();
    let held_active: u64 = out.iter().sum::<u64>() - held_standby;
    let mut remaining = replicas.saturating_sub(held_active);

    // Hold clusters keep their replicas on top of maxClusters, as in the other modes.
    let mut slots = max_clusters;
    let receivers = |t: usize, cands: &[Candidate], slots: usize| -> Vec<usize> {
        let mut r: Vec<usize> = (0..cands.len())
            .filter(|&i| cands[i].tier == Some(t) && cands[i].can_receive() && cands[i].max > 0)
            .collect();
        r.sort_by_key(|&i| (std::cmp::Reverse(cands[i].current), i));
        r.truncate(slots);
        r
    };
    let tiers: Vec<usize> = (0..spec.tier_count())
        .filter(|&t| !receivers(t, cands, usize::MAX).is_empty())
        .collect();
    let mut last_used = None;
    for (k, &t) in tiers.iter().enumerate() {
        if remaining == 0 && last_used.is_some() {
            break;
        }
        let r = receivers(t, cands, slots);
        if k == 0 && r.len() < min_clusters {
            notes.push(format!(
                "spread.minClusters={min_clusters} not met: {} has {} eligible cluster(s)",
                spec.tier_label(t),
                r.len()
            ));
        }
        let shares: Vec<Share> = r
            .iter()
            .enumerate()
            .map(|(j, &i)| {
                let floor = if k == 0 && j < min_clusters {
                    cands[i].min.max(1)
                } else {
                    cands[i].min
                };
                Share::new(1, floor.min(cands[i].max), cands[i].max)
            })
            .collect();
        let got = apportion(remaining, &shares);
        let placed: u64 = got.iter().sum();
        for (j, v) in got.into_iter().enumerate() {
            if v > 0 && out[r[j]] == 0 {
                slots = slots.saturating_sub(1);
            }
            out[r[j]] += v;
        }
        if placed > 0 || last_used.is_none() {
            last_used = Some(k);
        }
        if k > 0 && placed > 0 {
            notes.push(format!(
                "{} spills over: earlier tiers had no room for {remaining} replica(s)",
                spec.tier_label(t)
            ));
        }
        remaining -= placed;
    }

    // The standby goes to the first tier after the active one that may receive.
    let active = out
        .iter()
        .zip(cands.iter())
        .filter(|(o, _)| **o > 0)
        .filter_map(|(_, c)| c.tier)
        .min()
        .or(active);
    let mut standby = standby_of(spec.spec).saturating_sub(held_standby);
    if standby > 0 && replicas > 0 {
        if let Some(&t) = tiers.iter().find(|&&t| Some(t) > active) {
            // Clusters with room; those already running replicas take no new maxClusters slot.
            let (used, unused): (Vec<usize>, Vec<usize>) = receivers(t, cands, usize::MAX)
                .into_iter()
                .filter(|&i| out[i] < cands[i].max)
                .partition(|&i| out[i] > 0);
            let r: Vec<usize> = used
                .into_iter()
                .chain(unused.into_iter().take(slots))
                .collect();
            if r.is_empty() {
                notes.push(format!(
                    "spread.maxClusters leaves no cluster for {standby} standby replica(s)"
                ));
            }
            // Clusters get back the replicas they run first (the spill-over above may have
            // gone to another cluster of the tier), so deciding again over this decision gives
            // the same placement; what is left is shared equally.
            let refill: Vec<Share> = r
                .iter()
                .map(|&i| {
                    let gap = cands[i].current.min(cands[i].max).saturating_sub(out[i]);
                    Share::new(gap, 0, gap)
                })
                .collect();
            for (j, v) in apportion(standby, &refill).into_iter().enumerate() {
                out[r[j]] += v;
                standby -= v;
            }
            let shares: Vec<Share> = r
                .iter()
                .map(|&i| Share::new(1, 0, cands[i].max.saturating_sub(out[i])))
                .collect();
            for (j, v) in apportion(standby, &shares).into_iter().enumerate() {
                out[r[j]] += v;
                standby -= v;
            }
        }
        keep_standby_with_nowhere_to_go(cands, &mut out, active, &mut standby);
        if standby > 0 {
            notes.push(format!(
                "no healthy tier after the active one for {standby} standby replica(s)"
            ));
        }
    }
    out
}

/// Standby replicas on an Unhealthy cluster stay there while no healthy cluster can take them:
/// removing them helps nothing (the cluster may not even answer), and dropping them from the
/// placement would delete them when the cluster returns, only to create them again. Seen when
/// every member is lost a few seconds apart: the standby's cluster is detected first.
fn keep_standby_with_nowhere_to_go(
    cands: &mut [Candidate],
    out: &mut [u64],
    active: Option<usize>,
    standby: &mut u64,
) {
    let mut stranded: Vec<usize> = (0..cands.len())
        .filter(|&i| {
            let c = &cands[i];
            c.unhealthy
                && matches!(c.role, Role::Evict(_))
                && c.current > 0
                && out[i] == 0
                && active.is_some()
                && c.tier > active
        })
        .collect();
    stranded.sort_by_key(|&i| (cands[i].tier, i));
    for i in stranded {
        if *standby == 0 {
            break;
        }
        let keep = cands[i].current.min(cands[i].max).min(*standby);
        if keep == 0 {
            continue;
        }
        let Role::Evict(why) = &cands[i].role else {
            continue;
        };
        cands[i].role = Role::Hold(format!("{why}; its standby has nowhere else to go"));
        cands[i].hold = keep;
        out[i] = keep;
        *standby -= keep;
    }
}

/// Keeps every replica that may stay, then trims or fills toward the preferred placement:
/// removals come from clusters above their preferred count, additions go to clusters below it,
/// both in proportion to the difference.
fn sticky(cands: &[Candidate], preferred: &[u64], selected: &[bool]) -> Vec<u64> {
    let mut out: Vec<u64> = cands
        .iter()
        .zip(selected)
        .map(|(c, &selected)| match c.role {
            Role::Hold(_) => c.held(),
            Role::Eligible if selected => c.current.min(c.max),
            _ => 0,
        })
        .collect();
    let target: u64 = preferred.iter().sum();
    let kept: u64 = out.iter().sum();
    if kept > target {
        let surplus: Vec<Share> = out
            .iter()
            .zip(preferred)
            .map(|(&o, &p)| {
                let s = o.saturating_sub(p);
                Share::new(s, 0, s)
            })
            .collect();
        let cut = apportion_reverse(kept - target, &surplus);
        for (o, c) in out.iter_mut().zip(cut) {
            *o -= c;
        }
    } else if kept < target {
        let gaps: Vec<Share> = out
            .iter()
            .zip(preferred)
            .zip(cands)
            .map(|((&o, &p), c)| {
                let g = if c.can_receive() {
                    p.saturating_sub(o)
                } else {
                    0
                };
                Share::new(g, 0, g)
            })
            .collect();
        for (o, a) in out.iter_mut().zip(apportion(target - kept, &gaps)) {
            *o += a;
        }
    }
    out
}

fn limited_by_max_clusters(spec: &CompiledSpec) -> bool {
    spec.spec
        .placement
        .spread
        .as_ref()
        .is_some_and(|s| s.max_clusters.is_some())
}

/// Like `apportion`, but ties go to the later items: replicas are removed from the least
/// preferred clusters first.
fn apportion_reverse(total: u64, items: &[Share]) -> Vec<u64> {
    let reversed: Vec<Share> = items.iter().rev().copied().collect();
    let mut out = apportion(total, &reversed);
    out.reverse();
    out
}

fn check_spread(spec: &CompiledSpec, cands: &[Candidate], out: &[u64], notes: &mut Vec<String>) {
    if notes.iter().any(|n| n.starts_with("spread")) {
        return;
    }
    let Some(spread) = &spec.spec.placement.spread else {
        return;
    };
    let used: Vec<&Candidate> = cands
        .iter()
        .zip(out)
        .filter(|(_, o)| **o > 0)
        .map(|(c, _)| c)
        .collect();
    let providers: BTreeSet<Provider> = used.iter().filter_map(|c| c.provider).collect();
    if let Some(p) = spread
        .min_providers
        .filter(|&p| providers.len() < p.max(0) as usize)
    {
        notes.push(format!(
            "spread.minProviders={p} not met: replicas run on {} provider(s)",
            providers.len()
        ));
    }
    if let Some(m) = spread
        .min_clusters
        .filter(|&m| used.len() < m.max(0) as usize)
    {
        notes.push(format!(
            "spread.minClusters={m} not met: replicas run on {} cluster(s)",
            used.len()
        ));
    }
    if let Some(m) = spread
        .max_clusters
        .filter(|&m| used.len() > m.max(0) as usize)
    {
        notes.push(format!(
            "spread.maxClusters={m} exceeded: replicas run on {} clusters",
            used.len()
        ));
    }
}

fn placement_vec(cands: &[Candidate], placement: &Replicas) -> Vec<u64> {
    cands
        .iter()
        .map(|c| u64::from(placement.get(c.name).copied().unwrap_or(0)))
        .collect()
}

fn render(cands: &[Candidate], counts: &[u64]) -> String {
    super::input::summary(cands.iter().zip(counts).map(|(c, &n)| (c.name, n)))
}

fn explain(
    spec: &CompiledSpec,
    cands: &[Candidate],
    preferred: &[u64],
    out: &[u64],
    outcome: Outcome,
    notes: Vec<String>,
) -> Decision {
    let mode = spec.spec.placement.mode;
    let weights: u64 = {
        let mut used = vec![false; spec.tier_count()];
        for t in cands
            .iter()
            .filter(|c| c.can_receive() || c.held() > 0)
            .filter_map(|c| c.tier)
        {
            used[t] = true;
        }
        (0..used.len())
            .filter(|&t| used[t])
            .map(|t| spec.tier(t).map_or(1, |x| x.weight.max(1) as u64))
            .sum()
    };
    let spilled = notes.iter().any(|n| n.contains("spills over"));
    let active_tier = cands
        .iter()
        .zip(out)
        .filter(|(c, o)| **o > 0 && c.tier.is_some())
        .map(|(c, _)| c.tier)
        .min()
        .flatten();
    let clusters = cands
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let replicas = u32::try_from(out[i]).unwrap_or(u32::MAX);
            let score = match (&c.role, c.tier) {
                (Role::Eligible | Role::Hold(_), Some(t)) => match mode {
                    PlacementMode::Divided => {
                        let w = spec.tier(t).map_or(1, |x| x.weight.max(1) as u64);
                        (100 * w).checked_div(weights).unwrap_or(0) as u32
                    }
                    PlacementMode::Duplicated => 100,
                    PlacementMode::Failover => {
                        let n = spec.tier_count() as u64;
                        (100 * (n - t as u64) / n) as u32
                    }
                },
                _ => 0,
            };
            ClusterDecision {
                name: c.name.to_string(),
                tier: c.tier.map(|t| t + 1),
                selected: replicas > 0,
                replicas,
                current: u32::try_from(c.current).unwrap_or(u32::MAX),
                score,
                reason: reason(spec, c, preferred[i], out[i], active_tier, spilled),
            }
        })
        .collect();
    let placement = cands
        .iter()
        .zip(out)
        .filter(|(_, o)| **o > 0)
        .map(|(c, &o)| (c.name.to_string(), u32::try_from(o).unwrap_or(u32::MAX)))
        .collect();
    Decision {
        placement,
        clusters,
        outcome,
        notes,
        preferred: render(cands, preferred),
    }
}

fn reason(
    spec: &CompiledSpec,
    c: &Candidate,
    preferred: u64,
    out: u64,
    active_tier: Option<usize>,
    spilled: bool,
) -> String {
    let tier = c.tier.map(|t| spec.tier_label(t)).unwrap_or_default();
    match &c.role {
        Role::Excluded(why) => format!("matches no tier: {why}"),
        Role::Evict(why) if out > 0 => format!("{why}; kept (fail static)"),
        Role::Evict(why) if c.current > 0 => {
            format!("{why}: its {} replica(s) move elsewhere", c.current)
        }
        Role::Evict(why) => why.clone(),
        Role::Hold(why) if out > 0 => {
            format!("{why}; keeps {out} replica(s), receives no new ones")
        }
        Role::Hold(why) => format!("{why}; receives no replicas"),
        Role::Eligible => {
            let mode = spec.spec.placement.mode;
            let cap = if c.capacity_limited && out == c.max {
                format!("; capacity limits it to {}", c.max)
            } else if c.max != u64::MAX
                && out == c.max
                && out > 0
                && !(mode == PlacementMode::Duplicated && c.max == spec.spec.replicas.max(0) as u64)
            {
                format!("; at maxReplicas {}", c.max)
            } else {
                String::new()
            };
            if out > 0 && out != preferred {
                return format!(
                    "{tier}: keeps {out} (preferred {preferred}) until a rebalance{cap}"
                );
            }
            if out == preferred && out < c.declared_min && mode != PlacementMode::Duplicated {
                let min = c.declared_min;
                return if out > 0 {
                    format!(
                        "{tier}: {out}, below its minReplicas {min}: the more preferred clusters' minimums come first"
                    )
                } else {
                    format!(
                        "{tier}: below its minReplicas {min}: the more preferred clusters' minimums take every replica"
                    )
                };
            }
            match mode {
                PlacementMode::Failover if out > 0 && Some(c.tier) != Some(active_tier) => {
                    if spilled {
                        format!("{tier}: spill-over, earlier tiers are full{cap}")
                    } else {
                        format!("{tier}: warm standby{cap}")
                    }
                }
                PlacementMode::Failover if out > 0 => format!("{tier}: active tier{cap}"),
                PlacementMode::Failover if preferred > 0 => format!("{tier}: failback pending"),
                PlacementMode::Failover => match active_tier {
                    Some(a) if c.tier > Some(a) => {
                        format!("{tier}: fallback while {} is healthy", spec.tier_label(a))
                    }
                    _ => format!("{tier}: not needed{cap}"),
                },
                _ if out > 0 => {
                    let w = c.tier.and_then(|t| spec.tier(t)).map(|t| t.weight);
                    match (mode, w) {
                        (PlacementMode::Divided, Some(w)) => format!("{tier}, weight {w}{cap}"),
                        _ => format!("{tier}{cap}"),
                    }
                }
                _ if preferred > 0 => format!("{tier}: receives {preferred} at the next rebalance"),
                _ if c.capacity_limited && c.max == c.current => {
                    format!("{tier}: no room for another replica")
                }
                _ if limited_by_max_clusters(spec) => {
                    format!("{tier}: not selected (spread.maxClusters)")
                }
                _ => format!("{tier}: its share rounds to 0"),
            }
        }
    }
}

/// Upper bound of what a spec could ask for over these clusters (the property tests' yardstick).
#[cfg(test)]
pub(crate) fn wanted_for_tests(
    spec: &crate::api::MultiCloudWorkloadSpec,
    clusters: &[super::ClusterSnapshot],
) -> u64 {
    let replicas = spec.replicas.max(0) as u64;
    match spec.placement.mode {
        PlacementMode::Duplicated => replicas * clusters.len() as u64,
        _ => replicas + spec.placement.standby_replicas.unwrap_or(0).max(0) as u64,
    }
}
