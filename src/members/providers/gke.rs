//! Google GKE: a member reached with the operator's Google identity.
//!
//! The endpoint and CA come from the GKE API (`projects.locations.clusters.get`); requests to the
//! member carry a Google OAuth access token (scope `cloud-platform`) for the operator's identity,
//! which GKE maps to a Kubernetes user (the service account's email) for RBAC.
//!
//! Credentials are Application Default Credentials:
//! - a service-account key (`GOOGLE_APPLICATION_CREDENTIALS`, `"type": "service_account"`): a JWT
//!   signed with the key is exchanged for an access token at the key's `token_uri` (the OAuth 2.0
//!   JWT-bearer grant, RFC 7523). Done here because google-cloud-auth turns service-account keys
//!   into self-signed JWTs, which Google APIs accept but which are not OAuth access tokens;
//! - anything else (the metadata server / GKE Workload Identity, `external_account` workload
//!   identity federation — including from AWS —, `authorized_user`, impersonation): the
//!   google-cloud-auth crate, which caches and refreshes its tokens itself.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures::future::BoxFuture;
use google_cloud_auth::credentials::{AccessTokenCredentials, Builder};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::{Endpoint, ProviderError, ProviderErrorKind, Token, TokenSource};
use crate::api::GkeConnection;

/// Google's GKE API; `bascule run --gke-api-url` replaces it (private endpoints, tests).
pub const GKE_API_URL: &str = "https://container.googleapis.com/";
/// The scope GKE requires of access tokens.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long a service-account JWT assertion is valid (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3600;
/// google-cloud-auth does not say when its tokens expire; it refreshes them itself, so the
/// cache asks it again this often (a cheap call that returns its cached token).
const LIBRARY_TOKEN_RECHECK: SignedDuration = SignedDuration::from_secs(60);

/// The operator's Google credentials, loaded once.
#[derive(Clone)]
pub struct GoogleCredentials {
    source: Arc<dyn TokenSource>,
    http: reqwest::Client,
}

impl std::fmt::Debug for GoogleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GoogleCredentials")
    }
}

impl GoogleCredentials {
    /// Application Default Credentials from the operator's environment.
    pub async fn from_environment() -> Result<GoogleCredentials, ProviderError> {
        // reqwest (here and inside google-cloud-auth) uses the process's default rustls provider;
        // the operator's TLS is ring throughout. Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| unavailable(format!("no HTTP client: {e}")))?;
        let source: Arc<dyn TokenSource> = match service_account_key()? {
            Some(key) => Arc::new(ServiceAccount {
                key,
                http: http.clone(),
            }),
            None => {
                let credentials = Builder::default()
                    .with_scopes([SCOPE])
                    .build_access_token_credentials()
                    .map_err(|e| {
                        ProviderError::new(
                            ProviderErrorKind::CredentialsMissing,
                            format!(
                                "Google Application Default Credentials are unusable: {e}; see docs/providers.md"
                            ),
                        )
                    })?;
                Arc::new(Library(credentials))
            }
        };
        Ok(GoogleCredentials { source, http })
    }

    /// For tests: credentials from a service-account key's JSON.
    pub fn from_service_account_json(json: &str) -> Result<GoogleCredentials, ProviderError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = serde_json::from_str(json).map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::CredentialsMissing,
                format!("not a service-account key: {e}"),
            )
        })?;
        let http = reqwest::Client::new();
        Ok(GoogleCredentials {
            source: Arc::new(ServiceAccount {
                key,
                http: http.clone(),
            }),
            http,
        })
    }

    pub fn tokens(&self) -> Arc<dyn TokenSource> {
        self.source.clone()
    }
}

/// Describes the cluster with the operator's credentials (which also proves they work).
pub async fn resolve(
    credentials: &GoogleCredentials,
    api_url: &str,
    spec: &GkeConnection,
) -> Result<Endpoint, ProviderError> {
    let token = credentials.source.fetch().await?;
    let url = format!(
        "{}/v1/projects/{}/locations/{}/clusters/{}",
        api_url.trim_end_matches('/'),
        spec.project,
        spec.location,
        spec.cluster
    );
    let what = format!(
        "GKE cluster {} in {}/{}",
        spec.cluster, spec.project, spec.location
    );
    let response = credentials
        .http
        .get(&url)
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| unavailable(format!("the GKE API did not answer for {what}: {e}")))?;
    let status = response.status().as_u16();
    let body = response
        .text()
        .await
        .map_err(|e| unavailable(format!("the GKE API's answer for {what} was cut: {e}")))?;
    if status != 200 {
        return Err(classify_api_error(status, &body, &what));
    }
    let cluster: Cluster = serde_json::from_str(&body).map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::ProviderError,
            format!("the GKE API's answer for {what} is not a cluster: {e}"),
        )
    })?;
    endpoint_of(cluster, &what, credentials.source.clone())
}

/// The parts of a GKE `Cluster` Bascule needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cluster {
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    master_auth: MasterAuth,
    #[serde(default)]
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct MasterAuth {
    #[serde(default)]
    cluster_ca_certificate: String,
}

fn endpoint_of(
    cluster: Cluster,
    what: &str,
    tokens: Arc<dyn TokenSource>,
) -> Result<Endpoint, ProviderError> {
    let usable = matches!(
        cluster.status.as_str(),
        "RUNNING" | "RECONCILING" | "DEGRADED"
    );
    if !usable
        || cluster.endpoint.is_empty()
        || cluster.master_auth.cluster_ca_certificate.is_empty()
    {
        return Err(ProviderError::new(
            ProviderErrorKind::ClusterNotReady,
            format!(
                "{what} has no endpoint or CA yet (status {}); Bascule retries",
                if cluster.status.is_empty() {
                    "unknown"
                } else {
                    &cluster.status
                }
            ),
        ));
    }
    // GKE gives the control plane's address without a scheme (an IP, or host:port).
    let server = if cluster.endpoint.contains("://") {
        cluster.endpoint
    } else {
        format!("https://{}", cluster.endpoint)
    };
    Ok(Endpoint {
        server,
        ca_data: cluster.master_auth.cluster_ca_certificate,
        tokens,
    })
}

/// Pure: a Google API error (HTTP status and its JSON body) → what a person can do.
pub fn classify_api_error(status: u16, body: &str, what: &str) -> ProviderError {
    #[derive(Deserialize, Default)]
    struct Wrapper {
        #[serde(default)]
        error: Detail,
    }
    #[derive(Deserialize, Default)]
    struct Detail {
        #[serde(default)]
        message: String,
        #[serde(default)]
        status: String,
    }
    let detail = serde_json::from_str::<Wrapper>(body)
        .unwrap_or_default()
        .error;
    let said = match (detail.status.is_empty(), detail.message.is_empty()) {
        (false, false) => format!("{}: {}", detail.status, detail.message),
        (true, false) => detail.message,
        _ => format!("HTTP {status}"),
    };
    let (kind, hint) = match status {
        404 => (
            ProviderErrorKind::ClusterNotFound,
            format!("{what} not found; check spec.connection.gke project, location and cluster"),
        ),
        403 => (
            ProviderErrorKind::AccessDenied,
            format!(
                "access to {what} denied; the operator's Google identity needs container.clusters.get (roles/container.clusterViewer)"
            ),
        ),
        401 => (
            ProviderErrorKind::CredentialsInvalid,
            format!("Google did not accept the operator's access token for {what}"),
        ),
        429 | 500..=599 => (
            ProviderErrorKind::ProviderUnavailable,
            format!("the GKE API failed for {what}"),
        ),
        _ => (
            ProviderErrorKind::ProviderError,
            format!("the GKE API refused the request for {what}"),
        ),
    };
    ProviderError::new(kind, format!("{hint}: {said}"))
}

fn unavailable(message: String) -> ProviderError {
    ProviderError::new(ProviderErrorKind::ProviderUnavailable, message)
}

/// The ADC file, if it is a service-account key: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
/// well-known file.
fn service_account_key() -> Result<Option<ServiceAccountKey>, ProviderError> {
    let path = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| {
                std::path::Path::new(&h).join(".config/gcloud/application_default_credentials.json")
            })
        });
    let Some(path) = path else { return Ok(None) };
    let Ok(text) = std::fs::read_to_string(&path) else {
        if std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").is_some() {
            return Err(ProviderError::new(
                ProviderErrorKind::CredentialsMissing,
                format!(
                    "GOOGLE_APPLICATION_CREDENTIALS names {}, which cannot be read",
                    path.display()
                ),
            ));
        }
        return Ok(None);
    };
    #[derive(Deserialize)]
    struct Kind {
        #[serde(rename = "type", default)]
        kind: String,
    }
    let kind = serde_json::from_str::<Kind>(&text)
        .map(|k| k.kind)
        .unwrap_or_default();
    if kind != "service_account" {
        return Ok(None);
    }
    serde_json::from_str(&text).map(Some).map_err(|e| {
        ProviderError::new(
            ProviderErrorKind::CredentialsMissing,
            format!(
                "{} is not a complete service-account key: {e}",
                path.display()
            ),
        )
    })
}

/// The fields of a service-account key file that the JWT-bearer grant needs.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "default_token_uri")]
    token_uri: String,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".to_string()
}

struct ServiceAccount {
    key: ServiceAccountKey,
    http: reqwest::Client,
}

impl TokenSource for ServiceAccount {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>> {
        Box::pin(async move {
            let now = Timestamp::now();
            let assertion = assertion(&self.key, now)?;
            let response = self
                .http
                .post(&self.key.token_uri)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await
                .map_err(|e| unavailable(format!("Google's token endpoint did not answer: {e}")))?;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            token_from_response(status, &body, &self.key.client_email, now)
        })
    }
}

/// A JWT (RS256) asserting the service account, for its token endpoint. Pure.
fn assertion(key: &ServiceAccountKey, now: Timestamp) -> Result<String, ProviderError> {
    let invalid = |what: &str| {
        ProviderError::new(
            ProviderErrorKind::CredentialsInvalid,
            format!(
                "the service-account key of {} is unusable: {what}",
                key.client_email
            ),
        )
    };
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &key.private_key_id {
        header["kid"] = kid.clone().into();
    }
    let iat = now.as_second();
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": SCOPE,
        "aud": key.token_uri,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let der: String = key
        .private_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = STANDARD
        .decode(der.trim())
        .map_err(|_| invalid("private_key is not PEM"))?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|_| invalid("private_key is not a PKCS#8 RSA key"))?;
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| invalid("signing failed"))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Pure: the token endpoint's answer → a token, or what went wrong.
fn token_from_response(
    status: u16,
    body: &str,
    account: &str,
    now: Timestamp,
) -> Result<Token, ProviderError> {
    #[derive(Deserialize)]
    struct Granted {
        access_token: String,
        #[serde(default = "default_expires_in")]
        expires_in: i64,
    }
    fn default_expires_in() -> i64 {
        3600
    }
    #[derive(Deserialize, Default)]
    struct Refused {
        #[serde(default)]
        error: String,
        #[serde(default)]
        error_description: String,
    }
    if status == 200 {
        let granted: Granted = serde_json::from_str(body).map_err(|_| {
            ProviderError::new(
                ProviderErrorKind::ProviderError,
                "Google's token endpoint answered without an access token",
            )
        })?;
        return Ok(Token::new(
            granted.access_token,
            now,
            // The lifetime is the token service's word: held at the end of time, never overflowing.
            crate::api::time::after(now, SignedDuration::from_secs(granted.expires_in.max(1))),
        ));
    }
    let refused: Refused = serde_json::from_str(body).unwrap_or_default();
    let kind = match (status, refused.error.as_str()) {
        (400 | 401, "invalid_grant" | "invalid_client" | "unauthorized_client") => {
            ProviderErrorKind::CredentialsInvalid
        }
        (403, _) | (_, "access_denied") => ProviderErrorKind::AccessDenied,
        (429 | 500..=599, _) => ProviderErrorKind::ProviderUnavailable,
        _ => ProviderErrorKind::ProviderError,
    };
    Err(ProviderError::new(
        kind,
        format!(
            "Google's token endpoint refused the service account {account}: HTTP {status} {}: {}",
            refused.error, refused.error_description
        ),
    ))
}

/// Any other ADC kind, through google-cloud-auth (which caches and refreshes).
struct Library(AccessTokenCredentials);

impl TokenSource for Library {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>> {
        Box::pin(async move {
            let now = Timestamp::now();
            match self.0.access_token().await {
                Ok(t) => Ok(Token::new(t.token, now, now + LIBRARY_TOKEN_RECHECK)),
                Err(e) => {
                    let text = e.to_string();
                    let kind = if text.contains("metadata") && e.is_transient() {
                        // No key file and no metadata server: nothing to authenticate with.
                        ProviderErrorKind::CredentialsMissing
                    } else if e.is_transient() {
                        ProviderErrorKind::ProviderUnavailable
                    } else if text.contains("403") || text.contains("PERMISSION_DENIED") {
                        ProviderErrorKind::AccessDenied
                    } else {
                        ProviderErrorKind::CredentialsInvalid
                    };
                    Err(ProviderError::new(
                        kind,
                        format!(
                            "no Google access token from Application Default Credentials (Workload Identity, GOOGLE_APPLICATION_CREDENTIALS, workload identity federation; docs/providers.md): {text}"
                        ),
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        Timestamp::from_second(1_790_000_000).unwrap()
    }

    #[test]
    fn a_granted_token_has_its_lifetime_and_refusals_their_reason() {
        let t = token_from_response(
            200,
            r#"{"access_token":"ya29.secret","expires_in":3599,"token_type":"Bearer"}"#,
            "sa@p.iam.gserviceaccount.com",
            t0(),
        )
        .unwrap();
        assert_eq!(t.expose(), "ya29.secret");
        assert_eq!(t.expires_at, t0() + SignedDuration::from_secs(3599));
        let e = token_from_response(
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
            "sa@p.iam.gserviceaccount.com",
            t0(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "CredentialsInvalid");
        assert!(e.message.contains("Invalid JWT Signature"), "{e}");
        let e = token_from_response(503, "", "sa@p", t0()).unwrap_err();
        assert_eq!(e.reason(), "ProviderUnavailable");
    }

    #[test]
    fn gke_api_errors_sort_into_reasons() {
        let body = |status: &str, message: &str| {
            format!(r#"{{"error":{{"code":0,"status":"{status}","message":"{message}"}}}}"#)
        };
        let e = classify_api_error(
            404,
            &body("NOT_FOUND", "Not found: projects/p/locations/l/clusters/c."),
            "GKE cluster c",
        );
        assert_eq!(e.reason(), "ClusterNotFound");
        assert!(e.message.contains("NOT_FOUND: Not found"), "{e}");
        let e = classify_api_error(
            403,
            &body(
                "PERMISSION_DENIED",
                "Required \"container.clusters.get\" permission",
            ),
            "c",
        );
        assert_eq!(e.reason(), "AccessDenied");
        assert_eq!(
            classify_api_error(401, "", "c").reason(),
            "CredentialsInvalid"
        );
        assert_eq!(
            classify_api_error(503, "", "c").reason(),
            "ProviderUnavailable"
        );
    }

    #[test]
    fn a_running_cluster_gives_https_endpoint_and_ca() {
        struct Never;
        impl TokenSource for Never {
            fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>> {
                Box::pin(async { unreachable!() })
            }
        }
        let c: Cluster = serde_json::from_str(
            r#"{"endpoint":"34.1.2.3","status":"RUNNING","masterAuth":{"clusterCaCertificate":"TFMwdA=="}}"#,
        )
        .unwrap();
        let e = endpoint_of(c, "c", Arc::new(Never)).unwrap();
        assert_eq!(e.server, "https://34.1.2.3");
        assert_eq!(e.ca_data, "TFMwdA==");
        let c: Cluster = serde_json::from_str(r#"{"status":"PROVISIONING"}"#).unwrap();
        let e = endpoint_of(c, "c", Arc::new(Never)).err().unwrap();
        assert_eq!(e.reason(), "ClusterNotReady");
    }
}
