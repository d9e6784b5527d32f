//! From a MemberCluster's kubeconfig Secret to a `kube::Config` with Bascule's timeouts.
//!
//! A kubeconfig in a Secret is input from whoever can write Secrets in the operator's namespace,
//! so anything in it that would act inside the operator's pod is refused: exec plugins and auth
//! providers (they run programs) unless the operator allows exec plugins explicitly, and file
//! references (a `tokenFile` pointing at the operator's own service-account token would hand that
//! token to any server the kubeconfig names).

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::providers::{self, BearerLayer, ProviderError, Providers, TokenCache};
use super::requests::{CountLayer, RequestCounts};
use crate::api::{Connection, SecretKeyRef};

/// Timeouts and permissions for member connections.
#[derive(Clone, Debug)]
pub struct ConnectionOptions {
    pub allow_exec_plugins: bool,
    /// Accept member kubeconfigs that skip TLS verification, use a plain `http://` server or a
    /// proxy: each lets whoever sits on the path read the member's credentials.
    pub allow_insecure_connections: bool,
    pub connect_timeout: Duration,
    /// Deadline of one response; watches are protected by the watcher's own idle timeout.
    pub read_timeout: Duration,
    /// Requests per second to one member, at most.
    pub requests_per_second: u64,
    /// AWS and Google settings for `eks` and `gke` connections.
    pub providers: Providers,
    /// Where each member client counts its requests (`bascule_member_requests_total`).
    pub request_counts: RequestCounts,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            allow_exec_plugins: false,
            allow_insecure_connections: false,
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(10),
            requests_per_second: 500,
            providers: Providers::default(),
            request_counts: RequestCounts::default(),
        }
    }
}

/// Why a member cannot be connected to; `reason()` is the MemberCluster condition reason. No
/// message ever contains credential material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionError {
    #[error("Secret {namespace}/{name} not found; create it with the member's kubeconfig")]
    SecretNotFound { namespace: String, name: String },
    #[error(
        "Secret {namespace}/{name} has no key {key:?}; set spec.connection.kubeconfigSecretRef.key to the key that holds the kubeconfig"
    )]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("the kubeconfig in Secret {secret} is not valid: {problem}")]
    Invalid { secret: String, problem: String },
    #[error(
        "the kubeconfig in Secret {secret} uses an {what} for user {user:?}; exec plugins are refused unless the operator runs with --allow-exec-plugins"
    )]
    ExecRefused {
        secret: String,
        user: String,
        what: &'static str,
    },
    #[error(
        "the kubeconfig in Secret {secret} refers to the file {field} for {owner:?}; files are refused, embed the data instead ({field}-data / token)"
    )]
    FileRefused {
        secret: String,
        owner: String,
        field: &'static str,
    },
    #[error(
        "the kubeconfig in Secret {secret} sets {field} for cluster {cluster:?}: {why}; fix the kubeconfig, or run the operator with --allow-insecure-member-connections"
    )]
    InsecureRefused {
        secret: String,
        cluster: String,
        field: &'static str,
        why: &'static str,
    },
    #[error(
        "spec.connection sets no connection method; set spec.connection.kubeconfigSecretRef, eks or gke"
    )]
    NoMethod,
    /// An `eks` or `gke` connection failed at the provider (credentials, permissions, the
    /// cluster): the reason is the provider error's kind.
    #[error("{0}")]
    Provider(#[from] ProviderError),
}

impl ConnectionError {
    pub fn reason(&self) -> &'static str {
        match self {
            ConnectionError::SecretNotFound { .. } => "KubeconfigSecretNotFound",
            ConnectionError::KeyMissing { .. } => "KubeconfigKeyMissing",
            ConnectionError::Invalid { .. } => "KubeconfigInvalid",
            ConnectionError::ExecRefused { .. } => "ExecPluginRefused",
            ConnectionError::FileRefused { .. } => "KubeconfigFileRefused",
            ConnectionError::InsecureRefused { .. } => "InsecureConnectionRefused",
            ConnectionError::NoMethod => "NoConnectionMethod",
            ConnectionError::Provider(e) => e.reason(),
        }
    }

    /// Whether trying again later may succeed without anyone changing the MemberCluster or its
    /// Secret: provider errors (IAM changes propagate, clusters finish creating, networks
    /// recover). A broken Secret is picked up when the Secret changes.
    pub fn retryable(&self) -> bool {
        matches!(self, ConnectionError::Provider(_))
    }
}

/// A client for a member by its `spec.connection`: a kubeconfig Secret (see [`connect`]), or
/// the operator's own AWS or Google identity.
pub async fn connect_member(
    cluster: &str,
    connection: &Connection,
    secret: Option<&Secret>,
    namespace: &str,
    opts: &ConnectionOptions,
) -> Result<MemberClients, ConnectionError> {
    if let Some(eks) = &connection.eks {
        let base = opts.providers.aws().await;
        let endpoint = providers::eks::resolve(base, eks).await?;
        let label = format!("EKS cluster {} in {}", eks.cluster_name, eks.region);
        return with_token(endpoint, &label, cluster, opts).await;
    }
    if let Some(gke) = &connection.gke {
        let credentials = opts.providers.google().await?;
        let endpoint =
            providers::gke::resolve(&credentials, opts.providers.gke_api_url(), gke).await?;
        let label = format!(
            "GKE cluster {} in {}/{}",
            gke.cluster, gke.project, gke.location
        );
        return with_token(endpoint, &label, cluster, opts).await;
    }
    connect(
        cluster,
        connection.kubeconfig_secret_ref.as_ref(),
        secret,
        namespace,
        opts,
    )
    .await
}

/// A client for `server` (trusting the base64 PEM bundle `ca_data`) whose requests carry the
/// token source's current token, refreshed before expiry without rebuilding the client.
async fn with_token(
    endpoint: providers::Endpoint,
    label: &str,
    cluster: &str,
    opts: &ConnectionOptions,
) -> Result<MemberClients, ConnectionError> {
    let providers::Endpoint {
        server,
        ca_data,
        tokens,
    } = endpoint;
    let invalid = |problem: String| ConnectionError::Invalid {
        secret: label.to_string(),
        problem,
    };
    // The first token now: it proves the credentials work before the client is handed out.
    let first = tokens.fetch().await?;
    // Built as data, so nothing the provider returned can change the structure.
    let kubeconfig: Kubeconfig = serde_json::from_value(serde_json::json!({
        "clusters": [{"name": "member", "cluster": {
            "server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": "member", "user": {}}],
        "contexts": [{"name": "member", "context": {"cluster": "member", "user": "member"}}],
        "current-context": "member",
    }))
    .map_err(|e| invalid(format!("the provider's endpoint is unusable: {e}")))?;
    let config = config(kubeconfig, label, opts).await?;
    let bearer = BearerLayer::new(TokenCache::new(tokens, Some(first)));
    clients(config, cluster, opts, Some(&bearer)).map_err(|e| {
        invalid(format!(
            "the provider's endpoint or CA is unusable: {}",
            redact(&e.to_string())
        ))
    })
}

/// A member's two clients: one for placing workloads, one for probing it.
#[derive(Clone)]
pub struct MemberClients {
    /// Applies, deletes, lists and watches, at most `requests_per_second`.
    pub workloads: kube::Client,
    /// Probes, on a budget of their own: a burst of workload traffic queued behind the rate
    /// limit can never make a healthy member miss its probe deadline.
    pub probes: kube::Client,
}

/// Requests per second the probe client allows: a probe is two or three requests, quick
/// re-probes come 0.25 s apart at the closest.
const PROBE_REQUESTS_PER_SECOND: u64 = 20;

/// Both clients of a member from one configuration, counted and rate-limited separately.
fn clients(
    config: kube::Config,
    cluster: &str,
    opts: &ConnectionOptions,
    bearer: Option<&BearerLayer>,
) -> Result<MemberClients, kube::Error> {
    let count = CountLayer::new(opts.request_counts.clone(), cluster);
    let build = |config: kube::Config, rate: u64| -> Result<kube::Client, kube::Error> {
        // Requests beyond the rate wait their turn (a watch counts once, when it starts).
        let limit = tower::limit::RateLimitLayer::new(rate.max(1), Duration::from_secs(1));
        let builder = kube::client::ClientBuilder::try_from(config)?
            .with_layer(&count)
            .with_layer(&limit);
        Ok(match bearer {
            Some(b) => builder.with_layer(b).build(),
            None => builder.build(),
        })
    };
    Ok(MemberClients {
        workloads: build(config.clone(), opts.requests_per_second)?,
        probes: build(config, PROBE_REQUESTS_PER_SECOND)?,
    })
}

/// A client for a member: the kubeconfig Secret that `reference` names (looked up by the caller,
/// `None` if it does not exist in `namespace`), vetted, with Bascule's timeouts.
pub async fn connect(
    cluster: &str,
    reference: Option<&SecretKeyRef>,
    secret: Option<&Secret>,
    namespace: &str,
    opts: &ConnectionOptions,
) -> Result<MemberClients, ConnectionError> {
    let reference = reference.ok_or(ConnectionError::NoMethod)?;
    let label = format!("{namespace}/{}", reference.name);
    let secret = secret.ok_or_else(|| ConnectionError::SecretNotFound {
        namespace: namespace.to_string(),
        name: reference.name.clone(),
    })?;
    let kubeconfig = kubeconfig_from_secret(secret, &reference.key, opts)?;
    let config = config(kubeconfig, &label, opts).await?;
    clients(config, cluster, opts, None).map_err(|e| ConnectionError::Invalid {
        secret: label,
        problem: redact(&e.to_string()),
    })
}

/// Reads and vets the kubeconfig stored in `secret` under `key`.
pub fn kubeconfig_from_secret(
    secret: &Secret,
    key: &str,
    opts: &ConnectionOptions,
) -> Result<Kubeconfig, ConnectionError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    let label = format!("{namespace}/{name}");
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| ConnectionError::KeyMissing {
            namespace: namespace.clone(),
            name: name.clone(),
            key: key.to_string(),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| ConnectionError::Invalid {
        secret: label.clone(),
        problem: "not UTF-8 text".into(),
    })?;
    // The parser's own message may quote the input (a token), so only its position is reported.
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|_| ConnectionError::Invalid {
        secret: label.clone(),
        problem: "not a kubeconfig (YAML with clusters, users and contexts)".into(),
    })?;
    vet(&kubeconfig, &label, opts)?;
    Ok(kubeconfig)
}

fn vet(k: &Kubeconfig, secret: &str, opts: &ConnectionOptions) -> Result<(), ConnectionError> {
    let file = |owner: &str, field: &'static str| ConnectionError::FileRefused {
        secret: secret.to_string(),
        owner: owner.to_string(),
        field,
    };
    if k.clusters.is_empty() || k.auth_infos.is_empty() {
        return Err(ConnectionError::Invalid {
            secret: secret.into(),
            problem: "it has no cluster or no user".into(),
        });
    }
    for c in &k.clusters {
        if c.cluster
            .as_ref()
            .is_some_and(|c| c.certificate_authority.is_some())
        {
            return Err(file(&c.name, "certificate-authority"));
        }
        if let Some(cluster) = &c.cluster
            && !opts.allow_insecure_connections
            && let Some((field, why)) = insecure(cluster)
        {
            return Err(ConnectionError::InsecureRefused {
                secret: secret.into(),
                cluster: c.name.clone(),
                field,
                why,
            });
        }
    }
    for u in &k.auth_infos {
        let Some(a) = &u.auth_info else { continue };
        if a.exec.is_some() && !opts.allow_exec_plugins {
            return Err(ConnectionError::ExecRefused {
                secret: secret.into(),
                user: u.name.clone(),
                what: "exec plugin",
            });
        }
        if a.auth_provider.is_some() && !opts.allow_exec_plugins {
            return Err(ConnectionError::ExecRefused {
                secret: secret.into(),
                user: u.name.clone(),
                what: "auth provider",
            });
        }
        if a.token_file.is_some() {
            return Err(file(&u.name, "tokenFile"));
        }
        if a.client_certificate.is_some() {
            return Err(file(&u.name, "client-certificate"));
        }
        if a.client_key.is_some() {
            return Err(file(&u.name, "client-key"));
        }
    }
    Ok(())
}

/// The first setting of `cluster` that gives its traffic (credentials included) away to whoever
/// sits on the network path, and why.
fn insecure(cluster: &kube::config::Cluster) -> Option<(&'static str, &'static str)> {
    if cluster.insecure_skip_tls_verify == Some(true) {
        return Some((
            "insecure-skip-tls-verify: true",
            "the member's certificate would not be verified",
        ));
    }
    if cluster
        .server
        .as_deref()
        .is_some_and(|s| s.trim_start().to_ascii_lowercase().starts_with("http://"))
    {
        return Some((
            "an http:// server",
            "the member's API and its credentials would travel unencrypted",
        ));
    }
    if cluster.proxy_url.is_some() {
        return Some((
            "proxy-url",
            "every request and its credentials would go through that proxy",
        ));
    }
    None
}

/// A client configuration for the kubeconfig's current context, with Bascule's timeouts.
pub async fn config(
    kubeconfig: Kubeconfig,
    secret: &str,
    opts: &ConnectionOptions,
) -> Result<kube::Config, ConnectionError> {
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| ConnectionError::Invalid {
                secret: secret.into(),
                problem: redact(&e.to_string()),
            })?;
    config.connect_timeout = Some(opts.connect_timeout);
    config.read_timeout = Some(opts.read_timeout);
    config.write_timeout = Some(opts.read_timeout);
    config.reset_reader_on_write = true;
    Ok(config)
}

/// kube's kubeconfig errors name contexts and files, not secrets; cut anything long that could be
/// data rather than a name, to be safe.
fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| if w.len() > 48 { "[redacted]" } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiIsImtpZCI6InNlY3JldC10b2tlbi12YWx1ZSJ9";

    fn kubeconfig(user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: m\nclusters:\n- name: m\n  cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: m\n  context: {{cluster: m, user: u}}\nusers:\n- name: u\n  user:\n{user}"
        )
    }

    fn secret(text: &str) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some("bascule-system".into());
        s.metadata.name = Some("member-eks".into());
        s.data = Some(
            [(
                "kubeconfig".to_string(),
                ByteString(text.as_bytes().to_vec()),
            )]
            .into(),
        );
        s
    }

    #[tokio::test]
    async fn a_token_kubeconfig_becomes_a_config_with_timeouts() {
        let opts = ConnectionOptions::default();
        let k = kubeconfig_from_secret(
            &secret(&kubeconfig(&format!("    token: {TOKEN}\n"))),
            "kubeconfig",
            &opts,
        )
        .unwrap();
        let c = config(k, "bascule-system/member-eks", &opts).await.unwrap();
        assert_eq!(c.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(c.connect_timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.read_timeout, Some(Duration::from_secs(10)));
    }

    #[test]
    fn insecure_connections_are_refused_unless_allowed() {
        let token = format!("    token: {TOKEN}\n");
        let cases = [
            (
                "    server: https://127.0.0.1:6443\n",
                "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n",
                "insecure-skip-tls-verify",
            ),
            (
                "    server: https://127.0.0.1:6443\n",
                "    server: http://127.0.0.1:6443\n",
                "http://",
            ),
            (
                "    server: https://127.0.0.1:6443\n",
                "    server: https://127.0.0.1:6443\n    proxy-url: http://proxy.example:3128\n",
                "proxy-url",
            ),
        ];
        for (from, to, field) in cases {
            let s = secret(&kubeconfig(&token).replace(from, to));
            let e = kubeconfig_from_secret(&s, "kubeconfig", &ConnectionOptions::default())
                .unwrap_err();
            assert_eq!(e.reason(), "InsecureConnectionRefused", "{field}");
            let message = e.to_string();
            assert!(message.contains(field), "{message}");
            assert!(
                message.contains("--allow-insecure-member-connections"),
                "{message}"
            );
            assert!(!message.contains(TOKEN), "no credential in {message}");
            let allowed = ConnectionOptions {
                allow_insecure_connections: true,
                ..Default::default()
            };
            assert!(
                kubeconfig_from_secret(&s, "kubeconfig", &allowed).is_ok(),
                "{field}"
            );
        }
        let fine = secret(&kubeconfig(&token));
        assert!(kubeconfig_from_secret(&fine, "kubeconfig", &ConnectionOptions::default()).is_ok());
    }

    #[test]
    fn exec_plugins_are_refused_unless_allowed() {
        let exec = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      args: [eks, get-token]\n";
        let s = secret(&kubeconfig(exec));
        let e =
            kubeconfig_from_secret(&s, "kubeconfig", &ConnectionOptions::default()).unwrap_err();
        assert_eq!(e.reason(), "ExecPluginRefused");
        assert!(e.to_string().contains("--allow-exec-plugins"), "{e}");
        let allowed = ConnectionOptions {
            allow_exec_plugins: true,
            ..Default::default()
        };
        assert!(kubeconfig_from_secret(&s, "kubeconfig", &allowed).is_ok());
    }

    #[test]
    fn file_references_are_refused() {
        let e = kubeconfig_from_secret(
            &secret(&kubeconfig(
                "    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
            )),
            "kubeconfig",
            &ConnectionOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "KubeconfigFileRefused");
    }

    #[test]
    fn errors_never_contain_the_credential() {
        let opts = ConnectionOptions::default();
        let broken = format!("users: [{{name: u, user: {{token: {TOKEN}}}}}\nclusters: 7\n");
        for e in [
            kubeconfig_from_secret(&secret(&broken), "kubeconfig", &opts).unwrap_err(),
            kubeconfig_from_secret(&secret(&format!("token: {TOKEN}")), "kubeconfig", &opts)
                .unwrap_err(),
            kubeconfig_from_secret(&secret("x"), "other-key", &opts).unwrap_err(),
        ] {
            assert!(!e.to_string().contains(&TOKEN[..20]), "{e}");
            assert!(e.to_string().contains("bascule-system"), "{e}");
        }
    }
}
