//! Google GKE: a member reached with the operator's Google identity (stub; filled in below).

use super::{ProviderError, ProviderErrorKind};

pub const GKE_API_URL: &str = "https://container.googleapis.com/";

#[derive(Clone, Debug)]
pub struct GoogleCredentials;

impl GoogleCredentials {
    pub async fn from_environment() -> Result<GoogleCredentials, ProviderError> {
        Err(ProviderError::new(
            ProviderErrorKind::CredentialsMissing,
            "not implemented",
        ))
    }
}

pub async fn resolve(
    _credentials: &GoogleCredentials,
    _api_url: &str,
    _spec: &crate::api::GkeConnection,
) -> Result<super::Endpoint, ProviderError> {
    Err(ProviderError::new(
        ProviderErrorKind::CredentialsMissing,
        "not implemented",
    ))
}
