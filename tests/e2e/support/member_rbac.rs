//! Members reached the way production members are: through the least-privilege ServiceAccount
//! of deploy/member-rbac.yaml, with a kubeconfig issued by `bascule member-credentials` — not
//! with the harness's admin certificates.

use std::path::Path;
use std::process::Command;

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use serde_json::Value;

use super::{Harness, repo_root};

/// Applies deploy/member-rbac.yaml to `member` (idempotent, server-side apply).
pub async fn install(client: &Client) -> Result<(), String> {
    let path = repo_root().join("deploy/member-rbac.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for doc in docs.into_iter().filter(|d| d.is_object()) {
        let obj: DynamicObject = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        let types = obj
            .types
            .clone()
            .ok_or("a document without apiVersion/kind")?;
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", types.api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let (resource, caps) = discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| format!("{}: {e}", types.kind))?;
        let name = obj
            .metadata
            .name
            .clone()
            .ok_or("a document without a name")?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply("bascule-e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .map_err(|e| format!("apply {} {name}: {e}", types.kind))?;
    }
    Ok(())
}

/// Installs the member RBAC on `member` and returns the kubeconfig (JSON) that
/// `bascule member-credentials` issues for it, ready for a hub Secret.
pub async fn kubeconfig(h: &Harness, member: &str) -> Result<String, String> {
    let client = h.client(member).await.map_err(|e| e.to_string())?;
    install(&client).await?;
    issue(&h.kubeconfig(member), member)
}

fn issue(admin: &Path, member: &str) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bascule"))
        .args([
            "member-credentials",
            "--name",
            member,
            "--token-seconds",
            "7200",
        ])
        .arg("--kubeconfig")
        .arg(admin)
        .output()
        .map_err(|e| format!("bascule member-credentials: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "bascule member-credentials failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let secret: Value = serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout))
        .map_err(|e| format!("member-credentials output: {e}"))?;
    let text = secret["stringData"]["kubeconfig"]
        .as_str()
        .ok_or("member-credentials printed no stringData.kubeconfig")?;
    let config: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    serde_json::to_string(&config).map_err(|e| e.to_string())
}
