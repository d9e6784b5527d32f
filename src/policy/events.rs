//! Which Events a change of a workload's status tells: a new placement, a new problem, a move
//! started or completed. Pure; the controller writes them just before the status.
//!
//! A move that starts is told as one Event whose note also names the new placement and the new
//! problem: in a region's outage every workload moves at once, and three Events each (`Placed`,
//! `FailoverStarted`, the lost member's problem) were most of the hub's writes
//! (docs/benchmarks.md, "What the hub is asked").

use super::moves;
use super::rebalance::Why;
use crate::api::MultiCloudWorkloadStatus;

/// One Event to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct News {
    /// `Warning` rather than `Normal`.
    pub warning: bool,
    pub reason: String,
    /// The Event's `action`: `Place`, `Move` or `Sync`.
    pub action: &'static str,
    pub note: String,
}

/// The Events the change from `before` to `after` tells, in order; `why` is why the rebalance
/// mode is what it is (told with a placement that is not a move).
pub fn told(
    before: &MultiCloudWorkloadStatus,
    after: &MultiCloudWorkloadStatus,
    why: Why,
) -> Vec<News> {
    let mut news = Vec::new();
    let problem = |s: &MultiCloudWorkloadStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let new_problem = problem(after).filter(|p| Some(p) != problem(before).as_ref());
    let placing = after.placement.as_deref().unwrap_or("nothing");
    let outcome = after.decision.as_ref().map_or("", |d| d.outcome.as_str());
    let started = after
        .last_failover
        .as_ref()
        .filter(|r| before.last_failover.as_ref().map(|b| &b.started_at) != Some(&r.started_at));

    match started {
        Some(r) => {
            let failback = moves::is_failback(r);
            let mut note = format!("{}: {}", r.summary, r.reason);
            if after.placement != before.placement {
                note += &format!("; placing {placing} ({outcome})");
            }
            if let Some((reason, message)) = &new_problem {
                note += &format!("; {reason}: {message}");
            }
            news.push(News {
                warning: !failback,
                reason: format!("{}Started", word(failback)),
                action: "Move",
                note,
            });
        }
        None => {
            if after.placement != before.placement {
                news.push(News {
                    warning: false,
                    reason: "Placed".into(),
                    action: "Place",
                    note: format!("placing {placing} ({why}; {outcome})"),
                });
            }
            if let Some((reason, message)) = new_problem {
                news.push(News {
                    warning: true,
                    reason,
                    action: "Sync",
                    note: message,
                });
            }
        }
    }
    if let Some(r) = &after.last_failover {
        let was_done = before
            .last_failover
            .as_ref()
            .is_some_and(|b| b.started_at == r.started_at && b.completed_at.is_some());
        if r.completed_at.is_some() && !was_done {
            news.push(News {
                warning: false,
                reason: format!("{}Completed", word(moves::is_failback(r))),
                action: "Move",
                note: r.summary.clone(),
            });
        }
    }
    news
}

fn word(failback: bool) -> &'static str {
    match failback {
        true => "Failback",
        false => "Failover",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::workload::FailoverRecord;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    fn degraded(reason: &str, message: &str) -> Condition {
        Condition {
            type_: "Degraded".into(),
            status: "True".into(),
            reason: reason.into(),
            message: message.into(),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    fn record(reason: &str, started: i64, completed: bool) -> FailoverRecord {
        FailoverRecord {
            from: vec!["eks-use1".into()],
            to: vec!["gke-euw1".into()],
            reason: reason.into(),
            started_at: Time(Timestamp::from_second(started).unwrap()),
            completed_at: completed.then(|| Time(Timestamp::from_second(started + 2).unwrap())),
            duration_seconds: None,
            summary: "eks-use1 → gke-euw1".into(),
        }
    }

    fn status(placement: &str) -> MultiCloudWorkloadStatus {
        MultiCloudWorkloadStatus {
            placement: Some(placement.into()),
            ..MultiCloudWorkloadStatus::default()
        }
    }

    fn reasons(news: &[News]) -> Vec<&str> {
        news.iter().map(|n| n.reason.as_str()).collect()
    }

    #[test]
    fn a_first_placement_is_placed() {
        let news = told(
            &MultiCloudWorkloadStatus::default(),
            &status("eks-use1=2"),
            Why::FirstPlacement,
        );
        assert_eq!(reasons(&news), ["Placed"]);
        assert!(!news[0].warning);
        assert!(news[0].note.contains("eks-use1=2") && news[0].note.contains("first placement"));
    }

    /// A failover's start is one Warning naming the move, its reason, the new placement and the
    /// new problem — not three Events.
    #[test]
    fn a_started_failover_is_one_event_telling_placement_and_problem() {
        let before = status("eks-use1=2");
        let mut after = status("gke-euw1=2");
        after.last_failover = Some(record("eks-use1 Unhealthy", 100, false));
        after.conditions = vec![degraded("ConstraintsNotMet", "cannot reach eks-use1")];
        let news = told(&before, &after, Why::ClustersStable);
        assert_eq!(reasons(&news), ["FailoverStarted"]);
        let n = &news[0];
        assert!(n.warning);
        assert_eq!(n.action, "Move");
        for part in [
            "eks-use1 → gke-euw1",
            "eks-use1 Unhealthy",
            "placing gke-euw1=2",
            "cannot reach eks-use1",
        ] {
            assert!(n.note.contains(part), "{part:?} missing from {:?}", n.note);
        }
    }

    #[test]
    fn completion_is_told_once_and_a_failback_is_normal() {
        let mut before = status("gke-euw1=2");
        before.last_failover = Some(record("eks-use1 Unhealthy", 100, false));
        let mut after = before.clone();
        after.last_failover = Some(record("eks-use1 Unhealthy", 100, true));
        assert_eq!(
            reasons(&told(&before, &after, Why::ClustersStable)),
            ["FailoverCompleted"]
        );
        assert!(
            told(&after, &after, Why::ClustersStable).is_empty(),
            "nothing changed"
        );

        let mut back = status("eks-use1=2");
        back.last_failover = Some(record("failback: eks-use1 stable", 200, true));
        let news = told(&after, &back, Why::ClustersStable);
        assert_eq!(reasons(&news), ["FailbackStarted", "FailbackCompleted"]);
        assert!(news.iter().all(|n| !n.warning));
    }

    /// Without a move, a new placement and a new problem are two Events; a problem already told
    /// is not told again.
    #[test]
    fn without_a_move_placement_and_problem_are_told_apart() {
        let before = status("eks-use1=2");
        let mut after = status("eks-use1=3");
        after.conditions = vec![degraded("OwnershipConflict", "Service web held by team-b")];
        let news = told(&before, &after, Why::SpecChanged);
        assert_eq!(reasons(&news), ["Placed", "OwnershipConflict"]);
        assert!(news[1].warning);
        let mut again = after.clone();
        again.placement = Some("eks-use1=4".into());
        assert_eq!(reasons(&told(&after, &again, Why::SpecChanged)), ["Placed"]);
    }
}
