//! `MemberCluster`: one Kubernetes cluster (EKS, GKE or any other) that Bascule may place onto.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Provider, SecretKeyRef, Taint};

/// A cluster that Bascule may place workloads onto, and how to reach it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bascule.dev",
    version = "v1alpha1",
    kind = "MemberCluster",
    doc = "A Kubernetes cluster (EKS, GKE or any other) that Bascule may place workloads onto: how to reach it, its taints, and its observed health.",
    plural = "memberclusters",
    shortname = "mc",
    category = "bascule",
    status = "MemberClusterStatus",
    printcolumn(name = "Provider", type_ = "string", json_path = ".status.provider", description = "Cloud provider, declared or detected from the nodes"),
    printcolumn(name = "Region", type_ = "string", json_path = ".status.region", description = "Region, declared or detected from the nodes"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "Whether Bascule places workloads here"),
    printcolumn(name = "Health", type_ = "string", json_path = ".status.health", description = "Healthy, Unhealthy, Recovering or Unknown"),
    printcolumn(name = "Nodes", type_ = "string", json_path = ".status.nodes.summary", description = "Ready nodes / all nodes"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.kubernetesVersion", description = "Kubernetes version of the member", priority = 1),
    printcolumn(name = "Reason", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].reason", description = "Reason of the Ready condition", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be a DNS label (lowercase letters, digits and '-', at most 63 characters): it is used in labels and status; rename the MemberCluster"),
)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterSpec {
    /// Cloud provider. Optional: when omitted it is detected from the nodes' `spec.providerID`
    /// (`aws://` → aws, `gce://` → gcp, anything else → other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,

    /// Region, for example `us-east-1` or `europe-west1`. Optional: when omitted it is read from
    /// the nodes' `topology.kubernetes.io/region` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("spec.region must be lowercase letters, digits and '-', like us-east-1 or europe-west1"))]
    #[schemars(length(min = 1, max = 63))]
    pub region: Option<String>,

    /// How Bascule connects to the cluster's API server.
    pub connection: Connection,

    /// Taints cordon (`NoSchedule`) or drain (`NoExecute`) the whole cluster for workloads that do
    /// not tolerate them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, u.key == t.key && u.effect == t.effect))").message("spec.taints has the same key and effect twice; keep one entry per key and effect"))]
    #[schemars(length(max = 32))]
    pub taints: Vec<Taint>,

    /// Health probing of this cluster; every field has a default.
    #[serde(default)]
    pub health: HealthSettings,
}

/// The taint a MemberCluster being deleted carries in the engine's eyes (`NoExecute`): its
/// replicas move elsewhere, make-before-break, and nothing new is placed there.
pub const REMOVAL_TAINT: &str = "bascule.dev/member-removed";

impl MemberCluster {
    /// The taints the engine applies: the spec's, plus [`REMOVAL_TAINT`] once the object is being
    /// deleted.
    pub fn taints_in_force(&self) -> Vec<crate::api::Taint> {
        let mut taints = self.spec.taints.clone();
        if self.metadata.deletion_timestamp.is_some() {
            taints.push(crate::api::Taint {
                key: REMOVAL_TAINT.to_string(),
                value: None,
                effect: crate::api::TaintEffect::NoExecute,
            });
        }
        taints
    }
}

impl MemberClusterSpec {
    /// The provider in force: declared in the spec, else `detected` from the nodes now, else
    /// `recorded` in the status (the nodes were not listed yet). One rule for the engine, the
    /// status, `bascule plan` and `kubectl bascule`.
    pub fn provider_in_force(
        &self,
        detected: Option<Provider>,
        recorded: Option<Provider>,
    ) -> Option<Provider> {
        self.provider.or(detected).or(recorded)
    }

    /// The region in force, by the same rule as [`Self::provider_in_force`].
    pub fn region_in_force(
        &self,
        detected: Option<&str>,
        recorded: Option<&str>,
    ) -> Option<String> {
        self.region
            .as_deref()
            .or(detected)
            .or(recorded)
            .map(str::to_string)
    }
}

/// How Bascule reaches a member's API server. Exactly one method is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.kubeconfigSecretRef), has(self.eks), has(self.gke)].filter(x, x).size() == 1").message("spec.connection must set exactly one method: kubeconfigSecretRef, eks or gke; keep one and remove the others"))]
pub struct Connection {
    /// A Secret in the operator's namespace holding a kubeconfig (bearer token or client
    /// certificate). Exec plugins in it are refused unless the operator runs with
    /// `--allow-exec-plugins`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig_secret_ref: Option<SecretKeyRef>,

    /// An Amazon EKS cluster reached with the operator's own AWS identity: endpoint and CA from
    /// the EKS API (DescribeCluster), a bearer token signed in-process from the standard AWS
    /// credential chain (IRSA, EKS Pod Identity, environment, profiles). See docs/providers.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks: Option<EksConnection>,

    /// A Google GKE cluster reached with the operator's Application Default Credentials
    /// (Workload Identity, a service-account key, workload identity federation): endpoint and CA
    /// from the GKE API, a Google access token. See docs/providers.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gke: Option<GkeConnection>,
}

/// An EKS cluster, by name and region.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct EksConnection {
    /// The EKS cluster's name, as in `aws eks describe-cluster --name`.
    #[x_kube(validation = Rule::new("self.matches('^[0-9A-Za-z][A-Za-z0-9_-]*$')").message("spec.connection.eks.clusterName must be an EKS cluster name: letters, digits, '-' and '_', starting with a letter or digit"))]
    #[schemars(length(min = 1, max = 100))]
    pub cluster_name: String,
    /// The cluster's AWS region, for example `us-east-1`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z]{2}(-[a-z]+)+-[0-9]+$')").message("spec.connection.eks.region must be an AWS region like us-east-1"))]
    #[schemars(length(min = 1, max = 32))]
    pub region: String,
    /// An IAM role to assume (with the operator's own credentials) before calling EKS and
    /// signing the token; the EKS access entry then names this role.
    #[serde(default, rename = "roleARN", skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$')").message("spec.connection.eks.roleARN must be an IAM role ARN like arn:aws:iam::123456789012:role/bascule"))]
    #[schemars(length(min = 1, max = 2048))]
    pub role_arn: Option<String>,
}

/// A GKE cluster, by project, location and name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct GkeConnection {
    /// The Google Cloud project ID (not its number), for example `shop-prod-4711`.
    #[x_kube(validation = Rule::new("self.matches('^[a-z][-a-z0-9]{4,28}[a-z0-9]$')").message("spec.connection.gke.project must be a Google Cloud project ID: 6 to 30 lowercase letters, digits and '-', starting with a letter"))]
    #[schemars(length(min = 1, max = 30))]
    pub project: String,
    /// The cluster's region (regional cluster, e.g. `europe-west1`) or zone (zonal cluster, e.g.
    /// `europe-west1-b`).
    #[x_kube(validation = Rule::new("self.matches('^[a-z]+-[a-z]+[0-9]+(-[a-z])?$')").message("spec.connection.gke.location must be a Google Cloud region or zone like europe-west1 or europe-west1-b"))]
    #[schemars(length(min = 1, max = 64))]
    pub location: String,
    /// The GKE cluster's name.
    #[x_kube(validation = Rule::new("self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("spec.connection.gke.cluster must be a GKE cluster name: lowercase letters, digits and '-', starting with a letter"))]
    #[schemars(length(min = 1, max = 40))]
    pub cluster: String,
}

/// Probe period and thresholds. A cluster turns Unhealthy after `failureThreshold` failed probes
/// in a row, and is trusted again only after `successThreshold` successes in a row.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.timeoutSeconds <= self.periodSeconds").message("spec.health.timeoutSeconds must not exceed spec.health.periodSeconds; shorten the timeout or lengthen the period"))]
pub struct HealthSettings {
    /// Seconds between probes (default 2).
    #[serde(default = "default_period")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 300").message("spec.health.periodSeconds must be between 1 and 300"))]
    pub period_seconds: i32,
    /// Deadline of one probe in seconds (default 2).
    #[serde(default = "default_timeout")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 300").message("spec.health.timeoutSeconds must be between 1 and 300"))]
    pub timeout_seconds: i32,
    /// Failed probes in a row before the cluster is Unhealthy (default 3). Probes that time out
    /// come `periodSeconds` apart (4–6 s at the defaults, plus one timeout); refused connections
    /// are re-probed sooner (`quickConfirmation`: about 1 s).
    #[serde(default = "default_failure_threshold")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("spec.health.failureThreshold must be between 1 and 100"))]
    pub failure_threshold: i32,
    /// Successful probes in a row before an Unhealthy cluster is trusted again (default 15: 30 s).
    #[serde(default = "default_success_threshold")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.health.successThreshold must be between 1 and 1000"))]
    pub success_threshold: i32,
    /// When the member refuses a probe's connection outright (connection refused or closed: its
    /// control plane is down), probe again within a second instead of waiting for the period,
    /// so that `failureThreshold` refusals confirm the outage in about 1 s (never less) rather
    /// than `failureThreshold - 1` periods. A broken watch on the member triggers a probe at
    /// once, too. Timeouts and other failures keep the period. Default true.
    #[serde(default = "default_true")]
    pub quick_confirmation: bool,
}

fn default_true() -> bool {
    true
}

fn default_period() -> i32 {
    2
}
fn default_timeout() -> i32 {
    2
}
fn default_failure_threshold() -> i32 {
    3
}
fn default_success_threshold() -> i32 {
    15
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            period_seconds: default_period(),
            timeout_seconds: default_timeout(),
            failure_threshold: default_failure_threshold(),
            success_threshold: default_success_threshold(),
            quick_confirmation: true,
        }
    }
}

/// Health of a member as Bascule sees it.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum ClusterHealth {
    /// Not probed yet: nothing new is placed, nothing is moved away.
    #[default]
    Unknown,
    /// Probes pass: the cluster receives and keeps replicas.
    Healthy,
    /// Failed `failureThreshold` probes in a row: its replicas move elsewhere.
    Unhealthy,
    /// Passing again but not yet for long enough: keeps what it has, receives nothing new.
    Recovering,
}

impl std::fmt::Display for ClusterHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClusterHealth::Unknown => "Unknown",
            ClusterHealth::Healthy => "Healthy",
            ClusterHealth::Unhealthy => "Unhealthy",
            ClusterHealth::Recovering => "Recovering",
        })
    }
}

/// Observed state of a member cluster. Written only when something changed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberClusterStatus {
    /// `Ready` (placements may use it), `Reachable` (its API answers), with reasons and messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Health after hysteresis.
    #[serde(default)]
    pub health: ClusterHealth,
    /// When `health` last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_since: Option<Time>,
    /// Effective provider: `spec.provider`, or detected from the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    /// Effective region: `spec.region`, or detected from the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Kubernetes version reported by the member's `/version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Node counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeSummary>,
    /// Sum of the Ready nodes' allocatable resources, as quantities (`cpu`, `memory`, `pods`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
    /// Room left for new pods (allocatable minus requests of running pods), where known.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub available: BTreeMap<String, String>,
    /// Duration of the last successful probe, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_latency_ms: Option<i64>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Ready and total node counts, with a `ready/total` summary for `kubectl get`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    pub ready: i32,
    pub total: i32,
    /// `ready/total`, for printer columns.
    pub summary: String,
}
