//! Member connections and health (`bascule::members::run`) against the real hub and members:
//! MemberCluster status from real probes, refused connections, outages detected and measured,
//! recovery through Recovering, restarts that remember, and no status write without a change.
//!
//! Each trial installs the CRDs on the hub, creates its own namespace, kubeconfig Secrets (data
//! embedded, as `bascule` requires) and MemberClusters with unique names, runs
//! `bascule::members::run` in-process and removes what it created at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bascule::api::{ClusterHealth, MemberCluster, Provider};
use bascule::members::{self, ConnectionOptions, MemberEvent, MemberPool};
use bascule::placement::ClusterSnapshot;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::task::JoinHandle;

use crate::support::{Harness, TestResult, Topology, trial, unique_name, wait};

const EKS: &str = "eks-use1";
const GKE: &str = "gke-euw1";

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "members::status_from_probes_and_refused_connections",
            |h| async move { Fixture::run(h, status_from_probes_and_refused_connections).await },
        ),
        trial(
            "members::stopped_member_unhealthy_fast_remembered_over_restart_recovers_slowly",
            |h| async move { Fixture::run(h, stopped_member).await },
        ),
        trial(
            "members::frozen_member_times_out_without_delaying_others",
            |h| async move { Fixture::run(h, frozen_member).await },
        ),
        trial(
            "members::member_without_ready_nodes_is_unhealthy_but_reachable",
            |h| async move { Fixture::run(h, nodes_not_ready).await },
        ),
    ]
}

/// Two healthy members with detected provider/region/nodes/version; an exec-plugin kubeconfig and
/// a missing Secret refused with their reasons while the others stay Ready; a Secret that
/// appears later connects; a taint reaches the pool; no status write over 10 s without change;
/// a deleted MemberCluster leaves the pool.
async fn status_from_probes_and_refused_connections(fx: &mut Fixture) -> TestResult {
    let eks = fx.member(EKS, 3).await?;
    let gke = fx.member(GKE, 15).await?;
    let exec = fx.name("exec");
    fx.secret(&exec, &exec_plugin_kubeconfig(&fx.kubeconfig(EKS)?))
        .await?;
    fx.member_cluster(&exec, &exec, 15).await?;
    let missing = fx.name("missing");
    fx.member_cluster(&missing, &missing, 15).await?;
    let refused = fx.name("refused");
    fx.secret(
        &refused,
        &token_kubeconfig(&fx.kubeconfig(GKE)?, BOGUS_TOKEN),
    )
    .await?;
    fx.member_cluster(&refused, &refused, 15).await?;
    let pool = fx.start();

    let version = crate::smoke::pinned_kube_version();
    for (name, provider, region) in [
        (&eks, Provider::Aws, "us-east-1"),
        (&gke, Provider::Gcp, "europe-west1"),
    ] {
        let mc = fx
            .wait_for(
                name,
                "Ready=True and Healthy",
                Duration::from_secs(30),
                |s| ready(s) == Some(("True", "Healthy")) && s.health == ClusterHealth::Healthy,
            )
            .await?;
        let s = mc.status.unwrap();
        assert_eq!(s.provider, Some(provider), "{name}: provider detected");
        assert_eq!(s.region.as_deref(), Some(region), "{name}: region detected");
        assert_eq!(s.nodes.as_ref().map(|n| n.summary.as_str()), Some("3/3"));
        assert_eq!(s.kubernetes_version.as_deref(), Some(version.as_str()));
        assert_eq!(
            s.allocatable.get("cpu").map(String::as_str),
            Some("11760m"),
            "{name}: 3 x 3920m"
        );
        assert!(s.allocatable.contains_key("memory") && s.allocatable.contains_key("pods"));
        assert_eq!(s.observed_generation, mc.metadata.generation);
        assert_eq!(
            condition(&s.conditions, "Reachable").unwrap().status,
            "True"
        );
        assert!(s.last_probe_latency_ms.is_some());
        println!(
            "{name}: {provider}/{region}, nodes {}, {version}, allocatable {:?}, probe {} ms",
            s.nodes.as_ref().unwrap().summary,
            s.allocatable,
            s.last_probe_latency_ms.unwrap()
        );
        let snap = snapshot(&pool, name)?;
        assert_eq!(snap.health, ClusterHealth::Healthy);
        assert_eq!(snap.provider, Some(provider));
        assert_eq!(snap.region.as_deref(), Some(region));
        assert_eq!(
            snap.labels.get("bascule-e2e").map(String::as_str),
            Some("members")
        );
        // The pool's client reaches the member.
        let client = pool.client(name).ok_or("no client in the pool")?;
        assert_eq!(
            Api::<Node>::all(client)
                .list(&ListParams::default())
                .await?
                .items
                .len(),
            3
        );
    }

    for (name, reason) in [
        (&exec, "ExecPluginRefused"),
        (&missing, "KubeconfigSecretNotFound"),
    ] {
        let mc = fx
            .wait_for(
                name,
                &format!("Ready=False/{reason}"),
                Duration::from_secs(15),
                |s| ready(s) == Some(("False", reason)),
            )
            .await?;
        let s = mc.status.unwrap();
        let message = &condition(&s.conditions, "Ready").unwrap().message;
        println!("{name}: Ready=False {reason}: {message}");
        assert_eq!(s.health, ClusterHealth::Unknown);
        assert_eq!(
            condition(&s.conditions, "Reachable").unwrap().status,
            "Unknown"
        );
        assert!(!message.contains("BEGIN"), "no credential in the message");
        assert!(pool.client(name).is_none());
        assert_eq!(snapshot(&pool, name)?.health, ClusterHealth::Unknown);
    }
    // Credentials the member refuses: the API answers 401, which is a failed probe.
    let mc = fx
        .wait_for(
            &refused,
            "Ready=False/Unauthorized",
            Duration::from_secs(20),
            |s| ready(s) == Some(("False", "Unauthorized")),
        )
        .await?;
    let s = mc.status.unwrap();
    let message = &condition(&s.conditions, "Ready").unwrap().message;
    println!("{refused}: Ready=False Unauthorized: {message}");
    assert_eq!(s.health, ClusterHealth::Unhealthy);
    assert!(
        !message.contains(BOGUS_TOKEN),
        "the token is in the message"
    );
    assert!(
        pool.client(&refused).is_some(),
        "the connection itself was built"
    );
    for name in [&eks, &gke] {
        assert_eq!(ready(&fx.status(name).await?), Some(("True", "Healthy")));
    }

    // Let the last first-probe details settle, then: nothing changes, nothing is written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = [&eks, &gke, &exec, &missing, &refused];
    let before = fx.resource_versions(&all).await?;
    let probes_before = pool.probe_stats(&eks).unwrap().probes;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = fx.resource_versions(&all).await?;
    let probes = pool.probe_stats(&eks).unwrap().probes - probes_before;
    println!(
        "no change over 10 s: {probes} probes of {eks}, resourceVersions {before:?} -> {after:?}"
    );
    assert_eq!(before, after, "status rewritten without a change");
    assert!(probes >= 4, "{eks} probed only {probes} times in 10 s");

    // The missing Secret appears: the connection is built and the member turns Healthy.
    let mut events = pool.subscribe();
    fx.secret(&missing, &fx.kubeconfig(GKE)?).await?;
    fx.wait_for(
        &missing,
        "Ready=True once its Secret exists",
        Duration::from_secs(15),
        |s| ready(s) == Some(("True", "Healthy")),
    )
    .await?;
    assert!(changed(&mut events, &missing), "no event for {missing}");

    // A taint reaches the pool (with an event) and the status' observedGeneration.
    fx.clusters()
        .patch(
            &gke,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"taints": [{"key": "maintenance", "effect": "NoSchedule"}]}}),
            ),
        )
        .await?;
    let generation = fx.clusters().get(&gke).await?.metadata.generation;
    fx.wait_for(
        &gke,
        "observedGeneration of the taint",
        Duration::from_secs(10),
        |s| s.observed_generation == generation,
    )
    .await?;
    assert_eq!(snapshot(&pool, &gke)?.taints.len(), 1);
    assert!(
        changed(&mut events, &gke),
        "no event for the taint on {gke}"
    );

    // Deleted: out of the pool, with an event.
    fx.clusters()
        .delete(&missing, &DeleteParams::default())
        .await?;
    wait::until(
        "deleted member out of the pool",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let gone = pool.snapshot(&missing).is_none() && pool.client(&missing).is_none();
            async move {
                if gone {
                    Ok(())
                } else {
                    Err("still in the pool".to_string())
                }
            }
        },
    )
    .await?;
    assert!(
        changed(&mut events, &missing),
        "no event for the deletion of {missing}"
    );
    Ok(())
}

/// eks-use1 stopped: Unhealthy/Unreachable within 15 s (measured), with an event, while gke-euw1
/// stays Healthy. The operator restarts meanwhile and still knows it is Unhealthy. Started
/// again: Recovering, then Healthy after successThreshold (3) successful probes.
async fn stopped_member(fx: &mut Fixture) -> TestResult {
    let eks = fx.member(EKS, 3).await?;
    let gke = fx.member(GKE, 15).await?;
    let pool = fx.start();
    for name in [&eks, &gke] {
        fx.wait_healthy(name).await?;
    }
    let mut events = pool.subscribe();

    let t0 = Instant::now();
    let outage = tokio::task::block_in_place(|| fx.h.stop(EKS))?;
    let stopped_in = t0.elapsed();
    let detected = wait_pool_health(
        &pool,
        &eks,
        ClusterHealth::Unhealthy,
        Duration::from_secs(20),
    )
    .await?;
    let detected_in = t0.elapsed();
    let mc = fx
        .wait_for(
            &eks,
            "Ready=False/Unreachable",
            Duration::from_secs(10),
            |s| s.health == ClusterHealth::Unhealthy && ready(s) == Some(("False", "Unreachable")),
        )
        .await?;
    println!(
        "{EKS} stopped (the stop itself took {:.1} s): Unhealthy in the pool {:.1} s after the stop began, status written {:.1} s after; message: {}",
        stopped_in.as_secs_f64(),
        detected_in.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        condition(&mc.status.as_ref().unwrap().conditions, "Ready")
            .unwrap()
            .message
    );
    assert!(
        detected_in < Duration::from_secs(15),
        "Unhealthy only after {detected_in:?}"
    );
    assert_eq!(detected.health, ClusterHealth::Unhealthy);
    assert!(changed(&mut events, &eks), "no MemberEvent for {eks}");
    assert_eq!(
        snapshot(&pool, &gke)?.health,
        ClusterHealth::Healthy,
        "{gke} unaffected"
    );
    let unhealthy_since = mc.status.as_ref().unwrap().health_since.clone();

    // The operator restarts while the member is down: it must not forget. The stopped run's
    // pool holds everything (Unknown) since nobody probes any more.
    fx.stop();
    wait_pool_health(&pool, &gke, ClusterHealth::Unknown, Duration::from_secs(5)).await?;
    let pool = fx.start();
    wait::until(
        "first probe after the restart",
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            let probed = pool.probe_stats(&eks).is_some_and(|s| s.probes >= 2);
            async move {
                if probed {
                    Ok(())
                } else {
                    Err("not probed twice yet".to_string())
                }
            }
        },
    )
    .await?;
    let snap = snapshot(&pool, &eks)?;
    assert_eq!(
        snap.health,
        ClusterHealth::Unhealthy,
        "restart forgot the outage"
    );
    let s = fx.status(&eks).await?;
    assert_eq!(s.health, ClusterHealth::Unhealthy);
    assert_eq!(
        s.health_since, unhealthy_since,
        "healthSince kept over the restart"
    );

    // Back: Recovering first, Healthy only after 3 successful probes in a row.
    let mut seen: Vec<(ClusterHealth, Instant)> = Vec::new();
    let t1 = Instant::now();
    tokio::task::block_in_place(|| outage.end())?;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline {
        let h = snapshot(&pool, &eks)?.health;
        if seen.last().map(|(s, _)| *s) != Some(h) {
            seen.push((h, Instant::now()));
        }
        if h == ClusterHealth::Healthy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let states: Vec<ClusterHealth> = seen.iter().map(|(s, _)| *s).collect();
    println!(
        "{EKS} started again: {}",
        seen.iter()
            .map(|(s, t)| format!("{s} at +{:.1} s", (*t - t1).as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(
        states,
        vec![
            ClusterHealth::Unhealthy,
            ClusterHealth::Recovering,
            ClusterHealth::Healthy
        ],
        "expected Unhealthy → Recovering → Healthy"
    );
    let recovering_for = seen[2].1 - seen[1].1;
    assert!(
        recovering_for >= Duration::from_millis(3500),
        "Recovering for only {recovering_for:?}: 3 probes 2 s apart take 4 s"
    );
    fx.wait_for(
        &eks,
        "Ready=True/Healthy again",
        Duration::from_secs(10),
        |s| ready(s) == Some(("True", "Healthy")),
    )
    .await?;
    Ok(())
}

/// gke-euw1's apiserver frozen (SIGSTOP): Unhealthy with reason ProbeTimeout, while eks-use1 is
/// probed every 2 s as before and stays Healthy. Thawed: Healthy again.
async fn frozen_member(fx: &mut Fixture) -> TestResult {
    let eks = fx.member(EKS, 15).await?;
    let gke = fx.member(GKE, 3).await?;
    let pool = fx.start();
    for name in [&eks, &gke] {
        fx.wait_healthy(name).await?;
    }
    let t0 = Instant::now();
    let eks_probes = pool.probe_stats(&eks).unwrap().probes;
    let outage = tokio::task::block_in_place(|| fx.h.freeze(GKE))?;
    // Sample eks-use1's probes while gke-euw1 hangs: the gaps between them must stay near 2 s.
    let mut last_eks = pool.probe_stats(&eks).unwrap().last_probe_at;
    let mut gaps = Vec::new();
    let mut last_change = Instant::now();
    let deadline = t0 + Duration::from_secs(25);
    let detected_in = loop {
        if snapshot(&pool, &gke)?.health == ClusterHealth::Unhealthy {
            break t0.elapsed();
        }
        if Instant::now() > deadline {
            return Err(format!("{gke} not Unhealthy within 25 s of the freeze").into());
        }
        let at = pool.probe_stats(&eks).unwrap().last_probe_at;
        if at != last_eks {
            gaps.push(last_change.elapsed());
            last_change = Instant::now();
            last_eks = at;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mc = fx
        .wait_for(
            &gke,
            "Ready=False/ProbeTimeout",
            Duration::from_secs(10),
            |s| ready(s) == Some(("False", "ProbeTimeout")),
        )
        .await?;
    let eks_during = pool.probe_stats(&eks).unwrap().probes - eks_probes;
    let max_gap = gaps.iter().skip(1).max().copied().unwrap_or_default();
    println!(
        "{GKE} frozen: Unhealthy/ProbeTimeout {:.1} s after the freeze began; meanwhile {EKS} was probed {eks_during} times, largest gap {:.2} s; message: {}",
        detected_in.as_secs_f64(),
        max_gap.as_secs_f64(),
        condition(&mc.status.as_ref().unwrap().conditions, "Ready")
            .unwrap()
            .message
    );
    assert!(
        detected_in < Duration::from_secs(15),
        "Unhealthy only after {detected_in:?}"
    );
    let expected = (detected_in.as_secs_f64() / 2.0).floor() as u64;
    assert!(
        eks_during + 1 >= expected,
        "{eks} probed {eks_during} times in {detected_in:?}: delayed by the frozen member"
    );
    assert!(
        max_gap < Duration::from_millis(3000),
        "{eks} probe gap {max_gap:?}"
    );
    assert_eq!(snapshot(&pool, &eks)?.health, ClusterHealth::Healthy);
    assert_eq!(ready(&fx.status(&eks).await?), Some(("True", "Healthy")));

    let t1 = Instant::now();
    tokio::task::block_in_place(|| outage.end())?;
    wait_pool_health(&pool, &gke, ClusterHealth::Healthy, Duration::from_secs(30)).await?;
    println!(
        "{GKE} thawed: Healthy again after {:.1} s",
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every node of eks-use1 NotReady (the API still answers): Unhealthy with reason NoReadyNodes,
/// nodes 0/3, Reachable=True. Ready again: Healthy after Recovering.
async fn nodes_not_ready(fx: &mut Fixture) -> TestResult {
    let eks = fx.member(EKS, 3).await?;
    let pool = fx.start();
    fx.wait_healthy(&eks).await?;
    let t0 = Instant::now();
    let outage = tokio::task::block_in_place(|| fx.h.nodes_notready(EKS, None))?;
    let marked = t0.elapsed();
    let mc = fx
        .wait_for(
            &eks,
            "Unhealthy/NoReadyNodes",
            Duration::from_secs(20),
            |s| s.health == ClusterHealth::Unhealthy && ready(s) == Some(("False", "NoReadyNodes")),
        )
        .await?;
    let s = mc.status.unwrap();
    println!(
        "{EKS} nodes NotReady (the API showed it {:.1} s after the command began): Unhealthy/NoReadyNodes {:.1} s after",
        marked.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(s.nodes.as_ref().map(|n| n.summary.as_str()), Some("0/3"));
    assert_eq!(
        condition(&s.conditions, "Reachable").unwrap().status,
        "True"
    );
    assert!(
        s.allocatable.is_empty(),
        "no Ready node, no allocatable: {:?}",
        s.allocatable
    );

    tokio::task::block_in_place(|| outage.end())?;
    wait_pool_health(&pool, &eks, ClusterHealth::Healthy, Duration::from_secs(30)).await?;
    let s = fx.wait_healthy(&eks).await?.status.unwrap();
    assert_eq!(s.nodes.as_ref().map(|n| n.summary.as_str()), Some("3/3"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// One trial's objects on the hub and its `members::run` task.
struct Fixture {
    h: &'static Harness,
    hub: Client,
    namespace: String,
    clusters: Vec<String>,
    run: Option<JoinHandle<()>>,
}

impl Fixture {
    /// Sets up, runs `body`, and cleans up whatever `body` returned.
    async fn run<F>(h: &'static Harness, body: F) -> TestResult
    where
        F: AsyncFnOnce(&mut Fixture) -> TestResult,
    {
        // The assertions name the default members' clouds and regions; like every trial, fail
        // rather than skip when they are not there.
        for m in [EKS, GKE] {
            if !h.members().iter().any(|n| n == m) {
                return Err(format!(
                    "the members trials need member {m} (BASCULE_E2E_MEMBERS={})",
                    h.members().join(",")
                )
                .into());
            }
        }
        let hub = h.client(h.hub()).await?;
        crate::crds::install_crds(&hub).await?;
        let namespace = unique_name("members");
        Api::<Namespace>::all(hub.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}}))?,
            )
            .await?;
        let mut fx = Fixture {
            h,
            hub,
            namespace,
            clusters: Vec::new(),
            run: None,
        };
        let result = body(&mut fx).await;
        fx.cleanup().await;
        result
    }

    /// Starts `bascule::members::run` (stopping a previous one) with a fresh pool.
    fn start(&mut self) -> MemberPool {
        self.stop();
        let pool = MemberPool::new();
        let (hub, ns, p) = (self.hub.clone(), self.namespace.clone(), pool.clone());
        self.run = Some(tokio::spawn(async move {
            if let Err(e) = members::run(hub, ns, ConnectionOptions::default(), p, true).await {
                eprintln!("members::run failed: {e}");
            }
        }));
        pool
    }

    /// Stops `members::run` (and with it every member task), as a restart of the operator would.
    fn stop(&mut self) {
        if let Some(run) = self.run.take() {
            run.abort();
        }
    }

    async fn cleanup(&mut self) {
        self.stop();
        for name in &self.clusters {
            let _ = self.clusters().delete(name, &DeleteParams::default()).await;
        }
        let _ = Api::<Namespace>::all(self.hub.clone())
            .delete(&self.namespace, &DeleteParams::default())
            .await;
    }

    fn clusters(&self) -> Api<MemberCluster> {
        Api::all(self.hub.clone())
    }

    /// A MemberCluster name unique to this run, e.g. `eks-use1-1f2e3d-0`.
    fn name(&self, prefix: &str) -> String {
        unique_name(prefix)
    }

    fn kubeconfig(&self, member: &str) -> Result<String, String> {
        crate::support::operator::secret_kubeconfig(&self.h.kubeconfig(member))
    }

    /// A Secret with a kubeconfig for a member, and a MemberCluster using it.
    async fn member(
        &mut self,
        member: &str,
        success_threshold: i32,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let name = self.name(member);
        self.secret(&name, &self.kubeconfig(member)?).await?;
        self.member_cluster(&name, &name, success_threshold).await?;
        Ok(name)
    }

    async fn secret(&self, name: &str, kubeconfig: &str) -> TestResult {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.namespace},
            "stringData": {"kubeconfig": kubeconfig},
        }))?;
        Api::<Secret>::namespaced(self.hub.clone(), &self.namespace)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    async fn member_cluster(
        &mut self,
        name: &str,
        secret: &str,
        success_threshold: i32,
    ) -> TestResult {
        let mc: MemberCluster = serde_json::from_value(json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MemberCluster",
            "metadata": {"name": name, "labels": {"bascule-e2e": "members"}},
            "spec": {
                "connection": {"kubeconfigSecretRef": {"name": secret}},
                "health": {"periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3,
                           "successThreshold": success_threshold},
            },
        }))?;
        self.clusters().create(&PostParams::default(), &mc).await?;
        self.clusters.push(name.to_string());
        Ok(())
    }

    async fn status(&self, name: &str) -> Result<bascule::api::MemberClusterStatus, String> {
        self.clusters()
            .get(name)
            .await
            .map_err(|e| e.to_string())?
            .status
            .ok_or_else(|| format!("{name} has no status"))
    }

    async fn resource_versions(
        &self,
        names: &[&String],
    ) -> Result<BTreeMap<String, String>, kube::Error> {
        let mut out = BTreeMap::new();
        for name in names {
            let mc = self.clusters().get(name).await?;
            out.insert(name.to_string(), mc.resource_version().unwrap_or_default());
        }
        Ok(out)
    }

    /// Polls the MemberCluster until its status satisfies `check`.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&bascule::api::MemberClusterStatus) -> bool,
    ) -> Result<MemberCluster, String> {
        let check = Arc::new(check);
        wait::until(
            &format!("{name}: {what}"),
            timeout,
            Duration::from_millis(100),
            || {
                let api = self.clusters();
                let check = check.clone();
                let name = name.to_string();
                async move {
                    let mc = api.get(&name).await.map_err(|e| e.to_string())?;
                    match &mc.status {
                        Some(s) if check(s) => Ok(mc),
                        Some(s) => Err(format!(
                            "health {}, Ready {:?}",
                            s.health,
                            condition(&s.conditions, "Ready")
                                .map(|c| (&c.status, &c.reason, &c.message))
                        )),
                        None => Err("no status".to_string()),
                    }
                }
            },
        )
        .await
    }

    async fn wait_healthy(&self, name: &str) -> Result<MemberCluster, String> {
        self.wait_for(name, "Ready=True/Healthy", Duration::from_secs(30), |s| {
            ready(s) == Some(("True", "Healthy"))
        })
        .await
    }
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The Ready condition's (status, reason).
fn ready(s: &bascule::api::MemberClusterStatus) -> Option<(&str, &str)> {
    condition(&s.conditions, "Ready").map(|c| (c.status.as_str(), c.reason.as_str()))
}

fn snapshot(pool: &MemberPool, name: &str) -> Result<ClusterSnapshot, String> {
    pool.snapshot(name)
        .ok_or_else(|| format!("{name} is not in the pool (known: {:?})", pool.names()))
}

/// Whether an event for `cluster` was received (drains the receiver).
fn changed(events: &mut tokio::sync::broadcast::Receiver<MemberEvent>, cluster: &str) -> bool {
    let mut seen = false;
    loop {
        match events.try_recv() {
            Ok(MemberEvent::Changed { cluster: c }) => seen |= c == cluster,
            Err(TryRecvError::Lagged(_)) => seen = true,
            Err(_) => return seen,
        }
    }
}

async fn wait_pool_health(
    pool: &MemberPool,
    name: &str,
    health: ClusterHealth,
    timeout: Duration,
) -> Result<ClusterSnapshot, String> {
    wait::until(
        &format!("{name} {health} in the pool"),
        timeout,
        Duration::from_millis(50),
        || {
            let s = snapshot(pool, name);
            async move {
                let s = s?;
                if s.health == health {
                    Ok(s)
                } else {
                    Err(format!("{}", s.health))
                }
            }
        },
    )
    .await
}

/// The member's kubeconfig with its user replaced by an exec plugin (as `aws eks get-token`).
fn exec_plugin_kubeconfig(kubeconfig: &str) -> String {
    let mut doc: Value = serde_json::from_str(kubeconfig).expect("embedded kubeconfig is JSON");
    for u in doc["users"].as_array_mut().expect("users") {
        u["user"] = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", "e2e"],
        }});
    }
    doc.to_string()
}

/// A bearer token no member accepts (and that must never show in a status).
const BOGUS_TOKEN: &str = "bascule-e2e-not-a-valid-token-5f0c1d2e3a4b";

/// The member's kubeconfig with its user replaced by a bearer token.
fn token_kubeconfig(kubeconfig: &str, token: &str) -> String {
    let mut doc: Value = serde_json::from_str(kubeconfig).expect("embedded kubeconfig is JSON");
    for u in doc["users"].as_array_mut().expect("users") {
        u["user"] = json!({ "token": token });
    }
    doc.to_string()
}
