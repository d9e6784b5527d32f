//! Leader election: two `bascule run --leader-election` processes on one hub; only the Lease
//! holder works; SIGKILL of the holder hands the work to the other within the Lease's life.
//! A frozen hub makes the leader step down without exiting, and it resumes when the hub returns.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use libtest_mimic::Trial;
use serde_json::json;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::ListParams;

use crate::ensure;
use crate::support::fleet::{EKS, Fleet, FleetOptions, GKE, WORKLOAD_UID};
use crate::support::http::free_port;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::{Harness, TestResult, Topology, trial, unique_name, wait};
use bascule::api::MultiCloudWorkload;

/// The budget: a 15 s Lease, plus the standby's retry and a margin for a loaded machine.
const TAKEOVER_BUDGET: Duration = Duration::from_secs(25);

/// How long the hub stays frozen (issue 13, item 9).
const FROZEN_FOR: Duration = Duration::from_secs(60);
/// The leader stops acting within its Lease: 10 s without confirmation, plus the check period.
const STEP_DOWN_WITHIN: Duration = Duration::from_secs(15);

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "leader::one_leader_and_takeover_after_sigkill",
            |h| async move { one_leader_and_takeover(h).await },
        ),
        trial(
            "leader::frozen_hub_steps_down_and_resumes",
            |h| async move {
                let port = free_port()?;
                let options = FleetOptions {
                    group: "leader",
                    operator_args: vec![
                        "--leader-election".into(),
                        "--lease-name".into(),
                        unique_name("lease"),
                        "--http-addr".into(),
                        format!("127.0.0.1:{port}"),
                    ],
                    ..FleetOptions::new("frozen-hub")
                }
                .success_threshold(1);
                Fleet::run(h, options, async move |fx: &mut Fleet| {
                    frozen_hub(fx, port).await
                })
                .await
            },
        ),
    ]
}

/// The hub's kube-apiserver frozen for 60 s under a leader: it steps down within its Lease
/// (`/readyz` 503, `/livez` 200, never exiting), writes nothing to the members while not leader
/// (eks-use1 stopped meanwhile: the failover waits), and resumes when the hub returns.
async fn frozen_hub(fx: &mut Fleet, port: u16) -> TestResult {
    let spec = json!({
        "replicas": 2,
        "placement": {"mode": "Failover", "tiers": [
            {"name": "eks", "providers": ["aws"]}, {"name": "gke", "providers": ["gcp"]}]},
        "template": {"manifests": crate::workloads::small_manifests("web")},
    });
    fx.create_workload("web", spec).await?;
    let placed_on = |cluster: String| {
        move |w: &MultiCloudWorkload| {
            let s = w.status.as_ref().ok_or("no status")?;
            let available = s.replicas.as_ref().is_some_and(|r| r.available == 2);
            match s.placement.as_deref() {
                Some(p) if p == format!("{cluster}=2") && available => Ok(()),
                other => Err(format!("placement {other:?}")),
            }
        }
    };
    fx.wait_workload(
        "web",
        "2/2 on eks-use1",
        Duration::from_secs(60),
        placed_on(fx.mc(EKS)),
    )
    .await?;
    let uid = fx.workload("web").await?.metadata.uid.ok_or("no uid")?;
    expect_leader(port, true)?;

    let frozen = Instant::now();
    let freeze = {
        let h = fx.h;
        tokio::task::spawn_blocking(move || h.freeze_hub()).await??
    };
    let during = async {
        // Steps down within its Lease, stays alive.
        let stepped_down = loop {
            fx.alive()?;
            expect_code(port, "/livez", 200)?;
            if expect_code(port, "/readyz", 503).is_ok() {
                break frozen.elapsed();
            }
            if frozen.elapsed() > STEP_DOWN_WITHIN {
                return Err(format!(
                    "/readyz still 200 {:.0} s into the freeze",
                    frozen.elapsed().as_secs_f64()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        expect_leader(port, false)?;
        println!(
            "stepped down {:.1} s into the freeze",
            stepped_down.as_secs_f64()
        );
        // Not leader: a lost member must not make it write anything to the other.
        let outage = {
            let h = fx.h;
            tokio::task::spawn_blocking(move || h.stop(EKS)).await??
        };
        let gke = Api::<Deployment>::namespaced(fx.member(GKE), &fx.app_ns);
        let labels = ListParams::default().labels(&format!("{WORKLOAD_UID}={uid}"));
        while frozen.elapsed() < FROZEN_FOR {
            fx.alive()?;
            expect_code(port, "/livez", 200)?;
            expect_code(port, "/readyz", 503)?;
            let written = gke.list(&labels).await?;
            ensure!(
                written.items.is_empty(),
                "a non-leader wrote web's Deployment to {GKE}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        TestResult::Ok(outage)
    }
    .await;
    tokio::task::spawn_blocking(move || freeze.end()).await??;
    let outage = during?;
    let thawed = Instant::now();

    // The hub is back: it leads again and carries the failover out, no restart needed.
    wait::until(
        "leading again",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async { expect_leader(port, true) },
    )
    .await?;
    expect_code(port, "/readyz", 200)?;
    let led = thawed.elapsed();
    let moved = fx
        .wait_workload(
            "web",
            "2/2 on gke-euw1",
            Duration::from_secs(60),
            placed_on(fx.mc(GKE)),
        )
        .await;
    tokio::task::spawn_blocking(move || outage.end()).await??;
    moved?;
    println!(
        "leading again {:.1} s after the thaw; web 2/2 on {GKE} {:.1} s after it",
        led.as_secs_f64(),
        thawed.elapsed().as_secs_f64()
    );
    let starts = fx.with_operator(|op| op.starts());
    ensure!(starts == 1, "the operator was started {starts} times");
    fx.wait_health(EKS, "Healthy", Duration::from_secs(60))
        .await?;
    Ok(())
}

fn expect_code(port: u16, path: &str, want: u16) -> Result<(), String> {
    match http_get(port, path)? {
        (code, _) if code == want => Ok(()),
        (code, body) => Err(format!("{path} answered {code}, expected {want}: {body}")),
    }
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
