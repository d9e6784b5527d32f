//! What to do in one member: apply the rendered objects Bascule may write, report the ones another
//! owner holds, delete the ones it placed earlier and no longer wants. Pure.
//!
//! Ownership is the `bascule.dev/workload-uid` label and the `bascule.dev/hub` label: an existing
//! object without the first, with another workload's UID, or placed by another hub is never
//! modified or deleted; it is reported as a conflict. An object without the hub label was placed
//! by a release before hub identities and is this hub's (it gets the label when next applied).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::labels;

/// The identity of an object in a member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn of(obj: &Value) -> ObjectKey {
        let s = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        ObjectKey {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} {}/{}",
            self.api_version, self.kind, self.namespace, self.name
        )
    }
}

/// An object that exists in the member: its key and its labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing {
    pub key: ObjectKey,
    pub labels: BTreeMap<String, String>,
}

/// One step in a member.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Server-side apply of this object (new, or already ours).
    Apply(Value),
    /// Leave this object alone: someone else owns it.
    Conflict { key: ObjectKey, owner: String },
    /// Delete this object: Bascule placed it for this workload and no longer wants it.
    Delete(ObjectKey),
}

/// Who places: this hub's id and the workload's UID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    pub hub: &'a str,
    pub uid: &'a str,
}

impl Owner<'_> {
    /// Whether `labels` say this owner placed the object (no hub label: an earlier release of
    /// this hub did).
    pub fn placed(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.get(labels::WORKLOAD_UID).map(String::as_str) == Some(self.uid)
            && labels
                .get(labels::HUB)
                .is_none_or(|hub| hub.as_str() == self.hub)
    }
}

/// Actions for one member, given what should be there (`rendered`, empty when the workload has
/// no replicas there) and what is there now (`existing`: objects of the kinds involved, in the
/// workload's namespace).
pub fn actions(owner: &Owner<'_>, rendered: Vec<Value>, existing: &[Existing]) -> Vec<Action> {
    let by_key: BTreeMap<&ObjectKey, &Existing> = existing.iter().map(|e| (&e.key, e)).collect();
    let mut wanted = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for obj in rendered {
        let key = ObjectKey::of(&obj);
        wanted.insert(same_object(&key));
        match by_key.get(&key) {
            Some(e) if !owner.placed(&e.labels) => {
                let owner = describe_owner(owner_uid(e), e);
                out.push(Action::Conflict { key, owner });
            }
            _ => out.push(Action::Apply(obj)),
        }
    }
    for e in existing {
        if owner.placed(&e.labels) && !wanted.contains(&same_object(&e.key)) {
            out.push(Action::Delete(e.key.clone()));
        }
    }
    out
}

/// Objects are the same whatever API version they are read through.
fn same_object(k: &ObjectKey) -> (String, String, String, String) {
    let group = k
        .api_version
        .rsplit_once('/')
        .map_or("", |(g, _)| g)
        .to_string();
    (group, k.kind.clone(), k.namespace.clone(), k.name.clone())
}

fn owner_uid(e: &Existing) -> Option<&str> {
    e.labels.get(labels::WORKLOAD_UID).map(String::as_str)
}

/// Who holds `e`, in words.
pub fn owner_of(e: &Existing) -> String {
    describe_owner(owner_uid(e), e)
}

/// Splits `actions` into the objects to claim (to apply, not there yet), in a fixed order
/// (group, kind, name: the same for every workload naming them), and the rest, in order.
pub fn claims(actions: Vec<Action>, existing: &[Existing]) -> (Vec<Value>, Vec<Action>) {
    let mut claims = Vec::new();
    let mut rest = Vec::new();
    for a in actions {
        match a {
            Action::Apply(obj) if !existing.iter().any(|e| e.key == ObjectKey::of(&obj)) => {
                claims.push(obj)
            }
            a => rest.push(a),
        }
    }
    claims.sort_by_key(|o| same_object(&ObjectKey::of(o)));
    (claims, rest)
}

fn describe_owner(uid: Option<&str>, e: &Existing) -> String {
    let workload = match (
        uid,
        e.labels.get(labels::WORKLOAD_NAMESPACE),
        e.labels.get(labels::WORKLOAD_NAME),
    ) {
        (Some(_), Some(ns), Some(name)) => format!("MultiCloudWorkload {ns}/{name}"),
        (Some(uid), _, _) => format!("another MultiCloudWorkload (uid {uid})"),
        (None, _, _) => match e.labels.get("app.kubernetes.io/managed-by") {
            Some(m) => format!("another owner (managed-by {m})"),
            None => "another owner (no Bascule labels)".to_string(),
        },
    };
    match e.labels.get(labels::HUB) {
        Some(hub) if uid.is_some() => format!("{workload} of another hub ({hub})"),
        _ => workload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UID: &str = "uid-1";
    const OURS: Owner<'static> = Owner {
        hub: "hub-a",
        uid: UID,
    };

    fn obj(kind: &str, name: &str) -> Value {
        json!({"apiVersion": if kind == "Deployment" { "apps/v1" } else { "v1" }, "kind": kind,
               "metadata": {"namespace": "shop", "name": name}})
    }

    fn existing(kind: &str, name: &str, labels: &[(&str, &str)]) -> Existing {
        Existing {
            key: ObjectKey::of(&obj(kind, name)),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn new_and_owned_objects_are_applied() {
        let ours = existing("Deployment", "web", &[(labels::WORKLOAD_UID, UID)]);
        let a = actions(
            &OURS,
            vec![obj("Deployment", "web"), obj("Service", "web")],
            &[ours],
        );
        assert!(
            matches!(&a[..], [Action::Apply(_), Action::Apply(_)]),
            "{a:?}"
        );
    }

    #[test]
    fn foreign_objects_are_conflicts_never_touched() {
        let foreign = existing(
            "Service",
            "web",
            &[("app.kubernetes.io/managed-by", "Helm")],
        );
        let other_workload = existing(
            "Deployment",
            "web",
            &[
                (labels::WORKLOAD_UID, "uid-2"),
                (labels::WORKLOAD_NAMESPACE, "shop"),
                (labels::WORKLOAD_NAME, "old-web"),
            ],
        );
        let a = actions(
            &OURS,
            vec![obj("Deployment", "web"), obj("Service", "web")],
            &[foreign, other_workload],
        );
        assert_eq!(
            a,
            vec![
                Action::Conflict {
                    key: ObjectKey::of(&obj("Deployment", "web")),
                    owner: "MultiCloudWorkload shop/old-web".into()
                },
                Action::Conflict {
                    key: ObjectKey::of(&obj("Service", "web")),
                    owner: "another owner (managed-by Helm)".into()
                },
            ]
        );
    }

    #[test]
    fn only_our_unwanted_objects_are_deleted() {
        let ours_old = existing("ConfigMap", "old", &[(labels::WORKLOAD_UID, UID)]);
        let not_ours = existing("ConfigMap", "keep", &[]);
        let other = existing("ConfigMap", "theirs", &[(labels::WORKLOAD_UID, "uid-2")]);
        let a = actions(&OURS, vec![], &[ours_old, not_ours, other]);
        assert_eq!(
            a,
            vec![Action::Delete(ObjectKey::of(&obj("ConfigMap", "old")))]
        );
    }

    #[test]
    fn another_hubs_objects_are_never_ours_even_with_our_uid() {
        let labels_of = |hub: Option<&'static str>| {
            let mut l = vec![
                (labels::WORKLOAD_UID, UID),
                (labels::WORKLOAD_NAMESPACE, "shop"),
                (labels::WORKLOAD_NAME, "web"),
            ];
            if let Some(h) = hub {
                l.push((labels::HUB, h));
            }
            l
        };
        let theirs = existing("Deployment", "web", &labels_of(Some("hub-b")));
        let theirs_too = existing("ConfigMap", "copied", &labels_of(Some("hub-b")));
        let a = actions(&OURS, vec![obj("Deployment", "web")], &[theirs, theirs_too]);
        assert_eq!(
            a,
            vec![Action::Conflict {
                key: ObjectKey::of(&obj("Deployment", "web")),
                owner: "MultiCloudWorkload shop/web of another hub (hub-b)".into()
            }],
            "not applied, and the copied ConfigMap not deleted"
        );
        // Ours, labelled by this hub or by a release before hub ids: applied and pruned.
        let labelled = existing("Deployment", "web", &labels_of(Some("hub-a")));
        let legacy = existing("ConfigMap", "old", &labels_of(None));
        let a = actions(&OURS, vec![obj("Deployment", "web")], &[labelled, legacy]);
        assert!(
            matches!(&a[..], [Action::Apply(_), Action::Delete(k)] if k.name == "old"),
            "{a:?}"
        );
    }

    #[test]
    fn claims_come_in_one_order_whatever_the_template_order() {
        let ours = existing("Deployment", "web", &[(labels::WORKLOAD_UID, UID)]);
        let rendered = |names: &[(&str, &str)]| -> Vec<Value> {
            names.iter().map(|(k, n)| obj(k, n)).collect()
        };
        let a = actions(
            &OURS,
            rendered(&[
                ("Service", "b"),
                ("Deployment", "web"),
                ("ConfigMap", "z"),
                ("ConfigMap", "a"),
            ]),
            std::slice::from_ref(&ours),
        );
        let (claims, rest) = claims(a, std::slice::from_ref(&ours));
        let order: Vec<String> = claims
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(order, ["ConfigMap/a", "ConfigMap/z", "Service/b"]);
        assert!(
            matches!(&rest[..], [Action::Apply(o)] if o["metadata"]["name"] == "web"),
            "{rest:?}"
        );
    }

    #[test]
    fn an_api_version_change_is_the_same_object() {
        let mut old = existing("Deployment", "web", &[(labels::WORKLOAD_UID, UID)]);
        old.key.api_version = "apps/v1beta2".into();
        let a = actions(&OURS, vec![obj("Deployment", "web")], &[old]);
        assert_eq!(a.len(), 1, "applied, not deleted: {a:?}");
    }
}
