//! Conditions merged the kstatus way: `lastTransitionTime` moves only when a condition's status
//! changes, so that writing the same status twice is a no-op and times mean something.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition as the controller wants it, without bookkeeping fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub type_: &'static str,
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    pub reason: String,
    pub message: String,
}

impl Desired {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let status = if status { "True" } else { "False" };
        Desired::with_status(type_, status, reason, message)
    }

    /// A condition whose status may also be `Unknown` (e.g. a member not probed yet).
    pub fn with_status(
        type_: &'static str,
        status: &'static str,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Desired {
            type_,
            status,
            reason: reason.into(),
            // Messages often carry a member's error text: bounded and scrubbed, always.
            message: super::text::clean(&message.into(), super::text::MAX_MESSAGE),
        }
    }
}

/// The conditions to write: `desired` merged into `existing`. Conditions of other types are kept.
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| !desired.iter().any(|d| d.type_ == c.type_))
        .cloned()
        .collect();
    for d in desired {
        let status = d.status;
        let old = existing.iter().find(|c| c.type_ == d.type_);
        let last_transition_time = match old {
            Some(o) if o.status == status => o.last_transition_time.clone(),
            _ => Time(now),
        };
        out.push(Condition {
            type_: d.type_.to_string(),
            status: status.to_string(),
            reason: d.reason.clone(),
            message: d.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let ready = |ok: bool, msg: &str| {
            vec![Desired::new(
                "Ready",
                ok,
                if ok { "Available" } else { "Progressing" },
                msg,
            )]
        };
        let first = merge(&[], &ready(false, "0/3"), Some(1), t(0));
        let same = merge(&first, &ready(false, "2/3"), Some(1), t(10));
        assert_eq!(
            same[0].last_transition_time,
            Time(t(0)),
            "message changed, status did not"
        );
        assert_eq!(same[0].message, "2/3");
        let flipped = merge(&same, &ready(true, "3/3"), Some(1), t(20));
        assert_eq!(flipped[0].last_transition_time, Time(t(20)));
        assert_eq!(
            merge(&flipped, &ready(true, "3/3"), Some(1), t(30)),
            flipped,
            "idempotent"
        );
    }

    #[test]
    fn other_conditions_are_kept_and_order_is_stable() {
        let a = merge(&[], &[Desired::new("Ready", true, "A", "")], None, t(0));
        let b = merge(&a, &[Desired::new("Degraded", false, "B", "")], None, t(1));
        assert_eq!(
            b.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Degraded", "Ready"]
        );
    }
}
