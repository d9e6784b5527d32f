//! What the members run: one watch per member on the Deployments and StatefulSets that Bascule
//! placed (label `app.kubernetes.io/managed-by=bascule`), reduced to a few counters per object.
//!
//! The controller reads replicas, readiness and availability from here instead of asking the
//! members on each reconcile, and is told which workload to look at again when they change.
//! Only the counters are kept, never whole objects, so memory stays small with many workloads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::api::labels;

/// What one member reports for a workload's Deployment/StatefulSet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberReplicas {
    /// `spec.replicas` of the object in the member.
    pub replicas: u32,
    pub ready: u32,
    /// Available replicas; while a new template rolls out, only the updated ones count.
    pub available: u32,
}

/// A MultiCloudWorkload on the hub, as named by the labels of what it placed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// One placed object, reduced.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    workload: WorkloadRef,
    observed: MemberReplicas,
}

/// (kind, namespace, name) of a placed object in one member.
type ObjectId = (&'static str, String, String);

#[derive(Default)]
struct View {
    connection: u64,
    /// Kinds whose first list has completed since the connection was made.
    synced: Vec<&'static str>,
    objects: HashMap<ObjectId, Entry>,
    /// Workload UID → its objects: a reconcile reads its own, not every object of the member
    /// (that was quadratic in the fleet).
    by_workload: HashMap<String, HashSet<ObjectId>>,
}

impl View {
    fn insert(&mut self, key: ObjectId, e: Entry) {
        self.remove(&key);
        self.by_workload
            .entry(e.workload.uid.clone())
            .or_default()
            .insert(key.clone());
        self.objects.insert(key, e);
    }

    fn remove(&mut self, key: &ObjectId) -> Option<Entry> {
        let old = self.objects.remove(key)?;
        if let Some(set) = self.by_workload.get_mut(&old.workload.uid) {
            set.remove(key);
            if set.is_empty() {
                self.by_workload.remove(&old.workload.uid);
            }
        }
        Some(old)
    }

    fn of_workload<'a>(&'a self, uid: &str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.by_workload
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|k| self.objects.get(k))
    }
}

/// The members' workload objects, shared by cheap clones.
#[derive(Clone)]
pub struct Observer {
    views: Arc<RwLock<BTreeMap<String, View>>>,
    changed: mpsc::UnboundedSender<WorkloadRef>,
    /// This hub's id: objects another hub placed are not counted.
    hub_id: Arc<str>,
    /// Told the member's name when one of its watches fails (a member that went down breaks
    /// its watches at once: the first sign of an outage, before any probe).
    on_watch_failure: Arc<dyn Fn(&str) + Send + Sync>,
}

const KINDS: [&str; 2] = ["Deployment", "StatefulSet"];

/// Member API servers end each watch request after this long, and the watch resumes from where
/// it was (no new list). It must stay below the member clients' read timeout
/// ([`crate::members::ConnectionOptions`]), which would otherwise cut every quiet watch.
pub const WATCH_TIMEOUT_SECS: u32 = 8;

impl Observer {
    /// An observer for the hub `hub_id` and the stream of workloads whose objects changed in
    /// some member.
    pub fn new(hub_id: &str) -> (Observer, mpsc::UnboundedReceiver<WorkloadRef>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let observer = Observer {
            views: Arc::default(),
            changed: tx,
            hub_id: hub_id.into(),
            on_watch_failure: Arc::new(|_: &str| {}),
        };
        (observer, rx)
    }

    /// Another sender of the workloads to reconcile (the stream [`Observer::new`] returns).
    pub fn notices(&self) -> mpsc::UnboundedSender<WorkloadRef> {
        self.changed.clone()
    }

    /// Calls `f` with the member's name whenever one of its watches fails.
    pub fn on_watch_failure(self, f: impl Fn(&str) + Send + Sync + 'static) -> Observer {
        Observer {
            on_watch_failure: Arc::new(f),
            ..self
        }
    }

    /// What `cluster` runs of the workload with `uid`: `None` until the member's objects have
    /// been listed once over its current connection; zeros when it runs nothing.
    pub fn running(&self, cluster: &str, uid: &str) -> Option<MemberReplicas> {
        let views = self.read();
        let view = views.get(cluster)?;
        if view.synced.len() < KINDS.len() {
            return None;
        }
        let mut total = MemberReplicas::default();
        // Saturating: a member can report anything, and a sum must not wrap (or panic).
        for e in view.of_workload(uid) {
            total.replicas = total.replicas.saturating_add(e.observed.replicas);
            total.ready = total.ready.saturating_add(e.observed.ready);
            total.available = total.available.saturating_add(e.observed.available);
        }
        Some(total)
    }

    /// Whether `cluster`'s objects have been listed once over its current connection.
    pub fn synced(&self, cluster: &str) -> bool {
        self.read()
            .get(cluster)
            .is_some_and(|v| v.synced.len() == KINDS.len())
    }

    /// Clusters where the workload with `uid` has objects.
    pub fn clusters_of(&self, uid: &str) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, v)| v.by_workload.contains_key(uid))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Workloads (by UID) with objects in `cluster`, as last seen.
    pub fn workloads_in(&self, cluster: &str) -> Vec<WorkloadRef> {
        let mut out: Vec<WorkloadRef> = self
            .read()
            .get(cluster)
            .map(|v| v.objects.values().map(|e| e.workload.clone()).collect())
            .unwrap_or_default();
        out.sort();
        out.dedup();
        out
    }

    /// The connection id the member's watches run on, if any.
    pub fn connection(&self, cluster: &str) -> Option<u64> {
        self.read().get(cluster).map(|v| v.connection)
    }

    /// Starts watching `cluster` over `client` (connection `id`), replacing any earlier watch.
    /// The returned tasks end when aborted; errors are retried with backoff.
    pub fn watch(&self, cluster: &str, id: u64, client: &Client) -> Vec<JoinHandle<()>> {
        self.forget(cluster);
        self.write().insert(
            cluster.to_string(),
            View {
                connection: id,
                ..View::default()
            },
        );
        vec![
            tokio::spawn(self.clone().watch_kind::<Deployment>(
                cluster.to_string(),
                id,
                client.clone(),
                deployment,
            )),
            tokio::spawn(self.clone().watch_kind::<StatefulSet>(
                cluster.to_string(),
                id,
                client.clone(),
                stateful_set,
            )),
        ]
    }

    /// Drops what is known of `cluster` (its connection is gone); its workloads are told.
    pub fn forget(&self, cluster: &str) {
        let gone = self.write().remove(cluster);
        if let Some(view) = gone {
            for e in view.objects.into_values() {
                let _ = self.changed.send(e.workload);
            }
        }
    }

    async fn watch_kind<K>(
        self,
        cluster: String,
        id: u64,
        client: Client,
        reduce: fn(&K) -> MemberReplicas,
    ) where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        let kind = K::kind(&()).into_owned();
        let kind: &'static str = KINDS.iter().find(|k| **k == kind).expect("watched kind");
        let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
        let stream = watcher::watcher(
            Api::<K>::all(client),
            watcher::Config::default()
                .labels(&selector)
                .timeout(WATCH_TIMEOUT_SECS),
        )
        .default_backoff();
        futures::pin_mut!(stream);
        let mut relist: Option<HashMap<ObjectId, Entry>> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => relist = Some(HashMap::new()),
                Ok(Event::InitApply(obj)) => {
                    if let (Some(list), Some((key, entry))) =
                        (relist.as_mut(), entry(kind, &obj, reduce, &self.hub_id))
                    {
                        list.insert(key, entry);
                    }
                }
                Ok(Event::InitDone) => {
                    let list = relist.take().unwrap_or_default();
                    self.replace_kind(&cluster, id, kind, list);
                }
                Ok(Event::Apply(obj)) => {
                    if let Some((key, entry)) = entry(kind, &obj, reduce, &self.hub_id) {
                        self.upsert(&cluster, id, key, Some(entry));
                    }
                }
                Ok(Event::Delete(obj)) => {
                    let key = (kind, obj.namespace().unwrap_or_default(), obj.name_any());
                    self.upsert(&cluster, id, key, None);
                }
                Err(e) => {
                    tracing::debug!(cluster, kind, error = %e, "member watch failed; retrying");
                    (self.on_watch_failure)(&cluster);
                }
            }
        }
    }

    fn replace_kind(
        &self,
        cluster: &str,
        id: u64,
        kind: &'static str,
        list: HashMap<ObjectId, Entry>,
    ) {
        let mut told = Vec::new();
        {
            let mut views = self.write();
            let Some(view) = views.get_mut(cluster).filter(|v| v.connection == id) else {
                return;
            };
            let gone: Vec<ObjectId> = view
                .objects
                .keys()
                .filter(|key| key.0 == kind && !list.contains_key(*key))
                .cloned()
                .collect();
            for key in gone {
                told.extend(view.remove(&key).map(|old| old.workload));
            }
            for (key, e) in list {
                if view.objects.get(&key) != Some(&e) {
                    told.push(e.workload.clone());
                    view.insert(key, e);
                }
            }
            if !view.synced.contains(&kind) {
                view.synced.push(kind);
                // Everything it runs is news the first time both kinds are known.
                if view.synced.len() == KINDS.len() {
                    told.extend(view.objects.values().map(|e| e.workload.clone()));
                }
            }
        }
        told.sort();
        told.dedup();
        for w in told {
            let _ = self.changed.send(w);
        }
    }

    fn upsert(&self, cluster: &str, id: u64, key: ObjectId, entry: Option<Entry>) {
        let told = {
            let mut views = self.write();
            let Some(view) = views.get_mut(cluster).filter(|v| v.connection == id) else {
                return;
            };
            match entry {
                Some(e) if view.objects.get(&key) == Some(&e) => None,
                Some(e) => {
                    let w = e.workload.clone();
                    view.insert(key, e);
                    Some(w)
                }
                None => view.remove(&key).map(|e| e.workload),
            }
        };
        if let Some(w) = told {
            let _ = self.changed.send(w);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, View>> {
        self.views.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, View>> {
        self.views.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The object's workload (from its labels) and counters; `None` unless the labels say this hub
/// placed it (no hub label: a release before hub ids did) for a workload of the namespace it is
/// in — a label copied onto an object elsewhere attributes nothing.
fn entry<K: Resource>(
    kind: &'static str,
    obj: &K,
    reduce: fn(&K) -> MemberReplicas,
    hub_id: &str,
) -> Option<(ObjectId, Entry)> {
    let l = obj.meta().labels.as_ref()?;
    if l.get(labels::HUB).is_some_and(|h| h != hub_id) {
        return None;
    }
    let workload = WorkloadRef {
        namespace: l.get(labels::WORKLOAD_NAMESPACE)?.clone(),
        name: l.get(labels::WORKLOAD_NAME)?.clone(),
        uid: l.get(labels::WORKLOAD_UID)?.clone(),
    };
    if obj.meta().namespace.as_deref() != Some(workload.namespace.as_str()) {
        return None;
    }
    let key = (
        kind,
        obj.meta().namespace.clone().unwrap_or_default(),
        obj.meta().name.clone().unwrap_or_default(),
    );
    Some((
        key,
        Entry {
            workload,
            observed: reduce(obj),
        },
    ))
}

fn count(n: Option<i32>) -> u32 {
    n.unwrap_or(0).max(0) as u32
}

/// A Deployment's counters. Until its controller has seen the current generation, nothing
/// counts as available: the numbers describe an older spec.
fn deployment(d: &Deployment) -> MemberReplicas {
    let replicas = count(d.spec.as_ref().and_then(|s| s.replicas).or(Some(1)));
    let Some(s) = &d.status else {
        return MemberReplicas {
            replicas,
            ..MemberReplicas::default()
        };
    };
    let current = s.observed_generation >= d.metadata.generation;
    let available = count(s.available_replicas).min(count(s.updated_replicas));
    MemberReplicas {
        replicas,
        ready: count(s.ready_replicas),
        available: if current { available } else { 0 },
    }
}

/// A StatefulSet's counters, as for a Deployment.
fn stateful_set(st: &StatefulSet) -> MemberReplicas {
    let replicas = count(st.spec.as_ref().and_then(|s| s.replicas).or(Some(1)));
    let Some(s) = &st.status else {
        return MemberReplicas {
            replicas,
            ..MemberReplicas::default()
        };
    };
    let current = s.observed_generation >= st.metadata.generation;
    let available = count(s.available_replicas).min(count(s.updated_replicas));
    MemberReplicas {
        replicas,
        ready: count(s.ready_replicas),
        available: if current { available } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy(generation: i64, observed: i64, available: i32, updated: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop", "generation": generation,
                         "labels": {labels::WORKLOAD_NAMESPACE: "shop", labels::WORKLOAD_NAME: "web",
                                    labels::WORKLOAD_UID: "u1"}},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": {"observedGeneration": observed, "readyReplicas": 3,
                       "availableReplicas": available, "updatedReplicas": updated}
        }))
        .unwrap()
    }

    /// The per-workload index follows inserts, relabels and removals.
    #[test]
    fn a_view_indexes_objects_by_workload() {
        let entry = |uid: &str, replicas: u32| Entry {
            workload: WorkloadRef {
                namespace: "shop".into(),
                name: format!("name-{uid}"),
                uid: uid.into(),
            },
            observed: MemberReplicas {
                replicas,
                ready: replicas,
                available: replicas,
            },
        };
        let id = |n: &str| ("Deployment", "shop".to_string(), n.to_string());
        let mut v = View::default();
        v.insert(id("a"), entry("w1", 2));
        v.insert(id("b"), entry("w1", 3));
        v.insert(id("c"), entry("w2", 1));
        let sum =
            |v: &View, uid: &str| v.of_workload(uid).map(|e| e.observed.replicas).sum::<u32>();
        assert_eq!((sum(&v, "w1"), sum(&v, "w2")), (5, 1));
        v.insert(id("b"), entry("w2", 3));
        assert_eq!((sum(&v, "w1"), sum(&v, "w2")), (2, 4));
        v.remove(&id("a"));
        assert!(!v.by_workload.contains_key("w1"));
        assert_eq!(v.objects.len(), 2);
    }

    #[test]
    fn quiet_watches_end_before_the_read_timeout_cuts_them() {
        let read = crate::members::ConnectionOptions::default().read_timeout;
        assert!(u64::from(WATCH_TIMEOUT_SECS) + 1 < read.as_secs());
    }

    #[test]
    fn availability_counts_only_the_current_template() {
        assert_eq!(
            deployment(&deploy(2, 2, 3, 3)),
            MemberReplicas {
                replicas: 3,
                ready: 3,
                available: 3
            }
        );
        assert_eq!(deployment(&deploy(2, 2, 3, 1)).available, 1, "rolling out");
        assert_eq!(deployment(&deploy(3, 2, 3, 3)).available, 0, "not yet seen");
    }

    #[test]
    fn only_this_hubs_objects_in_their_workloads_namespace_count() {
        let d = deploy(1, 1, 3, 3);
        assert!(
            entry("Deployment", &d, deployment, "hub-a").is_some(),
            "no hub label: ours"
        );
        let mut labelled = d.clone();
        labelled
            .labels_mut()
            .insert(labels::HUB.into(), "hub-a".into());
        assert!(entry("Deployment", &labelled, deployment, "hub-a").is_some());
        let mut other_hub = d.clone();
        other_hub
            .labels_mut()
            .insert(labels::HUB.into(), "hub-b".into());
        assert!(entry("Deployment", &other_hub, deployment, "hub-a").is_none());
        let mut elsewhere = d.clone();
        elsewhere.metadata.namespace = Some("other-team".into());
        assert!(
            entry("Deployment", &elsewhere, deployment, "hub-a").is_none(),
            "labels naming shop/web on an object in other-team"
        );
    }

    #[tokio::test]
    async fn sums_saturate() {
        let (obs, _rx) = Observer::new("hub-a");
        let mut view = View {
            connection: 1,
            synced: KINDS.to_vec(),
            ..View::default()
        };
        for i in 0..3 {
            let (_, mut e) = entry("Deployment", &deploy(1, 1, 3, 3), deployment, "hub-a").unwrap();
            e.observed.available = u32::MAX;
            view.insert(("Deployment", "shop".into(), format!("web-{i}")), e);
        }
        obs.write().insert("eks".into(), view);
        assert_eq!(obs.running("eks", "u1").unwrap().available, u32::MAX);
    }

    #[tokio::test]
    async fn changes_are_told_once_per_workload_and_running_waits_for_both_kinds() {
        let (obs, mut rx) = Observer::new("hub-a");
        obs.write().insert(
            "eks".into(),
            View {
                connection: 7,
                ..View::default()
            },
        );
        let d = deploy(1, 1, 3, 3);
        let (key, e) = entry("Deployment", &d, deployment, "hub-a").unwrap();
        obs.replace_kind("eks", 7, "Deployment", [(key.clone(), e.clone())].into());
        assert_eq!(rx.try_recv().unwrap().uid, "u1");
        assert_eq!(
            obs.running("eks", "u1"),
            None,
            "StatefulSets not listed yet"
        );
        obs.replace_kind("eks", 7, "StatefulSet", HashMap::new());
        assert_eq!(rx.try_recv().unwrap().uid, "u1", "first full view");
        assert_eq!(obs.running("eks", "u1").unwrap().available, 3);
        assert_eq!(
            obs.running("eks", "other").unwrap(),
            MemberReplicas::default()
        );
        // The same object again: no news. A stale connection: ignored.
        obs.upsert("eks", 7, key.clone(), Some(e.clone()));
        obs.upsert("eks", 6, key.clone(), None);
        assert!(rx.try_recv().is_err());
        obs.upsert("eks", 7, key, None);
        assert_eq!(rx.try_recv().unwrap().name, "web");
        assert_eq!(obs.running("eks", "u1").unwrap(), MemberReplicas::default());
        assert!(obs.clusters_of("u1").is_empty());
    }
}
