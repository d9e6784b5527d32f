//! `bascule run`: the members' supervisor, the member watches and the workload controller,
//! wired together, behind leader election when asked for, with the HTTP endpoints beside them.
//! Ends with an error when any part can no longer work, so that the process exits and is
//! restarted rather than running blind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Config, Controller};
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use super::events::Events;
use super::leader::{self, LeaderError, LeaderOptions};
use super::reconcile::{self, Context, Guarded};
use super::triggers;
use crate::http::{self, Endpoints};
use crate::members::{self, ConnectionOptions, MemberPool, MembersError};
use crate::metrics::Metrics;
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
    /// This process's name in Events (`reportingInstance`) and in the Lease.
    pub instance: String,
    /// Workloads that may start a failover or failback per second, operator-wide.
    pub failover_starts_per_second: u32,
    /// Where to serve `/metrics`, `/livez`, `/readyz`; none: not served.
    pub http_addr: Option<SocketAddr>,
    /// The Lease to hold before doing anything; none: run at once (a single replica).
    pub lease_name: Option<String>,
    /// Pod Security level of the namespaces Bascule creates in members.
    pub pod_security: crate::sync::apply::PodSecurity,
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
    #[error(transparent)]
    Leader(#[from] LeaderError),
    #[error("cannot serve HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Runs until `shutdown` resolves (Ok) or a part fails (Err).
pub async fn run(
    hub: kube::Client,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RunError> {
    // One shutdown signal, awaited from several places.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    let metrics = Metrics::new();
    let ready = Arc::new(AtomicBool::new(false));
    let mut server = match opts.http_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| RunError::Http { addr, source })?;
            let endpoints = Endpoints {
                metrics: metrics.clone(),
                ready: ready.clone(),
            };
            tokio::spawn(async move { http::serve_on(listener, endpoints).await })
        }
        None => tokio::spawn(std::future::pending()),
    };

    let workloads: Api<Guarded> = Api::all(hub.clone());
    workloads
        .list_metadata(&ListParams::default().limit(1))
        .await
        .map_err(RunError::Hub)?;
    ready.store(true, Ordering::Release);

    let mut leadership = match &opts.lease_name {
        None => None,
        Some(name) => {
            let acquire = leader::acquire(
                hub.clone(),
                LeaderOptions {
                    lease_name: name.clone(),
                    namespace: opts.namespace.clone(),
                    identity: opts.instance.clone(),
                },
            );
            tokio::select! {
                l = acquire => Some(l?),
                () = stopped() => return Ok(()),
            }
        }
    };
    metrics.leader.set(1);

    let pool = MemberPool::new();
    let (observer, changed) = Observer::new();
    let ctx = Arc::new(Context {
        hub: hub.clone(),
        pool: pool.clone(),
        observer,
        cache: MemberCache::new(opts.pod_security),
        events: Events::new(hub.clone(), opts.instance.clone()),
        started: std::time::Instant::now(),
        failover_starts: governor::RateLimiter::direct(governor::Quota::per_second(
            std::num::NonZeroU32::new(opts.failover_starts_per_second.max(1)).expect("at least 1"),
        )),
        metrics: metrics.clone(),
        written: Default::default(),
        backoff: Default::default(),
    });

    let controller = Controller::new(workloads, watcher::Config::default().any_semantic())
        .with_config(Config::default().concurrency(opts.concurrency));
    let store = controller.store();
    let (tx, rx) = mpsc::unbounded_channel();
    let from_observer = tokio::spawn(triggers::from_observer(changed, tx.clone()));
    let from_members = tokio::spawn(triggers::from_members(ctx.clone(), store, tx));
    let requests =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    // Losing the Lease stops everything at once (the process exits and comes back a standby).
    let leader_watch = async {
        match leadership.as_mut() {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let controller = controller
        .reconcile_on(requests)
        .graceful_shutdown_on(stopped())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(workload = %obj, "reconciled"),
                Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {} // logged by error_policy
                // A member change asked about a workload deleted meanwhile: nothing to do.
                Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
                    tracing::debug!(workload = %obj, "gone before its reconcile")
                }
                Err(error) => tracing::warn!(%error, "controller"),
            }
        });
    let members = members::run(hub, opts.namespace.clone(), opts.connection, pool);

    tracing::info!(namespace = %opts.namespace, "bascule controller started");
    let result = tokio::select! {
        r = members => Err(r.err().map_or(RunError::MembersEnded, RunError::from)),
        () = controller => Ok(()),
        why = leader_watch => Err(LeaderError::Lost(why).into()),
        r = &mut server => Err(RunError::Http {
            addr: opts.http_addr.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            source: match r {
                Ok(Err(e)) => e,
                _ => std::io::Error::other("the HTTP server stopped"),
            },
        }),
    };
    from_observer.abort();
    from_members.abort();
    server.abort();
    metrics.leader.set(0);
    if let Some(l) = leadership
        && result.is_ok()
    {
        l.release().await;
    }
    result
}
