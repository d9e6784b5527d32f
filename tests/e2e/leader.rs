//! Leader election: two `bascule run --leader-election` processes on one hub; only the Lease
//! holder works; SIGKILL of the holder hands the work to the other within the Lease's life.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use libtest_mimic::Trial;
use serde_json::json;

use crate::support::operator::{Operator, OperatorOptions};
use crate::support::{Harness, TestResult, Topology, trial, unique_name, wait};
use bascule::api::MultiCloudWorkload;

/// The budget: a 15 s Lease, plus the standby's retry and a margin for a loaded machine.
const TAKEOVER_BUDGET: Duration = Duration::from_secs(25);

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![trial(
        "leader::one_leader_and_takeover_after_sigkill",
        |h| async move { one_leader_and_takeover(h).await },
    )]
}

async fn one_leader_and_takeover(h: &'static Harness) -> TestResult {
    let hub = h.client(h.hub()).await?;
    crate::crds::install_crds(&hub).await?;
    let ns = unique_name("leader");
    let namespaces = Api::<Namespace>::all(hub.clone());
    let object: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &object).await?;
    let result = run(h, &hub, &ns).await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    result
}

async fn run(h: &'static Harness, hub: &Client, ns: &str) -> TestResult {
    let lease = unique_name("lease");
    let (port_a, port_b) = (free_port()?, free_port()?);
    let start = |label: &str, port: u16| {
        let mut o = OperatorOptions::new(ns, label);
        o.extra_args = vec![
            "--leader-election".into(),
            "--lease-name".into(),
            lease.clone(),
            "--http-addr".into(),
            format!("127.0.0.1:{port}"),
        ];
        Operator::start(h, o)
    };
    let mut a = start("leader-a", port_a)?;
    wait::until(
        "the first process leads",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { expect_leader(port_a, true) },
    )
    .await
    .map_err(|e| format!("{e}\n{}", a.log_tail(20)))?;
    let b = start("leader-b", port_b)?;
    wait::until(
        "the second process serves /readyz",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { ready(port_b) },
    )
    .await
    .map_err(|e| format!("{e}\n{}", b.log_tail(20)))?;
    // Both up: only one holds the Lease, and it is the first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    expect_leader(port_a, true)?;
    expect_leader(port_b, false)?;
    let leases: Api<Lease> = Api::namespaced(hub.clone(), ns);
    let first = holder(&leases, &lease).await?;
    let pid_a = a.pid().ok_or("first process not running")?;
    if !first.ends_with(&format!("-{pid_a}")) {
        return Err(
            format!("Lease held by {first:?}, expected the first process (pid {pid_a})").into(),
        );
    }

    // The leader dies without releasing the Lease.
    let killed = Instant::now();
    a.kill()?;
    wait::until(
        "the second process takes over",
        TAKEOVER_BUDGET,
        Duration::from_millis(200),
        || async { expect_leader(port_b, true) },
    )
    .await
    .map_err(|e| format!("{e}\n{}", b.log_tail(30)))?;
    let takeover = killed.elapsed();
    println!(
        "takeover {:.1} s after SIGKILL of the leader",
        takeover.as_secs_f64()
    );
    let pid_b = b.pid().ok_or("second process not running")?;
    let second = holder(&leases, &lease).await?;
    if !second.ends_with(&format!("-{pid_b}")) {
        return Err(
            format!("Lease held by {second:?} after takeover, expected pid {pid_b}").into(),
        );
    }

    // The new leader works: a workload gets a status (no members: Unschedulable, written by it).
    let workloads: Api<MultiCloudWorkload> = Api::namespaced(hub.clone(), ns);
    let w: MultiCloudWorkload = serde_json::from_value(json!({
        "apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": "after-takeover", "namespace": ns},
        "spec": {"replicas": 1, "placement": {"mode": "Divided", "tiers": [{"name": "nowhere", "clusterNames": ["nowhere"]}]},
                 "template": {"manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}]}}
    }))?;
    workloads.create(&PostParams::default(), &w).await?;
    wait::until(
        "the new leader writes the workload's status",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let w = workloads
                .get("after-takeover")
                .await
                .map_err(|e| e.to_string())?;
            match w.status.and_then(|s| s.observed_generation) {
                Some(_) => Ok(()),
                None => Err("no status yet".to_string()),
            }
        },
    )
    .await
    .map_err(|e| format!("{e}\n{}", b.log_tail(30)))?;
    // Clean shutdown releases the Lease at once.
    let mut b = b;
    b.stop(Duration::from_secs(10))?;
    let after = holder(&leases, &lease).await.unwrap_or_default();
    if !after.is_empty() {
        return Err(format!("Lease still held by {after:?} after a clean shutdown").into());
    }
    Ok(())
}

async fn holder(leases: &Api<Lease>, name: &str) -> Result<String, String> {
    let l = leases
        .get(name)
        .await
        .map_err(|e| format!("Lease {name}: {e}"))?;
    Ok(l.spec.and_then(|s| s.holder_identity).unwrap_or_default())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    let code = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    Ok((code, out))
}

fn ready(port: u16) -> Result<(), String> {
    match http_get(port, "/readyz")? {
        (200, _) => Ok(()),
        (code, _) => Err(format!("/readyz answered {code}")),
    }
}

fn expect_leader(port: u16, leader: bool) -> Result<(), String> {
    let (_, body) = http_get(port, "/metrics")?;
    let want = format!("bascule_leader {}", i32::from(leader));
    if body.lines().any(|l| l == want) {
        Ok(())
    } else {
        let line = body
            .lines()
            .find(|l| l.starts_with("bascule_leader"))
            .unwrap_or("none");
        Err(format!("port {port}: expected {want:?}, got {line:?}"))
    }
}
