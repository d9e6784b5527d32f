//! `kubectl bascule`: a kubectl plugin (an executable named `kubectl-bascule` on PATH) that reads
//! the hub of the current kubeconfig context.
//!
//!     kubectl bascule status [-n NS | -A]
//!     kubectl bascule explain NAME [-n NS]
//!     kubectl bascule plan [--what-if-unhealthy CLUSTER]... [--rebalance]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Api, ListParams};

use bascule::api::{MemberCluster, MultiCloudWorkload};
use bascule::kubectl;
use bascule::plan::{self, WhatIf};
use bascule::yaml::{Objects, Origin};

#[derive(Parser)]
#[command(
    name = "kubectl bascule",
    version,
    about = "Where Bascule placed workloads, and why"
)]
struct Cli {
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, global = true)]
    all_namespaces: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Workloads (placement, availability, last move) and member clusters (health).
    Status,
    /// Why a workload is where it is: the decision per cluster, conditions, the last move.
    Explain { name: String },
    /// What would move under what-ifs, from the live hub (the engine runs locally).
    Plan {
        /// Treat this cluster as Unhealthy (repeatable).
        #[arg(long, value_name = "CLUSTER")]
        what_if_unhealthy: Vec<String>,
        /// Place as each spec prefers (what a failback would do).
        #[arg(long)]
        rebalance: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kubectl bascule: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach the hub: {e}"))?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let workloads: Api<MultiCloudWorkload> = if cli.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &namespace)
    };
    let clusters: Api<MemberCluster> = Api::all(client);
    let hub_error = |what: &str, e: kube::Error| format!("cannot {what} on the hub: {e}");
    match cli.command {
        Command::Status => {
            let w = workloads
                .list(&ListParams::default())
                .await
                .map_err(|e| hub_error("list MultiCloudWorkloads", e))?;
            let c = clusters
                .list(&ListParams::default())
                .await
                .map_err(|e| hub_error("list MemberClusters", e))?;
            print!("{}", kubectl::status_table(&w.items, &c.items));
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { name } => {
            let w = workloads
                .get_opt(&name)
                .await
                .map_err(|e| hub_error("read the MultiCloudWorkload", e))?
                .ok_or_else(|| format!("no MultiCloudWorkload {namespace}/{name}"))?;
            print!("{}", kubectl::explain(&w));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            what_if_unhealthy,
            rebalance,
        } => {
            let origin = |what: &str| Origin {
                file: format!("hub:{what}").into(),
                line: 0,
            };
            let objects = Objects {
                clusters: clusters
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| hub_error("list MemberClusters", e))?
                    .items
                    .into_iter()
                    .map(|c| (origin("MemberCluster"), c))
                    .collect(),
                workloads: workloads
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| hub_error("list MultiCloudWorkloads", e))?
                    .items
                    .into_iter()
                    .map(|w| (origin("MultiCloudWorkload"), w))
                    .collect(),
                skipped: Default::default(),
            };
            let what_if = WhatIf {
                unhealthy: what_if_unhealthy,
                taints: Vec::new(),
                rebalance,
            };
            let now = k8s_openapi::jiff::Timestamp::now();
            let plans = plan::plan(&objects, &what_if, now).map_err(|e| e.to_string())?;
            print!("{}", plan::render_table(&plans));
            Ok(if plan::all_satisfied(&plans) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
    }
}
