//! The `bascule` command line: one clap argument struct per command, each turned into that
//! command's options and run. `main.rs` only calls [`main`].

mod crd;
mod credentials;
mod plan;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Run(run::RunArgs),
    /// Issue the hub's kubeconfig Secret for a member: a token of the member's least-privilege
    /// ServiceAccount (apply deploy/member-rbac.yaml there first), printed as a Secret manifest.
    /// Example: `bascule member-credentials --kubeconfig eks-admin.yaml --name eks-use1 |
    /// kubectl --context hub apply -f -`
    MemberCredentials(credentials::CredentialsArgs),
    /// Print the CustomResourceDefinitions (YAML), or write one file per CRD into a directory.
    Crd(crd::CrdArgs),
    /// Show where workloads would be placed, and what would move under what-ifs.
    ///
    /// Reads MemberCluster and MultiCloudWorkload objects (multi-document YAML, or `kind: List`
    /// as `kubectl get -o yaml` prints it) from files, directories (*.yaml, *.yml) or stdin (`-`).
    /// Clusters without status are taken as healthy. Exit code: 0 all satisfied, 1 bad input,
    /// 2 usage error, 3 some placement not fully satisfied.
    Plan(plan::PlanArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run::run(args),
        Command::MemberCredentials(args) => credentials::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Plan(args) => plan::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("bascule").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    #[test]
    fn run_arguments_become_the_controllers_options() {
        let Command::Run(args) = parse(&[
            "run",
            "--namespace=ops",
            "--member-qps=7",
            "--leader-election",
            "--lease-name=l",
        ]) else {
            panic!("not run")
        };
        let o = args.options("pod-1".into());
        assert_eq!(o.namespace, "ops");
        assert_eq!(o.connection.requests_per_second, 7);
        assert!(!o.connection.allow_exec_plugins);
        assert_eq!(o.lease_name.as_deref(), Some("l"));
        assert_eq!(o.instance, "pod-1");
        assert_eq!((o.concurrency, o.failover_starts_per_second), (16, 50));
        let Command::Run(args) = parse(&["run"]) else {
            panic!("not run")
        };
        assert_eq!(
            args.options("p".into()).lease_name,
            None,
            "no election unless asked"
        );
    }

    #[test]
    fn member_credentials_arguments_become_a_request() {
        let Command::MemberCredentials(args) = parse(&[
            "member-credentials",
            "--name=eks",
            "--service-account=sys/member",
        ]) else {
            panic!("not member-credentials")
        };
        let (_, r) = args.request().expect("valid");
        assert_eq!(
            (
                r.member.as_str(),
                r.service_account_namespace.as_str(),
                r.service_account.as_str()
            ),
            ("eks", "sys", "member")
        );
        let Command::MemberCredentials(args) = parse(&[
            "member-credentials",
            "--name=eks",
            "--service-account=member",
        ]) else {
            panic!("not member-credentials")
        };
        assert!(args.request().unwrap_err().contains("NAMESPACE/NAME"));
    }
}
