//! A readable workload placed: read the members' state, ask the engine through the policy
//! layer, take the next make-before-break step in every member, write the status if it changed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::context::{Context, Error, MEMBER_DEADLINE, template_kinds};
use super::events::Kind;
use crate::api::{ClusterHealth, MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::placement::migrate::{self, Fleet, Running};
use crate::placement::{ClusterSnapshot, Rebalance};
use crate::policy::intent::{self, Settled};
use crate::policy::moves::MoveKind;
use crate::policy::reasons::{Problem, ProblemReason};
use crate::policy::rebalance::Why;
use crate::policy::request;
use crate::policy::status::{self, Observations};
use crate::sync::apply::{self, Report, SyncError, Target};
use crate::sync::render;

/// How long after a start reconciles wait for every member's first probe.
const STARTUP_GRACE: Duration = Duration::from_secs(10);
/// A dry run writes no status, so nothing it does triggers the next look: it looks again after
/// this long (and on every member change).
const DRY_RUN_RECHECK: Duration = Duration::from_secs(30);
/// When a member could not be synced, try again after this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);

pub(super) async fn place(w: &MultiCloudWorkload, ctx: &Context) -> Result<Action, Error> {
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
    let mut intent = intent::admit(
        w,
        request::decision_for(w, &snapshots, now),
        now,
        intent::paused_by(w, ctx.pause_moves),
    );
    for p in &intent.problems {
        match p.reason {
            ProblemReason::MovesPaused => ctx.metrics.move_held("paused"),
            ProblemReason::MoveBudgetExhausted => ctx.metrics.move_held("budget"),
            _ => {}
        }
    }
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
    // A member whose MemberCluster is gone is the workload's no longer: nothing can be asked of
    // it or removed from it any more (its removal waited for that), so its row leaves the status
    // instead of showing it unreachable for ever.
    if ctx.pool.listed() {
        names.retain(|n| decision.placement.contains_key(n) || ctx.pool.snapshot(n).is_some());
    }
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
    // What this step writes, per member (reported by a dry run instead).
    let mut writes = Vec::new();
    for (cluster, &replicas) in &step.replicas {
        let (Some(snapshot), Some((_, client))) =
            (ctx.pool.snapshot(cluster), ctx.pool.connection(cluster))
        else {
            continue;
        };
        let rendered = if replicas > 0 {
            match render::render(w, &snapshot, replicas, &ctx.hub_id) {
                Ok(objects) => {
                    // Checked as rendered, overrides applied: nothing refused is written, and
                    // what the cluster runs already stays as it is.
                    let refused = ctx.tenancy.check(&namespace, &objects);
                    if !refused.is_empty() {
                        let list: Vec<String> = refused.iter().map(ToString::to_string).collect();
                        problems.push(Problem {
                            reason: ProblemReason::RefusedByPolicy,
                            message: format!("{cluster}: {}", list.join("; ")),
                        });
                        continue;
                    }
                    objects
                }
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
        writes.push(format!("{cluster}={replicas}"));
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
    if ctx.dry_run {
        drop(syncs);
        let mut what = format!("place {}", decision.summary());
        if let Some(m) = &intent.starting {
            what += &format!(
                ", starting a {:?} from {} to {}",
                m.kind,
                m.from.join(","),
                m.to.join(",")
            );
        }
        what += &match writes.is_empty() {
            true => "; nothing to write".to_string(),
            false => format!("; write {}", writes.join(", ")),
        };
        for p in intent.problems.iter().chain(&problems) {
            what += &format!("; {}: {}", p.reason, p.message);
        }
        super::dry_run::report(ctx, w, what);
        return Ok(Action::requeue(DRY_RUN_RECHECK));
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
                // A member that had none runs what was just applied: its row is told as the
                // member will report it (Surging, its failure clock started), not once more a
                // moment later.
                if o.replicas == 0 {
                    o.replicas = step.replicas.get(n).copied().unwrap_or(0);
                }
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
        let started = std::time::Instant::now();
        if w.status
            .as_ref()
            .is_some_and(|before| status::only_counts_differ(before, &status))
            && let Some(wait) = ctx.counts_wait(&uid, started)
        {
            // Only counts changed, and a status was written moments ago: they are written
            // together with the next change, or when the wait is over.
            return Ok(Action::requeue(wait));
        }
        // Events first: they are derived from the change of status, so a process killed
        // between the two would otherwise leave the story without its start (FailoverStarted)
        // for good. This way a kill at worst tells it twice.
        publish_events(w, &previous, &status, intent.why, ctx).await;
        let written_rv = write_status(w, &namespace, &status, ctx).await?;
        ctx.remember_status(w, &status, written_rv);
        ctx.status_written(&uid, started);
        tracing::debug!(%workload, changed = ?status::changed_parts(&previous, &status), "status written");
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
    for (key, why) in &report.unclaimed {
        problems.push(Problem {
            reason: ProblemReason::OwnershipConflict,
            message: format!(
                "{cluster}: {} {}/{} not created: {why} (a workload holds all of its objects in a member or none)",
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
) -> Result<Option<String>, Error> {
    let api: Api<MultiCloudWorkload> = Api::namespaced(ctx.hub.clone(), namespace);
    Ok(crate::hub::status::apply(&api, &w.name_any(), status).await?)
}

/// Writes the Events the change of status tells ([`crate::policy::events::told`]).
async fn publish_events(
    w: &MultiCloudWorkload,
    before: &MultiCloudWorkloadStatus,
    after: &MultiCloudWorkloadStatus,
    why: Why,
    ctx: &Context,
) {
    let reference = w.object_ref(&());
    for e in crate::policy::events::told(before, after, why) {
        let kind = match e.warning {
            true => Kind::Warning,
            false => Kind::Normal,
        };
        ctx.events
            .publish(&reference, kind, &e.reason, e.action, &e.note)
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
        times.push(crate::api::time::after(
            latest,
            secs(f.failback.stabilization_window_seconds),
        ));
    }
    times.extend(
        snapshots
            .iter()
            .filter(|s| s.health == ClusterHealth::Unhealthy)
            .filter_map(|s| s.health_since)
            .map(|t| crate::api::time::after(t, secs(f.cluster_toleration_seconds))),
    );
    if f.application_toleration_seconds > 0 {
        times.extend(
            status
                .clusters
                .iter()
                .filter_map(|c| c.unavailable_since.as_ref())
                .map(|t| crate::api::time::after(t.0, secs(f.application_toleration_seconds))),
        );
    }
    let next = times.into_iter().filter(|t| *t > now).min()?;
    let wait = Duration::try_from(next.duration_since(now)).unwrap_or_default();
    Some(wait + Duration::from_millis(200))
}
