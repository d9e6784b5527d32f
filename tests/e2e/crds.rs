//! The CRDs on a real kube-apiserver: they install (the server compiles every CEL rule and checks
//! its cost), the examples are accepted, and broken objects are refused with the CRD's message.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::support::{TestResult, Topology, trial, unique_name, wait};
use bascule::api::{MemberCluster, MultiCloudWorkload};

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![trial(
        "crds::install_accept_examples_refuse_bad_input",
        |h| async move {
            let hub = h.client(h.hub()).await?;
            install_crds(&hub).await?;
            let ns = unique_name("crds");
            Api::<Namespace>::all(hub.clone())
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
                )
                .await?;
            let dry = PostParams {
                dry_run: true,
                ..Default::default()
            };

            // Every example is accepted as it is.
            let examples = crate::support::repo_root().join("examples");
            let mut accepted = 0;
            for entry in std::fs::read_dir(&examples)? {
                // Files only: examples/gitops/ is a Kustomize layout (tests/e2e/gitops.rs).
                let path = entry?.path();
                if path.extension().is_none_or(|x| x != "yaml") {
                    continue;
                }
                let text = std::fs::read_to_string(path)?;
                for mut doc in serde_saphyr::from_multiple::<Value>(&text)? {
                    match doc["kind"].as_str() {
                        Some("MemberCluster") => {
                            Api::<MemberCluster>::all(hub.clone())
                                .create(&dry, &serde_json::from_value(doc)?)
                                .await?;
                        }
                        Some("MultiCloudWorkload") => {
                            doc["metadata"]["namespace"] = json!(ns);
                            Api::<MultiCloudWorkload>::namespaced(hub.clone(), &ns)
                                .create(&dry, &serde_json::from_value(doc)?)
                                .await?;
                        }
                        other => {
                            return Err(format!("unexpected kind {other:?} in examples/").into());
                        }
                    }
                    accepted += 1;
                }
            }
            assert_eq!(accepted, 5, "2 clusters and 3 workloads in examples/");

            // Broken objects are refused with the field and the CRD's own message.
            let mut failover: Value =
                serde_saphyr::from_str(&std::fs::read_to_string(examples.join("failover.yaml"))?)?;
            failover["metadata"]["namespace"] = json!(ns);
            let cases: Vec<(&str, Value, &str)> = vec![
                (
                    "/spec/replicas",
                    json!(-1),
                    "spec.replicas must be 0 or more",
                ),
                (
                    "/spec/placement/tiers/0/weight",
                    json!(0),
                    "spec.placement.tiers[].weight must be between 1 and 1000",
                ),
                (
                    "/spec/placement/standbyReplicas",
                    json!(11),
                    "spec.placement.standbyReplicas must not exceed spec.replicas",
                ),
                (
                    "/spec/placement/tiers/1",
                    failover["spec"]["placement"]["tiers"][0].clone(),
                    "two tiers with the same name",
                ),
                (
                    "/spec/template/manifests/0/spec/replicas",
                    json!(3),
                    "remove spec.replicas from the Deployment/StatefulSet",
                ),
                (
                    "/spec/template/manifests/1/metadata/namespace",
                    json!("other"),
                    "remove metadata.namespace",
                ),
                (
                    "/spec/placement/mode",
                    json!("Spread"),
                    "Unsupported value: \"Spread\"",
                ),
            ];
            for (pointer, value, expected) in cases {
                let mut bad = failover.clone();
                set(&mut bad, pointer, value);
                // Untyped, so that values the Rust types would refuse still reach the server.
                let obj: DynamicObject = serde_json::from_value(bad)?;
                let resource = ApiResource::erase::<MultiCloudWorkload>(&());
                match Api::<DynamicObject>::namespaced_with(hub.clone(), &ns, &resource)
                    .create(&dry, &obj)
                    .await
                {
                    Ok(_) => return Err(format!("{pointer}: the API server accepted it").into()),
                    Err(kube::Error::Api(e)) if e.message.contains(expected) => {}
                    Err(e) => {
                        return Err(format!(
                            "{pointer}: expected a refusal containing {expected:?}, got: {e}"
                        )
                        .into());
                    }
                }
            }
            Ok(())
        },
    )]
}

/// Applies Bascule's CRDs to the hub and waits until they are Established.
pub async fn install_crds(hub: &Client) -> TestResult {
    let api = Api::<CustomResourceDefinition>::all(hub.clone());
    for crd in bascule::api::crds() {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("bascule-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        wait::until(
            &format!("CRD {name} Established"),
            Duration::from_secs(30),
            Duration::from_millis(200),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await.map_err(|e| e.to_string())?;
                    let established = crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    if established {
                        Ok(())
                    } else {
                        Err("not Established yet".to_string())
                    }
                }
            },
        )
        .await?;
    }
    Ok(())
}

/// Sets the value at a JSON pointer, creating objects on the way (array indices must exist).
fn set(v: &mut Value, pointer: &str, value: Value) {
    let mut cur = v;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        cur = match cur {
            Value::Array(a) => &mut a[part.parse::<usize>().expect("array index")],
            Value::Object(m) if last => {
                m.insert(part.to_string(), value);
                return;
            }
            Value::Object(m) => m.entry(part.to_string()).or_insert_with(|| json!({})),
            other => panic!("{pointer}: cannot descend into {other}"),
        };
    }
    *cur = value;
}
