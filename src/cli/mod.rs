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
        assert_eq!((o.concurrency, o.failover_starts_per_second), (16, 200));
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
    fn tenancy_flags_become_the_policy() {
        use crate::policy::tenancy::{self, Tenancy};
        let Command::Run(args) = parse(&["run", "--namespace=ops"]) else {
            panic!("not run")
        };
        assert_eq!(args.options("p".into()).tenancy, Tenancy::defaults("ops"));
        let Command::Run(args) = parse(&[
            "run",
            "--also-allowed-kinds=Job.batch,*.example.com",
            "--allow-rbac",
            "--denied-namespaces=kube-*,prod-*",
        ]) else {
            panic!("not run")
        };
        let mut kinds = tenancy::default_kinds();
        kinds.extend([
            "Job.batch".parse().unwrap(),
            "*.example.com".parse().unwrap(),
        ]);
        let denied = ["kube-*".parse().unwrap(), "prod-*".parse().unwrap()];
        assert_eq!(
            args.options("p".into()).tenancy,
            Tenancy::new(kinds, true, denied.to_vec())
        );
        let Command::Run(args) = parse(&["run", "--allowed-kinds=ConfigMap"]) else {
            panic!("not run")
        };
        assert_eq!(
            args.options("p".into()).tenancy,
            Tenancy::new(
                vec!["ConfigMap".parse().unwrap()],
                false,
                tenancy::default_denied_namespaces("bascule-system")
            )
        );
        let bad = Cli::try_parse_from(["bascule", "run", "--allowed-kinds=apps/Deployment"])
            .err()
            .expect("refused")
            .to_string();
        assert!(bad.contains("Kind.group"), "{bad}");
    }

    #[test]
    fn incident_flags() {
        let Command::Run(args) = parse(&["run", "--pause-moves", "--dry-run"]) else {
            panic!("not run")
        };
        let o = args.options("p".into());
        assert!(o.pause_moves && o.dry_run);
        let Command::Run(args) = parse(&["run"]) else {
            panic!("not run")
        };
        let o = args.options("p".into());
        assert!(!o.pause_moves && !o.dry_run, "both off by default");
        assert_eq!(o.hub_id, None, "derived from the hub by default");
        let Command::Run(args) = parse(&["run", "--hub-id=hub-eu.1"]) else {
            panic!("not run")
        };
        assert_eq!(args.options("p".into()).hub_id.as_deref(), Some("hub-eu.1"));
        for bad in ["-a", "a b", "", &"x".repeat(64)] {
            assert!(
                Cli::try_parse_from(["bascule", "run", &format!("--hub-id={bad}")]).is_err(),
                "{bad:?}"
            );
        }
        // A dry run must never hold the live operator's Lease.
        let e = Cli::try_parse_from(["bascule", "run", "--dry-run", "--leader-election"])
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("--leader-election"), "{e}");
    }

    /// `--help` lists the default kinds; the list is the code's.
    #[test]
    fn the_allowed_kinds_help_names_the_defaults() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let run = cmd.find_subcommand_mut("run").expect("run");
        let help = run
            .render_long_help()
            .to_string()
            .replace(char::is_whitespace, "");
        let listed = help
            .split_once("Default:Deployment")
            .and_then(|(_, rest)| rest.split_once("--also-allowed-kinds"))
            .map(|(list, _)| format!("Deployment{}", list.trim_end_matches('.')))
            .expect("the --allowed-kinds help lists its default");
        let listed: Vec<&str> = listed.split(',').collect();
        assert_eq!(listed, crate::policy::tenancy::DEFAULT_ALLOWED_KINDS);
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
