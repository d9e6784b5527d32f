//! `bascule run --dry-run`: the operator decides as always and says what it would do, writing
//! nothing — not to the members (no apply, no namespace, no cleanup, no orphan collection), not
//! to the hub (no status, no finalizer, no Event, no Lease). Each workload's report is logged
//! when it changes, so that a dry run beside the live operator shows where the two would differ.

use kube::{Resource, ResourceExt};

use super::context::Context;

/// Logs `what` for `w` unless it is what was reported last for it.
pub fn report<K: Resource>(ctx: &Context, w: &K, what: String) {
    let key = w.uid().unwrap_or_else(|| w.name_any());
    let mut reported = ctx.reported.lock().unwrap_or_else(|p| p.into_inner());
    if reported.get(&key) == Some(&what) {
        return;
    }
    let workload = format!("{}/{}", w.namespace().unwrap_or_default(), w.name_any());
    tracing::info!(%workload, dry_run = true, "would: {what}");
    reported.insert(key, what);
}
