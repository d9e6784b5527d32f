//! Reads MemberCluster and MultiCloudWorkload objects from multi-document YAML, with errors that
//! name the file, the line and the field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{MemberCluster, MultiCloudWorkload, validation};

/// Where an object came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based line of the document (or list item's document) in the file.
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The objects read from all inputs, in input order.
#[derive(Debug, Default)]
pub struct Objects {
    pub clusters: Vec<(Origin, MemberCluster)>,
    pub workloads: Vec<(Origin, MultiCloudWorkload)>,
    /// Kinds of other API groups passed over (a Namespace or Secret in `kustomize build` output),
    /// with how many of each.
    pub skipped: std::collections::BTreeMap<String, usize>,
}

/// A file that cannot be used, and exactly why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {field}{message}")]
pub struct InputError {
    pub file: String,
    pub line: u64,
    /// `spec.placement.mode: ` or empty when the error is not about one field.
    pub field: String,
    pub message: String,
}

/// Reads every object from `text` (the content of `file`) into `into`.
pub fn read(file: &Path, text: &str, into: &mut Objects) -> Result<(), InputError> {
    for (start, doc) in documents(text) {
        let err = |line: u64, field: String, message: String| InputError {
            file: file.display().to_string(),
            line,
            field: if field.is_empty() || field == "." {
                String::new()
            } else {
                format!("{field}: ")
            },
            message,
        };
        let value: Value = serde_saphyr::from_str(doc).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line()) + start - 1;
            err(line, String::new(), first_line(&e.to_string()))
        })?;
        if value.is_null() {
            continue;
        }
        let origin = Origin {
            file: file.to_path_buf(),
            line: start,
        };
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if kind == "List" || kind.ends_with("List") && value.get("items").is_some() {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                add(&origin, item, into)
                    .map_err(|(field, msg)| err(start, format!("items[{i}].{field}"), msg))?;
            }
            continue;
        }
        // Typed parse of the document itself, for the line of a field with the wrong type.
        match kind.as_str() {
            "MemberCluster" => typed::<MemberCluster>(doc).map(|_| ()),
            "MultiCloudWorkload" => typed::<MultiCloudWorkload>(doc).map(|_| ()),
            _ => Ok(()),
        }
        .map_err(|(line, field, msg)| err(line + start - 1, field, msg))?;
        add(&origin, value, into).map_err(|(field, msg)| err(start, field, msg))?;
    }
    Ok(())
}

/// Deserializes, validates and stores one object; errors are `(field, message)`.
fn add(origin: &Origin, value: Value, into: &mut Objects) -> Result<(), (String, String)> {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expected = "bascule.dev/v1alpha1";
    match kind.as_str() {
        "MemberCluster" | "MultiCloudWorkload" if api_version != expected => {
            return Err((
                "apiVersion".into(),
                format!("is {api_version:?}; {kind} needs apiVersion: {expected}"),
            ));
        }
        "MemberCluster" | "MultiCloudWorkload" => {}
        // Another API group's object travels with Bascule's in the same manifests: not ours.
        other if !other.is_empty() && !api_version.starts_with("bascule.dev/") => {
            *into.skipped.entry(other.to_string()).or_default() += 1;
            return Ok(());
        }
        "" => {
            return Err((
                "kind".into(),
                "missing; expected MemberCluster or MultiCloudWorkload".into(),
            ));
        }
        other => {
            return Err((
                "kind".into(),
                format!(
                    "{other} is not a kind of {api_version}; expected MemberCluster or MultiCloudWorkload"
                ),
            ));
        }
    }
    if value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err((
            "metadata.name".into(),
            "missing; every object needs a name".into(),
        ));
    }
    let value = with_defaults(&kind, value);
    validation::check(&kind, &value).map_err(|v| {
        let first = &v[0];
        let more = if v.len() > 1 {
            format!(" (and {} more)", v.len() - 1)
        } else {
            String::new()
        };
        (first.field.clone(), format!("{}{more}", first.message))
    })?;
    match kind.as_str() {
        "MemberCluster" => into.clusters.push((origin.clone(), from_value(value)?)),
        _ => into.workloads.push((origin.clone(), from_value(value)?)),
    }
    Ok(())
}

/// Round-trips through the Rust type so that the CRD defaults (for example
/// `placement.mode: Divided`) are present, as the API server would have them, before the rules run.
fn with_defaults(kind: &str, value: Value) -> Value {
    let typed = match kind {
        "MemberCluster" => serde_json::from_value::<MemberCluster>(value.clone())
            .ok()
            .and_then(|o| serde_json::to_value(o).ok()),
        _ => serde_json::from_value::<MultiCloudWorkload>(value.clone())
            .ok()
            .and_then(|o| serde_json::to_value(o).ok()),
    };
    typed.unwrap_or(value)
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

/// Typed parse with a line and a field path; errors are `(line in doc, field, message)`.
fn typed<T: DeserializeOwned>(doc: &str) -> Result<T, (u64, String, String)> {
    let mut path = String::new();
    serde_saphyr::with_deserializer_from_str(doc, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    })
    .map_err(|e| {
        (
            e.location().map_or(1, |l| l.line()),
            path.clone(),
            first_line(&e.to_string()),
        )
    })
}

/// The message alone: the first line, without serde-saphyr's `error: line N column M:` prefix
/// (the line is reported separately, relative to the whole file).
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, message)) if position.contains("column") => message.to_string(),
        _ => line.to_string(),
    }
}

/// Splits multi-document YAML at `---` lines; yields (1-based start line, text).
fn documents(text: &str) -> Vec<(u64, &str)> {
    let mut docs = Vec::new();
    let (mut start_byte, mut start_line) = (0usize, 1u64);
    let mut offset = 0usize;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "..." {
            docs.push((start_line, &text[start_byte..offset]));
            start_byte = offset + line.len();
            start_line = i as u64 + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &text[start_byte..]));
    docs.into_iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .collect()
}

/// Reads every input (`-` is stdin; nothing at all reads stdin); a directory contributes its
/// *.yaml and *.yml files in name order.
pub fn load(inputs: &[PathBuf]) -> Result<Objects, String> {
    use std::io::Read;
    let stdin = [PathBuf::from("-")];
    let inputs = if inputs.is_empty() {
        &stdin[..]
    } else {
        inputs
    };
    let mut objects = Objects::default();
    for input in inputs {
        for file in expand(input)? {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| format!("cannot read stdin: {e}"))?;
                s
            } else {
                std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            };
            let name = if file.as_os_str() == "-" {
                Path::new("<stdin>")
            } else {
                file.as_path()
            };
            read(name, &text, &mut objects).map_err(|e| e.to_string())?;
        }
    }
    Ok(objects)
}

fn expand(input: &Path) -> Result<Vec<PathBuf>, String> {
    if input.as_os_str() == "-" || !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|e| format!("cannot read directory {}: {e}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(text: &str) -> Result<Objects, InputError> {
        let mut objects = Objects::default();
        read(Path::new("in.yaml"), text, &mut objects)?;
        Ok(objects)
    }

    const CLUSTER: &str = "apiVersion: bascule.dev/v1alpha1\nkind: MemberCluster\nmetadata: {name: eks-use1}\nspec:\n  provider: aws\n  connection: {kubeconfigSecretRef: {name: eks}}\n";

    #[test]
    fn reads_documents_and_lists() {
        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n- {}\n",
            serde_json::to_string(&serde_saphyr::from_str::<Value>(CLUSTER).unwrap()).unwrap()
        );
        let o = read_str(&format!("---\n{CLUSTER}---\n# empty\n---\n{list}")).unwrap();
        assert_eq!(o.clusters.len(), 2);
        assert_eq!(o.clusters[0].0.line, 2);
    }

    #[test]
    fn a_wrong_enum_names_line_and_field() {
        let bad = CLUSTER.replace("provider: aws", "provider: azure");
        let e = read_str(&format!("---\n{CLUSTER}---\n{bad}")).unwrap_err();
        assert_eq!(e.line, 13, "{e}");
        assert_eq!(e.field, "spec.provider: ");
        assert_eq!(
            e.message,
            "unknown variant `azure`, expected one of aws, gcp, other"
        );
    }

    #[test]
    fn a_cel_rule_names_the_field_and_the_fix() {
        let bad = CLUSTER.replace(
            "connection: {kubeconfigSecretRef: {name: eks}}",
            "connection: {}",
        );
        let e = read_str(&bad).unwrap_err();
        assert_eq!(
            e.to_string(),
            "in.yaml:1: spec.connection: spec.connection must set exactly one method: kubeconfigSecretRef, eks or gke; keep one and remove the others"
        );
    }

    #[test]
    fn syntax_errors_and_unknown_kinds() {
        let e = read_str("a: [1, 2\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        let e = read_str(
            "apiVersion: bascule.dev/v1alpha1\nkind: MultiCloudWorkloads\nmetadata: {name: x}\n",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(
                "kind: MultiCloudWorkloads is not a kind of bascule.dev/v1alpha1; expected MemberCluster or MultiCloudWorkload"
            ),
            "{e}"
        );
        // Other groups' objects (kustomize output) are passed over and counted.
        let mut o = Objects::default();
        let text = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: shop}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\n---\napiVersion: v1\nkind: List\nitems:\n- {{apiVersion: v1, kind: Secret, metadata: {{name: t}}}}\n---\n{CLUSTER}"
        );
        read(Path::new("in.yaml"), &text, &mut o).unwrap();
        assert_eq!(o.clusters.len(), 1);
        assert_eq!(
            o.skipped,
            [("Namespace".to_string(), 1), ("Secret".to_string(), 2)].into()
        );
        let e = read_str(&CLUSTER.replace("bascule.dev/v1alpha1", "bascule.dev/v1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("needs apiVersion: bascule.dev/v1alpha1"),
            "{e}"
        );
    }
}
