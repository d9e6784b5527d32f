//! Counts the requests sent to each member, by verb, for `bascule_member_requests_total`: what a
//! failover or a fleet costs the members is measured, not guessed (docs/benchmarks.md).

use std::task::{Context, Poll};

use http::{Method, Request};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The MemberCluster's name.
    pub cluster: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete` or `other`.
    pub verb: &'static str,
}

/// Every member request counted, shared by all member clients.
pub type RequestCounts = Family<RequestLabels, Counter>;

/// The Kubernetes verb of a request, from its method and path alone. Non-resource paths
/// (`/readyz`, `/version`) count as `get`.
pub fn verb_of(method: &Method, path: &str, query: Option<&str>) -> &'static str {
    match *method {
        Method::GET => {
            let watching = query.is_some_and(|q| {
                q.split('&')
                    .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
            });
            if watching {
                "watch"
            } else if names_one_object(path) {
                "get"
            } else {
                "list"
            }
        }
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

/// `/api/v1/namespaces/ns/configmaps/name` names one object; `/api/v1/namespaces/ns/configmaps`
/// and `/api/v1/nodes` name a collection; `/readyz` is not a resource path (one "object").
fn names_one_object(path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return true,
    };
    match rest {
        // namespaces/NS/RESOURCE[/NAME[/SUBRESOURCE]] or namespaces[/NAME]
        ["namespaces", _ns, _resource, more @ ..] => !more.is_empty(),
        [_resource, more @ ..] => !more.is_empty(),
        [] => false,
    }
}

/// Tower layer: counts each request as it is sent.
#[derive(Clone)]
pub struct CountLayer {
    counts: RequestCounts,
    cluster: String,
}

impl CountLayer {
    pub fn new(counts: RequestCounts, cluster: &str) -> CountLayer {
        CountLayer {
            counts,
            cluster: cluster.to_string(),
        }
    }
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            counts: self.counts.clone(),
            cluster: self.cluster.clone(),
            counters: Vec::new(),
        }
    }
}

/// The service [`CountLayer`] makes.
pub struct Count<S> {
    inner: S,
    counts: RequestCounts,
    cluster: String,
    /// This cluster's counter per verb, looked up once (a request then costs an increment).
    counters: Vec<(&'static str, Counter)>,
}

impl<S, B> Service<Request<B>> for Count<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        let verb = verb_of(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        match self.counters.iter().find(|(v, _)| *v == verb) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = self
                    .counts
                    .get_or_create(&RequestLabels {
                        cluster: self.cluster.clone(),
                        verb,
                    })
                    .clone();
                counter.inc();
                self.counters.push((verb, counter));
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_from_method_and_path() {
        let cases = [
            (Method::GET, "/readyz", None, "get"),
            (Method::GET, "/version", None, "get"),
            (Method::GET, "/api/v1/nodes", Some("limit=500"), "list"),
            (Method::GET, "/api/v1/nodes/n1", None, "get"),
            (Method::GET, "/api/v1/namespaces", None, "list"),
            (Method::GET, "/api/v1/namespaces/shop", None, "get"),
            (
                Method::GET,
                "/api/v1/namespaces/shop/configmaps",
                None,
                "list",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments",
                Some("labelSelector=a&watch=true&resourceVersion=5"),
                "watch",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/checkout",
                None,
                "get",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/shop/deployments/checkout/status",
                None,
                "get",
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/shop/deployments/checkout",
                Some("fieldManager=bascule&force=true"),
                "patch",
            ),
            (Method::POST, "/api/v1/namespaces", None, "create"),
            (
                Method::DELETE,
                "/api/v1/namespaces/shop/services/x",
                None,
                "delete",
            ),
            (Method::PUT, "/api/v1/namespaces/shop", None, "update"),
            (Method::HEAD, "/readyz", None, "other"),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                verb_of(&method, path, query),
                want,
                "{method} {path} {query:?}"
            );
        }
    }

    #[test]
    fn the_layer_counts_per_cluster_and_verb() {
        let counts = RequestCounts::default();
        let layer = CountLayer::new(counts.clone(), "eks-use1");
        let mut svc = layer.layer(tower::service_fn(|_: Request<()>| async {
            Ok::<_, std::convert::Infallible>(())
        }));
        for uri in ["/api/v1/nodes", "/api/v1/nodes", "/readyz"] {
            drop(svc.call(Request::get(uri).body(()).unwrap()));
        }
        let get = |verb| {
            counts
                .get_or_create(&RequestLabels {
                    cluster: "eks-use1".into(),
                    verb,
                })
                .get()
        };
        assert_eq!((get("list"), get("get"), get("patch")), (2, 1, 0));
    }
}
