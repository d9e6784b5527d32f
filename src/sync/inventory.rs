//! What this hub placed in each member, kind by kind: one metadata-only watch per member and
//! kind on the objects labelled `app.kubernetes.io/managed-by=bascule`, reduced to what a sync
//! needs (name, UID, ownership labels, rendered hash).
//!
//! A sync reads a workload's objects from here instead of listing the member (one list per kind
//! and workload, before this), and records what it wrote at once, so that the next sync does not
//! depend on when the watch event arrives. A kind whose watch has not listed yet (just started,
//! or refused by the member's RBAC) is not known here: the sync lists it as before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

use super::apply::RENDERED_HASH;
use super::observe::WATCH_TIMEOUT_SECS;
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
        }
    }

    fn workload(&self) -> Option<&str> {
        self.labels.get(labels::WORKLOAD_UID).map(String::as_str)
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
}

impl Kind {
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

/// Every member's placed objects, shared by cheap clones.
#[derive(Clone, Default)]
pub struct Inventory {
    kinds: Arc<Mutex<Kinds>>,
}

impl Inventory {
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
                .filter_map(|k| kind.objects.get(k).cloned())
                .collect(),
        )
    }

    /// Records an object this process just applied (its answer), ahead of the watch event.
    pub fn applied(&self, cluster: &str, type_key: &str, obj: &DynamicObject) {
        if let Some(kind) = self.existing(cluster, type_key) {
            let key = (obj.namespace().unwrap_or_default(), obj.name_any());
            lock(&kind).insert(key, Placed::of(&obj.metadata));
        }
    }

    /// Records an object this process just deleted.
    pub fn deleted(&self, cluster: &str, type_key: &str, namespace: &str, name: &str) {
        if let Some(kind) = self.existing(cluster, type_key) {
            lock(&kind).remove(&(namespace.to_string(), name.to_string()));
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
        ));
        kinds.insert(key, (kind.clone(), Watch(task)));
        kind
    }
}

async fn watch(api: Api<PartialObjectMeta<DynamicObject>>, kind: Arc<Mutex<Kind>>, what: String) {
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
                let mut fresh = relist.take().unwrap_or_default();
                fresh.listed = true;
                *lock(&kind) = fresh;
            }
            Ok(Event::Apply(o)) => lock(&kind).insert(key_of(&o.metadata), Placed::of(&o.metadata)),
            Ok(Event::Delete(o)) => lock(&kind).remove(&key_of(&o.metadata)),
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
            labels: [(labels::WORKLOAD_UID.to_string(), workload.to_string())].into(),
            hash: None,
        }
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
