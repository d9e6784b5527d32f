//! The decision: filter → preferred placement → sticky adjustment → explanation.

use crate::api::PlacementMode;

use super::candidates::{Candidate, candidates, wanted_total};
use super::decision::{Decision, Outcome};
use super::divided::{divided, duplicated};
use super::eligibility::CompiledSpec;
use super::explain::{check_spread, explain, placement_vec, render};
use super::failover::failover;
use super::input::{Rebalance, Replicas, Request};
use super::notes::Note;
use super::sticky::sticky;

/// Decides where the workload's replicas go. Pure: the same request always gives the same
/// decision, whatever the order of `req.clusters`.
pub fn decide(req: &Request) -> Decision {
    let spec = CompiledSpec::new(req.spec);
    let mut cands = candidates(&spec, req);
    let mut notes = Vec::new();

    let current_total: u64 = cands.iter().map(|c| c.current).sum();
    if !cands.iter().any(Candidate::can_receive) {
        let (outcome, note) = if current_total > 0 {
            (Outcome::FailStatic, Note::FailStatic)
        } else if req.spec.replicas <= 0 {
            // Nothing was asked (standby replicas never exceed replicas), and nothing runs:
            // satisfied, whatever state the clusters are in.
            (Outcome::Satisfied, Note::NothingToPlace)
        } else {
            (Outcome::Unschedulable, Note::NothingPlaceable)
        };
        notes.push(note);
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

    let (preferred, selected) = preferred_placement(&spec, &mut cands, &mut notes);
    let out = match req.rebalance {
        Rebalance::ToPreferred => preferred.clone(),
        Rebalance::Sticky => sticky(&cands, &preferred, &selected),
    };

    let placed: u64 = out.iter().sum();
    let wanted = wanted_total(&spec, &cands);
    if placed < wanted {
        notes.push(Note::Shortfall { placed, wanted });
    }
    check_spread(&spec, &cands, &out, &mut notes);
    if out != preferred {
        notes.push(Note::FailbackPending {
            preferred: render(&cands, &preferred),
        });
    }
    let outcome = if placed == 0 && wanted > 0 {
        Outcome::Unschedulable
    } else if placed < wanted || notes.iter().any(Note::is_spread) {
        Outcome::Degraded
    } else {
        Outcome::Satisfied
    };
    explain(&spec, &cands, &preferred, &out, outcome, notes)
}

/// The placement the spec prefers, given who may receive, and which clusters may keep replicas
/// in a sticky decision (Divided and Duplicated: the selected ones, so that `maxClusters` holds;
/// Failover: any usable cluster, so that replicas stay on a fallback tier until failback).
/// Hold clusters keep what they hold.
fn preferred_placement(
    spec: &CompiledSpec,
    cands: &mut [Candidate],
    notes: &mut Vec<Note>,
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
