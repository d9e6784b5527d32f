//! Smoke tests of the harness itself: the clusters are real Kubernetes control planes, with
//! cloud-like nodes, and the injected faults behave like the outages they stand for.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use libtest_mimic::Trial;
use serde_json::json;

use crate::support::{Harness, TestResult, Topology, trial, unique_name, wait};

/// The Kubernetes version pinned in e2e/versions.env.
pub(crate) fn pinned_kube_version() -> String {
    include_str!("../../e2e/versions.env")
        .lines()
        .find_map(|l| l.strip_prefix("KUBE_VERSION="))
        .map(|v| format!("v{}", v.trim()))
        .expect("KUBE_VERSION in e2e/versions.env")
}

pub fn trials(topology: &Topology) -> Vec<Trial> {
    let mut trials = vec![trial(
        "smoke::hub::reports_pinned_kubernetes_version",
        |h| async move { reports_pinned_version(h, h.hub()).await },
    )];
    for m in &topology.members {
        let name = |t: &str| format!("smoke::{m}::{t}");
        let (m1, m2, m3, m4, m5, m6) = (
            m.clone(),
            m.clone(),
            m.clone(),
            m.clone(),
            m.clone(),
            m.clone(),
        );
        trials.extend([
            trial(name("reports_pinned_kubernetes_version"), |h| async move {
                reports_pinned_version(h, &m1).await
            }),
            trial(name("nodes_look_like_their_cloud"), |h| async move {
                nodes_look_like_their_cloud(h, &m2).await
            }),
            trial(
                name("deployment_becomes_available_3_of_3"),
                |h| async move { deployment_becomes_available(h, &m3).await },
            ),
            trial(
                name("stopped_member_is_unreachable_and_start_restores_objects"),
                |h| async move { stop_and_start(h, &m4).await },
            ),
            trial(
                name("frozen_apiserver_fails_calls_at_client_deadline"),
                |h| async move { frozen_apiserver(h, &m5).await },
            ),
            trial(name("nodes_notready_then_ready"), |h| async move {
                nodes_notready_then_ready(h, &m6).await
            }),
        ]);
    }
    trials
}

async fn reports_pinned_version(h: &Harness, cluster: &str) -> TestResult {
    let v = h.client(cluster).await?.apiserver_version().await?;
    let want = pinned_kube_version();
    if v.git_version != want {
        return Err(format!(
            "{cluster}: /version says {}, expected {want}",
            v.git_version
        )
        .into());
    }
    Ok(())
}

fn node_ready(node: &Node) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.clone())
}

async fn nodes_look_like_their_cloud(h: &Harness, m: &str) -> TestResult {
    let nodes = Api::<Node>::all(h.client(m).await?)
        .list(&ListParams::default())
        .await?
        .items;
    let want = h.topology().nodes_per_member as usize;
    if nodes.len() != want {
        return Err(format!("{m}: {} nodes, expected {want}", nodes.len()).into());
    }
    for n in &nodes {
        let name = n.metadata.name.clone().unwrap_or_default();
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let provider_id = n
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let (region, zone) = (
            label("topology.kubernetes.io/region"),
            label("topology.kubernetes.io/zone"),
        );
        if region.is_empty() || !zone.starts_with(&region) {
            return Err(format!("{m}/{name}: region {region:?} / zone {zone:?}").into());
        }
        let ok = if m.starts_with("eks-") {
            provider_id.starts_with(&format!("aws:///{zone}/i-"))
                && !label("eks.amazonaws.com/nodegroup").is_empty()
                && label("node.kubernetes.io/instance-type") == "m5.xlarge"
        } else if m.starts_with("gke-") {
            provider_id.starts_with("gce://")
                && provider_id.contains(&format!("/{zone}/"))
                && !label("cloud.google.com/gke-nodepool").is_empty()
        } else {
            !provider_id.is_empty()
        };
        if !ok {
            return Err(
                format!("{m}/{name}: providerID {provider_id:?}, labels {labels:?}").into(),
            );
        }
        let alloc = n
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap_or_default();
        if alloc.get("cpu").map(|q| q.0.as_str()) != Some("3920m")
            && (m.starts_with("eks-") || m.starts_with("gke-"))
        {
            return Err(format!("{m}/{name}: allocatable {alloc:?}").into());
        }
        if node_ready(n).as_deref() != Some("True") {
            return Err(format!("{m}/{name}: not Ready: {:?}", n.status).into());
        }
        let fake = n
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kwok.x-k8s.io/node"))
            .cloned();
        if fake.as_deref() != Some("fake") {
            return Err(format!("{m}/{name}: not a kwok node").into());
        }
    }
    Ok(())
}

async fn create_namespace(client: &Client, prefix: &str) -> Result<String, kube::Error> {
    let name = unique_name(prefix);
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(name)
}

async fn delete_namespace(client: &Client, name: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

async fn deployment_becomes_available(h: &Harness, m: &str) -> TestResult {
    let client = h.client(m).await?;
    let ns = create_namespace(&client, "smoke").await?;
    let deployments = Api::<Deployment>::namespaced(client.clone(), &ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}
                }]}
            }
        }
    }))?;
    let start = Instant::now();
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    wait::until(
        &format!("{m}: Deployment web Available 3/3"),
        Duration::from_secs(60),
        Duration::from_millis(250),
        || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await.map_err(|e| e.to_string())?;
                let s = d.status.unwrap_or_default();
                let available = s
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True");
                let n = s.available_replicas.unwrap_or(0);
                if available
                    && n == 3
                    && s.ready_replicas == Some(3)
                    && s.updated_replicas == Some(3)
                {
                    Ok(())
                } else {
                    Err(format!("available {n}/3, Available condition {available}"))
                }
            }
        },
    )
    .await?;
    let took = start.elapsed();

    let kwok_nodes: BTreeSet<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|n| {
            n.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kwok.x-k8s.io/node"))
                .map(String::as_str)
                == Some("fake")
        })
        .filter_map(|n| n.metadata.name)
        .collect();
    let pods = Api::<Pod>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels("app=web"))
        .await?
        .items;
    if pods.len() != 3 {
        return Err(format!("{m}: {} pods, expected 3", pods.len()).into());
    }
    for p in &pods {
        let phase = p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if phase != "Running" || !kwok_nodes.contains(&node) {
            return Err(format!("{m}: pod {:?} is {phase:?} on {node:?}", p.metadata.name).into());
        }
    }
    eprintln!(
        "{m}: Deployment Available 3/3 in {:.1} s",
        took.as_secs_f64()
    );
    delete_namespace(&client, &ns).await;
    Ok(())
}

/// A client whose calls give up after `deadline` (connect incl. TLS handshake, and response).
async fn client_with_deadline(
    h: &Harness,
    cluster: &str,
    deadline: Duration,
) -> Result<Client, Box<dyn std::error::Error + Send + Sync>> {
    let mut config = h.config(cluster).await?;
    config.connect_timeout = Some(deadline);
    config.read_timeout = Some(deadline);
    config.write_timeout = Some(deadline);
    config.reset_reader_on_write = true;
    Ok(Client::try_from(config)?)
}

async fn stop_and_start(h: &Harness, m: &str) -> TestResult {
    let client = h.client(m).await?;
    let ns = create_namespace(&client, "outage").await?;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let token = unique_name("token");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "survivor"}, "data": {"token": token}}),
    )?;
    let before = cms.create(&PostParams::default(), &cm).await?;
    let nodes_before: BTreeSet<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();

    let outage = h.stop(m)?;
    let probe = client_with_deadline(h, m, Duration::from_secs(5)).await?;
    let t = Instant::now();
    match tokio::time::timeout(Duration::from_secs(20), probe.apiserver_version()).await {
        Ok(Ok(v)) => {
            return Err(format!("{m}: API still answers while stopped: {}", v.git_version).into());
        }
        Ok(Err(e)) => eprintln!(
            "{m}: stopped; API call failed after {:.2} s: {e}",
            t.elapsed().as_secs_f64()
        ),
        Err(_) => return Err(format!("{m}: API call hung for 20 s while stopped").into()),
    }
    outage.end()?;

    let client = h.client(m).await?;
    let after = Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .get("survivor")
        .await?;
    if after.metadata.uid != before.metadata.uid || after.data != before.data {
        return Err(
            format!("{m}: ConfigMap changed across stop/start: {before:?} -> {after:?}").into(),
        );
    }
    let nodes_after: BTreeSet<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    if nodes_after != nodes_before {
        return Err(format!(
            "{m}: nodes changed across stop/start: {nodes_before:?} -> {nodes_after:?}"
        )
        .into());
    }
    delete_namespace(&client, &ns).await;
    Ok(())
}

async fn frozen_apiserver(h: &Harness, m: &str) -> TestResult {
    let deadline = Duration::from_secs(3);
    let slack = Duration::from_secs(4);
    let pooled = client_with_deadline(h, m, deadline).await?;
    pooled.apiserver_version().await?; // leaves an open keep-alive connection in the pool

    let frozen = h.freeze(m)?;
    for (what, client) in [
        ("pooled connection", pooled),
        (
            "new connection",
            client_with_deadline(h, m, deadline).await?,
        ),
    ] {
        let t = Instant::now();
        let r = tokio::time::timeout(Duration::from_secs(30), client.apiserver_version()).await;
        let took = t.elapsed();
        match r {
            Err(_) => return Err(format!("{m} ({what}): call still hanging after 30 s").into()),
            Ok(Ok(v)) => {
                return Err(
                    format!("{m} ({what}): frozen apiserver answered {}", v.git_version).into(),
                );
            }
            Ok(Err(e)) => {
                eprintln!(
                    "{m} ({what}): failed after {:.2} s: {e}",
                    took.as_secs_f64()
                );
                if took + Duration::from_millis(200) < deadline || took > deadline + slack {
                    return Err(format!(
                        "{m} ({what}): failed after {took:?}, expected at the {deadline:?} deadline: {e}"
                    )
                    .into());
                }
            }
        }
    }
    frozen.end()?;
    let client = client_with_deadline(h, m, deadline).await?;
    wait::until(
        &format!("{m}: API answers after thaw"),
        Duration::from_secs(15),
        Duration::from_millis(200),
        || {
            let client = client.clone();
            async move {
                client
                    .apiserver_version()
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        },
    )
    .await?;
    Ok(())
}

async fn nodes_notready_then_ready(h: &Harness, m: &str) -> TestResult {
    let client = h.client(m).await?;
    let nodes = Api::<Node>::all(client.clone());
    let names: Vec<String> = nodes
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    let victim = names.first().ok_or("no nodes")?.clone();

    let fault = h.nodes_notready(m, Some(&[victim.as_str()]))?;
    for n in nodes.list(&ListParams::default()).await?.items {
        let name = n.metadata.name.clone().unwrap_or_default();
        let want = if name == victim { "False" } else { "True" };
        if node_ready(&n).as_deref() != Some(want) {
            return Err(format!("{m}/{name}: Ready={:?}, expected {want}", node_ready(&n)).into());
        }
    }
    fault.end()?;
    let n = nodes.get(&victim).await?;
    if node_ready(&n).as_deref() != Some("True") {
        return Err(format!("{m}/{victim}: still not Ready after nodes-ready").into());
    }

    // All nodes, through the CLI path without a node list.
    let fault = h.nodes_notready(m, None)?;
    let not_ready = nodes
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|n| node_ready(n).as_deref() == Some("False"))
        .count();
    if not_ready != names.len() {
        return Err(format!(
            "{m}: {not_ready}/{} nodes NotReady after nodes-notready",
            names.len()
        )
        .into());
    }
    fault.end()?;
    Ok(())
}
