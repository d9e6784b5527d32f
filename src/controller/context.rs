//! What every reconcile shares, and why one fails.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::core::DeserializeGuard;

use super::events::Events;
use super::retry::Backoff;
use crate::api::{MultiCloudWorkload, MultiCloudWorkloadStatus};
use crate::members::MemberPool;
use crate::sync::apply::{self, MemberCache};
use crate::sync::observe::Observer;

/// Removes everything a workload placed before it goes away.
pub const FINALIZER: &str = "bascule.dev/cleanup";

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
    /// What workloads may place in members.
    pub tenancy: crate::policy::tenancy::Tenancy,
    /// Every workload's moves are paused (an incident control): placements in force are kept.
    pub pause_moves: bool,
    /// Decide and report, write nothing (`--dry-run`).
    pub dry_run: bool,
    /// This hub's id (`bascule.dev/hub` on everything it places).
    pub hub_id: String,
    /// In a dry run, what was last reported per workload (by uid): reported again only when it
    /// changes.
    pub reported: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Context {
    /// `w` with the status this process wrote last, when the store has not caught up with it
    /// (once it has, the entry is dropped: the store is the truth again).
    pub(super) fn with_own_status(&self, w: &MultiCloudWorkload) -> Option<MultiCloudWorkload> {
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

    pub(super) fn remember_status(
        &self,
        w: &MultiCloudWorkload,
        status: &MultiCloudWorkloadStatus,
    ) {
        if let (Some(uid), Some(rv)) = (&w.metadata.uid, &w.metadata.resource_version) {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(uid.clone(), (rv.clone(), status.clone()));
        }
    }

    pub(super) fn forget_status(&self, w: &MultiCloudWorkload) {
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
    #[error("hub: write status: {0}")]
    StatusWrite(#[from] crate::hub::status::WriteError),
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
            Error::StatusWrite(e) => e.category(),
            Error::CleanupIncomplete(_) => "CleanupIncomplete",
            Error::Finalizer(_) => "Finalizer",
            Error::Panicked(_) => "Panic",
        }
    }
}

/// How the hub's MultiCloudWorkloads are read: an object the typed client cannot decode arrives
/// as an error of its own instead of failing the list of all the others.
pub type Guarded = DeserializeGuard<MultiCloudWorkload>;

/// How long one member may take to sync one workload; a frozen member must not hold the others.
pub const MEMBER_DEADLINE: Duration = Duration::from_secs(15);
/// `apiVersion/kind` of every manifest in the workload's template.
pub fn template_kinds(w: &MultiCloudWorkload) -> BTreeSet<String> {
    w.spec
        .template
        .manifests
        .iter()
        .map(|m| apply::type_key(&m.0))
        .collect()
}
