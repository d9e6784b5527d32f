//! Engine tests: hand-checked numbers per mode, then properties over random inputs.
//! The full test run sets `PROPTEST_CASES=10000`.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::api::{ClusterHealth, MultiCloudWorkloadSpec, Provider, Taint};

const T0: &str = "2026-10-20T07:00:00Z";

fn now() -> Timestamp {
    "2026-10-20T08:00:00Z".parse().unwrap()
}

/// A spec from YAML: `replicas` and `placement` given, a minimal Deployment template added.
fn spec(yaml: &str) -> MultiCloudWorkloadSpec {
    let mut v: serde_json::Value = serde_saphyr::from_str(yaml).expect("test spec parses");
    v["template"] = serde_json::json!({"manifests": [{
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx",
            "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}}]}}}
    }]});
    serde_json::from_value(v).expect("test spec is a MultiCloudWorkloadSpec")
}

fn aws(name: &str) -> ClusterSnapshot {
    ClusterSnapshot::healthy(name, Provider::Aws, "us-east-1")
}
fn gcp(name: &str) -> ClusterSnapshot {
    ClusterSnapshot::healthy(name, Provider::Gcp, "europe-west1")
}
fn unhealthy(mut c: ClusterSnapshot) -> ClusterSnapshot {
    c.health = ClusterHealth::Unhealthy;
    c.health_since = Some(T0.parse().unwrap());
    c
}
fn tainted(mut c: ClusterSnapshot, taint: &str) -> ClusterSnapshot {
    c.taints.push(taint.parse::<Taint>().unwrap());
    c
}

fn replicas(pairs: &[(&str, u32)]) -> Replicas {
    pairs.iter().map(|&(n, r)| (n.to_string(), r)).collect()
}

fn run(
    spec: &MultiCloudWorkloadSpec,
    clusters: &[ClusterSnapshot],
    current: &Replicas,
    rebalance: Rebalance,
) -> Decision {
    let none = BTreeMap::new();
    decide(&Request {
        spec,
        clusters,
        current,
        rebalance,
        now: now(),
        app_unavailable_since: &none,
    })
}

fn place(spec: &MultiCloudWorkloadSpec, clusters: &[ClusterSnapshot]) -> Decision {
    run(spec, clusters, &Replicas::new(), Rebalance::Sticky)
}

fn reason<'a>(d: &'a Decision, cluster: &str) -> &'a str {
    &d.clusters
        .iter()
        .find(|c| c.name == cluster)
        .expect("cluster in decision")
        .reason
}

const SEVEN_THREE: &str = "
replicas: 10
placement:
  mode: Divided
  tiers:
    - {name: aws, providers: [aws], weight: 7}
    - {name: gcp, providers: [gcp], weight: 3}
";

#[test]
fn divided_seven_three() {
    let d = place(&spec(SEVEN_THREE), &[aws("eks-use1"), gcp("gke-euw1")]);
    assert_eq!(d.placement, replicas(&[("eks-use1", 7), ("gke-euw1", 3)]));
    assert_eq!(d.outcome, Outcome::Satisfied);
    assert_eq!(reason(&d, "eks-use1"), "tier 1 (aws), weight 7");
    assert_eq!(d.clusters[0].score, 70);
}

#[test]
fn divided_thirds_tie_break_by_tier_then_name() {
    let three_tiers = spec(
        "replicas: 10\nplacement:\n  tiers:\n    - clusterNames: [c]\n    - clusterNames: [b]\n    - clusterNames: [a]\n",
    );
    let d = place(&three_tiers, &[aws("a"), aws("b"), aws("c")]);
    assert_eq!(
        d.placement,
        replicas(&[("c", 4), ("b", 3), ("a", 3)]),
        "the first tier takes the extra replica"
    );
    let one_tier = spec("replicas: 10");
    let d = place(&one_tier, &[gcp("c"), aws("a"), aws("b")]);
    assert_eq!(
        d.placement,
        replicas(&[("a", 4), ("b", 3), ("c", 3)]),
        "within a tier, the first name takes it"
    );
}

#[test]
fn divided_tier_weight_is_shared_by_its_clusters() {
    let d = place(
        &spec(SEVEN_THREE),
        &[aws("eks-a"), aws("eks-b"), gcp("gke-a")],
    );
    assert_eq!(
        d.placement,
        replicas(&[("eks-a", 4), ("eks-b", 3), ("gke-a", 3)])
    );
}

#[test]
fn duplicated_gives_every_cluster_the_full_count() {
    let s = spec("replicas: 5\nplacement: {mode: Duplicated}");
    let d = place(&s, &[aws("a"), gcp("b"), aws("c")]);
    assert_eq!(d.placement, replicas(&[("a", 5), ("b", 5), ("c", 5)]));
    assert_eq!(d.total(), 15);
}

const FAILOVER: &str = "
replicas: 10
placement:
  mode: Failover
  tiers:
    - {name: eks, clusterNames: [eks-use1]}
    - {name: gke, clusterNames: [gke-euw1]}
";

#[test]
fn failover_prefers_the_first_tier() {
    let d = place(&spec(FAILOVER), &[aws("eks-use1"), gcp("gke-euw1")]);
    assert_eq!(d.placement, replicas(&[("eks-use1", 10)]));
    assert_eq!(
        reason(&d, "gke-euw1"),
        "tier 2 (gke): fallback while tier 1 (eks) is healthy"
    );
    assert_eq!(d.clusters[0].score, 100);
    assert_eq!(d.clusters[1].score, 50);
}

#[test]
fn failover_moves_everything_when_the_preferred_cluster_fails() {
    let s = spec(FAILOVER);
    let before = replicas(&[("eks-use1", 10)]);
    let d = run(
        &s,
        &[unhealthy(aws("eks-use1")), gcp("gke-euw1")],
        &before,
        Rebalance::Sticky,
    );
    assert_eq!(d.placement, replicas(&[("gke-euw1", 10)]));
    assert_eq!(reason(&d, "eks-use1"), format!("unhealthy since {T0}"));
}

#[test]
fn failback_is_an_explicit_input() {
    let s = spec(FAILOVER);
    let after_failover = replicas(&[("gke-euw1", 10)]);
    let healthy = [aws("eks-use1"), gcp("gke-euw1")];
    let stay = run(&s, &healthy, &after_failover, Rebalance::Sticky);
    assert_eq!(
        stay.placement, after_failover,
        "no failback without permission"
    );
    assert!(
        stay.notes.iter().any(|n| n.contains("failback pending")),
        "{:?}",
        stay.notes
    );
    assert_eq!(stay.preferred, "eks-use1=10");
    assert_eq!(reason(&stay, "eks-use1"), "tier 1 (eks): failback pending");
    let back = run(&s, &healthy, &after_failover, Rebalance::ToPreferred);
    assert_eq!(back.placement, replicas(&[("eks-use1", 10)]));
}

#[test]
fn failover_standby_goes_to_the_next_tier() {
    let mut s = spec(FAILOVER);
    s.placement.standby_replicas = Some(2);
    let d = place(&s, &[aws("eks-use1"), gcp("gke-euw1")]);
    assert_eq!(d.placement, replicas(&[("eks-use1", 10), ("gke-euw1", 2)]));
    // On failure the standby replicas absorb part of the move: 8 more, not 10.
    let d2 = run(
        &s,
        &[unhealthy(aws("eks-use1")), gcp("gke-euw1")],
        &d.placement,
        Rebalance::Sticky,
    );
    assert_eq!(d2.placement, replicas(&[("gke-euw1", 10)]));
    assert!(
        d2.notes.iter().any(|n| n.contains("standby")),
        "{:?}",
        d2.notes
    );
}

/// Every member lost a few seconds apart (e2e scenario f): whichever is seen down first, and
/// in whatever order they come back, the placement in force stays `EKS=10,GKE=2`, so nothing
/// is removed anywhere on their return.
#[test]
fn failover_standby_survives_a_staggered_total_outage() {
    let mut s = spec(FAILOVER);
    s.placement.standby_replicas = Some(2);
    let before = replicas(&[("eks-use1", 10), ("gke-euw1", 2)]);
    let recovering = |mut c: ClusterSnapshot| {
        c.health = ClusterHealth::Recovering;
        c
    };
    let steps: [(&str, [ClusterSnapshot; 2]); 4] = [
        (
            "standby's cluster seen down first",
            [aws("eks-use1"), unhealthy(gcp("gke-euw1"))],
        ),
        (
            "both down",
            [unhealthy(aws("eks-use1")), unhealthy(gcp("gke-euw1"))],
        ),
        (
            "standby's cluster healthy again first",
            [recovering(aws("eks-use1")), gcp("gke-euw1")],
        ),
        (
            "active cluster healthy again first",
            [aws("eks-use1"), recovering(gcp("gke-euw1"))],
        ),
    ];
    for (what, clusters) in steps {
        let d = run(&s, &clusters, &before, Rebalance::Sticky);
        assert_eq!(d.placement, before, "{what}: {d:?}");
    }
    // Seen down first, the standby stays, and says why.
    let d = run(
        &s,
        &[aws("eks-use1"), unhealthy(gcp("gke-euw1"))],
        &before,
        Rebalance::Sticky,
    );
    assert!(
        reason(&d, "gke-euw1").contains("its standby has nowhere else to go; keeps 2 replica(s)"),
        "{}",
        reason(&d, "gke-euw1")
    );
    // With another healthy cluster in a later tier, the standby moves there instead.
    let mut three = spec(
        "
replicas: 10
placement:
  mode: Failover
  standbyReplicas: 2
  tiers:
    - clusterNames: [eks-use1]
    - clusterNames: [gke-euw1, gke-usc1]
",
    );
    three.failover.cluster_toleration_seconds = 0;
    let d = run(
        &three,
        &[aws("eks-use1"), unhealthy(gcp("gke-euw1")), gcp("gke-usc1")],
        &before,
        Rebalance::Sticky,
    );
    assert_eq!(
        d.placement,
        replicas(&[("eks-use1", 10), ("gke-usc1", 2)]),
        "{d:?}"
    );
}

#[test]
fn fail_static_when_no_cluster_is_healthy() {
    let s = spec(FAILOVER);
    let current = replicas(&[("eks-use1", 10)]);
    let d = run(
        &s,
        &[unhealthy(aws("eks-use1")), unhealthy(gcp("gke-euw1"))],
        &current,
        Rebalance::Sticky,
    );
    assert_eq!(d.placement, current);
    assert_eq!(d.outcome, Outcome::FailStatic);
    assert!(d.notes[0].contains("fail static"));
    assert!(reason(&d, "eks-use1").ends_with("kept (fail static)"));
}

#[test]
fn zero_replicas_with_no_eligible_cluster_is_satisfied() {
    // Issue 12 step B: this used to be Unschedulable (exit 3 in `bascule plan`), although
    // nothing was asked for.
    let mut s = spec(FAILOVER);
    s.replicas = 0;
    let down = [unhealthy(aws("eks-use1")), unhealthy(gcp("gke-euw1"))];
    let d = run(&s, &down, &Replicas::new(), Rebalance::Sticky);
    assert_eq!(d.outcome, Outcome::Satisfied);
    assert!(d.placement.is_empty());
    assert_eq!(d.notes, ["replicas is 0: nothing to place"]);
    // Replicas asked for and nowhere to go is still Unschedulable.
    let d = run(&spec(FAILOVER), &down, &Replicas::new(), Rebalance::Sticky);
    assert_eq!(d.outcome, Outcome::Unschedulable);
}

#[test]
fn taints_cordon_and_drain() {
    let s = spec("replicas: 10");
    let current = replicas(&[("a", 5), ("b", 5)]);
    let cordoned = [
        tainted(aws("a"), "maintenance:NoSchedule"),
        gcp("b"),
        gcp("c"),
    ];
    let d = run(&s, &cordoned, &current, Rebalance::ToPreferred);
    assert_eq!(
        d.placement,
        replicas(&[("a", 5), ("b", 3), ("c", 2)]),
        "a cordon keeps, receives nothing"
    );
    assert_eq!(
        reason(&d, "a"),
        "tainted maintenance:NoSchedule; keeps 5 replica(s), receives no new ones"
    );

    let drained = [
        tainted(aws("a"), "maintenance=now:NoExecute"),
        gcp("b"),
        gcp("c"),
    ];
    let d = run(&s, &drained, &current, Rebalance::Sticky);
    assert_eq!(d.placement, replicas(&[("b", 5), ("c", 5)]));
    assert_eq!(reason(&d, "a"), "tainted maintenance=now:NoExecute");

    let mut tolerant = s.clone();
    tolerant.placement.tolerations = vec![
        serde_json::from_value(serde_json::json!({"key": "maintenance", "operator": "Exists"}))
            .unwrap(),
    ];
    let d = run(&tolerant, &drained, &current, Rebalance::Sticky);
    assert_eq!(d.placement, current, "a tolerated drain moves nothing");
}

#[test]
fn filtered_clusters_say_why() {
    let s =
        spec("replicas: 3\nplacement:\n  tiers:\n    - {providers: [aws], regions: [us-east-1]}\n");
    let mut other_region = aws("eks-usw2");
    other_region.region = Some("us-west-2".into());
    let d = place(&s, &[aws("eks-use1"), gcp("gke-euw1"), other_region]);
    assert_eq!(d.placement, replicas(&[("eks-use1", 3)]));
    assert_eq!(
        reason(&d, "gke-euw1"),
        "matches no tier: provider gcp not aws in tier 1"
    );
    assert_eq!(
        reason(&d, "eks-usw2"),
        "matches no tier: region us-west-2 not us-east-1 in tier 1"
    );
}

#[test]
fn spread_min_providers_wins_over_max_clusters() {
    let s = spec(
        "replicas: 10\nplacement:\n  spread: {minProviders: 2, maxClusters: 2}\n  tiers:\n    - {providers: [aws], weight: 9}\n    - {providers: [gcp], weight: 1}\n",
    );
    let d = place(&s, &[aws("a1"), aws("a2"), aws("a3"), gcp("g1")]);
    assert_eq!(d.placement, replicas(&[("a1", 9), ("g1", 1)]));
    assert_eq!(d.outcome, Outcome::Satisfied);
    assert_eq!(
        reason(&d, "a2"),
        "tier 1: not selected (spread.maxClusters)"
    );
}

#[test]
fn min_providers_unsatisfiable_is_degraded_not_refused() {
    let s = spec("replicas: 4\nplacement:\n  spread: {minProviders: 2}\n");
    let d = place(&s, &[aws("a1"), aws("a2")]);
    assert_eq!(d.total(), 4);
    assert_eq!(d.outcome, Outcome::Degraded);
    assert!(
        d.notes[0].starts_with("spread.minProviders=2 not met"),
        "{:?}",
        d.notes
    );
}

#[test]
fn min_clusters_forces_a_replica_onto_a_low_weight_cluster() {
    let s = spec(
        "replicas: 3\nplacement:\n  spread: {minClusters: 3}\n  tiers:\n    - {clusterNames: [a], weight: 100}\n    - {weight: 1}\n",
    );
    let d = place(&s, &[aws("a"), aws("b"), gcp("c")]);
    assert_eq!(d.placement, replicas(&[("a", 1), ("b", 1), ("c", 1)]));
}

#[test]
fn per_cluster_bounds() {
    let s = spec("replicas: 10\nplacement:\n  clusterReplicas: {minReplicas: 2, maxReplicas: 4}\n");
    let d = place(&s, &[aws("a"), gcp("b")]);
    assert_eq!(d.placement, replicas(&[("a", 4), ("b", 4)]));
    assert_eq!(d.outcome, Outcome::Degraded);
    assert!(reason(&d, "a").ends_with("at maxReplicas 4"));
    let skewed = spec(
        "replicas: 10\nplacement:\n  clusterReplicas: {minReplicas: 3}\n  tiers:\n    - {clusterNames: [a], weight: 99}\n    - {clusterNames: [b], weight: 1}\n",
    );
    let d = place(&skewed, &[aws("a"), gcp("b")]);
    assert_eq!(d.placement, replicas(&[("a", 7), ("b", 3)]));
}

#[test]
fn capacity_limits_a_cluster() {
    let s = spec("replicas: 10");
    let mut small = aws("a");
    small.available = Some(Resources {
        cpu_millis: 2000,
        memory_bytes: 64 << 30,
    }); // 4 × 500m
    let d = place(&s, &[small, gcp("b")]);
    assert_eq!(d.placement, replicas(&[("a", 4), ("b", 6)]));
    assert!(
        reason(&d, "a").contains("capacity limits it to 4"),
        "{}",
        reason(&d, "a")
    );
}

#[test]
fn single_failure_moves_only_the_failed_clusters_replicas() {
    let s = spec("replicas: 10");
    let before = replicas(&[("a", 4), ("b", 3), ("c", 3)]);
    let d = run(
        &s,
        &[aws("a"), unhealthy(aws("b")), gcp("c")],
        &before,
        Rebalance::Sticky,
    );
    assert_eq!(d.placement, replicas(&[("a", 5), ("c", 5)]));
}

#[test]
fn vanished_cluster_is_evicted() {
    let s = spec("replicas: 6");
    let d = run(
        &s,
        &[aws("a")],
        &replicas(&[("a", 3), ("gone", 3)]),
        Rebalance::Sticky,
    );
    assert_eq!(d.placement, replicas(&[("a", 6)]));
    assert_eq!(reason(&d, "gone"), "MemberCluster not found");
}

#[test]
fn unhealthy_within_toleration_holds_and_disabled_failover_never_moves() {
    let mut s = spec("replicas: 4");
    s.failover.cluster_toleration_seconds = 7200; // 2 h; the cluster failed 1 h ago
    let current = replicas(&[("a", 2), ("b", 2)]);
    let clusters = [unhealthy(aws("a")), gcp("b")];
    let d = run(&s, &clusters, &current, Rebalance::Sticky);
    assert_eq!(d.placement, current);
    assert!(
        reason(&d, "a").contains("tolerated until 2026-10-20T09:00:00Z"),
        "{}",
        reason(&d, "a")
    );
    s.failover.cluster_toleration_seconds = 0;
    s.failover.enabled = false;
    let d = run(&s, &clusters, &current, Rebalance::Sticky);
    assert_eq!(d.placement, current);
    assert!(reason(&d, "a").contains("failover disabled"));
}

#[test]
fn application_failover_after_toleration() {
    let s = spec(SEVEN_THREE); // applicationTolerationSeconds defaults to 300
    let current = replicas(&[("eks-use1", 7), ("gke-euw1", 3)]);
    let clusters = [aws("eks-use1"), gcp("gke-euw1")];
    let mut since = BTreeMap::new();
    since.insert(
        "gke-euw1".to_string(),
        "2026-10-20T07:58:00Z".parse().unwrap(),
    ); // 2 min ago
    let req = |since: &BTreeMap<String, Timestamp>| {
        decide(&Request {
            spec: &s,
            clusters: &clusters,
            current: &current,
            rebalance: Rebalance::Sticky,
            now: now(),
            app_unavailable_since: since,
        })
    };
    assert_eq!(req(&since).placement, current, "within toleration");
    since.insert("gke-euw1".to_string(), T0.parse().unwrap()); // 1 h ago
    let d = req(&since);
    assert_eq!(d.placement, replicas(&[("eks-use1", 10)]));
    assert!(reason(&d, "gke-euw1").starts_with("workload unavailable here since"));
}

#[test]
fn recovering_and_unknown_clusters_hold() {
    let s = spec("replicas: 6");
    let mut rec = aws("a");
    rec.health = ClusterHealth::Recovering;
    let mut unknown = gcp("b");
    unknown.health = ClusterHealth::Unknown;
    let d = place(&s, &[rec, unknown, gcp("c")]);
    assert_eq!(d.placement, replicas(&[("c", 6)]));
    assert!(reason(&d, "a").starts_with("recovering"));
    assert!(reason(&d, "b").starts_with("health unknown"));
}

#[test]
fn scale_down_removes_from_the_least_preferred_first() {
    let s = spec(SEVEN_THREE.replace("replicas: 10", "replicas: 5").as_str());
    let d = run(
        &s,
        &[aws("eks-use1"), gcp("gke-euw1")],
        &replicas(&[("eks-use1", 7), ("gke-euw1", 3)]),
        Rebalance::Sticky,
    );
    assert_eq!(d.placement, replicas(&[("eks-use1", 4), ("gke-euw1", 1)]));
}

#[test]
fn spec_change_moves_as_little_as_the_new_spec_allows() {
    // 7/3 → 5/5 with ToPreferred: exactly 2 replicas move.
    let s = spec(
        &SEVEN_THREE
            .replace("weight: 7", "weight: 5")
            .replace("weight: 3", "weight: 5"),
    );
    let d = run(
        &s,
        &[aws("eks-use1"), gcp("gke-euw1")],
        &replicas(&[("eks-use1", 7), ("gke-euw1", 3)]),
        Rebalance::ToPreferred,
    );
    assert_eq!(d.placement, replicas(&[("eks-use1", 5), ("gke-euw1", 5)]));
}

// ---------------------------------------------------------------------------------------------
// Properties

#[derive(Clone)]
struct Case {
    spec: MultiCloudWorkloadSpec,
    clusters: Vec<ClusterSnapshot>,
    current: Replicas,
    rebalance: Rebalance,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "replicas={} placement={} failover.enabled={}",
            self.spec.replicas,
            serde_json::to_string(&self.spec.placement).unwrap(),
            self.spec.failover.enabled
        )?;
        for c in &self.clusters {
            writeln!(
                f,
                "  {} {:?} {:?} {:?} taints={:?} labels={:?} room={:?}",
                c.name,
                c.provider,
                c.region,
                c.health,
                c.taints.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                c.labels,
                c.available.map(|a| a.cpu_millis / 500)
            )?;
        }
        write!(
            f,
            "  current={:?} rebalance={:?}",
            self.current, self.rebalance
        )
    }
}

const NAMES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

fn arb_cluster(name: &'static str) -> impl Strategy<Value = ClusterSnapshot> {
    (
        prop_oneof![Just(Some(Provider::Aws)), Just(Some(Provider::Gcp)), Just(Some(Provider::Other)), Just(None)],
        prop_oneof![Just("r1"), Just("r2")],
        prop_oneof![
            6 => Just(ClusterHealth::Healthy),
            2 => Just(ClusterHealth::Unhealthy),
            1 => Just(ClusterHealth::Recovering),
            1 => Just(ClusterHealth::Unknown),
        ],
        prop_oneof![8 => Just(None), 1 => Just(Some("m:NoSchedule")), 1 => Just(Some("m:NoExecute"))],
        prop_oneof![Just("x"), Just("y")],
        prop_oneof![4 => Just(None), 1 => (0u64..8).prop_map(Some)],
    )
        .prop_map(move |(provider, region, health, taint, env, room)| ClusterSnapshot {
            name: name.to_string(),
            provider,
            region: Some(region.to_string()),
            labels: [("env".to_string(), env.to_string())].into(),
            health,
            health_since: Some(T0.parse().unwrap()),
            taints: taint.map(|t| vec![t.parse().unwrap()]).unwrap_or_default(),
            available: room.map(|n| Resources { cpu_millis: n * 500, memory_bytes: 1 << 40 }),
        })
}

fn arb_spec() -> impl Strategy<Value = MultiCloudWorkloadSpec> {
    let tier = (
        proptest::sample::subsequence(vec!["aws", "gcp", "other"], 0..=2),
        proptest::sample::subsequence(vec!["r1", "r2"], 0..=1),
        proptest::option::of(prop_oneof![Just("x"), Just("y")]),
        1i32..10,
    )
        .prop_map(|(providers, regions, env, weight)| {
            let mut t =
                serde_json::json!({"providers": providers, "regions": regions, "weight": weight});
            if let Some(env) = env {
                t["labelSelector"] = serde_json::json!({"matchLabels": {"env": env}});
            }
            t
        });
    (
        prop_oneof![Just("Divided"), Just("Duplicated"), Just("Failover")],
        0i32..40,
        proptest::collection::vec(tier, 0..4),
        proptest::option::of((proptest::option::of(1i32..4), proptest::option::of(1i32..5), proptest::option::of(1i32..6))),
        proptest::option::of((proptest::option::of(0i32..3), proptest::option::of(1i32..12))),
        0i32..3,
        any::<bool>(),
    )
        .prop_map(|(mode, replicas, tiers, spread, bounds, standby, tolerate)| {
            let mut placement = serde_json::json!({"mode": mode, "tiers": tiers});
            if let Some((p, min, max)) = spread {
                let (min, max) = match (min, max) {
                    (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
                    other => other,
                };
                if mode != "Failover" {
                    placement["spread"] = serde_json::json!({"minProviders": p, "minClusters": min, "maxClusters": max});
                }
            }
            if let Some((min, max)) = bounds {
                let min = match (min, max) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, _) => a,
                };
                placement["clusterReplicas"] = serde_json::json!({"minReplicas": min, "maxReplicas": max});
            }
            if mode == "Failover" {
                placement["standbyReplicas"] = serde_json::json!(standby);
            }
            if tolerate {
                placement["tolerations"] = serde_json::json!([{"key": "m", "operator": "Exists", "effect": "NoSchedule"}]);
            }
            let mut s = spec(&format!("replicas: {replicas}"));
            s.placement = serde_json::from_value(strip_nulls(placement)).unwrap();
            s
        })
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(strip_nulls).collect())
        }
        other => other,
    }
}

fn arb_case() -> impl Strategy<Value = Case> {
    (1usize..=NAMES.len())
        .prop_flat_map(|n| {
            let clusters: Vec<_> = NAMES[..n].iter().map(|&name| arb_cluster(name)).collect();
            (
                clusters,
                proptest::collection::vec(0u32..15, n),
                arb_spec(),
                any::<bool>(),
            )
        })
        .prop_map(|(clusters, cur, spec, rebalance)| Case {
            current: clusters
                .iter()
                .zip(cur)
                .filter(|(_, r)| *r > 0)
                .map(|(c, r)| (c.name.clone(), r))
                .collect(),
            clusters,
            spec,
            rebalance: if rebalance {
                Rebalance::ToPreferred
            } else {
                Rebalance::Sticky
            },
        })
}

fn decide_case(c: &Case) -> Decision {
    run(&c.spec, &c.clusters, &c.current, c.rebalance)
}

fn role_of(c: &Case, name: &str) -> eligibility::Role {
    let compiled = eligibility::CompiledSpec::new(&c.spec);
    let none = BTreeMap::new();
    let req = Request {
        spec: &c.spec,
        clusters: &c.clusters,
        current: &c.current,
        rebalance: c.rebalance,
        now: now(),
        app_unavailable_since: &none,
    };
    let snap = c.clusters.iter().find(|s| s.name == name).unwrap();
    compiled
        .role(snap, &req)
        .map(|(_, r)| r)
        .unwrap_or_else(eligibility::Role::Excluded)
}

proptest! {
    /// Divided/Failover place exactly `replicas` (plus standby) whenever some cluster may receive
    /// and neither maximums nor capacity get in the way: minimums that cannot all be met never
    /// cost replicas.
    #[test]
    fn totals_conserved_when_capacity_allows(mut case in arb_case()) {
        for c in &mut case.clusters { c.available = None; }
        case.spec.placement.standby_replicas = None;
        let no_max = |b: &mut Option<crate::api::ReplicaBounds>| if let Some(b) = b { b.max_replicas = None; };
        no_max(&mut case.spec.placement.cluster_replicas);
        for t in &mut case.spec.placement.tiers { no_max(&mut t.cluster_replicas); }
        if case.spec.placement.mode == crate::api::PlacementMode::Duplicated {
            case.spec.placement.mode = crate::api::PlacementMode::Divided;
        }
        let d = decide_case(&case);
        if d.outcome == Outcome::FailStatic || d.outcome == Outcome::Unschedulable {
            return Ok(()); // nothing may receive: fail_static covers it
        }
        prop_assert_eq!(d.total(), case.spec.replicas as u64, "{:?}", d);
    }

    /// With every cluster Eligible (healthy, untainted, no capacity limit), Divided places
    /// `replicas` or every maximum, whichever is less, whatever the minimums and `minClusters`:
    /// a minimum that cannot be met never costs a replica an eligible cluster could hold.
    #[test]
    fn minimums_never_cost_replicas(mut case in arb_case()) {
        case.spec.placement.mode = crate::api::PlacementMode::Divided;
        case.spec.placement.standby_replicas = None;
        if let Some(s) = &mut case.spec.placement.spread { s.max_clusters = None; }
        for c in &mut case.clusters { c.available = None; c.taints.clear(); c.health = ClusterHealth::Healthy; }
        case.current.clear();
        let d = decide_case(&case);
        let bounds = |tier: Option<usize>| tier
            .and_then(|t| case.spec.placement.tiers.get(t - 1))
            .and_then(|t| t.cluster_replicas.as_ref())
            .or(case.spec.placement.cluster_replicas.as_ref())
            .and_then(|b| b.max_replicas)
            .map_or(u64::MAX, |m| m as u64);
        let room = d.clusters.iter()
            .filter(|c| role_of(&case, &c.name) == eligibility::Role::Eligible)
            .fold(0u64, |acc, c| acc.saturating_add(bounds(c.tier)));
        prop_assert_eq!(d.total(), (case.spec.replicas as u64).min(room), "{:?}", d);
    }

    /// Filtered clusters receive nothing: every replica sits on an Eligible cluster, or on a Hold
    /// cluster that had at least as many — unless the decision is fail static, or (Failover
    /// mode) an Unhealthy cluster keeps standby replicas that have nowhere else to go.
    #[test]
    fn nothing_placed_on_filtered_clusters(case in arb_case()) {
        let d = decide_case(&case);
        if d.outcome == Outcome::FailStatic {
            prop_assert_eq!(&d.placement, &case.current);
            return Ok(());
        }
        for (name, &r) in &d.placement {
            match role_of(&case, name) {
                eligibility::Role::Eligible => {}
                eligibility::Role::Hold(_) => prop_assert!(r <= case.current.get(name).copied().unwrap_or(0)),
                eligibility::Role::Evict(_)
                    if case.spec.placement.mode == crate::api::PlacementMode::Failover
                        && case.clusters.iter().any(|c| &c.name == name && c.health == ClusterHealth::Unhealthy) =>
                {
                    prop_assert!(r <= case.current.get(name).copied().unwrap_or(0));
                    let standby = case.spec.placement.standby_replicas.unwrap_or(0) as u32;
                    prop_assert!(r <= standby, "{} keeps {} > standbyReplicas {}: {:?}", name, r, standby, d);
                    let why = &d.clusters.iter().find(|c| &c.name == name).unwrap().reason;
                    prop_assert!(why.contains("standby has nowhere else to go"), "{}", why);
                }
                other => prop_assert!(false, "{} got {} replicas but is {:?}", name, r, other),
            }
        }
    }

    /// The order of the cluster list does not matter.
    #[test]
    fn deterministic_whatever_the_input_order(case in arb_case(), seed in any::<u64>()) {
        let mut shuffled = case.clone();
        let n = shuffled.clusters.len();
        for i in (1..n).rev() {
            shuffled.clusters.swap(i, (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(decide_case(&case), decide_case(&shuffled));
    }

    /// Fed its own output, the engine returns it unchanged.
    #[test]
    fn fixed_point(case in arb_case()) {
        let first = decide_case(&case);
        let again = Case { current: first.placement.clone(), ..case };
        prop_assert_eq!(decide_case(&again).placement, first.placement);
    }

    /// One cluster fails: healthy clusters keep every replica; only the failed one's move, and
    /// they all find a place when the others have room.
    #[test]
    fn minimal_movement_on_a_single_failure(mut case in arb_case(), which in any::<prop::sample::Index>()) {
        // Standby replicas are extra capacity: a promoted standby tier may shed some of them.
        case.spec.placement.standby_replicas = None;
        for c in &mut case.clusters { c.health = ClusterHealth::Healthy; c.taints.clear(); }
        let before = run(&case.spec, &case.clusters, &Replicas::new(), Rebalance::ToPreferred).placement;
        let i = which.index(case.clusters.len());
        let failed = case.clusters[i].name.clone();
        case.clusters[i] = unhealthy(case.clusters[i].clone());
        let after = run(&case.spec, &case.clusters, &before, Rebalance::Sticky);
        for (name, &r) in &before {
            if *name != failed {
                prop_assert!(after.placement.get(name).copied().unwrap_or(0) >= r, "{} lost replicas: {:?} → {:?}", name, before, after.placement);
            }
        }
        prop_assert_eq!(after.placement.get(&failed).copied().unwrap_or(0), if after.outcome == Outcome::FailStatic { before.get(&failed).copied().unwrap_or(0) } else { 0 });
        // New replicas elsewhere: the failed cluster's, plus any shortfall the old placement had.
        let added: u64 = after.placement.iter().filter(|(n, _)| **n != failed).map(|(n, &r)| u64::from(r - before.get(n).copied().unwrap_or(0))).sum();
        let before_total: u64 = before.values().map(|&r| u64::from(r)).sum();
        let shortfall = super::decide::wanted_for_tests(&case.spec, &case.clusters).saturating_sub(before_total);
        prop_assert!(added <= u64::from(before.get(&failed).copied().unwrap_or(0)) + shortfall, "more than the failed cluster's replicas moved: {:?} → {:?}", before, after.placement);
    }

    /// Per-cluster maximums always hold; in a preferred placement minimums, maxClusters and
    /// minProviders hold whenever they can.
    #[test]
    fn spread_and_bounds_respected(mut case in arb_case()) {
        case.rebalance = Rebalance::ToPreferred;
        for c in &mut case.clusters { c.taints.clear(); if c.health != ClusterHealth::Unhealthy { c.health = ClusterHealth::Healthy; } }
        let d = decide_case(&case);
        if d.outcome == Outcome::FailStatic {
            return Ok(()); // fail_static covers it
        }
        let p = &case.spec.placement;
        let max = p.cluster_replicas.as_ref().and_then(|b| b.max_replicas);
        let min = p.cluster_replicas.as_ref().and_then(|b| b.min_replicas).unwrap_or(0) as u32;
        let eligible: Vec<&ClusterSnapshot> = case.clusters.iter().filter(|c| role_of(&case, &c.name) == eligibility::Role::Eligible).collect();
        let used = d.placement.len();
        for &r in d.placement.values() {
            if let Some(m) = max { prop_assert!(r <= m as u32); }
        }
        let spread = p.spread.clone().unwrap_or_default();
        if let Some(m) = spread.max_clusters { prop_assert!(used <= m as usize, "{:?}", d); }
        let replicas = case.spec.replicas as u32;
        if p.mode == crate::api::PlacementMode::Divided && p.tiers.iter().all(|t| t.cluster_replicas.is_none()) {
            let n = eligible.len().min(spread.max_clusters.map_or(usize::MAX, |m| m as usize)) as u32;
            let floor = min.max(u32::from(spread.min_clusters.is_some()));
            if floor > 0 && floor * n <= replicas && eligible.iter().all(|c| c.available.is_none()) {
                for (name, &r) in &d.placement { prop_assert!(r >= min, "{} has {} < minReplicas {}", name, r, min); }
            }
            if let Some(mp) = spread.min_providers {
                let providers: std::collections::BTreeSet<_> = eligible.iter().filter_map(|c| c.provider).collect();
                let max_c = spread.max_clusters.unwrap_or(i32::MAX);
                if providers.len() >= mp as usize && replicas >= mp as u32 && max_c >= mp && eligible.iter().all(|c| c.available.is_none()) && min == 0 {
                    let placed: std::collections::BTreeSet<_> = d.placement.keys().filter_map(|n| case.clusters.iter().find(|c| &c.name == n).and_then(|c| c.provider)).collect();
                    prop_assert!(placed.len() >= mp as usize, "minProviders {} but placed on {:?}: {:?}", mp, placed, d);
                }
            }
        }
    }

    /// No cluster may receive: the current placement comes back exactly; with none, nothing can
    /// be placed (Unschedulable) unless nothing was asked (replicas 0: Satisfied).
    #[test]
    fn fail_static(mut case in arb_case()) {
        for c in &mut case.clusters { c.health = ClusterHealth::Unhealthy; }
        let d = decide_case(&case);
        prop_assert_eq!(&d.placement, &case.current);
        let expected = match (case.current.is_empty(), case.spec.replicas) {
            (false, _) => Outcome::FailStatic,
            (true, 0) => Outcome::Satisfied,
            (true, _) => Outcome::Unschedulable,
        };
        prop_assert_eq!(d.outcome, expected);
    }
}

/// Found by `fixed_point`: a Recovering preferred cluster holds 11 of 12 replicas; the standby
/// and the 12th replica share the fallback tier, where one cluster has room for only 1. Deciding
/// again over the first decision must give the same placement.
#[test]
fn failover_recovering_hold_with_a_full_standby_cluster_is_a_fixed_point() {
    let s = spec(
        "replicas: 12\nplacement:\n  mode: Failover\n  standbyReplicas: 1\n  tiers:\n    - providers: [aws]\n    - {}\n",
    );
    let room = |mut c: ClusterSnapshot, n: u64| {
        c.available = Some(Resources {
            cpu_millis: n * 500,
            memory_bytes: 1 << 40,
        });
        c
    };
    let mut a = aws("a");
    a.health = ClusterHealth::Recovering;
    a.health_since = Some(T0.parse().unwrap());
    let clusters = [
        a,
        room(aws("b"), 0),
        gcp("c"),
        gcp("d"),
        unhealthy(aws("e")),
        room(gcp("f"), 1),
        unhealthy(aws("g")),
    ];
    let first = run(
        &s,
        &clusters,
        &replicas(&[("a", 11), ("f", 1)]),
        Rebalance::ToPreferred,
    );
    let again = run(&s, &clusters, &first.placement, Rebalance::ToPreferred);
    assert_eq!(again.placement, first.placement, "first: {first:?}");
}

/// Found by `fixed_point`: two replicas cannot cover `minReplicas: 2` plus the replica a
/// cordoned cluster keeps; the kept replica is served first, whatever the current counts.
#[test]
fn divided_kept_replica_comes_before_an_unmet_minimum() {
    let s = spec("replicas: 2\nplacement:\n  clusterReplicas: {minReplicas: 2}\n");
    let mut b = tainted(aws("b"), "m:NoSchedule");
    b.available = Some(Resources {
        cpu_millis: 500,
        memory_bytes: 1 << 40,
    });
    let clusters = [aws("a"), b, aws("c")];
    let first = run(
        &s,
        &clusters,
        &replicas(&[("a", 3), ("b", 4)]),
        Rebalance::ToPreferred,
    );
    assert_eq!(first.placement, replicas(&[("a", 1), ("b", 1)]));
    let again = run(&s, &clusters, &first.placement, Rebalance::ToPreferred);
    assert_eq!(again.placement, first.placement);
}

/// The total comes first (KubeFed's answer): three clusters of `minReplicas: 20, maxReplicas: 20`
/// and 50 replicas give 20/20/10, the last cluster below its minimum and saying so; before, the
/// third cluster was dropped whole and 10 replicas went unplaced.
#[test]
fn divided_unmet_minimums_never_cost_replicas() {
    let s =
        spec("replicas: 50\nplacement:\n  clusterReplicas: {minReplicas: 20, maxReplicas: 20}\n");
    let d = place(&s, &[aws("a"), aws("b"), gcp("c")]);
    assert_eq!(d.placement, replicas(&[("a", 20), ("b", 20), ("c", 10)]));
    assert_eq!(d.outcome, Outcome::Satisfied);
    assert_eq!(
        reason(&d, "c"),
        "all clusters: 10, below its minReplicas 20: the more preferred clusters' minimums come first"
    );
    let d = place(
        &spec("replicas: 30\nplacement:\n  clusterReplicas: {minReplicas: 20}\n"),
        &[aws("a"), aws("b"), gcp("c")],
    );
    assert_eq!(d.placement, replicas(&[("a", 20), ("b", 10)]));
    assert!(
        reason(&d, "c").ends_with(
            "below its minReplicas 20: the more preferred clusters' minimums take every replica"
        ),
        "{}",
        reason(&d, "c")
    );
}

/// Failover: the active tier keeps what it can hold instead of dropping a cluster whose minimum
/// does not fit and spilling to the next tier.
#[test]
fn failover_unmet_minimum_stays_in_the_active_tier() {
    let s = spec(
        "replicas: 8\nplacement:\n  mode: Failover\n  clusterReplicas: {minReplicas: 5, maxReplicas: 5}\n  tiers:\n    - providers: [aws]\n    - providers: [gcp]\n",
    );
    let d = place(&s, &[aws("a"), aws("b"), gcp("c")]);
    assert_eq!(d.placement, replicas(&[("a", 5), ("b", 3)]));
}
