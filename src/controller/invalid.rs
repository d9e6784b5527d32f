//! MultiCloudWorkloads the typed client cannot read: an integer beyond int32 stored before a CEL
//! maximum existed (kube-apiserver does not enforce `format: int32` on custom resources), a field
//! of the wrong type written with the status subresource, a future field this version does not
//! know the shape of.
//!
//! The watch reads every workload through `DeserializeGuard`, so such an object no longer fails
//! the relist of all the others: it arrives here instead. What it placed is left exactly as it is
//! (fail static: an unreadable spec is no reason to move or remove anything); it is told, on the
//! object itself, which field is wrong; and a deletion still completes.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::cleanup::remove_everywhere;
use super::context::{Context, Error, FINALIZER};
use super::events::Kind;
use crate::api::MultiCloudWorkload;
use crate::api::conditions::{Desired, merge};
use crate::policy::reasons::ProblemReason;

/// The condition reason (Ready, Degraded and Stalled) of a workload that cannot be read.
pub const REASON: &str = ProblemReason::InvalidSpec.as_str();

/// Reports the object's bad field in its status (once per generation), or finishes its deletion.
pub async fn reconcile(object: &InvalidObject, ctx: &Context) -> Result<Action, Error> {
    let meta = &object.metadata;
    let namespace = meta.namespace.clone().ok_or(Error::NoNamespace)?;
    let name = meta.name.clone().unwrap_or_default();
    let resource = ApiResource::erase::<MultiCloudWorkload>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.hub.clone(), &namespace, &resource);
    // The raw object, read again: the guard kept only the metadata and serde's message, which
    // does not say which field is wrong.
    let Some(raw) = api.get_opt(&name).await.map_err(|source| Error::Hub {
        what: "read an unreadable workload",
        source,
    })?
    else {
        return Ok(Action::await_change());
    };
    let raw = serde_json::to_value(&raw).unwrap_or_default();
    let Some(problem) = field_error(&raw) else {
        // Fixed meanwhile: the watch brings the readable version.
        return Ok(Action::await_change());
    };
    let uid = meta.uid.clone().unwrap_or_default();
    let finalizers = meta.finalizers.clone().unwrap_or_default();

    if meta.deletion_timestamp.is_some() {
        let Some(at) = finalizers.iter().position(|f| f == FINALIZER) else {
            return Ok(Action::await_change());
        };
        let abandoned = remove_everywhere(ctx, &namespace, &uid, &placed_kinds(&raw)).await?;
        if !abandoned.is_empty() {
            tracing::warn!(workload = %format!("{namespace}/{name}"), ?abandoned, "deleted; members refuse for good to remove these kinds");
        }
        // As kube's finalizer helper does: remove our entry only if it is still where we saw it.
        let patch: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": format!("/metadata/finalizers/{at}"), "value": FINALIZER},
            {"op": "remove", "path": format!("/metadata/finalizers/{at}")},
        ]))
        .expect("a valid JSON patch");
        match api
            .patch(&name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(Error::Hub {
                    what: "remove the finalizer",
                    source,
                });
            }
        }
        tracing::info!(workload = %format!("{namespace}/{name}"), "unreadable workload removed from every member");
        return Ok(Action::await_change());
    }

    let generation = meta.generation;
    let existing: Vec<Condition> = raw
        .pointer("/status/conditions")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    let message = format!(
        "{problem}; correct that field. Until then nothing this workload placed is changed, moved or removed"
    );
    let conditions = merge(&existing, &desired(&message), generation, Timestamp::now());
    let observed = raw
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64);
    if conditions == existing && observed == generation {
        return Ok(Action::await_change());
    }
    tracing::warn!(workload = %format!("{namespace}/{name}"), %problem, "workload cannot be read");
    let reference = ObjectReference {
        api_version: Some(MultiCloudWorkload::api_version(&()).into()),
        kind: Some(MultiCloudWorkload::kind(&()).into()),
        name: Some(name.clone()),
        namespace: Some(namespace.clone()),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    };
    ctx.events
        .publish(&reference, Kind::Warning, REASON, "Read", &message)
        .await;
    // A merge patch, not an apply: an apply of these two fields alone would drop the rest of
    // the status (the placement in force), which the fixed object needs back.
    let fields = json!({"observedGeneration": generation, "conditions": conditions});
    crate::hub::status::merge(&api, &name, &fields).await?;
    Ok(Action::await_change())
}

/// How much of serde's message is kept: it may quote the offending value, which the object's
/// author chose and which could be long.
const MAX_PROBLEM: usize = 300;

/// `field: what is wrong` for an object that does not read as a MultiCloudWorkload.
pub fn field_error(raw: &Value) -> Option<String> {
    match serde_path_to_error::deserialize::<_, MultiCloudWorkload>(raw) {
        Ok(_) => None,
        Err(e) => {
            let problem = format!("{}: {}", e.path(), e.inner());
            Some(match problem.char_indices().nth(MAX_PROBLEM) {
                Some((end, _)) => format!("{}…", &problem[..end]),
                None => problem,
            })
        }
    }
}

/// The conditions of a workload that cannot be read: not Ready, Degraded and Stalled (only a
/// person can fix it).
fn desired(message: &str) -> [Desired; 5] {
    [
        Desired::new("Ready", false, REASON, message),
        Desired::new("Degraded", true, REASON, message),
        Desired::new("Stalled", true, REASON, message),
        Desired::new("Reconciling", false, REASON, ""),
        Desired::new("Progressing", false, REASON, ""),
    ]
}

/// `apiVersion/kind` of what the object may have placed: its template's kinds and those its
/// status remembers, read leniently from the raw object.
fn placed_kinds(raw: &Value) -> BTreeSet<String> {
    let mut kinds: BTreeSet<String> = raw
        .pointer("/status/kinds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let manifests = raw
        .pointer("/spec/template/manifests")
        .and_then(Value::as_array);
    for m in manifests.into_iter().flatten() {
        if let (Some(v), Some(k)) = (
            m.get("apiVersion").and_then(Value::as_str),
            m.get("kind").and_then(Value::as_str),
        ) {
            kinds.insert(format!("{v}/{k}"));
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload(max_replicas: Value) -> Value {
        json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MultiCloudWorkload",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1", "generation": 3},
            "spec": {
                "replicas": 2,
                "template": {"manifests": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}},
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}},
                ]},
                "placement": {"clusterReplicas": {"maxReplicas": max_replicas}},
            },
            "status": {"kinds": ["v1/Service"]},
        })
    }

    #[test]
    fn the_bad_field_is_named_with_its_path() {
        let e = field_error(&workload(json!(2147483648_i64))).expect("unreadable");
        assert!(
            e.starts_with("spec.placement.clusterReplicas.maxReplicas: "),
            "{e}"
        );
        assert!(e.contains("2147483648"), "{e}");
        assert_eq!(field_error(&workload(json!(5))), None);
        let long = field_error(&workload(json!("x".repeat(10_000)))).expect("unreadable");
        assert!(long.chars().count() <= MAX_PROBLEM + 1, "{}", long.len());
    }

    #[test]
    fn the_guard_keeps_an_unreadable_workload_as_metadata() {
        // What the watch gets: the object as an error with its metadata, not a failed list.
        let guard: kube::core::DeserializeGuard<MultiCloudWorkload> =
            serde_json::from_value(workload(json!(2147483648_i64))).expect("the guard reads it");
        let invalid = guard.0.expect_err("invalid");
        assert_eq!(invalid.metadata.uid.as_deref(), Some("u1"));
    }

    #[test]
    fn placed_kinds_come_from_the_template_and_the_status() {
        let kinds = placed_kinds(&workload(json!(2147483648_i64)));
        assert_eq!(
            kinds.into_iter().collect::<Vec<_>>(),
            ["apps/v1/Deployment", "v1/ConfigMap", "v1/Service"]
        );
    }

    #[test]
    fn an_unreadable_workload_is_stalled_not_ready_and_degraded() {
        let conditions = merge(&[], &desired("m"), Some(3), Timestamp::UNIX_EPOCH);
        let get = |t: &str| conditions.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(get("Ready").status, "False");
        assert_eq!(get("Degraded").status, "True");
        assert_eq!(get("Stalled").status, "True");
        assert_eq!(get("Stalled").reason, REASON);
        assert_eq!(get("Ready").observed_generation, Some(3));
    }
}
