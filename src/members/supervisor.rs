//! Watches MemberClusters and the Secrets of the operator's namespace on the hub, and keeps one
//! task per MemberCluster ([`super::member`]): started when it appears, fed every new version of
//! it and of its Secret, restarted when it is re-created (new UID) or its task died, stopped and
//! removed from the pool when it is deleted.
//!
//! Level-triggered: after any event the whole set of tasks is compared with the hub's objects, so
//! a missed or coalesced event is never lost.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::reflector;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::connection::ConnectionOptions;
use super::member::{self, Input, TaskEnv};
use super::pool::MemberPool;
use crate::api::MemberCluster;

/// Why [`super::run`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    /// The hub refused a first read (CRD not installed, RBAC missing, hub unreachable).
    #[error("cannot {what} on the hub: {source}")]
    Hub {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    /// A watch stream ended (it retries on errors, so this should not happen).
    #[error("the watch of {0} on the hub ended")]
    WatchEnded(&'static str),
}

impl MembersError {
    /// A short category, for logs and metrics.
    pub fn category(&self) -> &'static str {
        match self {
            MembersError::Hub { .. } => "HubUnavailable",
            MembersError::WatchEnded(_) => "WatchEnded",
        }
    }
}

/// Which watch an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Clusters,
    Secrets,
}

/// Runs until cancelled (dropping the future stops every member task) or until a watch ends.
pub async fn run(
    hub: Client,
    namespace: String,
    opts: ConnectionOptions,
    pool: MemberPool,
    write_status: bool,
) -> Result<(), MembersError> {
    // Read through a guard: one MemberCluster the typed client cannot decode must not fail the
    // relist of all the others (which would stop every member's updates).
    let clusters = Api::<Guarded>::all(hub.clone());
    let secrets = Api::<Secret>::namespaced(hub.clone(), &namespace);
    // A clear error at once beats a watch retrying forever in the background.
    let one = ListParams::default().limit(1);
    clusters
        .list_metadata(&one)
        .await
        .map_err(|source| MembersError::Hub {
            what: "list MemberClusters",
            source,
        })?;
    secrets
        .list_metadata(&one)
        .await
        .map_err(|source| MembersError::Hub {
            what: "list Secrets in the operator's namespace",
            source,
        })?;

    let (cluster_store, cluster_writer) = reflector::store();
    let (secret_store, secret_writer) = reflector::store();
    let cluster_events = reflector(
        cluster_writer,
        watcher(clusters, watcher::Config::default()).modify(|mc| mc.managed_fields_mut().clear()),
    )
    .default_backoff()
    .map_ok(|e| (Source::Clusters, is_init_done(&e)));
    // Helm keeps its releases as (large) Secrets in the operator's namespace; they are never
    // kubeconfigs, so they are not cached.
    let secret_config = watcher::Config::default().fields("type!=helm.sh/release.v1");
    let secret_events = reflector(
        secret_writer,
        watcher(secrets, secret_config).modify(|s| s.managed_fields_mut().clear()),
    )
    .default_backoff()
    .map_ok(|e| (Source::Secrets, is_init_done(&e)));
    let mut events = std::pin::pin!(futures::stream::select(cluster_events, secret_events));

    // However this function ends (an error, or its future dropped), nobody probes the members
    // any more: their health becomes Unknown, which holds every placement as it is (fail static).
    let _forget = ForgetHealthOnExit(pool.clone());
    let mut tasks = Tasks {
        ctx: TaskEnv {
            hub,
            namespace,
            opts,
            pool,
            write_status,
        },
        running: BTreeMap::new(),
        set: JoinSet::new(),
        unreadable: BTreeMap::new(),
    };
    let (mut clusters_ready, mut secrets_ready) = (false, false);
    loop {
        tokio::select! {
            event = events.next() => match event {
                None => return Err(MembersError::WatchEnded("MemberClusters and Secrets")),
                Some(Err(e)) => {
                    tracing::warn!("watch on the hub failed (retrying): {e}");
                    continue;
                }
                Some(Ok((Source::Clusters, done))) => clusters_ready |= done,
                Some(Ok((Source::Secrets, done))) => secrets_ready |= done,
            },
            Some(ended) = tasks.set.join_next_with_id() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(e) => e.id(),
                };
                if let Err(e) = &ended && e.is_panic() {
                    tracing::error!("a member task panicked; restarting it: {e}");
                }
                tasks.running.retain(|_, t| t.task != id);
            }
        }
        // Until both first lists are in, an empty store means "not known yet", not "deleted".
        if clusters_ready && secrets_ready {
            tasks.reconcile(&cluster_store, &secret_store);
            tasks.ctx.pool.mark_listed();
        }
    }
}

struct ForgetHealthOnExit(MemberPool);

impl Drop for ForgetHealthOnExit {
    fn drop(&mut self) {
        self.0.forget_health();
    }
}

fn is_init_done<K>(event: &watcher::Event<K>) -> bool {
    matches!(event, watcher::Event::InitDone)
}

type Guarded = DeserializeGuard<MemberCluster>;

/// The member tasks, by MemberCluster name.
struct Tasks {
    ctx: TaskEnv,
    running: BTreeMap<String, Running>,
    set: JoinSet<()>,
    /// MemberClusters that cannot be read, with the resourceVersion already reported.
    unreadable: BTreeMap<String, Option<String>>,
}

struct Running {
    uid: Option<String>,
    task: tokio::task::Id,
    abort: tokio::task::AbortHandle,
    input: watch::Sender<Input>,
}

impl Tasks {
    /// Brings the tasks in line with the hub's MemberClusters and Secrets.
    fn reconcile(&mut self, clusters: &Store<Guarded>, secrets: &Store<Secret>) {
        let mut seen = BTreeMap::new();
        let mut unreadable = BTreeMap::new();
        for guarded in clusters.state() {
            let name = guarded.name_any();
            let cluster = match &guarded.0 {
                Ok(cluster) => Arc::new(cluster.clone()),
                Err(invalid) => {
                    // Fail static: a running member keeps its last readable spec.
                    seen.insert(name.clone(), ());
                    let version = invalid.metadata.resource_version.clone();
                    if self.unreadable.get(&name) != Some(&version) {
                        tracing::warn!(cluster = %name, error = %invalid.error, "MemberCluster cannot be read; its connection is left as it was until the object is fixed");
                    }
                    unreadable.insert(name, version);
                    continue;
                }
            };
            let secret = cluster
                .spec
                .connection
                .kubeconfig_secret_ref
                .as_ref()
                .and_then(|r| secrets.get(&ObjectRef::new(&r.name).within(&self.ctx.namespace)));
            let uid = cluster.uid();
            let input = Input { cluster, secret };
            seen.insert(name.clone(), ());
            match self.running.get(&name) {
                Some(t) if t.uid == uid && !t.abort.is_finished() => {
                    t.input.send_if_modified(|current| {
                        let changed = !current.same_as(&input);
                        if changed {
                            *current = input;
                        }
                        changed
                    });
                }
                _ => self.start(name, uid, input),
            }
        }
        self.unreadable = unreadable;
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|n| !seen.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(t) = self.running.remove(&name) {
                t.abort.abort();
            }
            tracing::info!(cluster = %name, "MemberCluster deleted; connection dropped");
            self.ctx.pool.remove(&name);
        }
    }

    fn start(&mut self, name: String, uid: Option<String>, input: Input) {
        if let Some(old) = self.running.remove(&name) {
            old.abort.abort();
        }
        // Owners are unique in the process, so that two runs sharing a pool cannot mix writes.
        static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);
        let owner = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(input);
        // The pool entry is claimed here, synchronously, so that a deletion seen right after
        // cannot be overtaken by the new task's first write.
        let abort = self.set.spawn(member::start(self.ctx.clone(), owner, rx));
        tracing::info!(cluster = %name, "member task started");
        self.running.insert(
            name,
            Running {
                uid,
                task: abort.id(),
                abort,
                input: tx,
            },
        );
    }
}
