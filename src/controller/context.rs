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
    /// The status this process last wrote per workload (by uid), until the store shows it.
    pub written: std::sync::Mutex<std::collections::HashMap<String, OwnWrite>>,
    /// When this process last wrote each workload's status (by uid): a change of counts alone
    /// waits until [`COUNTS_COALESCE`] has passed since (see [`Context::counts_wait`]).
    pub status_written_at: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
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
    /// (once it has, or shows a version of someone else's, the entry is dropped: the store is
    /// the truth again).
    pub(super) fn with_own_status(&self, w: &MultiCloudWorkload) -> Option<MultiCloudWorkload> {
        let uid = w.metadata.uid.as_deref()?;
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let own = written.get(uid)?;
        if !own.is_newer_than(w.metadata.resource_version.as_deref()) {
            written.remove(uid);
            return None;
        }
        let mut fresh = w.clone();
        fresh.status = Some(own.status.clone());
        Some(fresh)
    }

    /// Records that `status` was written to `w` (as the store showed it), making version
    /// `written_rv`.
    pub(super) fn remember_status(
        &self,
        w: &MultiCloudWorkload,
        status: &MultiCloudWorkloadStatus,
        written_rv: Option<String>,
    ) {
        let (Some(uid), Some(rv), Some(written_rv)) =
            (&w.metadata.uid, &w.metadata.resource_version, written_rv)
        else {
            return;
        };
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let own = OwnWrite::after(written.remove(uid), rv, written_rv, status.clone());
        written.insert(uid.clone(), own);
    }

    pub(super) fn forget_status(&self, w: &MultiCloudWorkload) {
        if let Some(uid) = &w.metadata.uid {
            self.written
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
            self.status_written_at
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid);
        }
    }

    /// How long a status that differs only in its counts should wait before it is written:
    /// `None` when [`COUNTS_COALESCE`] has passed since this workload's last status write.
    pub(super) fn counts_wait(&self, uid: &str, now: std::time::Instant) -> Option<Duration> {
        let at = self
            .status_written_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .copied()?;
        COUNTS_COALESCE
            .checked_sub(now.duration_since(at))
            .filter(|d| !d.is_zero())
    }

    pub(super) fn status_written(&self, uid: &str, now: std::time::Instant) {
        self.status_written_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid.to_string(), now);
    }
}

/// A status this process wrote that the store may not show yet. Until the watch delivers the
/// write, the store shows an older version with an older status; deciding from it again would
/// tell the same move twice, and write the same status again.
pub struct OwnWrite {
    /// The versions known to predate the write: the one it was computed from, and those of this
    /// process' earlier writes the store had not shown either.
    older: Vec<String>,
    /// The version the write made.
    rv: String,
    status: MultiCloudWorkloadStatus,
}

impl OwnWrite {
    /// The write of `status`, computed from version `from`, that made version `rv`; `last` is
    /// this process' previous write the store had not shown yet (then the versions older than
    /// that one are older than this one too).
    fn after(
        last: Option<OwnWrite>,
        from: &str,
        rv: String,
        status: MultiCloudWorkloadStatus,
    ) -> OwnWrite {
        let mut older = last.map_or_else(Vec::new, |l| {
            let mut older = l.older;
            older.push(l.rv);
            older
        });
        older.push(from.to_string());
        OwnWrite { older, rv, status }
    }

    /// Whether the store, showing version `rv`, has not caught up with this write yet.
    fn is_newer_than(&self, rv: Option<&str>) -> bool {
        rv.is_some_and(|rv| self.older.iter().any(|o| o == rv))
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

/// Replica counts rising during a placement or a move are written at most this often per
/// workload; every other change of status at once. In a region's outage each of a thousand
/// workloads would otherwise write a status per step of its pods (docs/benchmarks.md, "What the
/// hub is asked").
pub const COUNTS_COALESCE: Duration = Duration::from_secs(5);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(placement: &str) -> MultiCloudWorkloadStatus {
        MultiCloudWorkloadStatus {
            placement: Some(placement.into()),
            ..MultiCloudWorkloadStatus::default()
        }
    }

    /// Two writes before the store shows either: while it shows version 1 (the first write) or
    /// 0, the second write's status is the truth; once it shows 2, or anything else, the store is.
    #[test]
    fn own_writes_stand_until_the_store_shows_them() {
        let first = OwnWrite::after(None, "0", "1".into(), status("a=1"));
        assert!(first.is_newer_than(Some("0")));
        assert!(!first.is_newer_than(Some("1")), "caught up");
        let second = OwnWrite::after(Some(first), "0", "2".into(), status("a=2"));
        assert!(second.is_newer_than(Some("0")));
        assert!(
            second.is_newer_than(Some("1")),
            "the store shows the first write, not the second"
        );
        assert!(!second.is_newer_than(Some("2")));
        assert!(!second.is_newer_than(Some("7")), "someone else wrote");
        assert!(!second.is_newer_than(None));
    }
}
