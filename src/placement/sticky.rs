//! Sticky rebalance: every replica that may stay stays; the rest goes toward the preferred
//! placement.

use super::apportion::{Share, apportion};
use super::candidates::Candidate;
use super::eligibility::Role;

/// Keeps every replica that may stay, then trims or fills toward the preferred placement:
/// removals come from clusters above their preferred count, additions go to clusters below it,
/// both in proportion to the difference.
pub(super) fn sticky(cands: &[Candidate], preferred: &[u64], selected: &[bool]) -> Vec<u64> {
    let mut out: Vec<u64> = cands
        .iter()
        .zip(selected)
        .map(|(c, &selected)| match c.role {
            Role::Hold(_) => c.held(),
            Role::Eligible if selected => c.current.min(c.max),
            _ => 0,
        })
        .collect();
    let target: u64 = preferred.iter().sum();
    let kept: u64 = out.iter().sum();
    if kept > target {
        let surplus: Vec<Share> = out
            .iter()
            .zip(preferred)
            .map(|(&o, &p)| {
                let s = o.saturating_sub(p);
                Share::new(s, 0, s)
            })
            .collect();
        let cut = apportion_reverse(kept - target, &surplus);
        for (o, c) in out.iter_mut().zip(cut) {
            *o -= c;
        }
    } else if kept < target {
        let gaps: Vec<Share> = out
            .iter()
            .zip(preferred)
            .zip(cands)
            .map(|((&o, &p), c)| {
                let g = if c.can_receive() {
                    p.saturating_sub(o)
                } else {
                    0
                };
                Share::new(g, 0, g)
            })
            .collect();
        for (o, a) in out.iter_mut().zip(apportion(target - kept, &gaps)) {
            *o += a;
        }
    }
    out
}

/// Like `apportion`, but ties go to the later items: replicas are removed from the least
/// preferred clusters first.
fn apportion_reverse(total: u64, items: &[Share]) -> Vec<u64> {
    let reversed: Vec<Share> = items.iter().rev().copied().collect();
    let mut out = apportion(total, &reversed);
    out.reverse();
    out
}
