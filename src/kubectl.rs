//! What `kubectl bascule status|explain` prints, from objects read off the hub. Pure: the
//! plugin (src/bin/kubectl-bascule.rs) fetches, these functions render.

use std::fmt::Write;

use crate::api::{MemberCluster, MultiCloudWorkload};

/// One line per workload: where, how available, and the last move.
pub fn status_table(workloads: &[MultiCloudWorkload], clusters: &[MemberCluster]) -> String {
    let mut rows = vec![[
        "WORKLOAD".to_string(),
        "MODE".into(),
        "AVAILABLE".into(),
        "PLACEMENT".into(),
        "READY".into(),
        "LAST MOVE".into(),
    ]];
    for w in workloads {
        let s = w.status.clone().unwrap_or_default();
        let ready = condition(&s.conditions, "Ready")
            .map_or("-".to_string(), |c| format!("{} ({})", c.status, c.reason));
        let counts = s.replicas.as_ref().map_or("-".to_string(), |r| {
            format!("{}/{}", r.available, r.desired)
        });
        rows.push([
            format!(
                "{}/{}",
                w.metadata.namespace.as_deref().unwrap_or(""),
                w.metadata.name.as_deref().unwrap_or("")
            ),
            format!("{:?}", w.spec.placement.mode),
            counts,
            s.placement.unwrap_or_else(|| "-".into()),
            ready,
            s.last_failover.map_or("-".into(), |f| f.summary),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut members = vec![[
        "CLUSTER".to_string(),
        "PROVIDER".into(),
        "REGION".into(),
        "HEALTH".into(),
        "SINCE".into(),
        "NODES".into(),
    ]];
    for mc in clusters {
        let s = mc.status.clone().unwrap_or_default();
        members.push([
            mc.metadata.name.clone().unwrap_or_default(),
            mc.spec
                .provider_in_force(None, s.provider)
                .map_or("-".into(), |p| format!("{p:?}").to_lowercase()),
            mc.spec
                .region_in_force(None, s.region.as_deref())
                .unwrap_or_else(|| "-".into()),
            format!("{:?}", s.health),
            s.health_since.map_or("-".into(), |t| t.0.to_string()),
            s.nodes.map_or("-".into(), |n| n.summary),
        ]);
    }
    out.push_str(&table(&members));
    out
}

/// Why a workload is where it is: the decision per cluster, the conditions, the last move.
pub fn explain(w: &MultiCloudWorkload) -> String {
    let mut out = String::new();
    let name = format!(
        "{}/{}",
        w.metadata.namespace.as_deref().unwrap_or(""),
        w.metadata.name.as_deref().unwrap_or("")
    );
    let Some(s) = &w.status else {
        let _ = writeln!(
            out,
            "{name}: no status yet — is `bascule run` running against this hub?"
        );
        return out;
    };
    let _ = writeln!(
        out,
        "{name}: {:?}, {} replicas → {}",
        w.spec.placement.mode,
        w.spec.replicas,
        s.placement.as_deref().unwrap_or("nothing")
    );
    if s.observed_generation != w.metadata.generation {
        let _ = writeln!(
            out,
            "  (status describes generation {:?}; the spec is at {:?}: a reconcile is pending)",
            s.observed_generation, w.metadata.generation
        );
    }
    if let Some(d) = &s.decision {
        let _ = writeln!(out, "\nDecision: {} — {}", d.outcome, d.message);
        let mut rows = vec![[
            "CLUSTER".to_string(),
            "SELECTED".into(),
            "REPLICAS".into(),
            "SCORE".into(),
            "REASON".into(),
        ]];
        for c in &d.clusters {
            rows.push([
                c.name.clone(),
                if c.selected { "yes" } else { "no" }.into(),
                c.replicas.to_string(),
                c.score.to_string(),
                c.reason.clone(),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }
    if !s.clusters.is_empty() {
        let _ = writeln!(out, "\nIn the members:");
        let mut rows = vec![[
            "CLUSTER".to_string(),
            "STATE".into(),
            "DESIRED".into(),
            "READY".into(),
            "AVAILABLE".into(),
        ]];
        for c in &s.clusters {
            rows.push([
                c.name.clone(),
                format!("{:?}", c.state),
                c.desired.to_string(),
                c.ready.to_string(),
                c.available.to_string(),
            ]);
        }
        out.push_str(&indent(&table(&rows)));
    }
    let _ = writeln!(out, "\nConditions:");
    for c in &s.conditions {
        let _ = writeln!(
            out,
            "  {:<16} {:<6} {:<20} {}",
            c.type_, c.status, c.reason, c.message
        );
    }
    if let Some(f) = &s.last_failover {
        let _ = writeln!(out, "\nLast move: {} — {}", f.summary, f.reason);
    }
    out
}

fn condition<'a>(
    conditions: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> MultiCloudWorkload {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
            "metadata": {"name": "checkout", "namespace": "shop", "generation": 2},
            "spec": {"replicas": 10, "placement": {"mode": "Failover"},
                     "template": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout"}}]}},
            "status": {
                "observedGeneration": 2, "placement": "gke-euw1=10",
                "replicas": {"desired": 10, "ready": 10, "available": 10},
                "conditions": [{"type": "Ready", "status": "True", "reason": "Available",
                                "message": "10/10 replicas available on gke-euw1=10",
                                "lastTransitionTime": "2026-11-22T05:00:00Z"}],
                "decision": {"outcome": "Satisfied", "message": "placed gke-euw1=10", "clusters": [
                    {"name": "eks-use1", "selected": false, "replicas": 0, "score": 0, "reason": "unhealthy since 2026-11-22T04:59:54Z"},
                    {"name": "gke-euw1", "selected": true, "replicas": 10, "score": 50, "reason": "tier 2: active tier"}]},
                "clusters": [{"name": "gke-euw1", "desired": 10, "ready": 10, "available": 10, "state": "Active"}],
                "lastFailover": {"from": ["eks-use1"], "to": ["gke-euw1"], "reason": "failover: eks-use1: unhealthy",
                                 "startedAt": "2026-11-22T05:00:00Z", "summary": "eks-use1 → gke-euw1 in 1.5s"}
            }
        }))
        .unwrap()
    }

    #[test]
    fn explain_says_where_and_why() {
        let text = explain(&workload());
        for want in [
            "shop/checkout: Failover, 10 replicas → gke-euw1=10",
            "Decision: Satisfied — placed gke-euw1=10",
            "eks-use1  no        0         0      unhealthy since 2026-11-22T04:59:54Z",
            "Ready            True   Available",
            "Last move: eks-use1 → gke-euw1 in 1.5s — failover: eks-use1: unhealthy",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn status_lists_workloads_and_clusters() {
        let text = status_table(&[workload()], &[]);
        assert!(text.contains("shop/checkout  Failover  10/10      gke-euw1=10  True (Available)  eks-use1 → gke-euw1 in 1.5s"), "{text}");
        assert!(text.contains("CLUSTER  PROVIDER"), "{text}");
    }
}
