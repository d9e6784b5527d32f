//! What a member's nodes say about it: how many are Ready, their allocatable capacity, and the
//! provider and region they run in.
//!
//! Nodes are folded into a [`NodeTally`] one list page at a time and then dropped, so that the
//! operator never holds a member's nodes in memory. Pure: no client, no clock.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use crate::api::Provider;
use crate::placement::input::parse_quantity_milli;

/// The region label every cloud sets on its nodes.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Its deprecated predecessor, still set by older clusters.
pub const LEGACY_REGION_LABEL: &str = "failure-domain.beta.kubernetes.io/region";

/// The resources summed into `status.allocatable`.
const ALLOCATABLE: [&str; 3] = ["cpu", "memory", "pods"];

/// Running totals over the nodes seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeTally {
    ready: u32,
    total: u32,
    /// Sum of the Ready nodes' allocatable resources, in thousandths of their unit.
    allocatable_milli: BTreeMap<&'static str, u128>,
    /// Nodes per provider (from `spec.providerID`) and per region label value.
    providers: BTreeMap<Provider, u32>,
    regions: BTreeMap<String, u32>,
}

impl NodeTally {
    /// Counts one node.
    pub fn add(&mut self, node: &Node) {
        self.total += 1;
        let spec = node.spec.as_ref();
        if let Some(p) = spec
            .and_then(|s| s.provider_id.as_deref())
            .and_then(Provider::from_provider_id)
        {
            *self.providers.entry(p).or_default() += 1;
        }
        let labels = node.metadata.labels.as_ref();
        if let Some(r) =
            labels.and_then(|l| l.get(REGION_LABEL).or_else(|| l.get(LEGACY_REGION_LABEL)))
            && !r.is_empty()
        {
            *self.regions.entry(r.clone()).or_default() += 1;
        }
        if !is_ready(node) {
            return;
        }
        self.ready += 1;
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        for resource in ALLOCATABLE {
            if let Some(milli) = allocatable
                .and_then(|a| a.get(resource))
                .and_then(|q| parse_quantity_milli(&q.0))
            {
                *self.allocatable_milli.entry(resource).or_default() += u128::from(milli);
            }
        }
    }

    /// What the tally amounts to.
    pub fn facts(&self) -> NodeFacts {
        NodeFacts {
            ready: self.ready,
            total: self.total,
            allocatable: self
                .allocatable_milli
                .iter()
                .map(|(r, milli)| (r.to_string(), format_quantity(r, *milli)))
                .collect(),
            provider: most_common(&self.providers).copied(),
            region: most_common(&self.regions).cloned(),
        }
    }
}

/// What one probe learned from the nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    pub ready: u32,
    pub total: u32,
    /// `cpu`, `memory`, `pods` summed over the Ready nodes, as Kubernetes quantities.
    pub allocatable: BTreeMap<String, String>,
    /// The provider most nodes' `spec.providerID` names; `None` if no node has one.
    pub provider: Option<Provider>,
    /// The region most nodes are labelled with; `None` if no node is labelled.
    pub region: Option<String>,
}

/// A node is Ready when its `Ready` condition is `True` (as the scheduler sees it).
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The key with the highest count; ties go to the smallest key, so the answer is deterministic.
fn most_common<K: Ord>(counts: &BTreeMap<K, u32>) -> Option<&K> {
    counts
        .iter()
        .fold(None, |best: Option<(&K, u32)>, (k, &n)| match best {
            Some((_, m)) if m >= n => best,
            _ => Some((k, n)),
        })
        .map(|(k, _)| k)
}

/// Formats a sum in thousandths as a canonical quantity: CPU in cores or millicores, memory in
/// the largest binary unit that divides it (Ki, Mi, Gi), counts as integers.
fn format_quantity(resource: &str, milli: u128) -> String {
    if resource == "cpu" {
        return if milli.is_multiple_of(1000) {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    let whole = milli.div_ceil(1000);
    if resource == "memory" && whole > 0 {
        for (suffix, unit) in [("Gi", 1u128 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if whole.is_multiple_of(unit) {
                return format!("{}{suffix}", whole / unit);
            }
        }
    }
    whole.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn node(provider_id: Option<&str>, region: Option<&str>, ready: bool, cpu: &str) -> Node {
        let mut n = Node::default();
        n.metadata.labels = region.map(|r| [(REGION_LABEL.to_string(), r.to_string())].into());
        n.spec = Some(NodeSpec {
            provider_id: provider_id.map(String::from),
            ..Default::default()
        });
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            allocatable: Some(
                [
                    ("cpu".to_string(), Quantity(cpu.into())),
                    ("memory".to_string(), Quantity("14892760Ki".into())),
                    ("pods".to_string(), Quantity("58".into())),
                    ("ephemeral-storage".to_string(), Quantity("100Gi".into())),
                ]
                .into(),
            ),
            ..Default::default()
        });
        n
    }

    fn tally(nodes: &[Node]) -> NodeFacts {
        let mut t = NodeTally::default();
        nodes.iter().for_each(|n| t.add(n));
        t.facts()
    }

    #[test]
    fn eks_nodes_are_aws_in_their_region_with_summed_allocatable() {
        let id = Some("aws:///us-east-1a/i-0abc");
        let f = tally(&[
            node(id, Some("us-east-1"), true, "3920m"),
            node(id, Some("us-east-1"), true, "3920m"),
            node(id, Some("us-east-1"), false, "3920m"),
        ]);
        assert_eq!((f.ready, f.total), (2, 3));
        assert_eq!(f.provider, Some(Provider::Aws));
        assert_eq!(f.region.as_deref(), Some("us-east-1"));
        // Only the Ready nodes count; ephemeral-storage is not summed.
        assert_eq!(
            f.allocatable,
            [
                ("cpu".to_string(), "7840m".to_string()),
                ("memory".to_string(), "29785520Ki".to_string()),
                ("pods".to_string(), "116".to_string()),
            ]
            .into()
        );
    }

    #[test]
    fn gke_nodes_are_gcp_and_the_majority_decides() {
        let gce = Some("gce://proj/europe-west1-b/vm");
        let f = tally(&[
            node(gce, Some("europe-west1"), true, "4"),
            node(gce, Some("europe-west1"), true, "4"),
            node(Some("kind://docker/x"), Some("local"), true, "4"),
        ]);
        assert_eq!(f.provider, Some(Provider::Gcp));
        assert_eq!(f.region.as_deref(), Some("europe-west1"));
        assert_eq!(f.allocatable["cpu"], "12");
    }

    #[test]
    fn unknown_without_provider_ids_or_labels_and_ties_are_deterministic() {
        let f = tally(&[
            node(None, None, true, "1"),
            node(Some("bare"), None, true, "1"),
        ]);
        assert_eq!((f.provider, f.region), (None, None));
        let tie = tally(&[
            node(Some("gce://p/z/a"), Some("b-region"), true, "1"),
            node(Some("aws:///z/i"), Some("a-region"), true, "1"),
        ]);
        assert_eq!(tie.provider, Some(Provider::Aws), "smallest key on a tie");
        assert_eq!(tie.region.as_deref(), Some("a-region"));
    }

    #[test]
    fn legacy_region_label_and_no_ready_nodes() {
        let mut n = node(Some("aws:///z/i"), None, false, "1");
        n.metadata.labels = Some([(LEGACY_REGION_LABEL.to_string(), "eu-west-1".into())].into());
        let f = tally(&[n]);
        assert_eq!(f.region.as_deref(), Some("eu-west-1"));
        assert_eq!((f.ready, f.total), (0, 1));
        assert!(f.allocatable.is_empty());
        assert_eq!(tally(&[]), NodeFacts::default());
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(format_quantity("cpu", 500), "500m");
        assert_eq!(format_quantity("cpu", 8000), "8");
        assert_eq!(format_quantity("memory", 2048 * 1000), "2Ki");
        assert_eq!(format_quantity("memory", 3 * (1 << 30) * 1000), "3Gi");
        assert_eq!(format_quantity("memory", 1500 * 1000), "1500");
        assert_eq!(format_quantity("pods", 110_000), "110");
        assert_eq!(format_quantity("memory", 0), "0");
    }
}
