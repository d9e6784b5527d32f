//! The pool: one entry per known MemberCluster, with what the placement engine needs
//! ([`ClusterSnapshot`]) and the member's client, and a broadcast of what changed.
//!
//! Written by [`super::run`] (one task per member), read by the workload controller. Every read
//! is a copy taken under a short lock; nothing here does I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::sync::{Notify, broadcast};

use crate::api::ClusterHealth;
use crate::placement::ClusterSnapshot;

/// Something that matters for placement changed for `cluster`: its health, its spec (taints,
/// labels, provider, region), its connection (connected, disconnected, replaced), or it was
/// deleted. Read [`MemberPool::snapshots`] for the new state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberEvent {
    Changed { cluster: String },
}

/// Probe counters of one member, for metrics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeStats {
    /// Probes run since the member's task started (or its connection was last replaced).
    pub probes: u64,
    /// When the latest probe finished.
    pub last_probe_at: Option<Timestamp>,
    /// How long the latest probe took, failed or not.
    pub last_duration: Option<Duration>,
}

/// Connections to the member clusters and their health, shared by cheap clones.
#[derive(Clone)]
pub struct MemberPool {
    inner: Arc<Inner>,
}

struct Inner {
    members: RwLock<BTreeMap<String, Member>>,
    events: broadcast::Sender<MemberEvent>,
    connections: std::sync::atomic::AtomicU64,
    listed: std::sync::atomic::AtomicBool,
    /// Per member: asks its task to probe now (see [`MemberPool::probe_soon`]).
    probe_requests: std::sync::Mutex<BTreeMap<String, Arc<Notify>>>,
}

#[derive(Clone)]
struct Member {
    /// The task that may write this entry.
    owner: u64,
    snapshot: ClusterSnapshot,
    client: Option<kube::Client>,
    /// Changes whenever `client` is replaced, so that users of the client can tell.
    connection: u64,
    stats: ProbeStats,
}

impl Member {
    fn new(owner: u64, snapshot: ClusterSnapshot) -> Member {
        Member {
            owner,
            snapshot,
            client: None,
            connection: 0,
            stats: ProbeStats::default(),
        }
    }
}

/// Events buffered per subscriber; one that falls further behind gets `Lagged` and should treat
/// every cluster as changed.
const EVENT_BUFFER: usize = 1024;

impl Default for MemberPool {
    fn default() -> Self {
        MemberPool::new()
    }
}

impl std::fmt::Debug for MemberPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberPool")
            .field("members", &self.names())
            .finish()
    }
}

impl MemberPool {
    pub fn new() -> Self {
        MemberPool {
            inner: Arc::new(Inner {
                members: RwLock::new(BTreeMap::new()),
                events: broadcast::channel(EVENT_BUFFER).0,
                connections: std::sync::atomic::AtomicU64::new(0),
                listed: std::sync::atomic::AtomicBool::new(false),
                probe_requests: std::sync::Mutex::default(),
            }),
        }
    }

    /// One snapshot per known MemberCluster, by name: health after hysteresis (`Unknown` until
    /// probed by this process), provider and region (spec, else detected), labels, taints.
    pub fn snapshots(&self) -> Vec<ClusterSnapshot> {
        self.read().values().map(|m| m.snapshot.clone()).collect()
    }

    /// The snapshot of one member.
    pub fn snapshot(&self, name: &str) -> Option<ClusterSnapshot> {
        self.read().get(name).map(|m| m.snapshot.clone())
    }

    /// The member's client, if its connection could be built. Its requests have the connect and
    /// read timeouts of [`super::ConnectionOptions`].
    pub fn client(&self, name: &str) -> Option<kube::Client> {
        self.read().get(name).and_then(|m| m.client.clone())
    }

    /// The member's client with an id that changes whenever the connection is replaced (a
    /// watch made with an older client should be restarted).
    pub fn connection(&self, name: &str) -> Option<(u64, kube::Client)> {
        self.read()
            .get(name)
            .and_then(|m| m.client.clone().map(|c| (m.connection, c)))
    }

    /// Probe counters of one member.
    pub fn probe_stats(&self, name: &str) -> Option<ProbeStats> {
        self.read().get(name).map(|m| m.stats.clone())
    }

    /// Names of the known members.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether every MemberCluster on the hub has been seen once: before that, a member
    /// missing from the pool may simply not be known yet.
    pub fn listed(&self) -> bool {
        self.inner.listed.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn mark_listed(&self) {
        self.inner
            .listed
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Asks the member's task to probe it now rather than at its period: something saw the
    /// member fail (its watch broke). The task ignores it when the member is known Unhealthy or
    /// was probed a moment ago.
    pub fn probe_soon(&self, name: &str) {
        self.probe_requests(name).notify_one();
    }

    /// What [`MemberPool::probe_soon`] notifies, for the member's task.
    pub(crate) fn probe_requests(&self, name: &str) -> Arc<Notify> {
        self.inner
            .probe_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Events from now on. A receiver that lags behind gets `RecvError::Lagged`: treat it as
    /// "every cluster changed".
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.inner.events.subscribe()
    }

    /// Makes `owner` (one task of [`super::run`]) the only writer of the member's entry,
    /// creating it with `snapshot` if new. Writes from an earlier owner (a task being stopped
    /// because its MemberCluster was deleted or re-created) are ignored from now on.
    pub(crate) fn claim(&self, owner: u64, snapshot: ClusterSnapshot) {
        let name = snapshot.name.clone();
        let changed = {
            let mut members = self.write();
            match members.get_mut(&name) {
                Some(m) => {
                    let changed = m.snapshot != snapshot || m.client.is_some();
                    *m = Member::new(owner, snapshot);
                    changed
                }
                None => {
                    members.insert(name.clone(), Member::new(owner, snapshot));
                    true
                }
            }
        };
        if changed {
            self.emit(name);
        }
    }

    /// Sets a member's snapshot; an event if it changed.
    pub(crate) fn set_snapshot(&self, owner: u64, snapshot: ClusterSnapshot) {
        let name = snapshot.name.clone();
        let changed = match self.write().get_mut(&name) {
            Some(m) if m.owner == owner && m.snapshot != snapshot => {
                m.snapshot = snapshot;
                true
            }
            _ => false,
        };
        if changed {
            self.emit(name);
        }
    }

    /// Sets (or clears) a member's client; an event unless there was none before and is none
    /// now (a replaced connection may reach a different cluster).
    pub(crate) fn set_client(&self, owner: u64, name: &str, client: Option<kube::Client>) {
        let changed = match self.write().get_mut(name) {
            Some(m) if m.owner == owner => {
                let changed = client.is_some() || m.client.is_some();
                m.client = client;
                m.connection = 1 + self
                    .inner
                    .connections
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                m.stats = ProbeStats::default();
                changed
            }
            _ => false,
        };
        if changed {
            self.emit(name.to_string());
        }
    }

    /// Counts a probe (no event: probes that change nothing are not news).
    pub(crate) fn record_probe(&self, owner: u64, name: &str, at: Timestamp, took: Duration) {
        if let Some(m) = self.write().get_mut(name).filter(|m| m.owner == owner) {
            m.stats.probes += 1;
            m.stats.last_probe_at = Some(at);
            m.stats.last_duration = Some(took);
        }
    }

    /// Forgets a member (its MemberCluster was deleted); an event if it was known.
    pub(crate) fn remove(&self, name: &str) {
        if self.write().remove(name).is_some() {
            self.emit(name.to_string());
        }
    }

    /// Marks every member Unknown and drops its client: what the pool says once nobody probes
    /// the members any more ([`super::run`] ended). Unknown holds placements as they are.
    pub(crate) fn forget_health(&self) {
        let changed: Vec<String> = {
            let mut members = self.write();
            members
                .values_mut()
                .filter_map(|m| {
                    let before = (m.snapshot.health, m.client.is_some());
                    m.owner = 0;
                    m.snapshot.health = ClusterHealth::Unknown;
                    m.snapshot.health_since = None;
                    m.client = None;
                    (before != (ClusterHealth::Unknown, false)).then(|| m.snapshot.name.clone())
                })
                .collect()
        };
        changed.into_iter().for_each(|n| self.emit(n));
    }

    fn emit(&self, cluster: String) {
        // No subscriber is not an error: the controller may not have started yet.
        let _ = self.inner.events.send(MemberEvent::Changed { cluster });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Member>> {
        self.inner.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Member>> {
        self.inner
            .members
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Provider;

    fn changed(rx: &mut broadcast::Receiver<MemberEvent>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(MemberEvent::Changed { cluster }) = rx.try_recv() {
            out.push(cluster);
        }
        out
    }

    #[test]
    fn events_only_when_a_snapshot_changes_and_on_removal() {
        let pool = MemberPool::new();
        let mut rx = pool.subscribe();
        let mut s = ClusterSnapshot::healthy("eks", Provider::Aws, "us-east-1");
        pool.claim(1, s.clone());
        pool.set_snapshot(1, s.clone());
        assert_eq!(changed(&mut rx), vec!["eks"]);
        s.health = ClusterHealth::Unhealthy;
        pool.set_snapshot(1, s.clone());
        assert_eq!(changed(&mut rx), vec!["eks"]);
        assert_eq!(pool.snapshots(), vec![s.clone()]);
        pool.record_probe(1, "eks", Timestamp::UNIX_EPOCH, Duration::from_millis(5));
        assert_eq!(pool.probe_stats("eks").unwrap().probes, 1);
        assert!(changed(&mut rx).is_empty());
        pool.set_client(1, "eks", None);
        assert!(changed(&mut rx).is_empty(), "no client before, none after");
        pool.remove("eks");
        pool.remove("eks");
        assert_eq!(changed(&mut rx), vec!["eks"]);
        assert!(pool.snapshots().is_empty());
        assert!(pool.client("eks").is_none());
    }

    #[test]
    fn only_the_owner_writes_and_a_removed_member_stays_removed() {
        let pool = MemberPool::new();
        let s = ClusterSnapshot::healthy("eks", Provider::Aws, "us-east-1");
        pool.claim(1, s.clone());
        // Re-created: task 2 owns it now; task 1, still winding down, is ignored.
        pool.claim(2, s.clone());
        let mut stale = s.clone();
        stale.health = ClusterHealth::Unhealthy;
        pool.set_snapshot(1, stale.clone());
        pool.record_probe(1, "eks", Timestamp::UNIX_EPOCH, Duration::ZERO);
        assert_eq!(pool.snapshots(), vec![s.clone()]);
        assert_eq!(pool.probe_stats("eks").unwrap().probes, 0);
        // Nobody probes any more: Unknown, no client, and late writes are ignored.
        let mut rx = pool.subscribe();
        pool.forget_health();
        assert_eq!(changed(&mut rx), vec!["eks"]);
        assert_eq!(pool.snapshot("eks").unwrap().health, ClusterHealth::Unknown);
        pool.set_snapshot(2, s.clone());
        assert_eq!(pool.snapshot("eks").unwrap().health, ClusterHealth::Unknown);
        // Deleted: a late write from its task does not bring it back.
        pool.remove("eks");
        pool.set_snapshot(2, stale);
        assert!(pool.snapshots().is_empty());
    }
}
