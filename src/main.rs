//! The `bascule` command line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use bascule::api::{self, Taint};
use bascule::controller::run;
use bascule::members::providers::Providers;
use bascule::members::{ConnectionOptions, credentials};
use bascule::plan::{self, WhatIf};
use bascule::yaml::{self, Objects};

/// Exit codes, documented in docs/cli.md.
mod exit {
    /// The input could not be read or is invalid (the message names file, line and field).
    pub const BAD_INPUT: u8 = 1;
    /// The command line itself is wrong (clap's own code).
    #[allow(dead_code)]
    pub const USAGE: u8 = 2;
    /// The input is valid but some placement is not fully satisfied.
    pub const UNSATISFIED: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "bascule",
    version,
    about = "Places Kubernetes workloads across clouds and fails them over on health"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: watch MemberClusters and MultiCloudWorkloads on the hub (the cluster
    /// of KUBECONFIG, or the one the pod runs in) and make the members match the placements.
    ///
    /// Logs go to stderr; BASCULE_LOG sets the filter (e.g. `info`, `bascule=debug`).
    Run {
        /// Namespace of the operator: where the MemberClusters' kubeconfig Secrets are.
        #[arg(long, env = "BASCULE_NAMESPACE", default_value = "bascule-system")]
        namespace: String,
        /// Allow kubeconfig exec plugins and auth providers in member Secrets. Off by default:
        /// whoever can write such a Secret could otherwise run any program in the operator.
        #[arg(long)]
        allow_exec_plugins: bool,
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
    },
    /// Issue the hub's kubeconfig Secret for a member: a token of the member's least-privilege
    /// ServiceAccount (apply deploy/member-rbac.yaml there first), printed as a Secret manifest.
    ///
    ///     bascule member-credentials --kubeconfig eks-admin.yaml --name eks-use1 | kubectl --context hub apply -f -
    MemberCredentials {
        /// The MemberCluster's name; the Secret is member-<name> unless --secret-name.
        #[arg(long)]
        name: String,
        /// Kubeconfig that may create tokens on the member (default: KUBECONFIG, ~/.kube/config).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// Context in that kubeconfig (default: the current one).
        #[arg(long)]
        context: Option<String>,
        /// The member ServiceAccount, NAMESPACE/NAME.
        #[arg(long, default_value = "bascule-system/bascule-member")]
        service_account: String,
        /// Token lifetime in seconds (the member may cap it); rotate by running this again.
        #[arg(long, default_value_t = 31_536_000, value_parser = clap::value_parser!(i64).range(600..))]
        token_seconds: i64,
        /// The member API URL as the hub reaches it (default: the kubeconfig's).
        #[arg(long)]
        server: Option<String>,
        /// The operator's namespace on the hub.
        #[arg(long, default_value = "bascule-system")]
        hub_namespace: String,
        /// Name of the Secret.
        #[arg(long)]
        secret_name: Option<String>,
    },
    /// Print the CustomResourceDefinitions (YAML), or write one file per CRD into a directory.
    Crd {
        /// Write `<name>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Show where workloads would be placed, and what would move under what-ifs.
    ///
    /// Reads MemberCluster and MultiCloudWorkload objects (multi-document YAML, or `kind: List`
    /// as `kubectl get -o yaml` prints it) from files, directories (*.yaml, *.yml) or stdin (`-`).
    /// Clusters without status are taken as healthy. Exit code: 0 all satisfied, 1 bad input,
    /// 2 usage error, 3 some placement not fully satisfied.
    Plan {
        /// Input files or directories; `-` or nothing reads stdin.
        #[arg(short = 'f', long = "filename", value_name = "PATH")]
        files: Vec<PathBuf>,
        /// More inputs, as positional arguments.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Treat this cluster as Unhealthy (repeatable).
        #[arg(long, value_name = "CLUSTER")]
        unhealthy: Vec<String>,
        /// Add a taint to a cluster: CLUSTER=KEY[=VALUE]:NoSchedule|NoExecute (repeatable).
        #[arg(long, value_name = "CLUSTER=KEY[=VALUE]:EFFECT", value_parser = parse_cluster_taint)]
        taint: Vec<(String, Taint)>,
        /// Place as each spec prefers (what a failback or spec change does), instead of keeping
        /// replicas on the healthy clusters they are on.
        #[arg(long)]
        rebalance: bool,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Yaml,
    Json,
}

fn parse_cluster_taint(s: &str) -> Result<(String, Taint), String> {
    let (cluster, taint) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} must look like CLUSTER=KEY[=VALUE]:NoSchedule|NoExecute"))?;
    if cluster.is_empty() {
        return Err(format!("{s:?} has no cluster name before '='"));
    }
    Ok((cluster.to_string(), taint.parse()?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            namespace,
            allow_exec_plugins,
            concurrency,
            member_qps,
            gke_api_url,
            failover_starts_per_second,
            http_addr,
            leader_election,
            lease_name,
            log_format,
        } => run_controller(
            run::Options {
                namespace,
                connection: ConnectionOptions {
                    allow_exec_plugins,
                    requests_per_second: member_qps,
                    providers: Providers::new(gke_api_url),
                    ..ConnectionOptions::default()
                },
                concurrency,
                instance: instance_name(),
                failover_starts_per_second,
                http_addr,
                lease_name: leader_election.then_some(lease_name),
            },
            log_format,
        ),
        Command::MemberCredentials {
            name,
            kubeconfig,
            context,
            service_account,
            token_seconds,
            server,
            hub_namespace,
            secret_name,
        } => member_credentials(
            kubeconfig.as_deref(),
            service_account,
            credentials::Request {
                member: name,
                service_account_namespace: String::new(),
                service_account: String::new(),
                token_seconds,
                server,
                hub_namespace,
                secret_name,
                context,
            },
        ),
        Command::Crd { out_dir } => crd(out_dir.as_deref()),
        Command::Plan {
            files,
            paths,
            unhealthy,
            taint,
            rebalance,
            output,
        } => {
            let inputs: Vec<PathBuf> = files.into_iter().chain(paths).collect();
            run_plan(
                &inputs,
                WhatIf {
                    unhealthy,
                    taints: taint,
                    rebalance,
                },
                output,
            )
        }
    }
}

fn run_controller(opts: run::Options, log_format: LogFormat) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BASCULE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
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

fn member_credentials(
    kubeconfig: Option<&Path>,
    service_account: String,
    mut req: credentials::Request,
) -> ExitCode {
    let Some((ns, sa)) = service_account
        .split_once('/')
        .filter(|(n, s)| !n.is_empty() && !s.is_empty())
    else {
        eprintln!(
            "bascule member-credentials: --service-account must be NAMESPACE/NAME, got {service_account:?}"
        );
        return ExitCode::from(exit::BAD_INPUT);
    };
    req.service_account_namespace = ns.to_string();
    req.service_account = sa.to_string();
    let loaded = match kubeconfig {
        Some(path) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    };
    let kubeconfig = match loaded {
        Ok(k) => k,
        Err(e) => {
            eprintln!("bascule member-credentials: cannot read the kubeconfig: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(credentials::issue(kubeconfig, &req)) {
        Ok(secret) => {
            print!("{secret}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bascule member-credentials: {e}");
            ExitCode::FAILURE
        }
    }
}

fn crd(out_dir: Option<&Path>) -> ExitCode {
    let crds = api::crds();
    match out_dir {
        None => {
            for crd in &crds {
                print!("{}", api::crd_yaml(crd));
            }
        }
        Some(dir) => {
            for crd in &crds {
                let path = dir.join(api::crd_file_name(crd));
                if let Err(e) = std::fs::create_dir_all(dir)
                    .and_then(|_| std::fs::write(&path, api::crd_yaml(crd)))
                {
                    eprintln!("bascule crd: cannot write {}: {e}", path.display());
                    return ExitCode::from(exit::BAD_INPUT);
                }
                eprintln!("wrote {}", path.display());
            }
        }
    }
    ExitCode::SUCCESS
}

fn run_plan(inputs: &[PathBuf], what_if: WhatIf, format: Format) -> ExitCode {
    let objects = match load(inputs) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("bascule plan: {message}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    if objects.workloads.is_empty() {
        eprintln!("bascule plan: no MultiCloudWorkload in the input; nothing to plan");
        return ExitCode::from(exit::BAD_INPUT);
    }
    // Whole seconds: timestamps in explanations read like the API server's.
    let now =
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .expect("the current time is a valid timestamp");
    let plans = match plan::plan(&objects, &what_if, now) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bascule plan: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
    #[derive(serde::Serialize)]
    struct Output<'a> {
        workloads: &'a [plan::WorkloadPlan],
    }
    let output = Output { workloads: &plans };
    match format {
        Format::Table => print!("{}", plan::render_table(&plans)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("plans serialize")
        ),
        Format::Yaml => print!(
            "{}",
            serde_saphyr::to_string(&output).expect("plans serialize")
        ),
    }
    if plan::all_satisfied(&plans) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::UNSATISFIED)
    }
}

/// Reads every input; a directory contributes its *.yaml and *.yml files in name order.
fn load(inputs: &[PathBuf]) -> Result<Objects, String> {
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let mut objects = Objects::default();
    for input in inputs {
        for file in expand(input)? {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| format!("cannot read stdin: {e}"))?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let name = if file.as_os_str() == "-" {
                Path::new("<stdin>")
            } else {
                file.as_path()
            };
            yaml::read(name, &text, &mut objects).map_err(|e| e.to_string())?;
        }
    }
    if !objects.skipped.is_empty() {
        let kinds: Vec<String> = objects
            .skipped
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        eprintln!(
            "note: passed over objects of other kinds: {}",
            kinds.join(", ")
        );
    }
    Ok(objects)
}

fn expand(input: &Path) -> Result<Vec<PathBuf>, String> {
    if input.as_os_str() == "-" || !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| format!("cannot read directory {}: {e}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}
