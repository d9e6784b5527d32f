//! Failover on real control planes (issue 5): `bascule run` (a child process) against the hub,
//! `eks-use1` and `gke-euw1`, with real outages injected by the harness — a stopped control
//! plane, a frozen kube-apiserver (SIGSTOP), NotReady nodes — and the operator itself SIGKILLed.
//!
//! Every trial runs in its own [`Fleet`] (namespaces, kubeconfig Secrets, MemberClusters with
//! Bascule's default probe settings unless said otherwise, its own operator), removed at the end
//! whatever happens; outages are undone by their guards, so members are always left started,
//! thawed and with Ready nodes.
//!
//! The workload is the `checkout` of examples/failover.yaml: 10 replicas in Failover mode,
//! "prefer EKS us-east-1, else GKE europe-west1", without standby replicas unless a trial says so.
//!
//! | trial | asserts |
//! |---|---|
//! | `a_stopped_member_fails_over_within_30s` | eks-use1 stopped → 10/10 Available on gke-euw1 (its Deployment and the workload's status) within 30 s of the stop; its copies on eks-use1 removed when it returns |
//! | `b_frozen_apiserver_fails_over_operator_never_hangs` | the same with eks-use1's apiserver frozen, and the operator keeps serving other workloads meanwhile |
//! | `c_nodes_notready_fails_over` | every node of eks-use1 NotReady while its API answers → the workload moves to gke-euw1 |
//! | `d_automatic_failback_after_the_window_make_before_break` | nothing moves back before the stabilization window; then the replicas return to eks-use1, availability never below 10, the copies on gke-euw1 removed at the end |
//! | `e_flapping_member_one_failover_no_failback` | eks-use1 stopped and started every 5 s for 2 minutes → at most one failover, no failback |
//! | `f_every_member_unreachable_nothing_deleted` | both members stopped at once and started again → no object deleted or scaled down anywhere, placement unchanged |
//! | `g_sigkill_mid_failover_converges` | the operator SIGKILLed right after the failover started, restarted → converges, no orphan, no replicas beyond the surge |
//! | `h_application_unavailable_moves_that_workload_only` | the checkout's pods never become Ready on eks-use1 (kwok keeps pods labelled `pod-not-ready.stage.kwok.x-k8s.io=true` Pending; an override sets it there only) → after `applicationTolerationSeconds` it moves to gke-euw1 and is 10/10 Available there; another workload on the same healthy member stays |
//! | `i_deleted_while_unreachable_collected_on_return` | a workload deleted while eks-use1 is stopped: the deletion completes at once (gke-euw1 cleaned), and its copies on eks-use1 are removed when eks-use1 returns, while a workload that still exists there keeps its objects untouched |
//! | `bench_failover` (ignored) | scenario (a) 5 times, one line of figures per run; `e2e/bench-failover` summarises them |

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use bascule::api::MultiCloudWorkload;
use bascule::api::workload::FailoverRecord;
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::ensure;
use crate::support::fleet::{
    EKS, Fleet, FleetOptions, GKE, Sample, available_of, condition, describe, health_of, ready_of,
    replicas_of, uid_of,
};
use crate::support::{Harness, Outage, TestResult, Topology, trial};

const WORKLOAD: &str = "checkout";
const REPLICAS: i32 = 10;
/// The budget of scenario (a): 10/10 Available elsewhere within this of the stop.
const FAILOVER_BUDGET: Duration = Duration::from_secs(30);
/// What we aim for (reported, not asserted).
const FAILOVER_TARGET: Duration = Duration::from_secs(15);
/// Placing a workload on healthy members (generous: not the feature here).
const PLACED_WITHIN: Duration = Duration::from_secs(60);
/// A returning member's stale copies removed (generous).
const CLEANED_WITHIN: Duration = Duration::from_secs(60);

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "failover::a_stopped_member_fails_over_within_30s",
            |h| async move {
                Fleet::run(h, FleetOptions::new("stop"), async |fx| {
                    fail_over(fx, Fault::Stop).await.map(drop)
                })
                .await
            },
        ),
        trial(
            "failover::b_frozen_apiserver_fails_over_operator_never_hangs",
            |h| async move {
                Fleet::run(h, FleetOptions::new("freeze"), async |fx| {
                    fail_over(fx, Fault::Freeze).await.map(drop)
                })
                .await
            },
        ),
        trial("failover::c_nodes_notready_fails_over", |h| async move {
            Fleet::run(h, FleetOptions::new("notready"), async |fx| {
                fail_over(fx, Fault::NodesNotReady).await.map(drop)
            })
            .await
        }),
        trial(
            "failover::d_automatic_failback_after_the_window_make_before_break",
            |h| async move { Fleet::run(h, FleetOptions::new("failback"), failback).await },
        ),
        trial(
            "failover::e_flapping_member_one_failover_no_failback",
            |h| async move { Fleet::run(h, FleetOptions::new("flap"), flapping).await },
        ),
        trial(
            "failover::f_every_member_unreachable_nothing_deleted",
            |h| async move { Fleet::run(h, FleetOptions::new("allout"), all_unreachable).await },
        ),
        trial(
            "failover::h_application_unavailable_moves_that_workload_only",
            |h| async move { Fleet::run(h, FleetOptions::new("appfail"), app_failover).await },
        ),
        trial(
            "failover::g_sigkill_mid_failover_converges",
            |h| async move { Fleet::run(h, FleetOptions::new("sigkill"), sigkill).await },
        ),
        trial(
            "failover::i_deleted_while_unreachable_collected_on_return",
            |h| async move {
                Fleet::run(
                    h,
                    FleetOptions::new("orphans").success_threshold(3),
                    orphans_collected,
                )
                .await
            },
        ),
        trial(
            "failover::bench_failover",
            |h| async move { bench(h).await },
        )
        .with_ignored_flag(true),
    ]
}

// ---------------------------------------------------------------------------------------------
// The workload and the faults.

/// examples/failover.yaml's checkout, with `standby` warm standby replicas and `failback`.
fn checkout(standby: i32, failback: Value) -> Value {
    json!({
        "replicas": REPLICAS,
        "placement": {
            "mode": "Failover",
            "tiers": [
                {"name": "eks-us-east-1", "providers": ["aws"], "regions": ["us-east-1"]},
                {"name": "gke-europe-west1", "providers": ["gcp"], "regions": ["europe-west1"]},
            ],
            "standbyReplicas": standby,
        },
        "failover": {"failback": failback},
        "template": {"manifests": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": WORKLOAD},
             "spec": {"selector": {"matchLabels": {"app": WORKLOAD}},
                      "template": {"metadata": {"labels": {"app": WORKLOAD}},
                                   "spec": {"containers": [{
                                       "name": WORKLOAD,
                                       "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:1.4.2",
                                       "ports": [{"containerPort": 8080}],
                                       "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": WORKLOAD},
             "spec": {"selector": {"app": WORKLOAD}, "ports": [{"port": 80, "targetPort": 8080}]}},
        ]},
    })
}

/// Application failover's toleration in trial (h) (the CRD's minimum).
const APP_TOLERATION: u64 = 10;

/// The checkout's pods never become Ready on eks-use1 (scenario h); its replicas move to gke-euw1
/// after the toleration, make-before-break, for that workload only: `catalog`, placed the same
/// way on the same member, stays where it is, untouched. Automatic failback does not bring the
/// checkout back to where it failed (the cluster is healthy, the workload is not); a new spec
/// does.
async fn app_failover(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    let mut spec = checkout(0, automatic(WINDOW));
    spec["failover"]["applicationTolerationSeconds"] = json!(APP_TOLERATION);
    spec["overrides"] = json!([{
        "name": "never-ready-on-aws",
        "clusters": {"providers": ["aws"]},
        "manifests": [{"kind": "Deployment", "jsonPatch": [{
            "op": "add",
            "path": "/spec/template/metadata/labels/pod-not-ready.stage.kwok.x-k8s.io",
            "value": "true",
        }]}],
    }]);
    let mut healthy = checkout(0, json!({"mode": "Manual"}));
    healthy["failover"]["applicationTolerationSeconds"] = json!(APP_TOLERATION);
    rename(&mut healthy, "catalog");
    fx.create_workload("catalog", healthy).await?;
    fx.wait_workload(
        "catalog",
        &format!("placement {eks}=10, 10 available, Ready"),
        PLACED_WITHIN,
        |w| placed_as(w, &format!("{eks}=10"), REPLICAS),
    )
    .await?;
    let catalog_before = fx
        .deployment(EKS, "catalog")
        .await?
        .ok_or("no catalog Deployment in eks-use1")?;

    let t0 = Instant::now();
    let created = fx.create_workload(WORKLOAD, spec).await?;
    let uid = created.metadata.uid.clone().ok_or("no uid")?;
    // Placed on eks-use1 first, where its pods never become Ready.
    fx.until(
        "checkout's Deployment on eks-use1 with 10 replicas, none available",
        PLACED_WITHIN,
        Duration::from_millis(200),
        async || match fx.deployment(EKS, WORKLOAD).await? {
            Some(d) if replicas_of(&d) == Some(REPLICAS) && available_of(&d) == 0 => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|d| (replicas_of(&d), available_of(&d)))
            )),
        },
    )
    .await?;
    let placed = t0.elapsed();
    let w = wait_placed(
        fx,
        &format!("{gke}=10"),
        REPLICAS,
        Duration::from_secs(APP_TOLERATION) + FAILOVER_BUDGET,
    )
    .await?;
    let moved = t0.elapsed();
    let (record, _) = check_move(fx, &uid, "Failover", &eks, &gke).await?;
    ensure!(
        record.reason.contains("workload unavailable here since"),
        "lastFailover.reason {:?} does not name the application's unavailability",
        record.reason
    );
    all_available(fx, GKE, "gke-euw1").await?;
    println!(
        "checkout on eks-use1 (never Ready) after {:.1} s; 10/10 Available on gke-euw1 after {:.1} s (toleration {APP_TOLERATION} s, budget {} s); {}",
        secs(placed),
        secs(moved),
        APP_TOLERATION + FAILOVER_BUDGET.as_secs(),
        describe(&w)
    );
    // eks-use1 is healthy and has been for longer than the window, yet the checkout stays away
    // from where it failed: remembered in the status for this generation.
    let failures = &w.status.as_ref().ok_or("no status")?.application_failures;
    ensure!(
        failures.len() == 1
            && failures[0].cluster == eks
            && failures[0].observed_generation == Some(1),
        "status.applicationFailures {failures:?}"
    );
    let started = record.started_at.clone();
    let hold = Duration::from_secs(WINDOW as u64 + 10);
    let t = Instant::now();
    while t.elapsed() < hold {
        let w = fx.workload(WORKLOAD).await?;
        placed_as(&w, &format!("{gke}=10"), REPLICAS)
            .map_err(|e| format!("{:.1} s after the move: {e}", secs(t.elapsed())))?;
        let last = w.status.as_ref().and_then(|s| s.last_failover.as_ref());
        ensure!(
            last.is_some_and(|l| l.started_at == started),
            "another move: {last:?}"
        );
        ensure!(
            fx.deployment(EKS, WORKLOAD)
                .await?
                .is_none_or(|d| replicas_of(&d) == Some(0)),
            "the checkout went back to eks-use1"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "no failback to eks-use1 in the {} s after the move (window {WINDOW} s)",
        hold.as_secs()
    );
    // The fix is released (the override goes: a new generation): it may return, and does.
    let api = fx.workloads();
    api.patch(
        WORKLOAD,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"overrides": null}})),
    )
    .await?;
    let t = Instant::now();
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    ensure!(
        w.status
            .as_ref()
            .is_some_and(|s| s.application_failures.is_empty()),
        "applicationFailures kept after the spec changed: {}",
        describe(&w)
    );
    println!(
        "generation 2 (override removed): back on eks-use1, 10/10 Available, {:.1} s after the change",
        secs(t.elapsed())
    );
    // The other workload on the same member never moved and was never rewritten.
    let catalog = fx.workload("catalog").await?;
    placed_as(&catalog, &format!("{eks}=10"), REPLICAS)?;
    let catalog_after = fx
        .deployment(EKS, "catalog")
        .await?
        .ok_or("catalog's Deployment left eks-use1")?;
    ensure!(
        catalog_after.metadata.generation == catalog_before.metadata.generation,
        "catalog's Deployment on eks-use1 changed: generation {:?} → {:?}",
        catalog_before.metadata.generation,
        catalog_after.metadata.generation
    );
    ensure!(
        fx.deployment(GKE, "catalog").await?.is_none(),
        "catalog was copied to gke-euw1"
    );
    Ok(())
}

/// Renames the checkout template's objects (a second workload beside it in the namespace).
fn rename(spec: &mut Value, name: &str) {
    let manifests = spec["template"]["manifests"]
        .as_array_mut()
        .expect("manifests");
    for m in manifests {
        m["metadata"]["name"] = json!(name);
        if m["kind"] == "Deployment" {
            m["spec"]["selector"]["matchLabels"]["app"] = json!(name);
            m["spec"]["template"]["metadata"]["labels"]["app"] = json!(name);
        } else {
            m["spec"]["selector"]["app"] = json!(name);
        }
    }
}

fn automatic(window_seconds: i32) -> Value {
    json!({"mode": "Automatic", "stabilizationWindowSeconds": window_seconds})
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Stop,
    Freeze,
    NodesNotReady,
}

impl Fault {
    fn describe(self) -> &'static str {
        match self {
            Fault::Stop => "control plane stopped",
            Fault::Freeze => "kube-apiserver frozen (SIGSTOP)",
            Fault::NodesNotReady => "every node NotReady",
        }
    }
}

/// Injects a fault without blocking the runtime (the harness shells out to e2e/cluster).
async fn inject(
    h: &'static Harness,
    member: &'static str,
    fault: Fault,
) -> TestResult<Outage<'static>> {
    let outage = tokio::task::spawn_blocking(move || match fault {
        Fault::Stop => h.stop(member),
        Fault::Freeze => h.freeze(member),
        Fault::NodesNotReady => h.nodes_notready(member, None),
    })
    .await??;
    Ok(outage)
}

/// Undoes a fault (start / thaw / nodes-ready) without blocking the runtime.
async fn end(outage: Outage<'static>) -> TestResult<()> {
    tokio::task::spawn_blocking(move || outage.end()).await??;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Status checks.

/// `status.placement` is `placement`, `available` replicas available of as many desired, Ready.
fn placed_as(w: &MultiCloudWorkload, placement: &str, available: i32) -> Result<(), String> {
    let s = w.status.as_ref().ok_or("no status")?;
    let ready = condition(&s.conditions, "Ready").is_some_and(|c| c.status == "True");
    let counts = s
        .replicas
        .as_ref()
        .is_some_and(|r| r.available == available && r.desired == available);
    if s.placement.as_deref() == Some(placement) && counts && ready {
        Ok(())
    } else {
        Err(describe(w))
    }
}

async fn wait_placed(
    fx: &Fleet,
    placement: &str,
    available: i32,
    timeout: Duration,
) -> Result<MultiCloudWorkload, String> {
    fx.wait_workload(
        WORKLOAD,
        &format!("placement {placement}, {available} available, Ready"),
        timeout,
        |w| placed_as(w, placement, available),
    )
    .await
}

/// The checkout's Deployment in `member` runs all 10 replicas, all available (`when` names the
/// moment in the error).
async fn all_available(fx: &Fleet, member: &str, when: &str) -> TestResult {
    let d = fx
        .deployment(member, WORKLOAD)
        .await?
        .ok_or_else(|| format!("{when}: no Deployment"))?;
    ensure!(
        replicas_of(&d) == Some(REPLICAS) && available_of(&d) == REPLICAS,
        "{when}: {:?} replicas, {} available",
        replicas_of(&d),
        available_of(&d)
    );
    Ok(())
}

/// Waits until a member holds nothing of the workload `uid` (its copies removed).
async fn wait_removed(
    fx: &Fleet,
    member: &str,
    uid: &str,
    timeout: Duration,
) -> TestResult<Duration> {
    let t = Instant::now();
    fx.until(
        &format!("{member}: the workload's objects removed"),
        timeout,
        Duration::from_millis(200),
        async || {
            let left: Vec<String> = fx
                .placed(member)
                .await?
                .into_iter()
                .filter(|p| p.workload_uid == uid)
                .map(|p| format!("{} (replicas {:?})", p.object, p.replicas))
                .collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("still there: {left:?}"))
            }
        },
    )
    .await?;
    Ok(t.elapsed())
}

/// The move contract: `status.lastFailover` records a completed move from `from` to `to`
/// (`reason`, `startedAt`, `completedAt`, `durationSeconds`, `summary`), and the Events
/// `<Kind>Started` (Warning for a failover, Normal for a failback) and `<Kind>Completed` (Normal)
/// name both clusters. Returns the record and the Events.
async fn check_move(
    fx: &Fleet,
    uid: &str,
    kind: &str,
    from: &str,
    to: &str,
) -> TestResult<(FailoverRecord, Vec<crate::support::fleet::Seen>)> {
    let w = fx
        .wait_workload(
            WORKLOAD,
            &format!("status.lastFailover: {kind} {from} → {to} completed"),
            Duration::from_secs(30),
            |w| {
                let f = w.status.as_ref().and_then(|s| s.last_failover.as_ref());
                match f {
                    Some(f)
                        if f.from == [from]
                            && f.to == [to]
                            && f.completed_at.is_some()
                            && f.duration_seconds.is_some() =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("lastFailover {f:?}")),
                }
            },
        )
        .await?;
    let f = w
        .status
        .and_then(|s| s.last_failover)
        .ok_or("no lastFailover")?;
    ensure!(
        f.reason.to_lowercase().contains(&kind.to_lowercase()),
        "lastFailover.reason {:?} does not say {kind}",
        f.reason
    );
    ensure!(
        f.summary.contains(from) && f.summary.contains(to),
        "lastFailover.summary {:?}",
        f.summary
    );
    let completed = f.completed_at.as_ref().map(|t| t.0);
    ensure!(
        completed.is_some_and(|c| c >= f.started_at.0),
        "lastFailover completed at {completed:?}, started at {}",
        f.started_at.0
    );
    let events = fx
        .until(
            &format!("Events {kind}Started and {kind}Completed"),
            Duration::from_secs(10),
            Duration::from_millis(200),
            async || {
                let events = fx.events(uid).await?;
                let has = |reason: &str| events.iter().any(|e| e.reason == reason);
                if has(&format!("{kind}Started")) && has(&format!("{kind}Completed")) {
                    Ok(events)
                } else {
                    Err(format!(
                        "{:?}",
                        events.iter().map(|e| &e.reason).collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await?;
    let started_type = if kind == "Failover" {
        "Warning"
    } else {
        "Normal"
    };
    for (reason, type_) in [
        (format!("{kind}Started"), started_type),
        (format!("{kind}Completed"), "Normal"),
    ] {
        let e = events
            .iter()
            .rev()
            .find(|e| e.reason == reason)
            .ok_or("no Event")?;
        ensure!(
            e.type_ == type_ && e.note.contains(from) && e.note.contains(to),
            "Event {reason}: {}: {:?} (expected {type_}, naming {from} and {to})",
            e.type_,
            e.note
        );
    }
    println!(
        "lastFailover: {} ({}; started {}, completed {:?}, {:?} s)",
        f.summary, f.reason, f.started_at.0, completed, f.duration_seconds
    );
    Ok((f, events))
}

/// `Type/Reason: note` of each Event.
fn list(events: &[crate::support::fleet::Seen]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}/{}: {}", e.type_, e.reason, e.note))
        .collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// (a), (b), (c): the preferred member fails.

/// What one failover took, from the moment the fault was injected.
#[derive(Debug, Clone, Copy)]
struct Figures {
    /// Until the MemberCluster was seen Unhealthy.
    detect: Duration,
    /// Until gke-euw1's Deployment was seen with 10 replicas, 10 available.
    member_available: Duration,
    /// Until the workload's status was seen with placement gke-euw1=10, 10 available.
    status_available: Duration,
}

impl Figures {
    /// Both the member and the status say 10/10 on gke-euw1.
    fn available(&self) -> Duration {
        self.member_available.max(self.status_available)
    }
}

/// Scenario (a), (b) or (c): the workload runs on eks-use1; the fault hits eks-use1; 10/10
/// must be Available on gke-euw1 (its Deployment and the workload's status). Then the fault is
/// undone and eks-use1's stale copies must be removed.
async fn fail_over(fx: &mut Fleet, fault: Fault) -> TestResult<Figures> {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    fx.create_workload(WORKLOAD, checkout(0, automatic(300)))
        .await?;
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let on_gke = fx.deployment(GKE, WORKLOAD).await?;
    ensure!(
        on_gke.as_ref().and_then(replicas_of).unwrap_or(0) == 0,
        "gke-euw1 runs {:?} replicas before the outage (no standby asked)",
        on_gke.as_ref().and_then(replicas_of)
    );

    let (t0, wall0) = (Instant::now(), SystemTime::now());
    let outage = inject(fx.h, EKS, fault).await?;
    let injected = t0.elapsed();
    let budget = match fault {
        Fault::NodesNotReady => Duration::from_secs(60),
        _ => FAILOVER_BUDGET,
    };
    let wanted = format!("{gke}=10");
    let (mut detect, mut member, mut status) = (None, None, None);
    let mut last = String::new();
    while t0.elapsed() < budget + Duration::from_secs(30) {
        fx.alive()?;
        let (mc, w, d) = tokio::join!(
            fx.member_cluster(EKS),
            fx.workload(WORKLOAD),
            fx.deployment(GKE, WORKLOAD)
        );
        let now = t0.elapsed();
        if detect.is_none() && mc.as_ref().is_ok_and(|mc| health_of(mc) == "Unhealthy") {
            detect = Some(now);
        }
        if member.is_none()
            && let Ok(Some(d)) = &d
            && replicas_of(d) == Some(REPLICAS)
            && available_of(d) == REPLICAS
        {
            member = Some(now);
        }
        if status.is_none()
            && let Ok(w) = &w
            && let Some(s) = &w.status
            && s.placement.as_deref() == Some(wanted.as_str())
            && s.replicas
                .as_ref()
                .is_some_and(|r| r.available == REPLICAS && r.desired == REPLICAS)
        {
            status = Some(now);
        }
        if detect.is_some() && member.is_some() && status.is_some() {
            break;
        }
        last = format!(
            "eks-use1 {}; gke-euw1 Deployment {}; workload {}",
            mc.map(|m| format!("{} {}", health_of(&m), ready_of(&m)))
                .unwrap_or_else(|e| e),
            match d {
                Ok(Some(d)) => format!("{:?}/{} available", replicas_of(&d), available_of(&d)),
                Ok(None) => "absent".into(),
                Err(e) => e,
            },
            w.map(|w| describe(&w)).unwrap_or_else(|e| e)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (Some(detect), Some(member), Some(status)) = (detect, member, status) else {
        return Err(format!(
            "{}: after {:.1} s: eks-use1 Unhealthy seen after {detect:?}, gke-euw1 10/10 after {member:?}, status {wanted} after {status:?}; last seen: {last}",
            fault.describe(),
            secs(t0.elapsed())
        )
        .into());
    };
    let figures = Figures {
        detect,
        member_available: member,
        status_available: status,
    };
    let mc = fx.member_cluster(EKS).await?;
    println!(
        "{} on eks-use1 (injected in {:.2} s): Unhealthy seen after {:.1} s ({}); gke-euw1 \
         Deployment 10/10 Available after {:.1} s; status {wanted} with 10 available after \
         {:.1} s (budget {} s, target {} s: {})",
        fault.describe(),
        secs(injected),
        secs(detect),
        ready_of(&mc),
        secs(member),
        secs(status),
        budget.as_secs(),
        FAILOVER_TARGET.as_secs(),
        if figures.available() <= FAILOVER_TARGET {
            "met"
        } else {
            "missed"
        }
    );
    ensure!(
        figures.available() <= budget,
        "{}: 10/10 Available on gke-euw1 after {:.1} s (Deployment {:.1} s, status {:.1} s), budget {} s",
        fault.describe(),
        secs(figures.available()),
        secs(member),
        secs(status),
        budget.as_secs()
    );

    // The move as the status and Events tell it.
    let (_, events) = check_move(fx, &uid, "Failover", &eks, &gke).await?;
    let started = events
        .iter()
        .find(|e| e.reason == "FailoverStarted")
        .and_then(|e| e.time)
        .map(|t| SystemTime::from(t).duration_since(wall0).map_or(-1.0, secs));
    println!(
        "Event FailoverStarted {started:?} s after the fault was injected; Events: {:?}",
        list(&events)
    );
    let count = events
        .iter()
        .filter(|e| e.reason == "FailoverStarted")
        .count();
    ensure!(
        count == 1,
        "{count} FailoverStarted Events: {:?}",
        list(&events)
    );

    if fault == Fault::Freeze {
        // The operator never hangs: while eks-use1 is still frozen it places a new workload on
        // gke-euw1 promptly.
        let t = Instant::now();
        fx.create_workload(
            "catalog",
            json!({
                "replicas": 3,
                "placement": {"mode": "Divided", "tiers": [{"clusterNames": [gke]}]},
                "template": {"manifests": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "catalog"},
                     "spec": {"selector": {"matchLabels": {"app": "catalog"}},
                              "template": {"metadata": {"labels": {"app": "catalog"}},
                                           "spec": {"containers": [{"name": "catalog",
                                               "image": "registry.example/catalog:2.0.1"}]}}}},
                ]},
            }),
        )
        .await?;
        fx.wait_workload(
            "catalog",
            "3/3 Available on gke-euw1 while eks-use1 is frozen",
            Duration::from_secs(20),
            |w| {
                let s = w.status.as_ref().ok_or("no status")?;
                let ready = condition(&s.conditions, "Ready").is_some_and(|c| c.status == "True");
                let n = s.replicas.as_ref().map_or(0, |r| r.available);
                if ready && n == 3 {
                    Ok(())
                } else {
                    Err(describe(w))
                }
            },
        )
        .await?;
        println!(
            "while eks-use1 is frozen, a new workload was placed on gke-euw1 and 3/3 Available in {:.1} s",
            secs(t.elapsed())
        );
    }

    // The member returns: its stale copies go, the workload stays on gke-euw1.
    let t = Instant::now();
    end(outage).await?;
    let back = t.elapsed();
    let removed = wait_removed(fx, EKS, &uid, CLEANED_WITHIN).await?;
    let w = wait_placed(fx, &wanted, REPLICAS, Duration::from_secs(10)).await?;
    println!(
        "eks-use1 back in {:.1} s; its copies removed {:.1} s later; {}",
        secs(back),
        secs(removed),
        describe(&w)
    );
    Ok(figures)
}

/// e2e/bench-failover: scenario (a) `BASCULE_BENCH_RUNS` times (default 5), each in a fresh
/// fleet, one line of figures per run.
async fn bench(h: &'static Harness) -> TestResult {
    let runs: usize = std::env::var("BASCULE_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let mut all = Vec::new();
    for run in 1..=runs {
        let mut figures = None;
        Fleet::run(h, FleetOptions::new(&format!("bench{run}")), async |fx| {
            figures = Some(fail_over(fx, Fault::Stop).await?);
            Ok(())
        })
        .await?;
        let f = figures.ok_or("no figures")?;
        println!(
            "bench-failover run={run} detect={:.2} available={:.2} member_available={:.2} status_available={:.2}",
            secs(f.detect),
            secs(f.available()),
            secs(f.member_available),
            secs(f.status_available)
        );
        all.push(f);
    }
    let mut d: Vec<f64> = all.iter().map(|f| secs(f.detect)).collect();
    let mut a: Vec<f64> = all.iter().map(|f| secs(f.available())).collect();
    d.sort_by(f64::total_cmp);
    a.sort_by(f64::total_cmp);
    println!(
        "bench-failover summary: detect {:?} available {:?}",
        d.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>(),
        a.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (d) Recovery with Automatic failback.

const WINDOW: i32 = 20;

async fn failback(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    fx.create_workload(WORKLOAD, checkout(0, automatic(WINDOW)))
        .await?;
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let first_uid = fx
        .deployment(EKS, WORKLOAD)
        .await?
        .and_then(|d| d.metadata.uid)
        .ok_or("no Deployment in eks-use1")?;

    let outage = inject(fx.h, EKS, Fault::Stop).await?;
    let t = Instant::now();
    wait_placed(fx, &format!("{gke}=10"), REPLICAS, FAILOVER_BUDGET).await?;
    println!(
        "eks-use1 stopped; 10/10 on gke-euw1 after {:.1} s",
        secs(t.elapsed())
    );
    check_move(fx, &uid, "Failover", &eks, &gke).await?;

    // From here on, availability is read from the members every 200 ms.
    let sampler = fx.sampler(WORKLOAD, WORKLOAD, Duration::from_millis(200));
    let t_start = Instant::now();
    end(outage).await?;
    println!("eks-use1 started ({:.1} s)", secs(t_start.elapsed()));
    let removed = wait_removed(fx, EKS, &uid, CLEANED_WITHIN).await?;
    println!(
        "eks-use1's stale copies removed {:.1} s after it answered",
        secs(removed)
    );
    let mc = fx
        .wait_health(EKS, "Healthy", Duration::from_secs(90))
        .await?;
    let healthy_at = t_start.elapsed();
    let since = mc
        .status
        .as_ref()
        .and_then(|s| s.health_since.clone())
        .ok_or("eks-use1 Healthy without healthSince")?
        .0;
    let window_ends = SystemTime::from(since) + Duration::from_secs(WINDOW as u64);
    println!(
        "eks-use1 Healthy (seen {:.1} s after it was started; healthSince {since}); failback allowed from healthSince + {WINDOW} s",
        secs(healthy_at)
    );

    let back = format!("{eks}=10");
    let w = fx
        .wait_workload(
            WORKLOAD,
            &format!("failback to {back}, gke-euw1 emptied"),
            Duration::from_secs(WINDOW as u64 + 90),
            |w| placed_as(w, &back, REPLICAS),
        )
        .await?;
    fx.until(
        "gke-euw1's copies scaled down",
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || match fx.deployment(GKE, WORKLOAD).await? {
            None => Ok(()),
            Some(d) if replicas_of(&d) == Some(0) => Ok(()),
            Some(d) => Err(format!(
                "gke-euw1 Deployment {:?} replicas, {} available",
                replicas_of(&d),
                available_of(&d)
            )),
        },
    )
    .await?;
    let done = t_start.elapsed();
    // A few more samples after the end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop();
    all_available(fx, EKS, "eks-use1 after the failback").await?;

    // When did the failback start? The first sample where eks-use1 gets replicas again (a
    // Deployment other than the stale one, or the stale one after it was seen emptied), or
    // where the status leaves gke-euw1=10.
    let on_gke = format!("{gke}=10");
    let mut emptied = false;
    let mut start: Option<&Sample> = None;
    for s in &samples {
        match &s.eks {
            Ok(None) => emptied = true,
            Ok(Some(d)) if d.replicas == 0 => emptied = true,
            Ok(Some(d)) if d.uid != first_uid || emptied => {
                start = Some(s);
                break;
            }
            _ => {}
        }
        if let Ok(w) = &s.workload
            && w.placement.as_deref() != Some(on_gke.as_str())
        {
            start = Some(s);
            break;
        }
    }
    let start = start.ok_or("no sample shows the failback starting")?;
    let early = window_ends
        .duration_since(start.wall)
        .unwrap_or(Duration::ZERO);
    println!(
        "failback started {:.1} s after eks-use1 was started, {:.1} s after the window ended \
         (negative: before); completed {:.1} s after eks-use1 was started",
        secs(start.at.saturating_duration_since(t_start)),
        match start.wall.duration_since(window_ends) {
            Ok(d) => secs(d),
            Err(e) => -secs(e.duration()),
        },
        secs(done)
    );
    // healthSince has whole seconds (rounded down), so the window may end up to 1 s earlier
    // than computed here; nothing else is tolerated.
    ensure!(
        early <= Duration::from_secs(1),
        "the failback started {:.1} s before the stabilization window ended (sample: eks {:?}, workload {:?})",
        secs(early),
        start.eks,
        start.workload
    );
    // Nothing moved before: gke-euw1 kept its 10 replicas and the status its placement.
    for s in samples.iter().take_while(|s| s.at < start.at) {
        if let Ok(Some(g)) = &s.gke {
            ensure!(
                g.replicas == REPLICAS,
                "gke-euw1 had {} replicas {:.1} s after eks-use1 was started, before the failback",
                g.replicas,
                secs(s.at.saturating_duration_since(t_start))
            );
        }
    }

    // While the failback waited for its window, the workload said so.
    let pending: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.at >= t_start + healthy_at && s.at < start.at)
        .filter_map(|s| s.workload.as_ref().ok()?.failback_pending.clone())
        .collect();
    println!("FailbackPending while waiting for the window: {pending:?}");
    ensure!(
        pending.iter().any(|p| p.starts_with("True")),
        "FailbackPending never True between eks-use1 turning Healthy and the failback: {pending:?}"
    );

    // Availability, summed over both members, never below 10.
    let (mut min, mut at, mut unanswered) = (i32::MAX, Duration::ZERO, 0);
    for s in &samples {
        let gke_avail = match &s.gke {
            Ok(d) => d.as_ref().map_or(0, |d| d.available),
            Err(_) => {
                unanswered += 1;
                continue;
            }
        };
        // A stopped or restarting eks-use1 serves nothing.
        let eks_avail = match &s.eks {
            Ok(d) => d.as_ref().map_or(0, |d| d.available),
            Err(_) => 0,
        };
        if eks_avail + gke_avail < min {
            min = eks_avail + gke_avail;
            at = s.at.saturating_duration_since(t_start);
        }
    }
    println!(
        "availability over {} samples (every 200 ms, {} without an answer from gke-euw1): minimum {min} ({:.1} s after eks-use1 was started)",
        samples.len(),
        unanswered,
        secs(at)
    );
    ensure!(
        unanswered == 0,
        "{unanswered} samples without an answer from gke-euw1"
    );
    ensure!(
        min >= REPLICAS,
        "availability fell to {min} at {:.1} s after eks-use1 was started",
        secs(at)
    );
    println!("{}", describe(&w));
    ensure!(
        condition(
            &w.status.clone().unwrap_or_default().conditions,
            "FailbackPending"
        )
        .is_some_and(|c| c.status == "False"),
        "FailbackPending after the failback: {}",
        describe(&w)
    );
    let (_, events) = check_move(fx, &uid, "Failback", &gke, &eks).await?;
    println!("Events: {:?}", list(&events));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (e) Flapping.

const FLAP_FOR: Duration = Duration::from_secs(120);
const FLAP_PHASE: Duration = Duration::from_secs(5);

async fn flapping(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    fx.create_workload(WORKLOAD, checkout(0, automatic(WINDOW)))
        .await?;
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let first_uid = fx
        .deployment(EKS, WORKLOAD)
        .await?
        .and_then(|d| d.metadata.uid)
        .ok_or("no Deployment in eks-use1")?;
    let sampler = fx.sampler(WORKLOAD, WORKLOAD, Duration::from_millis(250));

    let t0 = Instant::now();
    let (mut cycles, mut startups) = (0, Vec::new());
    while t0.elapsed() < FLAP_FOR {
        let outage = inject(fx.h, EKS, Fault::Stop).await?;
        tokio::time::sleep(FLAP_PHASE).await;
        let t = Instant::now();
        end(outage).await?;
        startups.push(secs(t.elapsed()));
        fx.alive()?;
        tokio::time::sleep(FLAP_PHASE).await;
        cycles += 1;
    }
    let flapped = t0.elapsed();
    let mc = fx.member_cluster(EKS).await?;
    println!(
        "eks-use1 stopped and started {cycles} times in {:.1} s (down {} s, up {} s after it \
         answered; start took {:.1}-{:.1} s); now {} {}",
        secs(flapped),
        FLAP_PHASE.as_secs(),
        FLAP_PHASE.as_secs(),
        startups.iter().copied().fold(f64::MAX, f64::min),
        startups.iter().copied().fold(0.0, f64::max),
        health_of(&mc),
        ready_of(&mc)
    );
    let samples = sampler.stop();

    // The status' placement over time: eks=10, then at most one move to gke=10, never back.
    let mut placements: Vec<String> = Vec::new();
    for s in &samples {
        if let Ok(w) = &s.workload {
            let p = w.placement.clone().unwrap_or_default();
            if placements.last() != Some(&p) {
                placements.push(p);
            }
        }
    }
    println!("status.placement during the flapping: {placements:?}");
    let on_gke = format!("{gke}=10");
    let moved = placements.iter().position(|p| p == &on_gke);
    if let Some(i) = moved {
        ensure!(
            placements[i..].iter().all(|p| !p.contains(&eks)),
            "the placement went back to eks-use1 during the flapping: {placements:?}"
        );
    }
    let changes = placements.windows(2).count();
    ensure!(
        changes <= 1,
        "{changes} placement changes during the flapping: {placements:?}"
    );

    // Members: gke-euw1 never loses replicas once it has 10; eks-use1 never gets any back.
    let mut gke_full = false;
    let mut eks_emptied = false;
    for s in &samples {
        if let Ok(Some(g)) = &s.gke {
            if g.replicas == REPLICAS {
                gke_full = true;
            }
            ensure!(
                !gke_full || g.replicas == REPLICAS,
                "gke-euw1 went from 10 to {} replicas {:.1} s into the flapping",
                g.replicas,
                secs(s.at.saturating_duration_since(t0))
            );
        }
        match &s.eks {
            Ok(None) => eks_emptied = true,
            Ok(Some(e)) if e.replicas == 0 => eks_emptied = true,
            Ok(Some(e)) => ensure!(
                !eks_emptied && e.uid == first_uid,
                "eks-use1 got {} replicas back {:.1} s into the flapping (a failback)",
                e.replicas,
                secs(s.at.saturating_duration_since(t0))
            ),
            Err(_) => {}
        }
    }
    let started: BTreeSet<String> = samples
        .iter()
        .filter_map(|s| s.workload.as_ref().ok()?.last_failover_started.clone())
        .collect();
    println!(
        "lastFailover.startedAt values seen: {started:?}; eks-use1's copies removed during the flapping: {eks_emptied}"
    );
    ensure!(
        started.len() <= 1,
        "status.lastFailover.startedAt changed {} times: {started:?}",
        started.len()
    );
    let events = fx.events(&uid).await?;
    let count = |reason: &str| events.iter().filter(|e| e.reason == reason).count();
    println!("Events: {:?}", list(&events));
    ensure!(
        count("FailoverStarted") <= 1,
        "{} FailoverStarted Events",
        count("FailoverStarted")
    );
    ensure!(
        count("FailbackStarted") == 0,
        "{} FailbackStarted Events during the flapping",
        count("FailbackStarted")
    );
    // The workload ends up Available on gke-euw1, one move in its budget.
    let w = wait_placed(fx, &on_gke, REPLICAS, Duration::from_secs(30)).await?;
    let moves = w.status.as_ref().map_or(0, |s| s.recent_moves.len());
    ensure!(
        moves <= 1,
        "status.recentMoves has {moves} entries: {}",
        describe(&w)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (f) Every member unreachable at once.

async fn all_unreachable(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    fx.create_workload(WORKLOAD, checkout(2, automatic(WINDOW)))
        .await?;
    let placement = format!("{eks}=10,{gke}=2");
    let w = wait_placed(fx, &placement, REPLICAS + 2, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let mut before = Vec::new();
    for m in [EKS, GKE] {
        let mut placed = fx.placed(m).await?;
        placed.retain(|p| p.workload_uid == uid);
        placed.sort_by(|a, b| a.object.cmp(&b.object));
        before.push(placed);
    }
    println!("before: eks-use1 {:?}; gke-euw1 {:?}", before[0], before[1]);
    let dep_uid = |i: usize| {
        before[i]
            .iter()
            .find(|p| p.object == format!("Deployment/{WORKLOAD}"))
            .map(|p| p.uid.clone())
    };
    let expected = [
        (
            EKS,
            dep_uid(0).ok_or("no Deployment in eks-use1")?,
            REPLICAS,
        ),
        (GKE, dep_uid(1).ok_or("no Deployment in gke-euw1")?, 2),
    ];
    let sampler = fx.sampler(WORKLOAD, WORKLOAD, Duration::from_millis(250));

    let t0 = Instant::now();
    // Both at once: the two stops run concurrently.
    let (eks_out, gke_out) = tokio::join!(
        inject(fx.h, EKS, Fault::Stop),
        inject(fx.h, GKE, Fault::Stop)
    );
    let (eks_out, gke_out) = (eks_out?, gke_out?);
    println!("both members stopped within {:.2} s", secs(t0.elapsed()));
    for m in [EKS, GKE] {
        fx.wait_health(m, "Unhealthy", Duration::from_secs(30))
            .await?;
    }
    println!("both Unhealthy after {:.1} s", secs(t0.elapsed()));
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(t0.elapsed())).await;
    let w = fx.workload(WORKLOAD).await?;
    // Not asserted here: the samples below cover the outage too, and report every change.
    println!("while both are down: {}", describe(&w));

    let t_back = Instant::now();
    let (e, g) = tokio::join!(end(eks_out), end(gke_out));
    e?;
    g?;
    println!("both members started in {:.1} s", secs(t_back.elapsed()));
    for m in [EKS, GKE] {
        fx.wait_health(m, "Healthy", Duration::from_secs(60))
            .await?;
    }
    println!(
        "both Healthy again {:.1} s after the start; watching 20 s more",
        secs(t_back.elapsed())
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let samples = sampler.stop();

    // Every answer from a member showed the same Deployment with the same replicas, and the
    // status the same placement. Each change is reported once, with when it was seen.
    let mut answers = [0, 0];
    let mut changes: Vec<String> = Vec::new();
    let mut last: Vec<Option<String>> = vec![None, None, None];
    let mut note = |slot: usize, at: Duration, what: String, ok: bool| {
        if !ok && last[slot].as_deref() != Some(what.as_str()) {
            changes.push(format!("{:.1} s after the stop: {what}", secs(at)));
        }
        last[slot] = Some(what);
    };
    for s in &samples {
        let at = s.at.saturating_duration_since(t0);
        for (i, (m, uid, replicas)) in expected.iter().enumerate() {
            match s.member(m) {
                Ok(Some(d)) => {
                    answers[i] += 1;
                    let ok = &d.uid == uid && d.replicas == *replicas;
                    let what = format!("{m}: Deployment uid {} replicas {}", d.uid, d.replicas);
                    note(i, at, what, ok);
                }
                Ok(None) => note(i, at, format!("{m}: the Deployment is gone"), false),
                Err(_) => {}
            }
        }
        if let Ok(w) = &s.workload {
            let ok = w.placement.as_deref() == Some(placement.as_str());
            note(2, at, format!("status.placement {:?}", w.placement), ok);
        }
    }
    println!(
        "{} samples every 250 ms; answers: eks-use1 {}, gke-euw1 {}",
        samples.len(),
        answers[0],
        answers[1]
    );
    let mut afters = Vec::new();
    for m in [EKS, GKE] {
        let mut after = fx.placed(m).await?;
        after.retain(|p| p.workload_uid == uid);
        after.sort_by(|a, b| a.object.cmp(&b.object));
        afters.push(after);
    }
    let w = fx.workload(WORKLOAD).await?;
    let events = fx.events(&uid).await?;
    let moves: Vec<String> = list(&events)
        .into_iter()
        .filter(|e| e.contains("Failover") || e.contains("Failback"))
        .collect();
    changes.extend(moves.iter().map(|m| format!("Event {m}")));
    ensure!(
        changes.is_empty() && afters == before,
        "expected Deployment uids and replicas {expected:?} and placement {placement} throughout; \
         changes seen: {changes:#?}\nobjects before {before:?}\nafter {afters:?}\nworkload now: {}\nEvents: {:?}",
        describe(&w),
        list(&events)
    );
    let w = wait_placed(fx, &placement, REPLICAS + 2, Duration::from_secs(30)).await?;
    println!("after: {}", describe(&w));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (g) The operator SIGKILLed in the middle of a failover.

async fn sigkill(fx: &mut Fleet) -> TestResult {
    let (eks, gke) = (fx.mc(EKS), fx.mc(GKE));
    fx.create_workload(WORKLOAD, checkout(0, automatic(300)))
        .await?;
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let sampler = fx.sampler(WORKLOAD, WORKLOAD, Duration::from_millis(200));

    let t0 = Instant::now();
    let outage = inject(fx.h, EKS, Fault::Stop).await?;
    // Kill the operator as soon as gke-euw1's Deployment grows.
    let grown = fx
        .until(
            "gke-euw1's Deployment grows",
            Duration::from_secs(30),
            Duration::from_millis(25),
            async || match fx.deployment(GKE, WORKLOAD).await? {
                Some(d) if replicas_of(&d).unwrap_or(0) > 0 => Ok(d),
                other => Err(format!("{:?}", other.map(|d| replicas_of(&d)))),
            },
        )
        .await?;
    fx.with_operator(|op| op.kill())?;
    let killed_at = t0.elapsed();
    let w = fx.workload(WORKLOAD).await?;
    println!(
        "gke-euw1's Deployment seen with {:?} replicas ({} available) {:.2} s after the stop; operator SIGKILLed; status then: {}",
        replicas_of(&grown),
        available_of(&grown),
        secs(killed_at),
        describe(&w)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t_restart = Instant::now();
    fx.with_operator(|op| op.start_again())?;
    let wanted = format!("{gke}=10");
    wait_placed(fx, &wanted, REPLICAS, Duration::from_secs(60)).await?;
    all_available(fx, GKE, "gke-euw1").await?;
    println!(
        "restarted operator: {wanted} 10/10 Available {:.1} s after the restart ({:.1} s after the stop)",
        secs(t_restart.elapsed()),
        secs(t0.elapsed())
    );

    let (_, events) = check_move(fx, &uid, "Failover", &eks, &gke).await?;
    println!("Events: {:?}", list(&events));

    // eks-use1 returns: its copies go, nothing else stays behind.
    end(outage).await?;
    let removed = wait_removed(fx, EKS, &uid, CLEANED_WITHIN).await?;
    println!(
        "eks-use1 back; its copies removed {:.1} s later",
        secs(removed)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = sampler.stop();

    // No replicas beyond the surge: gke-euw1 at most 10, eks-use1 (the held source) at most 10.
    let mut peak = (0, 0);
    for s in &samples {
        let e = s
            .eks
            .as_ref()
            .ok()
            .and_then(|d| d.as_ref())
            .map_or(0, |d| d.replicas);
        let g = s
            .gke
            .as_ref()
            .ok()
            .and_then(|d| d.as_ref())
            .map_or(0, |d| d.replicas);
        peak = (peak.0.max(e), peak.1.max(g));
        ensure!(
            e <= REPLICAS && g <= REPLICAS,
            "{:.1} s after the stop: eks-use1 {e} and gke-euw1 {g} replicas (surge is 10 + the held 10)",
            secs(s.at.saturating_duration_since(t0))
        );
    }
    println!(
        "{} samples: peak spec.replicas eks-use1 {}, gke-euw1 {}",
        samples.len(),
        peak.0,
        peak.1
    );
    // No orphan: whatever Bascule placed in the workloads' namespace belongs to this workload,
    // and only gke-euw1 holds it.
    let existing: BTreeSet<String> = fx
        .workloads()
        .list_metadata(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|w| w.metadata.uid)
        .collect();
    for m in [EKS, GKE] {
        let placed = fx.placed(m).await?;
        let orphans: Vec<_> = placed
            .iter()
            .filter(|p| !existing.contains(&p.workload_uid))
            .collect();
        ensure!(orphans.is_empty(), "{m}: orphaned objects {orphans:?}");
        let objects: Vec<String> = placed
            .iter()
            .map(|p| format!("{}={:?}", p.object, p.replicas))
            .collect();
        println!("{m}: {objects:?}");
        let want: Vec<String> = if m == EKS {
            vec![]
        } else {
            vec![
                format!("Deployment/{WORKLOAD}=Some({REPLICAS})"),
                format!("Service/{WORKLOAD}=None"),
            ]
        };
        ensure!(
            objects == want,
            "{m}: objects {objects:?}, expected {want:?}"
        );
    }
    fx.alive()?;
    let starts = fx.with_operator(|op| op.starts());
    ensure!(starts == 2, "the operator was started {starts} times");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (i): a workload deleted while a member is unreachable.

/// The checkout runs on eks-use1 beside `keeper`, which may only run there. eks-use1 stops; the
/// checkout fails over to gke-euw1 and is then deleted: the finalizer does not wait for the
/// unreachable member (the hub forgets the workload at once, gke-euw1 is cleaned). When eks-use1
/// returns, the orphan collection removes the checkout's copies there, and only those: the
/// keeper (held in place during the outage) keeps the same objects, uids and replicas.
async fn orphans_collected(fx: &mut Fleet) -> TestResult {
    const KEEPER: &str = "keeper";
    const KEEPER_REPLICAS: i32 = 3;
    let eks = fx.mc(EKS);
    fx.create_workload(WORKLOAD, checkout(0, json!({"mode": "Manual"})))
        .await?;
    let mut keeper = checkout(0, json!({"mode": "Manual"}));
    rename(&mut keeper, KEEPER);
    keeper["replicas"] = json!(KEEPER_REPLICAS);
    keeper["placement"]["tiers"] = json!([
        {"name": "eks-us-east-1", "providers": ["aws"], "regions": ["us-east-1"]}
    ]);
    fx.create_workload(KEEPER, keeper).await?;
    let w = wait_placed(fx, &format!("{eks}=10"), REPLICAS, PLACED_WITHIN).await?;
    let uid = uid_of(&w)?;
    let kept = fx
        .wait_workload(KEEPER, "placed and Ready", PLACED_WITHIN, |w| {
            placed_as(w, &format!("{eks}={KEEPER_REPLICAS}"), KEEPER_REPLICAS)
        })
        .await?;
    let keeper_uid = uid_of(&kept)?;
    let keeper_objects = async |fx: &Fleet| -> Result<Vec<crate::support::fleet::Placed>, String> {
        let mut p = fx.placed(EKS).await?;
        p.retain(|p| p.workload_uid == keeper_uid);
        p.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(p)
    };
    let keeper_before = keeper_objects(fx).await?;
    ensure!(
        keeper_before.len() == 2,
        "keeper on eks-use1: {keeper_before:?}"
    );
    let mut checkout_on_eks = fx.placed(EKS).await?;
    checkout_on_eks.retain(|p| p.workload_uid == uid);
    ensure!(
        checkout_on_eks.len() == 2,
        "checkout on eks-use1: {checkout_on_eks:?}"
    );

    let outage = inject(fx.h, EKS, Fault::Stop).await?;
    fx.wait_health(EKS, "Unhealthy", Duration::from_secs(30))
        .await?;
    let gke = fx.mc(GKE);
    wait_placed(fx, &format!("{gke}=10"), REPLICAS, FAILOVER_BUDGET).await?;
    println!("eks-use1 stopped; checkout failed over to gke-euw1");

    let t_delete = Instant::now();
    fx.workloads().delete(WORKLOAD, &Default::default()).await?;
    fx.until(
        "the checkout gone from the hub",
        Duration::from_secs(15),
        Duration::from_millis(100),
        async || match fx.workloads().get_opt(WORKLOAD).await {
            Ok(None) => Ok(()),
            Ok(Some(w)) => Err(describe(&w)),
            Err(e) => Err(e.to_string()),
        },
    )
    .await?;
    let deleted_in = t_delete.elapsed();
    let gke_left: Vec<_> = fx
        .placed(GKE)
        .await?
        .into_iter()
        .filter(|p| p.workload_uid == uid)
        .collect();
    ensure!(
        gke_left.is_empty(),
        "the workload is gone but gke-euw1 still holds {gke_left:?}"
    );
    println!(
        "checkout deleted while eks-use1 is down: gone from the hub {:.1} s later, gke-euw1 clean",
        secs(deleted_in)
    );

    let t_back = Instant::now();
    end(outage).await?;
    let started = t_back.elapsed();
    let removed = wait_removed(fx, EKS, &uid, CLEANED_WITHIN).await?;
    println!(
        "eks-use1 started in {:.1} s; the checkout's copies there removed {:.1} s later",
        secs(started),
        secs(removed)
    );
    fx.wait_health(EKS, "Healthy", Duration::from_secs(60))
        .await?;
    let keeper_after = keeper_objects(fx).await?;
    ensure!(
        keeper_after == keeper_before,
        "keeper's objects changed: before {keeper_before:?}, after {keeper_after:?}"
    );
    let w = fx.workload(KEEPER).await?;
    placed_as(&w, &format!("{eks}={KEEPER_REPLICAS}"), KEEPER_REPLICAS)?;
    println!("keeper untouched on eks-use1: {keeper_after:?}");
    Ok(())
}
