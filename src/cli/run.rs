//! `bascule run`.

use std::process::ExitCode;

use clap::ValueEnum;

use crate::controller::run::{self, Options};
use crate::members::ConnectionOptions;
use crate::members::providers::Providers;
use crate::policy::tenancy::{self, KindPattern, NamespacePattern, Tenancy};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Namespace of the operator: where the MemberClusters' kubeconfig Secrets are.
    #[arg(long, env = "BASCULE_NAMESPACE", default_value = "bascule-system")]
    namespace: String,
    /// Allow kubeconfig exec plugins and auth providers in member Secrets. Off by default:
    /// whoever can write such a Secret could otherwise run any program in the operator.
    #[arg(long)]
    allow_exec_plugins: bool,
    /// Accept member kubeconfigs with `insecure-skip-tls-verify: true`, a plain `http://`
    /// server or a `proxy-url`. Off by default: each hands the member's credentials to whoever
    /// is on the network path.
    #[arg(long)]
    allow_insecure_member_connections: bool,
    /// Pod Security admission level set (enforce and warn) on the namespaces Bascule creates in
    /// members; namespaces that exist already are left as they are.
    #[arg(long, default_value = "baseline", value_parser = ["none", "privileged", "baseline", "restricted"])]
    member_namespace_pod_security: String,
    /// Kinds a workload may place, replacing the default list: `Kind` (core group),
    /// `Kind.group`, or `*.group`, matched case-insensitively. Default: Deployment.apps,
    /// StatefulSet.apps, Service, ConfigMap, Secret, ServiceAccount,
    /// HorizontalPodAutoscaler.autoscaling, PodDisruptionBudget.policy,
    /// Ingress.networking.k8s.io, NetworkPolicy.networking.k8s.io.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    allowed_kinds: Option<Vec<KindPattern>>,
    /// Kinds a workload may place in addition to --allowed-kinds (same syntax), e.g.
    /// `Job.batch,*.monitoring.coreos.com`.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    also_allowed_kinds: Vec<KindPattern>,
    /// Let workloads place Roles and RoleBindings (a RoleBinding only to a Role of its own
    /// namespace, never to a ClusterRole). Off by default.
    #[arg(long)]
    allow_rbac: bool,
    /// Member namespaces no workload may place into: names, or prefixes ending in `*`.
    /// Default: `kube-*` and the operator's namespace (--namespace).
    #[arg(long, value_delimiter = ',', value_name = "NAMESPACES")]
    denied_namespaces: Option<Vec<NamespacePattern>>,
    /// Pause every workload's moves during an incident: placements in force are kept as they
    /// are (failovers, failbacks and rebalances held; first placements still happen). One
    /// workload alone: annotate it `bascule.dev/pause-moves=true`.
    #[arg(long)]
    pause_moves: bool,
    /// Decide and report what would be done (logged once per change per workload, "would: …"),
    /// but write nothing: not to the members, not to the hub (no status, finalizer, Event or
    /// Lease). Runs beside the live operator to preview a new version or policy.
    #[arg(long, conflicts_with = "leader_election")]
    dry_run: bool,
    /// This hub's id, set as the label `bascule.dev/hub` on everything it places: on a member
    /// shared by several hubs, each counts, prunes and collects only its own objects. Default:
    /// the uid of the hub's `kube-system` namespace (unique per cluster, stable). A label value:
    /// at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric.
    #[arg(long, env = "BASCULE_HUB_ID", value_parser = hub_id)]
    hub_id: Option<String>,
    /// Seconds a deleted MemberCluster waits for its workloads' objects to be removed from the
    /// member (their replicas move elsewhere first) before it goes anyway, with a Warning Event
    /// naming what may be left: a member that cannot be reached.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86400))]
    member_removal_timeout: u64,
    /// Workloads reconciled at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Requests per second Bascule sends to one member cluster, at most (probes have a budget of
    /// their own). Sized for a failover burst: placing a workload in a new member costs about
    /// six requests, so 500 moves a thousand workloads in about 12 s (docs/benchmarks.md).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    member_qps: u64,
    /// Base URL of the GKE API for `spec.connection.gke` members. Only for a private
    /// endpoint (Private Service Connect) or tests; Google's public API by default.
    #[arg(long, env = "BASCULE_GKE_API_URL", value_name = "URL")]
    gke_api_url: Option<String>,
    /// Workloads that may start a failover or failback per second, across the operator, so
    /// that one lost cluster does not stampede the others.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    failover_starts_per_second: u32,
    /// Serve /metrics, /livez and /readyz on this address (e.g. 0.0.0.0:8080).
    #[arg(long, value_name = "ADDR")]
    http_addr: Option<std::net::SocketAddr>,
    /// Hold this Lease (in --namespace) before doing anything, so that of several replicas
    /// only one works; the identity is POD_NAME, else the host name.
    #[arg(long)]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "bascule-controller")]
    lease_name: String,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// A hub id is a label value.
fn hub_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then(|| s.to_string()).ok_or_else(|| {
        format!("{s:?} is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
    })
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl RunArgs {
    /// The controller's options; `instance` names this process (Events, the Lease).
    pub(super) fn options(self, instance: String) -> Options {
        let mut kinds = self.allowed_kinds.unwrap_or_else(tenancy::default_kinds);
        kinds.extend(self.also_allowed_kinds);
        let denied = self
            .denied_namespaces
            .unwrap_or_else(|| tenancy::default_denied_namespaces(&self.namespace));
        let tenancy = Tenancy::new(kinds, self.allow_rbac, denied);
        Options {
            namespace: self.namespace,
            connection: ConnectionOptions {
                allow_exec_plugins: self.allow_exec_plugins,
                allow_insecure_connections: self.allow_insecure_member_connections,
                requests_per_second: self.member_qps,
                providers: Providers::new(self.gke_api_url),
                ..ConnectionOptions::default()
            },
            concurrency: self.concurrency,
            pod_security: self
                .member_namespace_pod_security
                .parse()
                .expect("clap allows only the values PodSecurity parses"),
            tenancy,
            pause_moves: self.pause_moves,
            dry_run: self.dry_run,
            hub_id: self.hub_id,
            member_removal_timeout: std::time::Duration::from_secs(self.member_removal_timeout),
            instance,
            failover_starts_per_second: self.failover_starts_per_second,
            http_addr: self.http_addr,
            lease_name: self.leader_election.then_some(self.lease_name),
        }
    }
}

pub fn run(args: RunArgs) -> ExitCode {
    init_logs(args.log_format);
    let opts = args.options(instance_name());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bascule run: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let hub = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot connect to the hub (KUBECONFIG or in-cluster): {e}"))?;
        run::run(hub, opts, shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "bascule run stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BASCULE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// SIGTERM (what Kubernetes sends) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
}

/// The pod's name where Kubernetes sets it (downward API), else the host's name and the process
/// id (two processes on one host must not share a Lease identity).
fn instance_name() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.trim().is_empty()
    {
        return pod.trim().to_string();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = match host.trim() {
        "" => "bascule",
        h => h,
    };
    format!("{host}-{}", std::process::id())
}
