//! Failover: the first tier with an eligible cluster takes all; the next gets the standby.

use super::apportion::{Share, apportion};
use super::candidates::{Candidate, active_tier, standby_of};
use super::eligibility::{CompiledSpec, Role};
use super::notes::Note;

/// The active tier takes `replicas` (minus what Hold clusters keep), spilling into later tiers
/// what it cannot hold; the standby goes to the first tier after the active one. `spread` does
/// not apply (the CRD refuses it): a tier's clusters are listed by the tier itself.
pub(super) fn failover(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<Note>,
) -> Vec<u64> {
    let replicas = spec.spec.replicas.max(0) as u64;
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

    let receivers = |t: usize, cands: &[Candidate]| -> Vec<usize> {
        let mut r: Vec<usize> = (0..cands.len())
            .filter(|&i| cands[i].tier == Some(t) && cands[i].can_receive() && cands[i].max > 0)
            .collect();
        r.sort_by_key(|&i| (std::cmp::Reverse(cands[i].current), i));
        r
    };
    let tiers: Vec<usize> = (0..spec.tier_count())
        .filter(|&t| !receivers(t, cands).is_empty())
        .collect();
    let mut last_used = None;
    for (k, &t) in tiers.iter().enumerate() {
        if remaining == 0 && last_used.is_some() {
            break;
        }
        let r = receivers(t, cands);
        let shares: Vec<Share> = r
            .iter()
            .map(|&i| Share::new(1, cands[i].min, cands[i].max))
            .collect();
        let got = apportion(remaining, &shares);
        let placed: u64 = got.iter().sum();
        for (j, v) in got.into_iter().enumerate() {
            out[r[j]] += v;
        }
        if placed > 0 || last_used.is_none() {
            last_used = Some(k);
        }
        if k > 0 && placed > 0 {
            notes.push(Note::SpillsOver {
                tier: spec.tier_label(t).to_string(),
                replicas: remaining,
            });
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
        let mut full_tier = None;
        if let Some(&t) = tiers.iter().find(|&&t| Some(t) > active) {
            // Clusters with room, those already running replicas first.
            let (used, unused): (Vec<usize>, Vec<usize>) = receivers(t, cands)
                .into_iter()
                .filter(|&i| out[i] < cands[i].max)
                .partition(|&i| out[i] > 0);
            let r: Vec<usize> = used.into_iter().chain(unused).collect();
            if r.is_empty() {
                full_tier = Some(spec.tier_label(t).to_string());
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
            notes.push(match full_tier {
                Some(tier) => Note::StandbyTierFull { tier, standby },
                None => Note::NoStandbyTier { standby },
            });
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
