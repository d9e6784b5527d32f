//! The Helm chart's files that must follow the code (no Helm needed; the chart's rendering, lint,
//! schema and installation are e2e trials in tests/e2e/chart.rs):
//!
//! * `charts/bascule/crds/` holds exactly the CRDs of `crds/` (which tests/crds.rs keeps equal to
//!   the Rust types), byte for byte — Helm installs them from there;
//! * the chart's `appVersion` (the default image tag) is the crate's version.

use std::collections::BTreeMap;
use std::path::Path;

/// This checkout, read at run time: the shared build cache (scripts/lib.sh) can hold a test
/// binary built from another checkout, whose compile-time path would point there.
fn repo() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect()
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let root = repo();
    let generated = yaml_files(&root.join("crds"));
    let chart = yaml_files(&root.join("charts/bascule/crds"));
    assert!(!generated.is_empty(), "crds/ holds no CRD");
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "charts/bascule/crds/ must hold the same files as crds/; fix: cp crds/*.yaml charts/bascule/crds/"
    );
    for (name, text) in &generated {
        assert!(
            chart[name] == *text,
            "charts/bascule/crds/{name} differs from crds/{name}; fix: cp crds/*.yaml charts/bascule/crds/"
        );
    }
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let path = repo().join("charts/bascule/Chart.yaml");
    let chart: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("Chart.yaml")).unwrap();
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "charts/bascule/Chart.yaml appVersion (the default image tag) must be Cargo.toml's version"
    );
}
