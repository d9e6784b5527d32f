//! One reconcile of a MultiCloudWorkload: read the members' state, ask the engine, take the
//! next make-before-break step in every member, write the status if it changed.
//!
//! Level-triggered and idempotent: everything it needs is read again each time (the placement in
//! force is the last decision, kept in `status.clusters`), so a restart at any point converges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::events::{Events, Kind};
use super::retry::Backoff;
use crate::api::FIELD_MANAGER;
use crate::api::{ClusterHealth, MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::members::MemberPool;
use crate::placement::migrate::{self, Fleet, Running};
use crate::placement::{ClusterSnapshot, Rebalance};
use crate::policy::intent::{self, Settled};
use crate::policy::moves as failover;
use crate::policy::moves::MoveKind;
use crate::policy::reasons::ProblemReason;
use crate::policy::rebalance::Why;
use crate::policy::request;
use crate::policy::status::{self, Observations, Problem};
use crate::sync::apply::{self, MemberCache, Report, SyncError, Target};
use crate::sync::observe::Observer;
use crate::sync::render;

/// Removes everything a workload placed before it goes away.
pub const FINALIZER: &str = "bascule.dev/cleanup";

/// How long one member may take to sync one workload; a frozen member must not hold the others.
const MEMBER_DEADLINE: Duration = Duration::from_secs(15);
/// How long after a start reconciles wait for every member's first probe.
const STARTUP_GRACE: Duration = Duration::from_secs(10);
/// When a member could not be synced, try again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// When a reconcile panicked, try that workload again after this long.
const PANIC_RETRY: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    pub hub: kube::Client,
    pub pool: MemberPool,
    pub observer: Observer,
    pub cache: MemberCache,
    pub events: Events,
    /// When this process started: members not probed yet are waited for briefly.
    pub started: std::time::Instant,
    /// How many workloads may start a move per second, operator-wide, so that one lost cluster
    /// does not stampede the others.
    pub failover_starts: governor::DefaultDirectRateLimiter,
    pub metrics: crate::metrics::Metrics,
    /// The status this process last wrote per workload (by uid), with the resourceVersion of the
    /// object it was computed from. Until the watch delivers the write, the store still shows
    /// that version and an older status; deciding from it again would tell the same move twice.
    pub written:
        std::sync::Mutex<std::collections::HashMap<String, (String, MultiCloudWorkloadStatus)>>,
    /// Failures in a row per workload, for the retry delay.
    pub backoff: Backoff,
}

impl Context {
    /// `w` with the status this process wrote last, when the store has not caught up with it
    /// (once it has, the entry is dropped: the store is the truth again).
    fn with_own_status(&self, w: &MultiCloudWorkload) -> Option<MultiCloudWorkload> {
        let uid = w.metadata.uid.as_deref()?;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let (seen, status) = written.get(uid)?;
        if w.metadata.resource_version.as_ref() != Some(seen) {
            written.remove(uid);
            return None;
        }
        let mut fresh = w.clone();
        fresh.status = Some(status.clone());
        Some(fresh)
    }

    fn remember_status(&self, w: &MultiCloudWorkload, status: &MultiCloudWorkloadStatus) {
        if let (Some(uid), Some(rv)) = (&w.metadata.uid, &w.metadata.resource_version) {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid.clone(), (rv.clone(), status.clone()));
        }
    }

    fn forget_status(&self, w: &MultiCloudWorkload) {
        if let Some(uid) = &w.metadata.uid {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
        }
    }
}

/// Why a reconcile failed; it is retried with a per-workload exponential backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the MultiCloudWorkload has no namespace")]
    NoNamespace,
    #[error("hub: {what}: {source}")]
    Hub {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("cleanup incomplete in {0}; retrying")]
    CleanupIncomplete(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A bug met by this workload alone: caught so that the others keep being served.
    #[error("reconcile panicked: {0}")]
    Panicked(String),
}

impl Error {
    /// A bounded label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NoNamespace => "InvalidObject",
            Error::Hub { .. } => "HubApi",
            Error::CleanupIncomplete(_) => "CleanupIncomplete",
            Error::Finalizer(_) => "Finalizer",
            Error::Panicked(_) => "Panic",
        }
    }
}

/// How the hub's MultiCloudWorkloads are read: an object the typed client cannot decode arrives
/// as an error of its own instead of failing the list of all the others.
pub type Guarded = DeserializeGuard<MultiCloudWorkload>;

/// The controller's entry point for one workload. A panic is caught here: it fails this
/// workload's reconcile only, never the controller that serves every other one.
pub async fn reconcile(w: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let work = async {
        match &w.0 {
            Ok(workload) => reconcile_inner(Arc::new(workload.clone()), &ctx).await,
            Err(unreadable) => super::invalid::reconcile(unreadable, &ctx).await,
        }
    };
    let result = std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(Error::Panicked(panic_message(panic.as_ref()))));
    if result.is_ok() {
        ctx.backoff.succeeded(&backoff_key(&w));
    }
    let label = match &result {
        Ok(_) => "ok",
        Err(e) => e.category(),
    };
    ctx.metrics
        .reconciled(label, started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(w: Arc<MultiCloudWorkload>, ctx: &Context) -> Result<Action, Error> {
    let namespace = w.namespace().ok_or(Error::NoNamespace)?;
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.hub.clone(), &namespace);
    finalizer(&api, FINALIZER, w, |event| async {
        match event {
            finalizer::Event::Apply(w) => place(&w, ctx).await,
            finalizer::Event::Cleanup(w) => cleanup(&w, ctx).await,
        }
    })
    .await
    .or_else(|e| match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => Err(e),
        // Gone already: a second request for a workload whose cleanup just finished.
        finalizer::Error::RemoveFinalizer(kube::Error::Api(s)) if s.code == 404 => {
            Ok(Action::await_change())
        }
        other => Err(Error::Finalizer(other.to_string())),
    })
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into())
}

/// Retry after a failed reconcile: 5 s after a first failure (members come and go), doubling
/// with each failure in a row up to 5 minutes; a panic is a bug that a retry will meet again,
/// so that workload waits the longest.
pub fn error_policy(w: Arc<Guarded>, error: &Error, ctx: Arc<Context>) -> Action {
    let workload = format!("{}/{}", w.namespace().unwrap_or_default(), w.name_any());
    if let Error::Panicked(_) = error {
        tracing::error!(%workload, %error, "reconcile panicked; this workload is retried in 5 minutes, the others are not affected");
        return Action::requeue(PANIC_RETRY);
    }
    let wait = ctx.backoff.failed(&backoff_key(&w));
    tracing::warn!(%workload, category = error.category(), %error, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// A workload's key in the backoff: its uid (a re-created workload starts afresh).
fn backoff_key(w: &Guarded) -> String {
    w.uid().unwrap_or_else(|| w.name_any())
}

/// `apiVersion/kind` of every manifest in the workload's template.
fn template_kinds(w: &MultiCloudWorkload) -> BTreeSet<String> {
    w.spec
        .template
        .manifests
        .iter()
        .map(|m| apply::type_key(&m.0))
        .collect()
}

async fn place(w: &MultiCloudWorkload, ctx: &Context) -> Result<Action, Error> {
    if let Some(wait) = first_probes_pending(ctx) {
        return Ok(Action::requeue(wait));
    }
    let fresh = ctx.with_own_status(w);
    let w = fresh.as_ref().unwrap_or(w);
    let now = Timestamp::now();
    let uid = w.uid().unwrap_or_default();
    let namespace = w.namespace().ok_or(Error::NoNamespace)?;
    let snapshots = ctx.pool.snapshots();
    let previous = w.status.clone().unwrap_or_default();
    let mut intent = intent::admit(w, request::decision_for(w, &snapshots, now), now);
    if intent.starting.is_some()
        && let Err(not_until) = ctx.failover_starts.check()
    {
        // Others are starting theirs (the operator-wide pace): come back in a moment, nothing
        // written.
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        return Ok(Action::requeue(wait.max(Duration::from_millis(50))));
    }
    let decision = &intent.decision;
    // What applying it meets (added to the intent's own problems once it is carried out).
    let mut problems = Vec::new();

    // Every cluster the workload is, was or will be in, and what it runs there.
    let mut names: BTreeSet<String> = decision.placement.keys().cloned().collect();
    names.extend(previous.clusters.iter().map(|c| c.name.clone()));
    names.extend(ctx.observer.clusters_of(&uid));
    let fleet: Fleet = names
        .iter()
        .map(|n| (n.clone(), observe(ctx, n, &uid)))
        .collect();
    // After an outage, members come back Recovering: removing anything then could undo what
    // the next, better-informed decision wants (a standby dropped while one member was seen
    // down first). Removals wait until no member concerned is Recovering or Unknown.
    let settling = names.iter().any(|n| {
        ctx.pool
            .snapshot(n)
            .is_some_and(|s| matches!(s.health, ClusterHealth::Recovering | ClusterHealth::Unknown))
    });
    let step = migrate::step(
        &decision.placement,
        &fleet,
        w.spec.failover.purge_mode,
        settling,
    );

    let mut kinds: BTreeSet<String> = template_kinds(w);
    kinds.extend(previous.kinds.iter().cloned());
    let mut syncs = Vec::new();
    for (cluster, &replicas) in &step.replicas {
        let (Some(snapshot), Some((_, client))) =
            (ctx.pool.snapshot(cluster), ctx.pool.connection(cluster))
        else {
            continue;
        };
        let rendered = if replicas > 0 {
            match render::render(w, &snapshot, replicas) {
                Ok(objects) => objects,
                Err(e) => {
                    problems.push(Problem {
                        reason: ProblemReason::RenderFailed,
                        message: format!("{cluster}: {e}"),
                    });
                    continue;
                }
            }
        } else {
            Vec::new()
        };
        // Nothing to send when exactly this was synced before and the member still runs it.
        let runs_it = fleet.get(cluster).copied().flatten().map(|r| r.replicas) == Some(replicas);
        let target = Target {
            cluster,
            client: &client,
            namespace: &namespace,
            workload_uid: &uid,
            rendered: rendered.clone(),
            kinds: &kinds,
        };
        if runs_it && ctx.cache.in_sync(&target) {
            continue;
        }
        let (cache, namespace, uid, kinds) = (&ctx.cache, &namespace, &uid, &kinds);
        syncs.push(async move {
            let target = Target {
                cluster,
                client: &client,
                namespace,
                workload_uid: uid,
                rendered,
                kinds,
            };
            let result = tokio::time::timeout(MEMBER_DEADLINE, apply::sync(cache, target)).await;
            (cluster.clone(), result)
        });
    }
    let results = join_all(syncs).await;

    let mut placed_kinds: BTreeSet<String> = template_kinds(w);
    let mut retry = fleet.values().any(Option::is_none);
    // Members where something was just written: what they report predates it.
    let mut changed = BTreeSet::new();
    // Members whose sync failed, with what went wrong.
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    for (cluster, result) in results {
        match result {
            Ok(Ok(report)) => {
                if report.applied + report.deleted > 0 {
                    changed.insert(cluster.clone());
                }
                note_conflicts(&cluster, &report, &mut problems);
                placed_kinds.extend(report.kinds);
            }
            Ok(Err(e)) => {
                retry = true;
                let message = format!("{cluster}: {e}");
                failed.insert(cluster, message.clone());
                problems.push(Problem {
                    reason: sync_reason(&e),
                    message,
                });
            }
            Err(_) => {
                retry = true;
                let message = format!("{cluster}: no answer within {}s", MEMBER_DEADLINE.as_secs());
                failed.insert(cluster, message.clone());
                problems.push(Problem {
                    reason: ProblemReason::MemberTimeout,
                    message,
                });
            }
        }
    }
    if retry {
        // Not every member could be pruned: keep every kind known so far.
        placed_kinds.extend(kinds);
    }

    intent.problems.extend(problems);
    let (intent, settled) = intent::settle(w, intent, &failed, now);
    let workload = format!("{namespace}/{}", w.name_any());
    match &settled {
        Settled::Postponed(message) => tracing::warn!(%workload, %message),
        Settled::Started(m) => {
            tracing::info!(%workload, from = ?m.from, to = ?m.to, reason = %m.reason, "move started");
            ctx.metrics.move_started(match m.kind {
                MoveKind::Failover => "failover",
                MoveKind::Failback => "failback",
            });
        }
        Settled::NoMove => {}
    }

    let observations: Observations = names
        .iter()
        .chain(step.replicas.keys())
        .map(|n| {
            let seen = fleet
                .get(n)
                .copied()
                .unwrap_or_else(|| observe(ctx, n, &uid));
            let mut o = seen.map(|r| observed(ctx, n, &uid, r));
            if let Some(o) = o.as_mut().filter(|_| changed.contains(n)) {
                // Not counted until the member reports on what was just applied.
                o.available = 0;
            }
            (n.clone(), o)
        })
        .collect();
    let providers = snapshots
        .iter()
        .filter_map(|s| s.provider.map(|p| (s.name.clone(), p)))
        .collect();
    let status = status::of_intent(
        w,
        &intent,
        &providers,
        &observations,
        placed_kinds.into_iter().collect(),
        !step.held.is_empty(),
        now,
    );

    if Some(&status) != w.status.as_ref() {
        // Events first: they are derived from the change of status, so a process killed
        // between the two would otherwise leave the story without its start (FailoverStarted)
        // for good. This way a kill at worst tells it twice.
        publish_events(w, &previous, &status, intent.why, ctx).await;
        write_status(w, &namespace, &status, ctx).await?;
        ctx.remember_status(w, &status);
    }

    if retry {
        return Ok(Action::requeue(RETRY_AFTER));
    }
    // Time alone can change the decision: come back when it will.
    let decision = &intent.decision;
    let failback_waiting =
        intent.rebalance == Rebalance::Sticky && decision.preferred != decision.summary();
    if let Some(after) = next_deadline(
        w,
        &snapshots,
        &status,
        failback_waiting,
        intent.budget_until,
        now,
    ) {
        return Ok(Action::requeue(after));
    }
    Ok(Action::await_change())
}

/// Right after a start, members are Unknown until their first probe (a second or two), and
/// what a reachable member runs is unknown until its objects are listed; a decision made then
/// would hold everything and report members unreachable or empty, only to be corrected at
/// once (two status writes and an Event after a restart that changed nothing). Wait for the
/// first probes and lists instead, but never longer than the grace.
fn first_probes_pending(ctx: &Context) -> Option<Duration> {
    if ctx.started.elapsed() >= STARTUP_GRACE {
        return None;
    }
    let pending = !ctx.pool.listed()
        || ctx.pool.names().iter().any(|n| {
            ctx.pool.connection(n).is_some()
                && (ctx.pool.probe_stats(n).is_some_and(|p| p.probes == 0)
                    || (ctx.pool.snapshot(n).is_some_and(|s| {
                        matches!(s.health, ClusterHealth::Healthy | ClusterHealth::Recovering)
                    }) && !ctx.observer.synced(n)))
        });
    pending.then_some(Duration::from_millis(500))
}

/// What `cluster` runs of the workload, or `None` when it cannot be asked: no connection, not
/// healthy enough to be trusted, or its objects not listed yet.
fn observe(ctx: &Context, cluster: &str, uid: &str) -> Option<Running> {
    let snapshot = ctx.pool.snapshot(cluster)?;
    if !matches!(
        snapshot.health,
        ClusterHealth::Healthy | ClusterHealth::Recovering
    ) {
        return None;
    }
    ctx.pool.connection(cluster)?;
    ctx.observer.running(cluster, uid).map(|o| Running {
        replicas: o.replicas,
        available: o.available,
    })
}

fn observed(ctx: &Context, cluster: &str, uid: &str, r: Running) -> status::MemberReplicas {
    let ready = ctx.observer.running(cluster, uid).map_or(0, |o| o.ready);
    status::MemberReplicas {
        replicas: r.replicas,
        ready,
        available: r.available,
    }
}

fn note_conflicts(cluster: &str, report: &Report, problems: &mut Vec<Problem>) {
    for (key, owner) in &report.conflicts {
        problems.push(Problem {
            reason: ProblemReason::OwnershipConflict,
            message: format!(
                "{cluster}: {} {}/{} already exists, held by {owner}; left untouched",
                key.kind, key.namespace, key.name
            ),
        });
    }
}

fn sync_reason(e: &SyncError) -> ProblemReason {
    match e.category() {
        "InvalidTemplate" => ProblemReason::InvalidTemplate,
        "Forbidden" => ProblemReason::Forbidden,
        _ => ProblemReason::SyncFailed,
    }
}

async fn write_status(
    w: &MultiCloudWorkload,
    namespace: &str,
    status: &MultiCloudWorkloadStatus,
    ctx: &Context,
) -> Result<(), Error> {
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.hub.clone(), namespace);
    let patch = json!({
        "apiVersion": MultiCloudWorkload::api_version(&()),
        "kind": MultiCloudWorkload::kind(&()),
        "status": status,
    });
    api.patch_status(
        &w.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Hub {
        what: "write status",
        source,
    })?;
    Ok(())
}

/// Events for what a person wants to know: a new placement, a new problem.
async fn publish_events(
    w: &MultiCloudWorkload,
    before: &MultiCloudWorkloadStatus,
    after: &MultiCloudWorkloadStatus,
    why: Why,
    ctx: &Context,
) {
    let reference = w.object_ref(&());
    // A placement that starts a move is told as that move, not as the rebalance mode's reason.
    let new_move = after
        .last_failover
        .as_ref()
        .filter(|r| before.last_failover.as_ref().map(|b| &b.started_at) != Some(&r.started_at));
    let why = match new_move {
        Some(r) if failover::is_failback(r) => "failback".to_string(),
        Some(_) => "failover".to_string(),
        None => why.to_string(),
    };
    if after.placement != before.placement {
        let note = format!(
            "placing {} ({why}; {})",
            after.placement.as_deref().unwrap_or("nothing"),
            after.decision.as_ref().map_or("", |d| d.outcome.as_str())
        );
        ctx.events
            .publish(&reference, Kind::Normal, "Placed", "Place", &note)
            .await;
    }
    if let Some(r) = &after.last_failover {
        let same_move = before
            .last_failover
            .as_ref()
            .is_some_and(|b| b.started_at == r.started_at);
        let word = if failover::is_failback(r) {
            "Failback"
        } else {
            "Failover"
        };
        if !same_move {
            let kind = if failover::is_failback(r) {
                Kind::Normal
            } else {
                Kind::Warning
            };
            let note = format!("{}: {}", r.summary, r.reason);
            ctx.events
                .publish(&reference, kind, &format!("{word}Started"), "Move", &note)
                .await;
        }
        let was_done = before
            .last_failover
            .as_ref()
            .is_some_and(|b| b.completed_at.is_some());
        if r.completed_at.is_some() && !(same_move && was_done) {
            ctx.events
                .publish(
                    &reference,
                    Kind::Normal,
                    &format!("{word}Completed"),
                    "Move",
                    &r.summary,
                )
                .await;
        }
    }
    let problem = |s: &MultiCloudWorkloadStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Degraded" && c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = problem(after).filter(|p| Some(p) != problem(before).as_ref())
    {
        ctx.events
            .publish(&reference, Kind::Warning, &reason, "Sync", &message)
            .await;
    }
}

/// How long until time alone may change the decision: a failback's stabilization window ends,
/// a cluster's or the workload's toleration runs out, the move budget frees up.
fn next_deadline(
    w: &MultiCloudWorkload,
    snapshots: &[ClusterSnapshot],
    status: &MultiCloudWorkloadStatus,
    failback_waiting: bool,
    budget_until: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    let f = &w.spec.failover;
    let secs = |s: i32| SignedDuration::from_secs(i64::from(s.max(0)));
    let mut times: Vec<Timestamp> = budget_until.into_iter().collect();
    if failback_waiting && let Some(latest) = snapshots.iter().filter_map(|s| s.health_since).max()
    {
        times.push(latest + secs(f.failback.stabilization_window_seconds));
    }
    times.extend(
        snapshots
            .iter()
            .filter(|s| s.health == ClusterHealth::Unhealthy)
            .filter_map(|s| s.health_since)
            .map(|t| t + secs(f.cluster_toleration_seconds)),
    );
    if f.application_toleration_seconds > 0 {
        times.extend(
            status
                .clusters
                .iter()
                .filter_map(|c| c.unavailable_since.as_ref())
                .map(|t| t.0 + secs(f.application_toleration_seconds)),
        );
    }
    let next = times.into_iter().filter(|t| *t > now).min()?;
    let wait = Duration::try_from(next.duration_since(now)).unwrap_or_default();
    Some(wait + Duration::from_millis(200))
}

/// Removes what the workload placed in every member that answers. A member that is not
/// healthy now is cleaned by the orphan collection when it returns; a healthy member that
/// fails keeps the finalizer, and the cleanup is retried.
async fn cleanup(w: &MultiCloudWorkload, ctx: &Context) -> Result<Action, Error> {
    let uid = w.uid().unwrap_or_default();
    let namespace = w.namespace().ok_or(Error::NoNamespace)?;
    let mut kinds: BTreeSet<String> = template_kinds(w);
    kinds.extend(w.status.iter().flat_map(|s| s.kinds.iter().cloned()));
    remove_everywhere(ctx, &namespace, &uid, &kinds).await?;
    ctx.forget_status(w);
    tracing::info!(workload = %format!("{namespace}/{}", w.name_any()), "removed from every member");
    Ok(Action::await_change())
}

/// Removes the objects of the workload with `uid` (of these kinds) from every member that
/// answers; see [`cleanup`].
pub(super) async fn remove_everywhere(
    ctx: &Context,
    namespace: &str,
    uid: &str,
    kinds: &BTreeSet<String>,
) -> Result<(), Error> {
    let members: Vec<(String, kube::Client, bool)> = ctx
        .pool
        .names()
        .into_iter()
        .filter_map(|n| {
            let healthy = ctx
                .pool
                .snapshot(&n)
                .is_some_and(|s| s.health == ClusterHealth::Healthy);
            ctx.pool.connection(&n).map(|(_, c)| (n, c, healthy))
        })
        .collect();
    let results = join_all(members.iter().map(|(cluster, client, healthy)| {
        let target = Target {
            cluster,
            client,
            namespace,
            workload_uid: uid,
            rendered: Vec::new(),
            kinds,
        };
        async move {
            let r = tokio::time::timeout(MEMBER_DEADLINE, apply::sync(&ctx.cache, target)).await;
            (cluster.as_str(), *healthy, r)
        }
    }))
    .await;
    let mut failed = Vec::new();
    for (cluster, healthy, result) in results {
        let error = match result {
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if healthy {
            failed.push(format!("{cluster} ({error})"));
        } else {
            tracing::info!(cluster, %error, "member not healthy; its objects are collected when it returns");
        }
    }
    if !failed.is_empty() {
        return Err(Error::CleanupIncomplete(failed.join(", ")));
    }
    Ok(())
}
