//! Native cloud connections: a member reached with the operator's own cloud identity instead of
//! a kubeconfig Secret.
//!
//! - [`eks`]: endpoint and CA from EKS `DescribeCluster`, a `k8s-aws-v1.` token (a presigned STS
//!   `GetCallerIdentity` URL) signed in-process from the standard AWS credential chain.
//! - [`gke`]: endpoint and CA from GKE `projects.locations.clusters.get`, a Google access token
//!   from Application Default Credentials.
//! - [`token`]: the bearer token a member client carries, refreshed before it expires without
//!   rebuilding the client (a tower layer in front of kube's stack).
//!
//! Every failure is a [`ProviderError`] whose [`ProviderErrorKind`] becomes the MemberCluster
//! condition reason, with the provider's own message: never a credential.

pub mod eks;
pub mod gke;
pub mod token;

use std::sync::Arc;

use tokio::sync::OnceCell;

pub use token::{Bearer, BearerLayer, Token, TokenCache, TokenSource};

/// What a member's connection needs from its provider: where its API server is, its CA, and
/// where its tokens come from.
pub struct Endpoint {
    pub server: String,
    /// Base64 of the PEM bundle, as EKS and GKE return it (and as a kubeconfig's
    /// `certificate-authority-data` holds it).
    pub ca_data: String,
    pub tokens: Arc<dyn TokenSource>,
}

/// What went wrong while talking to a cloud provider, sorted by what a person does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// No credentials were found (no environment variables, web identity token, Pod Identity,
    /// profile, metadata server, or ADC file).
    CredentialsMissing,
    /// Credentials were found but have expired.
    CredentialsExpired,
    /// Credentials were found but the provider does not know them (unknown or revoked key,
    /// wrong secret).
    CredentialsInvalid,
    /// The identity is known but not allowed (IAM policy, assume-role trust, GKE permission).
    AccessDenied,
    /// The cluster does not exist in that account/project and region/location.
    ClusterNotFound,
    /// The cluster exists but has no usable endpoint yet (creating, deleting, failed).
    ClusterNotReady,
    /// The provider's API did not answer (network, timeout, 5xx): retried.
    ProviderUnavailable,
    /// Anything else the provider said (bad request, malformed answer).
    ProviderError,
}

impl ProviderErrorKind {
    /// The MemberCluster condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            ProviderErrorKind::CredentialsMissing => "CredentialsMissing",
            ProviderErrorKind::CredentialsExpired => "CredentialsExpired",
            ProviderErrorKind::CredentialsInvalid => "CredentialsInvalid",
            ProviderErrorKind::AccessDenied => "AccessDenied",
            ProviderErrorKind::ClusterNotFound => "ClusterNotFound",
            ProviderErrorKind::ClusterNotReady => "ClusterNotReady",
            ProviderErrorKind::ProviderUnavailable => "ProviderUnavailable",
            ProviderErrorKind::ProviderError => "ProviderError",
        }
    }
}

/// A provider failure: its kind and a message for a person (the provider's own words, the
/// cluster, what to check). Never holds a credential.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: scrub(&message.into()),
        }
    }

    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
}

/// A provider's message made safe to show (request ids and ARNs stay, credentials never): see
/// [`crate::api::text`].
pub fn scrub(message: &str) -> String {
    crate::api::text::clean(message, 600)
}

/// Settings and credentials shared by every member of one kind: the AWS configuration and the
/// Google credentials are loaded lazily, on the first member that needs them, from the operator's
/// environment, like any AWS or Google SDK client would. Once loaded they are kept; a failed load
/// is not: the next connection attempt (the supervisor's back-off) tries again, so a key mounted
/// or a metadata server reachable after start-up is picked up without a restart.
#[derive(Clone, Debug, Default)]
pub struct Providers {
    inner: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Base URL of the GKE API (`https://container.googleapis.com/` unless overridden for private
    /// endpoints or tests).
    gke_api_url: Option<String>,
    aws: OnceCell<aws_types::SdkConfig>,
    google: OnceCell<gke::GoogleCredentials>,
}

impl Providers {
    /// `gke_api_url` replaces the GKE API's base URL (tests, private service connect).
    pub fn new(gke_api_url: Option<String>) -> Self {
        Providers {
            inner: Arc::new(Shared {
                gke_api_url,
                ..Default::default()
            }),
        }
    }

    pub(crate) async fn aws(&self) -> &aws_types::SdkConfig {
        self.inner.aws.get_or_init(eks::load_base_config).await
    }

    pub(crate) async fn google(&self) -> Result<gke::GoogleCredentials, ProviderError> {
        self.inner
            .google
            .get_or_try_init(gke::GoogleCredentials::from_environment)
            .await
            .cloned()
    }

    pub(crate) fn gke_api_url(&self) -> &str {
        self.inner
            .gke_api_url
            .as_deref()
            .unwrap_or(gke::GKE_API_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_and_keeps_names() {
        let m = "The security token included in the request is invalid. AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY secret wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12 arn:aws:iam::123456789012:role/bascule-hub k8s-aws-v1.aHR0cHM6Ly9zdHM ya29.a0AfH6SM";
        let s = scrub(m);
        assert!(!s.contains("wJalrXUtnFEMI/K7MDENG"), "{s}");
        assert!(
            !s.contains("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"),
            "{s}"
        );
        assert!(!s.contains("aHR0cHM6"), "{s}");
        assert!(!s.contains("a0AfH6SM"), "{s}");
        assert!(
            s.contains("arn:aws:iam::123456789012:role/bascule-hub"),
            "{s}"
        );
        assert!(s.contains("The security token included in the request is invalid."));
        assert!(
            s.contains("AKIAIOSFODNN7EXAMPLE"),
            "an access key id is not secret: {s}"
        );
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(
            ProviderError::new(ProviderErrorKind::ClusterNotFound, "x").reason(),
            "ClusterNotFound"
        );
    }
}
