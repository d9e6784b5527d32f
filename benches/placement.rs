//! Criterion benchmark of the placement engine (docs/benchmarks.md, "Placement engine").
//!
//! - `full_replacement/10000x100`: one iteration decides 10,000 workloads (a mix of Divided,
//!   Failover and Duplicated specs, 1–50 replicas) over 100 clusters, each workload starting from
//!   the placement a first pass gave it while every cluster was healthy, with
//!   `Rebalance::Sticky`. Between the passes a few clusters turned unhealthy or got tainted, so
//!   the measured pass moves replicas as a controller would after a health change.
//! - `single/{divided,failover}/{10,100,1000}`: one decision at that many clusters.
//!
//! Every input (specs, snapshots, current placements) is built before the timed loop; only
//! `decide` is timed. Run with `cargo bench --bench placement`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use bascule::api::{ClusterHealth, MultiCloudWorkloadSpec, Provider, Taint};
use bascule::placement::{ClusterSnapshot, Rebalance, Replicas, Request, Resources, decide};
use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const WORKLOADS: usize = 10_000;
const CLUSTERS: usize = 100;

/// SplitMix64: a deterministic generator, so every run benchmarks the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    /// True once in `n` draws.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next() as usize % items.len()]
    }
}

fn now() -> Timestamp {
    "2026-10-20T08:00:00Z".parse().unwrap()
}

const AWS_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
const GCP_REGIONS: [&str; 3] = ["europe-west1", "us-central1", "asia-east1"];
const OTHER_REGIONS: [&str; 2] = ["onprem-par", "onprem-fra"];

/// `n` healthy clusters: 40 % aws, 40 % gcp, 20 % other, over 8 regions, labelled with an
/// environment and a team; every third has capacity information (room for 2 to 64 replicas).
fn healthy_clusters(n: usize) -> Vec<ClusterSnapshot> {
    let mut rng = Rng(n as u64);
    (0..n)
        .map(|i| {
            let (provider, region, prefix) = match i % 5 {
                0 | 1 => (Provider::Aws, AWS_REGIONS[i % 3], "eks"),
                2 | 3 => (Provider::Gcp, GCP_REGIONS[i % 3], "gke"),
                _ => (Provider::Other, OTHER_REGIONS[i % 2], "k8s"),
            };
            let mut c =
                ClusterSnapshot::healthy(&format!("{prefix}-{region}-{i:04}"), provider, region);
            let env = if i % 4 == 3 { "staging" } else { "prod" };
            c.labels.insert("env".to_string(), env.to_string());
            c.labels
                .insert("team".to_string(), format!("team-{}", i % 7));
            c.labels
                .insert("topology.bascule.io/region".to_string(), region.to_string());
            if i % 3 == 0 {
                // Room for 2 to 64 replicas of 250m: tight enough to bind now and then.
                let cpu_millis = rng.range(500, 16_000);
                c.available = Some(Resources {
                    cpu_millis,
                    memory_bytes: cpu_millis << 22,
                });
            }
            c
        })
        .collect()
}

/// The same clusters after a bad hour: 3 % unhealthy, 2 % cordoned (`NoSchedule`), 1 % drained
/// (`NoExecute`), and 2 % whose health is not trusted yet (recovering).
fn after_incident(clusters: &[ClusterSnapshot]) -> Vec<ClusterSnapshot> {
    let since: Timestamp = "2026-10-20T07:30:00Z".parse().unwrap();
    let mut out = clusters.to_vec();
    for (i, c) in out.iter_mut().enumerate() {
        if i % 33 == 1 {
            c.health = ClusterHealth::Unhealthy;
            c.health_since = Some(since);
        } else if i % 50 == 11 {
            c.taints
                .push("maintenance=kernel:NoSchedule".parse::<Taint>().unwrap());
        } else if i % 100 == 23 {
            c.taints
                .push("decommission:NoExecute".parse::<Taint>().unwrap());
        } else if i % 50 == 37 {
            c.health = ClusterHealth::Recovering;
            c.health_since = Some(since);
        }
    }
    out
}

/// A spec from its `placement` and `replicas`, with a Deployment template that requests CPU
/// and memory (so that capacity information matters).
fn spec(replicas: u64, placement: Value) -> MultiCloudWorkloadSpec {
    serde_json::from_value(json!({
        "replicas": replicas,
        "placement": placement,
        "template": {"manifests": [{
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx",
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]}}}
        }]},
    }))
    .expect("benchmark spec is a MultiCloudWorkloadSpec")
}

/// Divided over 2–3 provider tiers with weights, sometimes with spread constraints, per-cluster
/// bounds or a region restriction.
fn divided(rng: &mut Rng, replicas: u64) -> MultiCloudWorkloadSpec {
    let mut tiers = vec![
        json!({"name": "aws", "providers": ["aws"], "weight": rng.range(1, 10)}),
        json!({"name": "gcp", "providers": ["gcp"], "weight": rng.range(1, 10)}),
    ];
    if rng.one_in(2) {
        tiers.push(json!({"name": "other", "providers": ["other"], "weight": rng.range(1, 5)}));
    }
    if rng.one_in(3) {
        tiers[0]["regions"] = json!([rng.pick(&AWS_REGIONS), rng.pick(&AWS_REGIONS)]);
    }
    let mut placement = json!({"mode": "Divided", "tiers": tiers});
    match rng.next() % 4 {
        0 => placement["spread"] = json!({"minProviders": 2, "maxClusters": rng.range(3, 12)}),
        1 => placement["clusterReplicas"] = json!({"maxReplicas": rng.range(5, 20)}),
        _ => {}
    }
    if rng.one_in(5) {
        placement["tolerations"] =
            json!([{"key": "maintenance", "operator": "Exists", "effect": "NoSchedule"}]);
    }
    spec(replicas, placement)
}

/// Failover between two tiers (one provider's region, then another provider), with standby
/// replicas in the second.
fn failover(rng: &mut Rng, replicas: u64) -> MultiCloudWorkloadSpec {
    let (first, second) = if rng.one_in(2) {
        (
            json!({"name": "primary", "providers": ["aws"], "regions": [rng.pick(&AWS_REGIONS)]}),
            json!({"name": "secondary", "providers": ["gcp"]}),
        )
    } else {
        (
            json!({"name": "primary", "providers": ["gcp"], "regions": [rng.pick(&GCP_REGIONS)]}),
            json!({"name": "secondary", "providers": ["aws", "other"]}),
        )
    };
    let standby = rng.range(1, replicas.clamp(1, 5));
    spec(
        replicas,
        json!({"mode": "Failover", "tiers": [first, second], "standbyReplicas": standby}),
    )
}

/// Duplicated on the clusters a label selector picks, at most a few replicas each.
fn duplicated(rng: &mut Rng, replicas: u64) -> MultiCloudWorkloadSpec {
    let team = format!("team-{}", rng.range(0, 6));
    let selector = if rng.one_in(2) {
        json!({"matchLabels": {"env": "prod", "team": team}})
    } else {
        json!({"matchLabels": {"env": "prod"},
               "matchExpressions": [{"key": "team", "operator": "In",
                                     "values": [team, "team-0"]}]})
    };
    spec(
        replicas.min(5),
        json!({"mode": "Duplicated", "tiers": [{"name": "prod", "labelSelector": selector}]}),
    )
}

/// 10,000 workloads: 45 % Divided, 35 % Failover, 20 % Duplicated; 1–50 replicas.
fn workloads(n: usize) -> Vec<MultiCloudWorkloadSpec> {
    let mut rng = Rng(42);
    (0..n)
        .map(|_| {
            let replicas = rng.range(1, 50);
            match rng.next() % 20 {
                0..=8 => divided(&mut rng, replicas),
                9..=15 => failover(&mut rng, replicas),
                _ => duplicated(&mut rng, replicas),
            }
        })
        .collect()
}

fn request<'a>(
    spec: &'a MultiCloudWorkloadSpec,
    clusters: &'a [ClusterSnapshot],
    current: &'a Replicas,
    none: &'a BTreeMap<String, Timestamp>,
) -> Request<'a> {
    Request {
        spec,
        clusters,
        current,
        rebalance: Rebalance::Sticky,
        now: now(),
        app_unavailable_since: none,
    }
}

/// The placement each workload got while every cluster was healthy.
fn first_pass(specs: &[MultiCloudWorkloadSpec], clusters: &[ClusterSnapshot]) -> Vec<Replicas> {
    let (empty, none) = (Replicas::new(), BTreeMap::new());
    specs
        .iter()
        .map(|s| decide(&request(s, clusters, &empty, &none)).placement)
        .collect()
}

fn full_replacement(c: &mut Criterion) {
    let before = healthy_clusters(CLUSTERS);
    let after = after_incident(&before);
    let specs = workloads(WORKLOADS);
    let current = first_pass(&specs, &before);
    let none = BTreeMap::new();
    let requests: Vec<Request> = specs
        .iter()
        .zip(&current)
        .map(|(s, cur)| request(s, &after, cur, &none))
        .collect();

    let mut group = c.benchmark_group("full_replacement");
    // One iteration takes up to a second (the target): ten flat samples keep the run short.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    group.bench_function(
        BenchmarkId::from_parameter(format!("{WORKLOADS}x{CLUSTERS}")),
        |b| {
            b.iter(|| {
                // Every decision is used (and dropped) inside the timed loop.
                let mut used_clusters = 0usize;
                for req in &requests {
                    used_clusters += decide(black_box(req)).placement.len();
                }
                black_box(used_clusters)
            })
        },
    );
    group.finish();
}

fn single(c: &mut Criterion) {
    let mut group = c.benchmark_group("single");
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let none = BTreeMap::new();
    for n in [10, 100, 1_000] {
        let before = healthy_clusters(n);
        let after = after_incident(&before);
        // The same two specs at every size: Divided over three weighted tiers with a spread
        // constraint, Failover over two tiers with standby; 30 replicas each.
        let specs = [
            (
                "divided",
                spec(
                    30,
                    json!({"mode": "Divided", "spread": {"minProviders": 2}, "tiers": [
                        {"name": "aws", "providers": ["aws"], "weight": 5},
                        {"name": "gcp", "providers": ["gcp"], "weight": 3},
                        {"name": "other", "providers": ["other"], "weight": 2}]}),
                ),
            ),
            (
                "failover",
                spec(
                    30,
                    json!({"mode": "Failover", "standbyReplicas": 3, "tiers": [
                        {"name": "primary", "providers": ["aws"], "regions": ["us-east-1"]},
                        {"name": "secondary", "providers": ["gcp"]}]}),
                ),
            ),
        ];
        for (mode, s) in &specs {
            let current = first_pass(std::slice::from_ref(s), &before).remove(0);
            let req = request(s, &after, &current, &none);
            group.bench_with_input(BenchmarkId::new(*mode, n), &req, |b, req| {
                b.iter(|| decide(black_box(req)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, full_replacement, single);
criterion_main!(benches);
