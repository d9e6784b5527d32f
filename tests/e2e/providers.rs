//! Native provider connections end to end: a member that authenticates Bascule by its cloud
//! identity, with no kubeconfig Secret anywhere.
//!
//! The trial starts its own member control plane (a second `e2e/cluster` state directory under
//! the run's, torn down at the end, also on failure) whose kube-apiserver sends unknown bearer
//! tokens to a webhook (e2e/aws/fake-aws.py: the EKS authenticator's checks, against moto).
//! `bascule run` gets AWS credentials the standard way (environment variables, here the moto
//! user `bascule-hub`) and `AWS_ENDPOINT_URL` pointing at moto; it assumes the role
//! `bascule-member`, describes the cluster (moto answers with the real member's endpoint and
//! CA), and signs `k8s-aws-v1.` tokens. On the member, the role's ARN is bound to the
//! least-privilege ClusterRole of deploy/member-rbac.yaml, and a workload is placed through it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bascule::api::{MemberCluster, MultiCloudWorkload};
use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use libtest_mimic::Trial;
use serde_json::{Value, json};

use crate::support::fleet::condition;
// The moto starter of the non-e2e tests: its seeding and its process guard are used here
// (fake-aws.py runs moto itself).
#[path = "../common/moto.rs"]
#[allow(dead_code)]
mod moto;
use crate::support::http::free_port;
use crate::support::operator::{Operator, OperatorOptions};
use crate::support::wait::until;
use crate::support::{Harness, TestResult, Topology, member_rbac, run_cluster_script, trial};
use moto::group_child::GroupChild;

/// The member whose API server trusts the AWS token webhook (an EKS-like name: EKS-like nodes).
const EKS_MEMBER: &str = "eks-iam";
const ROLE: &str = "arn:aws:iam::123456789012:role/bascule-member";
/// The workload each trial places through the cloud identity (its Deployment has this name).
const PLACED: &str = "cloud-identity";

/// The member whose API server accepts Google access tokens (GKE-like nodes).
const GKE_MEMBER: &str = "gke-wi";
const GOOGLE_ACCOUNT: &str = "bascule@shop-prod-4711.iam.gserviceaccount.com";
/// Short-lived Google tokens, so that the trial sees several refreshes.
const GOOGLE_TOKEN_LIFETIME: u64 = 20;

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![
        trial(
            "providers::eks_member_authenticates_bascule_by_its_iam_role",
            |h| async move { eks_end_to_end(h).await },
        ),
        trial(
            "providers::gke_member_authenticates_bascule_by_its_google_service_account",
            |h| async move { gke_end_to_end(h).await },
        ),
    ]
}

async fn eks_end_to_end(h: &'static Harness) -> TestResult {
    let dir = h.dir().join("providers-eks");
    std::fs::create_dir_all(&dir)?;
    let fake = FakeAws::start(&dir, None)?;
    let clusters = ExtraClusters::up(&dir, &fake.webhook_url, EKS_MEMBER)?;
    let result = eks_trial(h, &dir, &fake, &clusters).await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "{e}\n--- fake-aws.py log (tail) ---\n{}",
            fake.process.log_tail(30)
        )
        .into()),
    }
}

async fn eks_trial(
    h: &'static Harness,
    dir: &Path,
    fake: &FakeAws,
    clusters: &ExtraClusters,
) -> TestResult {
    // moto: the operator's IAM user, the role it assumes, the EKS cluster; then the cluster's
    // endpoint and CA are made those of the real member.
    let seed = moto::seed(&fake.moto_url, &[EKS_MEMBER])?;
    let (server, ca_data) = clusters.endpoint(EKS_MEMBER)?;
    fake.adopt(EKS_MEMBER, &server, &ca_data)?;

    // The member: deploy/member-rbac.yaml, and the role's ARN bound to its ClusterRole (what an
    // EKS access entry for the role with that Kubernetes group would do).
    let member = clusters.client(EKS_MEMBER).await?;
    member_rbac::install(&member).await?;
    bind_user(&member, ROLE).await?;

    // The hub: the operator's namespace, a MemberCluster with an eks connection, and one that
    // names a cluster moto does not have.
    let mc = crate::support::unique_name("eks-iam");
    let missing = crate::support::unique_name("eks-missing");
    let eks = |cluster: &str| json!({"eks": {"clusterName": cluster, "region": "us-east-1", "roleARN": ROLE}});
    let (hub, ns, _cleanup) = hub_setup(
        h,
        &[(&mc, eks(EKS_MEMBER)), (&missing, eks("no-such-cluster"))],
    )
    .await?;
    let mcs = Api::<MemberCluster>::all(hub.clone());

    let hub_key = seed["hub"]["id"].as_str().unwrap_or_default().to_string();
    let hub_secret = seed["hub"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut options = OperatorOptions::new(&ns, "providers-eks");
    // The trial's one namespace holds the operator and the workload: the default tenancy policy
    // would refuse placing into the operator's namespace.
    options.extra_args = vec!["--denied-namespaces=kube-*".into()];
    options.env = vec![
        ("AWS_ACCESS_KEY_ID".into(), hub_key),
        ("AWS_SECRET_ACCESS_KEY".into(), hub_secret.clone()),
        ("AWS_ENDPOINT_URL".into(), fake.moto_url.clone()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        (
            "AWS_CONFIG_FILE".into(),
            "/nonexistent/bascule-e2e/config".into(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            "/nonexistent/bascule-e2e/credentials".into(),
        ),
    ];
    let mut operator = Operator::start(h, options)?;
    let t0 = Instant::now();

    // Ready: DescribeCluster, AssumeRole, a token the member's webhook accepted, nodes listed
    // with the least-privilege role.
    let ready = wait_ready(&mcs, &mc).await;
    let ready = operator_annotated(&operator, ready)?;
    let status = ready.status.clone().unwrap_or_default();
    println!(
        "{mc}: Ready after {:.1} s; provider {:?}, region {:?}, nodes {:?}, {:?}",
        t0.elapsed().as_secs_f64(),
        status.provider,
        status.region,
        status.nodes.as_ref().map(|n| &n.summary),
        status.kubernetes_version
    );
    if status.nodes.as_ref().map(|n| n.ready) != Some(2) {
        return Err(format!(
            "expected 2 Ready nodes on {EKS_MEMBER}, got {:?}",
            status.nodes
        )
        .into());
    }
    let log = fake.process.log();
    let accepted = format!("review cluster={EKS_MEMBER} authenticated username={ROLE}");
    if !log.contains(&accepted) {
        return Err(format!("the webhook never authenticated the role ({accepted:?})").into());
    }

    // A cluster moto does not know: ClusterNotFound, with AWS's message.
    let not_found = wait_reason(&mcs, &missing, "ClusterNotFound").await?;
    println!(
        "{missing}: {} {}: {}",
        not_found.status, not_found.reason, not_found.message
    );
    if !not_found.message.contains("no-such-cluster") {
        return Err(format!("unexpected condition: {not_found:?}").into());
    }

    // A workload placed through the IAM identity.
    let deployments = place(&hub, &ns, &mc, &member).await;
    let deployments = operator_annotated(&operator, deployments)?;
    let placed = deployments.get(PLACED).await?;
    let manager = placed
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|f| f.manager.unwrap_or_default())
        .collect::<Vec<_>>();
    println!("placed on {EKS_MEMBER} through the IAM role; field managers {manager:?}");

    // Credentials never leave the operator: not in status, not in its log.
    no_credential_in_status_or_log(
        &mcs,
        &[&mc, &missing],
        &operator,
        &[
            ("the AWS secret key", &hub_secret),
            ("an EKS token", "k8s-aws-v1."),
        ],
    )
    .await?;

    // Deleting the workload removes it from the member, still through the role.
    unplace(&hub, &ns, &deployments).await?;
    operator.stop(Duration::from_secs(10))?;
    let _ = dir;
    Ok(())
}

async fn gke_end_to_end(h: &'static Harness) -> TestResult {
    let dir = h.dir().join("providers-gke");
    std::fs::create_dir_all(&dir)?;
    let key_file = dir.join("service-account.json");
    let google = FakeGoogle::start(&dir, &key_file)?;
    let fake = FakeAws::start(&dir, Some(&format!("{}/tokeninfo", google.url)))?;
    let clusters = ExtraClusters::up(&dir, &fake.webhook_url, GKE_MEMBER)?;
    let result = gke_trial(h, &google, &key_file, &clusters).await;
    result.map_err(|e| {
        format!(
            "{e}\n--- fake-google.py log (tail) ---\n{}\n--- webhook log (tail) ---\n{}",
            google.process.log_tail(20),
            fake.process.log_tail(20)
        )
        .into()
    })
}

async fn gke_trial(
    h: &'static Harness,
    google: &FakeGoogle,
    key_file: &Path,
    clusters: &ExtraClusters,
) -> TestResult {
    let (server, ca_data) = clusters.endpoint(GKE_MEMBER)?;
    let endpoint = server.trim_start_matches("https://").to_string();
    post_json(
        &format!("{}/admin/cluster", google.url),
        &json!({"project": "shop-prod-4711", "location": "europe-west1", "name": GKE_MEMBER,
                "endpoint": endpoint, "caData": ca_data}),
    )?;
    // What a GKE RBAC binding for the Google service account does: its email is the user name.
    let member = clusters.client(GKE_MEMBER).await?;
    member_rbac::install(&member).await?;
    bind_user(&member, GOOGLE_ACCOUNT).await?;

    let mc = crate::support::unique_name("gke-wi");
    let missing = crate::support::unique_name("gke-missing");
    let gke = |cluster: &str| json!({"gke": {"project": "shop-prod-4711", "location": "europe-west1", "cluster": cluster}});
    let (hub, ns, _cleanup) = hub_setup(
        h,
        &[(&mc, gke(GKE_MEMBER)), (&missing, gke("no-such-cluster"))],
    )
    .await?;
    let mcs = Api::<MemberCluster>::all(hub.clone());
    // The key is not there when the operator starts (a credential mounted late, a typo fixed
    // in place): CredentialsMissing, then Ready once it appears, without a restart.
    let late_key = key_file.with_file_name("mounted-late.json");
    let _ = std::fs::remove_file(&late_key);
    let mut options = OperatorOptions::new(&ns, "providers-gke");
    options.extra_args = vec![
        "--gke-api-url".into(),
        format!("{}/", google.url),
        // One namespace for the operator and the workload (see the EKS trial).
        "--denied-namespaces=kube-*".into(),
    ];
    options.env = vec![(
        "GOOGLE_APPLICATION_CREDENTIALS".into(),
        late_key.display().to_string(),
    )];
    let mut operator = Operator::start(h, options)?;
    let missing_key = wait_reason(&mcs, &mc, "CredentialsMissing").await;
    let missing_key = operator_annotated(&operator, missing_key)?;
    println!("{mc} before the key exists: {}", missing_key.message);
    std::fs::copy(key_file, &late_key)?;
    let t0 = Instant::now();
    let ready = operator_annotated(&operator, wait_ready(&mcs, &mc).await)?;
    let status = ready.status.clone().unwrap_or_default();
    println!(
        "{mc}: Ready {:.1} s after the key appeared; provider {:?}, region {:?}, nodes {:?}",
        t0.elapsed().as_secs_f64(),
        status.provider,
        status.region,
        status.nodes.as_ref().map(|n| &n.summary),
    );
    let accepted = format!("review cluster={GKE_MEMBER} authenticated username={GOOGLE_ACCOUNT}");
    let webhook_log = std::fs::read_to_string(
        clusters
            .dir
            .parent()
            .unwrap_or(Path::new("/"))
            .join("fake-aws.log"),
    )
    .unwrap_or_default();
    if !webhook_log.contains(&accepted) {
        return Err(
            format!("the webhook never authenticated the service account ({accepted:?})").into(),
        );
    }
    let not_found = wait_reason(&mcs, &missing, "ClusterNotFound").await?;
    println!(
        "{missing}: {} {}: {}",
        not_found.status, not_found.reason, not_found.message
    );

    // Place a workload, then stay: tokens live 20 s, so several are replaced while the member
    // keeps answering (an expired token would be refused by tokeninfo: Unauthorized).
    let deployments = place(&hub, &ns, &mc, &member).await;
    let deployments = operator_annotated(&operator, deployments)?;
    let issued_before = google.tokens_issued();
    let watch_until = Instant::now() + Duration::from_secs(3 * GOOGLE_TOKEN_LIFETIME);
    while Instant::now() < watch_until {
        let m = mcs.get(&mc).await?;
        let c = m
            .status
            .as_ref()
            .and_then(|s| condition(&s.conditions, "Ready"))
            .cloned();
        match c {
            Some(c) if c.status == "True" => {}
            other => {
                return Err(
                    format!("{mc} lost Ready while tokens were refreshed: {other:?}").into(),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let refreshed = google.tokens_issued() - issued_before;
    println!(
        "{refreshed} Google tokens issued in {} s of {GOOGLE_TOKEN_LIFETIME}-s tokens; Ready throughout",
        3 * GOOGLE_TOKEN_LIFETIME
    );
    if refreshed < 3 {
        return Err(format!("expected at least 3 token refreshes in 60 s, saw {refreshed}").into());
    }

    // No credential in status or log: not the key, not an access token.
    let key: Value = serde_json::from_str(&std::fs::read_to_string(key_file)?)?;
    let private_key = key["private_key"].as_str().unwrap_or_default();
    let key_body = private_key.lines().nth(2).unwrap_or("unlikely");
    no_credential_in_status_or_log(
        &mcs,
        &[&mc, &missing],
        &operator,
        &[
            ("the service account's private key", key_body),
            ("a Google access token", "ya29."),
        ],
    )
    .await?;
    unplace(&hub, &ns, &deployments).await?;
    operator.stop(Duration::from_secs(10))?;
    Ok(())
}

/// The hub side of a trial: the CRDs, a namespace for the operator and the workload, and a
/// MemberCluster per `(name, spec.connection)`; removed when the returned guard drops.
async fn hub_setup(
    h: &Harness,
    members: &[(&String, Value)],
) -> Result<(Client, String, Cleanup), Box<dyn std::error::Error + Send + Sync>> {
    let hub = h.client(h.hub()).await?;
    crate::crds::install_crds(&hub).await?;
    let ns = crate::support::unique_name("providers");
    Api::<Namespace>::all(hub.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let cleanup = Cleanup {
        hub: hub.clone(),
        ns: ns.clone(),
        mcs: members.iter().map(|(name, _)| name.to_string()).collect(),
    };
    let mcs = Api::<MemberCluster>::all(hub.clone());
    for (name, connection) in members {
        let object: MemberCluster = serde_json::from_value(json!({
            "apiVersion": "bascule.dev/v1alpha1", "kind": "MemberCluster",
            "metadata": {"name": name},
            "spec": {"connection": connection, "health": {"periodSeconds": 2, "successThreshold": 1}},
        }))?;
        mcs.create(&PostParams::default(), &object).await?;
    }
    Ok((hub, ns, cleanup))
}

/// Credentials never leave the operator: none of `secrets` (what, text) appears in the
/// MemberClusters' status or in the operator's log.
async fn no_credential_in_status_or_log(
    mcs: &Api<MemberCluster>,
    names: &[&String],
    operator: &Operator,
    secrets: &[(&str, &str)],
) -> TestResult {
    let mut statuses = String::new();
    for name in names {
        statuses += &serde_json::to_string(&mcs.get(name).await?.status)?;
    }
    let operator_log = std::fs::read_to_string(operator.log_path())?;
    for (place, text) in [
        ("MemberCluster status", &statuses),
        ("operator log", &operator_log),
    ] {
        for (what, secret) in secrets {
            if text.contains(secret) {
                return Err(format!("{what} appears in the {place}").into());
            }
        }
    }
    Ok(())
}

async fn bind_user(member: &Client, user: &str) -> TestResult {
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "bascule-member-cloud-identity"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bascule-member"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))?;
    Api::<ClusterRoleBinding>::all(member.clone())
        .patch(
            "bascule-member-cloud-identity",
            &PatchParams::apply("bascule-e2e").force(),
            &Patch::Apply(&binding),
        )
        .await?;
    Ok(())
}

async fn wait_ready(mcs: &Api<MemberCluster>, mc: &str) -> Result<MemberCluster, String> {
    until(
        &format!("MemberCluster {mc} Ready"),
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || {
            let m = mcs.get(mc).await.map_err(|e| e.to_string())?;
            let c = m
                .status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "Ready"));
            match c {
                Some(c) if c.status == "True" => Ok(m),
                Some(c) => Err(format!("{} {}: {}", c.status, c.reason, c.message)),
                None => Err("no Ready condition yet".into()),
            }
        },
    )
    .await
}

async fn wait_reason(
    mcs: &Api<MemberCluster>,
    mc: &str,
    reason: &str,
) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition, String> {
    until(
        &format!("MemberCluster {mc}: {reason}"),
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || {
            let m = mcs.get(mc).await.map_err(|e| e.to_string())?;
            let c = m
                .status
                .as_ref()
                .and_then(|s| condition(&s.conditions, "Ready"));
            match c {
                Some(c) if c.reason == reason && c.status == "False" => Ok(c.clone()),
                Some(c) => Err(format!("{} {}: {}", c.status, c.reason, c.message)),
                None => Err("no Ready condition yet".into()),
            }
        },
    )
    .await
}

/// Places a 2-replica Deployment on `mc` and waits until the member has it available.
async fn place(
    hub: &Client,
    ns: &str,
    mc: &str,
    member: &Client,
) -> Result<Api<Deployment>, String> {
    let w: MultiCloudWorkload = serde_json::from_value(json!({
        "apiVersion": "bascule.dev/v1alpha1", "kind": "MultiCloudWorkload",
        "metadata": {"name": PLACED, "namespace": ns},
        "spec": {
            "replicas": 2,
            "placement": {"mode": "Divided", "tiers": [{"clusterNames": [mc]}]},
            "template": {"manifests": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": PLACED},
                "spec": {"selector": {"matchLabels": {"app": PLACED}},
                         "template": {"metadata": {"labels": {"app": PLACED}},
                                      "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}}]},
        },
    }))
    .map_err(|e| e.to_string())?;
    Api::<MultiCloudWorkload>::namespaced(hub.clone(), ns)
        .create(&PostParams::default(), &w)
        .await
        .map_err(|e| e.to_string())?;
    let deployments = Api::<Deployment>::namespaced(member.clone(), ns);
    until(
        "Deployment cloud-identity on the member, 2/2 available",
        Duration::from_secs(60),
        Duration::from_millis(250),
        async || {
            let d = deployments
                .get_opt(PLACED)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("not there yet")?;
            let available = d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0);
            if available == 2 {
                Ok(())
            } else {
                Err(format!("{available}/2 available"))
            }
        },
    )
    .await?;
    println!("cloud-identity: 2/2 available on the member");
    Ok(deployments)
}

async fn unplace(hub: &Client, ns: &str, deployments: &Api<Deployment>) -> TestResult {
    Api::<MultiCloudWorkload>::namespaced(hub.clone(), ns)
        .delete(PLACED, &DeleteParams::default())
        .await?;
    until(
        "Deployment cloud-identity removed from the member",
        Duration::from_secs(60),
        Duration::from_millis(250),
        async || match deployments.get_opt(PLACED).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_string()),
            Err(e) => Err(e.to_string()),
        },
    )
    .await?;
    Ok(())
}

fn post_json(url: &str, body: &Value) -> Result<(), String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,urllib.request;urllib.request.urlopen(urllib.request.Request(sys.argv[1],data=sys.argv[2].encode(),method='POST',headers={'Content-Type':'application/json'})).read()",
            url,
            &body.to_string(),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "POST {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// e2e/google/fake-google.py in its own process group, killed by that group when dropped.
struct FakeGoogle {
    process: GroupChild,
    url: String,
}

impl FakeGoogle {
    fn start(dir: &Path, key_file: &Path) -> Result<FakeGoogle, String> {
        let port = free_port()?;
        let _ = std::fs::remove_file(key_file);
        let script = crate::support::repo_root().join("e2e/google/fake-google.py");
        let process = GroupChild::spawn(
            Command::new("python3")
                .arg(&script)
                .args(["--port", &port.to_string()])
                .arg("--key-out")
                .arg(key_file)
                .args(["--token-lifetime", &GOOGLE_TOKEN_LIFETIME.to_string()])
                .env("PYTHONUNBUFFERED", "1"),
            &dir.join("fake-google.log"),
        )
        .map_err(|e| format!("python3 {}: {e}", script.display()))?;
        process
            .wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok() && key_file.exists())
            .map_err(|()| {
                format!(
                    "fake-google.py did not start within 30 s (needs python3 with cryptography):\n{}",
                    process.log_tail(20)
                )
            })?;
        Ok(FakeGoogle {
            process,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    fn tokens_issued(&self) -> usize {
        self.process
            .log()
            .lines()
            .filter(|l| l.starts_with("token issued"))
            .count()
    }
}

fn operator_annotated<T>(operator: &Operator, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| {
        format!(
            "{e}\n--- operator log (tail) ---\n{}",
            operator.log_tail(40)
        )
    })
}

/// Removes the trial's hub objects (the workload first went with its namespace).
struct Cleanup {
    hub: Client,
    ns: String,
    mcs: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (hub, ns, mcs) = (self.hub.clone(), self.ns.clone(), self.mcs.clone());
        // A fresh thread with its own runtime: Drop may run inside the trial's runtime.
        let _ = std::thread::spawn(move || {
            crate::support::block_on(async move {
                crate::support::delete_member_clusters(&hub, &mcs).await;
                let _ = Api::<Namespace>::all(hub)
                    .delete(&ns, &DeleteParams::default())
                    .await;
            })
        })
        .join();
    }
}

/// e2e/aws/fake-aws.py (moto + the token webhook) in its own process group, killed by that
/// group when dropped.
struct FakeAws {
    process: GroupChild,
    moto_url: String,
    webhook_url: String,
}

impl FakeAws {
    fn start(dir: &Path, google_tokeninfo: Option<&str>) -> Result<FakeAws, String> {
        let (moto_port, webhook_port) = (free_port()?, free_port()?);
        let script = crate::support::repo_root().join("e2e/aws/fake-aws.py");
        let mut cmd = Command::new("python3");
        cmd.arg(&script)
            .args(["--moto-port", &moto_port.to_string()])
            .args(["--webhook-port", &webhook_port.to_string()])
            .env("PYTHONUNBUFFERED", "1");
        if let Some(url) = google_tokeninfo {
            cmd.args(["--google-tokeninfo", url]);
        }
        let process = GroupChild::spawn(&mut cmd, &dir.join("fake-aws.log"))
            .map_err(|e| format!("python3 {}: {e}", script.display()))?;
        for port in [moto_port, webhook_port] {
            process
                .wait_until(|| TcpStream::connect(("127.0.0.1", port)).is_ok())
                .map_err(|()| {
                    format!(
                        "fake-aws.py did not listen on {port} within 30 s (needs moto: {}):\n{}",
                        "pip install 'moto[server]==5.2.1'",
                        process.log_tail(20)
                    )
                })?;
        }
        Ok(FakeAws {
            process,
            moto_url: format!("http://127.0.0.1:{moto_port}"),
            webhook_url: format!("http://127.0.0.1:{webhook_port}"),
        })
    }

    fn adopt(&self, name: &str, server: &str, ca_data: &str) -> Result<(), String> {
        let body =
            json!({"region": "us-east-1", "name": name, "endpoint": server, "caData": ca_data});
        let out = Command::new("python3")
            .args([
                "-c",
                "import sys,urllib.request;urllib.request.urlopen(urllib.request.Request(sys.argv[1],data=sys.argv[2].encode(),method='POST')).read()",
                &format!("{}/admin/eks-cluster", self.webhook_url),
                &body.to_string(),
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "adopting {name} in moto failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

/// A member control plane (and nothing else) in its own e2e/cluster state directory, with the
/// token webhook; `down` when dropped.
struct ExtraClusters {
    dir: PathBuf,
}

impl ExtraClusters {
    fn up(parent: &Path, webhook: &str, name: &str) -> Result<ExtraClusters, String> {
        let dir = parent.join("clusters");
        if dir.exists() {
            let _ = run_cluster_script(&dir, ["down"]);
        }
        let clusters = ExtraClusters { dir };
        let t = Instant::now();
        run_cluster_script(
            &clusters.dir,
            [
                "up",
                "--hub",
                name,
                "--members",
                "",
                "--hub-nodes",
                "2",
                "--token-webhook",
                webhook,
            ],
        )
        .map_err(|e| e.to_string())?;
        println!(
            "{name}: control plane with the token webhook up in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        Ok(clusters)
    }

    fn kubeconfig(&self, name: &str) -> PathBuf {
        self.dir.join("kubeconfigs").join(format!("{name}.yaml"))
    }

    async fn client(&self, name: &str) -> Result<Client, String> {
        let k = Kubeconfig::read_from(self.kubeconfig(name)).map_err(|e| e.to_string())?;
        let config = Config::from_custom_kubeconfig(k, &KubeConfigOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Client::try_from(config).map_err(|e| e.to_string())
    }

    /// The API server URL and base64 PEM CA, as EKS's DescribeCluster returns them.
    fn endpoint(&self, name: &str) -> Result<(String, String), String> {
        let k = Kubeconfig::read_from(self.kubeconfig(name)).map_err(|e| e.to_string())?;
        let cluster = k
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .ok_or("no cluster in the kubeconfig")?;
        let server = cluster.server.ok_or("no server")?;
        let ca = match (
            cluster.certificate_authority_data,
            cluster.certificate_authority,
        ) {
            (Some(data), _) => data,
            (None, Some(path)) => base64::engine::general_purpose::STANDARD
                .encode(std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?),
            (None, None) => return Err("no CA in the kubeconfig".into()),
        };
        Ok((server, ca))
    }
}

impl Drop for ExtraClusters {
    fn drop(&mut self) {
        if std::env::var_os("BASCULE_E2E_KEEP").is_none()
            && let Err(e) = run_cluster_script(&self.dir, ["down"])
        {
            eprintln!(
                "e2e: providers: teardown of {} failed: {e}",
                self.dir.display()
            );
        }
    }
}
