//! Time arithmetic on timestamps read from objects (status, Leases): anyone able to write them
//! can put them at the ends of time, and jiff's `+` panics past them.

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// `t + d`, held at the ends of time instead of overflowing.
pub fn after(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.saturating_add(d).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_of_time_hold() {
        let hour = SignedDuration::from_hours(1);
        assert_eq!(after(Timestamp::MAX, hour), Timestamp::MAX);
        assert_eq!(after(Timestamp::MIN, -hour), Timestamp::MIN);
        assert_eq!(
            after(Timestamp::UNIX_EPOCH, hour),
            Timestamp::from_second(3600).unwrap()
        );
    }
}
