//! Members: connections to member clusters. `connection` turns a MemberCluster's kubeconfig
//! Secret into a vetted client configuration; the pool of clients and the health probes build on it.

pub mod connection;
