//! Divided and Duplicated: which clusters take part (`spread`, the ranking).

use crate::api::{PlacementMode, Provider};

use super::candidates::{Candidate, ranked};
use super::eligibility::CompiledSpec;
use super::notes::{Note, SpreadNote};

/// Applies `maxClusters` and `minProviders`/`minClusters`; returns the selected clusters and
/// raises the minimum of the clusters that must run at least one replica.
pub(super) fn select(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<Note>,
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
        notes.push(Note::Spread(SpreadNote::ProvidersEligible {
            min: min_providers,
            eligible: providers.len(),
        }));
    }
    if chosen.len() < min_clusters {
        notes.push(Note::Spread(SpreadNote::ClustersEligible {
            min: min_clusters,
            eligible: chosen.len(),
        }));
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
        notes.push(Note::Spread(SpreadNote::ClustersUncovered {
            min: min_clusters,
            replicas,
        }));
    }
    for &i in &forced {
        if cands[i].max >= 1 {
            cands[i].min = cands[i].min.max(1);
        }
    }
    chosen.extend(holds);
    chosen
}
