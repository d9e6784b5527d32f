//! A deleted workload's objects removed from every member, before its finalizer goes.

use std::collections::BTreeSet;

use futures::future::join_all;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::{Context, Error, MEMBER_DEADLINE, template_kinds};
use crate::api::{ClusterHealth, MultiCloudWorkload};
use crate::sync::apply::{self, Target};

/// Removes what the workload placed in every member that answers. A member that is not
/// healthy now is cleaned by the orphan collection when it returns; a healthy member that
/// fails keeps the finalizer, and the cleanup is retried.
pub(super) async fn cleanup(w: &MultiCloudWorkload, ctx: &Context) -> Result<Action, Error> {
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
