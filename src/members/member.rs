//! One member's task: keeps its connection in step with the MemberCluster and its Secret, probes
//! it every `spec.health.periodSeconds`, feeds the health tracker, publishes the snapshot to the
//! pool and writes `status` when it changed.
//!
//! Each member has its own task, so a member whose API server hangs costs only its own probe
//! deadline. The task ends when the supervisor drops its input channel.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::connection::{self, ConnectionError, ConnectionOptions, MemberClients};
use super::detect::NodeFacts;
use super::pool::MemberPool;
use super::probe::{self, ProbeReport};
use super::status::{self, MemberFacts};
use crate::api::{ClusterHealth, Connection, MemberCluster, MemberClusterStatus};
use crate::health::{HealthTracker, MIN_REPROBE_INTERVAL, Probe};
use crate::placement::ClusterSnapshot;

/// How often `/version` is read once known (it changes only with an upgrade).
const VERSION_EVERY: Duration = Duration::from_secs(60);
/// First and longest delay before a failed `eks`/`gke` connection is tried again.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

/// What the supervisor hands a member's task: the MemberCluster and its kubeconfig Secret (`None`
/// if the Secret does not exist), as last seen on the hub.
#[derive(Clone, Debug)]
pub struct Input {
    pub cluster: Arc<MemberCluster>,
    pub secret: Option<Arc<Secret>>,
}

impl Input {
    /// Whether two inputs are the same versions of the same objects.
    pub fn same_as(&self, other: &Input) -> bool {
        let rv = |s: &Option<Arc<Secret>>| s.as_ref().map(|s| s.resource_version());
        self.cluster.resource_version() == other.cluster.resource_version()
            && self.cluster.uid() == other.cluster.uid()
            && rv(&self.secret) == rv(&other.secret)
    }
}

/// What a member's task needs besides its input.
#[derive(Clone)]
pub struct TaskEnv {
    pub hub: Client,
    pub namespace: String,
    pub opts: ConnectionOptions,
    pub pool: MemberPool,
    /// Write MemberCluster statuses to the hub (off in a dry run).
    pub write_status: bool,
}

/// Claims the member's pool entry now and returns its task — the probe loop and the status
/// writer — which runs until the input channel closes.
pub fn start(
    ctx: TaskEnv,
    owner: u64,
    mut input: watch::Receiver<Input>,
) -> impl Future<Output = ()> + Send + 'static {
    let first = input.borrow_and_update().clone();
    let (statuses, to_write) = watch::channel(None);
    let member = Member::new(owner, &first, statuses);
    ctx.pool.claim(owner, member.snapshot(&first.cluster));
    // Apart from the probe loop: a slow or frozen hub delays status writes, never probes.
    let (api, name, ctx_write_status) = (
        kube::Api::<crate::api::MemberCluster>::all(ctx.hub.clone()),
        member.name.clone(),
        ctx.write_status,
    );
    let writer = async move {
        if ctx_write_status {
            crate::hub::status::write_latest(api, name, to_write).await;
        } else {
            // A dry run reads what the members say and writes nothing to the hub.
            let mut to_write = to_write;
            while to_write.changed().await.is_ok() {}
        }
    };
    async move {
        // The writer ends when the probe loop ends and drops its sender.
        tokio::join!(run(ctx, member, first, input), writer);
    }
}

async fn run(
    ctx: TaskEnv,
    mut member: Member,
    mut current: Input,
    mut input: watch::Receiver<Input>,
) {
    let owner = member.owner;
    let probe_soon = ctx.pool.probe_requests(&member.name);
    loop {
        member.follow(&ctx, &current).await;
        if Instant::now() >= member.next_probe {
            member.probe(&ctx, &current.cluster).await;
        }
        ctx.pool
            .set_snapshot(owner, member.snapshot(&current.cluster));
        member.publish_status(&current.cluster);
        tokio::select! {
            _ = tokio::time::sleep_until(member.next_probe) => {}
            // Someone saw the member fail (a broken watch): probe now rather than at the
            // period, unless it is known Unhealthy already or was probed a moment ago.
            _ = probe_soon.notified() => {
                if member.tracker.state() != ClusterHealth::Unhealthy {
                    let soonest = member.last_probe_started.map(|t| t + MIN_REPROBE_INTERVAL);
                    member.next_probe = member
                        .next_probe
                        .min(soonest.unwrap_or_else(Instant::now).max(Instant::now()));
                }
            }
            changed = input.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        if input.has_changed().is_err() {
            return;
        }
        current = input.borrow_and_update().clone();
    }
}

/// The state of one member between probes.
struct Member {
    name: String,
    owner: u64,
    tracker: HealthTracker,
    /// Whether this process has judged the member yet (probed it, or found it cannot connect):
    /// until then its snapshot says Unknown.
    judged: bool,
    /// Fingerprint of the connection the client was built from, and the client or why not.
    fingerprint: Option<u64>,
    client: Result<MemberClients, ConnectionError>,
    last_probe: Option<Probe>,
    nodes: Option<NodeFacts>,
    version: Option<String>,
    version_at: Option<Instant>,
    latency_ms: Option<i64>,
    next_probe: Instant,
    last_probe_started: Option<Instant>,
    /// When a provider connection error is tried again, and the delay after that.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// The status last handed to the writer (or as found at start).
    sent: Option<MemberClusterStatus>,
    statuses: watch::Sender<Option<MemberClusterStatus>>,
}

impl Member {
    fn new(
        owner: u64,
        input: &Input,
        statuses: watch::Sender<Option<MemberClusterStatus>>,
    ) -> Member {
        let status = input.cluster.status.clone();
        // Resume from the recorded health, so a restart does not forget an Unhealthy member.
        let tracker = match &status {
            Some(s) => HealthTracker::resume(s.health, s.health_since.as_ref().map(|t| t.0)),
            None => HealthTracker::resume(ClusterHealth::Unknown, None),
        };
        Member {
            name: input.cluster.name_any(),
            owner,
            tracker,
            judged: false,
            fingerprint: None,
            client: Err(ConnectionError::NoMethod),
            last_probe: None,
            nodes: None,
            version: None,
            version_at: None,
            latency_ms: None,
            next_probe: Instant::now(),
            last_probe_started: None,
            retry_at: None,
            retry_delay: RETRY_FIRST,
            sent: status,
            statuses,
        }
    }

    /// Rebuilds the client when the connection (the Secret reference or the kubeconfig in it, or
    /// the `eks`/`gke` settings) changed, or when a provider error is due for another try.
    async fn follow(&mut self, ctx: &TaskEnv, input: &Input) {
        let connection = &input.cluster.spec.connection;
        let fingerprint = fingerprint(connection, input.secret.as_deref());
        let retry_due = self.client.as_ref().is_err_and(ConnectionError::retryable)
            && self.retry_at.is_some_and(|at| Instant::now() >= at);
        if self.fingerprint == Some(fingerprint) && !retry_due {
            return;
        }
        if self.fingerprint != Some(fingerprint) {
            self.retry_delay = RETRY_FIRST;
        }
        self.fingerprint = Some(fingerprint);
        self.client = connection::connect_member(
            &self.name,
            connection,
            input.secret.as_deref(),
            &ctx.namespace,
            &ctx.opts,
        )
        .await;
        self.retry_at = None;
        if self.client.as_ref().is_err_and(ConnectionError::retryable) {
            // Provider errors heal without a change on the hub (an IAM policy attached, a
            // cluster done creating): try again, backing off to once a minute.
            self.retry_at = Some(Instant::now() + self.retry_delay);
            self.retry_delay = (self.retry_delay * 2).min(RETRY_MAX);
        } else {
            self.retry_delay = RETRY_FIRST;
        }
        self.last_probe = None;
        self.version_at = None;
        self.next_probe = Instant::now();
        match &self.client {
            Ok(clients) => {
                tracing::info!(cluster = %self.name, "member connection built");
                ctx.pool
                    .set_client(self.owner, &self.name, Some(clients.workloads.clone()));
            }
            Err(e) => {
                tracing::warn!(cluster = %self.name, reason = e.reason(), "member connection refused: {e}");
                ctx.pool.set_client(self.owner, &self.name, None);
                let now = now();
                let health = health_without_connection(self.tracker.state());
                if health != self.tracker.state() {
                    self.tracker = HealthTracker::resume(health, Some(now));
                }
                self.judged = true;
            }
        }
    }

    /// Probes the member (if it has a client) and feeds the tracker.
    async fn probe(&mut self, ctx: &TaskEnv, cluster: &MemberCluster) {
        let settings = &cluster.spec.health;
        let period = Duration::from_secs(settings.period_seconds.max(1) as u64);
        let deadline = Duration::from_secs(settings.timeout_seconds.max(1) as u64);
        let started = Instant::now();
        self.next_probe = started + period;
        self.last_probe_started = Some(started);
        let Ok(client) = &self.client else {
            return;
        };
        let with_version = self
            .version_at
            .is_none_or(|at| at.elapsed() >= VERSION_EVERY);
        let report: ProbeReport = probe::probe(&client.probes, deadline, with_version).await;
        let now = now();
        ctx.pool
            .record_probe(self.owner, &self.name, now, started.elapsed());
        if let Some(v) = report.version {
            self.version = Some(v);
            self.version_at = Some(Instant::now());
        }
        if let Some(n) = report.nodes {
            self.nodes = Some(n);
        }
        if report.outcome == Probe::Success {
            self.latency_ms = Some(report.latency.as_millis() as i64);
        }
        if let Some(t) = self.tracker.observe(report.outcome.clone(), settings, now) {
            let reason = self.tracker.last_failure().map(|f| f.reason());
            tracing::info!(cluster = %self.name, from = %t.from, to = %t.to, reason, "member health changed");
        }
        self.next_probe = started + self.tracker.next_probe_in(settings);
        self.last_probe = Some(report.outcome);
        self.judged = true;
    }

    /// The member as the placement engine sees it.
    fn snapshot(&self, cluster: &MemberCluster) -> ClusterSnapshot {
        let status = cluster.status.as_ref();
        let detected = self.nodes.as_ref();
        ClusterSnapshot {
            name: self.name.clone(),
            provider: cluster.spec.provider_in_force(
                detected.and_then(|n| n.provider),
                status.and_then(|s| s.provider),
            ),
            region: cluster.spec.region_in_force(
                detected.and_then(|n| n.region.as_deref()),
                status.and_then(|s| s.region.as_deref()),
            ),
            labels: cluster.labels().clone(),
            health: if self.judged {
                self.tracker.state()
            } else {
                ClusterHealth::Unknown
            },
            health_since: if self.judged {
                self.tracker.since()
            } else {
                None
            },
            taints: cluster.taints_in_force(),
            available: None,
        }
    }

    /// Hands the status to the writer if it changed (see [`status::needs_write`]).
    fn publish_status(&mut self, cluster: &MemberCluster) {
        if !self.judged {
            return; // nothing to say before the first probe
        }
        let observed = MemberFacts {
            generation: cluster.meta().generation,
            spec: &cluster.spec,
            health: self.tracker.state(),
            health_since: self.tracker.since(),
            connection: self.client.as_ref().err(),
            last_probe: self.last_probe.as_ref(),
            last_failure: self.tracker.last_failure(),
            nodes: self.nodes.as_ref(),
            version: self.version.as_deref(),
            latency_ms: self.latency_ms,
        };
        let desired = status::desired(&observed, self.sent.as_ref(), now());
        if status::needs_write(self.sent.as_ref(), &desired) {
            self.sent = Some(desired.clone());
            self.statuses.send_replace(Some(desired));
        }
    }
}

/// Health when no client can be built from the member's connection. A broken Secret says nothing
/// about the cluster itself, so a Healthy member becomes Unknown — it keeps its replicas and gets
/// no new ones (fail static) — rather than Unhealthy, which would move its replicas away because
/// of a typo on the hub. An Unhealthy or Recovering member stays so: it has not proved itself.
pub fn health_without_connection(health: ClusterHealth) -> ClusterHealth {
    match health {
        ClusterHealth::Healthy => ClusterHealth::Unknown,
        other => other,
    }
}

/// Identifies a connection: the `eks`/`gke` settings, or the Secret reference and the kubeconfig
/// bytes it points at. A Secret change that leaves the kubeconfig alone (labels, other keys)
/// keeps the client.
fn fingerprint(connection: &Connection, secret: Option<&Secret>) -> u64 {
    let mut h = DefaultHasher::new();
    connection.eks.hash(&mut h);
    connection.gke.hash(&mut h);
    let reference = connection.kubeconfig_secret_ref.as_ref();
    if reference.is_none() {
        return h.finish();
    }
    reference.map(|r| (&r.name, &r.key)).hash(&mut h);
    if let (Some(r), Some(s)) = (reference, secret) {
        s.metadata.uid.hash(&mut h);
        s.data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|b| &b.0)
            .hash(&mut h);
        s.string_data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .hash(&mut h);
    } else {
        secret.is_some().hash(&mut h);
    }
    h.finish()
}

/// Now, to the second: what `metav1.Time` keeps, so that what is written reads back the same.
fn now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecretKeyRef;
    use k8s_openapi::ByteString;

    fn secret(data: &str, label: Option<&str>) -> Secret {
        let mut s = Secret::default();
        s.metadata.uid = Some("u1".into());
        s.metadata.labels = label.map(|l| [("l".to_string(), l.to_string())].into());
        s.data = Some(
            [
                ("kubeconfig".to_string(), ByteString(data.into())),
                ("other".to_string(), ByteString(label.unwrap_or("").into())),
            ]
            .into(),
        );
        s
    }

    fn by_secret(r: Option<&SecretKeyRef>) -> Connection {
        Connection {
            kubeconfig_secret_ref: r.cloned(),
            eks: None,
            gke: None,
        }
    }

    #[test]
    fn the_fingerprint_follows_the_kubeconfig_only() {
        let r = SecretKeyRef {
            name: "member".into(),
            key: "kubeconfig".into(),
        };
        let f = |r: Option<&SecretKeyRef>, s: Option<&Secret>| fingerprint(&by_secret(r), s);
        let a = f(Some(&r), Some(&secret("one", None)));
        assert_eq!(a, f(Some(&r), Some(&secret("one", Some("x")))));
        assert_ne!(a, f(Some(&r), Some(&secret("two", None))));
        assert_ne!(a, f(Some(&r), None));
        let other_key = SecretKeyRef {
            key: "other".into(),
            ..r.clone()
        };
        assert_ne!(a, f(Some(&other_key), Some(&secret("one", None))));
        assert_ne!(f(None, None), f(Some(&r), None));
    }

    #[test]
    fn the_fingerprint_follows_the_provider_settings() {
        let eks = |role: Option<&str>| Connection {
            kubeconfig_secret_ref: None,
            eks: Some(crate::api::EksConnection {
                cluster_name: "prod".into(),
                region: "us-east-1".into(),
                role_arn: role.map(str::to_string),
            }),
            gke: None,
        };
        assert_eq!(fingerprint(&eks(None), None), fingerprint(&eks(None), None));
        assert_ne!(
            fingerprint(&eks(None), None),
            fingerprint(&eks(Some("arn:aws:iam::123456789012:role/b")), None)
        );
        assert_ne!(
            fingerprint(&eks(None), None),
            fingerprint(&by_secret(None), None)
        );
    }

    #[test]
    fn a_broken_connection_holds_a_healthy_member_and_keeps_distrust() {
        use ClusterHealth::*;
        assert_eq!(health_without_connection(Healthy), Unknown);
        assert_eq!(health_without_connection(Unknown), Unknown);
        assert_eq!(health_without_connection(Unhealthy), Unhealthy);
        assert_eq!(health_without_connection(Recovering), Recovering);
    }

    #[test]
    fn now_has_whole_seconds() {
        assert_eq!(now().subsec_nanosecond(), 0);
    }
}
