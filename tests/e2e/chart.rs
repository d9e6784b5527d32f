//! The Helm chart (charts/bascule) and the member RBAC manifest (deploy/member-rbac.yaml), with
//! the pinned helm 4 and kubectl of the e2e cache (built by e2e/build when missing):
//!
//! * `chart::lint_render_and_schema`: `helm lint --strict` is clean; `helm template` renders what
//!   the chart promises (no wildcard in any Role/ClusterRole rule, the exact hub permissions,
//!   Secrets only in a namespaced Role, 2 replicas, leader election, probes on /livez and
//!   /readyz, a restrictive securityContext, resources, PDB, metrics Service, optional
//!   ServiceMonitor); values.schema.json refuses bad values (`replicaCount: "two"`, an unknown
//!   key, a writable root filesystem) and the chart refuses 2 replicas without leader election.
//! * `chart::install_and_chart_rbac_carries_a_workload`: `helm install` into the hub succeeds and
//!   creates its objects (the pods are kwok's, nothing runs in them). Then `bascule run` runs as a
//!   local process with the chart's own ServiceAccount — a TokenRequest token in a kubeconfig —
//!   and the Deployment's own arguments, and reaches each member as the `bascule-member`
//!   ServiceAccount of deploy/member-rbac.yaml. It carries a workload to Ready=True, records
//!   Events, holds the Lease, and deletes the workload from the members: the chart's hub RBAC and
//!   the member manifest are sufficient. Access reviews check they are not more than that.
//!
//! The helpers at the top (`Tools`, `run`, kubeconfigs from tokens) are shared with gitops.rs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use bascule::api::{MemberCluster, MultiCloudWorkload};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::ensure;
use crate::support::http::{free_port, http_get};
use crate::support::operator::{Operator, OperatorOptions, secret_kubeconfig};
use crate::support::{Harness, TestResult, Topology, repo_root, trial, unique_name, wait};

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial("chart::lint_render_and_schema", |h| async move {
            lint_render_and_schema(h).await
        }),
        trial(
            "chart::install_and_chart_rbac_carries_a_workload",
            |h| async move { install_and_carry_a_workload(h).await },
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tools shared with gitops.rs.

/// The pinned tools, with their state kept under the run directory (never `~/.kube`,
/// `~/.config/helm` or `~/.cache/helm`).
#[derive(Clone)]
pub struct Tools {
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    dir: PathBuf,
}

impl Tools {
    /// kubectl and helm: their override variables (docs/e2e.md), else the e2e cache, built by
    /// `e2e/build` when missing (helm is not needed to start the clusters, so a fresh machine
    /// builds it here: about 4 minutes, once).
    pub fn new(h: &Harness) -> TestResult<Tools> {
        let dir = h.dir().join("tools-state");
        std::fs::create_dir_all(&dir)?;
        Ok(Tools {
            kubectl: pinned("kubectl", "KWOK_KUBECTL_BINARY")?,
            helm: pinned("helm", "BASCULE_E2E_HELM_BINARY")?,
            dir,
        })
    }

    /// `kubectl --kubeconfig KUBECONFIG ARGS...`; its output, or an error with stdout and stderr.
    pub async fn kubectl(&self, kubeconfig: &Path, args: &[&str]) -> TestResult<String> {
        let mut cmd = tokio::process::Command::new(&self.kubectl);
        cmd.arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.join("kube-cache"))
            .args(args)
            .current_dir(repo_root());
        run(cmd, &format!("kubectl {}", args.join(" ")), TOOL_TIMEOUT).await
    }

    fn helm_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.helm);
        cmd.args(args)
            .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
            .env("HELM_DATA_HOME", self.dir.join("helm/data"))
            .env_remove("KUBECONFIG")
            .current_dir(repo_root());
        cmd
    }

    /// `helm ARGS...` (run from the repository root); its output, or an error.
    pub async fn helm(&self, args: &[&str]) -> TestResult<String> {
        run(
            self.helm_command(args),
            &format!("helm {}", args.join(" ")),
            TOOL_TIMEOUT,
        )
        .await
    }

    /// `helm ARGS...` whose failure is the expected outcome.
    pub async fn helm_output(&self, args: &[&str]) -> TestResult<Output> {
        output(
            self.helm_command(args),
            &format!("helm {}", args.join(" ")),
            TOOL_TIMEOUT,
        )
        .await
    }
}

/// Every tool call is bounded: a hung tool fails its trial instead of the run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A pinned binary: `$VAR` if set, else the e2e cache (`e2e/build NAME`, which builds it only
/// when missing and prints the bin directory last).
fn pinned(name: &str, var: &str) -> TestResult<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Ok(PathBuf::from(path));
    }
    let out = std::process::Command::new(repo_root().join("e2e/build"))
        .arg(name)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run e2e/build {name}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let bin = stdout.lines().last().unwrap_or_default().trim();
    if !out.status.success() || bin.is_empty() {
        return Err(format!(
            "e2e/build {name} failed ({}); its output is above",
            out.status
        )
        .into());
    }
    Ok(Path::new(bin).join(name))
}

/// Runs a command with a deadline; its stdout, or an error naming it with stdout and stderr.
pub async fn run(
    cmd: tokio::process::Command,
    what: &str,
    timeout: Duration,
) -> TestResult<String> {
    let out = output(cmd, what, timeout).await?;
    if !out.status.success() {
        return Err(format!(
            "`{what}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command with a deadline (killed when it passes); its output whatever its status. Its
/// stdin is empty unless the command was given one.
pub async fn output(
    mut cmd: tokio::process::Command,
    what: &str,
    timeout: Duration,
) -> TestResult<Output> {
    cmd.kill_on_drop(true);
    match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => Err(format!("`{what}` did not finish within {timeout:?}").into()),
        Ok(Err(e)) => Err(format!("cannot run `{what}`: {e}").into()),
        Ok(Ok(out)) => Ok(out),
    }
}

/// A trial body's result, its panic turned into an error (so that the cleanup still runs).
pub async fn catch_panic(body: impl std::future::Future<Output = TestResult>) -> TestResult {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(body).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => Err(panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".into())
            .into()),
    }
}

/// A trial's result with its cleanup's failure added.
pub fn and_cleanup(result: TestResult, cleanup: Result<(), String>) -> TestResult {
    match (result, cleanup) {
        (Err(e), Err(c)) => Err(format!("{e}\n(and the cleanup failed: {c})").into()),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(c)) => Err(format!("cleanup: {c}").into()),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Combined stdout and stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A kubeconfig (JSON) for `server` and `ca_data` that authenticates with a bearer token.
pub fn token_kubeconfig(server: &str, ca_data: &str, user: &str, token: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": {
            "server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "cluster", "user": user}}],
        "current-context": user,
    })
    .to_string()
}

/// Server URL and CA (base64) of a harness cluster.
pub fn cluster_endpoint(h: &Harness, cluster: &str) -> TestResult<(String, String)> {
    let config: Value = serde_json::from_str(&secret_kubeconfig(&h.kubeconfig(cluster))?)?;
    let c = &config["clusters"][0]["cluster"];
    match (
        c["server"].as_str(),
        c["certificate-authority-data"].as_str(),
    ) {
        (Some(s), Some(ca)) => Ok((s.to_string(), ca.to_string())),
        _ => Err(format!("{cluster}: no server or CA in its kubeconfig").into()),
    }
}

/// A token for a ServiceAccount (TokenRequest API), valid for an hour.
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
) -> TestResult<String> {
    let request: TokenRequest = serde_json::from_value(json!({
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))?;
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), namespace)
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("TokenRequest for {namespace}/{name}: {e}"))?;
    answer
        .status
        .map(|s| s.token)
        .ok_or_else(|| format!("TokenRequest for {namespace}/{name}: no token").into())
}

/// Parses multi-document YAML (as helm and kubectl print it) into objects, skipping empty ones.
pub fn objects(yaml: &str) -> TestResult<Vec<Value>> {
    Ok(serde_saphyr::from_multiple::<Value>(yaml)?
        .into_iter()
        .filter(|v| v.is_object())
        .collect())
}

// ---------------------------------------------------------------------------------------------
// chart::lint_render_and_schema

const CHART: &str = "charts/bascule";

/// The hub permissions of docs/install.md, rule by rule: (apiGroup, resource, verbs).
const CLUSTER_RULES: &[(&str, &str, &[&str])] = &[
    (
        "bascule.dev",
        "memberclusters",
        &["get", "list", "watch", "patch", "update"],
    ),
    (
        "bascule.dev",
        "memberclusters/status",
        &["get", "patch", "update"],
    ),
    (
        "bascule.dev",
        "multicloudworkloads",
        &["get", "list", "watch", "patch", "update"],
    ),
    (
        "bascule.dev",
        "multicloudworkloads/status",
        &["get", "patch", "update"],
    ),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("", "namespaces[kube-system]", &["get"]),
];

async fn lint_render_and_schema(h: &'static Harness) -> TestResult {
    let tools = Tools::new(h)?;

    for extra in [&[][..], &["--set", "metrics.serviceMonitor.enabled=true"]] {
        let mut args = vec!["lint", "--strict", CHART];
        args.extend_from_slice(extra);
        let out = tools.helm(&args).await?;
        ensure!(
            out.contains("1 chart(s) linted, 0 chart(s) failed")
                && !out.contains("[WARNING]")
                && !out.contains("[ERROR]"),
            "helm {args:?} is not clean:\n{out}"
        );
    }

    let rendered = objects(
        &tools
            .helm(&[
                "template",
                "bascule",
                CHART,
                "--namespace",
                "bascule-system",
            ])
            .await?,
    )?;
    let kinds: BTreeSet<String> = rendered
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap_or("?"), name(o)))
        .collect();
    let expected: BTreeSet<String> = [
        "ServiceAccount/bascule",
        "ClusterRole/bascule",
        "ClusterRole/bascule-edit",
        "ClusterRole/bascule-view",
        "ClusterRoleBinding/bascule",
        "Role/bascule",
        "RoleBinding/bascule",
        "Deployment/bascule",
        "Service/bascule-metrics",
        "PodDisruptionBudget/bascule",
        "ValidatingAdmissionPolicy/bascule-tenancy",
        "ValidatingAdmissionPolicyBinding/bascule-tenancy",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    ensure!(
        kinds == expected,
        "helm template renders {kinds:?}, expected {expected:?}"
    );

    // No wildcard anywhere in any rule; no rule on Secrets outside the namespaced Role.
    for o in rendered
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
    {
        for rule in o["rules"].as_array().into_iter().flatten() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for v in rule[field].as_array().into_iter().flatten() {
                    ensure!(
                        !v.as_str().unwrap_or("").contains('*'),
                        "{} {}: wildcard in {field}: {rule}",
                        o["kind"],
                        name(o)
                    );
                }
            }
            ensure!(
                rule.get("nonResourceURLs").is_none(),
                "{} {}: nonResourceURLs on the hub: {rule}",
                o["kind"],
                name(o)
            );
            let secrets = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r == "secrets");
            ensure!(
                !secrets || o["kind"] == "Role",
                "{} {}: Secrets outside the namespaced Role: {rule}",
                o["kind"],
                name(o)
            );
        }
    }
    let operator_rules = |kind: &str| -> TestResult<BTreeSet<(String, String, Vec<String>)>> {
        let role = find(&rendered, kind, "bascule")?;
        let mut rules = BTreeSet::new();
        for rule in role["rules"].as_array().into_iter().flatten() {
            let verbs: Vec<String> = strings(&rule["verbs"]);
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    let names = strings(&rule["resourceNames"]);
                    let resource = if names.is_empty() {
                        resource
                    } else {
                        format!("{resource}[{}]", names.join(","))
                    };
                    rules.insert((group.clone(), resource, verbs.clone()));
                }
            }
        }
        Ok(rules)
    };
    let expected_cluster: BTreeSet<(String, String, Vec<String>)> = CLUSTER_RULES
        .iter()
        .map(|(g, r, v)| {
            (
                g.to_string(),
                r.to_string(),
                v.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect();
    let cluster = operator_rules("ClusterRole")?;
    ensure!(
        cluster == expected_cluster,
        "the operator's ClusterRole grants {cluster:?}, expected exactly {expected_cluster:?}"
    );
    let namespaced = operator_rules("Role")?;
    let expected_namespaced: BTreeSet<(String, String, Vec<String>)> = [
        ("", "secrets", vec!["get", "list", "watch"]),
        ("coordination.k8s.io", "leases", vec!["create"]),
        (
            "coordination.k8s.io",
            "leases[bascule-controller]",
            vec!["get", "update", "patch"],
        ),
    ]
    .into_iter()
    .map(|(g, r, v)| {
        (
            g.to_string(),
            r.to_string(),
            v.into_iter().map(String::from).collect(),
        )
    })
    .collect();
    ensure!(
        namespaced == expected_namespaced,
        "the operator's Role grants {namespaced:?}, expected exactly {expected_namespaced:?}"
    );

    // The Deployment.
    let d = find(&rendered, "Deployment", "bascule")?;
    ensure!(
        d["spec"]["replicas"] == 2,
        "replicas: {}",
        d["spec"]["replicas"]
    );
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    ensure!(
        c["image"] == format!("ghcr.io/bascule-dev/bascule:{}", env!("CARGO_PKG_VERSION")),
        "image {} is not ghcr.io/bascule-dev/bascule:<appVersion>",
        c["image"]
    );
    let args = strings(&c["args"]);
    for want in [
        "run",
        "--leader-election",
        "--lease-name=bascule-controller",
        "--http-addr=0.0.0.0:8080",
        "--log-format=json",
        // The tenancy policy: the operator's own default kinds, written out in values.yaml.
        &format!(
            "--allowed-kinds={}",
            bascule::policy::tenancy::DEFAULT_ALLOWED_KINDS.join(",")
        ),
        "--denied-namespaces=kube-*,bascule-system",
    ] {
        ensure!(args.iter().any(|a| a == want), "args {args:?} lack {want}");
    }
    ensure!(
        !args.iter().any(|a| a == "--allow-rbac"),
        "RBAC kinds allowed by default: {args:?}"
    );
    ensure!(
        !args.iter().any(|a| a == "--allow-exec-plugins"),
        "exec plugins allowed by default: {args:?}"
    );
    for (var, field) in [
        ("BASCULE_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        let found = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == var && e["valueFrom"]["fieldRef"]["fieldPath"] == field);
        ensure!(
            found,
            "env {var} is not the downward API's {field}: {}",
            c["env"]
        );
    }
    ensure!(
        c["ports"][0]["name"] == "http" && c["ports"][0]["containerPort"] == 8080,
        "container port: {}",
        c["ports"]
    );
    for (probe, path) in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        ensure!(
            get["path"] == path && get["port"] == "http",
            "{probe}: {}",
            c[probe]
        );
    }
    let psc = &pod["securityContext"];
    ensure!(
        psc["runAsNonRoot"] == true
            && psc["runAsUser"] == 65532
            && psc["seccompProfile"]["type"] == "RuntimeDefault",
        "pod securityContext: {psc}"
    );
    let sc = &c["securityContext"];
    ensure!(
        sc["readOnlyRootFilesystem"] == true
            && sc["allowPrivilegeEscalation"] == false
            && sc["runAsNonRoot"] == true
            && sc["privileged"] == false
            && sc["capabilities"]["drop"] == json!(["ALL"])
            && sc["capabilities"].get("add").is_none()
            && sc["seccompProfile"]["type"] == "RuntimeDefault",
        "container securityContext: {sc}"
    );
    ensure!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["requests"]["memory"].is_string()
            && c["resources"]["limits"]["memory"].is_string(),
        "resources: {}",
        c["resources"]
    );
    ensure!(
        pod["serviceAccountName"] == "bascule",
        "serviceAccountName: {}",
        pod["serviceAccountName"]
    );
    let selector = &d["spec"]["selector"]["matchLabels"];
    let pdb = find(&rendered, "PodDisruptionBudget", "bascule")?;
    ensure!(
        pdb["spec"]["minAvailable"] == 1 && pdb["spec"]["selector"]["matchLabels"] == *selector,
        "PDB: {}",
        pdb["spec"]
    );
    let svc = find(&rendered, "Service", "bascule-metrics")?;
    ensure!(
        svc["spec"]["selector"] == *selector
            && svc["spec"]["ports"][0]["name"] == "http-metrics"
            && svc["spec"]["ports"][0]["targetPort"] == "http",
        "metrics Service: {}",
        svc["spec"]
    );

    // Options: a ServiceMonitor on request; no PDB for a single replica (it would block drains).
    let with_monitor = objects(
        &tools
            .helm(&[
                "template",
                "bascule",
                CHART,
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "metrics.serviceMonitor.labels.release=prometheus",
            ])
            .await?,
    )?;
    let sm = find(&with_monitor, "ServiceMonitor", "bascule")?;
    ensure!(
        sm["spec"]["endpoints"][0]["port"] == "http-metrics"
            && sm["spec"]["endpoints"][0]["path"] == "/metrics"
            && sm["metadata"]["labels"]["release"] == "prometheus"
            && sm["spec"]["selector"]["matchLabels"] == *selector,
        "ServiceMonitor: {sm}"
    );
    let single = objects(
        &tools
            .helm(&[
                "template",
                "bascule",
                CHART,
                "--set",
                "replicaCount=1",
                "--set",
                "leaderElection.enabled=false",
            ])
            .await?,
    )?;
    ensure!(
        !single.iter().any(|o| o["kind"] == "PodDisruptionBudget"),
        "a PDB for a single replica"
    );
    let single_role = find(&single, "Role", "bascule")?;
    ensure!(
        !single_role.to_string().contains("leases"),
        "Lease permissions without leader election: {single_role}"
    );

    // values.schema.json and the chart's own checks refuse bad values, naming them.
    let refused: &[(&[&str], &str)] = &[
        (&["--set-string", "replicaCount=two"], "/replicaCount"),
        (&["--set", "replicaCount=0"], "/replicaCount"),
        (&["--set", "replicas=3"], "replicas"),
        (
            &["--set", "securityContext.readOnlyRootFilesystem=false"],
            "/securityContext/readOnlyRootFilesystem",
        ),
        (
            &["--set", "securityContext.runAsNonRoot=false"],
            "/securityContext/runAsNonRoot",
        ),
        (&["--set", "operator.logFormat=xml"], "/operator/logFormat"),
        (&["--set", "image.digest=latest"], "/image/digest"),
        (
            &["--set", "leaderElection.enabled=false"],
            "replicaCount > 1 needs leaderElection.enabled",
        ),
    ];
    for (set, needle) in refused {
        let mut args = vec!["template", "bascule", CHART];
        args.extend_from_slice(set);
        let out = tools.helm_output(&args).await?;
        let said = text(&out);
        ensure!(
            !out.status.success() && said.contains(needle),
            "helm {set:?} should be refused naming {needle:?}; got {}:\n{said}",
            out.status
        );
    }
    Ok(())
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("?")
}

fn find<'a>(objects: &'a [Value], kind: &str, name_: &str) -> TestResult<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && name(o) == name_)
        .ok_or_else(|| format!("no {kind}/{name_} rendered").into())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// chart::install_and_chart_rbac_carries_a_workload

const EKS: &str = "eks-use1";
const GKE: &str = "gke-euw1";
/// deploy/member-rbac.yaml's identity.
const MEMBER_NAMESPACE: &str = "bascule-system";
const MEMBER_SA: &str = "bascule-member";

/// What one install trial created, for cleanup whatever happens.
struct Install {
    h: &'static Harness,
    tools: Tools,
    hub: Client,
    members: Vec<(String, Client)>,
    /// Release name = release namespace = the chart's ServiceAccount, Roles and Deployment name.
    release: String,
    app_ns: String,
    clusters: Vec<String>,
    operator: Option<Operator>,
}

async fn install_and_carry_a_workload(h: &'static Harness) -> TestResult {
    for m in [EKS, GKE] {
        ensure!(
            h.members().iter().any(|n| n == m),
            "this trial needs member {m} (members: {:?})",
            h.members()
        );
    }
    let mut members = Vec::new();
    for m in [EKS, GKE] {
        members.push((m.to_string(), h.client(m).await?));
    }
    let release = unique_name("bascule-chart");
    let mut fx = Install {
        h,
        tools: Tools::new(h)?,
        hub: h.client(h.hub()).await?,
        members,
        app_ns: format!("{release}-app"),
        release,
        clusters: Vec::new(),
        operator: None,
    };
    let result = catch_panic(fx.body()).await;
    let result = and_cleanup(result, fx.cleanup().await);
    match &fx.operator {
        Some(op) => op.annotate(result),
        None => result,
    }
}

impl Install {
    async fn body(&mut self) -> TestResult {
        let h = self.h;
        let hub_kubeconfig = h.kubeconfig(h.hub());
        let release = self.release.clone();

        // helm install into the hub: the release installs, its objects exist.
        let t = Instant::now();
        let out = self
            .tools
            .helm(&[
                "install",
                &release,
                CHART,
                "--namespace",
                &release,
                "--create-namespace",
                "--kubeconfig",
                hub_kubeconfig.to_str().ok_or("kubeconfig path")?,
            ])
            .await?;
        ensure!(
            out.contains("STATUS: deployed"),
            "helm install did not deploy:\n{out}"
        );
        println!(
            "helm install {release}: deployed in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let status = self
            .tools
            .helm(&[
                "status",
                &release,
                "--namespace",
                &release,
                "--kubeconfig",
                hub_kubeconfig.to_str().ok_or("kubeconfig path")?,
            ])
            .await?;
        ensure!(
            status.contains("STATUS: deployed"),
            "helm status:\n{status}"
        );
        let deployment = Api::<Deployment>::namespaced(self.hub.clone(), &release)
            .get(&release)
            .await?;
        let spec = deployment.spec.clone().ok_or("Deployment without spec")?;
        ensure!(
            spec.replicas == Some(2),
            "Deployment replicas {:?}",
            spec.replicas
        );
        let listed = self
            .tools
            .kubectl(
                &hub_kubeconfig,
                &[
                    "get",
                    "serviceaccount,role,rolebinding,service,poddisruptionbudget,deployment",
                    "-n",
                    &release,
                    "-l",
                    &format!("app.kubernetes.io/instance={release}"),
                    "-o",
                    "name",
                ],
            )
            .await?;
        let listed: BTreeSet<&str> = listed.lines().collect();
        for want in [
            format!("serviceaccount/{release}"),
            format!("role.rbac.authorization.k8s.io/{release}"),
            format!("rolebinding.rbac.authorization.k8s.io/{release}"),
            format!("service/{release}-metrics"),
            format!("poddisruptionbudget.policy/{release}"),
            format!("deployment.apps/{release}"),
        ] {
            ensure!(
                listed.contains(want.as_str()),
                "{want} not installed; the release has {listed:?}"
            );
        }
        for cr in [
            format!("clusterrole/{release}"),
            format!("clusterrolebinding/{release}"),
            "crd/memberclusters.bascule.dev".to_string(),
            "crd/multicloudworkloads.bascule.dev".to_string(),
        ] {
            self.tools
                .kubectl(&hub_kubeconfig, &["get", &cr, "-o", "name"])
                .await?;
        }
        self.tools
            .kubectl(
                &hub_kubeconfig,
                &[
                    "wait",
                    "--for=condition=Established",
                    "crd/memberclusters.bascule.dev",
                    "crd/multicloudworkloads.bascule.dev",
                    "--timeout=30s",
                ],
            )
            .await?;

        // The operator's identity on the hub: the chart's ServiceAccount.
        let (server, ca) = cluster_endpoint(h, h.hub())?;
        let token = service_account_token(&self.hub, &release, &release).await?;
        let dir = h.dir().join("chart");
        std::fs::create_dir_all(&dir)?;
        let sa_kubeconfig = dir.join(format!("{release}.kubeconfig"));
        write_private(
            &sa_kubeconfig,
            &token_kubeconfig(&server, &ca, &release, &token),
        )?;
        let sa_hub = client_from(&sa_kubeconfig).await?;
        // Least privilege, checked with the API server's own authorizer.
        let rel = Some(release.as_str());
        let checks: &[(&str, &str, &str, Option<&str>, bool)] = &[
            // (verb, group, resource, namespace, allowed)
            ("list", "", "secrets", rel, true),
            ("watch", "", "secrets", rel, true),
            ("list", "", "secrets", Some("default"), false),
            ("list", "", "secrets", None, false),
            ("create", "", "secrets", rel, false),
            ("list", "bascule.dev", "memberclusters", None, true),
            ("delete", "bascule.dev", "memberclusters", None, false),
            (
                "create",
                "bascule.dev",
                "multicloudworkloads",
                Some("default"),
                false,
            ),
            (
                "delete",
                "bascule.dev",
                "multicloudworkloads",
                Some("default"),
                false,
            ),
            (
                "patch",
                "bascule.dev",
                "multicloudworkloads",
                Some("default"),
                true,
            ),
            ("create", "events.k8s.io", "events", Some("default"), true),
            ("create", "coordination.k8s.io", "leases", rel, true),
            (
                "create",
                "coordination.k8s.io",
                "leases",
                Some("default"),
                false,
            ),
            ("list", "", "pods", rel, false),
            ("create", "", "namespaces", None, false),
        ];
        for (verb, group, resource, namespace, allowed) in checks {
            let got = can_i(&sa_hub, verb, group, resource, *namespace, None).await?;
            ensure!(
                got == *allowed,
                "hub: the chart's ServiceAccount may {verb} {group}/{resource} in {namespace:?}: \
                 {got}, expected {allowed}"
            );
        }
        for (lease, allowed) in [("bascule-controller", true), ("another-lease", false)] {
            let got = can_i(
                &sa_hub,
                "update",
                "coordination.k8s.io",
                "leases",
                Some(release.as_str()),
                Some(lease),
            )
            .await?;
            ensure!(
                got == allowed,
                "hub: update lease {lease}: {got}, expected {allowed}"
            );
        }

        // The members: deploy/member-rbac.yaml, and a token of its ServiceAccount in each
        // member's Secret on the hub.
        for (m, member) in self.members.clone() {
            self.tools
                .kubectl(
                    &h.kubeconfig(&m),
                    &["apply", "-f", "deploy/member-rbac.yaml"],
                )
                .await?;
            let token = service_account_token(&member, MEMBER_NAMESPACE, MEMBER_SA).await?;
            let (server, ca) = cluster_endpoint(h, &m)?;
            let kubeconfig = token_kubeconfig(&server, &ca, MEMBER_SA, &token);
            let member_path = dir.join(format!("{release}-{m}.kubeconfig"));
            write_private(&member_path, &kubeconfig)?;
            let as_member = client_from(&member_path).await?;
            let checks: &[(&str, &str, &str, Option<&str>, bool)] = &[
                ("list", "", "nodes", None, true),
                ("create", "", "namespaces", None, true),
                ("delete", "", "namespaces", None, false),
                ("create", "apps", "deployments", Some("any"), true),
                ("delete", "apps", "statefulsets", Some("any"), true),
                ("patch", "", "services", Some("any"), true),
                ("list", "", "configmaps", None, true),
                ("list", "", "secrets", None, false),
                ("create", "", "secrets", Some("any"), false),
                ("create", "", "pods", Some("any"), false),
                (
                    "create",
                    "rbac.authorization.k8s.io",
                    "clusterroles",
                    None,
                    false,
                ),
                ("create", "apps", "daemonsets", Some("any"), false),
            ];
            for (verb, group, resource, namespace, allowed) in checks {
                let got = can_i(&as_member, verb, group, resource, *namespace, None).await?;
                ensure!(
                    got == *allowed,
                    "{m}: bascule-member may {verb} {group}/{resource} in {namespace:?}: {got}, \
                     expected {allowed}"
                );
            }
            let mc = unique_name(&m);
            Api::<Secret>::namespaced(self.hub.clone(), &release)
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({
                        "metadata": {"name": mc, "namespace": release},
                        "stringData": {"kubeconfig": kubeconfig},
                    }))?,
                )
                .await?;
            Api::<MemberCluster>::all(self.hub.clone())
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({
                        "apiVersion": "bascule.dev/v1alpha1",
                        "kind": "MemberCluster",
                        "metadata": {"name": mc, "labels": {"bascule-e2e": "chart"}},
                        "spec": {"connection": {"kubeconfigSecretRef": {"name": mc}}},
                    }))?,
                )
                .await?;
            self.clusters.push(mc);
        }

        // `bascule run` with the chart's ServiceAccount and the Deployment's own arguments (the
        // HTTP endpoints on a free local port instead of 0.0.0.0:8080).
        let container = spec
            .template
            .spec
            .as_ref()
            .and_then(|p| p.containers.first())
            .ok_or("Deployment without a container")?;
        let mut args: Vec<String> = container.args.clone().unwrap_or_default();
        ensure!(
            args.first().map(String::as_str) == Some("run"),
            "the Deployment's args do not start with `run`: {args:?}"
        );
        args.remove(0);
        let http_addr = format!("127.0.0.1:{}", free_port()?);
        let http = format!("--http-addr={http_addr}");
        for a in args.iter_mut() {
            if a.starts_with("--http-addr") {
                *a = http.clone();
            }
        }
        let mut options = OperatorOptions::new(&release, "chart-rbac");
        options.kubeconfig = Some(sa_kubeconfig.clone());
        options.extra_args = args;
        let op = Operator::start(h, options)?;
        println!(
            "operator pid {:?} as system:serviceaccount:{release}:{release}, log {}",
            op.pid(),
            op.log_path().display()
        );
        self.operator = Some(op);

        for mc in self.clusters.clone() {
            self.until(&format!("MemberCluster {mc} Healthy"), async |fx| {
                let c = Api::<MemberCluster>::all(fx.hub.clone())
                    .get(&mc)
                    .await
                    .map_err(|e| e.to_string())?;
                let health = c
                    .status
                    .as_ref()
                    .map(|s| format!("{:?}", s.health))
                    .unwrap_or_default();
                if health == "Healthy" {
                    Ok(())
                } else {
                    Err(format!("health {health:?}, status {:?}", c.status))
                }
            })
            .await?;
        }

        // The chart's probe paths and metrics port are the binary's.
        for path in ["/livez", "/readyz", "/metrics"] {
            let (code, body) = http_get(&http_addr, path).await?;
            ensure!(
                code == 200,
                "GET {path} on the chart's --http-addr: {code}\n{body}"
            );
            if path == "/metrics" {
                ensure!(
                    body.lines().any(|l| l.starts_with("bascule_")),
                    "/metrics has no bascule_ metric:\n{body}"
                );
            }
        }

        // A workload across both members, carried to Ready=True.
        Api::<Namespace>::all(self.hub.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": self.app_ns}}))?,
            )
            .await?;
        let workloads = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), &self.app_ns);
        let w: MultiCloudWorkload = serde_json::from_value(json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MultiCloudWorkload",
            "metadata": {"name": "web", "namespace": self.app_ns},
            "spec": {
                "replicas": 4,
                "placement": {"mode": "Divided", "tiers": [
                    {"clusterNames": [self.clusters[0]], "weight": 1},
                    {"clusterNames": [self.clusters[1]], "weight": 1},
                ]},
                "template": {"manifests": [
                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                     "spec": {"selector": {"matchLabels": {"app": "web"}},
                              "template": {"metadata": {"labels": {"app": "web"}},
                                           "spec": {"containers": [{"name": "web",
                                               "image": "registry.k8s.io/pause:3.10"}]}}}},
                    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}},
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"},
                     "data": {"greeting": "hello"}},
                ]},
            },
        }))?;
        // The chart's ValidatingAdmissionPolicy refuses, at create time, a template the
        // operator's tenancy policy would refuse (a Job is not among the default kinds; RBAC is
        // off). The policy takes a moment to be enforced after the install.
        let mut refused_job = serde_json::to_value(&w)?;
        refused_job["metadata"]["name"] = json!("with-a-job");
        refused_job["spec"]["template"]["manifests"]
            .as_array_mut()
            .ok_or("manifests")?
            .push(json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
                         "spec": {"template": {"spec": {"restartPolicy": "Never",
                             "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}}}}));
        let refused_job: MultiCloudWorkload = serde_json::from_value(refused_job)?;
        let message = self
            .until("the tenancy admission policy refuses a Job", async |fx| {
                let api = Api::<MultiCloudWorkload>::namespaced(fx.hub.clone(), &fx.app_ns);
                match api.create(&PostParams::default(), &refused_job).await {
                    Err(kube::Error::Api(s)) if s.code == 422 || s.code == 403 => Ok(s.message),
                    Ok(_) => {
                        let _ = api.delete("with-a-job", &DeleteParams::default()).await;
                        Err("created: the policy is not enforced yet".to_string())
                    }
                    Err(e) => Err(e.to_string()),
                }
            })
            .await?;
        ensure!(
            message.contains("tenancy policy") && message.contains("Job/once (batch/v1)"),
            "the refusal does not name the policy and the object: {message}"
        );
        let t = Instant::now();
        workloads.create(&PostParams::default(), &w).await?;
        let ready = self
            .until("workload web Ready=True", async |fx| {
                let w = Api::<MultiCloudWorkload>::namespaced(fx.hub.clone(), &fx.app_ns)
                    .get("web")
                    .await
                    .map_err(|e| e.to_string())?;
                let s = w.status.clone().unwrap_or_default();
                let ready = s.conditions.iter().find(|c| c.type_ == "Ready");
                match ready {
                    Some(c)
                        if c.status == "True" && s.observed_generation == w.metadata.generation =>
                    {
                        Ok(w)
                    }
                    _ => Err(format!(
                        "generation {:?}/{:?}, conditions {:?}",
                        s.observed_generation, w.metadata.generation, s.conditions
                    )),
                }
            })
            .await?;
        println!(
            "web Ready=True in {:.1} s: {:?}",
            t.elapsed().as_secs_f64(),
            ready.status.as_ref().and_then(|s| s.placement.clone())
        );
        let uid = ready.uid().ok_or("workload without uid")?;
        let mut placed = 0;
        for (m, member) in &self.members {
            let selector = format!("bascule.dev/workload-uid={uid}");
            let lp = ListParams::default().labels(&selector);
            let deployments = Api::<Deployment>::namespaced(member.clone(), &self.app_ns)
                .list(&lp)
                .await?;
            let cms = Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(
                member.clone(),
                &self.app_ns,
            )
            .list(&lp)
            .await?;
            ensure!(
                deployments.items.len() == 1 && cms.items.len() == 1,
                "{m}: {} Deployment(s), {} ConfigMap(s) of the workload",
                deployments.items.len(),
                cms.items.len()
            );
            placed += deployments.items[0]
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(0);
        }
        ensure!(
            placed == 4,
            "{placed} replicas placed in the members, expected 4"
        );

        // Events were recorded (events.k8s.io create) and the Lease is held (leases).
        self.until("a Placed Event for web", async |fx| {
            let events = Api::<Event>::namespaced(fx.hub.clone(), &fx.app_ns)
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let reasons: Vec<String> = events
                .items
                .iter()
                .filter(|e| {
                    e.reporting_controller
                        .as_deref()
                        .is_some_and(|c| c.contains("bascule"))
                })
                .filter_map(|e| e.reason.clone())
                .collect();
            if reasons.iter().any(|r| r == "Placed") {
                Ok(())
            } else {
                Err(format!("Events by Bascule: {reasons:?}"))
            }
        })
        .await?;
        if container
            .args
            .iter()
            .flatten()
            .any(|a| a == "--leader-election")
        {
            let lease = Api::<Lease>::namespaced(self.hub.clone(), &release)
                .get("bascule-controller")
                .await
                .map_err(|e| format!("the leader Lease bascule-controller: {e}"))?;
            let holder = lease.spec.and_then(|s| s.holder_identity);
            ensure!(holder.is_some(), "Lease bascule-controller has no holder");
            println!("Lease bascule-controller held by {holder:?}");
        }

        // Deleting it removes everything from the members (member delete permission, finalizer
        // patch on the hub).
        let t = Instant::now();
        workloads.delete("web", &DeleteParams::default()).await?;
        self.until("workload web deleted, members empty", async |fx| {
            let left = Api::<MultiCloudWorkload>::namespaced(fx.hub.clone(), &fx.app_ns)
                .get_opt("web")
                .await
                .map_err(|e| e.to_string())?;
            if left.is_some() {
                return Err("the workload is still there (finalizer)".into());
            }
            for (m, member) in &fx.members {
                let n = Api::<Deployment>::namespaced(member.clone(), &fx.app_ns)
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .len();
                if n > 0 {
                    return Err(format!("{m} still has {n} Deployment(s)"));
                }
            }
            Ok(())
        })
        .await?;
        println!(
            "deleted from both members in {:.1} s",
            t.elapsed().as_secs_f64()
        );

        // Nothing was refused along the way.
        let op = self.operator.as_mut().ok_or("no operator")?;
        op.ensure_running()?;
        let log = std::fs::read_to_string(op.log_path())?;
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("forbidden") || l.contains("403")
            })
            .take(5)
            .collect();
        ensure!(
            refused.is_empty(),
            "the operator was refused something with the chart's RBAC:\n{}",
            refused.join("\n")
        );
        Ok(())
    }

    /// Polls `check` every 250 ms for up to 60 s, failing at once if the operator exits.
    async fn until<T>(
        &mut self,
        what: &str,
        mut check: impl AsyncFnMut(&Install) -> Result<T, String>,
    ) -> Result<T, String> {
        let start = Instant::now();
        loop {
            if let Some(op) = self.operator.as_mut() {
                op.ensure_running().map_err(|e| format!("{what}: {e}"))?;
            }
            match check(self).await {
                Ok(v) => return Ok(v),
                Err(last) if start.elapsed() >= Duration::from_secs(60) => {
                    return Err(format!("{what}: not within 60 s; last seen: {last}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Removes what the trial created: the workload (by the operator, else its finalizer), the
    /// operator, the MemberClusters, the release (helm uninstall) and the namespaces. The member
    /// RBAC of deploy/member-rbac.yaml stays applied (idempotent, shared by later trials).
    async fn cleanup(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        let workloads = Api::<MultiCloudWorkload>::namespaced(self.hub.clone(), &self.app_ns);
        let running = self
            .operator
            .as_mut()
            .is_some_and(|op| op.ensure_running().is_ok());
        if running && workloads.get_opt("web").await.ok().flatten().is_some() {
            let _ = workloads.delete("web", &DeleteParams::default()).await;
            let _ = wait::until(
                "workload deleted by the operator",
                Duration::from_secs(30),
                Duration::from_millis(250),
                || async {
                    match workloads.get_opt("web").await {
                        Ok(None) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                },
            )
            .await;
        }
        if let Some(op) = self.operator.as_mut()
            && op.pid().is_some()
            && let Err(e) = op.stop(Duration::from_secs(10))
        {
            problems.push(format!("stopping the operator: {e}"));
        }
        if let Ok(Some(_)) = workloads.get_opt("web").await {
            let _ = workloads
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                )
                .await;
            let _ = workloads.delete("web", &DeleteParams::default()).await;
        }
        crate::support::delete_member_clusters(&self.hub, &self.clusters).await;
        let hub_kubeconfig = self.h.kubeconfig(self.h.hub());
        if let Err(e) = self
            .tools
            .helm(&[
                "uninstall",
                &self.release,
                "--namespace",
                &self.release,
                "--kubeconfig",
                hub_kubeconfig.to_str().unwrap_or_default(),
            ])
            .await
        {
            problems.push(format!("helm uninstall: {e}"));
        }
        for ns in [&self.release, &self.app_ns] {
            let _ = Api::<Namespace>::all(self.hub.clone())
                .delete(ns, &DeleteParams::default())
                .await;
        }
        for (m, member) in &self.members {
            if let Err(e) = Api::<Namespace>::all(member.clone())
                .delete(&self.app_ns, &DeleteParams::default())
                .await
                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
            {
                problems.push(format!("{m}: deleting namespace {}: {e}", self.app_ns));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// `kubectl auth can-i` through the API: a SelfSubjectAccessReview as the client's identity.
async fn can_i(
    client: &Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name_: Option<&str>,
) -> TestResult<bool> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (resource, None),
    };
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({
        "spec": {"resourceAttributes": {
            "verb": verb, "group": group, "resource": resource, "subresource": subresource,
            "namespace": namespace, "name": name_,
        }}
    }))?;
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> TestResult<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(Client::try_from(config)?)
}

/// Writes a file readable by its owner only (it holds a token).
pub fn write_private(path: &Path, contents: &str) -> TestResult<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}
