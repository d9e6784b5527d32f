//! `bascule run`.

use std::process::ExitCode;

use clap::ValueEnum;

use crate::controller::run::{self, Options};
use crate::members::ConnectionOptions;
use crate::members::providers::Providers;

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
    /// Workloads reconciled at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Requests per second Bascule sends to one member cluster, at most.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    member_qps: u64,
    /// Base URL of the GKE API for `spec.connection.gke` members. Only for a private
    /// endpoint (Private Service Connect) or tests; Google's public API by default.
    #[arg(long, env = "BASCULE_GKE_API_URL", value_name = "URL")]
    gke_api_url: Option<String>,
    /// Workloads that may start a failover or failback per second, across the operator, so
    /// that one lost cluster does not stampede the others.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
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

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

impl RunArgs {
    /// The controller's options; `instance` names this process (Events, the Lease).
    pub(super) fn options(self, instance: String) -> Options {
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
