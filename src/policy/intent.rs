//! What one reconcile of a workload sets out to do, decided before anything is written: the
//! engine's decision, whether it starts a move (failover, failback) and whether the move budget
//! lets it; then, from what the members answered to the apply, whether that move really starts
//! or is postponed. Pure: the controller carries the intent out and writes the status built from
//! it ([`super::status::build`]).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::moves::{self, Admission, Move, MoveKind};
use super::reasons::{Problem, ProblemReason};
use super::rebalance::Why;
use super::request::{Decided, placement_in_force};
use crate::api::MultiCloudWorkload;
use crate::api::workload::FailoverRecord;
use crate::placement::{Decision, Rebalance};
use kube::ResourceExt;

/// A reconcile's intent for one workload.
#[derive(Clone, Debug)]
pub struct Intent {
    /// The placement to work toward: the engine's, or the one in force when a move is held.
    pub decision: Decision,
    pub rebalance: Rebalance,
    pub why: Why,
    /// The move this reconcile starts, if its targets take the replicas ([`settle`]).
    pub starting: Option<Move>,
    /// Start times of the moves within the budget's window, this one included.
    pub recent_moves: Vec<Time>,
    pub last_failover: Option<FailoverRecord>,
    /// When the budget frees up, if it refused a move.
    pub budget_until: Option<Timestamp>,
    /// What kept the workload from its placement so far (the apply adds its own).
    pub problems: Vec<Problem>,
}

/// Pauses a workload's moves during an incident (any value but `false`): the placement in force
/// is kept as it is, whatever happens to its clusters, until the annotation is removed.
pub const PAUSE_ANNOTATION: &str = "bascule.dev/pause-moves";

/// Who paused `w`'s moves, if anyone: the operator (`--pause-moves`) or its annotation.
pub fn paused_by(w: &MultiCloudWorkload, operator_wide: bool) -> Option<&'static str> {
    if operator_wide {
        return Some("the operator (--pause-moves)");
    }
    w.annotations()
        .get(PAUSE_ANNOTATION)
        .filter(|v| v.trim() != "false")
        .map(|_| "the annotation bascule.dev/pause-moves")
}

/// Takes the engine's decision for `w` as the intent, unless moves are paused (`paused`: by
/// whom) or it is a move the workload's budget refuses: then the placement in force is kept and
/// the status says why. A first placement is not a move: it goes ahead while paused.
pub fn admit(
    w: &MultiCloudWorkload,
    decided: Decided,
    now: Timestamp,
    paused: Option<&str>,
) -> Intent {
    let previous = w.status.clone().unwrap_or_default();
    let current = placement_in_force(&previous);
    let budget = &w.spec.failover.budget;
    let Decided {
        decision,
        rebalance,
        why,
        leaving,
    } = decided;
    let mut intent = Intent {
        decision,
        rebalance,
        why,
        starting: None,
        recent_moves: moves::recent(budget, &previous.recent_moves, now),
        last_failover: previous.last_failover.clone(),
        budget_until: None,
        problems: Vec::new(),
    };
    if let Some(by) = paused
        && !current.is_empty()
        && intent.decision.placement != current
    {
        let message = format!(
            "moves paused by {by}: the placement in force ({}) is kept; unpaused, it would be {}",
            crate::placement::input::summary(current.iter().map(|(n, r)| (n, u64::from(*r)))),
            intent.decision.summary()
        );
        intent.decision = moves::held(intent.decision, &current, &message, "held: paused");
        intent.problems.push(Problem {
            reason: ProblemReason::MovesPaused,
            message,
        });
        return intent;
    }
    let Some(m) = moves::classify(&current, &intent.decision, rebalance, why) else {
        return intent;
    };
    if m.from.iter().all(|c| leaving.contains(c)) {
        // The platform team removed the clusters it leaves: not the workload's failure, so
        // not paid for from its budget (and never refused by it).
        intent.last_failover = Some(moves::started(&m, now));
        intent.starting = Some(m);
        return intent;
    }
    match moves::admit(budget, &previous.recent_moves, now) {
        Admission::Refused { message, until } => {
            intent.budget_until = Some(until);
            intent.decision =
                moves::held(intent.decision, &current, &message, "refused: budget spent");
            intent.problems.push(Problem {
                reason: ProblemReason::MoveBudgetExhausted,
                message,
            });
        }
        Admission::Start(recent) => {
            intent.recent_moves = recent;
            intent.last_failover = Some(moves::started(&m, now));
            intent.starting = Some(m);
        }
    }
    intent
}

/// What became of the move an intent started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// No move was starting.
    NoMove,
    /// Its targets took the replicas: the move is under way.
    Started(Move),
    /// A target refused them (often down too, not yet detected): nothing is recorded, the
    /// placement in force is kept, and the next reconcile tries again.
    Postponed(String),
}

/// Settles the starting move from the apply: `failed` holds the clusters whose sync failed,
/// with what went wrong. A move starts once its targets have taken the new replicas: recording
/// it when a target refused them would carry it out on that member's return, against what it
/// runs then.
pub fn settle(
    w: &MultiCloudWorkload,
    mut intent: Intent,
    failed: &BTreeMap<String, String>,
    now: Timestamp,
) -> (Intent, Settled) {
    let Some(m) = intent.starting.take() else {
        return (intent, Settled::NoMove);
    };
    let refused: Vec<&str> =
        m.to.iter()
            .filter_map(|t| failed.get(t).map(String::as_str))
            .collect();
    if refused.is_empty() {
        intent.starting = Some(m.clone());
        return (intent, Settled::Started(m));
    }
    let previous = w.status.clone().unwrap_or_default();
    let word = match m.kind {
        MoveKind::Failover => "failover",
        MoveKind::Failback => "failback",
    };
    let message = format!(
        "{word} to {} postponed: {}",
        m.to.join(", "),
        refused.join("; ")
    );
    intent.recent_moves = moves::recent(&w.spec.failover.budget, &previous.recent_moves, now);
    intent.last_failover = previous.last_failover.clone();
    intent.decision = moves::held(
        intent.decision,
        &placement_in_force(&previous),
        &message,
        "postponed: its target did not take the replicas",
    );
    intent.problems.push(Problem {
        reason: ProblemReason::MovePostponed,
        message: message.clone(),
    });
    (intent, Settled::Postponed(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::{ClusterPlacementStatus, MultiCloudWorkloadStatus};
    use crate::api::{ClusterHealth, Provider};
    use crate::placement::ClusterSnapshot;
    use crate::policy::request::decision_for;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    /// "Prefer eks, else gke", 4 replicas, placed on eks at generation 1.
    fn workload(max_moves: i32, recent: &[i64]) -> MultiCloudWorkload {
        let mut w: MultiCloudWorkload = serde_json::from_value(serde_json::json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MultiCloudWorkload",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "generation": 1},
            "spec": {
                "replicas": 4,
                "placement": {"mode": "Failover", "tiers": [
                    {"clusterNames": ["eks"]}, {"clusterNames": ["gke"]}]},
                "failover": {"budget": {"maxMoves": max_moves, "windowSeconds": 3600}},
                "template": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                            "metadata": {"name": "web"}}]},
            },
        }))
        .unwrap();
        w.status = Some(MultiCloudWorkloadStatus {
            observed_generation: Some(1),
            clusters: vec![ClusterPlacementStatus {
                name: "eks".into(),
                desired: 4,
                ..ClusterPlacementStatus::default()
            }],
            recent_moves: recent.iter().map(|s| Time(at(*s))).collect(),
            ..MultiCloudWorkloadStatus::default()
        });
        w
    }

    fn clusters(eks: ClusterHealth, eks_since: i64) -> Vec<ClusterSnapshot> {
        let mut e = ClusterSnapshot::healthy("eks", Provider::Aws, "us-east-1");
        e.health = eks;
        e.health_since = Some(at(eks_since));
        let mut g = ClusterSnapshot::healthy("gke", Provider::Gcp, "europe-west1");
        g.health_since = Some(at(-3600));
        vec![e, g]
    }

    /// The intent with eks in `eks` health for the last minute.
    fn intent(w: &MultiCloudWorkload, eks: ClusterHealth) -> Intent {
        admit(w, decision_for(w, &clusters(eks, -60), at(0)), at(0), None)
    }

    #[test]
    fn paused_moves_keep_the_placement_in_force_and_say_so() {
        let mut w = workload(3, &[]);
        for (operator_wide, annotation, by) in [
            (true, None, "the operator (--pause-moves)"),
            (
                false,
                Some("true"),
                "the annotation bascule.dev/pause-moves",
            ),
            (false, Some(""), "the annotation bascule.dev/pause-moves"),
        ] {
            w.metadata.annotations =
                annotation.map(|v| [(PAUSE_ANNOTATION.to_string(), v.to_string())].into());
            let paused = paused_by(&w, operator_wide);
            assert_eq!(paused, Some(by));
            let d = decision_for(&w, &clusters(ClusterHealth::Unhealthy, -60), at(0));
            let i = admit(&w, d, at(0), paused);
            assert_eq!(i.decision.summary(), "eks=4", "held where it was");
            assert!(i.starting.is_none(), "no move starts");
            assert!(i.recent_moves.is_empty(), "nothing counted");
            assert_eq!(i.problems.len(), 1);
            assert_eq!(i.problems[0].reason, ProblemReason::MovesPaused);
            assert_eq!(
                i.problems[0].message,
                format!(
                    "moves paused by {by}: the placement in force (eks=4) is kept; unpaused, it would be gke=4"
                )
            );
        }
        // Nothing to hold: no problem to report.
        let d = decision_for(&w, &clusters(ClusterHealth::Healthy, -60), at(0));
        let i = admit(&w, d, at(0), paused_by(&w, true));
        assert!(i.problems.is_empty());
        assert_eq!(i.decision.summary(), "eks=4");
        // `false` is not a pause; unpaused, the failover starts.
        w.metadata.annotations = Some([(PAUSE_ANNOTATION.to_string(), "false".into())].into());
        assert_eq!(paused_by(&w, false), None);
        assert!(intent(&w, ClusterHealth::Unhealthy).starting.is_some());
    }

    #[test]
    fn leaving_a_removed_member_costs_no_budget() {
        // The budget is spent, and eks's MemberCluster is being deleted.
        let w = workload(1, &[-100]);
        let mut snapshots = clusters(ClusterHealth::Healthy, -3600);
        snapshots[0].taints.push(crate::api::Taint {
            key: crate::api::member_cluster::REMOVAL_TAINT.into(),
            value: None,
            effect: crate::api::TaintEffect::NoExecute,
        });
        let i = admit(&w, decision_for(&w, &snapshots, at(0)), at(0), None);
        let m = i.starting.as_ref().expect("the replicas leave eks");
        assert_eq!(
            (m.from.as_slice(), m.to.as_slice()),
            (&["eks".to_string()][..], &["gke".to_string()][..])
        );
        assert_eq!(i.decision.summary(), "gke=4");
        assert_eq!(i.recent_moves.len(), 1, "not counted");
        assert!(i.problems.is_empty(), "{:?}", i.problems);
    }

    #[test]
    fn a_first_placement_is_not_held_by_a_pause() {
        let mut w = workload(3, &[]);
        w.status = None;
        let d = decision_for(&w, &clusters(ClusterHealth::Healthy, -60), at(0));
        let i = admit(&w, d, at(0), Some("the operator (--pause-moves)"));
        assert_eq!(i.decision.summary(), "eks=4");
        assert!(i.problems.is_empty());
    }

    #[test]
    fn a_failure_starts_a_failover_within_the_budget() {
        let w = workload(3, &[-100]);
        let i = intent(&w, ClusterHealth::Unhealthy);
        let m = i.starting.as_ref().expect("a move");
        assert_eq!(
            (m.kind, &m.from, &m.to),
            (
                MoveKind::Failover,
                &vec!["eks".to_string()],
                &vec!["gke".to_string()]
            )
        );
        assert_eq!(i.decision.summary(), "gke=4");
        assert_eq!(i.recent_moves.len(), 2, "the new move counts");
        assert!(
            i.last_failover
                .as_ref()
                .is_some_and(|r| r.completed_at.is_none())
        );
        assert!(i.problems.is_empty());
    }

    #[test]
    fn a_spent_budget_keeps_the_placement_in_force_and_says_until_when() {
        let w = workload(2, &[-200, -100]);
        let i = intent(&w, ClusterHealth::Unhealthy);
        assert!(i.starting.is_none());
        assert_eq!(i.decision.summary(), "eks=4", "held where it was");
        assert_eq!(i.problems[0].reason, ProblemReason::MoveBudgetExhausted);
        assert_eq!(i.budget_until, Some(at(-200 + 3600)));
        assert_eq!(i.recent_moves.len(), 2, "nothing recorded");
    }

    #[test]
    fn no_move_when_nothing_failed() {
        let w = workload(3, &[]);
        let i = intent(&w, ClusterHealth::Healthy);
        assert!(i.starting.is_none());
        assert_eq!(i.decision.summary(), "eks=4");
        let (i, settled) = settle(&w, i, &BTreeMap::new(), at(0));
        assert_eq!(settled, Settled::NoMove);
        assert!(i.problems.is_empty());
    }

    #[test]
    fn a_target_that_refuses_the_replicas_postpones_the_move() {
        let w = workload(3, &[-100]);
        let i = intent(&w, ClusterHealth::Unhealthy);
        let failed = BTreeMap::from([("gke".to_string(), "gke: connection refused".to_string())]);
        let (i, settled) = settle(&w, i, &failed, at(0));
        let Settled::Postponed(message) = settled else {
            panic!("{settled:?}")
        };
        assert_eq!(
            message,
            "failover to gke postponed: gke: connection refused"
        );
        assert_eq!(
            i.decision.summary(),
            "eks=4",
            "the placement in force is kept"
        );
        assert_eq!(i.recent_moves.len(), 1, "the move is not counted");
        assert_eq!(i.last_failover, None, "nor recorded");
        assert_eq!(
            i.problems.last().map(|p| p.reason),
            Some(ProblemReason::MovePostponed)
        );
        assert!(i.starting.is_none());
    }

    #[test]
    fn a_source_that_fails_does_not_postpone_the_move() {
        let w = workload(3, &[]);
        let i = intent(&w, ClusterHealth::Unhealthy);
        let failed = BTreeMap::from([("eks".to_string(), "eks: timeout".to_string())]);
        let (i, settled) = settle(&w, i, &failed, at(0));
        assert!(matches!(settled, Settled::Started(_)), "{settled:?}");
        assert_eq!(i.decision.summary(), "gke=4");
        assert!(i.starting.is_some());
    }

    #[test]
    fn an_application_failure_moves_and_is_remembered_for_the_generation() {
        // The workload has been unavailable on a healthy eks for longer than its toleration
        // (300 s by default): it moves, and the failure keeps it away for this generation.
        let mut w = workload(3, &[]);
        let status = w.status.as_mut().unwrap();
        status.clusters[0].unavailable_since = Some(Time(at(-400)));
        let i = intent(&w, ClusterHealth::Healthy);
        assert_eq!(
            i.starting.as_ref().map(|m| m.kind),
            Some(MoveKind::Failover)
        );
        assert_eq!(i.decision.summary(), "gke=4");

        let status = w.status.as_mut().unwrap();
        status.clusters = vec![ClusterPlacementStatus {
            name: "gke".into(),
            desired: 4,
            ..ClusterPlacementStatus::default()
        }];
        status.application_failures = vec![crate::api::workload::ApplicationFailure {
            cluster: "eks".into(),
            since: Time(at(-400)),
            observed_generation: Some(1),
        }];
        // eks healthy for an hour: the failback window is over, but not for this generation.
        let stay = admit(
            &w,
            decision_for(&w, &clusters(ClusterHealth::Healthy, -3600), at(0)),
            at(0),
            None,
        );
        assert_eq!(stay.why, Why::ClustersStable);
        assert_eq!(
            stay.decision.summary(),
            "gke=4",
            "no return to where it failed"
        );
        assert!(stay.starting.is_none());
    }
}
