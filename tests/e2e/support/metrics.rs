//! Counting write requests with an API server's own `/metrics`.
//!
//! `apiserver_request_total` in kube-apiserver 1.35 has the labels `verb`, `group`, `version`,
//! `resource`, `subresource`, `scope`, `component`, `dry_run` and `code` — and no user. Seen on
//! the harness' clusters:
//!
//! ```text
//! apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 6
//! apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="nodes",scope="resource",subresource="status",verb="PATCH",version="v1"} 5
//! apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 8
//! apiserver_request_total{code="200",component="apiserver",dry_run="",group="flowcontrol.apiserver.k8s.io",resource="flowschemas",scope="resource",subresource="status",verb="APPLY",version="v1"} 14
//! ```
//!
//! Server-side apply is its own verb, `APPLY`; a status update has `subresource="status"`;
//! non-resource paths (`/readyz`, `/version`) have an empty resource.
//!
//! Writes cannot be attributed by user, so they are attributed by elimination: over a window in
//! which the test itself writes nothing, every write either comes from the cluster's own
//! components — at rest only [`is_background_write`]: lease renewals (`PUT leases`: the
//! controller-manager's and scheduler's leader election and the apiserver's identity lease,
//! 330 in 300 s on an idle member) and kwok's node heartbeats (`PATCH nodes/status`, 42 in
//! 300 s with 3 nodes), and Events the components post after a machine stall (leader election,
//! node lifecycle; `POST events`, seen 1–3 in 300 s on a busy machine) — or from the operator. Measured on idle harness clusters over 300 s
//! (a hub with the CRDs, a member with a Deployment and a Service): nothing else was written.
//! So "no write by the operator" is "no write outside the background", which also catches
//! writes to resources nobody expected the operator to touch. The one blind spot is leases (an
//! operator renewing a leader-election Lease); [`RequestCounts::lease_writes`] lets a trial
//! compare the hub's lease writes with a member's, whose components are the same.

use std::collections::BTreeMap;
use std::fmt;

use kube::Client;

/// Verbs that change state (as the `verb` label spells them).
pub const WRITE_VERBS: [&str; 6] = [
    "POST",
    "PUT",
    "PATCH",
    "DELETE",
    "DELETECOLLECTION",
    "APPLY",
];

/// One series of `apiserver_request_total`, without the labels that do not matter here
/// (`version`, `scope`, `component`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestKey {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub code: String,
    pub dry_run: String,
}

impl RequestKey {
    pub fn is_write(&self) -> bool {
        WRITE_VERBS.contains(&self.verb.as_str())
    }

    /// `resource[/subresource][.group]`, e.g. `deployments.apps`, `nodes/status`.
    pub fn resource_name(&self) -> String {
        let mut s = self.resource.clone();
        if s.is_empty() {
            s = self.subresource.clone(); // a non-resource path such as /readyz
        } else if !self.subresource.is_empty() {
            s = format!("{s}/{}", self.subresource);
        }
        if !self.group.is_empty() {
            s = format!("{s}.{}", self.group);
        }
        s
    }
}

impl fmt::Display for RequestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.verb, self.resource_name(), self.code)?;
        if !self.dry_run.is_empty() {
            write!(f, " (dry run)")?;
        }
        Ok(())
    }
}

/// Writes the cluster's own components make at rest: lease renewals and kwok's node heartbeats.
pub fn is_background_write(k: &RequestKey) -> bool {
    (k.verb == "PUT" && k.group == "coordination.k8s.io" && k.resource == "leases")
        // Components post Events too (leader election lost during a machine stall, node
        // lifecycle): Events are counted as background, and the operator's own Events, which it
        // writes only on the hub, are checked by listing them (workloads::idle_operator_writes_nothing).
        || (k.verb == "POST" && k.resource == "events")
        || (k.verb == "PATCH"
            && k.group.is_empty()
            && k.resource == "nodes"
            && k.subresource == "status")
}

/// Request counts by series, from one scrape (or the difference of two).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts(pub BTreeMap<RequestKey, u64>);

impl RequestCounts {
    /// Scrapes `/metrics` of the API server behind `client`.
    pub async fn scrape(client: &Client) -> Result<RequestCounts, String> {
        let req = http::Request::get("/metrics")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let text = client
            .request_text(req)
            .await
            .map_err(|e| format!("GET /metrics: {e}"))?;
        RequestCounts::parse(&text)
    }

    /// Parses the `apiserver_request_total` series of a Prometheus text exposition.
    pub fn parse(text: &str) -> Result<RequestCounts, String> {
        let mut out = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let (labels, value) = parse_labels(rest).map_err(|e| format!("{e} in: {line}"))?;
            let value: f64 = value
                .trim()
                .parse()
                .map_err(|e| format!("value: {e} in: {line}"))?;
            let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
            let key = RequestKey {
                verb: get("verb"),
                group: get("group"),
                resource: get("resource"),
                subresource: get("subresource"),
                code: get("code"),
                dry_run: get("dry_run"),
            };
            *out.entry(key).or_insert(0) += value as u64;
        }
        if out.is_empty() {
            return Err("no apiserver_request_total series in /metrics".into());
        }
        Ok(RequestCounts(out))
    }

    /// What happened between `before` and `self`. Fails if a counter went down (the API server
    /// restarted in between, so the difference means nothing).
    pub fn since(&self, before: &RequestCounts) -> Result<RequestCounts, String> {
        let mut out = BTreeMap::new();
        for (k, &v) in &self.0 {
            let b = before.0.get(k).copied().unwrap_or(0);
            if v < b {
                return Err(format!(
                    "counter {k} went from {b} to {v}: the API server restarted"
                ));
            }
            if v > b {
                out.insert(k.clone(), v - b);
            }
        }
        if let Some(k) = before.0.keys().find(|k| !self.0.contains_key(*k)) {
            return Err(format!("series {k} disappeared: the API server restarted"));
        }
        Ok(RequestCounts(out))
    }

    pub fn filter(&self, keep: impl Fn(&RequestKey) -> bool) -> RequestCounts {
        RequestCounts(
            self.0
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        )
    }

    pub fn writes(&self) -> RequestCounts {
        self.filter(RequestKey::is_write)
    }

    pub fn reads(&self) -> RequestCounts {
        self.filter(|k| !k.is_write())
    }

    /// Writes not explained by the cluster's own components (see the module documentation).
    pub fn foreground_writes(&self) -> RequestCounts {
        self.filter(|k| k.is_write() && !is_background_write(k))
    }

    pub fn background_writes(&self) -> RequestCounts {
        self.filter(|k| k.is_write() && is_background_write(k))
    }

    /// Lease writes (any verb), for comparing clusters that run the same components.
    pub fn lease_writes(&self) -> u64 {
        self.filter(|k| k.is_write() && k.resource == "leases")
            .total()
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Sum by verb.
    pub fn by_verb(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            *out.entry(k.verb.clone()).or_insert(0) += v;
        }
        out
    }

    /// Sum by verb and resource (codes merged), e.g. `PUT leases.coordination.k8s.io`.
    pub fn by_verb_and_resource(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.0 {
            *out.entry(format!("{} {}", k.verb, k.resource_name()))
                .or_insert(0) += v;
        }
        out
    }

    /// The count of one verb on one resource (`group` empty for the core group), all codes.
    pub fn count(&self, verb: &str, group: &str, resource: &str, subresource: &str) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                k.verb == verb
                    && k.group == group
                    && k.resource == resource
                    && k.subresource == subresource
            })
            .map(|(_, v)| v)
            .sum()
    }
}

impl fmt::Display for RequestCounts {
    /// `PUT leases.coordination.k8s.io=330, PATCH nodes/status=42`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .by_verb_and_resource()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Parses `a="x",b="y\"z"} 12` into the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim().to_string();
        let mut chars = rest[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("label {name}: value not quoted"));
        }
        let mut value = String::new();
        let mut end = None;
        let mut escaped = false;
        for (i, c) in chars {
            match (escaped, c) {
                (true, 'n') => {
                    value.push('\n');
                    escaped = false
                }
                (true, c) => {
                    value.push(c);
                    escaped = false
                }
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(eq + 1 + i + 1);
                    break;
                }
                (false, c) => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("label {name}: unterminated value"))?;
        labels.insert(name, value);
        rest = &rest[end..];
    }
}
