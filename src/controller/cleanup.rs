//! A deleted workload's objects removed from every member, before its finalizer goes.

use std::collections::BTreeSet;

use futures::future::join_all;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::context::{Context, Error, MEMBER_DEADLINE, template_kinds};
use super::events::Kind;
use crate::api::{ClusterHealth, MultiCloudWorkload};
use crate::sync::apply::{self, Target};

/// A kind a member refuses for good to list or delete during a removal.
#[derive(Debug)]
pub struct Abandoned {
    pub cluster: String,
    pub kind: String,
    pub why: String,
}

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {} ({})", self.kind, self.cluster, self.why)
    }
}

/// The Event reason when a deletion leaves objects a member refuses to remove.
pub const ABANDONED: &str = "ObjectsAbandoned";

/// Removes what the workload placed in every member that answers. A member that is not
/// healthy now is cleaned by the orphan collection when it returns; a healthy member that
/// fails keeps the finalizer, and the cleanup is retried. Kinds a member refuses for good (not
/// served, cluster-scoped, forbidden) cannot be removed by any retry: they are left, named in a
/// Warning Event (`ObjectsAbandoned`), and the deletion completes.
pub(super) async fn cleanup(w: &MultiCloudWorkload, ctx: &Context) -> Result<Action, Error> {
    let uid = w.uid().unwrap_or_default();
    let namespace = w.namespace().ok_or(Error::NoNamespace)?;
    let mut kinds: BTreeSet<String> = template_kinds(w);
    kinds.extend(w.status.iter().flat_map(|s| s.kinds.iter().cloned()));
    let abandoned = remove_everywhere(ctx, &namespace, &uid, &kinds).await?;
    if !abandoned.is_empty() {
        // The kinds first: the details (one per member and kind) may be cut to the note's limit.
        let kinds: BTreeSet<&str> = abandoned.iter().map(|a| a.kind.as_str()).collect();
        let details: Vec<String> = abandoned.iter().map(Abandoned::to_string).collect();
        let note = format!(
            "deleted, but members refuse for good to remove {}; whatever exists of these kinds is left in place: {}",
            kinds.into_iter().collect::<Vec<_>>().join(", "),
            details.join("; ")
        );
        tracing::warn!(workload = %format!("{namespace}/{}", w.name_any()), "{note}");
        ctx.events
            .publish(
                &w.object_ref(&()),
                Kind::Warning,
                ABANDONED,
                "Cleanup",
                &note,
            )
            .await;
    }
    ctx.forget_status(w);
    tracing::info!(workload = %format!("{namespace}/{}", w.name_any()), "removed from every member");
    Ok(Action::await_change())
}

/// Removes the objects of the workload with `uid` (of these kinds) from every member that
/// answers; see [`cleanup`]. Returns what was abandoned.
pub(super) async fn remove_everywhere(
    ctx: &Context,
    namespace: &str,
    uid: &str,
    kinds: &BTreeSet<String>,
) -> Result<Vec<Abandoned>, Error> {
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
    let mut abandoned = Vec::new();
    for (cluster, healthy, result) in results {
        let error = match result {
            Ok(Ok(report)) => {
                abandoned.extend(report.abandoned.into_iter().map(|(kind, why)| Abandoned {
                    cluster: cluster.to_string(),
                    kind,
                    why,
                }));
                continue;
            }
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
    Ok(abandoned)
}
