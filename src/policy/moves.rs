//! Failovers and failbacks as moments in a workload's life: which decisions are moves, the move
//! budget, and the record of the last move (`status.lastFailover`). Pure.
//!
//! A decision is a *move* when replicas leave some clusters for others and the reason is not the
//! user's own change of the spec: a failover (sticky decision: a cluster failed, was drained, or
//! the workload failed there) or a failback (a return to the preferred placement once the
//! clusters are stable, or on request).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::rebalance::Why;
use crate::api::workload::{FailoverRecord, MoveBudget};
use crate::placement::{Decision, Rebalance, Replicas};

/// Failover or failback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveKind {
    Failover,
    Failback,
}

/// A move a decision makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub kind: MoveKind,
    /// Clusters losing replicas.
    pub from: Vec<String>,
    /// Clusters gaining replicas.
    pub to: Vec<String>,
    pub reason: String,
}

/// The move `decision` makes from `current`, if it is one. `why` is the rebalance mode's reason.
pub fn classify(
    current: &Replicas,
    decision: &Decision,
    rebalance: Rebalance,
    why: Why,
) -> Option<Move> {
    if current.is_empty() || why.is_users_change() {
        return None;
    }
    let now = |n: &str| decision.placement.get(n).copied().unwrap_or(0);
    let from: Vec<String> = current
        .iter()
        .filter(|(n, r)| now(n) < **r)
        .map(|(n, _)| n.clone())
        .collect();
    let to: Vec<String> = decision
        .placement
        .iter()
        .filter(|(n, r)| current.get(*n).copied().unwrap_or(0) < **r)
        .map(|(n, _)| n.clone())
        .collect();
    if from.is_empty() || to.is_empty() {
        return None;
    }
    let (kind, reason) = match rebalance {
        Rebalance::Sticky => {
            let reasons: Vec<String> = decision
                .clusters
                .iter()
                .filter(|c| from.contains(&c.name))
                .map(|c| format!("{}: {}", c.name, c.reason))
                .collect();
            (MoveKind::Failover, reasons.join("; "))
        }
        Rebalance::ToPreferred => (
            MoveKind::Failback,
            format!("returning to the preferred placement ({why})"),
        ),
    };
    Some(Move {
        kind,
        from,
        to,
        reason,
    })
}

/// The budget's verdict on starting a move now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start it; these are the recent moves including this one.
    Start(Vec<Time>),
    /// Do not: the budget is spent until `until`.
    Refused { message: String, until: Timestamp },
}

/// Start times within the budget's window, oldest first.
pub fn recent(budget: &MoveBudget, moves: &[Time], now: Timestamp) -> Vec<Time> {
    let window = SignedDuration::from_secs(i64::from(budget.window_seconds.max(0)));
    moves
        .iter()
        .filter(|t| crate::api::time::after(t.0, window) > now)
        .cloned()
        .collect()
}

/// Whether a move may start now under `budget`, given the moves already made.
pub fn admit(budget: &MoveBudget, moves: &[Time], now: Timestamp) -> Admission {
    let mut recent = recent(budget, moves, now);
    let max = budget.max_moves.max(0) as usize;
    if recent.len() >= max {
        let window = SignedDuration::from_secs(i64::from(budget.window_seconds.max(0)));
        let until = recent
            .get(recent.len() - max)
            .map_or(now, |oldest| crate::api::time::after(oldest.0, window));
        return Admission::Refused {
            message: format!(
                "move budget spent: {} move(s) in the last {}s (spec.failover.budget); staying as placed until {until}",
                recent.len(),
                budget.window_seconds
            ),
            until,
        };
    }
    recent.push(Time(now));
    Admission::Start(recent)
}

/// The record of a move that starts now.
pub fn started(m: &Move, now: Timestamp) -> FailoverRecord {
    let word = match m.kind {
        MoveKind::Failover => "failover",
        MoveKind::Failback => "failback",
    };
    FailoverRecord {
        from: m.from.clone(),
        to: m.to.clone(),
        reason: format!("{word}: {}", m.reason),
        started_at: Time(now),
        completed_at: None,
        duration_seconds: None,
        summary: format!("{} → {} (moving)", m.from.join(","), m.to.join(",")),
    }
}

/// The record once the target placement is available and nothing is held back any more.
pub fn completed(record: &FailoverRecord, now: Timestamp) -> FailoverRecord {
    let seconds = now
        .duration_since(record.started_at.0)
        .as_secs_f64()
        .max(0.0);
    let seconds = (seconds * 10.0).round() / 10.0;
    FailoverRecord {
        completed_at: Some(Time(now)),
        duration_seconds: Some(seconds),
        summary: format!(
            "{} → {} in {seconds}s",
            record.from.join(","),
            record.to.join(",")
        ),
        ..record.clone()
    }
}

/// Whether the record is of a failback (its reason says so).
pub fn is_failback(record: &FailoverRecord) -> bool {
    record.reason.starts_with("failback")
}

/// `decision`, but keeping `current` as the placement: a move refused (`why`, e.g. "budget
/// spent") or postponed, with `message` as the first note.
pub fn held(mut decision: Decision, current: &Replicas, message: &str, why: &str) -> Decision {
    decision.placement = current.clone();
    for c in &mut decision.clusters {
        let keep = current.get(&c.name).copied().unwrap_or(0);
        if keep != c.replicas {
            c.reason = format!("{}; move {why}", c.reason);
        }
        c.replicas = keep;
        c.selected = keep > 0;
    }
    decision.notes.insert(0, message.to_string());
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{ClusterDecision, Outcome};

    fn replicas(v: &[(&str, u32)]) -> Replicas {
        v.iter().map(|(n, r)| (n.to_string(), *r)).collect()
    }

    fn decision(placement: Replicas) -> Decision {
        let reason = |n: &str| {
            if n == "eks" {
                "unhealthy"
            } else {
                "active tier"
            }
        };
        Decision {
            clusters: ["eks", "gke"]
                .iter()
                .map(|n| ClusterDecision {
                    name: n.to_string(),
                    tier: Some(1),
                    selected: placement.contains_key(*n),
                    replicas: placement.get(*n).copied().unwrap_or(0),
                    current: 0,
                    score: 0,
                    reason: reason(n).to_string(),
                })
                .collect(),
            placement,
            outcome: Outcome::Satisfied,
            notes: Vec::new(),
            preferred: String::new(),
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    #[test]
    fn a_sticky_relocation_is_a_failover_and_a_spec_change_is_no_move() {
        let current = replicas(&[("eks", 10)]);
        let d = decision(replicas(&[("gke", 10)]));
        let m = classify(&current, &d, Rebalance::Sticky, Why::Stabilizing).unwrap();
        assert_eq!(
            (m.kind, m.from.clone(), m.to.clone()),
            (MoveKind::Failover, vec!["eks".into()], vec!["gke".into()])
        );
        assert_eq!(m.reason, "eks: unhealthy");
        assert_eq!(
            classify(&current, &d, Rebalance::ToPreferred, Why::SpecChanged),
            None
        );
        assert_eq!(
            classify(&Replicas::new(), &d, Rebalance::Sticky, Why::Stabilizing),
            None,
            "first placement"
        );
        // A plain scale down moves nothing.
        let d = Decision {
            placement: replicas(&[("eks", 5)]),
            ..d
        };
        assert_eq!(
            classify(&current, &d, Rebalance::Sticky, Why::Stabilizing),
            None
        );
        let back = Decision {
            placement: replicas(&[("eks", 10)]),
            ..d
        };
        let m = classify(
            &replicas(&[("gke", 10)]),
            &back,
            Rebalance::ToPreferred,
            Why::ClustersStable,
        )
        .unwrap();
        assert_eq!(m.kind, MoveKind::Failback);
    }

    #[test]
    fn the_budget_counts_moves_in_its_window() {
        let budget = MoveBudget {
            max_moves: 2,
            window_seconds: 100,
        };
        let Admission::Start(moves) = admit(&budget, &[], at(0)) else {
            panic!()
        };
        let Admission::Start(moves) = admit(&budget, &moves, at(10)) else {
            panic!()
        };
        match admit(&budget, &moves, at(50)) {
            Admission::Refused { until, message } => {
                assert_eq!(until, at(100), "when the oldest leaves the window");
                assert!(message.contains("2 move(s) in the last 100s"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let Admission::Start(moves) = admit(&budget, &moves, at(101)) else {
            panic!()
        };
        assert_eq!(moves, vec![Time(at(10)), Time(at(101))]);
        let none = MoveBudget {
            max_moves: 0,
            window_seconds: 100,
        };
        assert!(matches!(
            admit(&none, &[], at(0)),
            Admission::Refused { .. }
        ));
    }

    #[test]
    fn records_say_from_to_and_how_long() {
        let m = Move {
            kind: MoveKind::Failover,
            from: vec!["eks".into()],
            to: vec!["gke".into()],
            reason: "eks: unhealthy".into(),
        };
        let r = started(&m, at(0));
        assert_eq!(r.summary, "eks → gke (moving)");
        assert!(!is_failback(&r));
        let done = completed(&r, Timestamp::from_millisecond(1_790_000_006_240).unwrap());
        assert_eq!(done.duration_seconds, Some(6.2));
        assert_eq!(done.summary, "eks → gke in 6.2s");
    }

    #[test]
    fn a_refused_move_keeps_the_current_placement() {
        let current = replicas(&[("eks", 10)]);
        let d = held(
            decision(replicas(&[("gke", 10)])),
            &current,
            "budget spent",
            "refused: budget spent",
        );
        assert_eq!(d.placement, current);
        assert_eq!(d.notes[0], "budget spent");
        assert_eq!(d.outcome, Outcome::Satisfied);
        assert!(d.clusters[1].reason.ends_with("move refused: budget spent"));
    }
}
