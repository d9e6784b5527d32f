//! A reason and a score for every cluster, and the notes rendered: the decision as the status
//! and `bascule plan` show it.

use std::collections::BTreeSet;

use crate::api::{PlacementMode, Provider};

use super::candidates::Candidate;
use super::decision::{ClusterDecision, Decision, Outcome};
use super::eligibility::{CompiledSpec, Role};
use super::input::Replicas;
use super::notes::{Note, SpreadNote};

fn limited_by_max_clusters(spec: &CompiledSpec) -> bool {
    spec.spec
        .placement
        .spread
        .as_ref()
        .is_some_and(|s| s.max_clusters.is_some())
}

pub(super) fn check_spread(
    spec: &CompiledSpec,
    cands: &[Candidate],
    out: &[u64],
    notes: &mut Vec<Note>,
) {
    if notes.iter().any(Note::is_spread) {
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
        notes.push(Note::Spread(SpreadNote::ProvidersUsed {
            min: p,
            used: providers.len(),
        }));
    }
    if let Some(m) = spread
        .min_clusters
        .filter(|&m| used.len() < m.max(0) as usize)
    {
        notes.push(Note::Spread(SpreadNote::ClustersUsed {
            min: m,
            used: used.len(),
        }));
    }
    if let Some(m) = spread
        .max_clusters
        .filter(|&m| used.len() > m.max(0) as usize)
    {
        notes.push(Note::Spread(SpreadNote::ClustersExceeded {
            max: m,
            used: used.len(),
        }));
    }
}

pub(super) fn placement_vec(cands: &[Candidate], placement: &Replicas) -> Vec<u64> {
    cands
        .iter()
        .map(|c| u64::from(placement.get(c.name).copied().unwrap_or(0)))
        .collect()
}

pub(super) fn render(cands: &[Candidate], counts: &[u64]) -> String {
    super::input::summary(cands.iter().zip(counts).map(|(c, &n)| (c.name, n)))
}

pub(super) fn explain(
    spec: &CompiledSpec,
    cands: &[Candidate],
    preferred: &[u64],
    out: &[u64],
    outcome: Outcome,
    notes: Vec<Note>,
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
    let spilled = notes.iter().any(|n| matches!(n, Note::SpillsOver { .. }));
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
        notes: notes.iter().map(Note::to_string).collect(),
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
        // Not "its N replicas move elsewhere" while it still has some: the reason would change
        // once the move is in force, and a thousand workloads moving would each write their
        // status once more to say so. The placement and the move record tell the move.
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
