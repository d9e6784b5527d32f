//! Amazon EKS: a member reached with the operator's AWS identity.
//!
//! The endpoint and CA come from `DescribeCluster`. The bearer token is what `aws eks get-token`
//! prints: `k8s-aws-v1.` followed by the base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL whose signature covers the `x-k8s-aws-id: <cluster name>` header. The
//! API server's authenticator calls that URL; STS answers with the caller's ARN, which an EKS
//! access entry (or the `aws-auth` ConfigMap) maps to a Kubernetes identity. STS honours such a
//! URL for 15 minutes after it was signed; like the CLI, a token is said to expire after 14.
//!
//! Credentials come from the standard AWS chain (aws-config: environment, web identity / IRSA,
//! EKS Pod Identity, profiles, IMDS), optionally exchanged for a role (`roleARN`). Endpoints can
//! be redirected with the SDK's own settings (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_STS`,
//! `AWS_ENDPOINT_URL_EKS`), which is how the tests reach moto.

use std::sync::Arc;
use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::config::endpoint::ResolveEndpoint as _;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_types::SdkConfig;
use aws_types::region::Region;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::future::BoxFuture;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::{Endpoint, ProviderError, ProviderErrorKind, Token, TokenSource};
use crate::api::EksConnection;

/// The token's prefix, as the EKS authenticator expects it.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header whose signed value binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// STS honours a presigned GetCallerIdentity URL for 15 minutes; a token is replaced before 14.
pub const TOKEN_LIFETIME: SignedDuration = SignedDuration::from_mins(14);
/// `X-Amz-Expires` of the presigned URL: the EKS authenticator refuses more than 60 (the
/// 15-minute validity is STS's, whatever this says).
const PRESIGN_EXPIRES_SECS: u64 = 60;
/// The session name when assuming `roleARN`, visible in CloudTrail and in the assumed-role ARN.
pub const SESSION_NAME: &str = "bascule";

/// The operator's base AWS configuration: the default credential chain and region resolution,
/// with an HTTPS client on the same TLS stack as the rest of the operator (rustls with ring).
pub async fn load_base_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .load()
        .await
}

/// Describes the cluster and checks that a token can be signed, with the operator's AWS
/// identity (or `roleARN`, assumed with it).
pub async fn resolve(base: &SdkConfig, spec: &EksConnection) -> Result<Endpoint, ProviderError> {
    let config = member_config(base, spec).await;
    let credentials = config.credentials_provider().ok_or_else(|| {
        ProviderError::new(
            ProviderErrorKind::CredentialsMissing,
            "no AWS credentials provider is configured",
        )
    })?;
    // Credentials first: their errors (none found, expired, role not assumable) are clearer than
    // what the EKS call would say about them.
    let creds = credentials
        .provide_credentials()
        .await
        .map_err(|e| classify_credentials(&e, spec))?;
    let sts_url = sts_endpoint(&config, &spec.region).await?;
    let source = Signer {
        credentials,
        region: spec.region.clone(),
        sts_url,
        cluster: spec.cluster_name.clone(),
    };
    // Sign once now, so a signing problem shows at connection time.
    source.sign(&creds, Timestamp::now())?;

    let eks = aws_sdk_eks::Client::new(&config);
    let out = eks
        .describe_cluster()
        .name(&spec.cluster_name)
        .send()
        .await
        .map_err(|e| classify_sdk(&e, spec))?;
    let cluster = out.cluster().ok_or_else(|| {
        ProviderError::new(
            ProviderErrorKind::ProviderError,
            format!(
                "EKS DescribeCluster for {} returned no cluster",
                spec.cluster_name
            ),
        )
    })?;
    let status = cluster.status().map(|s| s.as_str().to_string());
    let endpoint = cluster.endpoint().filter(|e| !e.is_empty());
    let ca = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .filter(|d| !d.is_empty());
    let (Some(server), Some(ca_data)) = (endpoint, ca) else {
        return Err(ProviderError::new(
            ProviderErrorKind::ClusterNotReady,
            format!(
                "EKS cluster {} in {} has no endpoint or CA yet (status {}); Bascule retries",
                spec.cluster_name,
                spec.region,
                status.as_deref().unwrap_or("unknown")
            ),
        ));
    };
    Ok(Endpoint {
        server: server.to_string(),
        ca_data: ca_data.to_string(),
        tokens: Arc::new(source),
    })
}

/// The base configuration in the member's region, with `roleARN` assumed when set.
async fn member_config(base: &SdkConfig, spec: &EksConnection) -> SdkConfig {
    let region = Region::new(spec.region.clone());
    let config = base.to_builder().region(region.clone()).build();
    let Some(role) = &spec.role_arn else {
        return config;
    };
    let provider = AssumeRoleProvider::builder(role)
        .session_name(SESSION_NAME)
        .region(region)
        .configure(&config)
        .build()
        .await;
    config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}

/// The regional STS endpoint, or the one the SDK's settings name (`AWS_ENDPOINT_URL_STS`,
/// `AWS_ENDPOINT_URL`, profile `endpoint_url`), resolved by the STS SDK's own rules.
async fn sts_endpoint(config: &SdkConfig, region: &str) -> Result<String, ProviderError> {
    let overridden = sts_endpoint_override(config);
    let params = aws_sdk_sts::config::endpoint::Params::builder()
        .region(region)
        .use_fips(config.use_fips().unwrap_or(false))
        .use_dual_stack(config.use_dual_stack().unwrap_or(false))
        .set_endpoint(overridden)
        .build()
        .map_err(|e| ProviderError::new(ProviderErrorKind::ProviderError, e.to_string()))?;
    let endpoint = aws_sdk_sts::config::endpoint::DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::ProviderError,
                format!("no STS endpoint for region {region}: {e}"),
            )
        })?;
    Ok(endpoint.url().to_string())
}

fn sts_endpoint_override(config: &SdkConfig) -> Option<String> {
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("STS")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    config
        .service_config()
        .and_then(|c| c.load_config(key))
        .or_else(|| config.endpoint_url().map(str::to_string))
}

/// Signs tokens for one cluster with the credentials the provider gives at each refresh.
struct Signer {
    credentials: SharedCredentialsProvider,
    region: String,
    sts_url: String,
    cluster: String,
}

impl TokenSource for Signer {
    fn fetch(&self) -> BoxFuture<'_, Result<Token, ProviderError>> {
        Box::pin(async move {
            let creds = self
                .credentials
                .provide_credentials()
                .await
                .map_err(|e| classify_credentials_for(&e, &self.cluster))?;
            self.sign(&creds, Timestamp::now())
        })
    }
}

impl Signer {
    fn sign(&self, creds: &Credentials, now: Timestamp) -> Result<Token, ProviderError> {
        presign_token(creds, &self.region, &self.sts_url, &self.cluster, now)
    }
}

/// A `k8s-aws-v1.` token for `cluster`, signed at `now` with `creds` for STS in `region` at
/// `sts_url`. Pure (no clock, no I/O). Expires after [`TOKEN_LIFETIME`], or when the
/// credentials do if that is sooner (a URL signed with expired session credentials is refused).
pub fn presign_token(
    creds: &Credentials,
    region: &str,
    sts_url: &str,
    cluster: &str,
    now: Timestamp,
) -> Result<Token, ProviderError> {
    let failed = |what: &str| {
        ProviderError::new(
            ProviderErrorKind::ProviderError,
            format!("could not sign the EKS token for cluster {cluster}: {what}"),
        )
    };
    let base = sts_url.trim_end_matches('/');
    let url = format!("{base}/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = creds.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(PRESIGN_EXPIRES_SECS));
    let signing_time = SystemTime::UNIX_EPOCH
        + std::time::Duration::from_secs(u64::try_from(now.as_second()).unwrap_or(0));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(signing_time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e.to_string()))?
        .into();
    let signable = SignableRequest::new(
        "GET",
        &url,
        std::iter::once((CLUSTER_ID_HEADER, cluster)),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e.to_string()))?
        .into_parts();
    let mut request = http::Request::get(&url)
        .body(())
        .map_err(|e| failed(&e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    let mut expires_at = now + TOKEN_LIFETIME;
    if let Some(expiry) = creds.expiry()
        && let Ok(since_epoch) = expiry.duration_since(SystemTime::UNIX_EPOCH)
        && let Ok(at) = Timestamp::from_second(since_epoch.as_secs() as i64)
    {
        expires_at = expires_at.min(at);
    }
    Ok(Token::new(
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(presigned)),
        now,
        expires_at,
    ))
}

/// A credential chain failure, for a person.
fn classify_credentials(e: &CredentialsError, spec: &EksConnection) -> ProviderError {
    classify_credentials_for(e, &spec.cluster_name)
}

fn classify_credentials_for(e: &CredentialsError, cluster: &str) -> ProviderError {
    let detail = error_chain(e);
    let (kind, hint) = match e {
        CredentialsError::CredentialsNotLoaded(_) => (
            ProviderErrorKind::CredentialsMissing,
            "no AWS credentials found (checked environment, web identity / IRSA, EKS Pod Identity, profiles, instance metadata); give the operator's ServiceAccount an IAM role (docs/providers.md)",
        ),
        CredentialsError::ProviderTimedOut(_) => (
            ProviderErrorKind::ProviderUnavailable,
            "the AWS credentials provider did not answer in time",
        ),
        CredentialsError::InvalidConfiguration(_) => (
            ProviderErrorKind::CredentialsMissing,
            "the AWS credentials configuration is invalid",
        ),
        _ => {
            // Provider errors carry STS's answer (AssumeRole denied, expired web identity
            // token, ...): sort them by its error code, or by the words AWS uses.
            if let Some(answer) = sts_answer(e) {
                let mut kind = classify_code(answer.code.as_deref(), &answer.message);
                if kind == ProviderErrorKind::ProviderError && answer.status == Some(403) {
                    kind = ProviderErrorKind::AccessDenied;
                }
                let code = answer.code.as_deref().unwrap_or("error");
                let message = format!(
                    "STS refused the operator's credentials (cluster {cluster}): {code}: {}",
                    answer.message
                );
                return ProviderError::new(kind, message);
            }
            let kind = classify_code(None, &detail);
            (kind, "the AWS credentials provider failed")
        }
    };
    ProviderError::new(kind, format!("{hint} (cluster {cluster}): {detail}"))
}

/// STS's answer inside a credentials error: its code and message, and the HTTP status.
struct StsAnswer {
    code: Option<String>,
    message: String,
    status: Option<u16>,
}

/// Finds the STS error (AssumeRole, AssumeRoleWithWebIdentity) among `e`'s sources. When the SDK
/// could not parse it (some STS-compatible services wrap `<Error>` in `<Errors>`), the code and
/// message are read from the response body.
fn sts_answer(e: &(dyn std::error::Error + 'static)) -> Option<StsAnswer> {
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

    fn answer<E: ProvideErrorMetadata + std::error::Error + 'static>(
        e: &SdkError<E, HttpResponse>,
    ) -> StsAnswer {
        let raw = e.raw_response();
        let body = raw
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let between = |open: &str, close: &str| {
            let start = body.find(open)? + open.len();
            let end = body[start..].find(close)? + start;
            Some(body[start..end].to_string())
        };
        let (code, message) = match e {
            SdkError::ServiceError(s) => (
                s.err().code().map(str::to_string),
                s.err().message().map(str::to_string),
            ),
            _ => (None, None),
        };
        StsAnswer {
            code: code.or_else(|| between("<Code>", "</Code>")),
            message: message
                .or_else(|| between("<Message>", "</Message>"))
                .unwrap_or_else(|| error_chain(e)),
            status: raw.map(|r| r.status().as_u16()),
        }
    }

    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(s) = err.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return Some(answer(s));
        }
        if let Some(s) =
            err.downcast_ref::<SdkError<AssumeRoleWithWebIdentityError, HttpResponse>>()
        {
            return Some(answer(s));
        }
        current = err.source();
    }
    None
}

/// An EKS API failure, for a person.
fn classify_sdk<E, R>(e: &SdkError<E, R>, spec: &EksConnection) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let cluster = format!("EKS cluster {} in {}", spec.cluster_name, spec.region);
    match e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code();
            let message = err.message().unwrap_or("");
            let kind = classify_code(code, message);
            let what = match kind {
                ProviderErrorKind::ClusterNotFound => {
                    format!("{cluster} not found; check spec.connection.eks.clusterName and region")
                }
                ProviderErrorKind::AccessDenied => format!(
                    "access to {cluster} denied; the operator's IAM identity needs eks:DescribeCluster on it"
                ),
                ProviderErrorKind::CredentialsExpired => {
                    format!("the operator's AWS credentials have expired ({cluster})")
                }
                ProviderErrorKind::CredentialsInvalid => format!(
                    "AWS does not accept the operator's credentials (unknown key or wrong secret) for {cluster}"
                ),
                _ => format!("EKS DescribeCluster for {cluster} failed"),
            };
            ProviderError::new(
                kind,
                format!("{what}: {}: {message}", code.unwrap_or("error")),
            )
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ProviderError::new(
            ProviderErrorKind::ProviderUnavailable,
            format!(
                "the EKS API did not answer for {cluster}: {}",
                error_chain(e)
            ),
        ),
        _ => ProviderError::new(
            ProviderErrorKind::ProviderError,
            format!(
                "EKS DescribeCluster for {cluster} failed: {}",
                error_chain(e)
            ),
        ),
    }
}

/// Pure: an AWS error code (or, without one, the message's words) → what a person can do.
pub fn classify_code(code: Option<&str>, message: &str) -> ProviderErrorKind {
    let has = |needle: &str| code == Some(needle) || message.contains(needle);
    if has("ResourceNotFoundException") || code == Some("NotFoundException") {
        ProviderErrorKind::ClusterNotFound
    } else if has("ExpiredToken") || message.contains("expired") {
        ProviderErrorKind::CredentialsExpired
    } else if has("InvalidClientTokenId")
        || has("UnrecognizedClientException")
        || has("SignatureDoesNotMatch")
        || has("IncompleteSignature")
    {
        ProviderErrorKind::CredentialsInvalid
    } else if has("AccessDenied")
        || has("AccessDeniedException")
        || has("UnauthorizedOperation")
        || has("InvalidIdentityToken")
        || message.contains("not authorized")
    {
        ProviderErrorKind::AccessDenied
    } else if has("ThrottlingException")
        || has("ServiceUnavailableException")
        || has("ServerException")
        || has("InternalFailure")
    {
        ProviderErrorKind::ProviderUnavailable
    } else {
        ProviderErrorKind::ProviderError
    }
}

/// An error and its sources on one line (the SDK's top-level messages are terse: "service
/// error", "dispatch failure").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn creds(expiry: Option<SystemTime>) -> Credentials {
        Credentials::new("AKIAIOSFODNN7EXAMPLE", SECRET, None, expiry, "test")
    }

    fn decode(token: &str) -> String {
        let b64 = token.strip_prefix(TOKEN_PREFIX).expect("prefix");
        assert!(!b64.contains('='), "no padding");
        assert!(
            !b64.contains('+') && !b64.contains('/'),
            "url-safe alphabet"
        );
        String::from_utf8(URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn a_token_is_a_presigned_get_caller_identity_url_bound_to_the_cluster() {
        let now = Timestamp::from_second(1_790_000_000).unwrap();
        let t = presign_token(
            &creds(None),
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            "prod",
            now,
        )
        .unwrap();
        let url = decode(t.expose());
        assert!(
            url.starts_with(
                "https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260921%2Fus-east-1%2Fsts%2Faws4_request",
            "X-Amz-Date=20260921T",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} missing from {url}");
        }
        assert!(!url.contains(SECRET) && !t.expose().contains(SECRET));
        assert_eq!(t.expires_at, now + SignedDuration::from_mins(14));
        // Deterministic for the same inputs; another cluster, another signature.
        let again = presign_token(
            &creds(None),
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            "prod",
            now,
        )
        .unwrap();
        assert_eq!(t.expose(), again.expose());
        let other = presign_token(
            &creds(None),
            "us-east-1",
            "https://sts.us-east-1.amazonaws.com",
            "staging",
            now,
        )
        .unwrap();
        assert_ne!(t.expose(), other.expose());
    }

    #[test]
    fn session_credentials_cap_the_token_and_travel_in_the_url() {
        let now = Timestamp::from_second(1_790_000_000).unwrap();
        let soon = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_300);
        let c = Credentials::new(
            "ASIAEXAMPLE",
            SECRET,
            Some("FwoGZXIvYXdzE".into()),
            Some(soon),
            "t",
        );
        let t = presign_token(&c, "eu-west-1", "http://127.0.0.1:5000/", "c", now).unwrap();
        assert_eq!(t.expires_at, Timestamp::from_second(1_790_000_300).unwrap());
        let url = decode(t.expose());
        assert!(
            url.starts_with("http://127.0.0.1:5000/?Action=GetCallerIdentity"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Security-Token=FwoGZXIvYXdzE"), "{url}");
    }

    #[test]
    fn aws_errors_sort_into_reasons() {
        use ProviderErrorKind::*;
        let cases = [
            (
                Some("ResourceNotFoundException"),
                "No cluster found for name: x.",
                ClusterNotFound,
            ),
            (
                Some("AccessDeniedException"),
                "User: arn:aws:iam::1:user/a is not authorized to perform: eks:DescribeCluster",
                AccessDenied,
            ),
            (
                Some("AccessDenied"),
                "not authorized to perform sts:AssumeRole",
                AccessDenied,
            ),
            (
                Some("ExpiredTokenException"),
                "The security token included in the request is expired",
                CredentialsExpired,
            ),
            (
                Some("UnrecognizedClientException"),
                "The security token included in the request is invalid.",
                CredentialsInvalid,
            ),
            (
                Some("InvalidClientTokenId"),
                "The security token included in the request is invalid.",
                CredentialsInvalid,
            ),
            (
                Some("SignatureDoesNotMatch"),
                "The request signature we calculated does not match",
                CredentialsInvalid,
            ),
            (
                Some("ThrottlingException"),
                "Rate exceeded",
                ProviderUnavailable,
            ),
            (Some("InvalidParameterException"), "bad", ProviderError),
            (
                None,
                "service error: AccessDenied: User is not authorized to perform: sts:AssumeRole",
                AccessDenied,
            ),
        ];
        for (code, message, want) in cases {
            assert_eq!(classify_code(code, message), want, "{code:?} {message}");
        }
    }

    #[test]
    fn missing_credentials_say_where_to_look_without_secrets() {
        let e = CredentialsError::not_loaded("no providers in chain provided credentials");
        let p = classify_credentials_for(&e, "prod");
        assert_eq!(p.reason(), "CredentialsMissing");
        assert!(p.message.contains("IRSA"), "{}", p.message);
        assert!(p.message.contains("prod"), "{}", p.message);
    }
}
