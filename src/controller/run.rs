//! `bascule run`: the members' supervisor, the member watches and the workload controller,
//! wired together. Ends with an error when any of them can no longer work, so that the process
//! exits and is restarted rather than running blind.

use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::watcher;
use tokio::sync::mpsc;

use super::events::Events;
use super::reconcile::{self, Context};
use super::triggers;
use crate::api::MultiCloudWorkload;
use crate::members::{self, ConnectionOptions, MemberPool, MembersError};
use crate::sync::apply::MemberCache;
use crate::sync::observe::Observer;

/// How the controller runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The namespace of the operator: where MemberClusters' kubeconfig Secrets are read.
    pub namespace: String,
    pub connection: ConnectionOptions,
    /// Workloads reconciled at once.
    pub concurrency: u16,
    /// This process's name in Events (`reportingInstance`).
    pub instance: String,
    /// Workloads that may start a failover or failback per second, operator-wide.
    pub failover_starts_per_second: u32,
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Members(#[from] MembersError),
    #[error(
        "cannot list MultiCloudWorkloads on the hub (are the CRDs installed and RBAC granted?): {0}"
    )]
    Hub(#[source] kube::Error),
    #[error("the member supervisor stopped")]
    MembersEnded,
}

/// Runs until `shutdown` resolves (Ok) or a part fails (Err).
pub async fn run(
    hub: kube::Client,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), RunError> {
    let workloads: Api<MultiCloudWorkload> = Api::all(hub.clone());
    workloads
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map_err(RunError::Hub)?;

    let pool = MemberPool::new();
    let (observer, changed) = Observer::new();
    let ctx = Arc::new(Context {
        hub: hub.clone(),
        pool: pool.clone(),
        observer,
        cache: MemberCache::default(),
        events: Events::new(hub.clone(), opts.instance.clone()),
        started: std::time::Instant::now(),
        failover_starts: governor::RateLimiter::direct(governor::Quota::per_second(
            std::num::NonZeroU32::new(opts.failover_starts_per_second.max(1)).expect("at least 1"),
        )),
    });

    let controller = Controller::new(workloads, watcher::Config::default().any_semantic())
        .with_config(Config::default().concurrency(opts.concurrency));
    let store = controller.store();
    let (tx, rx) = mpsc::unbounded_channel();
    let from_observer = tokio::spawn(triggers::from_observer(changed, tx.clone()));
    let from_members = tokio::spawn(triggers::from_members(ctx.clone(), store, tx));
    let requests =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let controller = controller
        .reconcile_on(requests)
        .graceful_shutdown_on(shutdown)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(workload = %obj, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
                Err(error) => tracing::warn!(%error, "controller"),
            }
        });
    let members = members::run(hub, opts.namespace.clone(), opts.connection, pool);

    tracing::info!(namespace = %opts.namespace, "bascule controller started");
    let result = tokio::select! {
        r = members => Err(r.err().map_or(RunError::MembersEnded, RunError::from)),
        () = controller => Ok(()),
    };
    from_observer.abort();
    from_members.abort();
    result
}
