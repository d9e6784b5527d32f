//! Apply: makes one member hold what a workload should run there — server-side apply with one
//! field manager, foreign objects reported and left alone, objects no longer wanted pruned.
//!
//! Nothing is written when nothing changed: each applied object carries the hash of what was
//! rendered for it (annotation `bascule.dev/rendered-hash`), and an object whose hash matches is
//! skipped. A steady state therefore costs reads only, and no write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, Preconditions,
};
use kube::discovery::{self, Scope};
use kube::{Client, Error as KubeError, ResourceExt};
use serde_json::Value;

use super::diff::{self, Action, Existing, ObjectKey};
use super::inventory::{Inventory, Placed};
use crate::api::labels;

use crate::api::FIELD_MANAGER;
/// The hash of what was rendered for an object, to skip applies that would change nothing.
pub const RENDERED_HASH: &str = "bascule.dev/rendered-hash";

/// What one member sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// Objects held by another owner, left untouched: (object, owner).
    pub conflicts: Vec<(ObjectKey, String)>,
    /// Objects not created because another of the workload's objects is held by another owner
    /// (a workload claims all of its objects in a member or none): (object, why).
    pub unclaimed: Vec<(ObjectKey, String)>,
    /// `apiVersion/kind` of the workload's objects present in the member after the sync.
    pub kinds: BTreeSet<String>,
    /// In a removal (nothing rendered): kinds whose objects the member refuses for good to
    /// list or delete (not served, cluster-scoped, forbidden), with why. Retrying cannot help,
    /// so the removal goes on without them instead of failing forever.
    pub abandoned: Vec<(String, String)>,
}

/// Why a member could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{kind} is not served by the member: {source}")]
    UnknownKind { kind: String, source: KubeError },
    #[error("{kind} is cluster-scoped; only namespaced objects can be placed")]
    ClusterScoped { kind: String },
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: KubeError,
    },
}

impl SyncError {
    /// The member refuses this for good: the kind is not served (discovery found no such group,
    /// version or kind), is cluster-scoped, or the member identity may not read it. Transport
    /// errors, timeouts and 5xx are not permanent.
    pub fn is_permanent(&self) -> bool {
        match self {
            SyncError::ClusterScoped { .. } => true,
            SyncError::UnknownKind { source, .. } | SyncError::Api { source, .. } => {
                permanent(source)
            }
        }
    }

    /// A short, bounded label for metrics and Event reasons.
    pub fn category(&self) -> &'static str {
        match self {
            SyncError::UnknownKind { .. } | SyncError::ClusterScoped { .. } => "InvalidTemplate",
            // The member's RBAC does not allow it (deploy/member-rbac.yaml lacks the kind).
            SyncError::Api {
                source: KubeError::Api(status),
                ..
            } if status.code == 403 => "Forbidden",
            SyncError::Api { .. } => "MemberApi",
        }
    }
}

/// The Pod Security admission level Bascule sets on the namespaces it creates in members
/// (`pod-security.kubernetes.io/enforce` and `warn`): `privileged`, `baseline` or `restricted`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodSecurity {
    /// No label: the member's default applies (usually privileged).
    None,
    Privileged,
    #[default]
    Baseline,
    Restricted,
}

impl PodSecurity {
    /// The label value, or `None` for no label.
    pub fn level(self) -> Option<&'static str> {
        match self {
            PodSecurity::None => None,
            PodSecurity::Privileged => Some("privileged"),
            PodSecurity::Baseline => Some("baseline"),
            PodSecurity::Restricted => Some("restricted"),
        }
    }
}

impl std::str::FromStr for PodSecurity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(PodSecurity::None),
            "privileged" => Ok(PodSecurity::Privileged),
            "baseline" => Ok(PodSecurity::Baseline),
            "restricted" => Ok(PodSecurity::Restricted),
            other => Err(format!(
                "{other:?}: expected none, privileged, baseline or restricted"
            )),
        }
    }
}

/// The labels of a namespace Bascule creates in a member.
pub fn namespace_labels(pod_security: PodSecurity) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(
        labels::MANAGED_BY.to_string(),
        labels::MANAGED_BY_VALUE.to_string(),
    )]);
    if let Some(level) = pod_security.level() {
        for mode in ["enforce", "warn"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                level.to_string(),
            );
        }
    }
    labels
}

/// Discovery and namespace knowledge per member, kept across reconciles.
#[derive(Clone, Default)]
pub struct MemberCache {
    /// Pod Security level of the namespaces this process creates.
    pod_security: PodSecurity,
    /// This hub's id: objects labelled with another are never touched.
    hub_id: String,
    kinds: Arc<Mutex<HashMap<(String, String), ApiResource>>>,
    namespaces: Arc<Mutex<BTreeSet<(String, String)>>>,
    /// (cluster, workload UID) → fingerprint of what was last synced there successfully.
    synced: Arc<Mutex<HashMap<(String, String), u64>>>,
    /// What this hub placed in each member, from watches: read instead of listing.
    inventory: Inventory,
}

impl MemberCache {
    /// An empty cache for the hub `hub_id`, whose namespaces get this Pod Security level.
    pub fn new(pod_security: PodSecurity, hub_id: &str) -> MemberCache {
        MemberCache {
            pod_security,
            hub_id: hub_id.to_string(),
            ..MemberCache::default()
        }
    }

    /// Forgets what is known of `cluster` (its connection was replaced).
    pub fn forget(&self, cluster: &str) {
        lock(&self.kinds).retain(|(c, _), _| c != cluster);
        lock(&self.namespaces).retain(|(c, _)| c != cluster);
        lock(&self.synced).retain(|(c, _), _| c != cluster);
        self.inventory.forget(cluster);
    }

    /// Whether `target` is exactly what was last synced to its member without a problem, and
    /// nobody changed or deleted any of it there since — then the member needs no request at
    /// all. The caller checks that the member still runs it.
    pub fn in_sync(&self, target: &Target<'_>) -> bool {
        let key = (target.cluster.to_string(), target.workload_uid.to_string());
        lock(&self.synced).get(&key) == Some(&fingerprint(target))
            && !self.inventory.drifted(target.cluster, target.workload_uid)
    }

    /// Tells `notice` the workload whose object in a member was changed or deleted by someone
    /// else (see [`Inventory`]).
    pub fn on_drift(self, notice: super::inventory::DriftNotice) -> MemberCache {
        MemberCache {
            inventory: self.inventory.on_drift(notice),
            ..self
        }
    }

    /// The API resource of `apiVersion/kind` in the member (discovery, cached).
    pub async fn resource(
        &self,
        cluster: &str,
        client: &Client,
        type_key: &str,
    ) -> Result<ApiResource, SyncError> {
        let key = (cluster.to_string(), type_key.to_string());
        if let Some(r) = lock(&self.kinds).get(&key) {
            return Ok(r.clone());
        }
        let (api_version, kind) = type_key.rsplit_once('/').unwrap_or(("", type_key));
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|source| SyncError::UnknownKind {
                kind: type_key.to_string(),
                source,
            })?;
        if caps.scope != Scope::Namespaced {
            return Err(SyncError::ClusterScoped {
                kind: type_key.to_string(),
            });
        }
        lock(&self.kinds).insert(key, resource.clone());
        Ok(resource)
    }

    /// Creates the namespace in the member unless it is known to exist.
    async fn ensure_namespace(
        &self,
        cluster: &str,
        client: &Client,
        namespace: &str,
    ) -> Result<(), SyncError> {
        let key = (cluster.to_string(), namespace.to_string());
        if lock(&self.namespaces).contains(&key) {
            return Ok(());
        }
        let api = Api::<Namespace>::all(client.clone());
        let what = || format!("namespace {namespace}");
        let exists = api
            .get_metadata_opt(namespace)
            .await
            .map_err(|source| SyncError::Api {
                what: what(),
                source,
            })?
            .is_some();
        if !exists {
            let ns: Namespace = serde_json::from_value(serde_json::json!({
                "metadata": {"name": namespace, "labels": namespace_labels(self.pod_security)}
            }))
            .expect("namespace literal");
            let pp = PostParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PostParams::default()
            };
            match api.create(&pp, &ns).await {
                Ok(_) => {}
                Err(KubeError::Api(s)) if s.code == 409 => {}
                Err(source) => {
                    return Err(SyncError::Api {
                        what: what(),
                        source,
                    });
                }
            }
        }
        lock(&self.namespaces).insert(key);
        Ok(())
    }
}

/// One member's part of a workload.
pub struct Target<'a> {
    pub cluster: &'a str,
    pub client: &'a Client,
    pub namespace: &'a str,
    pub workload_uid: &'a str,
    /// What should be there (empty: remove everything the workload has there).
    pub rendered: Vec<Value>,
    /// Kinds the workload may have objects of (`apiVersion/kind`): the template's, and those
    /// placed earlier; objects of these kinds that are no longer rendered are pruned.
    pub kinds: &'a BTreeSet<String>,
}

/// Makes the member hold `target.rendered`, and nothing else of the workload's.
pub async fn sync(cache: &MemberCache, target: Target<'_>) -> Result<Report, SyncError> {
    // Until this sync succeeds, the member is not known to hold anything.
    let key = (target.cluster.to_string(), target.workload_uid.to_string());
    lock(&cache.synced).remove(&key);
    let print = fingerprint(&target);
    let mark = cache.inventory.mark();
    let namespace = (key.0.clone(), target.namespace.to_string());
    let result = sync_uncached(cache, target).await;
    match &result {
        Ok(report) if report.conflicts.is_empty() => {
            cache.inventory.settled(&key.0, &key.1, mark);
            lock(&cache.synced).insert(key, print);
        }
        // Not found on a write: the namespace itself may be gone (deleted by hand), and is
        // looked up (and created) again next time rather than taken as known.
        Err(SyncError::Api {
            source: KubeError::Api(s),
            ..
        }) if s.code == 404 => {
            lock(&cache.namespaces).remove(&namespace);
        }
        _ => {}
    }
    result
}

async fn sync_uncached(cache: &MemberCache, target: Target<'_>) -> Result<Report, SyncError> {
    let Target {
        cluster,
        client,
        namespace,
        workload_uid,
        rendered,
        kinds,
    } = target;
    let mut report = Report::default();
    let mut all_kinds: BTreeSet<String> = kinds.clone();
    all_kinds.extend(rendered.iter().map(type_key));
    // Nothing rendered: only removal, which must complete whatever the member refuses for good.
    let removal = rendered.is_empty();
    let mut resources = BTreeMap::new();
    for k in &all_kinds {
        match cache.resource(cluster, client, k).await {
            Ok(r) => {
                resources.insert(k.clone(), r);
            }
            Err(e) if removal && e.is_permanent() => {
                report.abandoned.push((k.clone(), e.to_string()))
            }
            Err(e) => return Err(e),
        }
    }
    if !rendered.is_empty() {
        cache.ensure_namespace(cluster, client, namespace).await?;
    }

    // What the workload has there, by label, with the hash it was applied with.
    let mut existing = Vec::new();
    let mut applied_hash: HashMap<ObjectKey, (Option<String>, Option<String>)> = HashMap::new();
    let owned = ListParams::default().labels(&format!("{}={workload_uid}", labels::WORKLOAD_UID));
    for (k, resource) in &resources {
        let known = cache
            .inventory
            .objects(cluster, client, k, resource, namespace, workload_uid);
        let items: Vec<Placed> = match known {
            Some(items) => items,
            None => match list_owned(client, namespace, resource, &owned).await {
                Ok(items) => items,
                Err(source) if removal && permanent(&source) => {
                    report
                        .abandoned
                        .push((k.clone(), format!("list {k}: {source}")));
                    continue;
                }
                Err(source) => {
                    return Err(SyncError::Api {
                        what: format!("list {k}"),
                        source,
                    });
                }
            },
        };
        for item in items {
            let key = ObjectKey {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
                namespace: namespace.to_string(),
                name: item.name,
            };
            // Changed by someone else: applied again, whatever its hash says.
            let hash = item.hash.filter(|_| !item.drifted);
            applied_hash.insert(key.clone(), (hash, item.uid));
            existing.push(Existing {
                key,
                labels: item.labels,
            });
        }
    }
    // Rendered objects the workload does not have: someone else's, or not there yet.
    for obj in &rendered {
        let key = ObjectKey::of(obj);
        if existing.iter().any(|e| e.key == key) {
            continue;
        }
        let api = dynamic(client, namespace, &resources[&type_key(obj)]);
        let found = api
            .get_metadata_opt(&key.name)
            .await
            .map_err(|source| SyncError::Api {
                what: format!("get {key}"),
                source,
            })?;
        if let Some(meta) = found {
            existing.push(Existing {
                key,
                labels: meta.metadata.labels.unwrap_or_default(),
            });
        }
    }

    let owner = diff::Owner {
        hub: &cache.hub_id,
        uid: workload_uid,
    };
    let manager = field_manager(workload_uid);
    let (claims, actions) = diff::claims(diff::actions(&owner, rendered, &existing), &existing);
    // Held by another owner already: nothing more is claimed here (all or nothing).
    let mut held_elsewhere = actions.iter().find_map(|a| match a {
        Action::Conflict { key, owner } => Some(format!("{key} is held by {owner}")),
        _ => None,
    });
    for action in actions {
        match action {
            Action::Apply(mut obj) => {
                let key = ObjectKey::of(&obj);
                let t = type_key(&obj);
                let hash = rendered_hash(&obj);
                report.kinds.insert(t.clone());
                if applied_hash.get(&key).and_then(|h| h.0.as_deref()) == Some(hash.as_str()) {
                    report.unchanged += 1;
                    continue;
                }
                set_annotation(&mut obj, RENDERED_HASH, &hash);
                let api = dynamic(client, namespace, &resources[&t]);
                // Ours (its labels say so): forced, so that a field another manager took is
                // taken back.
                let pp = PatchParams::apply(&manager).force();
                let applied = api
                    .patch(&key.name, &pp, &Patch::Apply(&obj))
                    .await
                    .map_err(|source| SyncError::Api {
                        what: format!("apply {key}"),
                        source,
                    })?;
                report.applied += 1;
                cache.inventory.applied(cluster, &t, &applied);
                if let Some(dropped) = drop_legacy_manager(&api, &applied).await {
                    // Its own write, not someone else's change.
                    cache.inventory.applied(cluster, &t, &dropped);
                }
            }
            Action::Conflict { key, owner } => report.conflicts.push((key, owner)),
            Action::Delete(key) => {
                let t = format!("{}/{}", key.api_version, key.kind);
                let api = dynamic(client, namespace, &resources[&t]);
                let dp = DeleteParams {
                    // Never delete an object re-created by someone else under the same name.
                    preconditions: applied_hash.get(&key).and_then(|h| h.1.clone()).map(|uid| {
                        Preconditions {
                            uid: Some(uid),
                            resource_version: None,
                        }
                    }),
                    ..DeleteParams::background()
                };
                match api.delete(&key.name, &dp).await {
                    Ok(_) => {
                        cache.inventory.deleted(cluster, &t, namespace, &key.name);
                        report.deleted += 1;
                    }
                    Err(KubeError::Api(s)) if s.code == 404 || s.code == 409 => {}
                    Err(source) if removal && permanent(&source) => {
                        report
                            .abandoned
                            .push((t.clone(), format!("delete {key}: {source}")));
                        report.kinds.insert(t);
                    }
                    Err(source) => {
                        report.kinds.insert(t);
                        return Err(SyncError::Api {
                            what: format!("delete {key}"),
                            source,
                        });
                    }
                }
            }
        }
    }
    // Claims, in the same order for every workload, none after the first object another owner
    // holds: two workloads naming the same objects cannot split them between them, whatever the
    // timing. A claim is an apply without force by this workload's own field manager, so that
    // the API server refuses it (409) when another workload's manager set the ownership labels
    // first.
    for mut obj in claims {
        let key = ObjectKey::of(&obj);
        let t = type_key(&obj);
        if let Some(why) = &held_elsewhere {
            report.unclaimed.push((key, why.clone()));
            continue;
        }
        report.kinds.insert(t.clone());
        let hash = rendered_hash(&obj);
        set_annotation(&mut obj, RENDERED_HASH, &hash);
        let api = dynamic(client, namespace, &resources[&t]);
        match api
            .patch(
                &key.name,
                &PatchParams::apply(&manager),
                &Patch::Apply(&obj),
            )
            .await
        {
            Ok(created) => {
                cache.inventory.applied(cluster, &t, &created);
                report.applied += 1;
            }
            Err(KubeError::Api(s)) if s.code == 409 => {
                let labels = api
                    .get_metadata_opt(&key.name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|m| m.metadata.labels)
                    .unwrap_or_default();
                let holder = diff::owner_of(&Existing {
                    key: key.clone(),
                    labels,
                });
                held_elsewhere = Some(format!("{key} is held by {holder}"));
                report.conflicts.push((key, holder));
            }
            Err(source) => {
                return Err(SyncError::Api {
                    what: format!("create {key}"),
                    source,
                });
            }
        }
    }
    Ok(report)
}

/// The workload's objects of one kind in its namespace, listed (when the inventory does not know
/// them yet).
async fn list_owned(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    owned: &ListParams,
) -> Result<Vec<Placed>, KubeError> {
    let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
    Ok(api
        .list_metadata(owned)
        .await?
        .items
        .iter()
        .map(|item| Placed::of(&item.metadata))
        .collect())
}

/// The field manager of one workload's objects in members: its own, so that the API server
/// itself tells two workloads' claims on one object apart.
pub fn field_manager(workload_uid: &str) -> String {
    format!("{FIELD_MANAGER}-{workload_uid}")
}

/// Releases what releases before per-workload field managers applied (manager `bascule`), once:
/// left in place, it would keep every field it set even after the template drops it. The object
/// as patched, or `None` when there was nothing to drop (or the patch failed).
async fn drop_legacy_manager(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Option<DynamicObject> {
    let i = obj
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .position(|m| m.manager.as_deref() == Some(FIELD_MANAGER) && m.subresource.is_none())?;
    let path = format!("/metadata/managedFields/{i}");
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": format!("{path}/manager"), "value": FIELD_MANAGER},
        {"op": "remove", "path": path}
    ]))
    .expect("a valid JSON patch");
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::<()>::Json(patch),
    )
    .await
    .inspect_err(|error| tracing::debug!(%error, object = %obj.name_any(), "legacy field manager not dropped; retried on the next apply"))
    .ok()
}

/// A member's answer that a retry cannot change: 403, 404, or discovery's "no such kind".
fn permanent(e: &KubeError) -> bool {
    match e {
        KubeError::Api(s) => s.code == 403 || s.code == 404,
        KubeError::Discovery(_) => true,
        _ => false,
    }
}

/// `apiVersion/kind`, e.g. `apps/v1/Deployment`, `v1/Service`.
pub fn type_key(obj: &Value) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!("{}/{}", s("/apiVersion"), s("/kind"))
}

fn dynamic(client: &Client, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, resource)
}

/// A hash of the rendered object; stable for a given build of Bascule (a new Rust release may
/// change it, which costs one re-apply of each object).
fn rendered_hash(obj: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(obj).unwrap_or_default().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// What a sync would write, in one number: the rendered objects and the kinds pruned.
fn fingerprint(target: &Target<'_>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for obj in &target.rendered {
        serde_json::to_string(obj).unwrap_or_default().hash(&mut h);
    }
    target.kinds.hash(&mut h);
    target.namespace.hash(&mut h);
    h.finish()
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_keys_and_hashes() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}});
        assert_eq!(type_key(&d), "apps/v1/Deployment");
        assert_eq!(
            type_key(&json!({"apiVersion": "v1", "kind": "Service"})),
            "v1/Service"
        );
        let mut e = d.clone();
        assert_eq!(rendered_hash(&d), rendered_hash(&e));
        e["spec"] = json!({"replicas": 2});
        assert_ne!(rendered_hash(&d), rendered_hash(&e));
        set_annotation(&mut e, RENDERED_HASH, "abc");
        assert_eq!(e["metadata"]["annotations"][RENDERED_HASH], "abc");
    }
}

#[cfg(test)]
mod removal_and_namespace_tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> KubeError {
        KubeError::Api(Status::failure("x", "y").with_code(code).boxed())
    }

    #[test]
    fn namespaces_carry_the_pod_security_level() {
        let l = namespace_labels(PodSecurity::default());
        assert_eq!(l["pod-security.kubernetes.io/enforce"], "baseline");
        assert_eq!(l["pod-security.kubernetes.io/warn"], "baseline");
        assert_eq!(l[labels::MANAGED_BY], labels::MANAGED_BY_VALUE);
        let none = namespace_labels(PodSecurity::None);
        assert!(
            !none.keys().any(|k| k.starts_with("pod-security")),
            "{none:?}"
        );
        assert_eq!("restricted".parse(), Ok(PodSecurity::Restricted));
        assert!("Baseline".parse::<PodSecurity>().is_err());
    }

    /// What ends a removal of a kind for good, and what keeps the finalizer for a retry.
    #[test]
    fn permanent_refusals_and_transient_errors() {
        assert!(permanent(&api(403)));
        assert!(permanent(&api(404)));
        assert!(!permanent(&api(500)));
        assert!(!permanent(&api(429)));
        assert!(permanent(&KubeError::Discovery(
            kube::error::DiscoveryError::MissingKind("Widget".into())
        )));
        assert!(
            SyncError::ClusterScoped {
                kind: "node.k8s.io/v1/RuntimeClass".into()
            }
            .is_permanent()
        );
        let transient = SyncError::Api {
            what: "list".into(),
            source: api(503),
        };
        assert!(!transient.is_permanent());
    }
}
