//! A shared hub that no tenant can break (issue 13), on real control planes.
//!
//! | trial | asserts |
//! |---|---|
//! | `deletion_completes_with_kinds_members_refuse` | the member namespace Bascule created carries `pod-security.kubernetes.io/enforce` and `warn` = `baseline` (the default); a placed workload changed to also hold a kind the members do not serve (`example.com/v1 Widget`, 404), a cluster-scoped kind (`node.k8s.io/v1 RuntimeClass`) and a kind the member identity may not touch (`batch/v1 Job`, 403) is deleted: gone from the hub within 60 s (it used to stay Terminating), its Deployment and ConfigMap removed from the members, a Warning Event `ObjectsAbandoned` names the three kinds |
//! | `policy_refuses_what_it_renders` | with the default tenancy policy, a workload whose override turns an Opaque Secret into a `kubernetes.io/service-account-token` one on eks-use1 (the CRD's CEL sees only the template) is `Degraded`/`Stalled` with reason `RefusedByPolicy`, naming eks-use1, `Secret/sneaky` and the type, and nothing of it is written to any member; a workload in the operator's namespace (denied by default) is refused the same way, naming the namespace, written nowhere, and deleted normally |
//! | `paused_moves_hold_until_unpaused` | `held` and `free` (Failover, prefer eks-use1) placed on eks-use1; `held` annotated `bascule.dev/pause-moves: "true"`; eks-use1 stopped → `free` 2/2 on gke-euw1 within 30 s, `held` keeps `eks-use1=2` with `Degraded` reason `MovesPaused` naming the annotation and what it would do, and nothing of it is written to gke-euw1 5 s later; the annotation removed → `held` 2/2 on gke-euw1 within 30 s |
//! | `dry_run_writes_nothing` | `placed` on eks-use1; the operator replaced by `bascule run --dry-run`; `preview` created and eks-use1 stopped → within 30 s the dry run logs `would: place eks-use1=2; write eks-use1=2` for preview and `would: place gke-euw1=2, starting a Failover from eks-use1 to gke-euw1; write gke-euw1=2` for placed; preview has no status and no finalizer, placed's resourceVersion is unchanged, eks-use1's MemberCluster still says Healthy, and gke-euw1 holds nothing of either; the live operator is then started again |
//! | `another_hubs_objects_are_left_alone` | web (Failover, eks-use1) placed: its Deployment carries `bascule.dev/hub` = the uid of the hub's kube-system; a Deployment (3 replicas) and a ConfigMap labelled with web's UID but hub `another-hub` in web's namespace, and a Deployment with this hub's labels for web in another namespace, are created in eks-use1; after a reconcile web still shows `eks-use1=2`, desired 2, available 2 (not 5 or 8); web deleted → its own Deployment removed, the other hub's Deployment and ConfigMap left |
//! | `removed_member_is_drained_then_released` | web (Failover, budget 1 move) on eks-use1, whose MemberCluster carries the finalizer `bascule.dev/member-cleanup`; the MemberCluster deleted → web 2/2 on gke-euw1 within 30 s, its Deployment and ConfigMap gone from eks-use1, the MemberCluster gone within 60 s; web's status has no eks-use1 row, is not Degraded, and `recentMoves` is empty (the move was not paid for) |
//! | `ownership_is_claimed_whole` | 20 workloads created at once, each naming Deployment and ConfigMap `shared` → exactly one is Ready and holds both objects in eks-use1 (their `workload-uid` labels are its UID: never split), the 19 others report `OwnershipConflict` |
//! | `upgrade_adopts_earlier_objects` | objects as an earlier release left them (server-side applied by manager `bascule`, no hub label) for `legacy`, placed while a dry run held it → with the operator back, legacy is Ready without a conflict; its Deployment gains `bascule.dev/hub` and loses the `bascule` manager entry |
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
use crate::support::operator::{Operator, OperatorOptions};
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
                    // Past the tenancy policy, so that the members' refusals are what is met.
                    operator_args: vec![
                        "--also-allowed-kinds=Job.batch,Widget.example.com,RuntimeClass.node.k8s.io"
                            .into(),
                    ],
                    ..FleetOptions::new("refused")
                }
                .success_threshold(1);
                Fleet::run(h, options, refused_kinds).await
            },
        ),
        trial("tenancy::policy_refuses_what_it_renders", |h| async move {
            let options = FleetOptions {
                group: "tenancy",
                ..FleetOptions::new("policy")
            }
            .success_threshold(1);
            Fleet::run(h, options, policy_refusals).await
        }),
        trial(
            "tenancy::paused_moves_hold_until_unpaused",
            |h| async move {
                let options = FleetOptions {
                    group: "tenancy",
                    ..FleetOptions::new("paused")
                };
                Fleet::run(h, options, paused_moves).await
            },
        ),
        trial("tenancy::dry_run_writes_nothing", |h| async move {
            let options = FleetOptions {
                group: "tenancy",
                ..FleetOptions::new("dry")
            };
            Fleet::run(h, options, dry_run).await
        }),
        trial(
            "tenancy::another_hubs_objects_are_left_alone",
            |h| async move {
                let options = FleetOptions {
                    group: "tenancy",
                    ..FleetOptions::new("hubs")
                }
                .success_threshold(1);
                Fleet::run(h, options, other_hub).await
            },
        ),
        trial(
            "tenancy::removed_member_is_drained_then_released",
            |h| async move {
                let options = FleetOptions {
                    group: "tenancy",
                    ..FleetOptions::new("removed")
                }
                .success_threshold(1);
                Fleet::run(h, options, removed_member).await
            },
        ),
        trial("tenancy::ownership_is_claimed_whole", |h| async move {
            let options = FleetOptions {
                group: "tenancy",
                ..FleetOptions::new("claims")
            }
            .success_threshold(1);
            Fleet::run(h, options, claims).await
        }),
        trial("tenancy::upgrade_adopts_earlier_objects", |h| async move {
            let options = FleetOptions {
                group: "tenancy",
                ..FleetOptions::new("adopt")
            }
            .success_threshold(1);
            Fleet::run(h, options, adopted).await
        }),
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

/// The operator's tenancy policy (defaults) on what it would write: an override that turns a
/// Secret into a ServiceAccount token on one member (the CRD's CEL sees only the template), and a
/// workload in the operator's own namespace. Nothing of either is written; each says why.
async fn policy_refusals(fx: &mut Fleet) -> TestResult {
    let mut spec = failover("sneaky");
    spec["template"]["manifests"]
        .as_array_mut()
        .ok_or("manifests")?
        .push(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sneaky",
                     "annotations": {"kubernetes.io/service-account.name": "default"}},
                     "type": "Opaque"}),
        );
    spec["overrides"] = json!([{"name": "mint-a-token", "clusters": {"clusterNames": [fx.mc(EKS)]},
        "manifests": [{"kind": "Secret", "name": "sneaky", "jsonPatch": [
            {"op": "replace", "path": "/type", "value": "kubernetes.io/service-account-token"}]}]}]);
    fx.create_workload("sneaky", spec).await?;
    let sneaky = fx
        .wait_workload("sneaky", "Degraded RefusedByPolicy", PLACED_WITHIN, |w| {
            let s = w.status.as_ref().ok_or("no status")?;
            match condition(&s.conditions, "Degraded") {
                Some(c) if c.reason == "RefusedByPolicy" => Ok(()),
                other => Err(format!("Degraded {other:?}")),
            }
        })
        .await?;
    let status = sneaky.status.clone().unwrap_or_default();
    let degraded = condition(&status.conditions, "Degraded").ok_or("no Degraded")?;
    ensure!(
        degraded.message.contains(&fx.mc(EKS))
            && degraded.message.contains("Secret/sneaky")
            && degraded
                .message
                .contains("kubernetes.io/service-account-token"),
        "the Degraded message does not name the cluster, object and why: {}",
        degraded.message
    );
    let stalled = condition(&status.conditions, "Stalled").ok_or("no Stalled")?;
    ensure!(stalled.status == "True", "Stalled {stalled:?}");
    let uid = sneaky.uid().ok_or("no uid")?;
    let written = member_objects(fx, &uid).await?;
    ensure!(
        written.is_empty(),
        "sneaky's objects were written: {written:?}"
    );

    // The operator's namespace is denied by default.
    let in_ops = Api::<MultiCloudWorkload>::namespaced(fx.hub.clone(), &fx.ops_ns);
    let w: MultiCloudWorkload = serde_json::from_value(json!({
        "apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": "in-ops", "namespace": fx.ops_ns},
        "spec": failover("in-ops"),
    }))?;
    let in_ops_uid = in_ops
        .create(&kube::api::PostParams::default(), &w)
        .await?
        .uid()
        .ok_or("no uid")?;
    let result = fx
        .until(
            "in-ops Degraded RefusedByPolicy",
            PLACED_WITHIN,
            POLL,
            async || {
                let w = in_ops.get("in-ops").await.map_err(|e| e.to_string())?;
                let s = w.status.unwrap_or_default();
                match condition(&s.conditions, "Degraded") {
                    Some(c) if c.reason == "RefusedByPolicy" => Ok(c.message.clone()),
                    other => Err(format!("Degraded {other:?}")),
                }
            },
        )
        .await;
    let message = result?;
    ensure!(
        message.contains(&format!("namespace {}", fx.ops_ns)),
        "the message does not name the namespace: {message}"
    );
    for member in [EKS, GKE] {
        let found = Api::<Deployment>::namespaced(fx.member(member), &fx.ops_ns)
            .list(&ListParams::default().labels(&format!("{WORKLOAD_UID}={in_ops_uid}")))
            .await?;
        ensure!(found.items.is_empty(), "in-ops was written to {member}");
    }
    in_ops.delete("in-ops", &DeleteParams::default()).await?;
    fx.until(
        "in-ops deleted",
        DELETED_WITHIN,
        POLL,
        async || match in_ops.get_opt("in-ops").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await?;
    fx.alive()?;
    Ok(())
}

/// Incident control: a workload annotated `bascule.dev/pause-moves` stays on a stopped member
/// (status says paused) while another fails over; the annotation removed, it moves too.
async fn paused_moves(fx: &mut Fleet) -> TestResult {
    for name in ["held", "free"] {
        fx.create_workload(name, failover(name)).await?;
    }
    for name in ["held", "free"] {
        wait_placed_on(fx, name, &fx.mc(EKS), PLACED_WITHIN).await?;
    }
    let annotate = |value: Value| {
        Patch::Merge(json!({"metadata": {"annotations": {"bascule.dev/pause-moves": value}}}))
    };
    fx.workloads()
        .patch("held", &PatchParams::default(), &annotate(json!("true")))
        .await?;
    let outage = {
        let h = fx.h;
        tokio::task::spawn_blocking(move || h.stop(EKS)).await??
    };
    let body = async {
        wait_placed_on(fx, "free", &fx.mc(GKE), FAILOVER_WITHIN).await?;
        let held = fx
            .wait_workload("held", "Degraded MovesPaused", FAILOVER_WITHIN, |w| {
                let s = w.status.as_ref().ok_or("no status")?;
                match condition(&s.conditions, "Degraded") {
                    Some(c) if c.reason == "MovesPaused" => Ok(()),
                    other => Err(format!("Degraded {other:?}")),
                }
            })
            .await?;
        let s = held.status.clone().unwrap_or_default();
        let message = &condition(&s.conditions, "Degraded")
            .ok_or("Degraded")?
            .message;
        let want = format!("{}=2", fx.mc(EKS));
        ensure!(
            s.placement.as_deref() == Some(want.as_str())
                && message.contains("bascule.dev/pause-moves")
                && message.contains(&format!("it would be {}=2", fx.mc(GKE))),
            "held: placement {:?}, Degraded {message}",
            s.placement
        );
        // Still held a while later: nothing written to gke-euw1 for it.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let uid = held.uid().ok_or("no uid")?;
        let on_gke = Api::<Deployment>::namespaced(fx.member(GKE), &fx.app_ns)
            .list(&ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}")))
            .await?;
        ensure!(
            on_gke.items.is_empty(),
            "held was written to {GKE} while paused"
        );
        let unpaused = std::time::Instant::now();
        fx.workloads()
            .patch("held", &PatchParams::default(), &annotate(Value::Null))
            .await?;
        wait_placed_on(fx, "held", &fx.mc(GKE), FAILOVER_WITHIN).await?;
        println!(
            "held: 2/2 on {GKE} {:.1} s after the pause was lifted",
            unpaused.elapsed().as_secs_f64()
        );
        TestResult::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || outage.end()).await??;
    body?;
    fx.wait_health(EKS, "Healthy", Duration::from_secs(60))
        .await?;
    fx.alive()?;
    Ok(())
}

/// Swaps the fleet's operator for one run with `extra_args`, under `label`.
fn swap_operator(fx: &Fleet, label: &str, extra_args: &[&str]) -> TestResult {
    let (h, ns) = (fx.h, fx.ops_ns.clone());
    let mut options = OperatorOptions::new(&ns, label);
    options.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
    fx.with_operator(|op| -> Result<(), String> {
        op.stop(Duration::from_secs(10))?;
        *op = Operator::start(h, options)?;
        Ok(())
    })?;
    Ok(())
}

/// `bascule run --dry-run` in place of the live operator: it reports what it would do (a first
/// placement; a failover when eks-use1 is stopped) and writes nothing to the members or the hub.
async fn dry_run(fx: &mut Fleet) -> TestResult {
    fx.create_workload("placed", failover("placed")).await?;
    wait_placed_on(fx, "placed", &fx.mc(EKS), PLACED_WITHIN).await?;
    let placed = fx.workload("placed").await?;
    swap_operator(fx, "dry-run", &["--dry-run"])?;
    let log = fx.with_operator(|op| op.log_path().to_path_buf());
    let preview = fx.create_workload("preview", failover("preview")).await?;
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let report = async |workload: &str, what: &str| {
        fx.until(
            &format!("the dry run's report on {workload}"),
            FAILOVER_WITHIN,
            POLL,
            async || {
                let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
                text.lines()
                    .find(|l| l.contains(&format!("/{workload} ")) && l.contains(what))
                    .map(|l| println!("{l}"))
                    .ok_or_else(|| format!("no {what:?} yet"))
            },
        )
        .await
    };
    report("preview", &format!("would: place {eks}=2; write {eks}=2")).await?;
    let outage = {
        let h = fx.h;
        tokio::task::spawn_blocking(move || h.stop(EKS)).await??
    };
    let body = async {
        report(
            "placed",
            &format!(
                "would: place {gke}=2, starting a Failover from {eks} to {gke}; write {gke}=2"
            ),
        )
        .await?;
        // Nothing on the hub: no status, no finalizer; the live status untouched; the stopped
        // member still Healthy on the hub (no MemberCluster status written).
        let p = fx.workload("preview").await?;
        ensure!(
            p.status.is_none() && p.finalizers().is_empty(),
            "preview: status {:?}, finalizers {:?}",
            p.status,
            p.finalizers()
        );
        let now = fx.workload("placed").await?;
        ensure!(
            now.metadata.resource_version == placed.metadata.resource_version,
            "placed was written: {:?}",
            now.status
        );
        let mc = fx.member_cluster(EKS).await?;
        ensure!(
            crate::support::fleet::health_of(&mc) == "Healthy",
            "the dry run wrote {EKS}'s status: {:?}",
            mc.status
        );
        // Nothing on the surviving member.
        for uid in [preview.uid(), placed.uid()].into_iter().flatten() {
            let found = Api::<Deployment>::namespaced(fx.member(GKE), &fx.app_ns)
                .list(&ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}")))
                .await?;
            ensure!(found.items.is_empty(), "the dry run wrote to {GKE}");
        }
        TestResult::Ok(())
    }
    .await;
    tokio::task::spawn_blocking(move || outage.end()).await??;
    swap_operator(fx, "after-dry-run", &[])?;
    body?;
    fx.wait_health(EKS, "Healthy", Duration::from_secs(60))
        .await?;
    fx.alive()?;
    Ok(())
}

/// A member shared with another hub: objects labelled with web's UID but another hub's id, and
/// an object with this hub's labels in another namespace, are neither counted nor touched — not
/// by a reconcile, not by web's deletion. What this hub places carries its id (the uid of the
/// hub's kube-system namespace by default).
async fn other_hub(fx: &mut Fleet) -> TestResult {
    fx.create_workload("web", failover("web")).await?;
    wait_placed_on(fx, "web", &fx.mc(EKS), PLACED_WITHIN).await?;
    let web = fx.workload("web").await?;
    let uid = web.uid().ok_or("no uid")?;
    let hub_id = Api::<Namespace>::all(fx.hub.clone())
        .get("kube-system")
        .await?
        .uid()
        .ok_or("kube-system has no uid")?;
    let deployments = Api::<Deployment>::namespaced(fx.member(EKS), &fx.app_ns);
    let ours = deployments.get("web").await?;
    ensure!(
        ours.labels().get("bascule.dev/hub") == Some(&hub_id),
        "web's Deployment is not labelled with this hub's id {hub_id}: {:?}",
        ours.labels()
    );
    let labels = |hub: &str| {
        json!({"app.kubernetes.io/managed-by": "bascule", "bascule.dev/workload-namespace": fx.app_ns,
               "bascule.dev/workload-name": "web", WORKLOAD_UID: uid, "bascule.dev/hub": hub})
    };
    let impostor = |name: &str, hub: &str| -> Result<Deployment, serde_json::Error> {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels(hub)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "registry.example/x:1"}]}}}
        }))
    };
    let pp = kube::api::PostParams::default();
    deployments
        .create(&pp, &impostor("other-hubs", "another-hub")?)
        .await?;
    let copied: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "other-hubs", "labels": labels("another-hub")}}),
    )?;
    Api::<ConfigMap>::namespaced(fx.member(EKS), &fx.app_ns)
        .create(&pp, &copied)
        .await?;
    // This hub's labels, on an object in another namespace.
    let elsewhere = format!("{}-elsewhere", fx.app_ns);
    Api::<Namespace>::all(fx.member(EKS))
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": elsewhere}}))?,
        )
        .await?;
    Api::<Deployment>::namespaced(fx.member(EKS), &elsewhere)
        .create(&pp, &impostor("web", &hub_id)?)
        .await?;
    let result = async {
        // A reconcile (an annotation changed), then a few seconds for the members to report.
        fx.workloads()
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": {"e2e": "poke"}}})),
            )
            .await?;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let w = fx.workload("web").await?;
        let s = w.status.clone().unwrap_or_default();
        let replicas = s.replicas.clone().unwrap_or_default();
        ensure!(
            s.placement.as_deref() == Some(format!("{}=2", fx.mc(EKS)).as_str())
                && replicas.desired == 2
                && replicas.available == 2,
            "web counts objects that are not its own: placement {:?}, replicas {replicas:?}",
            s.placement
        );
        // Deleted: its own objects go, the other hub's stay.
        fx.workloads()
            .delete("web", &DeleteParams::default())
            .await?;
        fx.until("web deleted", DELETED_WITHIN, POLL, async || {
            match fx.workloads().get_opt("web").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await?;
        ensure!(
            deployments.get_opt("web").await?.is_none(),
            "web's own Deployment was not removed"
        );
        ensure!(
            deployments.get_opt("other-hubs").await?.is_some(),
            "the other hub's Deployment was deleted"
        );
        ensure!(
            Api::<ConfigMap>::namespaced(fx.member(EKS), &fx.app_ns)
                .get_opt("other-hubs")
                .await?
                .is_some(),
            "the other hub's ConfigMap was deleted"
        );
        TestResult::Ok(())
    }
    .await;
    let _ = Api::<Namespace>::all(fx.member(EKS))
        .delete(&elsewhere, &DeleteParams::default())
        .await;
    for name in ["other-hubs"] {
        let _ = deployments.delete(name, &DeleteParams::default()).await;
        let _ = Api::<ConfigMap>::namespaced(fx.member(EKS), &fx.app_ns)
            .delete(name, &DeleteParams::default())
            .await;
    }
    result?;
    fx.alive()?;
    Ok(())
}

/// eks-use1's MemberCluster deleted while `web` runs there: web moves to gke-euw1 (not paid for
/// from its one-move budget), its objects are removed from eks-use1, then the MemberCluster
/// goes, and web's status no longer mentions eks-use1.
async fn removed_member(fx: &mut Fleet) -> TestResult {
    let mut spec = failover("web");
    spec["failover"] = json!({"budget": {"maxMoves": 1, "windowSeconds": 3600}});
    fx.create_workload("web", spec).await?;
    wait_placed_on(fx, "web", &fx.mc(EKS), PLACED_WITHIN).await?;
    let uid = fx.workload("web").await?.uid().ok_or("no uid")?;
    let mc = fx.member_clusters().get(&fx.mc(EKS)).await?;
    ensure!(
        mc.finalizers()
            .iter()
            .any(|f| f == "bascule.dev/member-cleanup"),
        "{EKS}'s MemberCluster has no finalizer: {:?}",
        mc.finalizers()
    );
    let removed = std::time::Instant::now();
    fx.member_clusters()
        .delete(&fx.mc(EKS), &DeleteParams::default())
        .await?;
    wait_placed_on(fx, "web", &fx.mc(GKE), FAILOVER_WITHIN).await?;
    let moved = removed.elapsed();
    let on_eks = Api::<Deployment>::namespaced(fx.member(EKS), &fx.app_ns);
    let labels = ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}"));
    fx.until(
        "web's objects removed from eks-use1",
        FAILOVER_WITHIN,
        POLL,
        async || {
            let left = on_eks.list(&labels).await.map_err(|e| e.to_string())?;
            let configmaps = Api::<ConfigMap>::namespaced(fx.member(EKS), &fx.app_ns)
                .list(&labels)
                .await
                .map_err(|e| e.to_string())?;
            match left.items.len() + configmaps.items.len() {
                0 => Ok(()),
                n => Err(format!("{n} left")),
            }
        },
    )
    .await?;
    fx.until(
        "the MemberCluster gone",
        DELETED_WITHIN,
        POLL,
        async || match fx.member_clusters().get_opt(&fx.mc(EKS)).await {
            Ok(None) => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|m| m.map(|m| m.finalizers().to_vec()))
            )),
        },
    )
    .await?;
    let gone = removed.elapsed();
    let w = fx
        .wait_workload("web", "no row for eks-use1", PLACED_WITHIN, |w| {
            let s = w.status.as_ref().ok_or("no status")?;
            match s.clusters.iter().find(|c| c.name.starts_with(EKS)) {
                Some(c) => Err(format!("still a row: {c:?}")),
                None => Ok(()),
            }
        })
        .await?;
    let s = w.status.clone().unwrap_or_default();
    let degraded = condition(&s.conditions, "Degraded");
    ensure!(
        degraded.is_none_or(|c| c.status == "False"),
        "web Degraded: {degraded:?}"
    );
    ensure!(
        s.recent_moves.is_empty(),
        "the move off a removed member was paid for: {:?}",
        s.recent_moves
    );
    println!(
        "removed member: web 2/2 on {GKE} {:.1} s after the deletion, MemberCluster gone after {:.1} s",
        moved.as_secs_f64(),
        gone.as_secs_f64()
    );
    fx.alive()?;
    Ok(())
}

/// Workloads created at once whose templates name the same Deployment and ConfigMap.
const CLAIMANTS: usize = 20;

/// `CLAIMANTS` workloads created at the same moment, each naming Deployment and ConfigMap
/// `shared`: exactly one holds both (never one each), it is Ready; every other one reports
/// `OwnershipConflict`.
async fn claims(fx: &mut Fleet) -> TestResult {
    let names: Vec<String> = (0..CLAIMANTS).map(|i| format!("claim-{i}")).collect();
    let created = futures::future::join_all(
        names
            .iter()
            .map(|n| fx.create_workload(n, failover("shared"))),
    )
    .await;
    for c in created {
        c?;
    }
    let verdicts = fx
        .until("every claimant decided", PLACED_WITHIN, POLL, async || {
            let mut ready = Vec::new();
            let mut conflicted = 0;
            for n in &names {
                let w = fx.workload(n).await?;
                let s = w.status.clone().unwrap_or_default();
                let is = |t: &str, reason: Option<&str>| {
                    condition(&s.conditions, t)
                        .is_some_and(|c| c.status == "True" && reason.is_none_or(|r| c.reason == r))
                };
                if is("Ready", None) {
                    ready.push(w.uid().unwrap_or_default());
                } else if is("Degraded", Some("OwnershipConflict")) {
                    conflicted += 1;
                }
            }
            match (ready.len(), conflicted) {
                (1, c) if c == CLAIMANTS - 1 => Ok(ready.remove(0)),
                other => Err(format!("(ready, conflicted) = {other:?}")),
            }
        })
        .await?;
    let winner = verdicts;
    let uid_of = |labels: Option<&BTreeMap<String, String>>| {
        labels
            .and_then(|l| l.get(WORKLOAD_UID))
            .cloned()
            .unwrap_or_default()
    };
    let d = Api::<Deployment>::namespaced(fx.member(EKS), &fx.app_ns)
        .get("shared")
        .await?;
    let c = Api::<ConfigMap>::namespaced(fx.member(EKS), &fx.app_ns)
        .get("shared")
        .await?;
    ensure!(
        uid_of(d.metadata.labels.as_ref()) == winner
            && uid_of(c.metadata.labels.as_ref()) == winner,
        "split or lost: Deployment held by {}, ConfigMap by {}, Ready is {winner}",
        uid_of(d.metadata.labels.as_ref()),
        uid_of(c.metadata.labels.as_ref())
    );
    println!(
        "{CLAIMANTS} claimants at once: one holds both objects, {} report OwnershipConflict",
        CLAIMANTS - 1
    );
    fx.alive()?;
    Ok(())
}

/// Objects placed by a release before per-workload field managers and hub ids (server-side
/// applied by manager `bascule`, no hub label) are adopted: the workload turns Ready with no
/// conflict, the objects gain this hub's label and lose the old manager.
async fn adopted(fx: &mut Fleet) -> TestResult {
    // A dry run holds the workload while the earlier release's objects are put in place.
    swap_operator(fx, "adopt-dry-run", &["--dry-run"])?;
    let w = fx.create_workload("legacy", failover("legacy")).await?;
    let uid = w.uid().ok_or("no uid")?;
    let labels = json!({"app.kubernetes.io/managed-by": "bascule",
        "bascule.dev/workload-namespace": fx.app_ns, "bascule.dev/workload-name": "legacy",
        WORKLOAD_UID: uid});
    Api::<Namespace>::all(fx.member(EKS))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": fx.app_ns}}))?,
        )
        .await?;
    let old = PatchParams::apply("bascule").force();
    for mut m in small_manifests("legacy")
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        m["metadata"]["labels"] = labels.clone();
        m["metadata"]["namespace"] = json!(fx.app_ns);
        if m["kind"] == "Deployment" {
            m["spec"]["replicas"] = json!(2);
        }
        let ar = if m["kind"] == "Deployment" {
            ApiResource::erase::<Deployment>(&())
        } else {
            ApiResource::erase::<ConfigMap>(&())
        };
        Api::<DynamicObject>::namespaced_with(fx.member(EKS), &fx.app_ns, &ar)
            .patch("legacy", &old, &Patch::Apply(&m))
            .await?;
    }
    swap_operator(fx, "adopt", &[])?;
    let w = fx
        .wait_workload("legacy", "Ready=True", PLACED_WITHIN, |w| {
            let s = w.status.as_ref().ok_or("no status")?;
            match condition(&s.conditions, "Ready") {
                Some(c) if c.status == "True" => Ok(()),
                other => Err(format!(
                    "Ready {other:?}, Degraded {:?}",
                    condition(&s.conditions, "Degraded")
                )),
            }
        })
        .await?;
    let s = w.status.clone().unwrap_or_default();
    ensure!(
        condition(&s.conditions, "Degraded").is_none_or(|c| c.status == "False"),
        "adopted with a problem: {:?}",
        condition(&s.conditions, "Degraded")
    );
    let d = fx
        .until(
            "the old field manager dropped",
            PLACED_WITHIN,
            POLL,
            async || {
                let d = Api::<Deployment>::namespaced(fx.member(EKS), &fx.app_ns)
                    .get("legacy")
                    .await
                    .map_err(|e| e.to_string())?;
                let managers: Vec<String> = d
                    .metadata
                    .managed_fields
                    .iter()
                    .flatten()
                    .filter_map(|m| m.manager.clone())
                    .collect();
                match managers.iter().any(|m| m == "bascule") {
                    false => Ok(d),
                    true => Err(format!("managers {managers:?}")),
                }
            },
        )
        .await?;
    ensure!(
        d.labels().contains_key("bascule.dev/hub"),
        "the adopted Deployment has no hub label: {:?}",
        d.labels()
    );
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
