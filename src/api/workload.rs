//! `MultiCloudWorkload`: what to run, how many, where it prefers to run, and how it fails over.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{ClusterSelector, Provider, Toleration};
use super::manifest::Manifest;

/// A workload placed across member clusters by provider preference, and moved when a cluster or
/// the workload fails.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "bascule.dev",
    version = "v1alpha1",
    kind = "MultiCloudWorkload",
    doc = "A workload placed across member clusters by provider preference (Divided, Duplicated or Failover), moved when a cluster or the workload fails and brought back after recovery.",
    plural = "multicloudworkloads",
    shortname = "mcw",
    category = "bascule",
    namespaced,
    status = "MultiCloudWorkloadStatus",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.placement.mode", description = "Divided, Duplicated or Failover"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired replicas"),
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.replicas.available", description = "Available replicas across all clusters"),
    printcolumn(name = "Placement", type_ = "string", json_path = ".status.placement", description = "Replicas per cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status", description = "kstatus Ready condition"),
    printcolumn(name = "Message", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].message", description = "Why it is (not) ready", priority = 1),
    printcolumn(name = "Last-Failover", type_ = "string", json_path = ".status.lastFailover.summary", description = "Last failover: from, to, duration", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 63").message("metadata.name must be at most 63 characters: it is written as a label value on every object placed in member clusters; choose a shorter name"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.placement.mode == 'Failover' || !has(self.placement.standbyReplicas) || self.placement.standbyReplicas == 0").message("spec.placement.standbyReplicas is only used in Failover mode; remove it or set spec.placement.mode: Failover"))]
#[x_kube(validation = Rule::new("self.placement.mode != 'Failover' || !has(self.placement.spread)").message("spec.placement.spread does not apply in Failover mode, where all replicas live in the first healthy tier; remove it and list each tier's clusters in the tier instead, or use mode Divided"))]
#[x_kube(validation = Rule::new("!has(self.placement.standbyReplicas) || self.placement.standbyReplicas <= self.replicas").message("spec.placement.standbyReplicas must not exceed spec.replicas; standby replicas stand in for active ones"))]
pub struct MultiCloudWorkloadSpec {
    /// Desired replicas: the total across clusters in `Divided` and `Failover` modes, the count in
    /// every selected cluster in `Duplicated` mode.
    #[serde(default = "default_replicas")]
    #[x_kube(validation = Rule::new("self >= 0").message("spec.replicas must be 0 or more"))]
    #[x_kube(validation = Rule::new("self <= 100000").message("spec.replicas must be at most 100000"))]
    pub replicas: i32,

    /// The manifests placed in each selected cluster, in the workload's namespace.
    pub template: WorkloadTemplate,

    /// Where the replicas go.
    #[serde(default)]
    pub placement: Placement,

    /// What happens when a cluster or the workload in it fails, and when it recovers.
    #[serde(default)]
    pub failover: FailoverPolicy,

    /// Per-provider or per-cluster changes to the manifests (image registry, annotations, patches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(o, self.exists_one(p, p.name == o.name))").message("spec.overrides has two entries with the same name; names must be unique"))]
    #[schemars(length(max = 64))]
    pub overrides: Vec<Override>,
}

fn default_replicas() -> i32 {
    1
}

/// The objects to place. Exactly one is a Deployment or StatefulSet (the workload whose replicas
/// Bascule divides or duplicates); the others (Service, ConfigMap, HorizontalPodAutoscaler, …)
/// are copied as they are into every cluster that receives replicas.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTemplate {
    /// Kubernetes objects, without `metadata.namespace` (they go to the workload's namespace).
    #[x_kube(validation = Rule::new("self.filter(m, m.kind == 'Deployment' || m.kind == 'StatefulSet').size() == 1").message("spec.template.manifests must hold exactly one Deployment or StatefulSet (the object whose replicas are placed); add one, or move the extra one to its own MultiCloudWorkload"))]
    #[x_kube(validation = Rule::new("self.all(m, !(m.kind == 'Deployment' || m.kind == 'StatefulSet') || m.apiVersion == 'apps/v1')").message("spec.template.manifests: a Deployment or StatefulSet must use apiVersion apps/v1"))]
    #[x_kube(validation = Rule::new("self.all(m, !(m.kind == 'Deployment' || m.kind == 'StatefulSet') || !has(m.spec) || !has(m.spec.replicas))").message("spec.template.manifests: remove spec.replicas from the Deployment/StatefulSet; Bascule sets it per cluster from spec.replicas"))]
    // `namespace` is a CEL reserved word: Kubernetes CEL documents the field as `__namespace__`.
    // kube-apiserver 1.35 also resolves `m.metadata.namespace`, but kube's client-side evaluator
    // (`bascule plan`, `validation::check`) only knows the escaped name, and never fired on it.
    #[x_kube(validation = Rule::new("self.all(m, !has(m.metadata.__namespace__))").message("spec.template.manifests: remove metadata.namespace; objects are placed in the MultiCloudWorkload's own namespace"))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.kind == m.kind && n.metadata.name == m.metadata.name))").message("spec.template.manifests has two objects of the same kind and name; keep one"))]
    #[x_kube(validation = Rule::new("self.all(m, m.kind.matches('^[A-Z][a-zA-Z0-9]*$'))").message("spec.template.manifests: kind must be written as the API serves it, in CamelCase (Deployment, not deployment)"))]
    #[x_kube(validation = Rule::new("self.all(m, !(m.kind == 'Secret' && has(m.type) && m.type == 'kubernetes.io/service-account-token'))").message("spec.template.manifests: a Secret of type kubernetes.io/service-account-token would mint a token of a member ServiceAccount; it is never placed: use a projected token volume in the pod instead"))]
    #[x_kube(validation = Rule::new("self.all(m, !(m.kind == 'RoleBinding' && has(m.roleRef) && has(m.roleRef.kind) && m.roleRef.kind != 'Role'))").message("spec.template.manifests: a RoleBinding may bind only a Role of its own namespace (roleRef.kind: Role), never a ClusterRole such as cluster-admin"))]
    #[x_kube(validation = Rule::new("self.all(m, !m.kind.matches('^(?i)(namespace|node|clusterrole|clusterrolebinding|customresourcedefinition|persistentvolume|storageclass|priorityclass|mutatingwebhookconfiguration|validatingwebhookconfiguration)$'))").message("spec.template.manifests: cluster-scoped kinds (Namespace, ClusterRole, CustomResourceDefinition, …) cannot be placed by a namespaced workload; install them in the members separately"))]
    #[schemars(length(min = 1, max = 32))]
    pub manifests: Vec<Manifest>,
}

/// How replicas are spread.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum PlacementMode {
    /// `replicas` is split across the selected clusters by tier weight.
    #[default]
    Divided,
    /// Every selected cluster runs `replicas`.
    Duplicated,
    /// All replicas run in the most preferred tier that has a healthy cluster; later tiers are
    /// fallbacks.
    Failover,
}

impl std::fmt::Display for PlacementMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlacementMode::Divided => "Divided",
            PlacementMode::Duplicated => "Duplicated",
            PlacementMode::Failover => "Failover",
        })
    }
}

/// Where replicas go.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// `Divided` (default), `Duplicated` or `Failover`.
    #[serde(default)]
    pub mode: PlacementMode,

    /// Ordered groups of clusters. A cluster belongs to the first tier it matches; clusters that
    /// match no tier are not used. No tiers at all: every cluster is in one tier. In `Divided`
    /// mode the tiers share the replicas by weight; in `Failover` mode the first tier with a healthy
    /// cluster takes them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(validation = Rule::new("self.all(t, !has(t.name) || self.exists_one(u, has(u.name) && u.name == t.name))").message("spec.placement.tiers has two tiers with the same name; names must be unique"))]
    #[x_kube(validation = Rule::new("self.all(t, self.exists_one(u, (has(u.providers) ? u.providers : []) == (has(t.providers) ? t.providers : []) && (has(u.regions) ? u.regions : []) == (has(t.regions) ? t.regions : []) && (has(u.clusterNames) ? u.clusterNames : []) == (has(t.clusterNames) ? t.clusterNames : []) && has(u.labelSelector) == has(t.labelSelector) && (!has(u.labelSelector) || u.labelSelector == t.labelSelector)))").message("spec.placement.tiers has two tiers that select the same clusters; the second could never be used: merge them or change one's selector"))]
    #[schemars(length(max = 16))]
    pub tiers: Vec<Tier>,

    /// Spread constraints across providers and clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<SpreadConstraints>,

    /// Bounds on the replicas of each selected cluster (a tier's own bounds take precedence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_replicas: Option<ReplicaBounds>,

    /// Lets this workload use or stay on clusters with matching taints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub tolerations: Vec<Toleration>,

    /// `Failover` mode only: warm standby replicas kept in the next tier that has a healthy
    /// cluster, on top of `replicas`, so that a failover starts from running pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100000").message("spec.placement.standbyReplicas must be between 0 and 100000"))]
    pub standby_replicas: Option<i32>,
}

/// A preference tier: which clusters, and their share.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// Name shown in explanations (default: `tier N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub name: Option<String>,

    /// Which clusters belong to this tier.
    #[serde(flatten)]
    pub selector: ClusterSelector,

    /// Share of the replicas in `Divided` mode, relative to the other tiers' weights (1–1000,
    /// default 1). Clusters within a tier share its replicas equally.
    #[serde(default = "default_weight")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.placement.tiers[].weight must be between 1 and 1000"))]
    pub weight: i32,

    /// Bounds on the replicas of each cluster of this tier, overriding `placement.clusterReplicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_replicas: Option<ReplicaBounds>,
}

fn default_weight() -> i32 {
    1
}

/// Spread constraints. Unsatisfiable constraints do not block placement: Bascule places as well as
/// it can and reports the shortfall in status.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minClusters) || !has(self.maxClusters) || self.minClusters <= self.maxClusters").message("spec.placement.spread.minClusters must not exceed spec.placement.spread.maxClusters"))]
pub struct SpreadConstraints {
    /// Replicas run on clusters of at least this many providers (1–3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 3").message("spec.placement.spread.minProviders must be between 1 and 3 (aws, gcp, other)"))]
    pub min_providers: Option<i32>,
    /// Replicas run on at least this many clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.placement.spread.minClusters must be between 1 and 1000"))]
    pub min_clusters: Option<i32>,
    /// Replicas run on at most this many clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 1000").message("spec.placement.spread.maxClusters must be between 1 and 1000"))]
    pub max_clusters: Option<i32>,
}

/// Bounds on one cluster's replicas.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas").message("clusterReplicas.minReplicas must not exceed clusterReplicas.maxReplicas"))]
pub struct ReplicaBounds {
    /// Every selected cluster gets at least this many replicas (if the total allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 100000").message("clusterReplicas.minReplicas must be between 0 and 100000"))]
    pub min_replicas: Option<i32>,
    /// No cluster gets more than this many replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100000").message("clusterReplicas.maxReplicas must be between 1 and 100000; to keep a cluster empty, leave it out of the tiers"))]
    pub max_replicas: Option<i32>,
}

/// What happens on failure and recovery.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FailoverPolicy {
    /// Move replicas off clusters that turn Unhealthy (default true). A `NoExecute` taint, set by
    /// hand, drains the cluster whatever this says, unless a toleration matches it.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Seconds a cluster must stay Unhealthy before its replicas move (default 0: the cluster's
    /// health thresholds already filter blips).
    #[serde(default)]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 3600").message("spec.failover.clusterTolerationSeconds must be between 0 and 3600"))]
    pub cluster_toleration_seconds: i32,
    /// Seconds the workload may stay unavailable in one cluster (pods not Ready) before its
    /// replicas there move elsewhere (default 300; 0 disables application failover).
    #[serde(default = "default_app_toleration")]
    #[x_kube(validation = Rule::new("self == 0 || (self >= 10 && self <= 86400)").message("spec.failover.applicationTolerationSeconds must be 0 (off) or between 10 and 86400"))]
    pub application_toleration_seconds: i32,
    /// What happens to replicas on the cluster being left: `Gracefully` (default) removes them
    /// once the replacements are Available, `Directly` removes them at once, `Never` leaves them.
    #[serde(default)]
    pub purge_mode: PurgeMode,
    /// How replicas return to the preferred placement after a recovery.
    #[serde(default)]
    pub failback: Failback,
    /// At most `maxMoves` failovers or failbacks within `windowSeconds`; beyond it the workload
    /// stays where it is and says so.
    #[serde(default)]
    pub budget: MoveBudget,
}

fn default_true() -> bool {
    true
}
fn default_app_toleration() -> i32 {
    300
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            enabled: true,
            cluster_toleration_seconds: 0,
            application_toleration_seconds: default_app_toleration(),
            purge_mode: PurgeMode::default(),
            failback: Failback::default(),
            budget: MoveBudget::default(),
        }
    }
}

/// What happens to the replicas left behind by a move.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum PurgeMode {
    /// Remove them once the replacements are Available elsewhere (make-before-break).
    #[default]
    Gracefully,
    /// Remove them at once.
    Directly,
    /// Leave them running; a person removes them.
    Never,
}

/// Failback after a recovery.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Failback {
    /// `Automatic` (default): return after the recovered cluster has been healthy for
    /// `stabilizationWindowSeconds`. `Manual`: stay until asked (annotation
    /// `bascule.dev/failback-requested`).
    #[serde(default)]
    pub mode: FailbackMode,
    /// Seconds a recovered cluster must stay healthy before replicas return (default 300).
    #[serde(default = "default_stabilization")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 86400").message("spec.failover.failback.stabilizationWindowSeconds must be between 0 and 86400"))]
    pub stabilization_window_seconds: i32,
}

fn default_stabilization() -> i32 {
    300
}

impl Default for Failback {
    fn default() -> Self {
        Failback {
            mode: FailbackMode::default(),
            stabilization_window_seconds: default_stabilization(),
        }
    }
}

/// Failback mode.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum FailbackMode {
    #[default]
    Automatic,
    Manual,
}

/// A budget of moves per time window.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MoveBudget {
    /// Moves allowed per window (default 3).
    #[serde(default = "default_max_moves")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100").message("spec.failover.budget.maxMoves must be between 1 and 100"))]
    pub max_moves: i32,
    /// Window length in seconds (default 3600).
    #[serde(default = "default_budget_window")]
    #[x_kube(validation = Rule::new("self >= 60 && self <= 604800").message("spec.failover.budget.windowSeconds must be between 60 and 604800 (a week)"))]
    pub window_seconds: i32,
}

fn default_max_moves() -> i32 {
    3
}
fn default_budget_window() -> i32 {
    3600
}

impl Default for MoveBudget {
    fn default() -> Self {
        MoveBudget {
            max_moves: default_max_moves(),
            window_seconds: default_budget_window(),
        }
    }
}

/// Changes applied to the manifests for some clusters only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.imageRegistry) || (has(self.manifests) && size(self.manifests) > 0)").message("spec.overrides[]: set imageRegistry or manifests; an override that changes nothing is a mistake"))]
pub struct Override {
    /// Name of the override, shown in status.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// The clusters it applies to.
    pub clusters: ClusterSelector,
    /// Rewrites the registry of every container image, for example from an ECR registry to an
    /// Artifact Registry repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_registry: Option<ImageRegistryRewrite>,
    /// Changes to some manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub manifests: Vec<ManifestOverride>,
}

/// Replaces an image registry prefix.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRegistryRewrite {
    /// Registry prefix to replace, for example `123456789012.dkr.ecr.us-east-1.amazonaws.com`.
    /// Empty: every image's registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub from: Option<String>,
    /// Replacement prefix, for example `europe-west1-docker.pkg.dev/my-project/images`.
    #[x_kube(validation = Rule::new("self != '' && !self.endsWith('/')").message("spec.overrides[].imageRegistry.to must be a registry prefix without a trailing '/'"))]
    #[schemars(length(max = 253))]
    pub to: String,
}

/// Changes to the manifests that match `kind` and `name`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestOverride {
    /// Kind of the manifests to change; empty: every kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub kind: Option<String>,
    /// Name of the manifest to change; empty: every name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// Annotations merged into `metadata.annotations` (for example a cloud's load balancer
    /// settings on a Service).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels merged into `metadata.labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// RFC 6902 JSON patch operations, applied after annotations and labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub json_patch: Vec<PatchOperation>,
}

/// One JSON patch operation. (`add`/`replace` without a value is reported when the override is
/// rendered: the API server's CEL cannot see a field of any JSON type such as `value`.)
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PatchOperation {
    /// `add`, `replace` or `remove`.
    pub op: PatchOp,
    /// JSON pointer, for example `/spec/template/spec/nodeSelector`.
    #[x_kube(validation = Rule::new("self.startsWith('/')").message("spec.overrides[].manifests[].jsonPatch[].path must be a JSON pointer starting with '/'"))]
    #[x_kube(validation = Rule::new("!(self in ['/', '/kind', '/apiVersion', '/metadata', '/metadata/name'])").message("spec.overrides[].manifests[].jsonPatch[].path must not rewrite kind, apiVersion or metadata.name: an override changes an object, never which object it is"))]
    #[x_kube(validation = Rule::new("!self.startsWith('/metadata/namespace') && !self.startsWith('/metadata/labels/bascule.dev') && !self.startsWith('/spec/replicas')").message("spec.overrides[].manifests[].jsonPatch[].path must not touch metadata.namespace, Bascule's own labels or spec.replicas"))]
    #[schemars(length(max = 1024))]
    pub path: String,
    /// Value for `add` and `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::manifest::any_value_schema")]
    pub value: Option<serde_json::Value>,
}

/// JSON patch operations supported in overrides.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
}

/// Observed state of a MultiCloudWorkload, following kstatus conventions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MultiCloudWorkloadStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Progressing`, `Degraded`, `FailbackPending`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Totals across clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaCounts>,
    /// `cluster=replicas` for each cluster with replicas, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<String>,
    /// One row per cluster that has, or is getting, replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterPlacementStatus>,
    /// The last placement decision and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionStatus>,
    /// The last failover or failback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failover: Option<FailoverRecord>,
    /// `apiVersion/kind` of every kind of object placed in members (e.g. `apps/v1/Deployment`),
    /// so that objects of a kind later removed from the template are still pruned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Start times of the failovers and failbacks within `spec.failover.budget.windowSeconds`,
    /// oldest first: what the move budget counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_moves: Vec<Time>,
    /// The value of the annotation `bascule.dev/failback-requested` last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_failback_request: Option<String>,
    /// Clusters this generation of the workload failed in (no replica available for
    /// `applicationTolerationSeconds`). They get no replica of it again — no automatic failback
    /// there — until the spec changes (a new generation) or a failback is requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub application_failures: Vec<ApplicationFailure>,
}

/// A cluster where the workload failed, not the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationFailure {
    pub cluster: String,
    /// Since when no replica was available there.
    pub since: Time,
    /// The `metadata.generation` that failed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Desired, ready and available replica counts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaCounts {
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
}

/// What one cluster runs of this workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlacementStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    /// `Active`, `Surging` (growing toward its target), `Draining` (being emptied) or `Pending`.
    pub state: ClusterPlacementState,
    /// Since when the workload has had no available replica here although it should; after
    /// `spec.failover.applicationTolerationSeconds` its replicas move elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_since: Option<Time>,
}

/// A cluster's role in the workload's current placement.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, schemars::JsonSchema,
)]
pub enum ClusterPlacementState {
    #[default]
    Pending,
    Active,
    Surging,
    Draining,
}

/// The last decision of the placement engine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionStatus {
    /// `Satisfied`, `Degraded`, `FailStatic` or `Unschedulable`.
    pub outcome: String,
    /// One sentence on the decision.
    pub message: String,
    /// Every cluster considered, selected or not, with its score and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterDecisionStatus>,
}

/// One cluster in a decision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDecisionStatus {
    pub name: String,
    pub selected: bool,
    pub replicas: i32,
    pub score: i32,
    pub reason: String,
}

/// A failover or failback, from start to completion.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverRecord {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub reason: String,
    pub started_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// `from → to in Ns`, for `kubectl get -o wide`.
    pub summary: String,
}
