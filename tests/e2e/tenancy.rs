//! A shared hub that no tenant can break (issue 13), on real control planes.
//!
//! | trial | asserts |
//! |---|---|
//! | `deletion_completes_with_kinds_members_refuse` | the member namespace Bascule created carries `pod-security.kubernetes.io/enforce` and `warn` = `baseline` (the default); a placed workload changed to also hold a kind the members do not serve (`example.com/v1 Widget`, 404), a cluster-scoped kind (`node.k8s.io/v1 RuntimeClass`) and a kind the member identity may not touch (`batch/v1 Job`, 403) is deleted: gone from the hub within 60 s (it used to stay Terminating), its Deployment and ConfigMap removed from the members, a Warning Event `ObjectsAbandoned` names the three kinds |
//! | `unreadable_workload_affects_only_itself` | a placed workload turned unreadable (`maxReplicas: 2147483648`, stored while the CRD had no maximum, as before this release) is reported (Stalled, reason InvalidSpec, the field named; a Warning Event) and its member objects are left untouched; meanwhile other workloads are created, placed, failed over (eks-use1 stopped) and deleted, also after an operator restart (which used to serve no workload at all); deleting the unreadable one removes its objects from the members and completes |

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use bascule::api::MultiCloudWorkload;

use crate::ensure;
use crate::support::fleet::{EKS, Fleet, FleetOptions, GKE, WORKLOAD_UID, condition, describe};
use crate::support::{TestResult, Topology, trial};
use crate::workloads::small_manifests;

/// Placing a workload on healthy members (generous: not the feature here).
const PLACED_WITHIN: Duration = Duration::from_secs(60);
/// A stopped member's workload Available elsewhere (the failover trials' budget).
const FAILOVER_WITHIN: Duration = Duration::from_secs(30);
/// Deleting a workload completes within this (issue 13, item 2).
const DELETED_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

const TOO_BIG: i64 = 2_147_483_648;

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "tenancy::deletion_completes_with_kinds_members_refuse",
            |h| async move {
                let options = FleetOptions {
                    group: "tenancy",
                    ..FleetOptions::new("refused")
                }
                .success_threshold(1);
                Fleet::run(h, options, refused_kinds).await
            },
        ),
        trial(
            "tenancy::unreadable_workload_affects_only_itself",
            |h| async move {
                let options = FleetOptions {
                    group: "tenancy",
                    ..FleetOptions::new("unreadable")
                }
                .success_threshold(1);
                Fleet::run(h, options, unreadable_workload).await
            },
        ),
    ]
}

/// Kinds no retry can remove: not served (404), cluster-scoped, forbidden to the member
/// identity (403, deploy/member-rbac.yaml does not grant Jobs).
async fn refused_kinds(fx: &mut Fleet) -> TestResult {
    fx.create_workload("refused", failover("refused")).await?;
    wait_placed_on(fx, "refused", &fx.mc(EKS), PLACED_WITHIN).await?;
    let uid = fx.workload("refused").await?.uid().ok_or("no uid")?;
    // The member namespace Bascule created carries the default Pod Security level.
    let ns = Api::<Namespace>::all(fx.member(EKS))
        .get(&fx.app_ns)
        .await?;
    let labels = ns.metadata.labels.unwrap_or_default();
    for mode in ["enforce", "warn"] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        ensure!(
            labels.get(&key).map(String::as_str) == Some("baseline"),
            "namespace {} in {EKS}: {key} is {:?}, labels {labels:?}",
            fx.app_ns,
            labels.get(&key)
        );
    }
    ensure!(
        !member_objects(fx, &uid).await?.is_empty(),
        "refused has no objects in the members"
    );
    let mut manifests = small_manifests("refused");
    let more = manifests.as_array_mut().ok_or("manifests")?;
    more.push(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "refused"}}),
    );
    more.push(json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "refused"}, "handler": "runc"}));
    more.push(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "refused"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}));
    fx.workloads()
        .patch(
            "refused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"template": {"manifests": manifests}}})),
        )
        .await?;
    // Let the operator meet the new template (it cannot place it) before the deletion.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deleted = std::time::Instant::now();
    fx.workloads()
        .delete("refused", &DeleteParams::default())
        .await?;
    fx.until(
        "refused gone from the hub",
        DELETED_WITHIN,
        POLL,
        async || match fx.workloads().get_opt("refused").await {
            Ok(None) => Ok(()),
            Ok(Some(w)) => Err(format!(
                "still there, finalizers {:?}",
                w.metadata.finalizers
            )),
            Err(e) => Err(e.to_string()),
        },
    )
    .await?;
    println!(
        "refused: gone from the hub {:.1} s after its deletion",
        deleted.elapsed().as_secs_f64()
    );
    let left = member_objects(fx, &uid).await?;
    ensure!(
        left.is_empty(),
        "refused's objects left in the members: {left:?}"
    );
    let events = fx.events(&uid).await?;
    let abandoned = events
        .iter()
        .find(|e| e.reason == "ObjectsAbandoned")
        .ok_or_else(|| format!("no ObjectsAbandoned Event: {events:?}"))?;
    for kind in [
        "example.com/v1/Widget",
        "node.k8s.io/v1/RuntimeClass",
        "batch/v1/Job",
    ] {
        ensure!(
            abandoned.note.contains(kind),
            "the Event does not name {kind}: {}",
            abandoned.note
        );
    }
    ensure!(abandoned.type_ == "Warning", "{abandoned:?}");
    fx.alive()?;
    Ok(())
}

async fn unreadable_workload(fx: &mut Fleet) -> TestResult {
    // A workload placed on both members, then made unreadable the way an upgrade finds it.
    fx.create_workload("legacy", divided(&[EKS, GKE], 4, "legacy"))
        .await?;
    let legacy = wait_placed(fx, "legacy", 4).await?;
    let legacy_uid = legacy.uid().ok_or("no uid")?;
    let before = member_objects(fx, &legacy_uid).await?;
    ensure!(
        before.len() == 4,
        "legacy's objects in the members: {before:?}"
    );
    store_unreadable(fx, "legacy").await?;

    let raw = raw_workloads(fx);
    let reported = fx
        .until(
            "legacy reported InvalidSpec",
            PLACED_WITHIN,
            POLL,
            async || {
                let o = raw.get("legacy").await.map_err(|e| e.to_string())?;
                let stalled = condition_of(&o.data, "Stalled");
                match stalled {
                    Some((status, reason, message))
                        if status == "True"
                            && reason == "InvalidSpec"
                            && message.contains("spec.placement.clusterReplicas.maxReplicas") =>
                    {
                        Ok(message)
                    }
                    other => Err(format!("Stalled: {other:?}")),
                }
            },
        )
        .await?;
    println!("legacy: {reported}");
    let events = fx.events(&legacy_uid).await?;
    ensure!(
        events.iter().any(|e| e.reason == "InvalidSpec"),
        "no InvalidSpec Event for legacy: {events:?}"
    );

    // Others are served: placed, and the decisive case, after a restart of the operator.
    fx.create_workload("first", failover("first")).await?;
    wait_placed_on(fx, "first", &fx.mc(EKS), PLACED_WITHIN).await?;
    fx.with_operator(|op| op.kill_and_restart())?;
    fx.create_workload("second", failover("second")).await?;
    wait_placed_on(fx, "second", &fx.mc(EKS), PLACED_WITHIN).await?;

    // ... failed over: eks-use1 stopped.
    let outage = {
        let h = fx.h;
        tokio::task::spawn_blocking(move || h.stop(EKS)).await??
    };
    let moved = async {
        for name in ["first", "second"] {
            wait_placed_on(fx, name, &fx.mc(GKE), FAILOVER_WITHIN).await?;
        }
        TestResult::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || outage.end()).await??;
    moved?;
    fx.wait_health(EKS, "Healthy", Duration::from_secs(60))
        .await?;

    // Nothing of legacy's was touched meanwhile.
    let after = member_objects(fx, &legacy_uid).await?;
    ensure!(
        before == after,
        "legacy's objects changed while it could not be read:\n before {before:?}\n after  {after:?}"
    );

    // ... and deleted, the unreadable one too: its objects go from both members.
    for name in ["first", "second", "legacy"] {
        // Raw: the typed client cannot read legacy back from the answer either.
        raw.delete(name, &DeleteParams::default()).await?;
    }
    fx.until("every workload deleted", DELETED_WITHIN, POLL, async || {
        let left: Vec<String> = raw
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .iter()
            .map(|o| o.name_any())
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("still on the hub: {left:?}"))
        }
    })
    .await?;
    let left = member_objects(fx, &legacy_uid).await?;
    ensure!(
        left.is_empty(),
        "legacy's objects left in the members: {left:?}"
    );
    fx.alive()?;
    Ok(())
}

/// Makes `name` unreadable as a workload stored before the CRD had a maximum: the rule is
/// taken out of the CRD, the value written, the CRD restored.
async fn store_unreadable(fx: &Fleet, name: &str) -> TestResult {
    let crds = Api::<CustomResourceDefinition>::all(fx.hub.clone());
    let mut crd = bascule::api::crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "MultiCloudWorkload")
        .ok_or("no MultiCloudWorkload CRD")?;
    let mut schema = serde_json::to_value(&crd.spec.versions[0].schema)?;
    let bounds = schema
        .pointer_mut("/openAPIV3Schema/properties/spec/properties/placement/properties/clusterReplicas/properties/maxReplicas")
        .ok_or("no maxReplicas in the CRD")?;
    bounds
        .as_object_mut()
        .ok_or("maxReplicas is not an object")?
        .remove("x-kubernetes-validations");
    crd.spec.versions[0].schema = Some(serde_json::from_value(schema)?);
    crd.metadata.managed_fields = None;
    crds.patch(
        &crd.name_any(),
        &PatchParams::apply("bascule-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await?;
    let written = async {
        // The API server takes a moment to use the new schema.
        fx.until("the value stored", Duration::from_secs(30), POLL, async || {
            raw_workloads(fx)
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"placement": {"clusterReplicas": {"maxReplicas": TOO_BIG}}}})),
                )
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
    }
    .await;
    crate::crds::install_crds(&fx.hub).await?;
    written?;
    Ok(())
}

fn raw_workloads(fx: &Fleet) -> Api<DynamicObject> {
    Api::namespaced_with(
        fx.hub.clone(),
        &fx.app_ns,
        &ApiResource::erase::<MultiCloudWorkload>(&()),
    )
}

/// `(status, reason, message)` of a condition in a raw object's status.
fn condition_of(data: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = data
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

async fn wait_placed(fx: &Fleet, name: &str, replicas: i32) -> Result<MultiCloudWorkload, String> {
    fx.wait_workload(name, "Ready and all available", PLACED_WITHIN, |w| {
        let s = w.status.as_ref().ok_or("no status")?;
        let ready = condition(&s.conditions, "Ready").is_some_and(|c| c.status == "True");
        let counts = s.replicas.as_ref().is_some_and(|r| r.available == replicas);
        if ready && counts {
            Ok(())
        } else {
            Err(describe(w))
        }
    })
    .await
}

/// Waits until all the workload's replicas are Available in `cluster` (by MemberCluster name).
async fn wait_placed_on(fx: &Fleet, name: &str, cluster: &str, within: Duration) -> TestResult {
    let want = format!("{cluster}=2");
    fx.wait_workload(name, &format!("2/2 available on {cluster}"), within, |w| {
        let s = w.status.as_ref().ok_or("no status")?;
        let available = s.replicas.as_ref().is_some_and(|r| r.available == 2);
        if s.placement.as_deref() == Some(want.as_str()) && available {
            Ok(())
        } else {
            Err(describe(w))
        }
    })
    .await?;
    Ok(())
}

/// `kind/name in member` → what the operator controls of the objects labelled with the
/// workload's uid: their uid (not re-created), generation (spec not rewritten) and the time of
/// the operator's last apply (its managed-fields entry). Not the resourceVersion: the members'
/// own controllers write the Deployment's status when a member returns.
async fn member_objects(fx: &Fleet, uid: &str) -> Result<BTreeMap<String, String>, String> {
    let lp = ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}"));
    let mut out = BTreeMap::new();
    for member in [EKS, GKE] {
        let client: Client = fx.member(member);
        let deployments = Api::<Deployment>::namespaced(client.clone(), &fx.app_ns);
        let configmaps = Api::<ConfigMap>::namespaced(client, &fx.app_ns);
        let mut metas = Vec::new();
        for d in deployments
            .list_metadata(&lp)
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            metas.push(("Deployment", d.metadata));
        }
        for c in configmaps
            .list_metadata(&lp)
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            metas.push(("ConfigMap", c.metadata));
        }
        for (kind, m) in metas {
            let applied = m
                .managed_fields
                .iter()
                .flatten()
                .filter(|f| f.manager.as_deref() == Some("bascule"))
                .filter_map(|f| f.time.as_ref().map(|t| t.0.to_string()))
                .collect::<Vec<_>>()
                .join(",");
            out.insert(
                format!("{kind}/{} in {member}", m.name.unwrap_or_default()),
                format!(
                    "uid {} generation {} applied {applied}",
                    m.uid.unwrap_or_default(),
                    m.generation.unwrap_or_default()
                ),
            );
        }
    }
    Ok(out)
}

/// `replicas` divided over `members` (by harness name: the tier names them by provider).
fn divided(members: &[&str], replicas: i32, name: &str) -> Value {
    let providers: Vec<&str> = members
        .iter()
        .map(|m| if *m == EKS { "aws" } else { "gcp" })
        .collect();
    json!({
        "replicas": replicas,
        "placement": {"mode": "Divided", "tiers": [{"providers": providers}],
                      "clusterReplicas": {"maxReplicas": 10}},
        "template": {"manifests": small_manifests(name)},
    })
}

/// 2 replicas, "prefer EKS us-east-1, else GKE europe-west1".
fn failover(name: &str) -> Value {
    json!({
        "replicas": 2,
        "placement": {"mode": "Failover", "tiers": [
            {"name": "eks", "providers": ["aws"]},
            {"name": "gke", "providers": ["gcp"]},
        ]},
        "template": {"manifests": small_manifests(name)},
    })
}
