//! A trial's own Bascule installation on the shared hub, for the trials that run the operator
//! (`workloads.rs`, `failover.rs`).
//!
//! [`Fleet::run`] creates two namespaces on the hub (one for the operator's kubeconfig Secrets,
//! one for the workloads), a kubeconfig Secret and a MemberCluster (unique names) for each of
//! `eks-use1` and `gke-euw1`, starts `bascule run --namespace NS` as a child process
//! ([`super::operator`]), waits for both MemberClusters to be Ready, runs the trial's body, and
//! cleans up whatever happened — an error, a panic: workloads are deleted while the operator still
//! runs (its finalizer cleans the members), leftovers lose their finalizer, the operator is
//! stopped, the namespaces (hub and members) and MemberClusters are deleted. A failed trial's
//! message ends with the operator's log tail.
//!
//! The failover trials' body gets clients to the members with short timeouts (2 s to connect,
//! 3 s to read), so that polling a stopped or frozen member fails fast instead of hanging the
//! trial, and a [`Sampler`] that polls the members' Deployments and the workload in the
//! background. The workloads trials, whose members never fail, keep the default timeouts (their
//! measurements list thousands of objects).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bascule::api::{MemberCluster, MultiCloudWorkload};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::operator::{Operator, OperatorOptions};
use super::{Harness, TestResult, unique_name};

pub const EKS: &str = "eks-use1";
pub const GKE: &str = "gke-euw1";

/// The ownership labels of the contract (docs/controller.md).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const WORKLOAD_NAMESPACE: &str = "bascule.dev/workload-namespace";
pub const WORKLOAD_NAME: &str = "bascule.dev/workload-name";
pub const WORKLOAD_UID: &str = "bascule.dev/workload-uid";

/// How a fleet is set up.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Names the namespaces and the operator's log.
    pub label: String,
    /// The trial file's name: labels the MemberClusters (`bascule-e2e`) and prefixes the
    /// workloads' namespace (`failover-stop-…`).
    pub group: &'static str,
    /// The MemberClusters' `spec.health` (default: Bascule's defaults, written out: probes every
    /// 2 s with a 2 s deadline, Unhealthy after 3 failures, Healthy again after 15 successes).
    pub health: Value,
    /// Member clients that give up fast (for trials that stop or freeze members).
    pub short_member_timeouts: bool,
    /// More arguments for `bascule run`.
    pub operator_args: Vec<String>,
    /// The harness members this fleet gets a MemberCluster for (default: eks-use1, gke-euw1).
    pub members: Vec<String>,
    /// How long each MemberCluster may take to turn Healthy at setup (default 30 s).
    pub healthy_within: Duration,
    /// Clean up without the operator: stop it, drop the workloads' finalizers and delete the
    /// namespaces (the fleet benchmark's thousand workloads; deletion is tested elsewhere).
    pub fast_cleanup: bool,
    /// The operator's `BASCULE_LOG` (default: the test's own, else `info,bascule=debug`).
    pub operator_log: Option<String>,
}

impl FleetOptions {
    /// A failover trial's fleet.
    pub fn new(label: &str) -> Self {
        FleetOptions {
            label: label.to_string(),
            group: "failover",
            health: json!({"periodSeconds": 2, "timeoutSeconds": 2, "failureThreshold": 3,
                           "successThreshold": 15}),
            short_member_timeouts: true,
            operator_args: Vec::new(),
            members: vec![EKS.to_string(), GKE.to_string()],
            healthy_within: Duration::from_secs(30),
            fast_cleanup: false,
            operator_log: None,
        }
    }

    /// A workloads trial's fleet: members trusted after one success, default client timeouts.
    pub fn workloads(label: &str) -> Self {
        FleetOptions {
            group: "workloads",
            short_member_timeouts: false,
            ..FleetOptions::new(label)
        }
        .success_threshold(1)
    }

    pub fn success_threshold(mut self, n: i32) -> Self {
        self.health["successThreshold"] = json!(n);
        self
    }
}

/// One trial's namespaces, MemberClusters and operator; see the module documentation.
pub struct Fleet {
    pub h: &'static Harness,
    pub hub: Client,
    /// Clients to the members, with short timeouts.
    members: BTreeMap<String, Client>,
    /// The operator's namespace (kubeconfig Secrets).
    pub ops_ns: String,
    /// The workloads' namespace (on the hub, and created by the operator in the members).
    pub app_ns: String,
    /// MemberCluster name of each harness member.
    names: BTreeMap<String, String>,
    /// Every MemberCluster this fleet created.
    clusters: Vec<String>,
    /// `FleetOptions::group`.
    group: &'static str,
    /// `FleetOptions::fast_cleanup`.
    fast_cleanup: bool,
    operator: Mutex<Option<Operator>>,
}

impl Fleet {
    /// Sets up, runs `body`, and cleans up whatever happened — panics included.
    pub async fn run<F>(h: &'static Harness, options: FleetOptions, body: F) -> TestResult
    where
        F: AsyncFnOnce(&mut Fleet) -> TestResult,
    {
        for m in &options.members {
            if !h.members().iter().any(|n| n == m) {
                return Err(format!(
                    "these trials need member {m} (BASCULE_E2E_MEMBERS={})",
                    h.members().join(",")
                )
                .into());
            }
        }
        let hub = h.client(h.hub()).await?;
        crate::crds::install_crds(&hub).await?;
        let mut members = BTreeMap::new();
        for m in &options.members {
            let client = if options.short_member_timeouts {
                member_client(h, m).await?
            } else {
                h.client(m).await?
            };
            members.insert(m.to_string(), client);
        }
        let mut fx = Fleet {
            h,
            hub,
            members,
            ops_ns: unique_name("bascule-ops"),
            app_ns: unique_name(&format!("{}-{}", options.group, options.label)),
            names: BTreeMap::new(),
            clusters: Vec::new(),
            group: options.group,
            fast_cleanup: options.fast_cleanup,
            operator: Mutex::new(None),
        };
        let result = {
            use futures::FutureExt;
            let run = async {
                fx.setup(&options).await?;
                body(&mut fx).await
            };
            match std::panic::AssertUnwindSafe(run).catch_unwind().await {
                Ok(r) => r,
                Err(panic) => Err(panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .map(|s| format!("panic: {s}"))
                    .unwrap_or_else(|| "panic".into())
                    .into()),
            }
        };
        let cleanup = fx.cleanup().await;
        let result = match (result, cleanup) {
            (Err(e), Err(c)) => Err(format!("{e}\n(and the cleanup failed: {c})").into()),
            (Err(e), Ok(())) => Err(e),
            (Ok(()), Err(c)) => Err(format!("cleanup: {c}").into()),
            (Ok(()), Ok(())) => Ok(()),
        };
        match fx.operator.lock().unwrap().as_ref() {
            Some(op) => op.annotate(result),
            None => result,
        }
    }

    async fn setup(&mut self, options: &FleetOptions) -> TestResult {
        for ns in [&self.ops_ns, &self.app_ns] {
            Api::<Namespace>::all(self.hub.clone())
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
                )
                .await?;
        }
        for m in &options.members {
            let name = unique_name(m);
            // The member's least-privilege ServiceAccount, as in production.
            let kubeconfig = super::member_rbac::kubeconfig(self.h, m).await?;
            self.create_secret(&name, &kubeconfig).await?;
            self.create_member_cluster(
                &name,
                json!({
                    "connection": {"kubeconfigSecretRef": {"name": name}},
                    "health": options.health,
                }),
            )
            .await?;
            self.names.insert(m.to_string(), name);
        }
        let foreign: Vec<String> = self
            .member_clusters()
            .list_metadata(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .filter(|n| !self.clusters.contains(n))
            .collect();
        if !foreign.is_empty() {
            println!("warning: MemberClusters left by others on the hub: {foreign:?}");
        }
        let mut operator =
            OperatorOptions::new(&self.ops_ns, &format!("operator-{}", options.label));
        operator.extra_args = options.operator_args.clone();
        operator.log_filter = options.operator_log.clone();
        let op = Operator::start(self.h, operator)?;
        println!(
            "operator pid {:?}, log {}",
            op.pid(),
            op.log_path().display()
        );
        *self.operator.lock().unwrap() = Some(op);
        for m in &options.members {
            self.wait_health(m, "Healthy", options.healthy_within)
                .await?;
        }
        Ok(())
    }

    /// Deletes the workloads while the operator runs (its finalizer cleans the members), stops
    /// it, removes what is left (finalizers included) on the hub and the members' namespace.
    async fn cleanup(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        let api = self.workloads();
        if self.alive().is_ok() && !self.fast_cleanup {
            let n = api
                .list_metadata(&ListParams::default())
                .await
                .map(|l| l.items.len())
                .unwrap_or(0);
            if n > 0 {
                let _ = api
                    .delete_collection(&DeleteParams::default(), &ListParams::default())
                    .await;
                let r = self
                    .until(
                        "workloads deleted by the operator",
                        Duration::from_secs(30) + Duration::from_millis(50 * n as u64),
                        Duration::from_millis(200),
                        async || {
                            let left = api
                                .list_metadata(&ListParams::default())
                                .await
                                .map_err(|e| e.to_string())?
                                .items;
                            match left.first() {
                                None => Ok(()),
                                Some(w) => {
                                    Err(format!("{} left, e.g. {:?}", left.len(), w.metadata.name))
                                }
                            }
                        },
                    )
                    .await;
                if let Err(e) = r {
                    problems.push(e);
                }
            }
        }
        if let Some(op) = self.operator.lock().unwrap().as_mut()
            && op.pid().is_some()
            && let Err(e) = op.stop(Duration::from_secs(10))
        {
            problems.push(format!("stopping the operator: {e}"));
        }
        if let Ok(left) = api.list_metadata(&ListParams::default()).await {
            for w in left.items {
                let name = w.metadata.name.unwrap_or_default();
                let _ = api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await;
                let _ = api.delete(&name, &DeleteParams::default()).await;
            }
        }
        super::delete_member_clusters(&self.hub, &self.clusters).await;
        for ns in [&self.ops_ns, &self.app_ns] {
            let _ = Api::<Namespace>::all(self.hub.clone())
                .delete(ns, &DeleteParams::default())
                .await;
        }
        for (m, client) in &self.members {
            if let Err(e) = Api::<Namespace>::all(client.clone())
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

    /// `Ok` while the operator runs; its exit status and log tail otherwise.
    pub fn alive(&self) -> Result<(), String> {
        match self.operator.lock().unwrap().as_mut() {
            Some(op) => op.ensure_running(),
            None => Err("the operator was not started".into()),
        }
    }

    /// Runs `f` on the operator (to kill, stop or restart it).
    pub fn with_operator<T>(&self, f: impl FnOnce(&mut Operator) -> T) -> T {
        f(self
            .operator
            .lock()
            .unwrap()
            .as_mut()
            .expect("operator started"))
    }

    /// Polls `check` every `interval` until it succeeds, failing at once if the operator exits.
    pub async fn until<T>(
        &self,
        what: &str,
        timeout: Duration,
        interval: Duration,
        mut check: impl AsyncFnMut() -> Result<T, String>,
    ) -> Result<T, String> {
        let start = Instant::now();
        loop {
            self.alive().map_err(|e| format!("{what}: {e}"))?;
            match check().await {
                Ok(v) => return Ok(v),
                Err(last) if start.elapsed() >= timeout => {
                    return Err(format!("{what}: not within {timeout:?}; last seen: {last}"));
                }
                Err(_) => {}
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// A kubeconfig Secret in the operator's namespace.
    pub async fn create_secret(&self, name: &str, kubeconfig: &str) -> TestResult {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ops_ns},
            "stringData": {"kubeconfig": kubeconfig},
        }))?;
        Api::<Secret>::namespaced(self.hub.clone(), &self.ops_ns)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    /// A MemberCluster with this spec, removed with the fleet.
    pub async fn create_member_cluster(&mut self, name: &str, spec: Value) -> TestResult {
        let mc: MemberCluster = serde_json::from_value(json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MemberCluster",
            "metadata": {"name": name, "labels": {"bascule-e2e": self.group}},
            "spec": spec,
        }))?;
        self.member_clusters()
            .create(&PostParams::default(), &mc)
            .await?;
        self.clusters.push(name.to_string());
        Ok(())
    }

    /// Every MemberCluster this fleet created.
    pub fn clusters(&self) -> &[String] {
        &self.clusters
    }

    /// The MemberCluster name standing for a harness member.
    pub fn mc(&self, member: &str) -> String {
        self.names[member].clone()
    }

    /// A client to a member (short timeouts).
    pub fn member(&self, member: &str) -> Client {
        self.members[member].clone()
    }

    pub fn member_api<K>(&self, member: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.member(member), &self.app_ns)
    }

    pub fn workloads(&self) -> Api<MultiCloudWorkload> {
        Api::namespaced(self.hub.clone(), &self.app_ns)
    }

    pub fn member_clusters(&self) -> Api<MemberCluster> {
        Api::all(self.hub.clone())
    }

    pub async fn create_workload(
        &self,
        name: &str,
        spec: Value,
    ) -> Result<MultiCloudWorkload, Box<dyn std::error::Error + Send + Sync>> {
        let w: MultiCloudWorkload = serde_json::from_value(json!({
            "apiVersion": "bascule.dev/v1alpha1",
            "kind": "MultiCloudWorkload",
            "metadata": {"name": name, "namespace": self.app_ns},
            "spec": spec,
        }))?;
        Ok(self.workloads().create(&PostParams::default(), &w).await?)
    }

    pub async fn workload(&self, name: &str) -> Result<MultiCloudWorkload, String> {
        self.workloads()
            .get(name)
            .await
            .map_err(|e| format!("get mcw {name}: {e}"))
    }

    /// Waits (polling every 200 ms) until `check` accepts the workload.
    pub async fn wait_workload(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&MultiCloudWorkload) -> Result<(), String>,
    ) -> Result<MultiCloudWorkload, String> {
        self.until(
            &format!("{name}: {what}"),
            timeout,
            Duration::from_millis(200),
            async || {
                let w = self.workload(name).await?;
                check(&w).map(|()| w)
            },
        )
        .await
    }

    /// A member's MemberCluster.
    pub async fn member_cluster(&self, member: &str) -> Result<MemberCluster, String> {
        let name = self.mc(member);
        self.member_clusters()
            .get(&name)
            .await
            .map_err(|e| format!("get MemberCluster {name}: {e}"))
    }

    /// Waits until a member's MemberCluster reports `health` (`Healthy`, `Unhealthy`, ...).
    pub async fn wait_health(
        &self,
        member: &str,
        health: &str,
        timeout: Duration,
    ) -> Result<MemberCluster, String> {
        self.until(
            &format!("MemberCluster of {member}: health {health}"),
            timeout,
            Duration::from_millis(100),
            async || {
                let mc = self.member_cluster(member).await?;
                let seen = health_of(&mc);
                if seen == health {
                    Ok(mc)
                } else {
                    Err(format!("health {seen}, {}", ready_of(&mc)))
                }
            },
        )
        .await
    }

    /// A member's Deployment `name` in the workloads' namespace (`None`: not there).
    pub async fn deployment(&self, member: &str, name: &str) -> Result<Option<Deployment>, String> {
        self.member_api::<Deployment>(member)
            .get_opt(name)
            .await
            .map_err(|e| format!("{member}: get Deployment {name}: {e}"))
    }

    /// Every Deployment, Service and ConfigMap labelled `managed-by=bascule` in the workloads'
    /// namespace of a member, as `(kind/name, workload uid label, replicas)`.
    pub async fn placed(&self, member: &str) -> Result<Vec<Placed>, String> {
        let lp = ListParams::default().labels(&format!("{MANAGED_BY}=bascule"));
        let e = |e: kube::Error| format!("{member}: list: {e}");
        let mut out = Vec::new();
        for d in self
            .member_api::<Deployment>(member)
            .list(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(Placed::new("Deployment", &d.metadata, replicas_of(&d)));
        }
        for s in self
            .member_api::<Service>(member)
            .list_metadata(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(Placed::new("Service", &s.metadata, None));
        }
        for c in self
            .member_api::<ConfigMap>(member)
            .list_metadata(&lp)
            .await
            .map_err(e)?
            .items
        {
            out.push(Placed::new("ConfigMap", &c.metadata, None));
        }
        Ok(out)
    }

    /// The Events about an object (by uid) on the hub, oldest first.
    pub async fn events(&self, uid: &str) -> Result<Vec<Seen>, String> {
        let api = Api::<Event>::namespaced(self.hub.clone(), &self.app_ns);
        let lp = ListParams::default().fields(&format!("involvedObject.uid={uid}"));
        let mut events: Vec<Seen> = api
            .list(&lp)
            .await
            .map_err(|e| format!("list Events: {e}"))?
            .items
            .into_iter()
            .map(|e| Seen {
                type_: e.type_.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
                note: e.message.unwrap_or_default(),
                time: e
                    .event_time
                    .map(|t| t.0)
                    .or(e.first_timestamp.map(|t| t.0))
                    .or(e.metadata.creation_timestamp.map(|t| t.0)),
            })
            .collect();
        events.sort_by_key(|e| e.time);
        Ok(events)
    }

    /// Starts polling both members' Deployment `deployment` and the workload `workload` every
    /// `interval`, in the background.
    pub fn sampler(&self, workload: &str, deployment: &str, interval: Duration) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (eks, gke) = (self.member_api(EKS), self.member_api(GKE));
        let mcw = self.workloads();
        let (workload, deployment) = (workload.to_string(), deployment.to_string());
        let out = samples.clone();
        let task = tokio::spawn(async move {
            loop {
                let start = Instant::now();
                let (e, g, w) = tokio::join!(
                    observe_deployment(&eks, &deployment),
                    observe_deployment(&gke, &deployment),
                    mcw.get(&workload)
                );
                out.lock().unwrap().push(Sample {
                    at: start,
                    wall: SystemTime::now(),
                    eks: e,
                    gke: g,
                    workload: w.map(|w| WorkloadSeen::of(&w)).map_err(|e| e.to_string()),
                });
                tokio::time::sleep(interval.saturating_sub(start.elapsed())).await;
            }
        });
        Sampler { samples, task }
    }
}

/// A member client with short timeouts, so that a stopped or frozen member fails fast.
async fn member_client(h: &Harness, member: &str) -> Result<Client, String> {
    let mut config = h.config(member).await.map_err(|e| e.to_string())?;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(3));
    config.write_timeout = Some(Duration::from_secs(3));
    Client::try_from(config).map_err(|e| format!("client for {member}: {e}"))
}

/// An object Bascule placed in a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// `Kind/name`.
    pub object: String,
    pub uid: String,
    /// The `bascule.dev/workload-uid` label.
    pub workload_uid: String,
    /// The `bascule.dev/workload-namespace` label.
    pub workload_namespace: String,
    /// `spec.replicas` of a Deployment.
    pub replicas: Option<i32>,
}

impl Placed {
    fn new(
        kind: &str,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        replicas: Option<i32>,
    ) -> Placed {
        let label = |k: &str| {
            meta.labels
                .as_ref()
                .and_then(|l| l.get(k))
                .cloned()
                .unwrap_or_default()
        };
        Placed {
            object: format!("{kind}/{}", meta.name.clone().unwrap_or_default()),
            uid: meta.uid.clone().unwrap_or_default(),
            workload_uid: label(WORKLOAD_UID),
            workload_namespace: label(WORKLOAD_NAMESPACE),
            replicas,
        }
    }
}

/// An Event as the trials read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub type_: String,
    pub reason: String,
    pub note: String,
    pub time: Option<k8s_openapi::jiff::Timestamp>,
}

/// What a member's Deployment looked like at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSeen {
    pub uid: String,
    pub replicas: i32,
    pub available: i32,
}

/// What the workload looked like at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSeen {
    pub placement: Option<String>,
    pub available: i32,
    pub last_failover_started: Option<String>,
    pub failback_pending: Option<String>,
}

impl WorkloadSeen {
    pub fn of(w: &MultiCloudWorkload) -> WorkloadSeen {
        let s = w.status.clone().unwrap_or_default();
        WorkloadSeen {
            placement: s.placement.clone(),
            available: s.replicas.as_ref().map_or(0, |r| r.available),
            last_failover_started: s.last_failover.as_ref().map(|f| f.started_at.0.to_string()),
            failback_pending: condition(&s.conditions, "FailbackPending")
                .map(|c| format!("{}/{}", c.status, c.reason)),
        }
    }
}

/// One poll of both members and the workload.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub wall: SystemTime,
    /// `Ok(None)`: the Deployment is not there; `Err`: the member did not answer.
    pub eks: Result<Option<DeploymentSeen>, String>,
    pub gke: Result<Option<DeploymentSeen>, String>,
    pub workload: Result<WorkloadSeen, String>,
}

impl Sample {
    pub fn member(&self, member: &str) -> &Result<Option<DeploymentSeen>, String> {
        if member == EKS { &self.eks } else { &self.gke }
    }
}

async fn observe_deployment(
    api: &Api<Deployment>,
    name: &str,
) -> Result<Option<DeploymentSeen>, String> {
    let d = api.get_opt(name).await.map_err(|e| e.to_string())?;
    Ok(d.map(|d| DeploymentSeen {
        uid: d.metadata.uid.clone().unwrap_or_default(),
        replicas: replicas_of(&d).unwrap_or(0),
        available: d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0),
    }))
}

/// Background polling of both members and a workload; see [`Fleet::sampler`].
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Stops polling and returns every sample.
    pub fn stop(self) -> Vec<Sample> {
        self.task.abort();
        self.samples.lock().unwrap().clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn replicas_of(d: &Deployment) -> Option<i32> {
    d.spec.as_ref().and_then(|s| s.replicas)
}

pub fn available_of(d: &Deployment) -> i32 {
    d.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// `status.health` of a MemberCluster (`Unknown` when absent).
pub fn health_of(mc: &MemberCluster) -> String {
    mc.status
        .as_ref()
        .map(|s| format!("{:?}", s.health))
        .unwrap_or_else(|| "Unknown".into())
}

/// Its Ready condition, for messages.
pub fn ready_of(mc: &MemberCluster) -> String {
    mc.status
        .as_ref()
        .and_then(|s| condition(&s.conditions, "Ready"))
        .map(|c| format!("Ready={}/{}: {}", c.status, c.reason, c.message))
        .unwrap_or_else(|| "no Ready condition".into())
}

/// One line about a workload: generation, replicas, placement, conditions, last failover.
pub fn describe(w: &MultiCloudWorkload) -> String {
    let Some(s) = &w.status else {
        return format!("generation {:?}, no status", w.metadata.generation);
    };
    let conds: Vec<String> = s
        .conditions
        .iter()
        .map(|c| format!("{}={}/{}: {}", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "generation {:?}/{:?}, replicas {:?}, placement {:?}, clusters {:?}, conditions [{}], decision {:?}, lastFailover {:?}",
        s.observed_generation,
        w.metadata.generation,
        s.replicas,
        s.placement,
        s.clusters
            .iter()
            .map(|c| format!(
                "{} {}/{}/{} {:?}",
                c.name, c.desired, c.ready, c.available, c.state
            ))
            .collect::<Vec<_>>(),
        conds.join("; "),
        s.decision
            .as_ref()
            .map(|d| format!("{}: {}", d.outcome, d.message)),
        s.last_failover.as_ref().map(|f| &f.summary),
    )
}

/// `uid` of a workload (error if it has none).
pub fn uid_of(w: &MultiCloudWorkload) -> Result<String, String> {
    w.uid().ok_or_else(|| "the workload has no uid".to_string())
}
