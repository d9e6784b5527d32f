//! Members: the hub's view of its member clusters.
//!
//! [`run`] watches MemberClusters and the kubeconfig Secrets of the operator's namespace on the
//! hub, keeps one client and one probe task per member, and writes each MemberCluster's status;
//! the [`MemberPool`] it fills gives the workload controller a [`ClusterSnapshot`] per member,
//! its client, and an event whenever something that matters for placement changed.
//!
//! - [`connection`]: kubeconfig Secret → vetted client configuration with timeouts.
//! - [`providers`]: `eks` and `gke` connections with the operator's own cloud identity.
//! - [`credentials`]: a member ServiceAccount → the kubeconfig Secret for the hub.
//! - [`requests`]: member requests counted by verb (a metric).
//! - [`probe`]: one probe (`/readyz`, nodes, `/version`) and the classification of failures.
//! - [`detect`]: node counts, allocatable capacity, provider and region from the nodes (pure).
//! - [`status`]: the MemberCluster status and when it is worth a write (pure).
//! - [`member`]: one member's task (connection, probe schedule, health, status to write).
//! - [`supervisor`]: the hub watches and the set of member tasks.
//! - [`pool`]: what the controller reads.
//!
//! Design notes, defaults and their reasoning: docs/members.md.
//!
//! [`ClusterSnapshot`]: crate::placement::ClusterSnapshot

pub mod connection;
pub mod credentials;
pub mod detect;
pub mod member;
pub mod pool;
pub mod probe;
pub mod providers;
pub mod requests;
pub mod status;
pub mod supervisor;

pub use connection::{ConnectionError, ConnectionOptions};
pub use pool::{MemberEvent, MemberPool, ProbeStats};
pub use supervisor::{MembersError, run};
