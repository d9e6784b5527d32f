//! Vocabulary shared by both resources: providers, taints and tolerations, cluster selectors.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The cloud a member cluster runs on.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Amazon Web Services (EKS or any cluster whose nodes have `aws://` provider IDs).
    Aws,
    /// Google Cloud (GKE or any cluster whose nodes have `gce://` provider IDs).
    Gcp,
    /// Any other conformant cluster (on-premises, other clouds).
    Other,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Aws, Provider::Gcp, Provider::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Other => "other",
        }
    }

    /// Provider implied by a node's `spec.providerID` (`aws:///us-east-1a/i-…`, `gce://proj/zone/vm`).
    pub fn from_provider_id(provider_id: &str) -> Option<Provider> {
        let scheme = provider_id.split_once("://")?.0;
        match scheme {
            "aws" => Some(Provider::Aws),
            "gce" => Some(Provider::Gcp),
            "" => None,
            _ => Some(Provider::Other),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Provider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "aws" => Ok(Provider::Aws),
            "gcp" => Ok(Provider::Gcp),
            "other" => Ok(Provider::Other),
            _ => Err(format!("unknown provider {s:?}: use aws, gcp or other")),
        }
    }
}

/// What a taint does to workloads that do not tolerate it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum TaintEffect {
    /// No new replicas are placed on the cluster; replicas already there stay (a cordon).
    NoSchedule,
    /// Replicas already on the cluster are moved away (a drain), and no new ones are placed.
    NoExecute,
}

impl fmt::Display for TaintEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaintEffect::NoSchedule => "NoSchedule",
            TaintEffect::NoExecute => "NoExecute",
        })
    }
}

/// A taint on a member cluster, set by hand to cordon (`NoSchedule`) or drain (`NoExecute`) it.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    /// Taint key, for example `maintenance`.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
    /// Optional value matched by tolerations with operator `Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    /// `NoSchedule` (cordon) or `NoExecute` (drain).
    pub effect: TaintEffect,
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}:{}", self.key, v, self.effect),
            None => write!(f, "{}:{}", self.key, self.effect),
        }
    }
}

impl std::str::FromStr for Taint {
    type Err = String;
    /// Parses `KEY[=VALUE]:EFFECT`, as `kubectl taint` writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kv, effect) = s.rsplit_once(':').ok_or_else(|| {
            format!("taint {s:?} must look like KEY[=VALUE]:NoSchedule|NoExecute")
        })?;
        let effect = match effect {
            "NoSchedule" => TaintEffect::NoSchedule,
            "NoExecute" => TaintEffect::NoExecute,
            other => {
                return Err(format!(
                    "taint effect {other:?} must be NoSchedule or NoExecute"
                ));
            }
        };
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("taint {s:?} has an empty key"));
        }
        Ok(Taint {
            key: key.to_string(),
            value,
            effect,
        })
    }
}

/// How a toleration compares its key and value with a taint's.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum TolerationOperator {
    /// The taint's key and value must both equal the toleration's.
    #[default]
    Equal,
    /// Any taint with this key (or, with no key, any taint at all) is tolerated.
    Exists,
}

/// Lets a workload stay on, or be placed on, a cluster that carries a matching taint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Toleration {
    /// Taint key to tolerate; empty with operator `Exists` tolerates every taint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub key: Option<String>,
    /// `Equal` (default) or `Exists`.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Value to match with operator `Equal`; must be empty with `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub value: Option<String>,
    /// Effect to tolerate; empty tolerates both `NoSchedule` and `NoExecute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<TaintEffect>,
}

impl Toleration {
    /// Kubernetes' own matching rule for node taints, applied to cluster taints.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        match self.operator {
            TolerationOperator::Exists => self
                .key
                .as_deref()
                .is_none_or(|k| k.is_empty() || k == taint.key),
            TolerationOperator::Equal => {
                self.key.as_deref() == Some(taint.key.as_str())
                    && self.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
            }
        }
    }
}

/// Selects member clusters. Every criterion that is set must match; an empty selector matches
/// every cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSelector {
    /// Clusters of these providers (`aws`, `gcp`, `other`). Empty: any provider.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub providers: Vec<Provider>,
    /// Clusters in these regions, for example `us-east-1` or `europe-west1`. Empty: any region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 63)))]
    pub regions: Vec<String>,
    /// Clusters with these MemberCluster names. Empty: any name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63)))]
    pub cluster_names: Vec<String>,
    /// Clusters whose MemberCluster labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
}

impl ClusterSelector {
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
            && self.regions.is_empty()
            && self.cluster_names.is_empty()
            && self.label_selector.is_none()
    }
}

/// A key in a Secret in the operator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the namespace the operator runs in.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret that holds the kubeconfig.
    #[serde(default = "default_kubeconfig_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_kubeconfig_key() -> String {
    "kubeconfig".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(s: &str) -> Taint {
        s.parse().unwrap()
    }

    #[test]
    fn provider_from_provider_id() {
        assert_eq!(
            Provider::from_provider_id("aws:///us-east-1a/i-0abc"),
            Some(Provider::Aws)
        );
        assert_eq!(
            Provider::from_provider_id("gce://proj/europe-west1-b/vm"),
            Some(Provider::Gcp)
        );
        assert_eq!(
            Provider::from_provider_id("azure:///subscriptions/x"),
            Some(Provider::Other)
        );
        assert_eq!(Provider::from_provider_id("kwok-node-0"), None);
    }

    #[test]
    fn taint_parses_kubectl_syntax() {
        assert_eq!(
            taint("maintenance=true:NoExecute"),
            Taint {
                key: "maintenance".into(),
                value: Some("true".into()),
                effect: TaintEffect::NoExecute
            }
        );
        assert_eq!(taint("cordon:NoSchedule").to_string(), "cordon:NoSchedule");
        assert!(
            "cordon"
                .parse::<Taint>()
                .unwrap_err()
                .contains("KEY[=VALUE]")
        );
        assert!(
            "x:Evict"
                .parse::<Taint>()
                .unwrap_err()
                .contains("NoSchedule or NoExecute")
        );
        assert!(
            ":NoSchedule"
                .parse::<Taint>()
                .unwrap_err()
                .contains("empty key")
        );
    }

    #[test]
    fn tolerations_follow_kubernetes_rules() {
        let t = taint("maintenance=true:NoExecute");
        let exists_any = Toleration {
            operator: TolerationOperator::Exists,
            ..Default::default()
        };
        assert!(exists_any.tolerates(&t));
        let exists_key = Toleration {
            key: Some("maintenance".into()),
            operator: TolerationOperator::Exists,
            ..Default::default()
        };
        assert!(exists_key.tolerates(&t));
        let equal = Toleration {
            key: Some("maintenance".into()),
            value: Some("true".into()),
            ..Default::default()
        };
        assert!(equal.tolerates(&t));
        let wrong_value = Toleration {
            value: Some("false".into()),
            ..equal.clone()
        };
        assert!(!wrong_value.tolerates(&t));
        let wrong_effect = Toleration {
            effect: Some(TaintEffect::NoSchedule),
            ..equal
        };
        assert!(!wrong_effect.tolerates(&t));
    }
}
