//! Bascule: places Kubernetes workloads across clouds by declared provider preferences and moves
//! them when a cloud, a cluster or the workload itself fails.
//!
//! - [`api`]: the custom resources (`MemberCluster`, `MultiCloudWorkload`) and their CRDs.
//! - [`cli`]: the `bascule` command line (one argument struct per command).
//! - [`controller`]: the wiring: hub watches, member fan-out, reconcile, status and Events.
//! - [`health`]: per-cluster health state machine with hysteresis (pure).
//! - [`hub`]: the one status writer for both kinds (bounded, latest-only for members).
//! - [`members`]: connections to member clusters (kubeconfig Secrets, vetted).
//! - [`metrics`], [`http`]: Prometheus metrics and the `/metrics` `/livez` `/readyz` endpoints.
//! - [`placement`]: the pure placement engine (no client, no clock, no randomness).
//! - [`sync`]: what is written to members: render, ownership diff, server-side apply, watches.
//! - [`kubectl`]: what the `kubectl bascule` plugin prints.
//! - [`policy`]: pure policy between the engine and the controller (request, moves, status).
//! - [`plan`]: `bascule plan`, the engine run offline over YAML files, with what-ifs.
//! - [`yaml`]: multi-document YAML loading with file/line/field errors.

pub mod api;
pub mod cli;
pub mod controller;
pub mod health;
pub mod http;
pub mod hub;
pub mod kubectl;
pub mod members;
pub mod metrics;
pub mod placement;
pub mod plan;
pub mod policy;
pub mod sync;
pub mod yaml;
