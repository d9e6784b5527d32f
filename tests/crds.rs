//! The CRDs under `crds/` are what the Rust types generate, and their CEL rules accept good
//! objects and refuse bad ones with the exact messages users will see from `kubectl apply`.
//!
//! The rules are evaluated client-side with `bascule::api::validation::check` (kube's CEL
//! validator, which applies schema defaults first, as the API server does).

use std::collections::BTreeSet;

use bascule::api::validation::{Violation, check};
use bascule::api::{crd_file_name, crd_yaml, crds};
use serde_json::{Value, json};

/// This checkout, read at run time: the shared build cache (scripts/lib.sh) can hold a test
/// binary built from another checkout, whose compile-time path would point there.
fn repo() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

// ---------------------------------------------------------------------------------------------
// Drift: crds/ is generated, never edited.
// ---------------------------------------------------------------------------------------------

const REGENERATE: &str = "run `cargo run -q -- crd --out-dir crds` and commit the result";

#[test]
fn crd_files_match_the_rust_types() {
    let dir = repo().join("crds");
    let mut stale = Vec::new();
    for crd in crds() {
        let name = crd_file_name(&crd);
        let want = crd_yaml(&crd);
        match std::fs::read_to_string(dir.join(&name)) {
            Ok(have) if have == want => {}
            Ok(have) => stale.push(format!(
                "crds/{name} differs from the Rust types ({}",
                first_difference(&have, &want)
            )),
            Err(e) => stale.push(format!("crds/{name} cannot be read: {e}")),
        }
    }
    assert!(stale.is_empty(), "{}\n{REGENERATE}", stale.join("\n"));
}

#[test]
fn crds_dir_holds_no_file_that_no_crd_produces() {
    let dir = repo().join("crds");
    let expected: BTreeSet<String> = crds().iter().map(crd_file_name).collect();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("crds/ exists") {
        let name = entry.expect("crds/ is readable").file_name();
        let name = name.to_string_lossy().into_owned();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if is_yaml && !expected.contains(&name) {
            orphans.push(format!("crds/{name}"));
        }
    }
    assert!(
        orphans.is_empty(),
        "{} no CRD produces: delete, then {REGENERATE}",
        orphans.join(", ")
    );
}

/// `line N: have …, want …` for the first line that differs.
fn first_difference(have: &str, want: &str) -> String {
    let mut have_lines = have.lines();
    let mut want_lines = want.lines();
    for n in 1.. {
        match (have_lines.next(), want_lines.next()) {
            (Some(h), Some(w)) if h == w => continue,
            (None, None) => return "line endings or final newline differ)".to_string(),
            (h, w) => {
                return format!(
                    "first at line {n}: file has {:?}, the types give {:?})",
                    h.unwrap_or("<end of file>"),
                    w.unwrap_or("<end of file>")
                );
            }
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------------------------------
// Good objects.
// ---------------------------------------------------------------------------------------------

const MC: &str = "MemberCluster";
const MCW: &str = "MultiCloudWorkload";

/// An EKS cluster with a connection, a cordon and tuned health probing.
fn member_cluster() -> Value {
    json!({
        "apiVersion": "bascule.dev/v1alpha1",
        "kind": "MemberCluster",
        "metadata": {"name": "eks-us-east-1", "labels": {"env": "prod"}},
        "spec": {
            "provider": "aws",
            "region": "us-east-1",
            "connection": {
                "kubeconfigSecretRef": {"name": "eks-us-east-1-kubeconfig", "key": "kubeconfig"}
            },
            "taints": [
                {"key": "maintenance", "value": "planned", "effect": "NoSchedule"},
                {"key": "maintenance", "effect": "NoExecute"}
            ],
            "health": {
                "periodSeconds": 5,
                "timeoutSeconds": 3,
                "failureThreshold": 3,
                "successThreshold": 10
            }
        }
    })
}

/// A GKE cluster that relies on detection and defaults for everything optional.
fn minimal_member_cluster() -> Value {
    json!({
        "apiVersion": "bascule.dev/v1alpha1",
        "kind": "MemberCluster",
        "metadata": {"name": "gke-europe-west1"},
        "spec": {
            "connection": {"kubeconfigSecretRef": {"name": "gke-europe-west1-kubeconfig"}}
        }
    })
}

fn deployment(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{
                        "name": name,
                        "image": image,
                        "ports": [{"containerPort": 8080}],
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}
                    }]
                }
            }
        }
    })
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 8080}]
        }
    })
}

/// Failover: prefer EKS in us-east-1, else GKE in europe-west1, with a warm standby.
fn failover_workload() -> Value {
    json!({
        "apiVersion": "bascule.dev/v1alpha1",
        "kind": "MultiCloudWorkload",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {
            "replicas": 6,
            "template": {
                "manifests": [
                    deployment("checkout", "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout:1.4.2"),
                    service("checkout")
                ]
            },
            "placement": {
                "mode": "Failover",
                "tiers": [
                    {"name": "eks-us-east-1", "providers": ["aws"], "regions": ["us-east-1"]},
                    {"name": "gke-europe-west1", "providers": ["gcp"], "regions": ["europe-west1"]}
                ],
                "standbyReplicas": 2,
                "clusterReplicas": {"minReplicas": 1, "maxReplicas": 10},
                "tolerations": [{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}]
            },
            "failover": {
                "enabled": true,
                "clusterTolerationSeconds": 30,
                "applicationTolerationSeconds": 120,
                "purgeMode": "Gracefully",
                "failback": {"mode": "Automatic", "stabilizationWindowSeconds": 600},
                "budget": {"maxMoves": 3, "windowSeconds": 3600}
            },
            "overrides": [
                {
                    "name": "gcp-registry",
                    "clusters": {"providers": ["gcp"]},
                    "imageRegistry": {
                        "from": "123456789012.dkr.ecr.us-east-1.amazonaws.com",
                        "to": "europe-west1-docker.pkg.dev/shop-prod/images"
                    },
                    "manifests": [{
                        "kind": "Service",
                        "name": "checkout",
                        "annotations": {"cloud.google.com/neg": "{\"ingress\": true}"}
                    }]
                },
                {
                    "name": "aws-on-demand",
                    "clusters": {"providers": ["aws"]},
                    "manifests": [{
                        "kind": "Deployment",
                        "name": "checkout",
                        "jsonPatch": [
                            {
                                "op": "add",
                                "path": "/spec/template/spec/nodeSelector",
                                "value": {"karpenter.sh/capacity-type": "on-demand"}
                            },
                            {"op": "remove", "path": "/spec/template/spec/tolerations"}
                        ]
                    }]
                }
            ]
        }
    })
}

/// Divided: 70 % on AWS, 30 % on GCP, on at least two providers.
fn divided_workload() -> Value {
    json!({
        "apiVersion": "bascule.dev/v1alpha1",
        "kind": "MultiCloudWorkload",
        "metadata": {"name": "catalog", "namespace": "shop"},
        "spec": {
            "replicas": 10,
            "template": {
                "manifests": [
                    deployment("catalog", "ghcr.io/example/catalog:2.0.0"),
                    service("catalog"),
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "catalog-config"},
                        "data": {"LOG_LEVEL": "info"}
                    }
                ]
            },
            "placement": {
                "mode": "Divided",
                "tiers": [
                    {"name": "aws", "providers": ["aws"], "weight": 70},
                    {
                        "name": "gcp",
                        "providers": ["gcp"],
                        "weight": 30,
                        "clusterReplicas": {"minReplicas": 1, "maxReplicas": 5}
                    }
                ],
                "spread": {"minProviders": 2, "minClusters": 2, "maxClusters": 4}
            }
        }
    })
}

fn eks() -> Value {
    json!({"clusterName": "shop-prod", "region": "us-east-1", "roleARN": "arn:aws:iam::123456789012:role/bascule-hub"})
}

fn gke() -> Value {
    json!({"project": "shop-prod-4711", "location": "europe-west1", "cluster": "shop-prod"})
}

#[test]
fn good_objects_pass() {
    let eks_member = with(member_cluster(), |o| {
        set(o, "/spec/connection", json!({"eks": eks()}))
    });
    let zonal_gke_member = with(member_cluster(), |o| {
        set(o, "/spec/connection", json!({"gke": gke()}));
        set(o, "/spec/connection/gke/location", json!("europe-west1-b"));
    });
    let eks_without_role = with(member_cluster(), |o| {
        set(o, "/spec/connection", json!({"eks": eks()}));
        remove(o, "/spec/connection/eks/roleARN");
    });
    // The RBAC and Secret rules refuse only what they name.
    let with_role_binding_and_secret = with(failover_workload(), |o| {
        set(
            o,
            "/spec/template/manifests/-",
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "reader"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
        );
        set(
            o,
            "/spec/template/manifests/-",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "type": "Opaque", "stringData": {"k": "v"}}),
        );
    });
    for (kind, object) in [
        (MC, member_cluster()),
        (MC, minimal_member_cluster()),
        (MC, eks_member),
        (MC, zonal_gke_member),
        (MC, eks_without_role),
        (MCW, failover_workload()),
        (MCW, divided_workload()),
        (MCW, with_role_binding_and_secret),
    ] {
        let name = object["metadata"]["name"].clone();
        if let Err(violations) = check(kind, &object) {
            panic!("{kind} {name} should pass, got {violations:#?}");
        }
    }
}

#[test]
fn minimal_workload_passes_with_defaults() {
    // Everything but the template defaulted: Divided over every cluster, one replica.
    let object = json!({
        "apiVersion": "bascule.dev/v1alpha1",
        "kind": "MultiCloudWorkload",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"template": {"manifests": [deployment("hello", "nginx:1.27")]}}
    });
    assert_eq!(check(MCW, &object), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Pointer-mutation helpers.
// ---------------------------------------------------------------------------------------------

/// Sets the value at a JSON pointer, creating missing objects on the way; `-` appends to an array.
fn set(object: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer starts with '/'");
    let mut node = object;
    for token in parent.split('/').skip(1) {
        node = match node {
            Value::Object(map) => map.entry(token).or_insert_with(|| json!({})),
            Value::Array(items) => {
                let i: usize = token.parse().expect("array index");
                &mut items[i]
            }
            other => panic!("cannot descend into {other} at {token} of {pointer}"),
        };
    }
    match node {
        Value::Object(map) => {
            map.insert(last.to_string(), value);
        }
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => items[last.parse::<usize>().expect("array index")] = value,
        other => panic!("cannot set {last} of {other} at {pointer}"),
    }
}

/// Removes the value at a JSON pointer, which must exist.
fn remove(object: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointer starts with '/'");
    match object.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(last)
                .unwrap_or_else(|| panic!("nothing at {pointer}"));
        }
        Some(Value::Array(items)) => {
            items.remove(last.parse::<usize>().expect("array index"));
        }
        _ => panic!("nothing at {parent}"),
    }
}

/// A copy of `base` with `edit` applied.
fn with(base: Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut object = base;
    edit(&mut object);
    object
}

fn v(field: &str, message: &str) -> Violation {
    Violation {
        field: field.to_string(),
        message: message.to_string(),
    }
}

/// `check` refuses `object` with exactly the `expected` violations (in any order).
#[track_caller]
fn assert_refused(case: &str, kind: &str, object: &Value, expected: &[Violation]) {
    if let Err(failure) = refused(case, kind, object, expected) {
        panic!("{failure}");
    }
}

/// Like [`assert_refused`], but returns the failure so that a table of cases reports them all.
fn refused(case: &str, kind: &str, object: &Value, expected: &[Violation]) -> Result<(), String> {
    let got = match check(kind, object) {
        Ok(()) => {
            return Err(format!(
                "{case}: {kind} was accepted, expected {expected:#?}"
            ));
        }
        Err(got) => got,
    };
    let sorted = |vs: &[Violation]| {
        let mut vs: Vec<(String, String)> = vs
            .iter()
            .map(|v| (v.field.clone(), v.message.clone()))
            .collect();
        vs.sort();
        vs
    };
    if sorted(&got) == sorted(expected) {
        Ok(())
    } else {
        Err(format!(
            "{case}: {kind} refused with other violations than expected\n   got: {:#?}\n  want: {:#?}",
            sorted(&got),
            sorted(expected)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The rules' messages, copied from src/api/. A reworded message must be changed here too.
// ---------------------------------------------------------------------------------------------

mod msg {
    // MultiCloudWorkload
    pub const MCW_NAME: &str = "metadata.name must be at most 63 characters: it is written as a label value on every object placed in member clusters; choose a shorter name";
    pub const REPLICAS_MIN: &str = "spec.replicas must be 0 or more";
    pub const REPLICAS_MAX: &str = "spec.replicas must be at most 100000";
    pub const STANDBY_NOT_FAILOVER: &str = "spec.placement.standbyReplicas is only used in Failover mode; remove it or set spec.placement.mode: Failover";
    pub const SPREAD_IN_FAILOVER: &str = "spec.placement.spread does not apply in Failover mode, where all replicas live in the first healthy tier; remove it and list each tier's clusters in the tier instead, or use mode Divided";
    pub const STANDBY_OVER_REPLICAS: &str = "spec.placement.standbyReplicas must not exceed spec.replicas; standby replicas stand in for active ones";
    pub const STANDBY_MIN: &str = "spec.placement.standbyReplicas must be between 0 and 100000";
    pub const ONE_WORKLOAD: &str = "spec.template.manifests must hold exactly one Deployment or StatefulSet (the object whose replicas are placed); add one, or move the extra one to its own MultiCloudWorkload";
    pub const APPS_V1: &str =
        "spec.template.manifests: a Deployment or StatefulSet must use apiVersion apps/v1";
    pub const NO_SPEC_REPLICAS: &str = "spec.template.manifests: remove spec.replicas from the Deployment/StatefulSet; Bascule sets it per cluster from spec.replicas";
    pub const NO_NAMESPACE: &str = "spec.template.manifests: remove metadata.namespace; objects are placed in the MultiCloudWorkload's own namespace";
    pub const UNIQUE_MANIFESTS: &str =
        "spec.template.manifests has two objects of the same kind and name; keep one";
    pub const KIND_CASE: &str = "spec.template.manifests: kind must be written as the API serves it, in CamelCase (Deployment, not deployment)";
    pub const PATCH_IDENTITY: &str = "spec.overrides[].manifests[].jsonPatch[].path must not rewrite kind, apiVersion or metadata.name: an override changes an object, never which object it is";
    pub const CLUSTER_SCOPED: &str = "spec.template.manifests: cluster-scoped kinds (Namespace, ClusterRole, CustomResourceDefinition, …) cannot be placed by a namespaced workload; install them in the members separately";
    pub const SA_TOKEN: &str = "spec.template.manifests: a Secret of type kubernetes.io/service-account-token would mint a token of a member ServiceAccount; it is never placed: use a projected token volume in the pod instead";
    pub const CLUSTER_ROLE_BINDING: &str = "spec.template.manifests: a RoleBinding may bind only a Role of its own namespace (roleRef.kind: Role), never a ClusterRole such as cluster-admin";
    pub const TIER_NAMES: &str =
        "spec.placement.tiers has two tiers with the same name; names must be unique";
    pub const TIER_SELECTORS: &str = "spec.placement.tiers has two tiers that select the same clusters; the second could never be used: merge them or change one's selector";
    pub const WEIGHT: &str = "spec.placement.tiers[].weight must be between 1 and 1000";
    pub const MIN_OVER_MAX_CLUSTERS: &str =
        "spec.placement.spread.minClusters must not exceed spec.placement.spread.maxClusters";
    pub const MIN_PROVIDERS: &str =
        "spec.placement.spread.minProviders must be between 1 and 3 (aws, gcp, other)";
    pub const MIN_CLUSTERS: &str = "spec.placement.spread.minClusters must be between 1 and 1000";
    pub const MAX_CLUSTERS: &str = "spec.placement.spread.maxClusters must be between 1 and 1000";
    pub const MIN_OVER_MAX_REPLICAS: &str =
        "clusterReplicas.minReplicas must not exceed clusterReplicas.maxReplicas";
    pub const MIN_REPLICAS: &str = "clusterReplicas.minReplicas must be between 0 and 100000";
    pub const MAX_REPLICAS: &str = "clusterReplicas.maxReplicas must be between 1 and 100000; to keep a cluster empty, leave it out of the tiers";
    pub const CLUSTER_TOLERATION: &str =
        "spec.failover.clusterTolerationSeconds must be between 0 and 3600";
    pub const APP_TOLERATION: &str =
        "spec.failover.applicationTolerationSeconds must be 0 (off) or between 10 and 86400";
    pub const STABILIZATION: &str =
        "spec.failover.failback.stabilizationWindowSeconds must be between 0 and 86400";
    pub const MAX_MOVES: &str = "spec.failover.budget.maxMoves must be between 1 and 100";
    pub const WINDOW: &str =
        "spec.failover.budget.windowSeconds must be between 60 and 604800 (a week)";
    pub const OVERRIDE_NAMES: &str =
        "spec.overrides has two entries with the same name; names must be unique";
    pub const OVERRIDE_NOOP: &str = "spec.overrides[]: set imageRegistry or manifests; an override that changes nothing is a mistake";
    pub const REGISTRY_TO: &str =
        "spec.overrides[].imageRegistry.to must be a registry prefix without a trailing '/'";
    pub const PATCH_POINTER: &str =
        "spec.overrides[].manifests[].jsonPatch[].path must be a JSON pointer starting with '/'";
    pub const PATCH_FORBIDDEN: &str = "spec.overrides[].manifests[].jsonPatch[].path must not touch metadata.namespace, Bascule's own labels or spec.replicas";

    // MemberCluster
    pub const MC_NAME: &str = "metadata.name must be a DNS label (lowercase letters, digits and '-', at most 63 characters): it is used in labels and status; rename the MemberCluster";
    pub const REGION: &str =
        "spec.region must be lowercase letters, digits and '-', like us-east-1 or europe-west1";
    pub const CONNECTION: &str = "spec.connection must set exactly one method: kubeconfigSecretRef, eks or gke; keep one and remove the others";
    pub const EKS_CLUSTER: &str = "spec.connection.eks.clusterName must be an EKS cluster name: letters, digits, '-' and '_', starting with a letter or digit";
    pub const EKS_REGION: &str = "spec.connection.eks.region must be an AWS region like us-east-1";
    pub const EKS_ROLE: &str = "spec.connection.eks.roleARN must be an IAM role ARN like arn:aws:iam::123456789012:role/bascule";
    pub const GKE_PROJECT: &str = "spec.connection.gke.project must be a Google Cloud project ID: 6 to 30 lowercase letters, digits and '-', starting with a letter";
    pub const GKE_LOCATION: &str = "spec.connection.gke.location must be a Google Cloud region or zone like europe-west1 or europe-west1-b";
    pub const GKE_CLUSTER: &str = "spec.connection.gke.cluster must be a GKE cluster name: lowercase letters, digits and '-', starting with a letter";
    pub const TAINTS: &str =
        "spec.taints has the same key and effect twice; keep one entry per key and effect";
    pub const TIMEOUT_OVER_PERIOD: &str = "spec.health.timeoutSeconds must not exceed spec.health.periodSeconds; shorten the timeout or lengthen the period";
    pub const PERIOD: &str = "spec.health.periodSeconds must be between 1 and 300";
    pub const TIMEOUT: &str = "spec.health.timeoutSeconds must be between 1 and 300";
    pub const FAILURE_THRESHOLD: &str = "spec.health.failureThreshold must be between 1 and 100";
    pub const SUCCESS_THRESHOLD: &str = "spec.health.successThreshold must be between 1 and 1000";
}

// ---------------------------------------------------------------------------------------------
// Bad inputs: each a small mutation of a good object, refused with one exact message.
// ---------------------------------------------------------------------------------------------

struct Bad {
    case: &'static str,
    kind: &'static str,
    object: Value,
    expected: Vec<Violation>,
}

fn bad(case: &'static str, kind: &'static str, object: Value, field: &str, message: &str) -> Bad {
    Bad {
        case,
        kind,
        object,
        expected: vec![v(field, message)],
    }
}

fn bad_workloads() -> Vec<Bad> {
    let f = failover_workload;
    let d = divided_workload;
    let sixty_four = "a".repeat(64);
    vec![
        // spec.replicas
        bad(
            "negative replicas",
            MCW,
            with(d(), |o| set(o, "/spec/replicas", json!(-1))),
            "spec.replicas",
            msg::REPLICAS_MIN,
        ),
        bad(
            "replicas above 100000",
            MCW,
            with(d(), |o| set(o, "/spec/replicas", json!(100_001))),
            "spec.replicas",
            msg::REPLICAS_MAX,
        ),
        // tiers
        bad(
            "tier weight 0",
            MCW,
            with(d(), |o| set(o, "/spec/placement/tiers/1/weight", json!(0))),
            "spec.placement.tiers[1].weight",
            msg::WEIGHT,
        ),
        bad(
            "tier weight 1001",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/tiers/0/weight", json!(1001))
            }),
            "spec.placement.tiers[0].weight",
            msg::WEIGHT,
        ),
        bad(
            "two tiers with the same name",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/tiers/1/name", json!("eks-us-east-1"))
            }),
            "spec.placement.tiers",
            msg::TIER_NAMES,
        ),
        bad(
            "two tiers with the same selector",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/tiers/1/providers", json!(["aws"]));
                set(o, "/spec/placement/tiers/1/regions", json!(["us-east-1"]));
            }),
            "spec.placement.tiers",
            msg::TIER_SELECTORS,
        ),
        bad(
            "two tiers with the same label selector",
            MCW,
            with(d(), |o| {
                let selector = json!({"matchLabels": {"env": "prod"}});
                set(
                    o,
                    "/spec/placement/tiers/0/providers",
                    json!(["aws", "gcp"]),
                );
                set(
                    o,
                    "/spec/placement/tiers/1/providers",
                    json!(["aws", "gcp"]),
                );
                set(o, "/spec/placement/tiers/0/labelSelector", selector.clone());
                set(o, "/spec/placement/tiers/1/labelSelector", selector);
            }),
            "spec.placement.tiers",
            msg::TIER_SELECTORS,
        ),
        // spread
        bad(
            "spread.minClusters above maxClusters",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/spread/minClusters", json!(5))
            }),
            "spec.placement.spread",
            msg::MIN_OVER_MAX_CLUSTERS,
        ),
        bad(
            "spread.minProviders 0",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/spread/minProviders", json!(0))
            }),
            "spec.placement.spread.minProviders",
            msg::MIN_PROVIDERS,
        ),
        bad(
            "spread.minProviders 4",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/spread/minProviders", json!(4))
            }),
            "spec.placement.spread.minProviders",
            msg::MIN_PROVIDERS,
        ),
        bad(
            "spread.minClusters 0",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/spread/minClusters", json!(0))
            }),
            "spec.placement.spread.minClusters",
            msg::MIN_CLUSTERS,
        ),
        bad(
            "spread.maxClusters 0",
            MCW,
            with(d(), |o| {
                remove(o, "/spec/placement/spread/minClusters");
                set(o, "/spec/placement/spread/maxClusters", json!(0));
            }),
            "spec.placement.spread.maxClusters",
            msg::MAX_CLUSTERS,
        ),
        // per-cluster bounds
        bad(
            "placement.clusterReplicas minReplicas above maxReplicas",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/clusterReplicas/minReplicas", json!(11))
            }),
            "spec.placement.clusterReplicas",
            msg::MIN_OVER_MAX_REPLICAS,
        ),
        bad(
            "tier clusterReplicas minReplicas above maxReplicas",
            MCW,
            with(d(), |o| {
                set(
                    o,
                    "/spec/placement/tiers/1/clusterReplicas/minReplicas",
                    json!(6),
                )
            }),
            "spec.placement.tiers[1].clusterReplicas",
            msg::MIN_OVER_MAX_REPLICAS,
        ),
        bad(
            "tier clusterReplicas maxReplicas 0",
            MCW,
            with(d(), |o| {
                remove(o, "/spec/placement/tiers/1/clusterReplicas/minReplicas");
                set(
                    o,
                    "/spec/placement/tiers/1/clusterReplicas/maxReplicas",
                    json!(0),
                );
            }),
            "spec.placement.tiers[1].clusterReplicas.maxReplicas",
            msg::MAX_REPLICAS,
        ),
        bad(
            "placement.clusterReplicas negative minReplicas",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/clusterReplicas/minReplicas", json!(-1))
            }),
            "spec.placement.clusterReplicas.minReplicas",
            msg::MIN_REPLICAS,
        ),
        // Integers beyond int32 (kube-apiserver does not enforce `format: int32` on custom
        // resources): refused by a CEL maximum, or the typed client could not read the object.
        bad(
            "placement.clusterReplicas maxReplicas beyond int32",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/placement/clusterReplicas/maxReplicas",
                    json!(2147483648_i64),
                )
            }),
            "spec.placement.clusterReplicas.maxReplicas",
            msg::MAX_REPLICAS,
        ),
        Bad {
            case: "placement.clusterReplicas minReplicas above 100000",
            kind: MCW,
            object: with(f(), |o| {
                set(
                    o,
                    "/spec/placement/clusterReplicas/minReplicas",
                    json!(100001),
                )
            }),
            expected: vec![
                v(
                    "spec.placement.clusterReplicas.minReplicas",
                    msg::MIN_REPLICAS,
                ),
                v("spec.placement.clusterReplicas", msg::MIN_OVER_MAX_REPLICAS),
            ],
        },
        bad(
            "spread.maxClusters above 1000",
            MCW,
            with(d(), |o| {
                set(o, "/spec/placement/spread/maxClusters", json!(1001))
            }),
            "spec.placement.spread.maxClusters",
            msg::MAX_CLUSTERS,
        ),
        bad(
            "spread.minClusters above 1000",
            MCW,
            with(d(), |o| {
                remove(o, "/spec/placement/spread/maxClusters");
                set(
                    o,
                    "/spec/placement/spread/minClusters",
                    json!(4294967296_i64),
                );
            }),
            "spec.placement.spread.minClusters",
            msg::MIN_CLUSTERS,
        ),
        Bad {
            case: "standbyReplicas beyond int32",
            kind: MCW,
            object: with(f(), |o| {
                set(o, "/spec/placement/standbyReplicas", json!(2147483648_i64))
            }),
            expected: vec![
                v("spec.placement.standbyReplicas", msg::STANDBY_MIN),
                v("spec", msg::STANDBY_OVER_REPLICAS),
            ],
        },
        // template
        bad(
            "template without a Deployment or StatefulSet",
            MCW,
            with(f(), |o| remove(o, "/spec/template/manifests/0")),
            "spec.template.manifests",
            msg::ONE_WORKLOAD,
        ),
        bad(
            "template with a Deployment and a StatefulSet",
            MCW,
            with(f(), |o| {
                let mut sts = deployment("checkout-cache", "redis:7.4");
                set(&mut sts, "/kind", json!("StatefulSet"));
                set(&mut sts, "/spec/serviceName", json!("checkout-cache"));
                set(o, "/spec/template/manifests/-", sts);
            }),
            "spec.template.manifests",
            msg::ONE_WORKLOAD,
        ),
        bad(
            "Deployment with apiVersion apps/v1beta1",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/0/apiVersion",
                    json!("apps/v1beta1"),
                )
            }),
            "spec.template.manifests",
            msg::APPS_V1,
        ),
        bad(
            "Deployment with spec.replicas",
            MCW,
            with(d(), |o| {
                set(o, "/spec/template/manifests/0/spec/replicas", json!(3))
            }),
            "spec.template.manifests",
            msg::NO_SPEC_REPLICAS,
        ),
        bad(
            "manifest with metadata.namespace",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/1/metadata/namespace",
                    json!("shop"),
                )
            }),
            "spec.template.manifests",
            msg::NO_NAMESPACE,
        ),
        bad(
            "two manifests of the same kind and name",
            MCW,
            with(f(), |o| {
                set(o, "/spec/template/manifests/-", service("checkout"))
            }),
            "spec.template.manifests",
            msg::UNIQUE_MANIFESTS,
        ),
        bad(
            "a Namespace in the template",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
                )
            }),
            "spec.template.manifests",
            msg::CLUSTER_SCOPED,
        ),
        Bad {
            case: "a kind in lower case (a Namespace spelled namespace)",
            kind: MCW,
            object: with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({"apiVersion": "v1", "kind": "namespace", "metadata": {"name": "shop"}}),
                )
            }),
            expected: vec![
                v("spec.template.manifests", msg::KIND_CASE),
                v("spec.template.manifests", msg::CLUSTER_SCOPED),
            ],
        },
        bad(
            "a service-account-token Secret",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t",
                           "annotations": {"kubernetes.io/service-account.name": "default"}},
                           "type": "kubernetes.io/service-account-token"}),
                )
            }),
            "spec.template.manifests",
            msg::SA_TOKEN,
        ),
        bad(
            "a RoleBinding to cluster-admin",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                           "metadata": {"name": "admin"},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                           "subjects": [{"kind": "ServiceAccount", "name": "default"}]}),
                )
            }),
            "spec.template.manifests",
            msg::CLUSTER_ROLE_BINDING,
        ),
        bad(
            "a cluster-scoped kind in capitals",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "CLUSTERROLE", "metadata": {"name": "x"}}),
                )
            }),
            "spec.template.manifests",
            msg::CLUSTER_SCOPED,
        ),
        bad(
            "jsonPatch rewriting kind",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/1/manifests/0/jsonPatch/1/path",
                    json!("/kind"),
                )
            }),
            "spec.overrides[1].manifests[0].jsonPatch[1].path",
            msg::PATCH_IDENTITY,
        ),
        bad(
            "a ClusterRole in the template",
            MCW,
            with(d(), |o| {
                set(
                    o,
                    "/spec/template/manifests/-",
                    json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": "catalog-reader"},
                        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
                    }),
                )
            }),
            "spec.template.manifests",
            msg::CLUSTER_SCOPED,
        ),
        // standby replicas and spread versus mode
        bad(
            "standbyReplicas in Divided mode",
            MCW,
            with(d(), |o| set(o, "/spec/placement/standbyReplicas", json!(1))),
            "spec",
            msg::STANDBY_NOT_FAILOVER,
        ),
        bad(
            "standbyReplicas with the mode defaulted to Divided",
            MCW,
            with(f(), |o| remove(o, "/spec/placement/mode")),
            "spec",
            msg::STANDBY_NOT_FAILOVER,
        ),
        bad(
            "standbyReplicas above replicas",
            MCW,
            with(f(), |o| set(o, "/spec/placement/standbyReplicas", json!(7))),
            "spec",
            msg::STANDBY_OVER_REPLICAS,
        ),
        bad(
            "negative standbyReplicas",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/standbyReplicas", json!(-1))
            }),
            "spec.placement.standbyReplicas",
            msg::STANDBY_MIN,
        ),
        bad(
            "spread in Failover mode",
            MCW,
            with(f(), |o| {
                set(o, "/spec/placement/spread", json!({"minProviders": 2}))
            }),
            "spec",
            msg::SPREAD_IN_FAILOVER,
        ),
        // failover policy
        bad(
            "clusterTolerationSeconds above 3600",
            MCW,
            with(f(), |o| {
                set(o, "/spec/failover/clusterTolerationSeconds", json!(3601))
            }),
            "spec.failover.clusterTolerationSeconds",
            msg::CLUSTER_TOLERATION,
        ),
        bad(
            "negative clusterTolerationSeconds",
            MCW,
            with(d(), |o| {
                set(o, "/spec/failover/clusterTolerationSeconds", json!(-1))
            }),
            "spec.failover.clusterTolerationSeconds",
            msg::CLUSTER_TOLERATION,
        ),
        bad(
            "applicationTolerationSeconds 5",
            MCW,
            with(f(), |o| {
                set(o, "/spec/failover/applicationTolerationSeconds", json!(5))
            }),
            "spec.failover.applicationTolerationSeconds",
            msg::APP_TOLERATION,
        ),
        bad(
            "stabilizationWindowSeconds above 86400",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/failover/failback/stabilizationWindowSeconds",
                    json!(86_401),
                )
            }),
            "spec.failover.failback.stabilizationWindowSeconds",
            msg::STABILIZATION,
        ),
        bad(
            "budget.maxMoves 0",
            MCW,
            with(f(), |o| set(o, "/spec/failover/budget/maxMoves", json!(0))),
            "spec.failover.budget.maxMoves",
            msg::MAX_MOVES,
        ),
        bad(
            "budget.windowSeconds 10 (defaulted maxMoves)",
            MCW,
            with(d(), |o| {
                set(o, "/spec/failover/budget", json!({"windowSeconds": 10}))
            }),
            "spec.failover.budget.windowSeconds",
            msg::WINDOW,
        ),
        // overrides
        bad(
            "two overrides with the same name",
            MCW,
            with(f(), |o| {
                set(o, "/spec/overrides/1/name", json!("gcp-registry"))
            }),
            "spec.overrides",
            msg::OVERRIDE_NAMES,
        ),
        bad(
            "override that changes nothing",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/-",
                    json!({"name": "noop", "clusters": {"regions": ["europe-west1"]}}),
                )
            }),
            "spec.overrides[2]",
            msg::OVERRIDE_NOOP,
        ),
        bad(
            "override with an empty manifests list",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/-",
                    json!({"name": "noop", "clusters": {}, "manifests": []}),
                )
            }),
            "spec.overrides[2]",
            msg::OVERRIDE_NOOP,
        ),
        bad(
            "imageRegistry.to with a trailing '/'",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/0/imageRegistry/to",
                    json!("europe-west1-docker.pkg.dev/shop-prod/images/"),
                )
            }),
            "spec.overrides[0].imageRegistry.to",
            msg::REGISTRY_TO,
        ),
        bad(
            "empty imageRegistry.to",
            MCW,
            with(f(), |o| {
                set(o, "/spec/overrides/0/imageRegistry/to", json!(""))
            }),
            "spec.overrides[0].imageRegistry.to",
            msg::REGISTRY_TO,
        ),
        bad(
            "jsonPatch path without a leading '/'",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/1/manifests/0/jsonPatch/0/path",
                    json!("spec/template/spec/nodeSelector"),
                )
            }),
            "spec.overrides[1].manifests[0].jsonPatch[0].path",
            msg::PATCH_POINTER,
        ),
        bad(
            "jsonPatch on /spec/replicas",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/1/manifests/0/jsonPatch/0",
                    json!({"op": "replace", "path": "/spec/replicas", "value": 3}),
                )
            }),
            "spec.overrides[1].manifests[0].jsonPatch[0].path",
            msg::PATCH_FORBIDDEN,
        ),
        bad(
            "jsonPatch removing metadata.namespace",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/1/manifests/0/jsonPatch/1/path",
                    json!("/metadata/namespace"),
                )
            }),
            "spec.overrides[1].manifests[0].jsonPatch[1].path",
            msg::PATCH_FORBIDDEN,
        ),
        bad(
            "jsonPatch on a bascule.dev label",
            MCW,
            with(f(), |o| {
                set(
                    o,
                    "/spec/overrides/1/manifests/0/jsonPatch/0",
                    json!({"op": "add", "path": "/metadata/labels/bascule.dev~1workload", "value": "x"}),
                )
            }),
            "spec.overrides[1].manifests[0].jsonPatch[0].path",
            msg::PATCH_FORBIDDEN,
        ),
        // metadata
        bad(
            "name longer than 63 characters",
            MCW,
            with(f(), |o| set(o, "/metadata/name", json!(sixty_four))),
            "",
            msg::MCW_NAME,
        ),
    ]
}

fn bad_member_clusters() -> Vec<Bad> {
    let m = member_cluster;
    vec![
        bad(
            "name with uppercase letters",
            MC,
            with(m(), |o| set(o, "/metadata/name", json!("EKS-us-east-1"))),
            "",
            msg::MC_NAME,
        ),
        bad(
            "name with a dot",
            MC,
            with(m(), |o| set(o, "/metadata/name", json!("eks.us-east-1"))),
            "",
            msg::MC_NAME,
        ),
        bad(
            "name longer than 63 characters",
            MC,
            with(m(), |o| set(o, "/metadata/name", json!("a".repeat(64)))),
            "",
            msg::MC_NAME,
        ),
        bad(
            "region with uppercase letters",
            MC,
            with(m(), |o| set(o, "/spec/region", json!("US-East-1"))),
            "spec.region",
            msg::REGION,
        ),
        bad(
            "connection with a kubeconfig and eks",
            MC,
            with(m(), |o| set(o, "/spec/connection/eks", eks())),
            "spec.connection",
            msg::CONNECTION,
        ),
        bad(
            "connection with eks and gke",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"eks": eks(), "gke": gke()}))
            }),
            "spec.connection",
            msg::CONNECTION,
        ),
        bad(
            "eks cluster name with a dot",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"eks": eks()}));
                set(o, "/spec/connection/eks/clusterName", json!("prod.east"));
            }),
            "spec.connection.eks.clusterName",
            msg::EKS_CLUSTER,
        ),
        bad(
            "eks region that is not a region",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"eks": eks()}));
                set(o, "/spec/connection/eks/region", json!("us-east"));
            }),
            "spec.connection.eks.region",
            msg::EKS_REGION,
        ),
        bad(
            "eks roleARN naming a user",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"eks": eks()}));
                set(
                    o,
                    "/spec/connection/eks/roleARN",
                    json!("arn:aws:iam::123456789012:user/alice"),
                );
            }),
            "spec.connection.eks.roleARN",
            msg::EKS_ROLE,
        ),
        bad(
            "gke project number instead of id",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"gke": gke()}));
                set(o, "/spec/connection/gke/project", json!("123456789012"));
            }),
            "spec.connection.gke.project",
            msg::GKE_PROJECT,
        ),
        bad(
            "gke location that is not a region or zone",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"gke": gke()}));
                set(o, "/spec/connection/gke/location", json!("europe"));
            }),
            "spec.connection.gke.location",
            msg::GKE_LOCATION,
        ),
        bad(
            "gke cluster with uppercase letters",
            MC,
            with(m(), |o| {
                set(o, "/spec/connection", json!({"gke": gke()}));
                set(o, "/spec/connection/gke/cluster", json!("Prod"));
            }),
            "spec.connection.gke.cluster",
            msg::GKE_CLUSTER,
        ),
        bad(
            "connection without a method",
            MC,
            with(m(), |o| set(o, "/spec/connection", json!({}))),
            "spec.connection",
            msg::CONNECTION,
        ),
        bad(
            "two taints with the same key and effect",
            MC,
            with(m(), |o| {
                set(
                    o,
                    "/spec/taints/-",
                    json!({"key": "maintenance", "value": "other", "effect": "NoSchedule"}),
                )
            }),
            "spec.taints",
            msg::TAINTS,
        ),
        bad(
            "health.timeoutSeconds above periodSeconds",
            MC,
            with(m(), |o| set(o, "/spec/health/timeoutSeconds", json!(6))),
            "spec.health",
            msg::TIMEOUT_OVER_PERIOD,
        ),
        bad(
            "health.timeoutSeconds above the defaulted periodSeconds",
            MC,
            with(minimal_member_cluster(), |o| {
                set(o, "/spec/health", json!({"timeoutSeconds": 3}))
            }),
            "spec.health",
            msg::TIMEOUT_OVER_PERIOD,
        ),
        Bad {
            // A period of 0 is also shorter than any valid timeout: both rules speak.
            case: "health.periodSeconds 0",
            kind: MC,
            object: with(m(), |o| set(o, "/spec/health/periodSeconds", json!(0))),
            expected: vec![
                v("spec.health.periodSeconds", msg::PERIOD),
                v("spec.health", msg::TIMEOUT_OVER_PERIOD),
            ],
        },
        bad(
            "health.periodSeconds 301",
            MC,
            with(m(), |o| set(o, "/spec/health/periodSeconds", json!(301))),
            "spec.health.periodSeconds",
            msg::PERIOD,
        ),
        bad(
            "health.timeoutSeconds 0",
            MC,
            with(m(), |o| set(o, "/spec/health/timeoutSeconds", json!(0))),
            "spec.health.timeoutSeconds",
            msg::TIMEOUT,
        ),
        Bad {
            case: "health.timeoutSeconds beyond int32",
            kind: MC,
            object: with(m(), |o| {
                set(o, "/spec/health/timeoutSeconds", json!(2147483648_i64))
            }),
            expected: vec![
                v("spec.health.timeoutSeconds", msg::TIMEOUT),
                v("spec.health", msg::TIMEOUT_OVER_PERIOD),
            ],
        },
        bad(
            "health.failureThreshold 0",
            MC,
            with(m(), |o| set(o, "/spec/health/failureThreshold", json!(0))),
            "spec.health.failureThreshold",
            msg::FAILURE_THRESHOLD,
        ),
        bad(
            "health.failureThreshold 101",
            MC,
            with(m(), |o| set(o, "/spec/health/failureThreshold", json!(101))),
            "spec.health.failureThreshold",
            msg::FAILURE_THRESHOLD,
        ),
        bad(
            "health.successThreshold 0",
            MC,
            with(m(), |o| set(o, "/spec/health/successThreshold", json!(0))),
            "spec.health.successThreshold",
            msg::SUCCESS_THRESHOLD,
        ),
        bad(
            "health.successThreshold 1001",
            MC,
            with(m(), |o| {
                set(o, "/spec/health/successThreshold", json!(1001))
            }),
            "spec.health.successThreshold",
            msg::SUCCESS_THRESHOLD,
        ),
    ]
}

fn run(cases: Vec<Bad>) {
    let mut cases_seen = BTreeSet::new();
    let mut objects_seen = Vec::new();
    let mut failures = Vec::new();
    for Bad {
        case,
        kind,
        object,
        expected,
    } in cases
    {
        assert!(cases_seen.insert(case), "case {case:?} is listed twice");
        assert!(
            !objects_seen.contains(&object),
            "case {case:?} repeats the object of an earlier case"
        );
        if let Err(failure) = refused(case, kind, &object, &expected) {
            failures.push(failure);
        }
        objects_seen.push(object);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases_seen.len(),
        failures.join("\n")
    );
}

#[test]
fn bad_workloads_are_refused_with_the_rule_message() {
    let cases = bad_workloads();
    assert!(cases.len() >= 40, "{} workload cases", cases.len());
    run(cases);
}

#[test]
fn bad_member_clusters_are_refused_with_the_rule_message() {
    let cases = bad_member_clusters();
    assert!(cases.len() >= 14, "{} member cluster cases", cases.len());
    run(cases);
}

#[test]
fn every_rule_in_the_crds_is_exercised() {
    // Each CEL message in the generated CRDs is expected by at least one bad input above.
    let expected: BTreeSet<String> = bad_workloads()
        .into_iter()
        .chain(bad_member_clusters())
        .flat_map(|b| b.expected)
        .map(|v| v.message)
        .collect();
    let mut untested = BTreeSet::new();
    for crd in crds() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        collect_messages(&schema, &mut untested);
    }
    untested.retain(|m| !expected.contains(m));
    assert!(
        untested.is_empty(),
        "CEL rules without a bad input in tests/crds.rs: {untested:#?}"
    );
}

fn collect_messages(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(rules)) = map.get("x-kubernetes-validations") {
                for rule in rules {
                    let message = rule["message"].as_str().expect("every rule has a message");
                    out.insert(message.to_string());
                }
            }
            map.values().for_each(|v| collect_messages(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_messages(v, out)),
        _ => {}
    }
}

#[test]
fn one_object_with_two_violations_reports_both() {
    let object = with(divided_workload(), |o| {
        set(o, "/spec/replicas", json!(-1));
        set(o, "/spec/placement/tiers/0/weight", json!(0));
    });
    assert_refused(
        "negative replicas and tier weight 0",
        MCW,
        &object,
        &[
            v("spec.replicas", msg::REPLICAS_MIN),
            v("spec.placement.tiers[0].weight", msg::WEIGHT),
        ],
    );

    let object = with(member_cluster(), |o| {
        set(o, "/spec/region", json!("Europe-West1"));
        set(o, "/spec/connection", json!({}));
    });
    assert_refused(
        "uppercase region and no connection method",
        MC,
        &object,
        &[
            v("spec.region", msg::REGION),
            v("spec.connection", msg::CONNECTION),
        ],
    );
}

#[test]
fn json_patch_without_a_value_is_left_to_rendering() {
    // kube-apiserver's CEL cannot see `value` (a field of any JSON type has no CEL type), so
    // there is no rule for it: `add`/`replace` without a value is reported when the override is
    // rendered. If a rule is added back, turn this into a bad input above.
    let object = with(failover_workload(), |o| {
        remove(o, "/spec/overrides/1/manifests/0/jsonPatch/0/value")
    });
    assert_eq!(check(MCW, &object), Ok(()));
}
