//! The CRDs' CEL rules evaluated in-process, as the API server would at `kubectl apply` time.
//! `bascule plan` uses them so that a file that `kubectl apply` would refuse is refused offline
//! with the same messages.

use kube::core::cel::{CompiledSchema, ValidationError, Validator, compile_schema};
use serde_json::Value;

use super::crds;

/// One broken rule: the field it is about and the CRD's message naming the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Checks `object` (a full resource: apiVersion, kind, metadata, spec) against the CEL rules of
/// the CRD for `kind`. Unknown kinds have no rules.
///
/// The CRDs' schemas are compiled once per thread and kept: compiling them for every object
/// was almost all of `bascule plan`'s time over a thousand workloads.
pub fn check(kind: &str, object: &Value) -> Result<(), Vec<Violation>> {
    COMPILED.with(|compiled| {
        let Some((_, schema)) = compiled.schemas.iter().find(|(k, _)| k == kind) else {
            return Ok(());
        };
        compiled
            .validator
            .validate_compiled(schema, object, None)
            .map_err(|errors| errors.iter().map(violation).collect())
    })
}

/// The CEL validator and every CRD's compiled schema, by kind.
struct Compiled {
    validator: Validator,
    schemas: Vec<(String, CompiledSchema)>,
}

thread_local! {
    // Per thread: the compiled programs are not shared across threads.
    static COMPILED: Compiled = Compiled {
        validator: Validator::new(),
        schemas: crds()
            .into_iter()
            .map(|crd| {
                let schema = crd.spec.versions[0]
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(|s| serde_json::to_value(s).expect("a CRD schema serializes"))
                    .expect("every Bascule CRD has a schema");
                (crd.spec.names.kind.clone(), compile_schema(&schema))
            })
            .collect(),
    };
}

fn violation(e: &ValidationError) -> Violation {
    Violation {
        field: e.field_path.clone(),
        message: e.message.clone(),
    }
}
