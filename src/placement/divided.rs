//! Divided (tiers share by weight, a tier's clusters equally) and Duplicated (every selected
//! cluster runs `replicas`).

use super::apportion::{Share, apportion};
use super::candidates::Candidate;
use super::eligibility::CompiledSpec;
use super::notes::Note;
use super::selection::select;

pub(super) fn divided(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<Note>,
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

pub(super) fn duplicated(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<Note>,
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
