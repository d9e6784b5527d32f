//! GitOps: the Kustomize layout of examples/gitops and the Argo CD health check beside it.
//!
//! * `gitops::argocd_health_check_on_sample_statuses`: examples/gitops/argocd/health.lua run by
//!   gopher-lua under Argo CD's calling convention (e2e/go/lua, built by e2e/build-lua) on sample
//!   MultiCloudWorkloads — Healthy, Progressing (no status, generation not observed, replicas
//!   being placed, a member unreachable), Degraded (each blocking reason, nothing placeable) — with
//!   the Ready condition's message; the runner itself refuses what Argo CD refuses (the string
//!   library, an invalid status). The Kustomize Component merges the script into argocd-cm
//!   unchanged, and every file of examples/gitops parses.
//! * `gitops::overlays_apply_and_kubectl_wait_for_ready`: the CRDs by the documented upgrade
//!   command (`kubectl apply --server-side --force-conflicts -f charts/bascule/crds/`); both
//!   overlays pass `bascule plan` offline; with `bascule run` running, the real kubectl applies
//!   the staging overlay (`apply -k`) and `kubectl wait --for=condition=Ready` returns once
//!   everything is placed and available; the live objects are Healthy for the Lua check. Then,
//!   with the operator stopped, the production overlay is applied over it: the hub holds the new
//!   spec beside the old generation's Ready=True, the Lua check says Progressing, and
//!   `kubectl wait` does not return on that stale Ready (kstatus: observedGeneration on the status
//!   and on each condition); once the operator runs again it returns, with the production replica
//!   counts available in the members.
//!
//! The second trial uses the layout's fixed names (MemberClusters eks-use1 and gke-euw1,
//! namespace shop) and fails at once if the hub already has them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bascule::api::{MemberCluster, MultiCloudWorkload};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::chart::{Tools, and_cleanup, catch_panic, objects, output, run, text};
use crate::ensure;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::{Harness, TestResult, Topology, repo_root, trial, unique_name};

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "gitops::argocd_health_check_on_sample_statuses",
            |h| async move { argocd_health_check(h).await },
        ),
        trial(
            "gitops::overlays_apply_and_kubectl_wait_for_ready",
            |h| async move { overlays_apply_and_wait(h).await },
        ),
    ]
}

const HEALTH_LUA: &str = "examples/gitops/argocd/health.lua";

// ---------------------------------------------------------------------------------------------
// The Argo CD health check.

/// `e2e/build-lua`: the path of argo-lua-health (built into its own cache when missing).
async fn lua_runner() -> TestResult<PathBuf> {
    let mut cmd = tokio::process::Command::new(repo_root().join("e2e/build-lua"));
    cmd.stderr(std::process::Stdio::inherit());
    let out = run(cmd, "e2e/build-lua", Duration::from_secs(300)).await?;
    Ok(PathBuf::from(
        out.lines()
            .last()
            .ok_or("e2e/build-lua printed nothing")?
            .trim(),
    ))
}

/// Runs a health script on objects; one `{status, message}` or `{error}` per object.
async fn health(runner: &Path, script: &Path, objects: &[Value]) -> TestResult<Vec<Value>> {
    let input = tempfile(&serde_json::to_string(objects)?)?;
    let mut cmd = tokio::process::Command::new(runner);
    cmd.arg(script).stdin(std::fs::File::open(&input)?);
    let out = output(cmd, "argo-lua-health", Duration::from_secs(30)).await;
    let _ = std::fs::remove_file(&input);
    let out = out?;
    ensure!(
        out.status.success(),
        "argo-lua-health failed: {}",
        text(&out)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn tempfile(contents: &str) -> TestResult<PathBuf> {
    let path = std::env::temp_dir().join(format!("{}.json", unique_name("bascule-lua")));
    std::fs::write(&path, contents)?;
    Ok(path)
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, generation: i64) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// A MultiCloudWorkload at `generation` whose status was written for `observed`.
fn workload(generation: i64, observed: i64, conditions: Vec<Value>) -> Value {
    json!({
        "apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": "checkout", "namespace": "shop", "generation": generation},
        "spec": {"replicas": 10},
        "status": {"observedGeneration": observed, "conditions": conditions,
                   "replicas": {"desired": 10, "ready": 10, "available": 10},
                   "placement": "eks-use1=8,gke-euw1=2",
                   "clusters": [{"name": "eks-use1", "desired": 8, "ready": 8, "available": 8,
                                 "state": "Active"}]},
    })
}

/// The operator's three conditions (status.rs), all for `generation`.
fn status3(
    generation: i64,
    ready: (&str, &str, &str),
    progressing: &str,
    degraded: (&str, &str, &str),
) -> Vec<Value> {
    vec![
        condition("Ready", ready.0, ready.1, ready.2, generation),
        condition(
            "Progressing",
            progressing,
            if progressing == "True" {
                "Placing"
            } else {
                "Complete"
            },
            "",
            generation,
        ),
        condition("Degraded", degraded.0, degraded.1, degraded.2, generation),
    ]
}

async fn argocd_health_check(h: &'static Harness) -> TestResult {
    let runner = lua_runner().await?;
    let script = repo_root().join(HEALTH_LUA);
    let ok = (
        "True",
        "Available",
        "10/10 replicas available on eks-use1=8,gke-euw1=2",
    );
    let placing = (
        "False",
        "Progressing",
        "6/10 replicas available; placing eks-use1=8,gke-euw1=2",
    );
    let fine = ("False", "AsSpecified", "");
    // (case, object, status, message)
    let mut cases: Vec<(&str, Value, &str, String)> = vec![
        (
            "Ready, generation observed",
            workload(3, 3, status3(3, ok, "False", fine)),
            "Healthy",
            ok.2.into(),
        ),
        (
            "Ready, but for an older generation",
            workload(4, 3, status3(3, ok, "False", fine)),
            "Progressing",
            "Waiting for Bascule to act on generation 4".into(),
        ),
        (
            "status.observedGeneration current, Ready's own observedGeneration older",
            {
                let mut w = workload(4, 4, status3(3, ok, "False", fine));
                w["status"]["observedGeneration"] = json!(4);
                w
            },
            "Progressing",
            "Waiting for Bascule to act on generation 4".into(),
        ),
        (
            "no status yet",
            json!({"apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
                   "metadata": {"name": "checkout", "generation": 1}, "spec": {}}),
            "Progressing",
            "Waiting for Bascule to place the workload".into(),
        ),
        (
            "replicas being placed",
            workload(2, 2, status3(2, placing, "True", fine)),
            "Progressing",
            placing.2.into(),
        ),
        (
            "a member unreachable during a failover: progressing, not degraded",
            workload(
                2,
                2,
                status3(
                    2,
                    placing,
                    "True",
                    (
                        "True",
                        "MemberTimeout",
                        "eks-use1 did not answer within 15s",
                    ),
                ),
            ),
            "Progressing",
            placing.2.into(),
        ),
        (
            "spread constraint not met but every replica available",
            workload(
                2,
                2,
                status3(
                    2,
                    ok,
                    "False",
                    ("True", "ConstraintsNotMet", "spread.minProviders 2 not met"),
                ),
            ),
            "Healthy",
            ok.2.into(),
        ),
        (
            "Unschedulable",
            workload(
                1,
                1,
                status3(
                    1,
                    (
                        "False",
                        "Unschedulable",
                        "no cluster matches tier 1 (providers aws)",
                    ),
                    "True",
                    ("True", "ConstraintsNotMet", ""),
                ),
            ),
            "Degraded",
            "no cluster matches tier 1 (providers aws)".into(),
        ),
        (
            "FailStatic",
            workload(
                1,
                1,
                status3(
                    1,
                    (
                        "False",
                        "FailStatic",
                        "no cluster may receive replicas; keeping eks-use1=10 as it was",
                    ),
                    "True",
                    fine,
                ),
            ),
            "Degraded",
            "no cluster may receive replicas; keeping eks-use1=10 as it was".into(),
        ),
    ];
    for reason in [
        "OwnershipConflict",
        "InvalidTemplate",
        "RenderFailed",
        "MoveBudgetExhausted",
        "InvalidSpec",
        "Forbidden",
    ] {
        let detail = format!("{reason} detail");
        cases.push((
            reason,
            workload(
                5,
                5,
                status3(5, placing, "True", ("True", reason, detail.as_str())),
            ),
            "Degraded",
            format!("{}; {reason}: {detail}", placing.2),
        ));
    }
    // A blocking reason wins over Ready=True (e.g. the move budget holds replicas where they are).
    cases.push((
        "MoveBudgetExhausted while Ready",
        workload(
            5,
            5,
            status3(
                5,
                ok,
                "False",
                ("True", "MoveBudgetExhausted", "3 moves within 3600s"),
            ),
        ),
        "Degraded",
        format!("{}; MoveBudgetExhausted: 3 moves within 3600s", ok.2),
    ));

    let samples: Vec<Value> = cases.iter().map(|c| c.1.clone()).collect();
    let results = health(&runner, &script, &samples).await?;
    ensure!(
        results.len() == cases.len(),
        "{} results for {} objects",
        results.len(),
        cases.len()
    );
    let mut wrong = Vec::new();
    for ((case, _, status, message), got) in cases.iter().zip(&results) {
        let want = json!({"status": status, "message": message});
        if *got != want {
            wrong.push(format!("{case}: got {got}, expected {want}"));
        }
    }
    ensure!(wrong.is_empty(), "health.lua:\n{}", wrong.join("\n"));
    println!("health.lua: {} sample statuses as expected", cases.len());

    // The runner is as strict as Argo CD: no string library, statuses from Argo CD's set only.
    let strict = [
        (
            "return {status = string.upper('healthy')}",
            json!({"error": true}),
        ),
        (
            "return {status = 'Fine', message = 'x'}",
            json!({"status": "Unknown", "message": "Lua returned an invalid health status"}),
        ),
        (
            "local hs = {}; hs.status = 'Healthy'; hs.message = obj.metadata.name; return hs",
            json!({"status": "Healthy", "message": "checkout"}),
        ),
    ];
    for (source, want) in strict {
        let path = tempfile(source)?;
        let got = health(&runner, &path, &samples[..1]).await;
        let _ = std::fs::remove_file(&path);
        let got = got?.remove(0);
        let matches = if want["error"] == true {
            got.get("error").is_some()
        } else {
            got == want
        };
        ensure!(matches, "runner on `{source}`: {got}, expected {want}");
    }

    // The Component puts the script into argocd-cm unchanged, next to what is there, in a
    // kustomization shaped like Argo CD's documented install (its manifests carry no namespace;
    // the kustomization sets it).
    let tools = Tools::new(h)?;
    let dir = h.dir().join(unique_name("argocd-component"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("argocd-cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n\
         data:\n  url: https://argocd.example.com\n",
    )?;
    // Kustomize takes relative roots only.
    let component = relative(&dir, &repo_root().join("examples/gitops/argocd"));
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             namespace: argocd\nresources: [argocd-cm.yaml]\ncomponents: [{}]\n",
            component.display()
        ),
    )?;
    let built = objects(
        &tools
            .kubectl(
                &h.kubeconfig(h.hub()),
                &["kustomize", dir.to_str().ok_or("path")?],
            )
            .await?,
    )?;
    let script_text = std::fs::read_to_string(&script)?;
    ensure!(
        built.len() == 1
            && built[0]["metadata"]["name"] == "argocd-cm"
            && built[0]["metadata"]["namespace"] == "argocd"
            && built[0]["data"]["url"] == "https://argocd.example.com"
            && built[0]["data"]["resource.customizations.health.bascule.dev_MultiCloudWorkload"]
                == script_text.as_str(),
        "the Component's argocd-cm: {}",
        serde_json::to_string_pretty(&built)?
    );

    // Every manifest of the layout parses (Argo CD Applications, Flux objects included).
    let mut parsed = 0;
    let mut stack = vec![repo_root().join("examples/gitops")];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                let docs = objects(&std::fs::read_to_string(&p)?)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                ensure!(
                    docs.iter().all(|d| d["kind"].is_string()),
                    "{}: a document without kind",
                    p.display()
                );
                parsed += docs.len();
            }
        }
    }
    ensure!(
        parsed >= 10,
        "only {parsed} documents under examples/gitops"
    );
    Ok(())
}

/// `to` relative to the directory `from` (both absolute).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for c in &to[common..] {
        path.push(c);
    }
    path
}

// ---------------------------------------------------------------------------------------------
// The overlays on the hub, with kubectl.

const SHOP: &str = "shop";
const CLUSTERS: [(&str, &str); 2] = [
    ("eks-use1", "member-eks-use1"),
    ("gke-euw1", "member-gke-euw1"),
];
const WAIT: &str = "--timeout=90s";

struct Shop {
    h: &'static Harness,
    tools: Tools,
    hub: Client,
    hub_kubeconfig: PathBuf,
    members: Vec<(String, Client)>,
    ops_ns: String,
    operator: Option<Operator>,
    /// Set once the trial created the layout's fixed-name objects (only then cleaned up).
    applied: bool,
}

async fn overlays_apply_and_wait(h: &'static Harness) -> TestResult {
    let mut members = Vec::new();
    for (m, _) in CLUSTERS {
        ensure!(
            h.members().iter().any(|n| n == m),
            "this trial needs member {m} (members: {:?})",
            h.members()
        );
        members.push((m.to_string(), h.client(m).await?));
    }
    let mut fx = Shop {
        h,
        tools: Tools::new(h)?,
        hub: h.client(h.hub()).await?,
        hub_kubeconfig: h.kubeconfig(h.hub()),
        members,
        ops_ns: unique_name("bascule-gitops"),
        operator: None,
        applied: false,
    };
    let result = catch_panic(fx.body()).await;
    let result = and_cleanup(result, fx.cleanup().await);
    match &fx.operator {
        Some(op) => op.annotate(result),
        None => result,
    }
}

impl Shop {
    async fn kubectl(&self, args: &[&str]) -> TestResult<String> {
        self.tools.kubectl(&self.hub_kubeconfig, args).await
    }

    async fn body(&mut self) -> TestResult {
        // The CRDs, by the upgrade command of docs/install.md (idempotent on an up-to-date hub).
        let out = self
            .kubectl(&[
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                "charts/bascule/crds/",
            ])
            .await?;
        ensure!(
            out.contains("customresourcedefinition.apiextensions.k8s.io/multicloudworkloads.bascule.dev serverside-applied"),
            "kubectl apply --server-side of the chart's CRDs:\n{out}"
        );
        self.kubectl(&[
            "wait",
            "--for=condition=Established",
            "crd/memberclusters.bascule.dev",
            "crd/multicloudworkloads.bascule.dev",
            "--timeout=30s",
        ])
        .await?;

        // Both overlays are valid and satisfiable offline: `bascule plan` over what kustomize
        // builds (the Namespace left out: plan reads Bascule's kinds only).
        for env in ["staging", "production"] {
            let built = self
                .kubectl(&["kustomize", &format!("examples/gitops/overlays/{env}")])
                .await?;
            let docs: Vec<String> = objects(&built)?
                .into_iter()
                .filter(|o| o["kind"] != "Namespace")
                .map(|o| serde_json::to_string(&o))
                .collect::<Result<_, _>>()?;
            let input = std::env::temp_dir().join(format!("{}.yaml", unique_name("plan")));
            std::fs::write(&input, docs.join("\n---\n"))?;
            let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bascule"));
            cmd.args(["plan", "-"]).stdin(std::fs::File::open(&input)?);
            let out = output(cmd, "bascule plan -", Duration::from_secs(30)).await;
            let _ = std::fs::remove_file(&input);
            let out = out?;
            ensure!(
                out.status.success(),
                "bascule plan on overlays/{env}: {}\n{}",
                out.status,
                text(&out)
            );
        }

        // The layout's fixed names must be free on this hub.
        for (mc, _) in CLUSTERS {
            ensure!(
                Api::<MemberCluster>::all(self.hub.clone())
                    .get_opt(mc)
                    .await?
                    .is_none(),
                "MemberCluster {mc} already exists on the hub (left by an earlier trial?)"
            );
        }
        ensure!(
            Api::<Namespace>::all(self.hub.clone())
                .get_opt(SHOP)
                .await?
                .is_none(),
            "namespace {SHOP} already exists on the hub (left by an earlier trial?)"
        );

        // The operator, with the members' kubeconfig Secrets the layout refers to.
        Api::<Namespace>::all(self.hub.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": self.ops_ns}}))?,
            )
            .await?;
        for (m, secret) in CLUSTERS {
            let kubeconfig = crate::support::member_rbac::kubeconfig(self.h, m).await?;
            Api::<Secret>::namespaced(self.hub.clone(), &self.ops_ns)
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({
                        "metadata": {"name": secret, "namespace": self.ops_ns},
                        "stringData": {"kubeconfig": kubeconfig},
                    }))?,
                )
                .await?;
        }
        let op = Operator::start(self.h, OperatorOptions::new(&self.ops_ns, "gitops"))?;
        println!(
            "operator pid {:?}, log {}",
            op.pid(),
            op.log_path().display()
        );
        self.operator = Some(op);

        // Staging: kubectl apply -k, then kubectl wait.
        self.applied = true;
        let t = Instant::now();
        let out = self
            .kubectl(&["apply", "-k", "examples/gitops/overlays/staging"])
            .await?;
        for want in [
            "namespace/shop created",
            "membercluster.bascule.dev/eks-use1 created",
            "membercluster.bascule.dev/gke-euw1 created",
            "multicloudworkload.bascule.dev/checkout created",
            "multicloudworkload.bascule.dev/catalog created",
        ] {
            ensure!(out.contains(want), "kubectl apply -k staging:\n{out}");
        }
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "membercluster/eks-use1",
            "membercluster/gke-euw1",
            WAIT,
        ])
        .await?;
        self.alive()?;
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "mcw",
            "--all",
            "-n",
            SHOP,
            WAIT,
        ])
        .await?;
        println!(
            "staging: applied and Ready in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        self.check_placed(&[("checkout", 2, 3), ("catalog", 3, 3)], "staging")
            .await?;

        // The live objects, as Argo CD would see them, are Healthy.
        let runner = lua_runner().await?;
        let live: Value = serde_json::from_str(
            &self
                .kubectl(&["get", "mcw", "-n", SHOP, "-o", "json"])
                .await?,
        )?;
        let items = live["items"].as_array().cloned().unwrap_or_default();
        let verdicts = health(&runner, &repo_root().join(HEALTH_LUA), &items).await?;
        for (w, v) in items.iter().zip(&verdicts) {
            ensure!(
                v["status"] == "Healthy"
                    && v["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("replicas available")),
                "health.lua on live {}: {v}",
                w["metadata"]["name"]
            );
        }
        ensure!(verdicts.len() == 2, "{} live workloads", verdicts.len());

        // Production over it, applied while the operator is stopped, so that the hub holds the
        // new spec beside the staging generation's Ready=True: `kubectl wait` must not take that
        // stale Ready, and Argo CD's check must say Progressing.
        let stopped = self
            .operator
            .as_mut()
            .ok_or("no operator")?
            .stop(Duration::from_secs(10))?;
        ensure!(
            stopped.1,
            "the operator did not stop on SIGTERM: {:?}",
            stopped.0
        );
        let out = self
            .kubectl(&["apply", "-k", "examples/gitops/overlays/production"])
            .await?;
        ensure!(
            out.contains("multicloudworkload.bascule.dev/checkout configured")
                && out.contains("multicloudworkload.bascule.dev/catalog configured"),
            "kubectl apply -k production:\n{out}"
        );
        let stale: Value = serde_json::from_str(
            &self
                .kubectl(&["get", "mcw", "-n", SHOP, "-o", "json"])
                .await?,
        )?;
        let stale = stale["items"].as_array().cloned().unwrap_or_default();
        for w in &stale {
            let ready = w["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready");
            ensure!(
                w["metadata"]["generation"] == 2
                    && w["status"]["observedGeneration"] == 1
                    && ready.is_some_and(|c| c["status"] == "True"),
                "not the stale state this step needs: {}",
                w["status"]
            );
        }
        let verdicts = health(&runner, &repo_root().join(HEALTH_LUA), &stale).await?;
        for v in &verdicts {
            ensure!(
                *v == json!({"status": "Progressing",
                             "message": "Waiting for Bascule to act on generation 2"}),
                "health.lua on a stale live status: {v}"
            );
        }
        let tools = self.tools.clone();
        let hub_kubeconfig = self.hub_kubeconfig.clone();
        let waiting = tokio::spawn(async move {
            let t = Instant::now();
            tools
                .kubectl(
                    &hub_kubeconfig,
                    &[
                        "wait",
                        "--for=condition=Ready",
                        "mcw",
                        "--all",
                        "-n",
                        SHOP,
                        WAIT,
                    ],
                )
                .await
                .map(|_| t.elapsed())
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(
            !waiting.is_finished(),
            "kubectl wait returned on the previous generation's Ready=True: {:?}",
            waiting.await
        );
        let t = Instant::now();
        self.operator.as_mut().ok_or("no operator")?.start_again()?;
        let waited = waiting.await??;
        println!(
            "production: kubectl wait held {:.1} s on the stale Ready=True, returned {:.1} s after \
             the operator started again",
            waited.as_secs_f64() - t.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        self.check_placed(&[("checkout", 10, 12), ("catalog", 10, 10)], "production")
            .await?;
        for (mc, _) in CLUSTERS {
            let c = Api::<MemberCluster>::all(self.hub.clone()).get(mc).await?;
            ensure!(
                c.labels().get("environment").map(String::as_str) == Some("production"),
                "MemberCluster {mc} labels {:?}",
                c.labels()
            );
        }
        self.kubectl_plugin_reads_the_live_hub().await
    }

    /// `kubectl bascule status|explain|plan` as a user runs it: kubectl finds `kubectl-bascule`
    /// on PATH and the plugin reads the hub of KUBECONFIG.
    async fn kubectl_plugin_reads_the_live_hub(&self) -> TestResult {
        let status = self.plugin(&["status", "-n", SHOP], 0).await?;
        for want in [
            "shop/checkout",
            "eks-use1=10,gke-euw1=2",
            "shop/catalog",
            "True (Available)",
        ] {
            ensure!(
                status.contains(want),
                "kubectl bascule status: no {want:?} in\n{status}"
            );
        }
        let explain = self.plugin(&["explain", "checkout", "-n", SHOP], 0).await?;
        for want in [
            "shop/checkout: Failover",
            "active tier",
            "warm standby",
            "Ready            True   Available",
        ] {
            ensure!(
                explain.contains(want),
                "kubectl bascule explain: no {want:?} in\n{explain}"
            );
        }
        // What would move if eks-use1 failed: the checkout's 10 go to gke-euw1, nothing is
        // written (the engine runs in the plugin).
        let before = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), SHOP)
            .get("checkout")
            .await?;
        let plan = self
            .plugin(&["plan", "-n", SHOP, "--what-if-unhealthy", "eks-use1"], 3)
            .await?;
        ensure!(
            plan.contains("shop/checkout Failover replicas=10 → gke-euw1=10")
                && plan.contains("unhealthy")
                && plan.contains("(Satisfied; 8 replica(s) move)"),
            "kubectl bascule plan --what-if-unhealthy eks-use1:\n{plan}"
        );
        let after = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), SHOP)
            .get("checkout")
            .await?;
        ensure!(
            before.metadata.resource_version == after.metadata.resource_version,
            "the plan changed the workload"
        );
        let missing = self.plugin(&["explain", "nope", "-n", SHOP], 1).await?;
        ensure!(
            missing.contains("no MultiCloudWorkload shop/nope"),
            "kubectl bascule explain nope: {missing}"
        );
        println!("kubectl bascule status, explain and plan --what-if-unhealthy read the live hub");
        Ok(())
    }

    /// `kubectl bascule ARGS` with the plugin's directory first on PATH; stdout and stderr,
    /// after checking the exit code.
    async fn plugin(&self, args: &[&str], code: i32) -> TestResult<String> {
        let plugin_dir = Path::new(env!("CARGO_BIN_EXE_kubectl-bascule"))
            .parent()
            .ok_or("no directory for kubectl-bascule")?
            .to_path_buf();
        let path = std::env::join_paths(std::iter::once(plugin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))?;
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::process::Command::new(&self.tools.kubectl)
                .arg("bascule")
                .args(args)
                .env("KUBECONFIG", &self.hub_kubeconfig)
                .env("PATH", path)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("kubectl bascule {}: no exit within 60 s", args.join(" ")))??;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        ensure!(
            out.status.code() == Some(code),
            "kubectl bascule {}: exit {:?}, expected {code}\nstdout: {stdout}\nstderr: {stderr}",
            args.join(" "),
            out.status.code()
        );
        Ok(format!("{stdout}{stderr}"))
    }

    /// Right after `kubectl wait` returned: each workload's status is for its current generation,
    /// Ready, with `spec_replicas` asked and `desired` placed and available in the members.
    async fn check_placed(&self, expected: &[(&str, i32, i32)], env: &str) -> TestResult {
        let api = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), SHOP);
        for (name, spec_replicas, desired) in expected {
            let w = api.get(name).await?;
            let s = w.status.clone().unwrap_or_default();
            let counts = s.replicas.clone().unwrap_or_default();
            ensure!(
                w.spec.replicas == *spec_replicas
                    && s.observed_generation == w.metadata.generation
                    && counts.desired == *desired
                    && counts.available >= *desired,
                "{env}: {name}: spec.replicas {}, generation {:?} observed {:?}, replicas {:?} \
                 (expected {spec_replicas} asked, {desired} desired and available)",
                w.spec.replicas,
                w.metadata.generation,
                s.observed_generation,
                counts
            );
            let mut placed = 0;
            let mut available = 0;
            for (m, member) in &self.members {
                if let Some(d) = Api::<Deployment>::namespaced(member.clone(), SHOP)
                    .get_opt(name)
                    .await?
                {
                    placed += d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                    available += d
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0);
                    ensure!(
                        d.labels()
                            .get("app.kubernetes.io/managed-by")
                            .map(String::as_str)
                            == Some("bascule"),
                        "{env}: {m}: Deployment {name} is not Bascule's: {:?}",
                        d.labels()
                    );
                }
            }
            ensure!(
                placed == *desired && available >= *desired,
                "{env}: {name}: {placed} replicas placed, {available} available in the members, \
                 expected {desired}"
            );
            println!(
                "{env}: {name} {}/{} available, placement {:?}",
                counts.available, counts.desired, s.placement
            );
        }
        Ok(())
    }

    fn alive(&mut self) -> Result<(), String> {
        match self.operator.as_mut() {
            Some(op) => op.ensure_running(),
            None => Err("the operator was not started".into()),
        }
    }

    /// Workloads deleted while the operator runs (its finalizer empties the members), the
    /// operator stopped, then `kubectl delete -k` for the rest and the namespaces.
    async fn cleanup(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.applied {
            if self.alive().is_ok()
                && let Err(e) = self
                    .kubectl(&[
                        "delete",
                        "mcw",
                        "--all",
                        "-n",
                        SHOP,
                        "--ignore-not-found",
                        "--timeout=60s",
                    ])
                    .await
            {
                problems.push(format!("deleting the workloads: {e}"));
            }
            if let Some(op) = self.operator.as_mut()
                && op.pid().is_some()
                && let Err(e) = op.stop(Duration::from_secs(10))
            {
                problems.push(format!("stopping the operator: {e}"));
            }
            let api = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), SHOP);
            for w in api
                .list_metadata(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                let name = w.metadata.name.unwrap_or_default();
                let _ = api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
            }
            if let Err(e) = self
                .kubectl(&[
                    "delete",
                    "-k",
                    "examples/gitops/overlays/production",
                    "--ignore-not-found",
                    "--wait=false",
                ])
                .await
            {
                problems.push(format!("kubectl delete -k: {e}"));
            }
            // The operator that would release them is stopped.
            crate::support::delete_member_clusters(&self.hub, ["eks-use1", "gke-euw1"]).await;
            for (m, member) in &self.members {
                if let Err(e) = Api::<Namespace>::all(member.clone())
                    .delete(SHOP, &DeleteParams::default())
                    .await
                    && !matches!(&e, kube::Error::Api(s) if s.code == 404)
                {
                    problems.push(format!("{m}: deleting namespace {SHOP}: {e}"));
                }
            }
        } else if let Some(op) = self.operator.as_mut()
            && op.pid().is_some()
        {
            let _ = op.stop(Duration::from_secs(10));
        }
        let _ = Api::<Namespace>::all(self.hub.clone())
            .delete(&self.ops_ns, &DeleteParams::default())
            .await;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
