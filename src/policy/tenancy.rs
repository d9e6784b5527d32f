//! The tenancy policy: what any workload on this hub may place in a member, set by the platform
//! team (operator flags, the chart's `tenancy` values). Checked on the objects as rendered for a
//! cluster, after overrides, so that an override cannot turn an allowed object into a refused one.
//!
//! What is refused is never written: a cluster whose objects break the policy gets nothing new
//! (what runs there already is left as it is), and the workload says why (`RefusedByPolicy`).

use std::fmt;

use serde_json::Value;

/// The API group of the RBAC kinds, refused unless the policy allows them.
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// A Secret type that mints a token for a ServiceAccount of the member: never placed.
const SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";

/// The kinds a workload may place unless the operator says otherwise: namespaced application
/// kinds, nothing that grants or reaches beyond the namespace.
pub const DEFAULT_ALLOWED_KINDS: &[&str] = &[
    "Deployment.apps",
    "StatefulSet.apps",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "HorizontalPodAutoscaler.autoscaling",
    "PodDisruptionBudget.policy",
    "Ingress.networking.k8s.io",
    "NetworkPolicy.networking.k8s.io",
];

/// A kind a workload may place: `Kind` (the core group), `Kind.group`, or `*.group` (every kind
/// of a group), as `kubectl api-resources` and RBAC name them. Matched case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindPattern {
    group: String,
    /// `None`: every kind of the group.
    kind: Option<String>,
}

impl std::str::FromStr for KindPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || {
            format!(
                "{s:?} is not a kind: write Kind (core group), Kind.group or *.group, e.g. Service, Deployment.apps, *.monitoring.coreos.com"
            )
        };
        let (kind, group) = s.split_once('.').unwrap_or((s, ""));
        if kind.is_empty() || s.contains('/') || s.contains(char::is_whitespace) {
            return Err(bad());
        }
        if kind != "*" && !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        if kind == "*" && group.is_empty() {
            return Err(format!(
                "{s:?} would allow every kind of every group; name the group (*.example.com) or the kinds"
            ));
        }
        Ok(KindPattern {
            group: group.to_ascii_lowercase(),
            kind: (kind != "*").then(|| kind.to_ascii_lowercase()),
        })
    }
}

impl KindPattern {
    fn matches(&self, group: &str, kind: &str) -> bool {
        self.group.eq_ignore_ascii_case(group)
            && self
                .kind
                .as_deref()
                .is_none_or(|k| k.eq_ignore_ascii_case(kind))
    }
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or("*"))?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        Ok(())
    }
}

/// A member namespace no workload may place into: a name, or a prefix ending in `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacePattern(String);

impl std::str::FromStr for NamespacePattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let name = s.strip_suffix('*').unwrap_or(s);
        let valid = name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.len() <= 63
            && (!name.is_empty() || s == "*");
        if !valid || name.contains('*') {
            return Err(format!(
                "{s:?} is not a namespace or a prefix: write a name (bascule-system) or a prefix ending in * (kube-*)"
            ));
        }
        Ok(NamespacePattern(s.to_string()))
    }
}

impl NamespacePattern {
    fn matches(&self, namespace: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => namespace.starts_with(prefix),
            None => self.0 == namespace,
        }
    }
}

impl fmt::Display for NamespacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What workloads may place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenancy {
    allowed_kinds: Vec<KindPattern>,
    /// Roles and RoleBindings may be placed (a RoleBinding only to a Role).
    allow_rbac: bool,
    denied_namespaces: Vec<NamespacePattern>,
}

/// One object the policy refuses, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `Kind/name`, or `namespace NAME` when the whole namespace is refused.
    pub object: String,
    pub why: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.why)
    }
}

impl Tenancy {
    pub fn new(
        allowed_kinds: Vec<KindPattern>,
        allow_rbac: bool,
        denied_namespaces: Vec<NamespacePattern>,
    ) -> Tenancy {
        Tenancy {
            allowed_kinds,
            allow_rbac,
            denied_namespaces,
        }
    }

    /// The default kinds, no RBAC, and no placing into `kube-*` or the operator's namespace.
    pub fn defaults(operator_namespace: &str) -> Tenancy {
        Tenancy::new(
            default_kinds(),
            false,
            default_denied_namespaces(operator_namespace),
        )
    }

    /// Every refusal for the objects rendered for one member, in `namespace` (the workload's);
    /// empty when all may be written.
    pub fn check(&self, namespace: &str, objects: &[Value]) -> Vec<Refusal> {
        if let Some(p) = self.denied_namespaces.iter().find(|p| p.matches(namespace)) {
            return vec![Refusal {
                object: format!("namespace {namespace}"),
                why: format!(
                    "the operator's tenancy policy denies placing into it (pattern {p}); move the MultiCloudWorkload to another namespace"
                ),
            }];
        }
        objects
            .iter()
            .filter_map(|o| {
                self.refusal(o).map(|why| Refusal {
                    object: describe(o),
                    why,
                })
            })
            .collect()
    }

    fn refusal(&self, obj: &Value) -> Option<String> {
        let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let (group, kind) = (group_of(text("/apiVersion")), text("/kind"));
        if group.eq_ignore_ascii_case(RBAC_GROUP) {
            return self.rbac_refusal(kind, obj);
        }
        if !self.allowed_kinds.iter().any(|p| p.matches(group, kind)) {
            return Some(format!(
                "the operator's tenancy policy does not allow {}; the platform team can add it (--also-allowed-kinds, chart value tenancy.alsoAllowedKinds)",
                display_kind(group, kind)
            ));
        }
        if group.is_empty()
            && kind.eq_ignore_ascii_case("Secret")
            && text("/type") == SERVICE_ACCOUNT_TOKEN
        {
            return Some(format!(
                "a Secret of type {SERVICE_ACCOUNT_TOKEN} would mint a token of a member ServiceAccount; never placed"
            ));
        }
        None
    }

    fn rbac_refusal(&self, kind: &str, obj: &Value) -> Option<String> {
        if !self.allow_rbac {
            return Some(format!(
                "RBAC kinds ({kind}.{RBAC_GROUP}) are refused by the operator's tenancy policy; the platform team can allow Roles and RoleBindings (--allow-rbac, chart value tenancy.allowRbac)"
            ));
        }
        if kind.eq_ignore_ascii_case("Role") {
            return None;
        }
        if kind.eq_ignore_ascii_case("RoleBinding") {
            let role_kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return (role_kind != "Role").then(|| {
                format!(
                    "a RoleBinding may bind only a Role of its own namespace, not a {}: a ClusterRole would grant what the tenant never held on the hub",
                    if role_kind.is_empty() { "missing roleRef.kind" } else { role_kind }
                )
            });
        }
        Some(format!(
            "{kind}.{RBAC_GROUP} is cluster-wide; only Roles and RoleBindings can be placed"
        ))
    }

    /// The policy in one line, for the start-up log and `--help`-like output.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = self.allowed_kinds.iter().map(ToString::to_string).collect();
        let denied: Vec<String> = self
            .denied_namespaces
            .iter()
            .map(ToString::to_string)
            .collect();
        format!(
            "kinds [{}]{}, namespaces denied [{}]",
            kinds.join(", "),
            if self.allow_rbac {
                " + Role, RoleBinding (to a Role)"
            } else {
                ""
            },
            denied.join(", ")
        )
    }
}

pub fn default_kinds() -> Vec<KindPattern> {
    DEFAULT_ALLOWED_KINDS
        .iter()
        .map(|k| k.parse().expect("the default kinds parse"))
        .collect()
}

pub fn default_denied_namespaces(operator_namespace: &str) -> Vec<NamespacePattern> {
    let mut denied = vec![NamespacePattern("kube-*".into())];
    if let Ok(own) = operator_namespace.parse() {
        denied.push(own);
    }
    denied
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → the core group, empty).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

fn display_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

fn describe(obj: &Value) -> String {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
    format!("{}/{}", text("/kind"), text("/metadata/name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(api_version: &str, kind: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
    }

    fn refused(t: &Tenancy, o: Value) -> Option<String> {
        t.check("team-a", &[o]).pop().map(|r| r.to_string())
    }

    #[test]
    fn the_default_kinds_are_allowed_and_others_refused() {
        let t = Tenancy::defaults("bascule-system");
        for (v, k) in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("v1", "Service"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "ServiceAccount"),
            ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("policy/v1", "PodDisruptionBudget"),
            ("networking.k8s.io/v1", "Ingress"),
            ("networking.k8s.io/v1", "NetworkPolicy"),
        ] {
            assert_eq!(refused(&t, obj(v, k)), None, "{v} {k}");
        }
        for (v, k) in [
            ("batch/v1", "Job"),
            ("example.com/v1", "Widget"),
            ("v1", "Pod"),
            ("v1", "Namespace"),
            ("node.k8s.io/v1", "RuntimeClass"),
            // A kind of the same name in another group is another kind.
            ("example.com/v1", "Deployment"),
        ] {
            let why = refused(&t, obj(v, k)).expect(k);
            assert!(why.contains("--also-allowed-kinds"), "{why}");
        }
    }

    #[test]
    fn kinds_match_without_regard_to_case() {
        let t = Tenancy::defaults("bascule-system");
        assert_eq!(refused(&t, obj("apps/v1", "deployment")), None);
        assert_eq!(refused(&t, obj("Apps/v1", "DEPLOYMENT")), None);
        let t = Tenancy::new(vec!["*.Example.com".parse().unwrap()], false, vec![]);
        assert_eq!(refused(&t, obj("example.COM/v1", "Widget")), None);
        assert!(refused(&t, obj("apps/v1", "Deployment")).is_some());
    }

    #[test]
    fn rbac_is_refused_by_default_and_never_binds_a_cluster_role() {
        let role = obj("rbac.authorization.k8s.io/v1", "Role");
        let binding = |kind: &str| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "b"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": "cluster-admin"}})
        };
        let off = Tenancy::defaults("bascule-system");
        assert!(
            refused(&off, role.clone())
                .unwrap()
                .contains("--allow-rbac")
        );
        assert!(
            refused(&off, binding("Role"))
                .unwrap()
                .contains("--allow-rbac")
        );

        let on = Tenancy::new(default_kinds(), true, vec![]);
        assert_eq!(refused(&on, role), None);
        assert_eq!(refused(&on, binding("Role")), None);
        let why = refused(&on, binding("ClusterRole")).unwrap();
        assert!(why.contains("not a ClusterRole"), "{why}");
        assert!(refused(&on, binding("")).is_some());
        assert!(
            refused(
                &on,
                obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
            )
            .is_some()
        );
        // Even listed by the platform team, the group goes through the RBAC rules.
        let listed = Tenancy::new(
            vec!["*.rbac.authorization.k8s.io".parse().unwrap()],
            false,
            vec![],
        );
        assert!(refused(&listed, obj("rbac.authorization.k8s.io/v1", "Role")).is_some());
    }

    #[test]
    fn service_account_token_secrets_are_never_placed() {
        let t = Tenancy::defaults("bascule-system");
        let secret = |ty: &str| json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": ty});
        assert_eq!(refused(&t, secret("Opaque")), None);
        let why = refused(&t, secret(SERVICE_ACCOUNT_TOKEN)).unwrap();
        assert!(why.starts_with("Secret/s: "), "{why}");
        assert!(why.contains(SERVICE_ACCOUNT_TOKEN), "{why}");
    }

    #[test]
    fn denied_namespaces_refuse_everything_in_them() {
        let t = Tenancy::defaults("bascule-system");
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "bascule-system",
        ] {
            let r = t.check(ns, &[obj("v1", "ConfigMap")]);
            assert_eq!(r.len(), 1, "{ns}");
            assert_eq!(r[0].object, format!("namespace {ns}"));
        }
        assert!(
            t.check("kubernetes-team", &[obj("v1", "ConfigMap")])
                .is_empty()
        );
        assert!(
            t.check("bascule-system-2", &[obj("v1", "ConfigMap")])
                .is_empty()
        );
    }

    #[test]
    fn every_refused_object_is_named() {
        let t = Tenancy::defaults("bascule-system");
        let r = t.check(
            "team-a",
            &[
                obj("apps/v1", "Deployment"),
                obj("batch/v1", "Job"),
                obj("example.com/v1", "Widget"),
            ],
        );
        let named: Vec<&str> = r.iter().map(|r| r.object.as_str()).collect();
        assert_eq!(named, ["Job/x", "Widget/x"]);
    }

    #[test]
    fn patterns_parse_or_say_how_to_write_them() {
        for good in [
            "Service",
            "Deployment.apps",
            "*.monitoring.coreos.com",
            "Widget.example.com",
        ] {
            let p: KindPattern = good.parse().unwrap();
            assert_eq!(p.to_string().to_lowercase(), good.to_lowercase());
        }
        for bad in [
            "",
            "apps/Deployment",
            "apps/v1/Deployment",
            "*",
            "Dep-loyment.apps",
            "a b",
        ] {
            let e = bad.parse::<KindPattern>().unwrap_err();
            assert!(
                e.contains("Kind.group") || e.contains("every kind"),
                "{bad}: {e}"
            );
        }
        for good in ["kube-*", "bascule-system", "*"] {
            good.parse::<NamespacePattern>().unwrap();
        }
        for bad in ["Kube-*", "a*b", "", "ns/x"] {
            assert!(bad.parse::<NamespacePattern>().is_err(), "{bad}");
        }
    }
}
