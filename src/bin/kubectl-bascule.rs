//! `kubectl bascule`: a kubectl plugin (an executable named `kubectl-bascule` on PATH) that reads
//! the hub of the current kubeconfig context.
//!
//!     kubectl bascule status [-n NS | -A]
//!     kubectl bascule explain NAME [-n NS]
//!     kubectl bascule plan [--what-if-unhealthy CLUSTER]... [--rebalance]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;

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
    // Lists read through a guard: one object the typed client cannot read is named on stderr
    // and left out, instead of failing the whole command.
    let workloads: Api<DeserializeGuard<MultiCloudWorkload>> = if cli.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &namespace)
    };
    let clusters: Api<DeserializeGuard<MemberCluster>> = Api::all(client);
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
            print!(
                "{}",
                kubectl::status_table(&readable(w.items), &readable(c.items))
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { name } => {
            let w = workloads
                .get_opt(&name)
                .await
                .map_err(|e| hub_error("read the MultiCloudWorkload", e))?
                .ok_or_else(|| format!("no MultiCloudWorkload {namespace}/{name}"))?
                .0
                .map_err(|e| {
                    format!("MultiCloudWorkload {namespace}/{name} cannot be read: {e}")
                })?;
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
            let cluster_list = clusters
                .list(&ListParams::default())
                .await
                .map_err(|e| hub_error("list MemberClusters", e))?
                .items;
            let workload_list = workloads
                .list(&ListParams::default())
                .await
                .map_err(|e| hub_error("list MultiCloudWorkloads", e))?
                .items;
            let objects = Objects {
                clusters: readable(cluster_list)
                    .into_iter()
                    .map(|c| (origin("MemberCluster"), c))
                    .collect(),
                workloads: readable(workload_list)
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

/// The objects that could be read; each one that could not is named on stderr.
fn readable<K: kube::Resource<DynamicType = ()>>(items: Vec<DeserializeGuard<K>>) -> Vec<K> {
    items
        .into_iter()
        .filter_map(|g| match g.0 {
            Ok(k) => Some(k),
            Err(e) => {
                let m = &e.metadata;
                eprintln!(
                    "warning: {} {}{} cannot be read and is left out: {}",
                    K::kind(&()),
                    m.namespace
                        .as_deref()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default(),
                    m.name.as_deref().unwrap_or_default(),
                    e.error
                );
                None
            }
        })
        .collect()
}
