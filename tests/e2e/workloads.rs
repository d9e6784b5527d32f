//! The operator core (`bascule run`, a separate process) against the real hub and members:
//! placement of a MultiCloudWorkload into eks-use1 and gke-euw1, roll-outs, overrides, deletion,
//! ownership conflicts, a broken member connection, and an idle operator that writes nothing.
//!
//! Each trial creates its own namespaces on the hub (one for the operator's kubeconfig Secrets,
//! one for the workloads), a Secret and a MemberCluster per member (unique names, like
//! `members.rs`), starts its own `bascule run --namespace NS` (support::operator), and removes
//! everything at the end — also when it fails or panics: workloads are deleted while the
//! operator still runs (so that its finalizer cleans the members), leftovers get their finalizer
//! removed, the members' namespaces are deleted.
//!
//! Two measurements are trials ignored by default
//! (`cargo test --features e2e --test e2e -- --ignored measure`): create → objects in every member
//! latency over 100 workloads, and the operator's memory with 1,000 workloads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bascule::api::workload::{ClusterPlacementState, ClusterPlacementStatus, ReplicaCounts};

/// The contract's fields of a `status.clusters[]` row (the type may grow more).
type Row = (
    String,
    Option<Provider>,
    i32,
    i32,
    i32,
    ClusterPlacementState,
);
use bascule::api::{MemberCluster, MultiCloudWorkload, Provider};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::ensure;
use crate::support::fleet::{
    EKS, Fleet, FleetOptions, GKE, MANAGED_BY, WORKLOAD_NAME, WORKLOAD_NAMESPACE, WORKLOAD_UID,
    condition, describe,
};
use crate::support::metrics::RequestCounts;
use crate::support::{Harness, TestResult, Topology, trial, unique_name};

const FINALIZER: &str = "bascule.dev/cleanup";

/// How long a workload may take to become Available (generous: the feature is not speed).
const AVAILABLE_WITHIN: Duration = Duration::from_secs(60);
/// Deleting a workload empties every member within this: this budget is the feature.
const DELETED_WITHIN: Duration = Duration::from_secs(10);
/// How often a wait polls.
const POLL: Duration = Duration::from_millis(200);

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "workloads::metrics_count_writes_by_verb_and_resource",
            |h| async move { metrics_count_writes(h).await },
        ),
        trial(
            "workloads::weighted_spread_7_3_becomes_available",
            |h| async move { Fleet::run(h, FleetOptions::workloads("spread"), weighted_spread).await },
        ),
        trial(
            "workloads::replicas_and_template_changes_roll_out",
            |h| async move { Fleet::run(h, FleetOptions::workloads("rollout"), rollout).await },
        ),
        trial(
            "workloads::override_changes_only_its_provider",
            |h| async move { Fleet::run(h, FleetOptions::workloads("override"), overrides).await },
        ),
        trial(
            "workloads::deletion_leaves_nothing_within_10s",
            |h| async move { Fleet::run(h, FleetOptions::workloads("delete"), deletion).await },
        ),
        trial(
            "workloads::ownership_conflict_reported_foreign_object_untouched",
            |h| async move { Fleet::run(h, FleetOptions::workloads("conflict"), conflict).await },
        ),
        trial(
            "workloads::bad_kubeconfig_reported_workload_on_good_members",
            |h| async move { Fleet::run(h, FleetOptions::workloads("badconn"), bad_kubeconfig).await },
        ),
        trial(
            "workloads::sigkill_and_restart_change_nothing",
            |h| async move { Fleet::run(h, FleetOptions::workloads("restart"), restart).await },
        ),
        trial(
            "workloads::drift_in_a_member_is_repaired",
            |h| async move { Fleet::run(h, FleetOptions::workloads("drift"), drift).await },
        ),
        trial("workloads::idle_operator_writes_nothing", |h| async move {
            Fleet::run(h, FleetOptions::workloads("idle"), idle).await
        }),
        trial(
            "workloads::measure_propagation_latency_100_workloads",
            |h| async move { Fleet::run(h, FleetOptions::workloads("latency"), measure_latency).await },
        )
        .with_ignored_flag(true),
        trial("workloads::measure_memory_1000_workloads", |h| async move {
            Fleet::run(h, FleetOptions::workloads("memory"), measure_memory).await
        })
        .with_ignored_flag(true),
    ]
}

// ---------------------------------------------------------------------------------------------
// The metrics reader, checked against a live API server (no operator involved).

/// A ConfigMap created, patched, applied, replaced and deleted (plus a dry-run create) in a
/// member shows up in `apiserver_request_total` as exactly those writes, with the label values
/// the idle trial relies on; nothing but lease renewals and node heartbeats is written meanwhile.
async fn metrics_count_writes(h: &'static Harness) -> TestResult {
    let member = h.members().first().ok_or("no members")?;
    let client = h.client(member).await?;
    wait_no_terminating_namespaces(std::slice::from_ref(&client), Duration::from_secs(120)).await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let name = unique_name("e2e-metrics");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name}, "data": {"a": "1"},
    }))?;

    let before = RequestCounts::scrape(&client).await?;
    let t0 = Instant::now();
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &cm,
    )
    .await?;
    api.create(&PostParams::default(), &cm).await?;
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"b": "2"}})),
    )
    .await?;
    api.patch(
        &name,
        &PatchParams::apply("bascule-e2e"),
        &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name}, "data": {"c": "3"}})),
    )
    .await?;
    let mut current = api.get(&name).await?;
    current
        .data
        .get_or_insert_default()
        .insert("d".into(), "4".into());
    api.replace(&name, &PostParams::default(), &current).await?;
    api.delete(&name, &DeleteParams::default()).await?;
    let after = RequestCounts::scrape(&client).await?;
    let d = after.since(&before)?;
    let window = t0.elapsed();

    let writes = d.writes();
    println!(
        "{member}, {:.1} s: writes {writes}; background {}; reads by verb {:?}",
        window.as_secs_f64(),
        d.background_writes(),
        d.reads().by_verb()
    );
    let cm_writes = writes.filter(|k| k.resource == "configmaps");
    let got: BTreeMap<String, u64> = cm_writes
        .0
        .iter()
        .map(|(k, v)| (format!("{} {} {}", k.verb, k.code, k.dry_run), *v))
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("POST 201 All", 1),
        ("POST 201 ", 1),
        ("PATCH 200 ", 1),
        ("APPLY 200 ", 1),
        ("PUT 200 ", 1),
        ("DELETE 200 ", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ensure!(
        got == expected,
        "ConfigMap writes seen in /metrics: {got:?}, expected {expected:?}"
    );
    let others = d.foreground_writes().filter(|k| k.resource != "configmaps");
    ensure!(
        others.total() == 0,
        "writes other than the test's and the background: {others}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Trials with the operator.

/// Divided, tier aws weight 70 and tier gcp weight 30, 10 replicas: eks-use1 gets 7, gke-euw1 3,
/// and the status says so in every field. SIGTERM then stops the operator.
async fn weighted_spread(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let t0 = Instant::now();
    let created = fx
        .create_workload("catalog", divided_7_3(10, catalog_manifests("2.0.1", None)))
        .await?;
    let w = fx
        .wait_workload("catalog", "Ready=True/Available", AVAILABLE_WITHIN, |w| {
            ready_available(w)
        })
        .await?;
    let available_in = t0.elapsed();
    let uid = w.uid().ok_or("no uid")?;
    ensure!(
        Some(uid.as_str()) == created.uid().as_deref(),
        "uid changed"
    );
    let s = w.status.clone().ok_or("no status")?;

    ensure!(
        s.observed_generation == w.metadata.generation,
        "observedGeneration {:?}, generation {:?}",
        s.observed_generation,
        w.metadata.generation
    );
    ensure!(
        s.replicas
            == Some(ReplicaCounts {
                desired: 10,
                ready: 10,
                available: 10
            }),
        "status.replicas {:?}",
        s.replicas
    );
    let placement = format!("{eks}=7,{gke}=3");
    ensure!(
        s.placement.as_deref() == Some(placement.as_str()),
        "status.placement {:?}, expected {placement}",
        s.placement
    );
    let rows = vec![
        row(&eks, Provider::Aws, 7, ClusterPlacementState::Active),
        row(&gke, Provider::Gcp, 3, ClusterPlacementState::Active),
    ];
    let got: Vec<Row> = s.clusters.iter().map(row_of).collect();
    ensure!(
        got == rows,
        "status.clusters (name, provider, desired, ready, available, state) {got:?}, expected {rows:?}"
    );
    let generation = w.metadata.generation;
    for (type_, status, reason) in [
        ("Ready", "True", Some("Available")),
        ("Progressing", "False", None),
        ("Degraded", "False", None),
    ] {
        let c = condition(&s.conditions, type_).ok_or(format!("no {type_} condition"))?;
        ensure!(
            c.status == status && reason.is_none_or(|r| c.reason == r),
            "{type_}: {}/{}: {}",
            c.status,
            c.reason,
            c.message
        );
        ensure!(
            c.observed_generation == generation,
            "{type_}.observedGeneration {:?}, generation {generation:?}",
            c.observed_generation
        );
    }
    let decision = s.decision.as_ref().ok_or("no status.decision")?;
    ensure!(
        decision.outcome == "Satisfied",
        "decision {}: {}",
        decision.outcome,
        decision.message
    );
    for (name, replicas) in [(&eks, 7), (&gke, 3)] {
        let c = decision
            .clusters
            .iter()
            .find(|c| &c.name == name)
            .ok_or(format!("{name} not in status.decision.clusters"))?;
        ensure!(
            c.selected && c.replicas == replicas,
            "decision for {name}: {c:?}"
        );
    }
    ensure!(
        w.finalizers().iter().any(|f| f == FINALIZER),
        "finalizers {:?}",
        w.finalizers()
    );

    for (member, replicas) in [(EKS, 7), (GKE, 3)] {
        let d = fx
            .get::<Deployment>(member, "catalog")
            .await?
            .ok_or(format!("no Deployment catalog in {member}"))?;
        check_owned(&d.metadata, &w, member)?;
        let spec = d.spec.as_ref().ok_or("no spec")?;
        let st = d.status.clone().unwrap_or_default();
        ensure!(
            spec.replicas == Some(replicas) && st.available_replicas == Some(replicas),
            "{member}: Deployment replicas {:?}, available {:?}, expected {replicas}",
            spec.replicas,
            st.available_replicas
        );
        let svc = fx
            .get::<Service>(member, "catalog")
            .await?
            .ok_or(format!("no Service catalog in {member}"))?;
        check_owned(&svc.metadata, &w, member)?;
        let cm = fx
            .get::<ConfigMap>(member, "catalog-config")
            .await?
            .ok_or(format!("no ConfigMap catalog-config in {member}"))?;
        check_owned(&cm.metadata, &w, member)?;
        ensure!(
            cm.data
                .as_ref()
                .and_then(|d| d.get("ttl"))
                .map(String::as_str)
                == Some("300"),
            "{member}: ConfigMap data {:?}",
            cm.data
        );
    }

    let placed = fx
        .wait_event(&uid, "Normal", "Placed", Duration::from_secs(10))
        .await?;
    println!(
        "catalog Available 10/10 in {:.1} s: {}; decision {}: {}; Event Placed: {}",
        available_in.as_secs_f64(),
        s.placement.unwrap_or_default(),
        decision.outcome,
        decision.message,
        placed.message.unwrap_or_default()
    );

    // SIGTERM stops it.
    let t = Instant::now();
    let (status, by_itself) = fx.with_operator(|op| op.stop(Duration::from_secs(10)))?;
    println!(
        "SIGTERM: the operator exited in {:.2} s ({status})",
        t.elapsed().as_secs_f64()
    );
    ensure!(
        by_itself,
        "the operator did not exit within 10 s of SIGTERM"
    );
    Ok(())
}

/// 10 → 20 replicas, then a new image and an environment variable: both members get the new
/// spec, the status follows the generation, and the members' roll-outs complete.
async fn rollout(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    catalog_available(fx).await?;

    // Replicas.
    let t0 = Instant::now();
    let w = fx
        .patch_workload("catalog", json!({"spec": {"replicas": 20}}))
        .await?;
    let generation = w.metadata.generation;
    let first = fx
        .wait_workload(
            "catalog",
            "observedGeneration of replicas: 20",
            AVAILABLE_WITHIN,
            |w| observed(w, generation),
        )
        .await?;
    let desired = first.status.as_ref().and_then(|s| s.replicas.clone());
    ensure!(
        desired.as_ref().map(|r| r.desired) == Some(20),
        "status.observedGeneration reached {generation:?} with status.replicas {desired:?}"
    );
    let w = fx
        .wait_workload(
            "catalog",
            "Ready=True with 20 available",
            AVAILABLE_WITHIN,
            |w| {
                observed(w, generation)?;
                ready_available(w)?;
                available(w, 20)
            },
        )
        .await?;
    let scaled_in = t0.elapsed();
    let placement = format!("{eks}=14,{gke}=6");
    let s = w.status.as_ref().unwrap();
    ensure!(
        s.placement.as_deref() == Some(placement.as_str()),
        "placement {:?}, expected {placement}",
        s.placement
    );
    for (member, replicas) in [(EKS, 14), (GKE, 6)] {
        fx.wait_rolled_out(member, "catalog", replicas, "catalog:2.0.1", None)
            .await?;
    }
    println!(
        "10 -> 20 replicas: {placement}, Ready with 20/20 available {:.1} s after the change",
        scaled_in.as_secs_f64()
    );

    // Template: a new image and an environment variable.
    let t1 = Instant::now();
    let w = fx
        .patch_workload(
            "catalog",
            json!({"spec": {"template": {"manifests":
                catalog_manifests("2.0.2", Some(("LOG_LEVEL", "debug")))}}}),
        )
        .await?;
    let generation = w.metadata.generation;
    fx.wait_workload(
        "catalog",
        "Ready=True for the new template's generation",
        AVAILABLE_WITHIN,
        |w| {
            observed(w, generation)?;
            ready_available(w)
        },
    )
    .await?;
    let ready_in = t1.elapsed();
    // A client that trusts kstatus (observedGeneration current and Ready=True) must find the new
    // spec in every member.
    let mut at_ready = Vec::new();
    for member in [EKS, GKE] {
        let d = fx
            .get::<Deployment>(member, "catalog")
            .await?
            .ok_or(format!("no Deployment in {member}"))?;
        let (image, env) = container(&d);
        ensure!(
            image.ends_with("catalog:2.0.2") && env == Some(("LOG_LEVEL".into(), "debug".into())),
            "{member}: the workload said Ready for generation {generation:?} while its Deployment has image {image}, env {env:?}"
        );
        let st = d.status.clone().unwrap_or_default();
        at_ready.push(format!(
            "{member} updated {}/{} available {}",
            st.updated_replicas.unwrap_or(0),
            d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            st.available_replicas.unwrap_or(0)
        ));
    }
    for (member, replicas) in [(EKS, 14), (GKE, 6)] {
        fx.wait_rolled_out(
            member,
            "catalog",
            replicas,
            "catalog:2.0.2",
            Some(("LOG_LEVEL", "debug")),
        )
        .await?;
    }
    let rolled_in = t1.elapsed();
    let w = fx
        .wait_workload(
            "catalog",
            "still Ready with 20 available after the roll-out",
            AVAILABLE_WITHIN,
            |w| {
                observed(w, generation)?;
                ready_available(w)?;
                available(w, 20)
            },
        )
        .await?;
    println!(
        "image 2.0.1 -> 2.0.2 + env: Ready for generation {generation:?} after {:.1} s (members then: {}); members rolled out after {:.1} s; status {}",
        ready_in.as_secs_f64(),
        at_ready.join(", "),
        rolled_in.as_secs_f64(),
        describe(&w)
    );
    Ok(())
}

const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const AR: &str = "europe-west1-docker.pkg.dev/acme-shop/images";
const NEG: &str = "cloud.google.com/neg";
const NLB: &str = "service.beta.kubernetes.io/aws-load-balancer-type";

/// Overrides for provider gcp (an image registry rewrite ECR → Artifact Registry, an annotation
/// and a label on the Service) change gke-euw1's objects only; an override added later for aws
/// changes eks-use1's Service and leaves gke-euw1's objects as they were (same resourceVersion).
async fn overrides(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let gcp_overrides = json!([
        {"name": "gcp-registry", "clusters": {"providers": ["gcp"]},
         "imageRegistry": {"from": ECR, "to": AR}},
        {"name": "gcp-neg", "clusters": {"providers": ["gcp"]},
         "manifests": [{"kind": "Service", "name": "checkout",
                        "annotations": {NEG: "{\"ingress\": true}"},
                        "labels": {"bascule-e2e/cloud": "gcp"}}]},
    ]);
    let mut spec = duplicated(&[&eks, &gke], 2, checkout_manifests());
    spec["overrides"] = gcp_overrides.clone();
    fx.create_workload("checkout", spec).await?;
    let w = fx
        .wait_workload("checkout", "Ready=True/Available", AVAILABLE_WITHIN, |w| {
            ready_available(w)
        })
        .await?;
    let placement = format!("{eks}=2,{gke}=2");
    ensure!(
        w.status.as_ref().and_then(|s| s.placement.as_deref()) == Some(placement.as_str()),
        "placement: {}",
        describe(&w)
    );

    let image = |d: &Deployment| container(d).0;
    let d_eks = fx
        .get::<Deployment>(EKS, "checkout")
        .await?
        .ok_or("no eks Deployment")?;
    let d_gke = fx
        .get::<Deployment>(GKE, "checkout")
        .await?
        .ok_or("no gke Deployment")?;
    ensure!(
        image(&d_eks) == format!("{ECR}/shop/checkout:1.4.2"),
        "eks image {}",
        image(&d_eks)
    );
    ensure!(
        image(&d_gke) == format!("{AR}/shop/checkout:1.4.2"),
        "gke image {}",
        image(&d_gke)
    );
    let s_eks = fx
        .get::<Service>(EKS, "checkout")
        .await?
        .ok_or("no eks Service")?;
    let s_gke = fx
        .get::<Service>(GKE, "checkout")
        .await?
        .ok_or("no gke Service")?;
    ensure!(
        s_gke.annotations().get(NEG).map(String::as_str) == Some("{\"ingress\": true}")
            && s_gke.labels().get("bascule-e2e/cloud").map(String::as_str) == Some("gcp"),
        "gke Service: annotations {:?}, labels {:?}",
        s_gke.annotations(),
        s_gke.labels()
    );
    ensure!(
        !s_eks.annotations().contains_key(NEG) && !s_eks.labels().contains_key("bascule-e2e/cloud"),
        "eks Service got gcp's override: annotations {:?}, labels {:?}",
        s_eks.annotations(),
        s_eks.labels()
    );
    check_owned(&s_gke.metadata, &w, GKE)?;
    println!(
        "gcp overrides: {eks} runs {}, {gke} runs {}; {NEG} only on {gke}'s Service",
        image(&d_eks),
        image(&d_gke)
    );

    // An override for aws only: eks-use1's Service changes, gke-euw1's objects are not written.
    let gke_service_rv = s_gke.resource_version();
    let gke_deployment = (d_gke.metadata.generation, d_gke.resource_version());
    let mut all = gcp_overrides.as_array().unwrap().clone();
    all.push(
        json!({"name": "aws-nlb", "clusters": {"providers": ["aws"]},
                    "manifests": [{"kind": "Service", "name": "checkout",
                                   "annotations": {NLB: "nlb"}}]}),
    );
    let w = fx
        .patch_workload("checkout", json!({"spec": {"overrides": all}}))
        .await?;
    let generation = w.metadata.generation;
    let t = Instant::now();
    fx.until(
        "eks Service annotated by the aws override",
        Duration::from_secs(30),
        POLL,
        async || {
            let s = fx
                .get::<Service>(EKS, "checkout")
                .await?
                .ok_or("no eks Service")?;
            match s.annotations().get(NLB) {
                Some(v) if v == "nlb" => Ok(()),
                other => Err(format!("{NLB}: {other:?}")),
            }
        },
    )
    .await?;
    fx.wait_workload(
        "checkout",
        "observedGeneration of the aws override",
        AVAILABLE_WITHIN,
        |w| {
            observed(w, generation)?;
            ready_available(w)
        },
    )
    .await?;
    println!(
        "aws override on {eks}'s Service after {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // Give any late write a chance to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let s_gke = fx
        .get::<Service>(GKE, "checkout")
        .await?
        .ok_or("no gke Service")?;
    let d_gke = fx
        .get::<Deployment>(GKE, "checkout")
        .await?
        .ok_or("no gke Deployment")?;
    ensure!(
        !s_gke.annotations().contains_key(NLB),
        "gke Service got aws's override: {:?}",
        s_gke.annotations()
    );
    ensure!(
        s_gke.resource_version() == gke_service_rv,
        "gke Service rewritten by an aws-only change: resourceVersion {gke_service_rv:?} -> {:?}",
        s_gke.resource_version()
    );
    ensure!(
        (d_gke.metadata.generation, d_gke.resource_version()) == gke_deployment,
        "gke Deployment rewritten by an aws-only change: (generation, resourceVersion) {gke_deployment:?} -> {:?}",
        (d_gke.metadata.generation, d_gke.resource_version())
    );
    Ok(())
}

/// Deleting an Available workload leaves no object with its uid label in any member within 10 s,
/// and the MultiCloudWorkload is gone from the hub (the finalizer was removed) within 10 s too.
async fn deletion(fx: &mut Fleet) -> TestResult {
    let w = catalog_available(fx).await?;
    let uid = w.uid().ok_or("no uid")?;
    for member in [EKS, GKE] {
        let n = fx.placed_of(member, &uid).await?;
        ensure!(
            n.len() == 3,
            "{member}: expected a Deployment, a Service and a ConfigMap with the uid label, found {n:?}"
        );
    }

    let t0 = Instant::now();
    fx.workloads()
        .delete("catalog", &DeleteParams::default())
        .await?;
    let mut members_empty: BTreeMap<&str, Duration> = BTreeMap::new();
    let mut hub_gone = None;
    let mut last = String::new();
    while t0.elapsed() < DELETED_WITHIN && (members_empty.len() < 2 || hub_gone.is_none()) {
        fx.alive()?;
        let mut seen = Vec::new();
        for member in [EKS, GKE] {
            if members_empty.contains_key(member) {
                continue;
            }
            let left = fx.placed_of(member, &uid).await?;
            if left.is_empty() {
                members_empty.insert(member, t0.elapsed());
            } else {
                seen.push(format!("{member}: {left:?}"));
            }
        }
        if hub_gone.is_none() {
            match fx.workloads().get_opt("catalog").await? {
                None => hub_gone = Some(t0.elapsed()),
                Some(w) => seen.push(format!(
                    "hub: catalog still there (deletionTimestamp {:?}, finalizers {:?})",
                    w.metadata
                        .deletion_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string()),
                    w.finalizers()
                )),
            }
        }
        last = seen.join("; ");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let times = format!(
        "members empty after {:?}, MultiCloudWorkload gone after {:?}",
        members_empty
            .iter()
            .map(|(m, d)| format!("{m} {:.2} s", d.as_secs_f64()))
            .collect::<Vec<_>>(),
        hub_gone.map(|d| format!("{:.2} s", d.as_secs_f64()))
    );
    ensure!(
        members_empty.len() == 2 && hub_gone.is_some(),
        "not everything deleted within {DELETED_WITHIN:?}: {times}; last seen: {last}"
    );

    // Nothing of any kind carries the uid label in any member (every listable resource).
    for member in [EKS, GKE] {
        let left = labelled_anywhere(fx.member(member), &format!("{WORKLOAD_UID}={uid}")).await?;
        ensure!(
            left.is_empty(),
            "{member}: objects with the deleted workload's uid label: {left:?}"
        );
    }
    println!("catalog deleted: {times}; no object with its uid label left in any resource");
    Ok(())
}

/// A Service `checkout` that Bascule did not create exists in gke-euw1: the workload reports the
/// conflict (Degraded=True/OwnershipConflict naming the cluster and the object, a Warning
/// Event), leaves the Service exactly as it was, and still places everything in eks-use1.
/// Deleting the workload does not delete the foreign Service either.
async fn conflict(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let ns = fx.app_ns.clone();
    Api::<Namespace>::all(fx.member(GKE))
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let foreign: Service = serde_json::from_value(json!({
        "metadata": {"name": "checkout", "labels": {"team": "payments"},
                     "annotations": {"owner": "payments-team"}},
        "spec": {"selector": {"app": "payments"}, "ports": [{"port": 8081, "targetPort": 9000}]},
    }))?;
    let foreign = fx
        .member_api::<Service>(GKE)
        .create(&PostParams::default(), &foreign)
        .await?;
    let fingerprint = |s: &Service| {
        json!({
            "resourceVersion": s.metadata.resource_version,
            "uid": s.metadata.uid,
            "labels": s.metadata.labels,
            "annotations": s.metadata.annotations,
            "managers": s.metadata.managed_fields.as_ref().map(|m| m.iter()
                .map(|f| (f.manager.clone(), f.operation.clone())).collect::<Vec<_>>()),
            "spec": s.spec,
        })
    };
    let before = fingerprint(&foreign);

    let w = fx
        .create_workload(
            "checkout",
            duplicated(&[&eks, &gke], 1, checkout_manifests()),
        )
        .await?;
    let uid = w.uid().ok_or("no uid")?;
    let w = fx
        .wait_workload(
            "checkout",
            "Degraded=True/OwnershipConflict",
            AVAILABLE_WITHIN,
            |w| {
                let s = w.status.as_ref().ok_or("no status")?;
                match condition(&s.conditions, "Degraded") {
                    Some(c) if c.status == "True" && c.reason == "OwnershipConflict" => Ok(()),
                    Some(c) => Err(format!("Degraded={}/{}: {}", c.status, c.reason, c.message)),
                    None => Err("no Degraded condition".into()),
                }
            },
        )
        .await?;
    let degraded = condition(&w.status.as_ref().unwrap().conditions, "Degraded")
        .unwrap()
        .clone();
    ensure!(
        degraded.message.contains(&gke)
            && degraded.message.contains("checkout")
            && degraded.message.contains("Service"),
        "Degraded message should name {gke} and Service checkout: {}",
        degraded.message
    );
    ensure!(
        !degraded.message.contains(&eks),
        "Degraded message names {eks}, which has no conflict: {}",
        degraded.message
    );
    let event = fx
        .wait_event(
            &uid,
            "Warning",
            "OwnershipConflict",
            Duration::from_secs(30),
        )
        .await?;
    let involved = &event.involved_object;
    ensure!(
        involved.kind.as_deref() == Some("MultiCloudWorkload")
            && involved.name.as_deref() == Some("checkout")
            && involved.namespace.as_deref() == Some(fx.app_ns.as_str()),
        "Event's involvedObject: {involved:?}"
    );

    // eks-use1 gets everything.
    fx.wait_rolled_out(EKS, "checkout", 1, "checkout:1.4.2", None)
        .await?;
    let svc = fx
        .get::<Service>(EKS, "checkout")
        .await?
        .ok_or("no Service checkout in eks")?;
    check_owned(&svc.metadata, &w, EKS)?;

    // The foreign Service is untouched, now and a few reconciles later.
    for when in ["when the conflict was reported", "5 s later"] {
        let now = fx
            .get::<Service>(GKE, "checkout")
            .await?
            .ok_or("the foreign Service is gone")?;
        ensure!(
            fingerprint(&now) == before,
            "the foreign Service changed ({when}):\nbefore {before:#}\nafter {:#}",
            fingerprint(&now)
        );
        if when != "5 s later" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    println!(
        "conflict reported: Degraded=True/OwnershipConflict: {}; Event {}: {}",
        degraded.message,
        event.reason.as_deref().unwrap_or_default(),
        event.message.as_deref().unwrap_or_default()
    );

    // Deleting the workload removes what it placed and nothing else.
    fx.workloads()
        .delete("checkout", &DeleteParams::default())
        .await?;
    fx.until(
        "checkout gone from the hub",
        Duration::from_secs(30),
        POLL,
        async || match fx
            .workloads()
            .get_opt("checkout")
            .await
            .map_err(|e| e.to_string())?
        {
            None => Ok(()),
            Some(w) => Err(format!("finalizers {:?}", w.finalizers())),
        },
    )
    .await?;
    let left = fx.placed_of(EKS, &uid).await?;
    ensure!(left.is_empty(), "eks still has {left:?}");
    let now = fx
        .get::<Service>(GKE, "checkout")
        .await?
        .ok_or("deleting the workload deleted the foreign Service")?;
    ensure!(
        fingerprint(&now) == before,
        "deleting the workload changed the foreign Service: {:#}",
        fingerprint(&now)
    );
    Ok(())
}

/// Two more MemberClusters that cannot connect — one whose Secret does not exist (declared aws),
/// one whose Secret holds garbage (declared gcp) — say why in their status; the 70/30 workload is
/// placed on eks-use1 and gke-euw1 only, and the decision lists the broken ones as not selected.
async fn bad_kubeconfig(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let missing = unique_name("missing");
    fx.add_member_cluster(&missing, &missing, Some("aws"))
        .await?;
    let garbage = unique_name("garbage");
    fx.create_secret(&garbage, "this is not a kubeconfig: [")
        .await?;
    fx.add_member_cluster(&garbage, &garbage, Some("gcp"))
        .await?;
    for (name, reason) in [
        (&missing, "KubeconfigSecretNotFound"),
        (&garbage, "KubeconfigInvalid"),
    ] {
        let mc = fx
            .wait_member_cluster(name, &format!("Ready=False/{reason}"), |c| {
                c.status == "False" && c.reason == reason
            })
            .await?;
        let c = condition(&mc.status.as_ref().unwrap().conditions, "Ready").unwrap();
        println!("{name}: Ready=False/{reason}: {}", c.message);
        ensure!(!c.message.is_empty(), "{name}: empty message");
    }

    let w = catalog_available(fx).await?;
    let s = w.status.as_ref().unwrap();
    let placement = format!("{eks}=7,{gke}=3");
    ensure!(
        s.placement.as_deref() == Some(placement.as_str()),
        "placement {:?}, expected {placement}",
        s.placement
    );
    let rows: Vec<&str> = s.clusters.iter().map(|c| c.name.as_str()).collect();
    ensure!(
        rows == [eks.as_str(), gke.as_str()],
        "status.clusters rows {rows:?}"
    );
    let decision = s.decision.as_ref().ok_or("no decision")?;
    for name in [&missing, &garbage] {
        let c = decision
            .clusters
            .iter()
            .find(|c| &c.name == name)
            .ok_or(format!(
                "{name} (in a tier by provider) missing from status.decision.clusters"
            ))?;
        ensure!(
            !c.selected && c.replicas == 0 && !c.reason.is_empty(),
            "decision for {name}: {c:?}"
        );
        println!("decision for {name}: not selected: {}", c.reason);
    }
    for (member, replicas) in [(EKS, 7), (GKE, 3)] {
        fx.wait_rolled_out(member, "catalog", replicas, "catalog:2.0.1", None)
            .await?;
    }
    for name in [&eks, &gke] {
        let mc = fx.member_clusters().get(name).await?;
        let ready = mc
            .status
            .as_ref()
            .and_then(|s| condition(&s.conditions, "Ready"))
            .map(|c| (c.status.clone(), c.reason.clone()));
        ensure!(
            ready.as_ref().is_some_and(|(s, _)| s == "True"),
            "{name}: Ready {ready:?}"
        );
    }
    Ok(())
}

/// SIGKILL of the operator in a steady state, and a restart: the new process rebuilds its view
/// from the API servers and, since nothing changed, writes nothing to the members and rewrites
/// no status on the hub (level-triggered, status only on change); then it still works (a scale
/// to 12 replicas lands).
async fn restart(fx: &mut Fleet) -> TestResult {
    let w = catalog_available(fx).await?;
    let uid = w.uid().ok_or("no uid")?;
    for (member, replicas) in [(EKS, 7), (GKE, 3)] {
        fx.wait_rolled_out(member, "catalog", replicas, "catalog:2.0.1", None)
            .await?;
    }
    let clusters = fx.all_clusters();
    fx.settle(&clusters).await?;
    let hub_before = fx.hub_versions().await?;
    let objects_before = fx.member_versions(&uid).await?;
    let before = scrape_all(&clusters).await?;

    let old_pid = fx.with_operator(|op| op.pid()).ok_or("not running")?;
    let status = fx.with_operator(|op| op.kill())?;
    {
        use std::os::unix::process::ExitStatusExt;
        ensure!(
            status.signal() == Some(9),
            "SIGKILL: the operator ended with {status}"
        );
    }
    ensure!(
        !std::path::Path::new(&format!("/proc/{old_pid}")).exists(),
        "process {old_pid} still exists after SIGKILL"
    );
    fx.with_operator(|op| op.start_again())?;
    let new_pid = fx.with_operator(|op| op.pid()).ok_or("not restarted")?;
    let t0 = Instant::now();
    // Give the new process time to connect, probe the members and reconcile the workload.
    while t0.elapsed() < Duration::from_secs(15) {
        fx.alive()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = scrape_all(&clusters).await?;
    let hub_after = fx.hub_versions().await?;
    let objects_after = fx.member_versions(&uid).await?;

    let mut failures = Vec::new();
    for (i, (name, _)) in clusters.iter().enumerate() {
        let fg = after[i].since(&before[i])?.foreground_writes();
        // The members' own controllers post Events now and then (kwok's pods, endpoint
        // slices); the operator cannot: its member ServiceAccount has no right on events
        // (deploy/member-rbac.yaml), so they are not counted against it.
        let by_operator = fg.filter(|k| k.resource != "events");
        println!(
            "{name}: {} write requests in the 15 s after the restart ({fg})",
            fg.total()
        );
        if name != fx.h.hub() && by_operator.total() > 0 {
            failures.push(format!("{name}: {by_operator}"));
        }
    }
    if hub_before != hub_after {
        failures.push(format!(
            "hub objects rewritten: {hub_before:?} -> {hub_after:?}"
        ));
    }
    if objects_before != objects_after {
        failures.push(format!(
            "member objects rewritten: {objects_before:?} -> {objects_after:?}"
        ));
    }
    println!("SIGKILL of pid {old_pid}, restarted as pid {new_pid}");
    ensure!(
        failures.is_empty(),
        "after a restart with nothing changed: {}",
        failures.join("; ")
    );

    fx.patch_workload("catalog", json!({"spec": {"replicas": 12}}))
        .await?;
    fx.wait_workload(
        "catalog",
        "Ready with 12 available after the restart",
        AVAILABLE_WITHIN,
        |w| {
            ready_available(w)?;
            available(w, 12)
        },
    )
    .await?;
    Ok(())
}

/// Drift repair: in eks-use1, the catalog's Service deleted, its Deployment's image changed
/// (`kubectl set image`'s way: a strategic merge patch by another field manager) and its
/// ConfigMap's data edited, all by hand → all three as placed again within 30 s; then, settled,
/// the operator writes nothing to any member for 15 s (repairing is not a loop).
async fn drift(fx: &mut Fleet) -> TestResult {
    catalog_available(fx).await?;
    fx.wait_rolled_out(EKS, "catalog", 7, "catalog:2.0.1", None)
        .await?;
    let clusters = fx.all_clusters();
    fx.settle(&clusters).await?;
    let by_hand = PatchParams {
        field_manager: Some("kubectl-set".into()),
        ..PatchParams::default()
    };
    let service_uid = fx
        .get::<Service>(EKS, "catalog")
        .await?
        .ok_or("no Service catalog in eks-use1")?
        .uid();
    fx.member_api::<Service>(EKS)
        .delete("catalog", &DeleteParams::default())
        .await?;
    fx.member_api::<Deployment>(EKS)
        .patch(
            "catalog",
            &by_hand,
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "catalog", "image": "evil:latest"}]}}}})),
        )
        .await?;
    fx.member_api::<ConfigMap>(EKS)
        .patch(
            "catalog-config",
            &by_hand,
            &Patch::Merge(json!({"data": {"ttl": "0"}})),
        )
        .await?;
    let t0 = Instant::now();
    fx.until(
        "eks-use1: Service back, image and ConfigMap as placed",
        Duration::from_secs(30),
        POLL,
        async || {
            let service = fx.get::<Service>(EKS, "catalog").await?;
            let deployment = fx
                .get::<Deployment>(EKS, "catalog")
                .await?
                .ok_or("no Deployment")?;
            let config = fx
                .get::<ConfigMap>(EKS, "catalog-config")
                .await?
                .ok_or("no ConfigMap")?;
            let image = container(&deployment).0;
            let ttl = config.data.unwrap_or_default().get("ttl").cloned();
            let back = service.as_ref().is_some_and(|s| s.uid() != service_uid);
            if back && image.ends_with("catalog:2.0.1") && ttl.as_deref() == Some("300") {
                Ok(())
            } else {
                Err(format!(
                    "Service re-created: {back}, image {image}, ttl {ttl:?}"
                ))
            }
        },
    )
    .await?;
    println!(
        "restored {:.1} s after the hand edits",
        t0.elapsed().as_secs_f64()
    );
    let restored = fx
        .get::<Service>(EKS, "catalog")
        .await?
        .ok_or("no Service")?;
    ensure!(
        restored.labels().get(WORKLOAD_UID).is_some(),
        "the re-created Service lacks the ownership labels: {:?}",
        restored.labels()
    );
    fx.wait_rolled_out(EKS, "catalog", 7, "catalog:2.0.1", None)
        .await?;
    fx.settle(&clusters).await?;
    let before = scrape_all(&clusters).await?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = scrape_all(&clusters).await?;
    let mut failures = Vec::new();
    for (i, (name, _)) in clusters.iter().enumerate() {
        let fg = after[i].since(&before[i])?.foreground_writes();
        let by_operator = fg.filter(|k| k.resource != "events");
        if name != fx.h.hub() && by_operator.total() > 0 {
            failures.push(format!("{name}: {by_operator}"));
        }
    }
    ensure!(
        failures.is_empty(),
        "writes after the repair settled: {}",
        failures.join("; ")
    );
    fx.wait_workload(
        "catalog",
        "still Ready=True/Available",
        AVAILABLE_WITHIN,
        ready_available,
    )
    .await?;
    Ok(())
}

/// After the workload is Available and everything has settled, the operator makes no write
/// request to the hub or to any member for BASCULE_E2E_IDLE_SECONDS (default 300), counted with
/// the API servers' own `apiserver_request_total` (see support::metrics for why that is sound).
async fn idle(fx: &mut Fleet) -> TestResult {
    let idle_for = Duration::from_secs(
        std::env::var("BASCULE_E2E_IDLE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    );
    catalog_available(fx).await?;
    for (member, replicas) in [(EKS, 7), (GKE, 3)] {
        fx.wait_rolled_out(member, "catalog", replicas, "catalog:2.0.1", None)
            .await?;
    }

    let clusters = fx.all_clusters();
    fx.settle(&clusters).await?;

    let versions_before = fx.hub_versions().await?;
    let before = scrape_all(&clusters).await?;
    let started_at = k8s_openapi::jiff::Timestamp::now();
    let t0 = Instant::now();
    println!(
        "idle window: {} s (BASCULE_E2E_IDLE_SECONDS)",
        idle_for.as_secs()
    );
    while t0.elapsed() < idle_for {
        fx.alive()?;
        tokio::time::sleep((idle_for - t0.elapsed()).min(Duration::from_secs(10))).await;
    }
    let after = scrape_all(&clusters).await?;
    let window = t0.elapsed();
    let versions_after = fx.hub_versions().await?;
    fx.alive()?;

    let mut failures = Vec::new();
    let mut leases = BTreeMap::new();
    for (i, (name, _)) in clusters.iter().enumerate() {
        let d = after[i].since(&before[i])?;
        let fg = d.foreground_writes();
        println!(
            "{name}: {} write requests by the operator in {:.0} s ({}); background: {}; reads: {}",
            fg.total(),
            window.as_secs_f64(),
            fg,
            d.background_writes(),
            d.reads()
        );
        leases.insert(name.clone(), d.lease_writes());
        if fg.total() > 0 {
            failures.push(format!("{name}: {fg}"));
        }
    }
    // Lease renewals are background everywhere, so an operator renewing a Lease on the hub would
    // hide among them: the hub runs the same components as the members, so its lease writes
    // must not exceed theirs by more than noise.
    let hub_leases = leases[fx.h.hub()];
    let member_max = [EKS, GKE].iter().map(|m| leases[*m]).max().unwrap_or(0);
    let tolerance = (member_max / 10).max(10);
    println!(
        "lease writes: {leases:?} (the hub may exceed the busiest member by {tolerance} at most)"
    );
    if hub_leases > member_max + tolerance {
        failures.push(format!(
            "the hub saw {hub_leases} lease writes against at most {member_max} on a member: something on the hub (the operator?) renews a Lease"
        ));
    }
    // The operator's own Events (none may be made while idle): POST events are background in the
    // counts above, because the members' and the hub's components post some after a stall.
    let own: Vec<String> = Api::<k8s_openapi::api::events::v1::Event>::all(fx.hub.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.reporting_controller.as_deref()
                == Some(bascule::controller::events::REPORTING_CONTROLLER)
        })
        .filter(|e| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .is_some_and(|t| t.0 >= started_at)
        })
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.note.unwrap_or_default()
            )
        })
        .collect();
    println!("Events by the operator in the window: {own:?}");
    if !own.is_empty() {
        failures.push(format!("the operator made Events: {own:?}"));
    }
    if versions_before != versions_after {
        failures.push(format!(
            "hub objects changed: {versions_before:?} -> {versions_after:?}"
        ));
    }
    ensure!(
        failures.is_empty(),
        "the idle operator wrote: {}",
        failures.join("; ")
    );
    Ok(())
}

/// p50/p99 time from creating a MultiCloudWorkload to its objects (a Deployment and a
/// ConfigMap) existing in both members, over 100 workloads: first one at a time (each created
/// once the previous one is in both members: the latency of one change), then 100 more created
/// 10 per second (latency under a steady load, queueing included). Also prints the API requests
/// the operator made to each member per workload.
async fn measure_latency(fx: &mut Fleet) -> TestResult {
    let count: usize = env_number("BASCULE_E2E_LATENCY_WORKLOADS", 100);
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let seen: FirstSeen = Arc::default();
    let mut watchers = Vec::new();
    for member in [EKS, GKE] {
        watchers.push(watch_first_seen::<Deployment>(
            fx.member_api(member),
            member,
            seen.clone(),
        ));
        watchers.push(watch_first_seen::<ConfigMap>(
            fx.member_api(member),
            member,
            seen.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let expected = |name: &str| -> Vec<(String, String, String)> {
        [EKS, GKE]
            .iter()
            .flat_map(|m| {
                ["Deployment", "ConfigMap"]
                    .map(|k| (m.to_string(), k.to_string(), name.to_string()))
            })
            .collect()
    };
    // The time every expected object was first seen, if all were.
    let all_seen = |name: &str| -> Option<Instant> {
        let seen = seen.lock().unwrap();
        let times: Option<Vec<Instant>> = expected(name)
            .iter()
            .map(|k| seen.get(k).copied())
            .collect();
        times.and_then(|t| t.into_iter().max())
    };
    let members: Vec<(String, Client)> = [EKS, GKE].map(|m| (m.to_string(), fx.member(m))).to_vec();

    // One at a time.
    let before = scrape_all(&members).await?;
    let mut one_at_a_time = Vec::new();
    for i in 0..count {
        let name = format!("seq-{i:04}");
        let t = Instant::now();
        fx.create_workload(&name, duplicated(&[&eks, &gke], 1, small_manifests(&name)))
            .await?;
        let done = fx
            .until(
                &format!("{name} in both members"),
                Duration::from_secs(60),
                POLL,
                async || all_seen(&name).ok_or_else(|| "not yet".to_string()),
            )
            .await?;
        one_at_a_time.push(done - t);
    }
    let after = scrape_all(&members).await?;
    let mut per_workload = Vec::new();
    for (i, (name, _)) in members.iter().enumerate() {
        let d = after[i].since(&before[i])?;
        let by_verb: Vec<String> = d
            .by_verb()
            .into_iter()
            .map(|(v, n)| format!("{v} {:.1}", n as f64 / count as f64))
            .collect();
        per_workload.push(format!(
            "{name} {:.1} ({})",
            d.total() as f64 / count as f64,
            by_verb.join(", ")
        ));
    }
    print_latency(
        &format!("{count} workloads created one at a time"),
        &one_at_a_time,
    );
    println!(
        "measure_propagation_latency: API requests per workload (incl. background and the operator's probes): {}",
        per_workload.join("; ")
    );

    // 10 per second.
    let mut created = Vec::new();
    let start = Instant::now();
    for i in 0..count {
        let name = format!("lat-{i:04}");
        let at = start + Duration::from_millis(100 * i as u64);
        tokio::time::sleep_until(at.into()).await;
        let t = Instant::now();
        fx.create_workload(&name, duplicated(&[&eks, &gke], 1, small_manifests(&name)))
            .await?;
        created.push((name, t));
    }
    let paced = fx
        .until(
            "every workload's objects in both members",
            Duration::from_secs(300),
            POLL,
            async || {
                let mut out = Vec::new();
                for (name, t) in &created {
                    if let Some(done) = all_seen(name) {
                        out.push(done - *t);
                    }
                }
                if out.len() == created.len() {
                    Ok(out)
                } else {
                    Err(format!(
                        "{} of {} workloads not in both members yet",
                        created.len() - out.len(),
                        created.len()
                    ))
                }
            },
        )
        .await?;
    let placed_in = start.elapsed();
    for w in watchers {
        w.abort();
    }
    print_latency(
        &format!(
            "{count} workloads created 10/s (the last in both members {:.1} s after the first create)",
            placed_in.as_secs_f64()
        ),
        &paced,
    );
    Ok(())
}

fn print_latency(what: &str, latencies: &[Duration]) {
    let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "measure_propagation_latency: {what}, Duplicated over {EKS} and {GKE}, 1 replica, Deployment + ConfigMap: create -> objects in both members p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or_default()
    );
}

/// The operator's resident memory (VmRSS) with 1,000 workloads over 2 members (500 each, 1
/// replica each), once every workload is placed and has a status.
async fn measure_memory(fx: &mut Fleet) -> TestResult {
    let fx: &Fleet = fx;
    let count: usize = env_number("BASCULE_E2E_MEMORY_WORKLOADS", 1000);
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss0 = fx.with_operator(|op| op.rss_kib()).unwrap_or(0);

    let clusters = fx.all_clusters();
    let before = scrape_all(&clusters).await?;
    let t0 = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("mem-{i:04}")).collect();
    futures::stream::iter(names.iter().enumerate())
        .map(|(i, name)| {
            let target = if i % 2 == 0 { &eks } else { &gke };
            let spec = divided_to(target, 1, small_manifests(name));
            async move { fx.create_workload(name, spec).await.map(drop) }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    let created_in = t0.elapsed();

    let per_member = [(EKS, count.div_ceil(2)), (GKE, count / 2)];
    fx.until(
        "every workload placed, with a status",
        Duration::from_secs(900),
        POLL,
        async || {
            let mut progress = Vec::new();
            let mut done = true;
            for (member, want) in per_member {
                let lp = ListParams::default().labels(&format!("{MANAGED_BY}=bascule"));
                let n = fx
                    .member_api::<Deployment>(member)
                    .list_metadata(&lp)
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len();
                done &= n == want;
                progress.push(format!("{member} {n}/{want} Deployments"));
            }
            let list = fx
                .workloads()
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let with_status = list
                .items
                .iter()
                .filter(|w| {
                    w.status.as_ref().and_then(|s| s.observed_generation) == w.metadata.generation
                })
                .count();
            done &= with_status == count;
            progress.push(format!("{with_status}/{count} statuses"));
            if done {
                Ok(())
            } else {
                Err(progress.join(", "))
            }
        },
    )
    .await?;
    let placed_in = t0.elapsed();
    let after = scrape_all(&clusters).await?;
    for (i, (name, _)) in clusters.iter().enumerate() {
        let d = after[i].since(&before[i])?;
        println!(
            "measure_memory: {name}: {} requests while placing {count} workloads ({:.0} s; background included): {:?}",
            d.total(),
            placed_in.as_secs_f64(),
            d.by_verb()
        );
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (rss, hwm) = fx.with_operator(|op| {
        (
            op.rss_kib().unwrap_or(0),
            op.proc_status_kib("VmHWM").unwrap_or(0),
        )
    });
    let ready = fx
        .workloads()
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|w| ready_available(w).is_ok())
        .count();
    let mut capacity = Vec::new();
    for name in [&eks, &gke] {
        let mc = fx.member_clusters().get(name).await?;
        let pods = mc
            .status
            .as_ref()
            .and_then(|s| s.allocatable.get("pods").cloned())
            .unwrap_or_default();
        capacity.push(format!("{name} allocatable pods {pods}"));
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "measure_memory: {count} workloads over 2 members ({} + {}): operator VmRSS {:.1} MiB (VmHWM {:.1} MiB; {:.1} MiB before the first workload); created in {:.1} s, all placed with a status {:.1} s after the first create; {ready}/{count} Ready ({})",
        per_member[0].1,
        per_member[1].1,
        mib(rss),
        mib(hwm),
        mib(rss0),
        created_in.as_secs_f64(),
        placed_in.as_secs_f64(),
        capacity.join(", ")
    );
    // Deleting them all goes through the operator's finalizer; time it for the record.
    let t1 = Instant::now();
    fx.workloads()
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await?;
    fx.until(
        "every workload deleted",
        Duration::from_secs(900),
        POLL,
        async || {
            let n = fx
                .workloads()
                .list_metadata(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if n == 0 {
                Ok(())
            } else {
                Err(format!("{n} left"))
            }
        },
    )
    .await?;
    println!(
        "measure_memory: {count} workloads deleted (finalizers done) in {:.1} s",
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Workload specs.

fn catalog_manifests(tag: &str, env: Option<(&str, &str)>) -> Value {
    let mut container = json!({
        "name": "catalog",
        "image": format!("ghcr.io/acme/catalog:{tag}"),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
    });
    if let Some((k, v)) = env {
        container["env"] = json!([{"name": k, "value": v}]);
    }
    json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "catalog"},
         "spec": {"selector": {"matchLabels": {"app": "catalog"}},
                  "template": {"metadata": {"labels": {"app": "catalog"}},
                               "spec": {"containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "catalog"},
         "spec": {"selector": {"app": "catalog"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "catalog-config"},
         "data": {"ttl": "300"}},
    ])
}

fn checkout_manifests() -> Value {
    json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "checkout"},
         "spec": {"selector": {"matchLabels": {"app": "checkout"}},
                  "template": {"metadata": {"labels": {"app": "checkout"}},
                               "spec": {"containers": [{
                                   "name": "checkout",
                                   "image": format!("{ECR}/shop/checkout:1.4.2"),
                                   "ports": [{"containerPort": 8080}],
                                   "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "checkout"},
         "spec": {"selector": {"app": "checkout"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ])
}

/// A Deployment and a ConfigMap named after the workload (for the measurements).
pub fn small_manifests(name: &str) -> Value {
    json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{"name": "app", "image": "registry.example/app:1",
                                   "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}},
    ])
}

/// Creates the `catalog` (10 replicas divided 7/3, image 2.0.1) and waits until it is
/// Ready and Available.
async fn catalog_available(fx: &Fleet) -> Result<MultiCloudWorkload, String> {
    fx.create_workload("catalog", divided_7_3(10, catalog_manifests("2.0.1", None)))
        .await
        .map_err(|e| format!("create catalog: {e}"))?;
    fx.wait_workload("catalog", "Ready=True/Available", AVAILABLE_WITHIN, |w| {
        ready_available(w)
    })
    .await
}

/// "70 % AWS / 30 % GCP, never fewer than two providers" (examples/divided.yaml).
fn divided_7_3(replicas: i32, manifests: Value) -> Value {
    json!({
        "replicas": replicas,
        "placement": {"mode": "Divided",
                      "tiers": [{"name": "aws", "providers": ["aws"], "weight": 70},
                                {"name": "gcp", "providers": ["gcp"], "weight": 30}],
                      "spread": {"minProviders": 2}},
        "template": {"manifests": manifests},
    })
}

/// `replicas` in each of `clusters`.
fn duplicated(clusters: &[&String], replicas: i32, manifests: Value) -> Value {
    json!({
        "replicas": replicas,
        "placement": {"mode": "Duplicated", "tiers": [{"clusterNames": clusters}]},
        "template": {"manifests": manifests},
    })
}

/// All replicas in one cluster.
fn divided_to(cluster: &str, replicas: i32, manifests: Value) -> Value {
    json!({
        "replicas": replicas,
        "placement": {"mode": "Divided", "tiers": [{"clusterNames": [cluster]}]},
        "template": {"manifests": manifests},
    })
}

fn row(name: &str, provider: Provider, n: i32, state: ClusterPlacementState) -> Row {
    (name.to_string(), Some(provider), n, n, n, state)
}

fn row_of(c: &ClusterPlacementStatus) -> Row {
    (
        c.name.clone(),
        c.provider,
        c.desired,
        c.ready,
        c.available,
        c.state,
    )
}

// ---------------------------------------------------------------------------------------------
// Status checks (each returns what it saw when it does not hold).

fn ready_available(w: &MultiCloudWorkload) -> Result<(), String> {
    let s = w.status.as_ref().ok_or("no status")?;
    match condition(&s.conditions, "Ready") {
        Some(c) if c.status == "True" && c.reason == "Available" => Ok(()),
        _ => Err(describe(w)),
    }
}

fn observed(w: &MultiCloudWorkload, generation: Option<i64>) -> Result<(), String> {
    let og = w.status.as_ref().and_then(|s| s.observed_generation);
    if og == generation {
        Ok(())
    } else {
        Err(format!(
            "waiting for generation {generation:?}: {}",
            describe(w)
        ))
    }
}

fn available(w: &MultiCloudWorkload, n: i32) -> Result<(), String> {
    let r = w.status.as_ref().and_then(|s| s.replicas.clone());
    if r.as_ref()
        .is_some_and(|r| r.available == n && r.desired == n)
    {
        Ok(())
    } else {
        Err(format!("replicas {r:?}, want {n} available"))
    }
}

/// The ownership labels of the contract, naming `w`.
fn check_owned(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    w: &MultiCloudWorkload,
    member: &str,
) -> Result<(), String> {
    let labels = meta.labels.clone().unwrap_or_default();
    let expected = [
        (MANAGED_BY, "bascule".to_string()),
        (WORKLOAD_NAMESPACE, w.namespace().unwrap_or_default()),
        (WORKLOAD_NAME, w.name_any()),
        (WORKLOAD_UID, w.uid().unwrap_or_default()),
    ];
    for (k, v) in expected {
        if labels.get(k) != Some(&v) {
            return Err(format!(
                "{member}: {:?} has labels {labels:?}, expected {k}={v}",
                meta.name
            ));
        }
    }
    Ok(())
}

/// The first container's image and first environment variable.
fn container(d: &Deployment) -> (String, Option<(String, String)>) {
    let c = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first());
    (
        c.and_then(|c| c.image.clone()).unwrap_or_default(),
        c.and_then(|c| c.env.as_ref())
            .and_then(|e| e.first())
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default())),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

async fn scrape_all(clusters: &[(String, Client)]) -> Result<Vec<RequestCounts>, String> {
    let mut out = Vec::new();
    for (name, c) in clusters {
        out.push(
            RequestCounts::scrape(c)
                .await
                .map_err(|e| format!("{name}: {e}"))?,
        );
    }
    Ok(out)
}

/// Waits (at most `timeout`) until no namespace is Terminating in any of the clusters, so that
/// an earlier trial's cleanup does not write during a measurement. Never fails: a namespace that
/// stays Terminating shows up in the measurement itself.
async fn wait_no_terminating_namespaces(clients: &[Client], timeout: Duration) {
    let start = Instant::now();
    loop {
        let mut terminating = Vec::new();
        for c in clients {
            if let Ok(list) = Api::<Namespace>::all(c.clone())
                .list(&ListParams::default())
                .await
            {
                terminating.extend(
                    list.items
                        .iter()
                        .filter(|n| n.metadata.deletion_timestamp.is_some())
                        .map(|n| n.name_any()),
                );
            }
        }
        if terminating.is_empty() {
            return;
        }
        if start.elapsed() > timeout {
            println!("namespaces still terminating after {timeout:?}: {terminating:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every object, of any listable resource (namespaced ones in any namespace, cluster-scoped
/// ones), that matches `selector`.
async fn labelled_anywhere(client: Client, selector: &str) -> Result<Vec<String>, String> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(|e| format!("discovery: {e}"))?;
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if !caps.supports_operation(kube::discovery::verbs::LIST) {
                continue;
            }
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
            let list = api
                .list_metadata(&ListParams::default().labels(selector))
                .await
                .map_err(|e| format!("list {}: {e}", ar.plural))?;
            for o in list.items {
                found.push(format!(
                    "{} {}/{}",
                    ar.kind,
                    o.metadata.namespace.unwrap_or_default(),
                    o.metadata.name.unwrap_or_default()
                ));
            }
        }
    }
    Ok(found)
}

/// (name, resourceVersion) of the objects `lp` selects.
async fn versions<K>(api: Api<K>, lp: &ListParams) -> Result<Vec<(String, String)>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .list_metadata(lp)
        .await?
        .items
        .into_iter()
        .map(|m| {
            (
                m.metadata.name.unwrap_or_default(),
                m.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect())
}

/// When each (member, kind, name) was first seen.
type FirstSeen = Arc<Mutex<HashMap<(String, String, String), Instant>>>;

/// Records when each object of kind `K` with Bascule's label is first seen in a member.
fn watch_first_seen<K>(api: Api<K>, member: &str, seen: FirstSeen) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    use kube::runtime::watcher;
    let member = member.to_string();
    let kind = K::kind(&()).to_string();
    tokio::spawn(async move {
        let config = watcher::Config::default().labels(&format!("{MANAGED_BY}=bascule"));
        let mut stream = std::pin::pin!(watcher(api, config));
        while let Some(ev) = stream.next().await {
            let now = Instant::now();
            let obj = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                _ => continue,
            };
            seen.lock()
                .unwrap()
                .entry((member.clone(), kind.clone(), obj.name_any()))
                .or_insert(now);
        }
    })
}

// ---------------------------------------------------------------------------------------------

/// What the workloads trials need of their fleet beside what every fleet offers.
impl Fleet {
    async fn get<K>(&self, member: &str, name: &str) -> Result<Option<K>, String>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        self.member_api::<K>(member)
            .get_opt(name)
            .await
            .map_err(|e| format!("{member}: get {} {name}: {e}", K::kind(&())))
    }

    async fn add_member_cluster(
        &mut self,
        name: &str,
        secret: &str,
        provider: Option<&str>,
    ) -> TestResult {
        let mut spec = json!({
            "connection": {"kubeconfigSecretRef": {"name": secret}},
            "health": {"periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3,
                       "successThreshold": 1},
        });
        if let Some(p) = provider {
            spec["provider"] = json!(p);
        }
        self.create_member_cluster(name, spec).await
    }

    async fn wait_member_cluster(
        &self,
        name: &str,
        what: &str,
        ready: impl Fn(&Condition) -> bool,
    ) -> Result<MemberCluster, String> {
        self.until(
            &format!("MemberCluster {name}: {what}"),
            Duration::from_secs(30),
            POLL,
            async || {
                let mc = self
                    .member_clusters()
                    .get(name)
                    .await
                    .map_err(|e| e.to_string())?;
                let c = mc
                    .status
                    .as_ref()
                    .and_then(|s| condition(&s.conditions, "Ready"));
                match c {
                    Some(c) if ready(c) => Ok(mc),
                    Some(c) => Err(format!("Ready={}/{}: {}", c.status, c.reason, c.message)),
                    None => Err("no Ready condition".into()),
                }
            },
        )
        .await
    }

    async fn patch_workload(
        &self,
        name: &str,
        patch: Value,
    ) -> Result<MultiCloudWorkload, kube::Error> {
        self.workloads()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }

    /// Waits until `member`'s Deployment runs `replicas` replicas of an image ending in `image`
    /// (and `env`, if given), rolled out and available.
    async fn wait_rolled_out(
        &self,
        member: &str,
        name: &str,
        replicas: i32,
        image: &str,
        env: Option<(&str, &str)>,
    ) -> Result<Deployment, String> {
        self.until(
            &format!("{member}: Deployment {name} rolled out"),
            AVAILABLE_WITHIN,
            POLL,
            async || {
                let d = self
                    .get::<Deployment>(member, name)
                    .await?
                    .ok_or("no Deployment")?;
                let (img, e) = container(&d);
                let st = d.status.clone().unwrap_or_default();
                let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas);
                let ok = img.ends_with(image)
                    && env.is_none_or(|(k, v)| e == Some((k.to_string(), v.to_string())))
                    && spec_replicas == Some(replicas)
                    && st.observed_generation == d.metadata.generation
                    && st.updated_replicas == Some(replicas)
                    && st.available_replicas == Some(replicas)
                    && st.replicas == Some(replicas);
                if ok {
                    Ok(d)
                } else {
                    Err(format!(
                        "image {img}, env {e:?}, spec.replicas {spec_replicas:?}, status {:?}/{:?} generation, replicas {:?} updated {:?} available {:?}",
                        st.observed_generation,
                        d.metadata.generation,
                        st.replicas,
                        st.updated_replicas,
                        st.available_replicas
                    ))
                }
            },
        )
        .await
    }

    /// The Deployments, Services and ConfigMaps with the workload's uid label in a member.
    async fn placed_of(&self, member: &str, uid: &str) -> Result<Vec<String>, String> {
        let lp = ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}"));
        let mut out = Vec::new();
        let e = |e: kube::Error| format!("{member}: {e}");
        for m in self
            .member_api::<Deployment>(member)
            .list_metadata(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(format!(
                "Deployment/{}",
                m.metadata.name.unwrap_or_default()
            ));
        }
        for m in self
            .member_api::<Service>(member)
            .list_metadata(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(format!("Service/{}", m.metadata.name.unwrap_or_default()));
        }
        for m in self
            .member_api::<ConfigMap>(member)
            .list_metadata(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(format!("ConfigMap/{}", m.metadata.name.unwrap_or_default()));
        }
        Ok(out)
    }

    /// Waits for an Event about the workload (by uid) with this type and reason.
    async fn wait_event(
        &self,
        uid: &str,
        type_: &str,
        reason: &str,
        timeout: Duration,
    ) -> Result<Event, String> {
        let api = Api::<Event>::namespaced(self.hub.clone(), &self.app_ns);
        let lp = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
        self.until(
            &format!("{type_} Event {reason}"),
            timeout,
            POLL,
            async || {
                let events = api.list(&lp).await.map_err(|e| e.to_string())?.items;
                events
                    .iter()
                    .find(|e| {
                        e.type_.as_deref() == Some(type_) && e.reason.as_deref() == Some(reason)
                    })
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "events: {:?}",
                            events
                                .iter()
                                .map(|e| format!(
                                    "{}/{}: {}",
                                    e.type_.as_deref().unwrap_or_default(),
                                    e.reason.as_deref().unwrap_or_default(),
                                    e.message.as_deref().unwrap_or_default()
                                ))
                                .collect::<Vec<_>>()
                        )
                    })
            },
        )
        .await
    }

    /// Before a write-counting window: waits until earlier trials' namespaces are gone and the
    /// members' controllers have finished a roll-out (endpoints, events, status) — at most 90 s
    /// for 5 s with nothing but background writes anywhere. This only chooses when a window
    /// starts; the window asserts on its own.
    async fn settle(&self, clusters: &[(String, Client)]) -> Result<(), String> {
        wait_no_terminating_namespaces(
            &clusters.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>(),
            Duration::from_secs(120),
        )
        .await;
        let start = Instant::now();
        loop {
            self.alive()?;
            let before = scrape_all(clusters).await?;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let after = scrape_all(clusters).await?;
            let mut quiet = true;
            for (i, (name, _)) in clusters.iter().enumerate() {
                let d = after[i].since(&before[i])?.foreground_writes();
                if d.total() > 0 {
                    println!("settling: {name}: {d}");
                    quiet = false;
                }
            }
            if quiet || start.elapsed() > Duration::from_secs(90) {
                println!(
                    "settled after {:.1} s{}",
                    start.elapsed().as_secs_f64(),
                    if quiet { "" } else { " (not quiet: going on)" }
                );
                return Ok(());
            }
        }
    }

    /// The hub and the two members, named, for scraping.
    fn all_clusters(&self) -> Vec<(String, Client)> {
        std::iter::once((self.h.hub().to_string(), self.hub.clone()))
            .chain([EKS, GKE].map(|m| (m.to_string(), self.member(m))))
            .collect()
    }

    /// resourceVersions of the objects with the workload's uid label in both members.
    async fn member_versions(&self, uid: &str) -> Result<BTreeMap<String, String>, String> {
        let lp = ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}"));
        let mut out = BTreeMap::new();
        for member in [EKS, GKE] {
            for (kind, items) in [
                (
                    "Deployment",
                    versions(self.member_api::<Deployment>(member), &lp).await,
                ),
                (
                    "Service",
                    versions(self.member_api::<Service>(member), &lp).await,
                ),
                (
                    "ConfigMap",
                    versions(self.member_api::<ConfigMap>(member), &lp).await,
                ),
            ] {
                for (name, rv) in items.map_err(|e| format!("{member}: {e}"))? {
                    out.insert(format!("{member} {kind}/{name}"), rv);
                }
            }
        }
        Ok(out)
    }

    /// resourceVersions of the trial's workloads and MemberClusters.
    async fn hub_versions(&self) -> Result<BTreeSet<(String, String)>, String> {
        let mut out = BTreeSet::new();
        for w in self
            .workloads()
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
        {
            out.insert((
                format!("mcw/{}", w.metadata.name.unwrap_or_default()),
                w.metadata.resource_version.unwrap_or_default(),
            ));
        }
        for name in self.clusters() {
            let mc = self
                .member_clusters()
                .get_metadata(name)
                .await
                .map_err(|e| e.to_string())?;
            out.insert((
                format!("mc/{name}"),
                mc.metadata.resource_version.unwrap_or_default(),
            ));
        }
        Ok(out)
    }
}
