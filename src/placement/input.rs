//! What the engine is given: cluster snapshots, the current placement, and the caller's choices.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use crate::api::{ClusterHealth, MemberCluster, MultiCloudWorkloadSpec, Provider, Taint};

/// Replicas per cluster name.
pub type Replicas = BTreeMap<String, u32>;

/// `eks-use1=7,gke-euw1=3` (clusters without replicas left out), or `nothing`: how a placement
/// is written in status, Events, explanations and `bascule plan`.
pub fn summary<'a, N: std::fmt::Display + 'a>(
    replicas: impl IntoIterator<Item = (N, u64)>,
) -> String {
    let parts: Vec<String> = replicas
        .into_iter()
        .filter(|(_, r)| *r > 0)
        .map(|(n, r)| format!("{n}={r}"))
        .collect();
    if parts.is_empty() {
        "nothing".to_string()
    } else {
        parts.join(",")
    }
}

/// A member cluster as the engine sees it at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSnapshot {
    pub name: String,
    pub provider: Option<Provider>,
    pub region: Option<String>,
    /// The MemberCluster's labels, for tier label selectors.
    pub labels: BTreeMap<String, String>,
    pub health: ClusterHealth,
    /// When `health` took its current value, for explanations and failover toleration.
    pub health_since: Option<Timestamp>,
    pub taints: Vec<Taint>,
    /// Room this workload may use on the cluster, its own running replicas included, where
    /// known. The engine places no more replicas there than fit in it.
    pub available: Option<Resources>,
}

impl ClusterSnapshot {
    /// A healthy, untainted cluster with no capacity information.
    pub fn healthy(name: &str, provider: Provider, region: &str) -> ClusterSnapshot {
        ClusterSnapshot {
            name: name.to_string(),
            provider: Some(provider),
            region: Some(region.to_string()),
            labels: BTreeMap::new(),
            health: ClusterHealth::Healthy,
            health_since: None,
            taints: Vec::new(),
            available: None,
        }
    }

    /// The snapshot of a MemberCluster object: status where observed, spec where declared.
    /// A MemberCluster without status is taken as Healthy only when `assume_healthy` is set (what
    /// `bascule plan` does for hand-written files); the operator leaves it Unknown.
    pub fn from_member(mc: &MemberCluster, assume_healthy: bool) -> ClusterSnapshot {
        let status = mc.status.as_ref();
        let health = match status {
            Some(s) => s.health,
            None if assume_healthy => ClusterHealth::Healthy,
            None => ClusterHealth::Unknown,
        };
        ClusterSnapshot {
            name: mc.metadata.name.clone().unwrap_or_default(),
            provider: mc
                .spec
                .provider_in_force(None, status.and_then(|s| s.provider)),
            region: mc
                .spec
                .region_in_force(None, status.and_then(|s| s.region.as_deref())),
            labels: mc.metadata.labels.clone().unwrap_or_default(),
            health,
            health_since: status.and_then(|s| s.health_since.as_ref()).map(|t| t.0),
            taints: mc.taints_in_force(),
            available: status.and_then(|s| Resources::from_quantities(&s.available)),
        }
    }
}

/// CPU and memory, as plain integers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

impl Resources {
    /// Reads `cpu` and `memory` quantities; `None` unless both parse.
    pub fn from_quantities(map: &BTreeMap<String, String>) -> Option<Resources> {
        Some(Resources {
            cpu_millis: parse_quantity_milli(map.get("cpu")?)?,
            memory_bytes: parse_quantity_milli(map.get("memory")?)? / 1000,
        })
    }

    /// Replicas of `per_replica` that fit in `self`; `None` when the workload requests nothing.
    pub fn fits(&self, per_replica: &Resources) -> Option<u64> {
        let cpu = (per_replica.cpu_millis > 0).then(|| self.cpu_millis / per_replica.cpu_millis);
        let mem =
            (per_replica.memory_bytes > 0).then(|| self.memory_bytes / per_replica.memory_bytes);
        match (cpu, mem) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Parses a Kubernetes quantity (`500m`, `2`, `1.5Gi`, `128M`, `1e3`) into thousandths of its
/// unit, rounding up as Kubernetes does for requests. `None` if it is not a quantity.
pub fn parse_quantity_milli(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    if number.is_empty() {
        return None;
    }
    // (multiplier numerator, denominator) applied to the number, in thousandths.
    let (mul, div): (u128, u128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1000u128.pow(2), 1),
        "G" => (1000 * 1000u128.pow(3), 1),
        "T" => (1000 * 1000u128.pow(4), 1),
        "P" => (1000 * 1000u128.pow(5), 1),
        "Ki" => (1000 * 1024, 1),
        "Mi" => (1000 * 1024u128.pow(2), 1),
        "Gi" => (1000 * 1024u128.pow(3), 1),
        "Ti" => (1000 * 1024u128.pow(4), 1),
        "Pi" => (1000 * 1024u128.pow(5), 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (1000 * 10u128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let scale = 10u128.checked_pow(frac.len() as u32)?;
    let digits: u128 = format!("{int}{frac}").parse().ok()?;
    let value = (digits * mul).div_ceil(scale * div);
    u64::try_from(value).ok()
}

/// How far the engine may move replicas that sit on healthy clusters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rebalance {
    /// Keep every replica that may stay where it is; only replicas that must move (their cluster
    /// failed, was drained, left the tiers) or that the total adds or removes are placed. What a
    /// controller uses after health changes: healthy clusters never lose replicas to a failure.
    #[default]
    Sticky,
    /// Place as the spec prefers, moving replicas between healthy clusters if needed. What a
    /// controller uses when the spec changed, or when a failback is due.
    ToPreferred,
}

/// Everything one decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub spec: &'a MultiCloudWorkloadSpec,
    pub clusters: &'a [ClusterSnapshot],
    /// The placement in force (the last decision), cluster → replicas.
    pub current: &'a Replicas,
    pub rebalance: Rebalance,
    /// The instant at which tolerations are judged. Given, never read from a clock.
    pub now: Timestamp,
    /// Clusters where this workload has been unavailable, and since when.
    pub app_unavailable_since: &'a BTreeMap<String, Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity_milli("500m"), Some(500));
        assert_eq!(parse_quantity_milli("2"), Some(2000));
        assert_eq!(parse_quantity_milli("1.5"), Some(1500));
        assert_eq!(parse_quantity_milli("0.1m"), Some(1), "rounds up");
        assert_eq!(parse_quantity_milli("1Ki"), Some(1024 * 1000));
        assert_eq!(
            parse_quantity_milli("1.5Gi"),
            Some(1536 * 1024 * 1024 * 1000)
        );
        assert_eq!(parse_quantity_milli("128M"), Some(128_000_000 * 1000));
        assert_eq!(parse_quantity_milli("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity_milli("abc"), None);
        assert_eq!(parse_quantity_milli("1Zi"), None);
        assert_eq!(parse_quantity_milli(""), None);
    }

    #[test]
    fn fits_takes_the_scarcer_resource() {
        let room = Resources {
            cpu_millis: 4000,
            memory_bytes: 4 << 30,
        };
        let per = Resources {
            cpu_millis: 500,
            memory_bytes: 1 << 30,
        };
        assert_eq!(room.fits(&per), Some(4));
        assert_eq!(
            room.fits(&Resources {
                cpu_millis: 1000,
                memory_bytes: 0
            }),
            Some(4)
        );
        assert_eq!(room.fits(&Resources::default()), None);
    }
}
