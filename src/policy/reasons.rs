//! Every reason a workload's `Degraded` (and `Stalled`) condition can carry for a problem, in one
//! place, with what it means to the tools that read it: kstatus' `Stalled` (only a person can
//! fix it) and the GitOps health checks shipped in examples/gitops (Argo CD's Lua check and
//! Flux's CEL expressions report a blocking reason as Degraded, a transient one as Progressing).
//! A test keeps those checks in step with this list.

/// Something that kept a cluster from holding what it should: an object another owner holds, a
/// template that does not render, a member API error. Shown in the `Degraded` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// A CamelCase condition reason, e.g. `OwnershipConflict`.
    pub reason: ProblemReason,
    /// A sentence that names the cluster and the object.
    pub message: String,
}

/// Why a workload is not where it should be, as a condition reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemReason {
    /// A placed object exists in a member without this workload's ownership label.
    OwnershipConflict,
    /// A member refused an object as invalid (a kind it does not serve, a bad field).
    InvalidTemplate,
    /// The template or an override does not render for a cluster.
    RenderFailed,
    /// The member identity may not write a kind (its RBAC).
    Forbidden,
    /// The operator's tenancy policy refuses an object (its kind, its namespace, a binding to a
    /// ClusterRole, …); nothing of it is written.
    RefusedByPolicy,
    /// The object cannot be read by the operator (an integer beyond int32, …).
    InvalidSpec,
    /// The move budget refused a failover or failback.
    MoveBudgetExhausted,
    /// Moves are paused (operator-wide or by the workload's annotation): the placement in force
    /// is kept while the engine would change it.
    MovesPaused,
    /// A move's target did not take the replicas; retried.
    MovePostponed,
    /// A member API error; retried.
    SyncFailed,
    /// A member did not answer in time; retried.
    MemberTimeout,
}

impl ProblemReason {
    pub const ALL: [ProblemReason; 11] = [
        ProblemReason::OwnershipConflict,
        ProblemReason::InvalidTemplate,
        ProblemReason::RenderFailed,
        ProblemReason::Forbidden,
        ProblemReason::RefusedByPolicy,
        ProblemReason::InvalidSpec,
        ProblemReason::MoveBudgetExhausted,
        ProblemReason::MovesPaused,
        ProblemReason::MovePostponed,
        ProblemReason::SyncFailed,
        ProblemReason::MemberTimeout,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ProblemReason::OwnershipConflict => "OwnershipConflict",
            ProblemReason::InvalidTemplate => "InvalidTemplate",
            ProblemReason::RenderFailed => "RenderFailed",
            ProblemReason::Forbidden => "Forbidden",
            ProblemReason::RefusedByPolicy => "RefusedByPolicy",
            ProblemReason::InvalidSpec => "InvalidSpec",
            ProblemReason::MoveBudgetExhausted => "MoveBudgetExhausted",
            ProblemReason::MovesPaused => "MovesPaused",
            ProblemReason::MovePostponed => "MovePostponed",
            ProblemReason::SyncFailed => "SyncFailed",
            ProblemReason::MemberTimeout => "MemberTimeout",
        }
    }

    /// No retry of the operator's can solve it: kstatus `Stalled=True`.
    pub fn stalls(self) -> bool {
        matches!(
            self,
            ProblemReason::OwnershipConflict
                | ProblemReason::InvalidTemplate
                | ProblemReason::RenderFailed
                | ProblemReason::Forbidden
                | ProblemReason::RefusedByPolicy
                | ProblemReason::InvalidSpec
        )
    }

    /// A GitOps tool should report the workload Degraded (a person must act, or the workload
    /// stays where it is on purpose), not Progressing.
    pub fn blocks(self) -> bool {
        self.stalls()
            || matches!(
                self,
                ProblemReason::MoveBudgetExhausted | ProblemReason::MovesPaused
            )
    }
}

impl std::fmt::Display for ProblemReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Ready=False` reasons for a workload that cannot be placed at all (a GitOps tool reports it
/// Degraded); the other `Ready=False` reason, `Progressing`, is transient.
pub const UNPLACEABLE: [&str; 2] = ["Unschedulable", "FailStatic"];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn repo_file(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// The keys of a Lua table `NAME = { Key = true, … }`.
    fn lua_set(lua: &str, name: &str) -> BTreeSet<String> {
        let start = lua
            .find(&format!("local {name} = {{"))
            .unwrap_or_else(|| panic!("no table {name}"));
        let body = &lua[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find('}').unwrap()];
        body.lines()
            .filter_map(|l| {
                l.trim()
                    .strip_suffix("= true,")
                    .map(|k| k.trim().to_string())
            })
            .collect()
    }

    /// Every `c.reason in ['A', 'B']` list of a file.
    fn cel_lists(text: &str) -> Vec<BTreeSet<String>> {
        text.match_indices("c.reason in [")
            .map(|(i, m)| {
                let rest = &text[i + m.len()..];
                rest[..rest.find(']').unwrap()]
                    .split(',')
                    .map(|s| s.trim().trim_matches('\'').to_string())
                    .collect()
            })
            .collect()
    }

    fn blocking() -> BTreeSet<String> {
        ProblemReason::ALL
            .iter()
            .filter(|r| r.blocks())
            .map(|r| r.as_str().to_string())
            .collect()
    }

    #[test]
    fn the_argo_cd_health_check_classifies_every_reason() {
        let lua = repo_file("examples/gitops/argocd/health.lua");
        assert_eq!(lua_set(&lua, "DEGRADED_REASONS"), blocking());
        let unplaceable: BTreeSet<String> = UNPLACEABLE.iter().map(|s| s.to_string()).collect();
        assert_eq!(lua_set(&lua, "UNPLACEABLE_REASONS"), unplaceable);
    }

    #[test]
    fn the_flux_health_checks_and_their_docs_classify_every_reason() {
        let unplaceable: BTreeSet<String> = UNPLACEABLE.iter().map(|s| s.to_string()).collect();
        for file in ["examples/gitops/flux/shop.yaml", "docs/gitops.md"] {
            let lists = cel_lists(&repo_file(file));
            // Each list is either the Degraded reasons that block or the Ready=False reasons of
            // a workload that cannot be placed; both must be there.
            assert!(lists.contains(&blocking()), "{file}: {lists:?}");
            assert!(lists.contains(&unplaceable), "{file}: {lists:?}");
            for list in lists {
                assert!(
                    list == blocking() || list == unplaceable,
                    "{file}: {list:?}"
                );
            }
        }
    }

    #[test]
    fn names_are_unique_and_stalling_reasons_block() {
        let names: BTreeSet<&str> = ProblemReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), ProblemReason::ALL.len());
        assert!(ProblemReason::ALL.iter().all(|r| !r.stalls() || r.blocks()));
    }
}
