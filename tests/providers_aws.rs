//! EKS connections against moto (a real AWS protocol peer: the SDK's own requests, moto's
//! answers, IAM enforcement on): DescribeCluster, role assumption, the token, and every error a
//! person has to act on. Needs `moto_server` on PATH (fails with how to install it otherwise).
//!
//! One test function: the AWS credential chain reads the process environment, which the
//! scenarios change one after the other.

#[path = "common/moto.rs"]
mod moto;

use bascule::api::EksConnection;
use bascule::members::providers::ProviderError;
use bascule::members::providers::eks::{self, TOKEN_PREFIX};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn spec(cluster: &str, role: Option<&str>) -> EksConnection {
    EksConnection {
        cluster_name: cluster.into(),
        region: "us-east-1".into(),
        role_arn: role.map(str::to_string),
    }
}

/// Sets the operator's environment as a pod would have it (only what aws-config reads).
fn environment(moto: &str, key: Option<(&str, &str)>) {
    // SAFETY: this test binary has one test, run on a current-thread runtime; nothing reads the
    // environment concurrently.
    unsafe {
        for (k, v) in [
            ("AWS_ENDPOINT_URL", moto),
            ("AWS_CONFIG_FILE", "/nonexistent/bascule-test/config"),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/bascule-test/credentials",
            ),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            std::env::set_var(k, v);
        }
        for k in [
            "AWS_PROFILE",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_SESSION_TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ] {
            std::env::remove_var(k);
        }
        match key {
            Some((id, secret)) => {
                std::env::set_var("AWS_ACCESS_KEY_ID", id);
                std::env::set_var("AWS_SECRET_ACCESS_KEY", secret);
            }
            None => {
                std::env::remove_var("AWS_ACCESS_KEY_ID");
                std::env::remove_var("AWS_SECRET_ACCESS_KEY");
            }
        }
    }
}

async fn resolve(spec: &EksConnection) -> Result<eks_endpoint::Endpoint, ProviderError> {
    let base = eks::load_base_config().await;
    eks::resolve(&base, spec).await
}

mod eks_endpoint {
    pub use bascule::members::providers::Endpoint;
}

fn presigned_url(token: &str) -> String {
    let b64 = token
        .strip_prefix(TOKEN_PREFIX)
        .expect("k8s-aws-v1. prefix");
    String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(b64)
            .expect("base64url without padding"),
    )
    .unwrap()
}

fn key(seed: &Value, who: &str) -> (String, String) {
    (
        seed[who]["id"].as_str().unwrap().to_string(),
        seed[who]["secret"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn eks_connections_against_moto() {
    let dir = std::env::temp_dir();
    let moto = moto::Moto::start(&dir).unwrap_or_else(|e| panic!("{e}"));
    let seed = moto.seed(&["shop-prod"]).unwrap_or_else(|e| panic!("{e}"));
    let (hub_id, hub_secret) = key(&seed, "hub");
    let role = seed["role_arn"].as_str().unwrap().to_string();
    let mut messages = Vec::new();

    // The hub's own identity (environment credentials): endpoint, CA and a token.
    environment(&moto.url, Some((&hub_id, &hub_secret)));
    let endpoint = resolve(&spec("shop-prod", None))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", e.reason()));
    assert!(
        endpoint.server.starts_with("https://")
            && endpoint.server.contains(".us-east-1.eks.amazonaws.com"),
        "{}",
        endpoint.server
    );
    assert!(!endpoint.ca_data.is_empty());
    let before = Timestamp::now();
    let token = endpoint.tokens.fetch().await.unwrap();
    assert!(token.expose().starts_with(TOKEN_PREFIX));
    let url = presigned_url(token.expose());
    assert!(
        url.starts_with(&format!(
            "{}/?Action=GetCallerIdentity&Version=2011-06-15&",
            moto.url
        )),
        "the STS endpoint comes from AWS_ENDPOINT_URL: {url}"
    );
    assert!(
        url.contains(&format!("X-Amz-Credential={hub_id}%2F")),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"),
        "{url}"
    );
    assert!(!url.contains(&hub_secret) && !token.expose().contains(&hub_secret));
    let lifetime = token.expires_at.duration_since(before);
    assert!(
        lifetime <= SignedDuration::from_secs(14 * 60 + 5)
            && lifetime >= SignedDuration::from_mins(14),
        "{lifetime:?}"
    );

    // roleARN: assumed with the hub's identity; the token is signed with the session.
    let endpoint = resolve(&spec("shop-prod", Some(&role)))
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", e.reason()));
    let url = presigned_url(endpoint.tokens.fetch().await.unwrap().expose());
    assert!(
        url.contains("X-Amz-Credential=ASIA"),
        "session credentials: {url}"
    );
    assert!(url.contains("X-Amz-Security-Token="), "{url}");

    // A cluster that does not exist.
    let e = resolve(&spec("shop-staging", None))
        .await
        .err()
        .expect("no such cluster");
    assert_eq!(e.reason(), "ClusterNotFound", "{e}");
    assert!(
        e.message.contains("shop-staging") && e.message.contains("us-east-1"),
        "{e}"
    );
    messages.push(e.message);

    // No credentials anywhere in the chain.
    environment(&moto.url, None);
    let e = resolve(&spec("shop-prod", None))
        .await
        .err()
        .expect("no credentials");
    assert_eq!(e.reason(), "CredentialsMissing", "{e}");
    assert!(
        e.message.contains("IRSA") && e.message.contains("Pod Identity"),
        "{e}"
    );
    messages.push(e.message);

    // From here on moto checks keys and IAM policies (STS only: see Moto::enforce_iam).
    moto.enforce_iam().unwrap_or_else(|e| panic!("{e}"));

    // An identity that may not assume the role.
    let (intruder_id, intruder_secret) = key(&seed, "intruder");
    environment(&moto.url, Some((&intruder_id, &intruder_secret)));
    let e = resolve(&spec("shop-prod", Some(&role)))
        .await
        .err()
        .expect("denied");
    assert_eq!(e.reason(), "AccessDenied", "{e}");
    assert!(e.message.contains("sts:AssumeRole"), "{e}");
    messages.push(e.message);

    // A key AWS does not know, and a known key with the wrong secret.
    const UNKNOWN: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYUNKNOWNKEY";
    const WRONG: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET";
    environment(&moto.url, Some(("AKIAUNKNOWNUNKNOWN00", UNKNOWN)));
    let e = resolve(&spec("shop-prod", Some(&role)))
        .await
        .err()
        .expect("unknown key");
    assert_eq!(e.reason(), "CredentialsInvalid", "{e}");
    messages.push(e.message);
    environment(&moto.url, Some((&hub_id, WRONG)));
    let e = resolve(&spec("shop-prod", Some(&role)))
        .await
        .err()
        .expect("wrong secret");
    assert_eq!(e.reason(), "CredentialsInvalid", "{e}");
    messages.push(e.message);

    // No message ever carries a secret.
    for m in &messages {
        for secret in [
            hub_secret.as_str(),
            intruder_secret.as_str(),
            UNKNOWN,
            WRONG,
        ] {
            assert!(!m.contains(secret), "a secret in {m:?}");
        }
        eprintln!("{m}");
    }
    drop(moto);
}
