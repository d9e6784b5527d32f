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
use super::leader::{self, LeaderError, LeaderOptions, Leadership};
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
    /// What workloads may place in members.
    pub tenancy: crate::policy::tenancy::Tenancy,
    /// Pause every workload's moves (an incident control).
    pub pause_moves: bool,
    /// Decide and report (logs, metrics) but write nothing: not to members, not to the hub.
    pub dry_run: bool,
    /// This hub's id, labelled on everything it places; none: the uid of the hub's
    /// `kube-system` namespace.
    pub hub_id: Option<String>,
    /// How long a deleted MemberCluster waits for its workloads' objects to be removed before
    /// it goes anyway (an unreachable member).
    pub member_removal_timeout: std::time::Duration,
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
    #[error(
        "cannot read namespace kube-system on the hub, whose uid is the default hub id: {0}; grant `get` on it or set --hub-id"
    )]
    HubId(#[source] kube::Error),
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
    let hub_id = match &opts.hub_id {
        Some(id) => id.clone(),
        None => kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(hub.clone())
            .get_metadata("kube-system")
            .await
            .map_err(RunError::HubId)?
            .metadata
            .uid
            .unwrap_or_default(),
    };
    tracing::info!(%hub_id, "this hub's id, labelled on what it places (bascule.dev/hub)");
    ready.store(true, Ordering::Release);

    let mut server_ended = std::pin::pin!(async {
        let r = (&mut server).await;
        RunError::Http {
            addr: opts
                .http_addr
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            source: match r {
                Ok(Err(e)) => e,
                _ => std::io::Error::other("the HTTP server stopped"),
            },
        }
    });
    // Each term of leadership runs the whole controller; losing the Lease ends the term (every
    // reconcile and member write stops at once) and this process waits to lead again.
    let mut terms = 0u32;
    let result = loop {
        let leadership = match &opts.lease_name {
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
                let reachable = hub_reachable(hub.clone(), ready.clone());
                tokio::select! {
                    l = acquire => match l {
                        Ok(l) => Some(l),
                        // Having led before, the Lease and its permissions are fine: the hub is
                        // what fails (unreachable, frozen). Wait for it; never exit over it.
                        Err(e) if terms > 0 => {
                            tracing::warn!(error = %e, "cannot take the leader Lease yet; retrying in 2s");
                            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                            continue;
                        }
                        Err(e) => break Err(e.into()),
                    },
                    () = stopped() => break Ok(()),
                    () = reachable => unreachable!("the reachability probe runs until dropped"),
                    e = &mut server_ended => break Err(e),
                }
            }
        };
        ready.store(true, Ordering::Release);
        metrics.leader.set(1);
        terms += 1;
        let term = lead(
            hub.clone(),
            &opts,
            &hub_id,
            metrics.clone(),
            leadership,
            stopped(),
        );
        let ended = tokio::select! {
            t = term => t,
            e = &mut server_ended => Term::Failed(e),
        };
        metrics.leader.set(0);
        match ended {
            Term::Stopped(leadership) => {
                if let Some(l) = leadership {
                    l.release().await;
                }
                break Ok(());
            }
            Term::Failed(e) => break Err(e),
            Term::Lost(leadership, why) => {
                leadership.abandon();
                ready.store(false, Ordering::Release);
                tracing::warn!(%why, "leadership lost: every reconcile and member write stopped; waiting to lead again");
            }
        }
    };
    server.abort();
    result
}

/// How a term of leadership ended.
enum Term {
    /// Shut down cleanly (the Lease, if any, to be released).
    Stopped(Option<Leadership>),
    /// The Lease was lost or could not be confirmed.
    Lost(Leadership, String),
    Failed(RunError),
}

/// While waiting for the Lease, `/readyz` says whether the hub answers: a standby that can reach
/// it is ready to take over; a process cut off from it is not.
async fn hub_reachable(hub: kube::Client, ready: Arc<AtomicBool>) {
    let api: Api<Guarded> = Api::all(hub);
    loop {
        let answered = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            api.list_metadata(&ListParams::default().limit(1)),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        ready.store(answered, Ordering::Release);
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

/// One term: the member supervisor, the member watches and the workload controller, until
/// shutdown, a part failing, or the Lease lost. Everything started here stops with it.
async fn lead(
    hub: kube::Client,
    opts: &Options,
    hub_id: &str,
    metrics: Metrics,
    mut leadership: Option<Leadership>,
    stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Term {
    let workloads: Api<Guarded> = Api::all(hub.clone());
    let pool = MemberPool::new();
    let (observer, changed) = Observer::new(hub_id);
    // An object changed or deleted by hand in a member: its workload is synced again, as when
    // the observer sees its Deployment change.
    let drift = observer.notices();
    // A member's broken watch is the first sign of its outage: have it probed at once.
    let observer = {
        let pool = pool.clone();
        observer.on_watch_failure(move |cluster| pool.probe_soon(cluster))
    };
    let ctx = Arc::new(Context {
        hub: hub.clone(),
        pool: pool.clone(),
        observer,
        cache: MemberCache::new(opts.pod_security, hub_id).on_drift(drift),
        events: Events::new(hub.clone(), opts.instance.clone()),
        started: std::time::Instant::now(),
        failover_starts: governor::RateLimiter::direct(governor::Quota::per_second(
            std::num::NonZeroU32::new(opts.failover_starts_per_second.max(1)).expect("at least 1"),
        )),
        metrics: metrics.clone(),
        written: Default::default(),
        status_written_at: Default::default(),
        backoff: Default::default(),
        tenancy: opts.tenancy.clone(),
        pause_moves: opts.pause_moves,
        dry_run: opts.dry_run,
        reported: Default::default(),
        hub_id: hub_id.to_string(),
    });
    metrics.moves_paused.set(i64::from(opts.pause_moves));
    if opts.pause_moves {
        tracing::warn!(
            "moves are paused (--pause-moves): every placement in force is kept, whatever happens to its clusters"
        );
    }
    if opts.dry_run {
        tracing::warn!(
            "dry run: decisions are logged (\"would\"), nothing is written to the members or the hub"
        );
    }

    let controller = Controller::new(workloads, watcher::Config::default().any_semantic())
        .with_config(Config::default().concurrency(opts.concurrency));
    let store = controller.store();
    let (tx, rx) = mpsc::unbounded_channel();
    let from_observer = AbortOnDrop(tokio::spawn(triggers::from_observer(changed, tx.clone())));
    let removals = AbortOnDrop(tokio::spawn(super::removal::run(
        ctx.clone(),
        store.clone(),
        opts.member_removal_timeout,
    )));
    let from_members = AbortOnDrop(tokio::spawn(triggers::from_members(ctx.clone(), store, tx)));
    let requests =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let controller = controller
        .reconcile_on(requests)
        .graceful_shutdown_on(stopped)
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
    let members = members::run(
        hub,
        opts.namespace.clone(),
        ConnectionOptions {
            request_counts: metrics.member_requests.clone(),
            ..opts.connection.clone()
        },
        pool,
        !opts.dry_run,
    );
    let leader_watch = async {
        match leadership.as_mut() {
            Some(l) => Some(l.lost().await),
            None => std::future::pending().await,
        }
    };

    tracing::info!(namespace = %opts.namespace, tenancy = %opts.tenancy.summary(), "bascule controller started");
    let ended = tokio::select! {
        r = members => Err(r.err().map_or(RunError::MembersEnded, RunError::from)),
        () = controller => Ok(None),
        why = leader_watch => Ok(why),
    };
    drop((from_observer, from_members, removals));
    match (ended, leadership) {
        (Err(e), _) => Term::Failed(e),
        (Ok(Some(why)), Some(l)) => Term::Lost(l, why),
        (Ok(_), leadership) => Term::Stopped(leadership),
    }
}

/// A spawned task that is aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
