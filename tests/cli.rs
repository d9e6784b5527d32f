//! The `bascule` binary as a user runs it: exit codes and error messages.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// This checkout, read at run time: the shared build cache (scripts/lib.sh) can hold a test
/// binary built from another checkout, whose compile-time path would point there.
fn repo() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn bascule(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bascule"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bascule starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    child.wait_with_output().expect("bascule exits")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn plan_over_the_examples_is_satisfied() {
    let out = bascule(&["plan", "examples/"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("shop/catalog Divided replicas=10 → eks-use1=7,gke-euw1=3 (Satisfied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shop/checkout Failover replicas=10 → eks-use1=10,gke-euw1=2 (Satisfied"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shop/edge-cache Duplicated replicas=3 → eks-use1=3,gke-euw1=3 (Satisfied"),
        "{stdout}"
    );
}

/// `kustomize build` output carries Namespaces and Secrets beside Bascule's objects: they are
/// passed over with a note, and the plan is made.
#[test]
fn other_kinds_in_the_stream_are_passed_over() {
    let clusters = std::fs::read_to_string(repo().join("examples/clusters.yaml")).unwrap();
    let divided = std::fs::read_to_string(repo().join("examples/divided.yaml")).unwrap();
    let stream = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: eks-use1, namespace: bascule-system}}\nstringData: {{kubeconfig: x}}\n---\n{clusters}\n---\n{divided}"
    );
    let out = bascule(&["plan", "-"], Some(&stream));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("shop/catalog Divided replicas=10 → eks-use1=7,gke-euw1=3"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr)
            .contains("note: passed over objects of other kinds: 1 Namespace, 1 Secret"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unsatisfiable_what_if_exits_3() {
    let out = bascule(
        &[
            "plan",
            "-f",
            "examples",
            "--unhealthy",
            "eks-use1",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json output");
    let catalog = v["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "shop/catalog")
        .unwrap();
    assert_eq!(catalog["outcome"], "Degraded");
    assert_eq!(catalog["planned"]["gke-euw1"], 10);
}

#[test]
fn bad_input_exits_1_naming_file_line_and_field() {
    let clusters = std::fs::read_to_string(repo().join("examples/clusters.yaml")).unwrap();
    let broken = clusters.replace("provider: gcp", "provider: azure");
    let line = broken.lines().position(|l| l.contains("azure")).unwrap() + 1;
    let out = bascule(&["plan", "-"], Some(&broken));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("<stdin>:{line}: spec.provider: unknown variant `azure`, expected one of aws, gcp, other")),
        "{stderr}"
    );
}

#[test]
fn a_cel_violation_is_bad_input_with_the_crds_message() {
    let divided = std::fs::read_to_string(repo().join("examples/divided.yaml")).unwrap();
    let out = bascule(
        &["plan", "-"],
        Some(&divided.replace("weight: 30", "weight: 0")),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("spec.placement.tiers[].weight must be between 1 and 1000"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = bascule(
        &["plan", "examples", "--taint", "eks-use1=maint:Evict"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must be NoSchedule or NoExecute"),
        "{}",
        text(&out.stderr)
    );
    let out = bascule(&["plan", "examples", "--unhealthy", "aks-1"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no MemberCluster named \"aks-1\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn crd_prints_what_crds_holds() {
    let out = bascule(&["crd"], None);
    assert_eq!(out.status.code(), Some(0));
    let mut expected = String::new();
    for name in [
        "memberclusters.bascule.dev.yaml",
        "multicloudworkloads.bascule.dev.yaml",
    ] {
        expected.push_str(&std::fs::read_to_string(repo().join("crds").join(name)).unwrap());
    }
    assert_eq!(
        text(&out.stdout),
        expected,
        "run `cargo run -q -- crd --out-dir crds` and commit"
    );
}
