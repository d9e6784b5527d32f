//! Bounded largest-remainder apportionment: split an integer total among weighted items, each
//! held between a lower and an upper bound.
//!
//! Exact integer arithmetic (no floats), so results are the same on every machine. Items are
//! given in preference order; that order breaks ties between equal remainders, which makes the
//! result stable: 10 at weights 1/1/1 is always 4/3/3, the first item taking the extra replica.

/// One item to receive a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub weight: u64,
    pub min: u64,
    pub max: u64,
}

impl Share {
    pub fn new(weight: u64, min: u64, max: u64) -> Share {
        Share {
            weight,
            min: min.min(max),
            max,
        }
    }
}

/// Splits `total` among `items`. The result `r` has `items[i].min <= r[i] <= items[i].max`, and
/// `sum(r) == total` clamped into `[sum(min), sum(max)]`. When the minimums alone exceed `total`,
/// earlier items get theirs first.
pub fn apportion(total: u64, items: &[Share]) -> Vec<u64> {
    let sum_min: u64 = items.iter().map(|s| s.min).sum();
    let sum_max: u64 = items.iter().fold(0u64, |acc, s| acc.saturating_add(s.max));
    if total >= sum_max {
        return items.iter().map(|s| s.max).collect();
    }
    if total <= sum_min {
        let mut left = total;
        return items
            .iter()
            .map(|s| {
                let v = s.min.min(left);
                left -= v;
                v
            })
            .collect();
    }

    // Water-filling: find the proportional split, pinning items that fall outside their bounds,
    // until every free item's exact quota lies within its bounds.
    let mut pinned: Vec<Option<u64>> = vec![None; items.len()];
    loop {
        let rest = total - pinned.iter().flatten().sum::<u64>();
        let free: Vec<usize> = (0..items.len()).filter(|&i| pinned[i].is_none()).collect();
        let weight = effective_weights(items, &free);
        let sum_w: u128 = weight.iter().sum();
        // quota_i = rest * w_i / sum_w, compared exactly as rest * w_i against bound * sum_w.
        let (mut low_excess, mut high_excess) = (0u128, 0u128);
        for (k, &i) in free.iter().enumerate() {
            let q = rest as u128 * weight[k];
            let (lo, hi) = (items[i].min as u128 * sum_w, items[i].max as u128 * sum_w);
            if q < lo {
                low_excess += lo - q;
            } else if q > hi {
                high_excess += q - hi;
            }
        }
        if low_excess == 0 && high_excess == 0 {
            return round(total, items, &pinned, &free, &weight, sum_w, rest);
        }
        // Pin the side with the larger violation: pinning it cannot push the other side out.
        for (k, &i) in free.iter().enumerate() {
            let q = rest as u128 * weight[k];
            if low_excess >= high_excess && q < items[i].min as u128 * sum_w {
                pinned[i] = Some(items[i].min);
            }
            if high_excess >= low_excess && q > items[i].max as u128 * sum_w {
                pinned[i] = Some(items[i].max);
            }
        }
    }
}

/// Weights of the free items; all-zero weights count as equal weights.
fn effective_weights(items: &[Share], free: &[usize]) -> Vec<u128> {
    if free.iter().all(|&i| items[i].weight == 0) {
        vec![1; free.len()]
    } else {
        free.iter().map(|&i| items[i].weight as u128).collect()
    }
}

fn round(
    total: u64,
    items: &[Share],
    pinned: &[Option<u64>],
    free: &[usize],
    weight: &[u128],
    sum_w: u128,
    rest: u64,
) -> Vec<u64> {
    let mut out: Vec<u64> = pinned.iter().map(|p| p.unwrap_or(0)).collect();
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(free.len());
    let mut given = 0u64;
    for (k, &i) in free.iter().enumerate() {
        let q = rest as u128 * weight[k];
        let floor = (q / sum_w) as u64;
        out[i] = floor;
        given += floor;
        remainders.push((q % sum_w, i));
    }
    // Largest remainder first; equal remainders go to the earlier (more preferred) item.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut left = total - pinned.iter().flatten().sum::<u64>() - given;
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        if out[i] < items[i].max {
            out[i] += 1;
            left -= 1;
        }
    }
    debug_assert_eq!(left, 0, "apportion must place the whole total");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn free(weights: &[u64]) -> Vec<Share> {
        weights
            .iter()
            .map(|&w| Share::new(w, 0, u64::MAX / 4))
            .collect()
    }

    #[test]
    fn seven_three() {
        assert_eq!(apportion(10, &free(&[7, 3])), vec![7, 3]);
    }

    #[test]
    fn equal_thirds_give_the_extra_to_the_first() {
        assert_eq!(apportion(10, &free(&[1, 1, 1])), vec![4, 3, 3]);
        assert_eq!(apportion(11, &free(&[1, 1, 1])), vec![4, 4, 3]);
    }

    #[test]
    fn largest_remainder_beats_order() {
        // quotas 10*1/6=1.67, 10*2/6=3.33, 10*3/6=5 → 2/3/5
        assert_eq!(apportion(10, &free(&[1, 2, 3])), vec![2, 3, 5]);
    }

    #[test]
    fn bounds_are_respected_and_the_rest_redistributed() {
        let items = [
            Share::new(1, 0, 2),
            Share::new(1, 0, 100),
            Share::new(1, 0, 100),
        ];
        assert_eq!(apportion(12, &items), vec![2, 5, 5]);
        let items = [Share::new(9, 0, 100), Share::new(1, 3, 100)];
        assert_eq!(apportion(10, &items), vec![7, 3]);
    }

    #[test]
    fn totals_outside_the_bounds_clamp() {
        let items = [Share::new(1, 2, 3), Share::new(1, 2, 3)];
        assert_eq!(apportion(100, &items), vec![3, 3]);
        assert_eq!(apportion(3, &items), vec![2, 1]);
    }

    #[test]
    fn zero_weights_split_equally() {
        assert_eq!(
            apportion(5, &[Share::new(0, 0, 9), Share::new(0, 0, 9)]),
            vec![3, 2]
        );
    }

    proptest! {
        #[test]
        fn respects_bounds_and_total(
            total in 0u64..500,
            raw in proptest::collection::vec((0u64..20, 0u64..10, 0u64..60), 1..8),
        ) {
            let items: Vec<Share> = raw.iter().map(|&(w, a, b)| Share::new(w, a.min(b), a.max(b))).collect();
            let out = apportion(total, &items);
            let (smin, smax): (u64, u64) = (items.iter().map(|s| s.min).sum(), items.iter().map(|s| s.max).sum());
            prop_assert_eq!(out.iter().sum::<u64>(), total.clamp(smin.min(total), smax));
            if total >= smin {
                for (o, s) in out.iter().zip(&items) {
                    prop_assert!(*o >= s.min && *o <= s.max);
                }
            }
        }

        #[test]
        fn unbounded_shares_are_within_one_of_the_quota(
            total in 0u64..1000,
            weights in proptest::collection::vec(1u64..50, 1..10),
        ) {
            let out = apportion(total, &free(&weights));
            let sum_w: u64 = weights.iter().sum();
            for (o, w) in out.iter().zip(&weights) {
                let q = total * w;
                prop_assert!(o * sum_w <= q + sum_w && o * sum_w + sum_w >= q);
            }
        }
    }
}
