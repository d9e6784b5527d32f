//! The status a MultiCloudWorkload should show, from the decision and what the members report.
//! Pure; the reconciler writes it only when it differs from what is there.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::intent::Intent;
use super::moves;
use super::reasons::Problem;
use super::request::fresh_failback_request;
use crate::api::conditions::{Desired, merge};
use crate::api::workload::{
    ApplicationFailure, ClusterDecisionStatus, ClusterPlacementState, ClusterPlacementStatus,
    DecisionStatus, MultiCloudWorkloadStatus, ReplicaCounts,
};
use crate::api::{FailbackMode, MultiCloudWorkload, Provider};
use crate::placement::{Decision, Outcome};

pub use crate::sync::observe::MemberReplicas;

/// Per cluster: the observation, or `None` when the member could not be asked.
pub type Observations = BTreeMap<String, Option<MemberReplicas>>;

/// The whole status of `workload` after a reconcile carried out `intent`: rows, totals and
/// conditions from the decision and what the members report, the kinds placed, the move record
/// (completed once the target is available and nothing is held back), the failback request
/// handled.
pub fn of_intent(
    workload: &MultiCloudWorkload,
    intent: &Intent,
    providers: &BTreeMap<String, Provider>,
    observed: &Observations,
    kinds: Vec<String>,
    held_back: bool,
    now: Timestamp,
) -> MultiCloudWorkloadStatus {
    let mut status = build(
        workload,
        &intent.decision,
        providers,
        observed,
        &intent.problems,
        now,
    );
    status.kinds = kinds;
    let previous = workload.status.clone().unwrap_or_default();
    // A failback request (either mode) also lifts the memory of where the workload failed.
    if let Some(request) = fresh_failback_request(workload, &previous) {
        status.handled_failback_request = Some(request.clone());
        status.application_failures.clear();
    }
    let arrived = !held_back
        && status
            .replicas
            .as_ref()
            .is_some_and(|r| r.available >= r.desired);
    status.last_failover = match intent.last_failover.clone() {
        Some(r) if r.completed_at.is_none() && arrived => Some(moves::completed(&r, now)),
        other => other,
    };
    status.recent_moves = intent.recent_moves.clone();
    status
}

/// Whether `after` differs from `before` only in how many replicas are ready or available (the
/// totals, the rows, and the `Ready` message that counts them): news that may wait a moment to
/// be written with the next change. A change of state, condition, placement, move record or
/// failure clock is never only that.
pub fn only_counts_differ(
    before: &MultiCloudWorkloadStatus,
    after: &MultiCloudWorkloadStatus,
) -> bool {
    fn without_counts(s: &MultiCloudWorkloadStatus) -> MultiCloudWorkloadStatus {
        let mut s = s.clone();
        if let Some(r) = s.replicas.as_mut() {
            (r.ready, r.available) = (0, 0);
        }
        for row in &mut s.clusters {
            (row.ready, row.available) = (0, 0);
        }
        for c in s.conditions.iter_mut().filter(|c| c.type_ == "Ready") {
            c.message.clear();
        }
        s
    }
    before != after && without_counts(before) == without_counts(after)
}

/// The parts of the status that differ between `before` and `after`, for the log.
pub fn changed_parts(
    before: &MultiCloudWorkloadStatus,
    after: &MultiCloudWorkloadStatus,
) -> Vec<String> {
    let mut parts = Vec::new();
    let mut differ = |name: &str, b: bool| {
        if b {
            parts.push(name.to_string());
        }
    };
    differ(
        "observedGeneration",
        before.observed_generation != after.observed_generation,
    );
    differ("replicas", before.replicas != after.replicas);
    differ("placement", before.placement != after.placement);
    differ("clusters", before.clusters != after.clusters);
    differ("decision", before.decision != after.decision);
    differ("lastFailover", before.last_failover != after.last_failover);
    differ("kinds", before.kinds != after.kinds);
    differ("recentMoves", before.recent_moves != after.recent_moves);
    differ(
        "handledFailbackRequest",
        before.handled_failback_request != after.handled_failback_request,
    );
    differ(
        "applicationFailures",
        before.application_failures != after.application_failures,
    );
    for c in &after.conditions {
        let was = before.conditions.iter().find(|b| b.type_ == c.type_);
        if was.is_none_or(|b| {
            (&b.status, &b.reason, &b.message) != (&c.status, &c.reason, &c.message)
        }) {
            parts.push(format!("{}={}/{}", c.type_, c.status, c.reason));
        }
    }
    parts
}

/// The rows, totals and conditions for `workload` after `decision`, given the members'
/// observations and the problems met while applying it; the rest is kept from the previous
/// status ([`of_intent`] sets it).
pub fn build(
    workload: &MultiCloudWorkload,
    decision: &Decision,
    providers: &BTreeMap<String, Provider>,
    observed: &Observations,
    problems: &[Problem],
    now: Timestamp,
) -> MultiCloudWorkloadStatus {
    let previous = workload.status.clone().unwrap_or_default();
    let mut names: Vec<&String> = decision.placement.keys().chain(observed.keys()).collect();
    names.sort();
    names.dedup();

    let mut rows = Vec::new();
    let (mut ready, mut available, mut unreachable) = (0u32, 0u32, Vec::new());
    for name in names {
        let desired = decision.placement.get(name).copied().unwrap_or(0);
        let seen = observed.get(name).copied().flatten();
        if observed.get(name).is_some_and(Option::is_none) {
            unreachable.push(name.as_str());
        }
        let o = seen.unwrap_or_default();
        if desired == 0 && o.replicas == 0 && seen.is_some() {
            continue;
        }
        let state = match (desired, seen) {
            (_, None) => ClusterPlacementState::Pending,
            (d, Some(o)) if o.replicas > d => ClusterPlacementState::Draining,
            (d, Some(o)) if o.available >= d => ClusterPlacementState::Active,
            _ => ClusterPlacementState::Surging,
        };
        ready += o.ready.min(desired);
        available += o.available.min(desired);
        // No replica available where some should be, though the object is there: the workload
        // fails here (not the cluster, which answers), the clock of application failover.
        let failing = desired > 0 && o.replicas > 0 && o.available == 0;
        let unavailable_since = failing.then(|| {
            previous
                .clusters
                .iter()
                .find(|c| &c.name == name)
                .and_then(|c| c.unavailable_since.clone())
                .unwrap_or(Time(now))
        });
        rows.push(ClusterPlacementStatus {
            name: name.clone(),
            provider: providers.get(name).copied(),
            desired: desired as i32,
            ready: o.ready as i32,
            available: o.available as i32,
            state,
            unavailable_since,
        });
    }

    let desired_total = decision.total() as u32;
    let placement = (!decision.placement.is_empty()).then(|| decision.summary());
    let generation = workload.metadata.generation;
    let all_available = available >= desired_total;
    let (ready_ok, reason, message) = match decision.outcome {
        Outcome::Unschedulable => (
            false,
            "Unschedulable",
            first_note(decision, "no cluster may receive replicas"),
        ),
        Outcome::FailStatic => (
            false,
            "FailStatic",
            format!(
                "no cluster may receive replicas; keeping {} as it was",
                decision.summary()
            ),
        ),
        _ if !all_available => (
            false,
            "Progressing",
            format!(
                "{available}/{desired_total} replicas available; placing {}",
                decision.summary()
            ),
        ),
        _ => (
            true,
            "Available",
            format!(
                "{available}/{desired_total} replicas available on {}",
                decision.summary()
            ),
        ),
    };
    let degraded =
        decision.outcome == Outcome::Degraded || !unreachable.is_empty() || !problems.is_empty();
    let degraded_reason = match problems.first() {
        Some(p) => p.reason.as_str(),
        None if degraded => "ConstraintsNotMet",
        None => "AsSpecified",
    };
    let degraded_message = if !problems.is_empty() {
        problems
            .iter()
            .map(|p| p.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    } else if !unreachable.is_empty() {
        format!(
            "cannot reach {}; their replicas are not counted",
            unreachable.join(", ")
        )
    } else {
        decision.notes.join("; ")
    };
    let conditions = merge(
        &previous.conditions,
        &[
            Desired::new("Ready", ready_ok, reason, message),
            Desired::new(
                "Progressing",
                !all_available,
                if all_available { "Complete" } else { "Placing" },
                "",
            ),
            Desired::new(
                "Degraded",
                degraded,
                degraded_reason,
                degraded_message.clone(),
            ),
            // kstatus' own pair (Flux health checks, kstatus-aware tools): Reconciling while the
            // replicas are not all available yet, Stalled when only a person can unblock it.
            Desired::new(
                "Reconciling",
                !all_available,
                if all_available { "Complete" } else { "Placing" },
                "",
            ),
            stalled(decision, problems, &degraded_message),
            failback_pending(workload, decision),
        ],
        generation,
        now,
    );

    let application_failures = application_failures(workload, &previous, &rows, now);
    MultiCloudWorkloadStatus {
        observed_generation: generation,
        conditions,
        replicas: Some(ReplicaCounts {
            desired: desired_total as i32,
            ready: ready as i32,
            available: available as i32,
        }),
        placement,
        clusters: rows,
        decision: Some(DecisionStatus {
            outcome: decision.outcome.to_string(),
            message: decision
                .notes
                .first()
                .cloned()
                .unwrap_or_else(|| format!("placed {}", decision.summary())),
            clusters: decision
                .clusters
                .iter()
                .map(|c| ClusterDecisionStatus {
                    name: c.name.clone(),
                    selected: c.selected,
                    replicas: c.replicas as i32,
                    score: c.score as i32,
                    reason: c.reason.clone(),
                })
                .collect(),
        }),
        last_failover: previous.last_failover,
        kinds: previous.kinds,
        recent_moves: previous.recent_moves,
        handled_failback_request: previous.handled_failback_request,
        application_failures,
    }
}

/// Where this generation of the workload has failed: those remembered (same generation), plus
/// clusters where it has now been unavailable for `applicationTolerationSeconds`.
fn application_failures(
    workload: &MultiCloudWorkload,
    previous: &MultiCloudWorkloadStatus,
    rows: &[ClusterPlacementStatus],
    now: Timestamp,
) -> Vec<ApplicationFailure> {
    let generation = workload.metadata.generation;
    let mut out: Vec<ApplicationFailure> = previous
        .application_failures
        .iter()
        .filter(|f| f.observed_generation == generation)
        .cloned()
        .collect();
    let failover = &workload.spec.failover;
    let toleration = SignedDuration::from_secs(i64::from(failover.application_toleration_seconds));
    if !failover.enabled || failover.application_toleration_seconds <= 0 {
        return out;
    }
    // The previous rows too: the decision that moves the replicas away sets the cluster's
    // desired count to 0, and its new row no longer says it was failing.
    for row in previous.clusters.iter().chain(rows) {
        let Some(since) = &row.unavailable_since else {
            continue;
        };
        if crate::api::time::after(since.0, toleration) <= now
            && !out.iter().any(|f| f.cluster == row.name)
        {
            out.push(ApplicationFailure {
                cluster: row.name.clone(),
                since: since.clone(),
                observed_generation: generation,
            });
        }
    }
    out.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    out
}

/// kstatus `Stalled`: nothing can be placed anywhere, or a problem needs a person.
fn stalled(decision: &Decision, problems: &[Problem], degraded_message: &str) -> Desired {
    if decision.outcome == Outcome::Unschedulable {
        return Desired::new(
            "Stalled",
            true,
            "Unschedulable",
            first_note(decision, "no cluster may receive replicas"),
        );
    }
    match problems.iter().find(|p| p.reason.stalls()) {
        Some(p) => Desired::new("Stalled", true, p.reason.as_str(), degraded_message),
        None => Desired::new("Stalled", false, "MakingProgress", ""),
    }
}

/// `FailbackPending`: the replicas are not where the spec prefers, and will return (after the
/// stabilization window) or wait to be asked.
fn failback_pending(workload: &MultiCloudWorkload, decision: &Decision) -> Desired {
    let pending = matches!(decision.outcome, Outcome::Satisfied | Outcome::Degraded)
        && !decision.preferred.is_empty()
        && decision.preferred != decision.summary();
    if !pending {
        return Desired::new("FailbackPending", false, "AtPreferred", "");
    }
    let failback = &workload.spec.failover.failback;
    let message = match failback.mode {
        FailbackMode::Automatic => format!(
            "running {}; returns to {} once every cluster has kept its health for {}s",
            decision.summary(),
            decision.preferred,
            failback.stabilization_window_seconds
        ),
        FailbackMode::Manual => format!(
            "running {}; {} is possible again: annotate {}=<new value> to return",
            decision.summary(),
            decision.preferred,
            super::rebalance::FAILBACK_ANNOTATION
        ),
    };
    Desired::new(
        "FailbackPending",
        true,
        format!("{:?}", failback.mode),
        message,
    )
}

fn first_note(d: &Decision, fallback: &str) -> String {
    d.notes
        .first()
        .cloned()
        .unwrap_or_else(|| fallback.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{ClusterSnapshot, Rebalance, Replicas, Request, decide};
    use crate::policy::reasons::ProblemReason;
    use k8s_openapi::jiff::SignedDuration;

    /// [`build`] without provider annotations (most tests need none).
    fn built(
        w: &MultiCloudWorkload,
        d: &Decision,
        obs: &Observations,
        problems: &[Problem],
        now: Timestamp,
    ) -> MultiCloudWorkloadStatus {
        build(w, d, &BTreeMap::new(), obs, problems, now)
    }

    fn workload() -> MultiCloudWorkload {
        let mut w: MultiCloudWorkload =
            serde_saphyr::from_str(include_str!("../../examples/divided.yaml")).unwrap();
        w.metadata.generation = Some(4);
        w
    }

    fn decision(w: &MultiCloudWorkload, clusters: &[ClusterSnapshot]) -> Decision {
        let none = BTreeMap::new();
        decide(&Request {
            spec: &w.spec,
            clusters,
            current: &Replicas::new(),
            rebalance: Rebalance::ToPreferred,
            now: Timestamp::UNIX_EPOCH,
            app_unavailable_since: &none,
        })
    }

    fn clusters() -> Vec<ClusterSnapshot> {
        vec![
            ClusterSnapshot::healthy("eks-use1", Provider::Aws, "us-east-1"),
            ClusterSnapshot::healthy("gke-euw1", Provider::Gcp, "europe-west1"),
        ]
    }

    fn seen(replicas: u32, available: u32) -> Option<MemberReplicas> {
        Some(MemberReplicas {
            replicas,
            ready: available,
            available,
        })
    }

    #[test]
    fn ready_when_every_replica_is_available() {
        let w = workload();
        let d = decision(&w, &clusters());
        let providers = [
            ("eks-use1".to_string(), Provider::Aws),
            ("gke-euw1".to_string(), Provider::Gcp),
        ]
        .into();
        let obs: Observations = [
            ("eks-use1".to_string(), seen(7, 7)),
            ("gke-euw1".to_string(), seen(3, 3)),
        ]
        .into();
        let s = build(&w, &d, &providers, &obs, &[], Timestamp::UNIX_EPOCH);
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Available")
        );
        assert_eq!(
            ready.message,
            "10/10 replicas available on eks-use1=7,gke-euw1=3"
        );
        assert_eq!(s.placement.as_deref(), Some("eks-use1=7,gke-euw1=3"));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(
            s.clusters.iter().map(|c| c.state).collect::<Vec<_>>(),
            [ClusterPlacementState::Active; 2]
        );
        assert_eq!(s.replicas.unwrap().available, 10);
    }

    /// Counts rising toward the target may wait to be written; the arrival (Ready turns True),
    /// a new state or a failure clock may not.
    #[test]
    fn only_counts_differ_while_replicas_come_up() {
        let w = workload();
        let d = decision(&w, &clusters());
        let at = |eks: (u32, u32), gke: (u32, u32)| {
            let obs: Observations = [
                ("eks-use1".to_string(), seen(eks.0, eks.1)),
                ("gke-euw1".to_string(), seen(gke.0, gke.1)),
            ]
            .into();
            built(&w, &d, &obs, &[], Timestamp::UNIX_EPOCH)
        };
        let (one, two, done) = (at((7, 1), (3, 1)), at((7, 4), (3, 2)), at((7, 7), (3, 3)));
        assert!(only_counts_differ(&one, &two));
        assert!(!only_counts_differ(&two, &two), "no change at all");
        assert!(!only_counts_differ(&two, &done), "Ready turns True");
        assert!(
            !only_counts_differ(&at((7, 1), (3, 2)), &at((7, 1), (3, 3))),
            "gke-euw1's row turns Active"
        );
        assert!(
            !only_counts_differ(&at((7, 1), (3, 1)), &at((7, 0), (3, 1))),
            "eks-use1's failure clock starts"
        );
    }

    #[test]
    fn progressing_and_degraded_while_a_member_is_unreachable() {
        let w = workload();
        let d = decision(&w, &clusters());
        let obs: Observations = [
            ("eks-use1".to_string(), seen(7, 4)),
            ("gke-euw1".to_string(), None),
        ]
        .into();
        let s = built(&w, &d, &obs, &[], Timestamp::UNIX_EPOCH);
        let get = |t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(get("Ready").status, "False");
        assert_eq!(
            get("Ready").message,
            "4/10 replicas available; placing eks-use1=7,gke-euw1=3"
        );
        assert_eq!(get("Degraded").status, "True");
        assert_eq!(
            get("Degraded").message,
            "cannot reach gke-euw1; their replicas are not counted"
        );
        let states: Vec<_> = s.clusters.iter().map(|c| c.state).collect();
        assert_eq!(
            states,
            [
                ClusterPlacementState::Surging,
                ClusterPlacementState::Pending
            ]
        );
    }

    #[test]
    fn a_cluster_left_with_replicas_is_draining() {
        let w = workload();
        let mut cs = clusters();
        cs[1].health = crate::api::ClusterHealth::Unhealthy;
        let d = decision(&w, &cs);
        let obs: Observations = [
            ("eks-use1".to_string(), seen(10, 10)),
            ("gke-euw1".to_string(), seen(3, 3)),
        ]
        .into();
        let s = built(&w, &d, &obs, &[], Timestamp::UNIX_EPOCH);
        assert_eq!(s.clusters[1].state, ClusterPlacementState::Draining);
        assert_eq!(s.clusters[1].desired, 0);
    }

    #[test]
    fn failback_pending_and_unavailability_are_shown_and_kept() {
        let mut w = workload();
        let mut d = decision(&w, &clusters());
        d.preferred = "eks-use1=10".into();
        let obs: Observations = [
            ("eks-use1".to_string(), seen(7, 0)),
            ("gke-euw1".to_string(), seen(3, 3)),
        ]
        .into();
        let t0 = Timestamp::from_second(1_790_000_000).unwrap();
        let s = built(&w, &d, &obs, &[], t0);
        let pending = s
            .conditions
            .iter()
            .find(|c| c.type_ == "FailbackPending")
            .unwrap();
        assert_eq!(
            (pending.status.as_str(), pending.reason.as_str()),
            ("True", "Automatic")
        );
        assert!(
            pending.message.contains("returns to eks-use1=10"),
            "{}",
            pending.message
        );
        assert_eq!(s.clusters[0].unavailable_since, Some(Time(t0)));
        assert_eq!(s.clusters[1].unavailable_since, None);
        // Still unavailable later: the clock keeps its start.
        w.status = Some(s);
        let later = built(&w, &d, &obs, &[], t0 + SignedDuration::from_secs(30));
        assert_eq!(later.clusters[0].unavailable_since, Some(Time(t0)));
    }

    #[test]
    fn problems_make_the_workload_degraded_with_their_reason() {
        let w = workload();
        let d = decision(&w, &clusters());
        let problems = [Problem {
            reason: ProblemReason::OwnershipConflict,
            message: "gke-euw1: Service shop/web is owned by another owner (no Bascule labels); left untouched".into(),
        }];
        let s = built(
            &w,
            &d,
            &Observations::new(),
            &problems,
            Timestamp::UNIX_EPOCH,
        );
        let degraded = s.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "OwnershipConflict")
        );
        assert_eq!(degraded.message, problems[0].message);
        // A conflict only a person can resolve: kstatus' Stalled says so (Flux fails fast).
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "OwnershipConflict")
        );
        // A member that times out is retried: degraded, not stalled.
        let retried = [Problem {
            reason: ProblemReason::MemberTimeout,
            message: "gke-euw1: no answer within 15s".into(),
        }];
        let s = built(
            &w,
            &d,
            &Observations::new(),
            &retried,
            Timestamp::UNIX_EPOCH,
        );
        let get = |t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(get("Degraded").status, "True");
        assert_eq!(get("Stalled").status, "False");
        assert_eq!(get("Reconciling").status, "True");
    }

    #[test]
    fn application_failures_are_remembered_for_the_generation() {
        let mut w = workload();
        w.spec.failover.application_toleration_seconds = 10;
        let d = decision(&w, &clusters());
        let obs: Observations = [
            ("eks-use1".to_string(), seen(7, 0)),
            ("gke-euw1".to_string(), seen(3, 3)),
        ]
        .into();
        let t0 = Timestamp::from_second(1_790_000_000).unwrap();
        let first = built(&w, &d, &obs, &[], t0);
        assert!(
            first.application_failures.is_empty(),
            "within the toleration"
        );
        let first_clone = first.clone();
        w.status = Some(first);
        let later = built(&w, &d, &obs, &[], t0 + SignedDuration::from_secs(10));
        assert_eq!(
            later.application_failures,
            [ApplicationFailure {
                cluster: "eks-use1".into(),
                since: Time(t0),
                observed_generation: Some(4),
            }]
        );
        // The decision that moves it away (desired 0 there) records it too.
        let mut moving = w.clone();
        moving.status = Some(first_clone);
        let moved = build(
            &moving,
            &decision(&moving, &[clusters()[1].clone()]),
            &BTreeMap::new(),
            &obs,
            &[],
            t0 + SignedDuration::from_secs(10),
        );
        assert_eq!(moved.application_failures, later.application_failures);
        // Moved away (nothing runs there any more): still remembered for this generation.
        w.status = Some(later);
        let gone: Observations = [("gke-euw1".to_string(), seen(10, 10))].into();
        let after = built(&w, &d, &gone, &[], t0 + SignedDuration::from_secs(60));
        assert_eq!(after.application_failures.len(), 1);
        // A new generation forgets it.
        w.status = Some(after);
        w.metadata.generation = Some(5);
        let next = built(&w, &d, &gone, &[], t0 + SignedDuration::from_secs(70));
        assert!(next.application_failures.is_empty());
    }

    #[test]
    fn kstatus_reconciling_and_stalled() {
        let w = workload();
        let d = decision(&w, &clusters());
        let all: Observations = [
            ("eks-use1".to_string(), seen(7, 7)),
            ("gke-euw1".to_string(), seen(3, 3)),
        ]
        .into();
        let s = built(&w, &d, &all, &[], Timestamp::UNIX_EPOCH);
        let get = |t: &str| s.conditions.iter().find(|c| c.type_ == t).unwrap().clone();
        assert_eq!(
            (
                get("Reconciling").status.as_str(),
                get("Stalled").status.as_str()
            ),
            ("False", "False")
        );
        // Nothing may receive and nothing runs: stalled until a cluster can take them.
        let mut cs = clusters();
        for c in &mut cs {
            c.health = crate::api::ClusterHealth::Unhealthy;
        }
        let none = decision(&w, &cs);
        let s = build(
            &w,
            &none,
            &BTreeMap::new(),
            &Observations::new(),
            &[],
            Timestamp::UNIX_EPOCH,
        );
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "Unschedulable")
        );
    }
}
