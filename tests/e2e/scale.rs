//! Fleet-scale failover: many workloads placed at once, then one member stopped (docs/e2e.md,
//! docs/benchmarks.md "Fleet failover").
//!
//! | trial | what it shows |
//! |---|---|
//! | `fleet_of_50_fails_over` | 50 workloads (Deployment, Service, ConfigMap each) placed, eks-use1 stopped: all Available on gke-euw1 within a generous per-workload budget |
//! | `bench_fleet` (ignored) | the same with N workloads over every harness member; `e2e/bench-fleet` runs it and prints the figures |
//! | `bench_member_direct` (ignored) | no operator: the same objects created straight in one member at the same concurrency, until Available — the harness' own limit |
//!
//! Every figure is read from the members' Deployments, Services and ConfigMaps through watches
//! (one per kind and member), not by polling: an object counts from the moment its watch event
//! arrives. "Applied" means the surviving members hold every object of the workload with the
//! workload's replicas; "Available" means their Deployments report that many available replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::ensure;
use crate::support::fleet::{EKS, Fleet, FleetOptions, GKE, MANAGED_BY, health_of};
use crate::support::http::{free_port, http_get};
use crate::support::metrics::RequestCounts;
use crate::support::{Harness, TestResult, Topology, trial, unique_name};

/// Workloads created at once by the test (the hub's create rate is not what is measured).
const CREATE_CONCURRENCY: usize = 32;

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial("scale::fleet_of_50_fails_over", |h| async move {
            fleet(h, Settings::smoke()).await
        }),
        trial("scale::bench_fleet", |h| async move {
            fleet(h, Settings::bench(h)?).await
        })
        .with_ignored_flag(true),
        trial("scale::bench_member_direct", |h| async move {
            direct(h, Settings::bench(h)?).await
        })
        .with_ignored_flag(true),
    ]
}

/// What one run does.
#[derive(Debug, Clone)]
struct Settings {
    workloads: usize,
    /// Harness members given a MemberCluster; the first is stopped.
    members: Vec<String>,
    /// Budgets asserted (the smoke trial); the benchmark asserts only that it completes.
    placed_within: Duration,
    failed_over_within: Duration,
    /// After placement the operator is SIGKILLed and started again: for this long afterwards it
    /// may write nothing to any member, and every member must stay Healthy.
    restart_window: Duration,
    label: &'static str,
}

impl Settings {
    /// The smoke version in every e2e run: 50 workloads, generous budgets (0.6 s a workload
    /// on top of 30 s: a regression to ~2 workloads/s fails it, machine noise does not).
    fn smoke() -> Settings {
        let n = 50;
        Settings {
            workloads: n,
            members: vec![EKS.to_string(), GKE.to_string()],
            placed_within: Duration::from_secs(30) + Duration::from_millis(600 * n as u64),
            failed_over_within: Duration::from_secs(30) + Duration::from_millis(600 * n as u64),
            restart_window: Duration::from_secs(20),
            label: "fleet50",
        }
    }

    /// `BASCULE_FLEET_WORKLOADS` (default 1,000) over every harness member.
    fn bench(h: &Harness) -> TestResult<Settings> {
        let n: usize = match std::env::var("BASCULE_FLEET_WORKLOADS") {
            Ok(s) => s
                .parse()
                .map_err(|_| format!("BASCULE_FLEET_WORKLOADS={s:?} is not a number"))?,
            Err(_) => 1000,
        };
        ensure!(n > 0, "BASCULE_FLEET_WORKLOADS must be at least 1");
        let members = h.members().to_vec();
        ensure!(
            members.len() >= 2 && members[0] == EKS,
            "the fleet benchmark stops {EKS} and needs another member (BASCULE_E2E_MEMBERS={})",
            members.join(",")
        );
        Ok(Settings {
            workloads: n,
            members,
            // Generous: the benchmark reports; it fails only when something never completes.
            placed_within: Duration::from_secs(120) + Duration::from_millis(500 * n as u64),
            failed_over_within: Duration::from_secs(120) + Duration::from_millis(500 * n as u64),
            // Long enough for the restarted operator to reconcile every workload once.
            restart_window: Duration::from_secs(20) + Duration::from_millis(30 * n as u64),
            label: "benchfleet",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet's workloads.

/// Workload `i`: 1–2 replicas; every tenth Divided over all members, the others Failover with
/// the stopped member first and one survivor (round robin) next, so that a stop moves every
/// workload and the survivors share the load.
fn spec(i: usize, members: &[String], clusters: &BTreeMap<String, String>) -> (String, Value) {
    let name = format!("w{i:05}");
    let replicas = 1 + (i % 2) as i32;
    let mc = |m: &str| clusters[m].clone();
    let survivors = &members[1..];
    let placement = if i % 10 == 9 {
        json!({"mode": "Divided", "tiers": members.iter().map(|m| json!({"clusterNames": [mc(m)]})).collect::<Vec<_>>()})
    } else {
        let next = &survivors[i % survivors.len()];
        let rest: Vec<String> = survivors
            .iter()
            .filter(|m| *m != next)
            .map(|m| mc(m))
            .collect();
        let mut tiers = vec![
            json!({"name": "primary", "clusterNames": [mc(&members[0])]}),
            json!({"name": "secondary", "clusterNames": [mc(next)]}),
        ];
        if !rest.is_empty() {
            tiers.push(json!({"name": "others", "clusterNames": rest}));
        }
        json!({"mode": "Failover", "tiers": tiers})
    };
    let spec = json!({
        "replicas": replicas,
        "placement": placement,
        "template": {"manifests": manifests(&name)},
    });
    (name, spec)
}

/// The three objects of one workload.
fn manifests(name: &str) -> Value {
    json!([
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"containers": [{
                                   "name": "app",
                                   "image": "registry.example.com/shop/app:1.0.0",
                                   "ports": [{"containerPort": 8080}],
                                   "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-config")},
         "data": {"LOG_LEVEL": "info"}},
    ])
}

// ---------------------------------------------------------------------------------------------
// What the members hold, from watches.

/// One member's objects, by workload name (the Deployment's name).
#[derive(Default, Debug, Clone)]
struct Held {
    /// Deployment name → (spec.replicas, status.availableReplicas).
    deployments: BTreeMap<String, (i32, i32)>,
    services: BTreeSet<String>,
    /// By workload name (the ConfigMap's name without `-config`).
    configs: BTreeSet<String>,
}

impl Held {
    /// Replicas of `w` here, counting only a complete set of objects.
    fn replicas(&self, w: &str) -> (i32, i32) {
        match self.deployments.get(w) {
            Some(&(r, a)) if self.services.contains(w) && self.configs.contains(w) => (r, a),
            _ => (0, 0),
        }
    }
}

/// Every member's objects, as the watches last reported them, plus when each workload first
/// reached a state (applied / available) since the last `mark`.
#[derive(Default)]
struct Board {
    members: BTreeMap<String, Held>,
    /// Members counted (the stopped one is dropped from it at the stop).
    counted: BTreeSet<String>,
    /// Workload → replicas wanted.
    wanted: BTreeMap<String, i32>,
    since: Option<Instant>,
    applied: BTreeMap<String, Duration>,
    available: BTreeMap<String, Duration>,
}

impl Board {
    /// Starts timing again from now, over these members.
    fn mark(&mut self, counted: &[String]) {
        self.since = Some(Instant::now());
        self.counted = counted.iter().cloned().collect();
        self.applied.clear();
        self.available.clear();
        let names: Vec<String> = self.wanted.keys().cloned().collect();
        for w in names {
            self.check(&w);
        }
    }

    /// Keeps only the workloads with replicas in `member` (those a stop there moves).
    fn only_held_in(&mut self, member: &str) {
        let held = self.members.get(member).cloned().unwrap_or_default();
        self.wanted
            .retain(|w, _| held.deployments.get(w).is_some_and(|&(r, _)| r > 0));
    }

    fn check(&mut self, w: &str) {
        let (Some(since), Some(&want)) = (self.since, self.wanted.get(w)) else {
            return;
        };
        let (mut r, mut a) = (0, 0);
        for m in &self.counted {
            if let Some(held) = self.members.get(m) {
                let (hr, ha) = held.replicas(w);
                r += hr;
                a += ha;
            }
        }
        let now = since.elapsed();
        if r >= want {
            self.applied.entry(w.to_string()).or_insert(now);
        }
        if a >= want && r >= want {
            self.available.entry(w.to_string()).or_insert(now);
        }
    }

    fn update(&mut self, member: &str, f: impl FnOnce(&mut Held) -> Option<String>) {
        let held = self.members.entry(member.to_string()).or_default();
        if let Some(w) = f(held) {
            self.check(&w);
        }
    }
}

/// Watches Deployments, Services and ConfigMaps labelled managed-by=bascule (or all, for the
/// direct benchmark) in `namespace` of every member, into the board, until dropped.
struct Watches {
    board: Arc<Mutex<Board>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Watches {
    fn start(
        members: &BTreeMap<String, Client>,
        namespace: &str,
        labelled: bool,
        wanted: BTreeMap<String, i32>,
    ) -> Watches {
        let board = Arc::new(Mutex::new(Board {
            wanted,
            ..Board::default()
        }));
        let mut config = watcher::Config::default();
        if labelled {
            config = config.labels(&format!("{MANAGED_BY}=bascule"));
        }
        let mut tasks = Vec::new();
        for (m, client) in members {
            let d: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let s: Api<Service> = Api::namespaced(client.clone(), namespace);
            let c: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            tasks.push(tokio::spawn(follow(
                d,
                config.clone(),
                board.clone(),
                m.clone(),
                |held, d: &Deployment, gone| {
                    let name = d.name_any();
                    if gone {
                        held.deployments.remove(&name);
                    } else {
                        let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        let a = d
                            .status
                            .as_ref()
                            .and_then(|s| s.available_replicas)
                            .unwrap_or(0);
                        held.deployments.insert(name.clone(), (r, a));
                    }
                    Some(name)
                },
            )));
            tasks.push(tokio::spawn(follow(
                s,
                config.clone(),
                board.clone(),
                m.clone(),
                |held, s: &Service, gone| {
                    let name = s.name_any();
                    if gone {
                        held.services.remove(&name);
                    } else {
                        held.services.insert(name.clone());
                    }
                    Some(name)
                },
            )));
            tasks.push(tokio::spawn(follow(
                c,
                config.clone(),
                board.clone(),
                m.clone(),
                |held, c: &ConfigMap, gone| {
                    let name = c.name_any().strip_suffix("-config")?.to_string();
                    if gone {
                        held.configs.remove(&name);
                    } else {
                        held.configs.insert(name.clone());
                    }
                    Some(name)
                },
            )));
        }
        Watches { board, tasks }
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until every wanted workload reached `state` since the last mark; the times.
    async fn wait_all(
        &self,
        what: &str,
        timeout: Duration,
        state: fn(&Board) -> &BTreeMap<String, Duration>,
        alive: impl Fn() -> Result<(), String>,
    ) -> TestResult<Vec<Duration>> {
        let start = Instant::now();
        loop {
            alive()?;
            {
                let b = self.board();
                let done = state(&b);
                if done.len() == b.wanted.len() {
                    let mut t: Vec<Duration> = done.values().copied().collect();
                    t.sort();
                    return Ok(t);
                }
                if start.elapsed() > timeout {
                    let missing: Vec<&String> =
                        b.wanted.keys().filter(|w| !done.contains_key(*w)).collect();
                    return Err(format!(
                        "{what}: {} of {} workloads after {timeout:?}; missing e.g. {:?}",
                        done.len(),
                        b.wanted.len(),
                        &missing[..missing.len().min(5)]
                    )
                    .into());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One watch into the board; errors (a stopped member) are retried by the watcher's backoff.
async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    board: Arc<Mutex<Board>>,
    member: String,
    apply: fn(&mut Held, &K, bool) -> Option<String>,
) where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    use kube::runtime::WatchStreamExt;
    let mut stream = watcher(api, config).default_backoff().boxed();
    while let Some(event) = stream.next().await {
        let Ok(event) = event else { continue };
        let mut b = board.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                b.update(&member, |held| apply(held, &o, false))
            }
            watcher::Event::Delete(o) => b.update(&member, |held| apply(held, &o, true)),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The operator's figures.

/// CPU seconds (user + system) and peak RSS (MiB) of a process.
fn process_usage(pid: u32) -> Result<(f64, u64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let rest = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Ok((ticks as f64 / 100.0, hwm_kib / 1024))
}

/// CPU seconds used so far by each control-plane component of each cluster ("hub/etcd", ...),
/// from the pid files kwokctl keeps.
fn component_cpu(h: &Harness) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let names = std::iter::once(h.hub().to_string()).chain(h.members().iter().cloned());
    for cluster in names {
        for c in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok-controller",
        ] {
            let pidfile = h
                .dir()
                .join(format!("kwok/clusters/{cluster}/pids/{c}.pid"));
            let cpu = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .and_then(|pid| process_usage(pid).ok())
                .map(|(cpu, _)| cpu)
                .unwrap_or(0.0);
            out.insert(format!("{cluster}/{c}"), cpu);
        }
    }
    out
}

/// What each component used between two [`component_cpu`] readings, largest first.
fn cpu_used(after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>) -> String {
    let mut used: Vec<(f64, &String)> = after
        .iter()
        .map(|(k, v)| (v - before.get(k).copied().unwrap_or(0.0), k))
        .filter(|(v, _)| *v >= 0.05)
        .collect();
    used.sort_by(|a, b| b.0.total_cmp(&a.0));
    let sum: f64 = used.iter().map(|(v, _)| v).sum();
    let top: Vec<String> = used
        .iter()
        .take(8)
        .map(|(v, k)| format!("{k} {v:.1}"))
        .collect();
    format!("{sum:.1} s ({})", top.join(", "))
}

/// The hub API server's writes between two scrapes, largest first ("PATCH
/// multicloudworkloads/status.bascule.dev 2000, ...") and their total.
fn hub_writes(after: &RequestCounts, before: &RequestCounts) -> String {
    let Ok(d) = after.since(before) else {
        return "unknown (the hub's counters were reset)".into();
    };
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &d.writes().0 {
        *by.entry(format!("{} {}", k.verb, k.resource_name()))
            .or_default() += v;
    }
    let mut v: Vec<(u64, String)> = by.into_iter().map(|(k, n)| (n, k)).collect();
    v.sort_by(|a, b| b.cmp(a));
    let total: u64 = v.iter().map(|(n, _)| n).sum();
    let top: Vec<String> = v.iter().take(6).map(|(n, k)| format!("{k} {n}")).collect();
    format!("{total} ({})", top.join(", "))
}

/// `bascule_member_requests_total` from the operator's /metrics: verb → count, summed over
/// clusters.
async fn member_requests(addr: &str) -> TestResult<BTreeMap<String, u64>> {
    let (code, body) = http_get(addr, "/metrics").await?;
    ensure!(code == 200, "GET /metrics: {code}");
    let mut out = BTreeMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("bascule_member_requests_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").ok_or("bad metrics line")?;
        let verb = labels
            .split(',')
            .find_map(|kv| kv.strip_prefix("verb=\""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or("?");
        let v: f64 = value.trim().parse().map_err(|_| "bad metrics value")?;
        *out.entry(verb.to_string()).or_default() += v as u64;
    }
    Ok(out)
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Nearest-rank percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// The run.

async fn fleet(h: &'static Harness, s: Settings) -> TestResult {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    // Probes as in the failover trials (every 2 s, Unhealthy after 3 failures).
    let mut options = FleetOptions::new(s.label);
    options.group = "scale";
    options.members = s.members.clone();
    options.fast_cleanup = true;
    options.healthy_within = Duration::from_secs(60);
    options.operator_args = vec![format!("--http-addr={addr}")];
    // Quiet by default (debug lines would cost the operator time); BASCULE_LOG overrides it.
    options.operator_log = Some(std::env::var("BASCULE_LOG").unwrap_or_else(|_| "info".into()));
    Fleet::run(h, options, async |fx| run_fleet(fx, &s, &addr).await).await
}

async fn run_fleet(fx: &Fleet, s: &Settings, addr: &str) -> TestResult {
    let n = s.workloads;
    let stopped = s.members[0].clone();
    let survivors: Vec<String> = s.members[1..].to_vec();
    let clusters: BTreeMap<String, String> =
        s.members.iter().map(|m| (m.clone(), fx.mc(m))).collect();
    let specs: Vec<(String, Value)> = (0..n).map(|i| spec(i, &s.members, &clusters)).collect();
    let wanted: BTreeMap<String, i32> = specs
        .iter()
        .map(|(name, spec)| (name.clone(), spec["replicas"].as_i64().unwrap_or(1) as i32))
        .collect();
    // Watches need the default timeouts (a watch is a long read).
    let mut members = BTreeMap::new();
    for m in &s.members {
        members.insert(m.clone(), fx.h.client(m).await?);
    }
    let watches = Watches::start(&members, &fx.app_ns, true, wanted);
    let mut pid = fx
        .with_operator(|op| op.pid())
        .ok_or("the operator is not running")?;
    let alive = || fx.alive();

    // Placement: every workload created at once (CREATE_CONCURRENCY at a time).
    let requests_0 = member_requests(addr).await?;
    let (cpu_0, _) = process_usage(pid)?;
    let clusters_0 = component_cpu(fx.h);
    let hub_0 = RequestCounts::scrape(&fx.hub).await?;
    watches.board().mark(&s.members);
    let t0 = Instant::now();
    let created =
        futures::stream::iter(specs.iter().map(|(name, spec)| async move {
            fx.create_workload(name, spec.clone()).await.map(drop)
        }))
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<()>>();
    created.await?;
    let create_s = secs(t0.elapsed());
    let applied = watches
        .wait_all("placed", s.placed_within, |b| &b.applied, alive)
        .await?;
    let available = watches
        .wait_all(
            "placed and Available",
            s.placed_within,
            |b| &b.available,
            alive,
        )
        .await?;
    let placed_max = *applied.last().expect("n > 0");
    let place_rate = n as f64 / secs(placed_max);
    let requests_1 = member_requests(addr).await?;
    let (cpu_1, rss_placed) = process_usage(pid)?;
    println!(
        "placement: control planes used {}; hub writes {}",
        cpu_used(&component_cpu(fx.h), &clusters_0),
        hub_writes(&RequestCounts::scrape(&fx.hub).await?, &hub_0)
    );
    let placing = diff(&requests_1, &requests_0);
    println!(
        "placed: {n} workloads created in {create_s:.1} s; applied p50 {:.1} s max {:.1} s ({place_rate:.1} workloads/s); Available max {:.1} s; operator cpu {:.1} s, peak rss {rss_placed} MiB; member requests {} ({:.1} per workload: {placing:?})",
        secs(pct(&applied, 50.0)),
        secs(placed_max),
        secs(*available.last().expect("n > 0")),
        cpu_1 - cpu_0,
        total(&placing),
        total(&placing) as f64 / n as f64,
    );
    // Let the hub settle: statuses written, every member Healthy.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A restart with the fleet placed changes nothing.
    pid = restart_quietly(fx, &members, addr, s.restart_window).await?;

    // The outage.
    let requests_2 = member_requests(addr).await?;
    let (cpu_2, _) = process_usage(pid)?;
    let clusters_2 = component_cpu(fx.h);
    let hub_2 = RequestCounts::scrape(&fx.hub).await?;
    let h = fx.h;
    let stop = stopped.clone();
    let moving = {
        let mut b = watches.board();
        b.only_held_in(&stopped);
        b.wanted.len()
    };
    ensure!(moving > 0, "no workload has replicas in {stopped}");
    let outage = tokio::task::spawn_blocking(move || h.stop(&stop)).await??;
    watches.board().mark(&survivors);
    let t_stop = Instant::now();
    fx.wait_health(&stopped, "Unhealthy", Duration::from_secs(60))
        .await?;
    let detect = t_stop.elapsed();
    let applied = watches
        .wait_all(
            "applied on the survivors",
            s.failed_over_within,
            |b| &b.applied,
            alive,
        )
        .await?;
    let available = watches
        .wait_all(
            "Available on the survivors",
            s.failed_over_within,
            |b| &b.available,
            alive,
        )
        .await?;
    let requests_3 = member_requests(addr).await?;
    let (cpu_3, rss) = process_usage(pid)?;
    println!(
        "failover: control planes used {}; hub writes {}",
        cpu_used(&component_cpu(fx.h), &clusters_2),
        hub_writes(&RequestCounts::scrape(&fx.hub).await?, &hub_2)
    );
    let failing = diff(&requests_3, &requests_2);
    println!(
        "failover of the {moving} workloads with replicas in {stopped}: detected {:.1} s after the stop; applied p50 {:.1} s p99 {:.1} s max {:.1} s; Available p50 {:.1} s p90 {:.1} s p99 {:.1} s max {:.1} s; operator cpu {:.1} s; member requests {} ({:.1} per workload: {failing:?})",
        secs(detect),
        secs(pct(&applied, 50.0)),
        secs(pct(&applied, 99.0)),
        secs(*applied.last().expect("n > 0")),
        secs(pct(&available, 50.0)),
        secs(pct(&available, 90.0)),
        secs(pct(&available, 99.0)),
        secs(*available.last().expect("n > 0")),
        cpu_3 - cpu_2,
        total(&failing),
        total(&failing) as f64 / moving as f64,
    );
    // The counters restarted with the operator: placement and failover are summed.
    let all: BTreeMap<String, u64> =
        placing
            .iter()
            .chain(&failing)
            .fold(BTreeMap::new(), |mut m, (k, v)| {
                *m.entry(k.clone()).or_default() += v;
                m
            });
    let rss = rss.max(rss_placed);
    println!(
        "fleet N={n} M={} place_rate={place_rate:.1} applied_max={:.2} failover_p50={:.2} failover_p99={:.2} failover_max={:.2} detect={:.2} rss_mib={rss} cpu_s={:.1} member_requests_per_workload={:.1}",
        s.members.len(),
        secs(*applied.last().expect("n > 0")),
        secs(pct(&available, 50.0)),
        secs(pct(&available, 99.0)),
        secs(*available.last().expect("n > 0")),
        secs(detect),
        (cpu_1 - cpu_0) + (cpu_3 - cpu_2),
        total(&all) as f64 / n as f64,
    );
    drop(watches);
    tokio::task::spawn_blocking(move || outage.end()).await??;
    Ok(())
}

/// The operator SIGKILLed and started again with the fleet placed: every member is reported
/// Healthy within 20 s and throughout `window` (sync traffic cannot starve the probes), and the
/// new process sends no write to any member in that time (its own `bascule_member_requests_total`
/// by verb, which counts every request it sends: the members' API servers also count what other
/// trials' namespace deletions cause, so their counts are printed, not asserted). Returns the
/// new process' pid.
async fn restart_quietly(
    fx: &Fleet,
    members: &BTreeMap<String, Client>,
    addr: &str,
    window: Duration,
) -> TestResult<u32> {
    let mut before = BTreeMap::new();
    for (m, c) in members {
        before.insert(m.clone(), RequestCounts::scrape(c).await?);
    }
    let hub_0 = RequestCounts::scrape(&fx.hub).await?;
    fx.with_operator(|op| op.kill())?;
    fx.with_operator(|op| op.start_again())?;
    let pid = fx.with_operator(|op| op.pid()).ok_or("not restarted")?;
    let t0 = Instant::now();
    for m in members.keys() {
        fx.wait_health(m, "Healthy", Duration::from_secs(20))
            .await?;
    }
    let healthy = t0.elapsed();
    let mut not_healthy = Vec::new();
    while t0.elapsed() < window {
        fx.alive()?;
        for m in members.keys() {
            let seen = health_of(&fx.member_cluster(m).await?);
            if seen != "Healthy" {
                not_healthy.push(format!("{m} {seen} at {:.1} s", secs(t0.elapsed())));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let sent = member_requests(addr).await?;
    let writes: BTreeMap<&String, &u64> = sent
        .iter()
        .filter(|(verb, n)| {
            ["create", "update", "patch", "delete"].contains(&verb.as_str()) && **n > 0
        })
        .collect();
    let mut seen_by_members = Vec::new();
    for (m, c) in members {
        let fg = RequestCounts::scrape(c)
            .await?
            .since(&before[m])?
            .foreground_writes()
            .filter(|k| k.resource != "events");
        seen_by_members.push(format!("{m} {}", fg.total()));
    }
    println!(
        "restart: every member reported Healthy {:.1} s after the start and throughout the {:.0} s after it; the operator sent the members {sent:?}; writes counted by the members' API servers (anyone's): {}; hub writes {}",
        secs(healthy),
        secs(window),
        seen_by_members.join(", "),
        hub_writes(&RequestCounts::scrape(&fx.hub).await?, &hub_0)
    );
    ensure!(
        writes.is_empty() && not_healthy.is_empty(),
        "after a restart with the fleet placed: member writes by the operator {writes:?}; members not Healthy {not_healthy:?}"
    );
    Ok(pid)
}

/// The harness' own limit: the fleet's objects for one member created straight in it (no
/// operator, no hub), CREATE_CONCURRENCY workloads at a time, until every Deployment is
/// Available. Prints `direct N=.. applied_max=.. available_p50=.. available_max=..`.
async fn direct(h: &'static Harness, s: Settings) -> TestResult {
    let member = s.members[1].clone();
    let client = h.client(&member).await?;
    let ns = unique_name("scale-direct");
    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let result = async {
        let n = s.workloads;
        let wanted: BTreeMap<String, i32> = (0..n)
            .map(|i| (format!("w{i:05}"), 1 + (i % 2) as i32))
            .collect();
        let members = BTreeMap::from([(member.clone(), client.clone())]);
        let watches = Watches::start(&members, &ns, false, wanted.clone());
        // Wait for the watches' first lists before the clock starts.
        tokio::time::sleep(Duration::from_secs(1)).await;
        watches.board().mark(std::slice::from_ref(&member));
        let dynamic = |kind: &str| -> Api<kube::api::DynamicObject> {
            let (group, version, plural) = match kind {
                "Deployment" => ("apps", "v1", "deployments"),
                "Service" => ("", "v1", "services"),
                _ => ("", "v1", "configmaps"),
            };
            let ar = kube::api::ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            };
            Api::namespaced_with(client.clone(), &ns, &ar)
        };
        let creates = wanted.iter().map(|(name, &replicas)| {
            let objects = manifests(name);
            let dynamic = &dynamic;
            async move {
                for mut o in objects.as_array().cloned().unwrap_or_default() {
                    if o["kind"] == "Deployment" {
                        o["spec"]["replicas"] = json!(replicas);
                    }
                    let kind = o["kind"].as_str().unwrap_or_default().to_string();
                    let obj: kube::api::DynamicObject = serde_json::from_value(o)?;
                    dynamic(&kind).create(&PostParams::default(), &obj).await?;
                }
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            }
        });
        futures::stream::iter(creates)
            .buffer_unordered(CREATE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let applied = watches
            .wait_all("created", s.placed_within, |b| &b.applied, || Ok(()))
            .await?;
        let available = watches
            .wait_all("Available", s.placed_within, |b| &b.available, || Ok(()))
            .await?;
        println!(
            "direct N={n} member={member} applied_max={:.2} available_p50={:.2} available_p99={:.2} available_max={:.2}",
            secs(*applied.last().expect("n > 0")),
            secs(pct(&available, 50.0)),
            secs(pct(&available, 99.0)),
            secs(*available.last().expect("n > 0")),
        );
        Ok(())
    }
    .await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    result
}
