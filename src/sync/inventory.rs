//! What this hub placed in each member, kind by kind: one metadata-only watch per member and
//! kind on the objects labelled `app.kubernetes.io/managed-by=bascule`, reduced to what a sync
//! needs (name, UID, ownership labels, rendered hash).
//!
//! A sync reads a workload's objects from here instead of listing the member (one list per kind
//! and workload, before this), and records what it wrote at once, so that the next sync does not
//! depend on when the watch event arrives. A kind whose watch has not listed yet (just started,
//! or refused by the member's RBAC) is not known here: the sync lists it as before.
//!
//! The same watches notice **drift**: an object deleted by someone else, or changed by someone
//! else since this hub applied it (its `metadata.generation` moved — a spec change — or, for
//! kinds without one, its `resourceVersion`), while its rendered hash still says it is as
//! applied. Its workload is told at once ([`Inventory::on_drift`]) and its next sync applies
//! the object again. No request is made for this: it is what the watch delivers anyway.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::apply::RENDERED_HASH;
use super::observe::{WATCH_TIMEOUT_SECS, WorkloadRef};
use crate::api::labels;

/// One object Bascule placed, as a sync needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub name: String,
    pub uid: Option<String>,
    /// The ownership labels (workload uid, hub): everything else is dropped.
    pub labels: BTreeMap<String, String>,
    /// `bascule.dev/rendered-hash`: what it was last applied with.
    pub hash: Option<String>,
    /// `metadata.generation`, for kinds that keep one (it moves on every spec change).
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
    /// Changed by someone else since this hub applied it: applied again although its hash
    /// matches.
    pub drifted: bool,
}

impl Placed {
    /// What a sync needs of an object's metadata, from a watch event or a list.
    pub fn of(meta: &kube::core::ObjectMeta) -> Placed {
        let labels = meta
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| {
                [
                    labels::WORKLOAD_UID,
                    labels::WORKLOAD_NAME,
                    labels::WORKLOAD_NAMESPACE,
                    labels::HUB,
                    labels::MANAGED_BY,
                ]
                .contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Placed {
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            labels,
            hash: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(RENDERED_HASH).cloned()),
            generation: meta.generation,
            resource_version: meta.resource_version.clone(),
            drifted: false,
        }
    }

    fn workload(&self) -> Option<&str> {
        self.labels.get(labels::WORKLOAD_UID).map(String::as_str)
    }

    /// The workload it belongs to, as its labels name it.
    fn workload_ref(&self) -> Option<WorkloadRef> {
        Some(WorkloadRef {
            namespace: self.labels.get(labels::WORKLOAD_NAMESPACE)?.clone(),
            name: self.labels.get(labels::WORKLOAD_NAME)?.clone(),
            uid: self.workload()?.to_string(),
        })
    }

    /// Whether this version of the same object, applied with the same content, was changed since
    /// `applied`: its spec (generation), or anything for kinds without a generation.
    fn changed_since(&self, applied: &Placed) -> bool {
        match applied.generation {
            Some(g) => self.generation != Some(g),
            None => self.resource_version != applied.resource_version,
        }
    }
}

/// (namespace, name)
type Key = (String, String);

#[derive(Default)]
struct Kind {
    /// The watch has listed once: what is not here is not there (as far as labels tell).
    listed: bool,
    objects: HashMap<Key, Placed>,
    /// Workload UID → its objects' keys.
    by_workload: HashMap<String, HashSet<Key>>,
    /// Each object as this hub last applied it (or first saw it): a later version is compared
    /// with it to tell drift.
    applied: HashMap<Key, Placed>,
    /// Objects someone else changed, with the [`Inventory::mark`] of when it was seen.
    drifted: HashMap<Key, u64>,
    /// Workloads that lost an object to someone else's delete, with the mark of when.
    lost: HashMap<String, u64>,
}

/// What a watch event tells about drift.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// Nothing to repair.
    AsApplied,
    /// Someone else changed or deleted this workload's object.
    Drift(WorkloadRef),
}

impl Kind {
    /// A version of an object delivered by the watch (not this hub's own write), at `mark`.
    fn seen(&mut self, key: Key, placed: Placed, mark: u64) -> Seen {
        let drift = match self.applied.get(&key) {
            Some(a) if a.uid == placed.uid && a.hash == placed.hash => placed
                .changed_since(a)
                .then(|| placed.workload_ref())
                .flatten(),
            // First seen (listed after a start), re-created, or this hub's own newer apply
            // (another rendered hash): the version to compare the next ones with.
            _ => {
                self.applied.insert(key.clone(), placed.clone());
                self.drifted.remove(&key);
                None
            }
        };
        if drift.is_some() {
            self.drifted.insert(key.clone(), mark);
        }
        self.insert(key, placed);
        drift.map_or(Seen::AsApplied, Seen::Drift)
    }

    /// An object this hub just wrote (its answer): as applied, whatever was drifted before.
    fn wrote(&mut self, key: Key, placed: Placed) {
        self.applied.insert(key.clone(), placed.clone());
        self.drifted.remove(&key);
        self.insert(key, placed);
    }

    /// An object deleted, by this hub (`by_us`) or by someone else (seen at `mark`).
    fn gone(&mut self, key: &Key, by_us: bool, mark: u64) -> Seen {
        self.applied.remove(key);
        self.drifted.remove(key);
        let Some(old) = self.objects.get(key).cloned() else {
            return Seen::AsApplied;
        };
        self.remove(key);
        match old.workload_ref().filter(|_| !by_us) {
            Some(w) => {
                self.lost.insert(w.uid.clone(), mark);
                Seen::Drift(w)
            }
            None => Seen::AsApplied,
        }
    }

    /// Whether the workload has an object here that someone else changed or deleted.
    fn drifted(&self, workload: &str) -> bool {
        self.lost.contains_key(workload)
            || self
                .by_workload
                .get(workload)
                .is_some_and(|keys| keys.iter().any(|k| self.drifted.contains_key(k)))
    }

    /// The workload was synced from what was known at `mark`: drift seen before then is
    /// repaired (what was seen since is not).
    fn settled(&mut self, workload: &str, mark: u64) {
        if self.lost.get(workload).is_some_and(|m| *m < mark) {
            self.lost.remove(workload);
        }
        for k in self.by_workload.get(workload).into_iter().flatten() {
            if self.drifted.get(k).is_some_and(|m| *m < mark) {
                self.drifted.remove(k);
            }
        }
    }

    fn insert(&mut self, key: Key, placed: Placed) {
        self.remove(&key);
        if let Some(w) = placed.workload() {
            self.by_workload
                .entry(w.to_string())
                .or_default()
                .insert(key.clone());
        }
        self.objects.insert(key, placed);
    }

    fn remove(&mut self, key: &Key) {
        if let Some(old) = self.objects.remove(key)
            && let Some(w) = old.workload()
            && let Some(set) = self.by_workload.get_mut(w)
        {
            set.remove(key);
            if set.is_empty() {
                self.by_workload.remove(w);
            }
        }
    }
}

/// The watch task of one member's kind, aborted when dropped.
struct Watch(JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Kinds = HashMap<(String, String), (Arc<Mutex<Kind>>, Watch)>;

/// Told the workload whose object drifted.
pub type DriftNotice = mpsc::UnboundedSender<WorkloadRef>;

/// Every member's placed objects, shared by cheap clones.
#[derive(Clone, Default)]
pub struct Inventory {
    kinds: Arc<Mutex<Kinds>>,
    drift: Option<DriftNotice>,
    /// Orders drift seen by the watches against the syncs that repair it.
    clock: Arc<AtomicU64>,
}

impl Inventory {
    /// Sends the workload whose object drifted (changed or deleted by someone else) to
    /// `notice`, so that it is synced again.
    pub fn on_drift(self, notice: DriftNotice) -> Inventory {
        Inventory {
            drift: Some(notice),
            ..self
        }
    }

    /// Whether workload `workload_uid` has an object in `cluster` that someone else changed or
    /// deleted since it was last synced there.
    pub fn drifted(&self, cluster: &str, workload_uid: &str) -> bool {
        lock(&self.kinds)
            .iter()
            .filter(|((c, _), _)| c == cluster)
            .any(|(_, (kind, _))| lock(kind).drifted(workload_uid))
    }

    /// The objects of workload `workload_uid` in `namespace` of `cluster`, of the kind
    /// `type_key` (`apiVersion/kind`, served as `resource`); `None` until the member's objects of
    /// that kind have been listed once. The first call starts the watch over `client`.
    pub fn objects(
        &self,
        cluster: &str,
        client: &Client,
        type_key: &str,
        resource: &ApiResource,
        namespace: &str,
        workload_uid: &str,
    ) -> Option<Vec<Placed>> {
        let kind = self.kind(cluster, client, type_key, resource);
        let kind = lock(&kind);
        if !kind.listed {
            return None;
        }
        Some(
            kind.by_workload
                .get(workload_uid)
                .into_iter()
                .flatten()
                .filter(|(ns, _)| ns == namespace)
                .filter_map(|k| {
                    let mut p = kind.objects.get(k).cloned()?;
                    p.drifted = kind.drifted.contains_key(k);
                    Some(p)
                })
                .collect(),
        )
    }

    /// Records an object this process just applied (its answer), ahead of the watch event.
    pub fn applied(&self, cluster: &str, type_key: &str, obj: &DynamicObject) {
        if let Some(kind) = self.existing(cluster, type_key) {
            let key = (obj.namespace().unwrap_or_default(), obj.name_any());
            lock(&kind).wrote(key, Placed::of(&obj.metadata));
        }
    }

    /// Records an object this process just deleted.
    pub fn deleted(&self, cluster: &str, type_key: &str, namespace: &str, name: &str) {
        if let Some(kind) = self.existing(cluster, type_key) {
            lock(&kind).gone(&(namespace.to_string(), name.to_string()), true, 0);
        }
    }

    /// Now, on the inventory's clock: taken by a sync before it reads, handed back to
    /// [`Inventory::settled`] after.
    pub fn mark(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// Workload `workload_uid` was synced to `cluster` from what was known at `mark`: the drift
    /// seen before then is repaired.
    pub fn settled(&self, cluster: &str, workload_uid: &str, mark: u64) {
        for ((c, _), (kind, _)) in lock(&self.kinds).iter() {
            if c == cluster {
                lock(kind).settled(workload_uid, mark);
            }
        }
    }

    /// Stops the member's watches and forgets what they saw (its connection was replaced).
    pub fn forget(&self, cluster: &str) {
        lock(&self.kinds).retain(|(c, _), _| c != cluster);
    }

    fn existing(&self, cluster: &str, type_key: &str) -> Option<Arc<Mutex<Kind>>> {
        lock(&self.kinds)
            .get(&(cluster.to_string(), type_key.to_string()))
            .map(|(k, _)| k.clone())
    }

    fn kind(
        &self,
        cluster: &str,
        client: &Client,
        type_key: &str,
        resource: &ApiResource,
    ) -> Arc<Mutex<Kind>> {
        let mut kinds = lock(&self.kinds);
        let key = (cluster.to_string(), type_key.to_string());
        if let Some((k, _)) = kinds.get(&key) {
            return k.clone();
        }
        let kind = Arc::new(Mutex::new(Kind::default()));
        let task = tokio::spawn(watch(
            Api::all_with(client.clone(), resource),
            kind.clone(),
            format!("{cluster} {type_key}"),
            self.drift.clone(),
            self.clock.clone(),
        ));
        kinds.insert(key, (kind.clone(), Watch(task)));
        kind
    }
}

async fn watch(
    api: Api<PartialObjectMeta<DynamicObject>>,
    kind: Arc<Mutex<Kind>>,
    what: String,
    drift: Option<DriftNotice>,
    clock: Arc<AtomicU64>,
) {
    let mark = || clock.fetch_add(1, Ordering::Relaxed);
    let tell = |seen: Seen| {
        if let (Seen::Drift(w), Some(notice)) = (seen, &drift) {
            tracing::info!(watch = %what, workload = %format!("{}/{}", w.namespace, w.name), "an object this hub placed was changed or deleted by someone else; applying it again");
            let _ = notice.send(w);
        }
    };
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    let stream = watcher::watcher(
        api,
        watcher::Config::default()
            .labels(&selector)
            .timeout(WATCH_TIMEOUT_SECS),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    let mut relist: Option<Kind> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => relist = Some(Kind::default()),
            Ok(Event::InitApply(o)) => {
                if let Some(r) = relist.as_mut() {
                    r.insert(key_of(&o.metadata), Placed::of(&o.metadata));
                }
            }
            Ok(Event::InitDone) => {
                let fresh = relist.take().unwrap_or_default();
                let mut kind = lock(&kind);
                // A relist after a broken watch: what changed meanwhile is compared with what
                // was applied, what vanished was deleted by someone else.
                let was = std::mem::take(&mut *kind);
                kind.applied = was.applied;
                kind.drifted = was.drifted;
                kind.lost = was.lost;
                kind.listed = true;
                let mut seen: Vec<Seen> = Vec::new();
                if was.listed {
                    kind.objects = was.objects;
                    kind.by_workload = was.by_workload;
                    let vanished: Vec<Key> = kind
                        .objects
                        .keys()
                        .filter(|k| !fresh.objects.contains_key(*k))
                        .cloned()
                        .collect();
                    seen.extend(vanished.iter().map(|k| kind.gone(k, false, mark())));
                }
                for (k, p) in fresh.objects {
                    seen.push(kind.seen(k, p, mark()));
                }
                drop(kind);
                seen.into_iter().for_each(tell);
            }
            Ok(Event::Apply(o)) => {
                let seen = lock(&kind).seen(key_of(&o.metadata), Placed::of(&o.metadata), mark());
                tell(seen);
            }
            Ok(Event::Delete(o)) => {
                let seen = lock(&kind).gone(&key_of(&o.metadata), false, mark());
                tell(seen);
            }
            Err(error) => {
                tracing::debug!(watch = %what, %error, "member inventory watch failed; retrying")
            }
        }
    }
}

fn key_of(meta: &kube::core::ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(name: &str, workload: &str) -> Placed {
        Placed {
            name: name.into(),
            uid: Some(format!("uid-{name}")),
            labels: [
                (labels::WORKLOAD_UID.to_string(), workload.to_string()),
                (
                    labels::WORKLOAD_NAME.to_string(),
                    format!("name-{workload}"),
                ),
                (labels::WORKLOAD_NAMESPACE.to_string(), "shop".to_string()),
            ]
            .into(),
            hash: None,
            generation: None,
            resource_version: None,
            drifted: false,
        }
    }

    /// A version of `p`: generation `g` (None for kinds without one), resourceVersion `rv`,
    /// rendered hash `hash`.
    fn version(p: &Placed, g: Option<i64>, rv: &str, hash: &str) -> Placed {
        Placed {
            generation: g,
            resource_version: Some(rv.into()),
            hash: Some(hash.into()),
            ..p.clone()
        }
    }

    fn drifted(seen: Seen) -> bool {
        matches!(seen, Seen::Drift(w) if w.uid == "w1" && w.name == "name-w1" && w.namespace == "shop")
    }

    /// A Deployment: its status changing is not drift; its spec changed by someone else (the
    /// generation moves, the hash does not) is, until this hub applies it again; this hub's own
    /// newer apply (another hash) is not.
    #[test]
    fn a_spec_changed_by_someone_else_is_drift_until_applied_again() {
        let mut k = Kind::default();
        let key = ("shop".to_string(), "web".to_string());
        let d = placed("web", "w1");
        k.wrote(key.clone(), version(&d, Some(1), "10", "h1"));
        assert!(
            !drifted(k.seen(key.clone(), version(&d, Some(1), "10", "h1"), 1)),
            "its own write"
        );
        assert!(
            !drifted(k.seen(key.clone(), version(&d, Some(1), "11", "h1"), 1)),
            "status"
        );
        assert!(!k.drifted("w1"));
        assert!(
            drifted(k.seen(key.clone(), version(&d, Some(2), "12", "h1"), 1)),
            "kubectl set image"
        );
        assert!(k.drifted("w1"));
        assert!(!k.drifted("w2"));
        k.seen(key.clone(), version(&d, Some(2), "13", "h1"), 3);
        assert!(k.drifted("w1"), "a status update does not clear it");
        k.settled("w1", 2);
        assert!(
            k.drifted("w1"),
            "seen again after the sync read: not repaired by it"
        );
        k.wrote(key.clone(), version(&d, Some(3), "14", "h1"));
        assert!(!k.drifted("w1"), "applied again");
        assert!(
            !drifted(k.seen(key.clone(), version(&d, Some(4), "15", "h2"), 1)),
            "a newer apply of ours"
        );
        assert!(!drifted(k.seen(key, version(&d, Some(4), "16", "h2"), 1)));
    }

    /// A ConfigMap (no generation): any other version is drift.
    #[test]
    fn a_kind_without_generation_drifts_on_any_other_version() {
        let mut k = Kind::default();
        let key = ("shop".to_string(), "conf".to_string());
        let c = placed("conf", "w1");
        // First seen by the watch (after a restart): the baseline.
        assert!(!drifted(k.seen(
            key.clone(),
            version(&c, None, "5", "h1"),
            1
        )));
        assert!(drifted(k.seen(
            key.clone(),
            version(&c, None, "6", "h1"),
            1
        )));
        assert!(k.drifted("w1"));
    }

    /// Deleted by someone else: drift (the workload lost an object) until its next write;
    /// deleted by this hub: nothing to repair.
    #[test]
    fn an_object_deleted_by_someone_else_is_drift() {
        let mut k = Kind::default();
        let key = |n: &str| ("shop".to_string(), n.to_string());
        k.wrote(key("svc"), version(&placed("svc", "w1"), None, "1", "h"));
        k.wrote(key("old"), version(&placed("old", "w1"), None, "2", "h"));
        assert!(!drifted(k.gone(&key("old"), true, 1)));
        assert!(!k.drifted("w1"));
        assert!(drifted(k.gone(&key("svc"), false, 5)));
        assert!(k.drifted("w1"));
        assert!(!drifted(k.gone(&key("svc"), false, 6)), "told once");
        // A sync that read the inventory before the delete was seen does not count as repair.
        k.settled("w1", 4);
        assert!(k.drifted("w1"));
        k.wrote(key("svc"), version(&placed("svc", "w1"), None, "3", "h"));
        k.settled("w1", 7);
        assert!(!k.drifted("w1"), "created again");
    }

    #[test]
    fn objects_are_indexed_by_workload_and_moves_between_workloads_are_followed() {
        let mut k = Kind::default();
        let key = |n: &str| ("shop".to_string(), n.to_string());
        k.insert(key("a"), placed("a", "w1"));
        k.insert(key("b"), placed("b", "w1"));
        k.insert(key("c"), placed("c", "w2"));
        assert_eq!(k.by_workload["w1"].len(), 2);
        // Relabelled to another workload: it leaves the first one's index.
        k.insert(key("b"), placed("b", "w2"));
        assert_eq!(k.by_workload["w1"].len(), 1);
        assert_eq!(k.by_workload["w2"].len(), 2);
        k.remove(&key("a"));
        assert!(!k.by_workload.contains_key("w1"));
        assert_eq!(k.objects.len(), 2);
    }

    #[test]
    fn only_ownership_labels_and_the_hash_are_kept() {
        let meta = kube::core::ObjectMeta {
            name: Some("checkout".into()),
            uid: Some("u".into()),
            labels: Some(
                [
                    (labels::WORKLOAD_UID.to_string(), "w1".to_string()),
                    (labels::HUB.to_string(), "hub-a".to_string()),
                    ("app".to_string(), "checkout".to_string()),
                ]
                .into(),
            ),
            annotations: Some(
                [
                    ("bascule.dev/rendered-hash".to_string(), "abc".to_string()),
                    ("other".to_string(), "x".to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        };
        let p = Placed::of(&meta);
        assert_eq!(p.labels.len(), 2);
        assert_eq!(p.hash.as_deref(), Some("abc"));
        assert_eq!(p.workload(), Some("w1"));
    }
}
