//! Filter: which clusters may receive replicas, which may keep them, which must lose them.

use kube::core::{Selector, SelectorExt};

use crate::api::{
    ClusterHealth, ClusterSelector, MultiCloudWorkloadSpec, Provider, TaintEffect, Tier,
};

use super::input::{ClusterSnapshot, Request, Resources};

/// What a cluster may do for this workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Receives and keeps replicas.
    Eligible,
    /// Keeps the replicas it has, receives no new ones (cordoned, recovering, not yet probed,
    /// unhealthy but within toleration or with failover disabled).
    Hold(String),
    /// Must lose its replicas (unhealthy, drained, workload failing there, MemberCluster gone).
    Evict(String),
    /// Matches no tier: not used by this workload.
    Excluded(String),
}

/// The spec, compiled once per decision.
pub struct CompiledSpec<'a> {
    pub spec: &'a MultiCloudWorkloadSpec,
    tiers: Vec<CompiledTier<'a>>,
    /// Requests of one replica (sum over the pod's containers), where declared.
    pub per_replica: Resources,
}

struct CompiledTier<'a> {
    tier: Option<&'a Tier>,
    selector: Option<Result<Selector, String>>,
}

impl<'a> CompiledSpec<'a> {
    pub fn new(spec: &'a MultiCloudWorkloadSpec) -> CompiledSpec<'a> {
        let tiers = if spec.placement.tiers.is_empty() {
            vec![CompiledTier {
                tier: None,
                selector: None,
            }]
        } else {
            spec.placement
                .tiers
                .iter()
                .map(|t| CompiledTier {
                    tier: Some(t),
                    selector: t
                        .selector
                        .label_selector
                        .clone()
                        .map(|ls| Selector::try_from(ls).map_err(|e| e.to_string())),
                })
                .collect()
        };
        CompiledSpec {
            spec,
            tiers,
            per_replica: per_replica_requests(spec),
        }
    }

    pub fn tier_count(&self) -> usize {
        self.tiers.len()
    }

    pub fn tier(&self, index: usize) -> Option<&'a Tier> {
        self.tiers[index].tier
    }

    /// `tier 2 (gke)`, or `all clusters` when the spec has no tiers.
    pub fn tier_label(&self, index: usize) -> String {
        match self.tiers[index].tier {
            None => "all clusters".to_string(),
            Some(t) => match &t.name {
                Some(n) => format!("tier {} ({n})", index + 1),
                None => format!("tier {}", index + 1),
            },
        }
    }

    /// The first tier the cluster matches, or why it matches none.
    pub fn match_tier(&self, c: &ClusterSnapshot) -> Result<usize, String> {
        let mut why = Vec::new();
        for (i, t) in self.tiers.iter().enumerate() {
            let Some(tier) = t.tier else { return Ok(i) };
            match mismatch(&tier.selector, t.selector.as_ref(), c) {
                None => return Ok(i),
                Some(reason) => why.push(format!("{reason} in {}", self.tier_label(i))),
            }
        }
        Err(why.join("; "))
    }

    /// Classifies a cluster for this workload.
    pub fn role(&self, c: &ClusterSnapshot, req: &Request) -> Result<(usize, Role), String> {
        let tier = self.match_tier(c)?;
        let failover = &self.spec.failover;
        let tolerations = &self.spec.placement.tolerations;
        let untolerated = |effect: TaintEffect| {
            c.taints
                .iter()
                .find(|t| t.effect == effect && !tolerations.iter().any(|tol| tol.tolerates(t)))
        };
        let since = |t: Option<k8s_openapi::jiff::Timestamp>| match t {
            Some(t) => format!(" since {t}"),
            None => String::new(),
        };
        if let Some(t) = untolerated(TaintEffect::NoExecute) {
            return Ok((tier, Role::Evict(format!("tainted {t}"))));
        }
        if c.health == ClusterHealth::Unhealthy {
            let unhealthy = format!("unhealthy{}", since(c.health_since));
            if !failover.enabled {
                return Ok((
                    tier,
                    Role::Hold(format!(
                        "{unhealthy}; failover disabled, keeps its replicas"
                    )),
                ));
            }
            let tolerated_until = c
                .health_since
                .map(|s| s + seconds(failover.cluster_toleration_seconds));
            if let Some(until) = tolerated_until.filter(|u| req.now < *u) {
                return Ok((
                    tier,
                    Role::Hold(format!("{unhealthy}; tolerated until {until}")),
                ));
            }
            return Ok((tier, Role::Evict(unhealthy)));
        }
        if let Some(&since_t) = req.app_unavailable_since.get(&c.name) {
            let toleration = failover.application_toleration_seconds;
            if failover.enabled && toleration > 0 && req.now >= since_t + seconds(toleration) {
                return Ok((
                    tier,
                    Role::Evict(format!("workload unavailable here since {since_t}")),
                ));
            }
        }
        if let Some(t) = untolerated(TaintEffect::NoSchedule) {
            return Ok((tier, Role::Hold(format!("tainted {t}"))));
        }
        match c.health {
            ClusterHealth::Unknown => Ok((
                tier,
                Role::Hold("health unknown (not probed yet)".to_string()),
            )),
            ClusterHealth::Recovering => Ok((
                tier,
                Role::Hold(format!(
                    "recovering{}: not trusted with new replicas yet",
                    since(c.health_since)
                )),
            )),
            ClusterHealth::Healthy | ClusterHealth::Unhealthy => Ok((tier, Role::Eligible)),
        }
    }
}

fn seconds(s: i32) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_secs(i64::from(s.max(0)))
}

/// Why a cluster does not match a selector, or `None` if it does.
pub fn mismatch(
    sel: &ClusterSelector,
    labels: Option<&Result<Selector, String>>,
    c: &ClusterSnapshot,
) -> Option<String> {
    if !sel.cluster_names.is_empty() && !sel.cluster_names.contains(&c.name) {
        return Some(format!("name {} not listed", c.name));
    }
    if !sel.providers.is_empty() {
        match c.provider {
            Some(p) if sel.providers.contains(&p) => {}
            Some(p) => return Some(format!("provider {p} not {}", join(&sel.providers))),
            None => return Some(format!("provider unknown, not {}", join(&sel.providers))),
        }
    }
    if !sel.regions.is_empty() {
        match &c.region {
            Some(r) if sel.regions.contains(r) => {}
            Some(r) => return Some(format!("region {r} not {}", sel.regions.join("|"))),
            None => return Some(format!("region unknown, not {}", sel.regions.join("|"))),
        }
    }
    match labels {
        Some(Ok(s)) if !s.matches(&c.labels) => Some(format!("labels do not match {s}")),
        Some(Err(e)) => Some(format!("invalid label selector: {e}")),
        _ => None,
    }
}

/// Whether a cluster matches a selector (overrides use this too).
pub fn matches(sel: &ClusterSelector, c: &ClusterSnapshot) -> bool {
    let labels = sel
        .label_selector
        .clone()
        .map(|ls| Selector::try_from(ls).map_err(|e| e.to_string()));
    mismatch(sel, labels.as_ref(), c).is_none()
}

fn join(providers: &[Provider]) -> String {
    providers
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join("|")
}

/// Sum of the containers' CPU and memory requests in the workload's pod template.
fn per_replica_requests(spec: &MultiCloudWorkloadSpec) -> Resources {
    let mut total = Resources::default();
    let Some(workload) = spec.template.manifests.iter().find(|m| m.is_workload()) else {
        return total;
    };
    for c in workload.containers() {
        let requests = c.pointer("/resources/requests");
        let get = |k: &str| {
            requests
                .and_then(|r| r.get(k))
                .and_then(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .or_else(|| v.as_u64().map(|n| n.to_string()))
                })
                .and_then(|q| super::input::parse_quantity_milli(&q))
        };
        total.cpu_millis += get("cpu").unwrap_or(0);
        total.memory_bytes += get("memory").map(|m| m / 1000).unwrap_or(0);
    }
    total
}
