//! One reconcile of a MultiCloudWorkload, the controller's entry point: a readable workload is
//! placed (`place`) or, once deleted, cleaned up (`cleanup`) behind the finalizer; an unreadable
//! one is reported (`invalid`). Panics are caught here, failures retried with backoff.
//!
//! Level-triggered and idempotent: everything it needs is read again each time (the placement in
//! force is the last decision, kept in `status.clusters`), so a restart at any point converges.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{self, finalizer};

use super::cleanup::cleanup;
pub use super::context::{Context, Error, FINALIZER, Guarded};
use super::place::place;
use crate::api::MultiCloudWorkload;

/// When a reconcile panicked, try that workload again after this long.
const PANIC_RETRY: Duration = Duration::from_secs(300);

/// The controller's entry point for one workload. A panic is caught here: it fails this
/// workload's reconcile only, never the controller that serves every other one.
pub async fn reconcile(w: Arc<Guarded>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let work = async {
        match &w.0 {
            Ok(workload) => reconcile_inner(Arc::new(workload.clone()), &ctx).await,
            Err(unreadable) if ctx.dry_run => {
                super::dry_run::report(&ctx, w.as_ref(), format!("cannot read it: {unreadable}"));
                Ok(Action::await_change())
            }
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
    if ctx.dry_run {
        // No finalizer is added or removed: the dry run writes nothing to the hub.
        if w.metadata.deletion_timestamp.is_some() {
            super::dry_run::report(
                ctx,
                w.as_ref(),
                "remove what it placed from the members".into(),
            );
            return Ok(Action::await_change());
        }
        return place(&w, ctx).await;
    }
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
