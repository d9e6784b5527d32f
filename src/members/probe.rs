//! One health probe of a member's API server: `/readyz`, then the nodes, then (now and then)
//! `/version`; failures classified into [`ProbeFailure`].
//!
//! Every request runs under the probe deadline twice over: the client's own connect/read
//! timeouts, and a `tokio::time::timeout` around the call, so that a frozen API server (TCP
//! accepted, nothing answered) costs one deadline and never hangs the member's probe loop.
//! Nodes are listed in pages and folded into a [`NodeTally`] as they arrive: no node is kept.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::{Client, Error as KubeError};

use super::detect::{NodeFacts, NodeTally};
use super::providers::ProviderError;
use crate::health::{Probe, ProbeFailure};

/// Nodes per list page: large enough that a 5,000-node cluster takes ten requests.
const NODE_PAGE: u32 = 500;

/// What one probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeReport {
    pub outcome: Probe,
    /// The nodes, when they could be listed (also when none is Ready).
    pub nodes: Option<NodeFacts>,
    /// `/version`'s `gitVersion`, when it was asked for and answered.
    pub version: Option<String>,
    /// Time taken by `/readyz` and the node list.
    pub latency: Duration,
}

/// Probes a member: `/readyz` must answer `ok`, the nodes must list and at least one must be
/// Ready. With `with_version`, `/version` is read too (its failure does not fail the probe).
/// `deadline` bounds each request.
pub async fn probe(client: &Client, deadline: Duration, with_version: bool) -> ProbeReport {
    let start = Instant::now();
    let report = |outcome, nodes| ProbeReport {
        outcome,
        nodes,
        version: None,
        latency: start.elapsed(),
    };
    if let Err(f) = within(deadline, readyz(client)).await {
        return report(Probe::Failure(f), None);
    }
    let facts = match list_nodes(client, deadline).await {
        Ok(facts) => facts,
        Err(f) => return report(Probe::Failure(f), None),
    };
    let outcome = if facts.ready == 0 {
        Probe::Failure(ProbeFailure::NoReadyNodes)
    } else {
        Probe::Success
    };
    let mut r = report(outcome, Some(facts));
    if with_version {
        match within(deadline, client.apiserver_version()).await {
            Ok(info) => r.version = Some(info.git_version),
            Err(f) => tracing::debug!(reason = f.reason(), "member /version failed"),
        }
    }
    r
}

/// `GET /readyz`: 200 is ready; anything else is classified.
async fn readyz(client: &Client) -> Result<String, KubeError> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .expect("a static request is valid");
    client.request_text(request).await
}

/// Lists every node, page by page, into a tally.
async fn list_nodes(client: &Client, deadline: Duration) -> Result<NodeFacts, ProbeFailure> {
    let api = Api::<Node>::all(client.clone());
    let mut tally = NodeTally::default();
    let mut params = ListParams::default().limit(NODE_PAGE);
    loop {
        let page = within(deadline, api.list(&params)).await?;
        page.items.iter().for_each(|n| tally.add(n));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(tally.facts()),
        }
    }
}

/// Runs one request under the deadline; a late or failed answer is classified.
async fn within<T>(
    deadline: Duration,
    call: impl Future<Output = Result<T, KubeError>>,
) -> Result<T, ProbeFailure> {
    match tokio::time::timeout(deadline, call).await {
        Err(_elapsed) => Err(ProbeFailure::Timeout),
        Ok(result) => result.map_err(|e| classify(&e)),
    }
}

/// Why a request failed, as a probe failure. The messages are short, stable from one probe to
/// the next (so that status is not rewritten for nothing) and never contain credentials.
pub fn classify(error: &KubeError) -> ProbeFailure {
    match error {
        KubeError::Api(status) => classify_status(status.code, &status.reason, &status.message),
        // Exec plugins and token files: the client could not get credentials. Their output may
        // contain anything, so it is not repeated.
        KubeError::Auth(_) => {
            ProbeFailure::Unauthorized("the client could not obtain credentials".into())
        }
        KubeError::SerdeError(_) | KubeError::FromUtf8(_) => {
            ProbeFailure::NotReady("the API server sent an unexpected response".into())
        }
        other => classify_transport(other),
    }
}

/// An HTTP error status from the API server.
fn classify_status(code: u16, reason: &str, message: &str) -> ProbeFailure {
    match code {
        401 => {
            ProbeFailure::Unauthorized("401 Unauthorized: the credentials were not accepted".into())
        }
        403 => ProbeFailure::Unauthorized(format!("403 Forbidden: {}", short(message))),
        _ => {
            // /readyz lists its checks, `[-]etcd failed: reason withheld` for each failing one.
            let failed: Vec<&str> = message
                .lines()
                .filter_map(|l| l.trim().strip_prefix("[-]"))
                .map(|l| {
                    let check = l.split(':').next().unwrap_or(l).trim();
                    check.strip_suffix(" failed").unwrap_or(check)
                })
                .collect();
            if !failed.is_empty() {
                ProbeFailure::NotReady(format!("failing checks: {}", failed.join(", ")))
            } else if reason.is_empty() || reason == "Failed to parse error data" {
                ProbeFailure::NotReady(format!("{code}: {}", short(message)))
            } else {
                ProbeFailure::NotReady(format!("{code} {reason}: {}", short(message)))
            }
        }
    }
}

/// A failure below HTTP: no connection, a reset, a TLS failure, a client-side timeout.
fn classify_transport(error: &(dyn StdError + 'static)) -> ProbeFailure {
    let mut innermost = error;
    let mut current = Some(error);
    while let Some(e) = current {
        // An `eks`/`gke` member whose token could not be refreshed: the provider's reason.
        if let Some(p) = e.downcast_ref::<ProviderError>() {
            return ProbeFailure::Provider(p.reason(), p.message.clone());
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::TimedOut => return ProbeFailure::Timeout,
                io::ErrorKind::ConnectionRefused => {
                    return ProbeFailure::Refused("connection refused".into());
                }
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::NotConnected
                | io::ErrorKind::UnexpectedEof => {
                    return ProbeFailure::Refused("connection closed by the server".into());
                }
                io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::AddrNotAvailable => {
                    return ProbeFailure::Unreachable("no route to the server".into());
                }
                _ => {}
            }
        }
        innermost = e;
        current = e.source();
    }
    let text = innermost.to_string();
    let lower = text.to_lowercase();
    if lower.contains("timed out") || lower.contains("deadline has elapsed") {
        ProbeFailure::Timeout
    } else if ["tls", "certificate", "handshake"]
        .iter()
        .any(|w| lower.contains(w))
    {
        ProbeFailure::Unreachable(format!("TLS failed: {}", short(&text)))
    } else {
        ProbeFailure::Unreachable(short(&text))
    }
}

/// The first line of a message, at most 200 characters.
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str, reason: &str) -> KubeError {
        KubeError::Api(Status::failure(message, reason).with_code(code).boxed())
    }

    /// An error chain like hyper's: a wrapper whose source is an I/O error.
    #[derive(Debug)]
    struct Wrapped(io::Error);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn transport(kind: io::ErrorKind) -> KubeError {
        KubeError::Service(Box::new(Wrapped(io::Error::new(kind, "os error"))))
    }

    #[test]
    fn readyz_failures_name_the_failing_checks() {
        let body = "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[-]informer-sync failed: reason withheld\nreadyz check failed";
        let f = classify(&api(500, body, "Failed to parse error data"));
        assert_eq!(
            f,
            ProbeFailure::NotReady("failing checks: etcd, informer-sync".into())
        );
        assert_eq!(f.reason(), "APIServerNotReady");
        assert_eq!(
            classify(&api(429, "too many requests", "TooManyRequests")),
            ProbeFailure::NotReady("429 TooManyRequests: too many requests".into())
        );
    }

    #[test]
    fn refused_credentials_are_unauthorized() {
        assert_eq!(
            classify(&api(401, "Unauthorized", "Unauthorized")).reason(),
            "Unauthorized"
        );
        let f = classify(&api(
            403,
            "nodes is forbidden: User \"bascule\" cannot list resource \"nodes\"",
            "Forbidden",
        ));
        assert_eq!(f.reason(), "Unauthorized");
        assert!(
            f.message().contains("cannot list resource"),
            "{}",
            f.message()
        );
    }

    #[test]
    fn transport_errors_by_kind() {
        use io::ErrorKind::*;
        assert_eq!(classify(&transport(TimedOut)), ProbeFailure::Timeout);
        assert_eq!(
            classify(&transport(ConnectionRefused)),
            ProbeFailure::Refused("connection refused".into())
        );
        assert_eq!(
            classify(&transport(ConnectionReset)),
            ProbeFailure::Refused("connection closed by the server".into())
        );
        assert_eq!(
            classify(&transport(HostUnreachable)).reason(),
            "Unreachable"
        );
        // Anything else: unreachable, with the innermost message (stable, no credentials).
        assert_eq!(
            classify(&transport(Other)),
            ProbeFailure::Unreachable("os error".into())
        );
    }

    #[tokio::test]
    async fn a_late_answer_is_a_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, KubeError>(())
        };
        let t = Instant::now();
        assert_eq!(
            within(Duration::from_millis(50), slow).await,
            Err(ProbeFailure::Timeout)
        );
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn long_messages_are_cut_to_one_short_line() {
        let long = "x".repeat(500) + "\nsecond line";
        let s = short(&long);
        assert_eq!(s.chars().count(), 201);
        assert!(!s.contains("second"));
    }
}
