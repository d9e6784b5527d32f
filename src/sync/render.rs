//! Render: a workload's template, for one cluster, as the objects to apply there — namespace set,
//! ownership labels added, replica count set, the cluster's overrides applied. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::api::MultiCloudWorkload;
use crate::api::workload::Override;
use crate::placement::ClusterSnapshot;
use crate::placement::eligibility::matches;

use crate::api::labels;

/// Why a template cannot be rendered for a cluster.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("the MultiCloudWorkload has no {0}; it must be read from the API server")]
    MissingMetadata(&'static str),
    #[error("override {name:?}, {kind}/{manifest}: {message}")]
    Patch {
        name: String,
        kind: String,
        manifest: String,
        message: String,
    },
}

/// The objects to apply in `cluster` when it runs `replicas` replicas of `workload`, in the
/// template's order, labelled as placed by the hub `hub_id`.
pub fn render(
    workload: &MultiCloudWorkload,
    cluster: &ClusterSnapshot,
    replicas: u32,
    hub_id: &str,
) -> Result<Vec<Value>, RenderError> {
    let namespace = workload
        .metadata
        .namespace
        .as_deref()
        .ok_or(RenderError::MissingMetadata("namespace"))?;
    let name = workload
        .metadata
        .name
        .as_deref()
        .ok_or(RenderError::MissingMetadata("name"))?;
    let uid = workload
        .metadata
        .uid
        .as_deref()
        .ok_or(RenderError::MissingMetadata("uid"))?;
    let owner: BTreeMap<&str, &str> = [
        (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
        (labels::WORKLOAD_NAMESPACE, namespace),
        (labels::WORKLOAD_NAME, name),
        (labels::WORKLOAD_UID, uid),
        (labels::HUB, hub_id),
    ]
    .into();
    let overrides: Vec<&Override> = workload
        .spec
        .overrides
        .iter()
        .filter(|o| matches(&o.clusters, cluster))
        .collect();

    let mut out = Vec::with_capacity(workload.spec.template.manifests.len());
    for manifest in &workload.spec.template.manifests {
        let mut obj = manifest.0.clone();
        for o in &overrides {
            apply_override(o, &mut obj)?;
        }
        let meta = object(&mut obj, "metadata");
        meta.insert("namespace".into(), json!(namespace));
        let obj_labels = object_in(meta, "labels");
        for (k, v) in &owner {
            obj_labels.insert((*k).into(), json!(v));
        }
        if manifest.is_workload() {
            object(&mut obj, "spec").insert("replicas".into(), json!(replicas));
        }
        out.push(obj);
    }
    Ok(out)
}

fn apply_override(o: &Override, obj: &mut Value) -> Result<(), RenderError> {
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let manifest = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let err = |message: String| RenderError::Patch {
        name: o.name.clone(),
        kind: kind.clone(),
        manifest: manifest.clone(),
        message,
    };

    if let Some(rewrite) = &o.image_registry {
        for image in images_mut(obj) {
            if let Some(new) = rewrite_image(image, rewrite.from.as_deref(), &rewrite.to) {
                *image = new;
            }
        }
    }
    for m in &o.manifests {
        if m.kind.as_deref().is_some_and(|k| k != kind)
            || m.name.as_deref().is_some_and(|n| n != manifest)
        {
            continue;
        }
        let meta = object(obj, "metadata");
        if !m.annotations.is_empty() {
            let a = object_in(meta, "annotations");
            for (k, v) in &m.annotations {
                a.insert(k.clone(), json!(v));
            }
        }
        if !m.labels.is_empty() {
            let l = object_in(meta, "labels");
            for (k, v) in &m.labels {
                l.insert(k.clone(), json!(v));
            }
        }
        if !m.json_patch.is_empty() {
            let ops: Vec<Value> = m
                .json_patch
                .iter()
                .map(|p| {
                    let op = serde_json::to_value(p.op).expect("op serializes");
                    match (&p.value, op.as_str()) {
                        (Some(v), _) => Ok(json!({"op": op, "path": p.path, "value": v})),
                        (None, Some("remove")) => Ok(json!({"op": op, "path": p.path})),
                        (None, _) => Err(err(format!("jsonPatch {op} {} needs a value", p.path))),
                    }
                })
                .collect::<Result<_, _>>()?;
            let patch: json_patch::Patch =
                serde_json::from_value(Value::Array(ops)).map_err(|e| err(e.to_string()))?;
            json_patch::patch(obj, &patch).map_err(|e| err(e.to_string()))?;
        }
    }
    Ok(())
}

/// Container images of any pod template the object carries.
fn images_mut(obj: &mut Value) -> Vec<&mut String> {
    let pod_spec_paths = [
        "/spec/template/spec",
        "/spec/jobTemplate/spec/template/spec",
        "/spec",
    ];
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let path = match kind.as_str() {
        "CronJob" => pod_spec_paths[1],
        "Pod" => pod_spec_paths[2],
        _ => pod_spec_paths[0],
    };
    let Some(spec) = obj.pointer_mut(path).and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, list) in spec.iter_mut() {
        if key == "containers" || key == "initContainers" || key == "ephemeralContainers" {
            for c in list.as_array_mut().into_iter().flatten() {
                if let Some(Value::String(image)) = c.get_mut("image") {
                    out.push(image);
                }
            }
        }
    }
    out
}

/// `from` prefix replaced by `to`; with no `from`, whatever registry the image names (or the
/// implicit Docker Hub) is replaced. `None` if the image does not start with `from`.
pub fn rewrite_image(image: &str, from: Option<&str>, to: &str) -> Option<String> {
    match from {
        Some(from) => {
            let from = from.trim_end_matches('/');
            let rest = image.strip_prefix(from)?;
            rest.starts_with('/').then(|| format!("{to}{rest}"))
        }
        None => {
            let (first, rest) = image.split_once('/').unwrap_or(("", image));
            let is_registry = first.contains('.') || first.contains(':') || first == "localhost";
            Some(if is_registry {
                format!("{to}/{rest}")
            } else {
                format!("{to}/{image}")
            })
        }
    }
}

fn object<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    let map = v
        .as_object_mut()
        .expect("a manifest is a JSON object (the CRD schema says so)");
    object_in(map, key)
}

fn object_in<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Provider;

    fn workload(yaml: &str) -> MultiCloudWorkload {
        let mut w: MultiCloudWorkload = serde_saphyr::from_str(yaml).unwrap();
        w.metadata.uid = Some("0f8fad5b-d9cb-469f-a165-70867728950e".into());
        w
    }

    fn eks() -> ClusterSnapshot {
        ClusterSnapshot::healthy("eks-use1", Provider::Aws, "us-east-1")
    }

    fn gke() -> ClusterSnapshot {
        ClusterSnapshot::healthy("gke-euw1", Provider::Gcp, "europe-west1")
    }

    fn checkout() -> MultiCloudWorkload {
        workload(include_str!("../../examples/failover.yaml"))
    }

    #[test]
    fn sets_namespace_labels_and_replicas() {
        let w = checkout();
        let objs = render(&w, &eks(), 7, "hub-a").unwrap();
        assert_eq!(objs.len(), 2);
        let d = &objs[0];
        assert_eq!(d["metadata"]["namespace"], "shop");
        assert_eq!(d["spec"]["replicas"], 7);
        assert_eq!(d["metadata"]["labels"][labels::WORKLOAD_NAME], "checkout");
        assert_eq!(
            d["metadata"]["labels"][labels::WORKLOAD_UID],
            "0f8fad5b-d9cb-469f-a165-70867728950e"
        );
        assert_eq!(d["metadata"]["labels"][labels::MANAGED_BY], "bascule");
        assert_eq!(d["metadata"]["labels"][labels::HUB], "hub-a");
        assert!(
            objs[1].pointer("/spec/replicas").is_none(),
            "a Service gets no replicas"
        );
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/image").unwrap(),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:1.4.2",
            "no override on AWS"
        );
    }

    #[test]
    fn overrides_apply_only_to_the_provider_they_target() {
        let w = checkout();
        let objs = render(&w, &gke(), 3, "hub-a").unwrap();
        assert_eq!(
            objs[0]
                .pointer("/spec/template/spec/containers/0/image")
                .unwrap(),
            "europe-west1-docker.pkg.dev/acme-shop/images/shop/checkout:1.4.2"
        );
    }

    #[test]
    fn manifest_overrides_merge_metadata_and_patch() {
        let mut w = checkout();
        w.spec.overrides = serde_json::from_value(json!([{
            "name": "gke-lb",
            "clusters": {"providers": ["gcp"]},
            "manifests": [
                {"kind": "Service", "annotations": {"cloud.google.com/l4-rbs": "enabled"}},
                {"kind": "Deployment", "jsonPatch": [
                    {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": {"cloud.google.com/gke-nodepool": "web"}},
                    {"op": "remove", "path": "/spec/template/spec/containers/0/ports"}
                ]}
            ]
        }]))
        .unwrap();
        let objs = render(&w, &gke(), 3, "hub-a").unwrap();
        assert_eq!(
            objs[1]["metadata"]["annotations"]["cloud.google.com/l4-rbs"],
            "enabled"
        );
        assert!(
            objs[0]["metadata"].get("annotations").is_none(),
            "only the Service is annotated"
        );
        assert_eq!(
            objs[0]
                .pointer("/spec/template/spec/nodeSelector/cloud.google.com~1gke-nodepool")
                .unwrap(),
            "web"
        );
        assert!(
            objs[0]
                .pointer("/spec/template/spec/containers/0/ports")
                .is_none()
        );
        let on_aws = render(&w, &eks(), 3, "hub-a").unwrap();
        assert!(
            on_aws[0]
                .pointer("/spec/template/spec/nodeSelector")
                .is_none()
        );
    }

    #[test]
    fn a_bad_patch_names_the_override_and_the_path() {
        let mut w = checkout();
        w.spec.overrides = serde_json::from_value(json!([{
            "name": "broken", "clusters": {},
            "manifests": [{"kind": "Deployment", "jsonPatch": [{"op": "replace", "path": "/spec/nope/x", "value": 1}]}]
        }]))
        .unwrap();
        let e = render(&w, &eks(), 1, "hub-a").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("override \"broken\", Deployment/checkout: "),
            "{e}"
        );
        w.spec.overrides[0].manifests[0].json_patch[0].value = None;
        let e = render(&w, &eks(), 1, "hub-a").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("jsonPatch \"replace\" /spec/nope/x needs a value"),
            "{e}"
        );
    }

    #[test]
    fn image_rewrites() {
        assert_eq!(
            rewrite_image("nginx:1.27", None, "mirror.example.com/hub").unwrap(),
            "mirror.example.com/hub/nginx:1.27"
        );
        assert_eq!(
            rewrite_image("ghcr.io/acme/api:2", None, "eu.gcr.io/p").unwrap(),
            "eu.gcr.io/p/acme/api:2"
        );
        assert_eq!(
            rewrite_image("ghcr.io/acme/api:2", Some("ghcr.io/acme"), "eu.gcr.io/p").unwrap(),
            "eu.gcr.io/p/api:2"
        );
        assert_eq!(
            rewrite_image("ghcr.io/acmecorp/api:2", Some("ghcr.io/acme"), "x"),
            None,
            "prefix must end at a '/'"
        );
        assert_eq!(rewrite_image("quay.io/a/b", Some("ghcr.io"), "x"), None);
    }
}
