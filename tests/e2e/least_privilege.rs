//! The member credentials Bascule is given (deploy/member-rbac.yaml, issued by
//! `bascule member-credentials`) allow what it does and refuse the rest.

use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, Config};
use libtest_mimic::Trial;
use serde_json::json;

use crate::support::{Harness, TestResult, Topology, member_rbac, trial};

pub fn trials(_: &Topology) -> Vec<Trial> {
    vec![trial(
        "least_privilege::member_credentials_allow_placement_and_refuse_the_rest",
        |h| async move { scope(h).await },
    )]
}

async fn scope(h: &'static Harness) -> TestResult {
    let member = "eks-use1";
    let kubeconfig = member_rbac::kubeconfig(h, member).await?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(config)?;

    // Allowed: what probes and placement need.
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    if nodes.items.is_empty() {
        return Err("the member credentials list no nodes".into());
    }
    let ns = crate::support::unique_name("rbac");
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let deployments =
        Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), &ns);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "allowed"},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "a"}},
                         "template": {"metadata": {"labels": {"app": "a"}},
                                      "spec": {"containers": [{"name": "a", "image": "a"}]}}}
            }))?,
        )
        .await?;
    deployments
        .delete("allowed", &DeleteParams::default())
        .await?;

    // Refused: everything else.
    let refusals: Vec<(&str, Result<(), kube::Error>)> = vec![
        (
            "delete a node",
            Api::<Node>::all(client.clone())
                .delete(
                    nodes.items[0].metadata.name.as_deref().unwrap_or(""),
                    &DeleteParams::default(),
                )
                .await
                .map(|_| ()),
        ),
        (
            "list Secrets",
            Api::<Secret>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map(|_| ()),
        ),
        (
            "create a ClusterRole",
            Api::<ClusterRole>::all(client.clone())
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(
                        json!({"metadata": {"name": "escalate"}, "rules": []}),
                    )?,
                )
                .await
                .map(|_| ()),
        ),
        (
            "delete a namespace",
            namespaces
                .delete(&ns, &DeleteParams::default())
                .await
                .map(|_| ()),
        ),
    ];
    for (what, result) in refusals {
        match result {
            Err(kube::Error::Api(s)) if s.code == 403 => println!("refused as expected: {what}"),
            other => return Err(format!("{what}: expected 403 Forbidden, got {other:?}").into()),
        }
    }
    // Clean up with admin rights.
    let admin = h.client(member).await?;
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin)
        .delete(&ns, &DeleteParams::default())
        .await;
    Ok(())
}
