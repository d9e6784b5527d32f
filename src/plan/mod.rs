//! `bascule plan`: the placement engine run offline over MemberCluster and MultiCloudWorkload
//! objects, with what-ifs (`--unhealthy`, `--taint`), printed as a table, YAML or JSON.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::api::{ClusterHealth, Taint};
use crate::placement::{ClusterDecision, ClusterSnapshot, Outcome, Rebalance, Replicas};
use crate::policy;
use crate::yaml::Objects;

/// Changes to the clusters' state to evaluate.
#[derive(Clone, Debug, Default)]
pub struct WhatIf {
    /// Clusters to treat as Unhealthy.
    pub unhealthy: Vec<String>,
    /// Extra taints, per cluster.
    pub taints: Vec<(String, Taint)>,
    /// Place as the spec prefers (what a failback or a spec change would do) instead of keeping
    /// replicas where they are.
    pub rebalance: bool,
}

impl WhatIf {
    pub fn is_empty(&self) -> bool {
        self.unhealthy.is_empty() && self.taints.is_empty() && !self.rebalance
    }
}

/// The plan for one workload.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadPlan {
    /// `namespace/name`.
    pub workload: String,
    pub mode: String,
    pub replicas: i32,
    pub outcome: Outcome,
    /// Replicas per cluster before the what-ifs (from the workload's status, or a fresh plan).
    pub current: Replicas,
    /// Replicas per cluster after them.
    pub planned: Replicas,
    /// Replicas that change cluster.
    pub moves: u32,
    pub clusters: Vec<ClusterDecision>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A what-if that names something that is not there.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{flag} {cluster}: no MemberCluster named {cluster:?} in the input (known: {known})")]
pub struct UnknownCluster {
    pub flag: &'static str,
    pub cluster: String,
    pub known: String,
}

/// Plans every workload in `objects` under `what_if`, judged at `now`.
pub fn plan(
    objects: &Objects,
    what_if: &WhatIf,
    now: Timestamp,
) -> Result<Vec<WorkloadPlan>, UnknownCluster> {
    let base: Vec<ClusterSnapshot> = objects
        .clusters
        .iter()
        .map(|(_, mc)| ClusterSnapshot::from_member(mc, true))
        .collect();
    let names: BTreeSet<&str> = base.iter().map(|c| c.name.as_str()).collect();
    let unknown = |flag: &'static str, cluster: &str| UnknownCluster {
        flag,
        cluster: cluster.to_string(),
        known: names.iter().copied().collect::<Vec<_>>().join(", "),
    };
    let mut changed = base.clone();
    for name in &what_if.unhealthy {
        let c = changed
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| unknown("--unhealthy", name))?;
        c.health = ClusterHealth::Unhealthy;
        c.health_since = None; // a what-if has no history: past any toleration
    }
    for (name, taint) in &what_if.taints {
        let c = changed
            .iter_mut()
            .find(|c| &c.name == name)
            .ok_or_else(|| unknown("--taint", name))?;
        c.taints.push(taint.clone());
    }

    let mut plans = Vec::new();
    for (_, w) in &objects.workloads {
        // The controller's own request: the placement in force and the rebalance mode from the
        // status (a live hub's objects give the controller's decision back). A workload with no
        // placement yet is planned as first placed on the clusters as they are, then kept there
        // (Sticky) under the what-ifs, unless --rebalance asks for the preferred placement.
        let in_force = w
            .status
            .as_ref()
            .map(policy::request::placement_in_force)
            .filter(|p| !p.is_empty());
        let current = in_force.clone().unwrap_or_else(|| {
            let first = Some(Rebalance::ToPreferred);
            policy::request::decision_from(w, &base, &Replicas::new(), first, now)
                .decision
                .placement
        });
        let forced = if what_if.rebalance {
            Some(Rebalance::ToPreferred)
        } else if in_force.is_none() {
            Some(Rebalance::Sticky)
        } else {
            None
        };
        let d = policy::request::decision_from(w, &changed, &current, forced, now).decision;
        let moves = d
            .placement
            .iter()
            .map(|(n, &r)| r.saturating_sub(current.get(n).copied().unwrap_or(0)))
            .sum();
        plans.push(WorkloadPlan {
            workload: format!(
                "{}/{}",
                w.metadata.namespace.as_deref().unwrap_or("default"),
                w.metadata.name.as_deref().unwrap_or_default()
            ),
            mode: w.spec.placement.mode.to_string(),
            replicas: w.spec.replicas,
            outcome: d.outcome,
            current,
            planned: d.placement,
            moves,
            clusters: d.clusters,
            notes: d.notes,
        });
    }
    Ok(plans)
}

/// True when every workload's placement is fully satisfied.
pub fn all_satisfied(plans: &[WorkloadPlan]) -> bool {
    plans.iter().all(|p| p.outcome == Outcome::Satisfied)
}

/// The human table: one row per workload and cluster.
pub fn render_table(plans: &[WorkloadPlan]) -> String {
    let mut rows: Vec<[String; 7]> = vec![
        [
            "WORKLOAD", "CLUSTER", "TIER", "SCORE", "CURRENT", "PLANNED", "REASON",
        ]
        .map(String::from),
    ];
    let mut footers: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for p in plans {
        for (i, c) in p.clusters.iter().enumerate() {
            rows.push([
                if i == 0 {
                    p.workload.clone()
                } else {
                    String::new()
                },
                c.name.clone(),
                c.tier.map_or("-".to_string(), |t| t.to_string()),
                c.score.to_string(),
                c.current.to_string(),
                c.replicas.to_string(),
                c.reason.clone(),
            ]);
        }
        let mut lines = vec![format!(
            "  {} {} replicas={} → {} ({}; {} replica(s) move)",
            p.workload,
            p.mode,
            p.replicas,
            summary(&p.planned),
            p.outcome,
            p.moves
        )];
        lines.extend(p.notes.iter().map(|n| format!("  note: {n}")));
        footers.insert(rows.len() - 1, lines);
    }
    let widths: Vec<usize> = (0..6)
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        for (col, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[col], w = *w));
        }
        out.push_str(&r[6]);
        out.push('\n');
        if let Some(lines) = footers.get(&i) {
            for l in lines {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

fn summary(r: &Replicas) -> String {
    crate::placement::input::summary(r.iter().map(|(n, &v)| (n, u64::from(v))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn objects(text: &str) -> Objects {
        let mut o = Objects::default();
        crate::yaml::read(Path::new("t.yaml"), text, &mut o).unwrap();
        o
    }

    const INPUT: &str = r#"
apiVersion: bascule.dev/v1alpha1
kind: MemberCluster
metadata: {name: eks-use1}
spec: {provider: aws, region: us-east-1, connection: {kubeconfigSecretRef: {name: eks}}}
---
apiVersion: bascule.dev/v1alpha1
kind: MemberCluster
metadata: {name: gke-euw1}
spec: {provider: gcp, region: europe-west1, connection: {kubeconfigSecretRef: {name: gke}}}
---
apiVersion: bascule.dev/v1alpha1
kind: MultiCloudWorkload
metadata: {name: web, namespace: shop}
spec:
  replicas: 10
  placement:
    mode: Failover
    tiers:
      - {name: eks, providers: [aws]}
      - {name: gke, providers: [gcp]}
  template:
    manifests:
      - apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {template: {spec: {containers: [{name: web, image: nginx}]}}}
"#;

    fn now() -> Timestamp {
        "2026-11-22T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn what_if_unhealthy_moves_everything_to_the_fallback() {
        let o = objects(INPUT);
        let base = plan(&o, &WhatIf::default(), now()).unwrap();
        assert_eq!(base[0].planned, [("eks-use1".to_string(), 10)].into());
        assert_eq!(base[0].moves, 0);
        let w = WhatIf {
            unhealthy: vec!["eks-use1".into()],
            ..Default::default()
        };
        let p = plan(&o, &w, now()).unwrap();
        assert_eq!(p[0].planned, [("gke-euw1".to_string(), 10)].into());
        assert_eq!(p[0].moves, 10);
        let table = render_table(&p);
        assert!(
            table.contains("eks-use1") && table.contains("unhealthy"),
            "{table}"
        );
        assert!(
            table.contains(
                "shop/web Failover replicas=10 → gke-euw1=10 (Satisfied; 10 replica(s) move)"
            ),
            "{table}"
        );
    }

    #[test]
    fn what_if_taint_and_unknown_cluster() {
        let o = objects(INPUT);
        let w = WhatIf {
            taints: vec![("eks-use1".into(), "maint:NoExecute".parse().unwrap())],
            ..Default::default()
        };
        assert_eq!(
            plan(&o, &w, now()).unwrap()[0].planned,
            [("gke-euw1".to_string(), 10)].into()
        );
        let w = WhatIf {
            unhealthy: vec!["aks-1".into()],
            ..Default::default()
        };
        let e = plan(&o, &w, now()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--unhealthy aks-1: no MemberCluster named \"aks-1\" in the input (known: eks-use1, gke-euw1)"
        );
    }

    #[test]
    fn every_cluster_down_is_fail_static() {
        let o = objects(INPUT);
        let w = WhatIf {
            unhealthy: vec!["eks-use1".into(), "gke-euw1".into()],
            ..Default::default()
        };
        let p = plan(&o, &w, now()).unwrap();
        assert_eq!(p[0].outcome, Outcome::FailStatic);
        assert_eq!(p[0].planned, p[0].current);
        assert!(!all_satisfied(&p));
    }
}
