//! Filter: which clusters may receive replicas, which may keep them, which must lose them.

use std::cell::OnceCell;
use std::fmt::Write as _;

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
    /// `tier_label` of each tier, built once: explanations repeat them for every cluster.
    labels: Vec<String>,
    /// Requests of one replica (sum over the pod's containers), where declared.
    pub per_replica: Resources,
}

struct CompiledTier<'a> {
    tier: Option<&'a Tier>,
    selector: Option<Result<Selector, String>>,
    /// What explanations print of the selector, built on first use.
    texts: OnceCell<SelectorTexts>,
}

/// The parts of a selector that every mismatch reason repeats.
struct SelectorTexts {
    /// `aws|gcp`
    providers: String,
    /// `us-east-1|eu-west-1`
    regions: String,
    /// `labels do not match env=prod`, or `invalid label selector: ...`.
    labels: Option<String>,
}

impl SelectorTexts {
    fn new(sel: &ClusterSelector, labels: Option<&Result<Selector, String>>) -> SelectorTexts {
        SelectorTexts {
            providers: join(&sel.providers),
            regions: sel.regions.join("|"),
            labels: match labels {
                Some(Ok(s)) => Some(format!("labels do not match {s}")),
                Some(Err(e)) => Some(format!("invalid label selector: {e}")),
                None => None,
            },
        }
    }
}

impl<'a> CompiledSpec<'a> {
    pub fn new(spec: &'a MultiCloudWorkloadSpec) -> CompiledSpec<'a> {
        let tiers = if spec.placement.tiers.is_empty() {
            vec![CompiledTier {
                tier: None,
                selector: None,
                texts: OnceCell::new(),
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
                    texts: OnceCell::new(),
                })
                .collect()
        };
        let labels = tiers
            .iter()
            .enumerate()
            .map(|(i, t)| match t.tier {
                None => "all clusters".to_string(),
                Some(t) => match &t.name {
                    Some(n) => format!("tier {} ({n})", i + 1),
                    None => format!("tier {}", i + 1),
                },
            })
            .collect();
        CompiledSpec {
            spec,
            tiers,
            labels,
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
    pub fn tier_label(&self, index: usize) -> &str {
        &self.labels[index]
    }

    /// The first tier the cluster matches, or why it matches none.
    pub fn match_tier(&self, c: &ClusterSnapshot) -> Result<usize, String> {
        // Fast path without allocation; the reasons are only spelled out for a cluster that
        // matches no tier.
        if let Some(i) = self.tiers.iter().position(|t| {
            t.tier
                .is_none_or(|tier| selects(&tier.selector, t.selector.as_ref(), c))
        }) {
            return Ok(i);
        }
        let mut why = String::new();
        for (i, t) in self.tiers.iter().enumerate() {
            let Some(tier) = t.tier else { return Ok(i) };
            let texts = t
                .texts
                .get_or_init(|| SelectorTexts::new(&tier.selector, t.selector.as_ref()));
            let start = why.len();
            if start > 0 {
                why.push_str("; ");
            }
            if !write_mismatch(&mut why, &tier.selector, texts, t.selector.as_ref(), c) {
                why.truncate(start);
                return Ok(i);
            }
            why.push_str(" in ");
            why.push_str(&self.labels[i]);
        }
        Err(why)
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
                Role::Hold(
                    "health unknown (not probed yet, or no connection: see its MemberCluster status)"
                        .to_string(),
                ),
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

/// Whether a cluster matches a selector: `mismatch(..).is_none()`, without building the reason.
fn selects(
    sel: &ClusterSelector,
    labels: Option<&Result<Selector, String>>,
    c: &ClusterSnapshot,
) -> bool {
    (sel.cluster_names.is_empty() || sel.cluster_names.contains(&c.name))
        && (sel.providers.is_empty() || c.provider.is_some_and(|p| sel.providers.contains(&p)))
        && (sel.regions.is_empty() || c.region.as_ref().is_some_and(|r| sel.regions.contains(r)))
        && match labels {
            Some(Ok(s)) => s.matches(&c.labels),
            Some(Err(_)) => false,
            None => true,
        }
}

/// Why a cluster does not match a selector, or `None` if it does.
pub fn mismatch(
    sel: &ClusterSelector,
    labels: Option<&Result<Selector, String>>,
    c: &ClusterSnapshot,
) -> Option<String> {
    let mut why = String::new();
    write_mismatch(&mut why, sel, &SelectorTexts::new(sel, labels), labels, c).then_some(why)
}

/// Appends why a cluster does not match a selector to `out` and returns true, or returns false
/// (and appends nothing) if it matches.
fn write_mismatch(
    out: &mut String,
    sel: &ClusterSelector,
    texts: &SelectorTexts,
    labels: Option<&Result<Selector, String>>,
    c: &ClusterSnapshot,
) -> bool {
    // Writing to a String cannot fail.
    if !sel.cluster_names.is_empty() && !sel.cluster_names.contains(&c.name) {
        let _ = write!(out, "name {} not listed", c.name);
        return true;
    }
    if !sel.providers.is_empty() {
        match c.provider {
            Some(p) if sel.providers.contains(&p) => {}
            Some(p) => {
                let _ = write!(out, "provider {p} not {}", texts.providers);
                return true;
            }
            None => {
                let _ = write!(out, "provider unknown, not {}", texts.providers);
                return true;
            }
        }
    }
    if !sel.regions.is_empty() {
        match &c.region {
            Some(r) if sel.regions.contains(r) => {}
            Some(r) => {
                let _ = write!(out, "region {r} not {}", texts.regions);
                return true;
            }
            None => {
                let _ = write!(out, "region unknown, not {}", texts.regions);
                return true;
            }
        }
    }
    let matched = match labels {
        Some(Ok(s)) => s.matches(&c.labels),
        Some(Err(_)) => false,
        None => true,
    };
    if !matched {
        out.push_str(texts.labels.as_deref().unwrap_or_default());
    }
    !matched
}

/// Whether a cluster matches a selector (overrides use this too).
pub fn matches(sel: &ClusterSelector, c: &ClusterSnapshot) -> bool {
    let labels = sel
        .label_selector
        .clone()
        .map(|ls| Selector::try_from(ls).map_err(|e| e.to_string()));
    selects(sel, labels.as_ref(), c)
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
    // `Manifest::containers` and `/resources/requests`, looked up key by key: a JSON pointer
    // allocates for every token it parses.
    let containers = ["spec", "template", "spec", "containers"]
        .iter()
        .try_fold(&workload.0, |v, k| v.get(k))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten();
    for c in containers {
        let requests = c.get("resources").and_then(|r| r.get("requests"));
        let get = |k: &str| {
            let v = requests.and_then(|r| r.get(k))?;
            match v.as_str() {
                Some(q) => super::input::parse_quantity_milli(q),
                None => super::input::parse_quantity_milli(&v.as_u64()?.to_string()),
            }
        };
        total.cpu_millis += get("cpu").unwrap_or(0);
        total.memory_bytes += get("memory").map(|m| m / 1000).unwrap_or(0);
    }
    total
}
