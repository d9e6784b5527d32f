//! `bascule member-credentials`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::exit;
use crate::members::credentials::{self, Request};

#[derive(clap::Args)]
pub struct CredentialsArgs {
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
}

impl CredentialsArgs {
    /// The request these arguments make, or what is wrong with them.
    pub(super) fn request(self) -> Result<(Option<PathBuf>, Request), String> {
        let (namespace, account) = self
            .service_account
            .split_once('/')
            .filter(|(n, s)| !n.is_empty() && !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "--service-account must be NAMESPACE/NAME, got {:?}",
                    self.service_account
                )
            })?;
        let request = Request {
            member: self.name,
            service_account_namespace: namespace.to_string(),
            service_account: account.to_string(),
            token_seconds: self.token_seconds,
            server: self.server,
            hub_namespace: self.hub_namespace,
            secret_name: self.secret_name,
            context: self.context,
        };
        Ok((self.kubeconfig, request))
    }
}

pub fn run(args: CredentialsArgs) -> ExitCode {
    let (kubeconfig, request) = match args.request() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bascule member-credentials: {e}");
            return ExitCode::from(exit::BAD_INPUT);
        }
    };
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
    match runtime.block_on(credentials::issue(kubeconfig, &request)) {
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
