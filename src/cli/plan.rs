//! `bascule plan`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use super::exit;
use crate::api::Taint;
use crate::plan::{self, WhatIf};
use crate::yaml;

#[derive(clap::Args)]
pub struct PlanArgs {
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

pub fn run(args: PlanArgs) -> ExitCode {
    let inputs: Vec<PathBuf> = args.files.into_iter().chain(args.paths).collect();
    let what_if = WhatIf {
        unhealthy: args.unhealthy,
        taints: args.taint,
        rebalance: args.rebalance,
    };
    let objects = match yaml::load(&inputs) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("bascule plan: {message}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
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
    match args.output {
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
