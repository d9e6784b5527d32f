//! A Kubernetes object carried inside a MultiCloudWorkload's template.
//!
//! Stored as free-form JSON, but the schema declares the few fields the CEL rules read
//! (`apiVersion`, `kind`, `metadata.name`, `metadata.namespace`, `spec.replicas`, a Secret's
//! `type`, a RoleBinding's `roleRef.kind`): the API server hides undeclared fields of a
//! preserve-unknown-fields object from CEL.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One Kubernetes object (Deployment, StatefulSet, Service, ConfigMap, …).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(transparent)]
pub struct Manifest(pub Value);

impl Manifest {
    pub fn kind(&self) -> &str {
        self.0.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.0
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.0
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether this is the object whose replicas Bascule places.
    pub fn is_workload(&self) -> bool {
        matches!(self.kind(), "Deployment" | "StatefulSet")
    }

    /// The pod template's containers (`spec.template.spec.containers`), if any.
    pub fn containers(&self) -> impl Iterator<Item = &Value> {
        self.0
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }
}

impl JsonSchema for Manifest {
    fn schema_name() -> Cow<'static, str> {
        "Manifest".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A Kubernetes object: apiVersion, kind, metadata (name required, no namespace) and the rest of the object as for kubectl apply.",
            "type": "object",
            "required": ["apiVersion", "kind", "metadata"],
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {
                "apiVersion": {"type": "string", "maxLength": 253},
                "kind": {"type": "string", "maxLength": 63},
                "metadata": {
                    "type": "object",
                    "required": ["name"],
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "name": {"type": "string", "maxLength": 253},
                        "namespace": {"type": "string", "maxLength": 63}
                    }
                },
                "spec": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "replicas": {"type": "integer", "format": "int32"}
                    }
                },
                "type": {"type": "string", "maxLength": 253},
                "roleRef": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "kind": {"type": "string", "maxLength": 63}
                    }
                }
            }
        })
    }
}

/// Schema of a value of any JSON type (a JSON patch value).
pub fn any_value_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "Any JSON value.",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
