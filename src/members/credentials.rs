//! `bascule member-credentials`: turns a member's least-privilege ServiceAccount
//! (deploy/member-rbac.yaml) into the kubeconfig Secret the hub reads. Run once per member by
//! someone who may create tokens there; the admin credentials used for that never reach the hub.

use base64::Engine;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// What to issue.
#[derive(Clone, Debug)]
pub struct Request {
    /// The MemberCluster's name (also names the Secret: `member-<name>`, unless given).
    pub member: String,
    pub service_account_namespace: String,
    pub service_account: String,
    /// Token lifetime; the member's API server may shorten it (--service-account-max-token-expiration).
    pub token_seconds: i64,
    /// The member's API URL as the hub reaches it; default: the kubeconfig's.
    pub server: Option<String>,
    /// Where the Secret goes on the hub (the operator's namespace) and its name.
    pub hub_namespace: String,
    pub secret_name: Option<String>,
    /// The kubeconfig context to use (default: the current one).
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read the member kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("the member kubeconfig has no usable cluster for context {0:?}")]
    NoCluster(String),
    #[error(
        "cannot create a token for ServiceAccount {namespace}/{name} (apply deploy/member-rbac.yaml to the member first): {source}"
    )]
    Token {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Issues a token for the ServiceAccount on the member of `kubeconfig`, and returns the hub
/// Secret (YAML) holding a kubeconfig with it.
pub async fn issue(kubeconfig: Kubeconfig, req: &Request) -> Result<String, CredentialsError> {
    let (server, ca) = cluster_of(&kubeconfig, req.context.as_deref())?;
    let options = KubeConfigOptions {
        context: req.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| CredentialsError::Kubeconfig(e.to_string()))?;
    let client =
        kube::Client::try_from(config).map_err(|e| CredentialsError::Kubeconfig(e.to_string()))?;
    let api: Api<ServiceAccount> = Api::namespaced(client, &req.service_account_namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(req.token_seconds),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let issued = api
        .create_token_request(&req.service_account, &PostParams::default(), &request)
        .await
        .map_err(|source| CredentialsError::Token {
            namespace: req.service_account_namespace.clone(),
            name: req.service_account.clone(),
            source,
        })?;
    let token = issued.status.map(|s| s.token).unwrap_or_default();
    let server = req.server.clone().unwrap_or(server);
    Ok(secret_yaml(
        req,
        &kubeconfig_yaml(req, &server, ca.as_deref(), &token),
    ))
}

/// The server URL and CA (base64) of the context's cluster.
fn cluster_of(
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
) -> Result<(String, Option<String>), CredentialsError> {
    let name = context
        .map(str::to_string)
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| CredentialsError::NoCluster(name.clone()))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| CredentialsError::NoCluster(name.clone()))?;
    let server = cluster
        .server
        .clone()
        .ok_or_else(|| CredentialsError::NoCluster(name.clone()))?;
    let ca = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(data.clone()),
        (None, Some(path)) => {
            let pem = std::fs::read(path)
                .map_err(|e| CredentialsError::Kubeconfig(format!("{path}: {e}")))?;
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        (None, None) => None,
    };
    Ok((server, ca))
}

fn kubeconfig_yaml(req: &Request, server: &str, ca: Option<&str>, token: &str) -> String {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca {
        cluster["certificate-authority-data"] = json!(ca);
    }
    let user = format!("{}/{}", req.service_account_namespace, req.service_account);
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": req.member, "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": req.member, "context": {"cluster": req.member, "user": user}}],
        "current-context": req.member,
    });
    to_yaml(&config)
}

fn secret_yaml(req: &Request, kubeconfig: &str) -> String {
    let name = req
        .secret_name
        .clone()
        .unwrap_or_else(|| format!("member-{}", req.member));
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": req.hub_namespace,
            "labels": {"app.kubernetes.io/part-of": "bascule", "bascule.dev/member": req.member},
        },
        "stringData": {"kubeconfig": kubeconfig},
    });
    to_yaml(&secret)
}

fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).expect("JSON values serialize to YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        Request {
            member: "eks-use1".into(),
            service_account_namespace: "bascule-system".into(),
            service_account: "bascule-member".into(),
            token_seconds: 3600,
            server: None,
            hub_namespace: "bascule-system".into(),
            secret_name: None,
            context: None,
        }
    }

    #[test]
    fn the_secret_holds_a_token_kubeconfig_the_operator_accepts() {
        let kc = kubeconfig_yaml(&request(), "https://10.0.0.1:6443", Some("Q0E="), "t0ken");
        let secret = secret_yaml(&request(), &kc);
        let parsed: k8s_openapi::api::core::v1::Secret = serde_saphyr::from_str(&secret).unwrap();
        assert_eq!(parsed.metadata.name.as_deref(), Some("member-eks-use1"));
        let text = &parsed.string_data.unwrap()["kubeconfig"];
        let k = Kubeconfig::from_yaml(text).unwrap();
        assert_eq!(k.current_context.as_deref(), Some("eks-use1"));
        let cluster = k.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        // What the operator's vetting accepts: a token, no exec plugin, no file reference.
        let auth = k.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(auth.exec.is_none() && auth.client_certificate.is_none());
        let (server, ca) = cluster_of(&k, None).unwrap();
        assert_eq!(
            (server.as_str(), ca.as_deref()),
            ("https://10.0.0.1:6443", Some("Q0E="))
        );
    }
}
