//! Per-cluster health with hysteresis: probe results in, `ClusterHealth` out.
//!
//! Like kubelet probes, a cluster is declared Unhealthy after `failureThreshold` failed probes in
//! a row, and trusted again only after `successThreshold` successes in a row. In between it is
//! Recovering: it keeps what it has and receives nothing new. Any failure while Recovering sends
//! it straight back to Unhealthy, so a flapping cluster never becomes Healthy.
//!
//! Pure: time is an input (`now`), never read from a clock.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::{ClusterHealth, HealthSettings};

/// Why a probe failed; a condition reason on the MemberCluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No answer within the probe deadline (a frozen or overloaded API server).
    Timeout,
    /// The API server's address refused the connection, or closed it (a control plane that is
    /// down): strong evidence, confirmed by quick re-probes ([`HealthTracker::next_probe_in`]).
    Refused(String),
    /// No route, a TLS failure, or another transport error.
    Unreachable(String),
    /// `/readyz` answered, but not ready.
    NotReady(String),
    /// The API answers but no node is Ready (the data plane is gone).
    NoReadyNodes,
    /// Credentials were refused (401/403).
    Unauthorized(String),
    /// No token could be obtained from the cloud provider for an `eks`/`gke` connection: the
    /// provider error's reason (`CredentialsExpired`, `AccessDenied`, ...) and message.
    Provider(&'static str, String),
}

impl ProbeFailure {
    /// The `Ready`/`Reachable` condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ProbeFailure::Timeout => "ProbeTimeout",
            ProbeFailure::Refused(_) | ProbeFailure::Unreachable(_) => "Unreachable",
            ProbeFailure::NotReady(_) => "APIServerNotReady",
            ProbeFailure::NoReadyNodes => "NoReadyNodes",
            ProbeFailure::Unauthorized(_) => "Unauthorized",
            ProbeFailure::Provider(reason, _) => reason,
        }
    }

    /// A sentence for the condition message.
    pub fn message(&self) -> String {
        match self {
            ProbeFailure::Timeout => {
                "the API server did not answer within the probe deadline".to_string()
            }
            ProbeFailure::Refused(e) | ProbeFailure::Unreachable(e) => {
                format!("the API server is unreachable: {e}")
            }
            ProbeFailure::NotReady(e) => format!("the API server is not ready: {e}"),
            ProbeFailure::NoReadyNodes => "the API server answers but no node is Ready".to_string(),
            ProbeFailure::Unauthorized(e) => {
                format!("the API server refused Bascule's credentials: {e}")
            }
            ProbeFailure::Provider(_, e) => {
                format!("no token for the member from its cloud provider: {e}")
            }
        }
    }
}

/// The shortest time over which `failureThreshold` quick re-probes may confirm an outage: an API
/// server replica replaced behind a load balancer refuses connections for a moment, and that is a
/// blip, not an outage (docs/members.md).
pub const MIN_FAILURE_SPAN: Duration = Duration::from_secs(1);
/// Quick re-probes never come closer together than this.
pub const MIN_REPROBE_INTERVAL: Duration = Duration::from_millis(250);

/// One probe's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Success,
    Failure(ProbeFailure),
}

/// A change of health, for Events and re-reconciling the affected workloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: ClusterHealth,
    pub to: ClusterHealth,
    pub at: Timestamp,
}

/// The health of one cluster over time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthTracker {
    state: ClusterHealth,
    since: Option<Timestamp>,
    failures: u32,
    successes: u32,
    last_failure: Option<ProbeFailure>,
}

impl HealthTracker {
    /// Starts from a state recorded earlier (the MemberCluster's status after a restart), so that
    /// a restart does not forget that a cluster was unhealthy.
    pub fn resume(state: ClusterHealth, since: Option<Timestamp>) -> HealthTracker {
        HealthTracker {
            state,
            since,
            failures: 0,
            successes: 0,
            last_failure: None,
        }
    }

    pub fn state(&self) -> ClusterHealth {
        self.state
    }

    /// When the current state began.
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }

    pub fn last_failure(&self) -> Option<&ProbeFailure> {
        self.last_failure.as_ref()
    }

    /// How long after the probe just observed to probe again: `periodSeconds`, or — while a
    /// member that is not yet Unhealthy refuses connections outright and
    /// `spec.health.quickConfirmation` is on — sooner, so that `failureThreshold` refusals in a
    /// row confirm the outage in about [`MIN_FAILURE_SPAN`] instead of `failureThreshold - 1`
    /// periods. The re-probes are spread so that the confirming failures span at least
    /// [`MIN_FAILURE_SPAN`].
    pub fn next_probe_in(&self, settings: &HealthSettings) -> Duration {
        let period = Duration::from_secs(settings.period_seconds.max(1) as u64);
        let threshold = settings.failure_threshold.max(1) as u32;
        let confirming = settings.quick_confirmation
            && matches!(self.last_failure, Some(ProbeFailure::Refused(_)))
            && matches!(self.state, ClusterHealth::Healthy | ClusterHealth::Unknown)
            && self.failures >= 1
            && self.failures < threshold;
        if !confirming {
            return period;
        }
        // Rounded up, so that the re-probes never add up to less than the span.
        let spread = (MIN_FAILURE_SPAN.as_millis() as u64).div_ceil(u64::from(threshold - 1));
        Duration::from_millis(spread)
            .max(MIN_REPROBE_INTERVAL)
            .min(period)
    }

    /// Feeds one probe result; returns the transition if the state changed.
    pub fn observe(
        &mut self,
        probe: Probe,
        settings: &HealthSettings,
        now: Timestamp,
    ) -> Option<Transition> {
        let failure_threshold = settings.failure_threshold.max(1) as u32;
        let success_threshold = settings.success_threshold.max(1) as u32;
        let next = match probe {
            Probe::Success => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                self.last_failure = None;
                match self.state {
                    // Never seen unhealthy: trust the first success, so a fresh start places at once.
                    ClusterHealth::Unknown => ClusterHealth::Healthy,
                    ClusterHealth::Unhealthy if success_threshold > 1 => ClusterHealth::Recovering,
                    ClusterHealth::Unhealthy | ClusterHealth::Recovering
                        if self.successes >= success_threshold =>
                    {
                        ClusterHealth::Healthy
                    }
                    s => s,
                }
            }
            Probe::Failure(f) => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                self.last_failure = Some(f);
                match self.state {
                    // Not trusted yet: one failure is enough.
                    ClusterHealth::Recovering => ClusterHealth::Unhealthy,
                    ClusterHealth::Healthy | ClusterHealth::Unknown
                        if self.failures >= failure_threshold =>
                    {
                        ClusterHealth::Unhealthy
                    }
                    s => s,
                }
            }
        };
        if next == self.state {
            return None;
        }
        let t = Transition {
            from: self.state,
            to: next,
            at: now,
        };
        self.state = next;
        self.since = Some(now);
        // A fresh count starts with the new state (the probe that caused it counts once).
        if next == ClusterHealth::Recovering {
            self.successes = 1;
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn fail() -> Probe {
        Probe::Failure(ProbeFailure::Unreachable("no route to the server".into()))
    }

    /// Runs a probe every `period` seconds; returns the transitions with their times.
    fn run(
        t: &mut HealthTracker,
        settings: &HealthSettings,
        probes: &[Probe],
        start: i64,
    ) -> Vec<(i64, ClusterHealth)> {
        let mut out = Vec::new();
        for (i, p) in probes.iter().enumerate() {
            let s = start + i as i64 * i64::from(settings.period_seconds);
            if let Some(tr) = t.observe(p.clone(), settings, at(s)) {
                out.push((s, tr.to));
            }
        }
        out
    }

    #[test]
    fn defaults_detect_a_hard_outage_within_about_ten_seconds() {
        let settings = HealthSettings::default();
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        // Probes at 0, 2, 4 s fail: Unhealthy at the third, 4 s after the first failed probe.
        // With a probe in flight when the outage starts and a 2 s timeout, that is ≤ 8 s.
        let tr = run(&mut t, &settings, &[fail(), fail(), fail()], 0);
        assert_eq!(tr, vec![(4, ClusterHealth::Unhealthy)]);
        assert_eq!(t.last_failure().unwrap().reason(), "Unreachable");
    }

    #[test]
    fn recovery_needs_a_sustained_run_of_successes() {
        let settings = HealthSettings::default(); // 15 successes at 2 s
        let mut t = HealthTracker::resume(ClusterHealth::Unhealthy, Some(at(0)));
        let probes = vec![Probe::Success; 15];
        let tr = run(&mut t, &settings, &probes, 100);
        assert_eq!(
            tr,
            vec![
                (100, ClusterHealth::Recovering),
                (128, ClusterHealth::Healthy)
            ]
        );
        assert_eq!(t.since(), Some(at(128)));
    }

    #[test]
    fn a_failure_while_recovering_is_unhealthy_again_at_once() {
        let settings = HealthSettings::default();
        let mut t = HealthTracker::resume(ClusterHealth::Unhealthy, None);
        let mut probes = vec![Probe::Success; 10];
        probes.push(fail());
        let tr = run(&mut t, &settings, &probes, 0);
        assert_eq!(
            tr,
            vec![
                (0, ClusterHealth::Recovering),
                (20, ClusterHealth::Unhealthy)
            ]
        );
    }

    #[test]
    fn fresh_start_trusts_the_first_success_and_isolated_failures_are_ignored() {
        let settings = HealthSettings::default();
        let mut t = HealthTracker::resume(ClusterHealth::Unknown, None);
        let tr = run(
            &mut t,
            &settings,
            &[Probe::Success, fail(), fail(), Probe::Success, fail()],
            0,
        );
        assert_eq!(tr, vec![(0, ClusterHealth::Healthy)]);
    }

    #[test]
    fn success_threshold_of_one_skips_recovering() {
        let settings = HealthSettings {
            success_threshold: 1,
            ..Default::default()
        };
        let mut t = HealthTracker::resume(ClusterHealth::Unhealthy, None);
        assert_eq!(
            run(&mut t, &settings, &[Probe::Success], 0),
            vec![(0, ClusterHealth::Healthy)]
        );
    }

    fn refused() -> Probe {
        Probe::Failure(ProbeFailure::Refused("connection refused".into()))
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn refusals_are_confirmed_by_quick_reprobes_spanning_a_second() {
        let settings = HealthSettings::default(); // 2 s period, 3 failures
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
        t.observe(refused(), &settings, at(0));
        // Failures at 0, 0.5 and 1.0 s: Unhealthy after 1 s, not after 4 s.
        assert_eq!(ms(t.next_probe_in(&settings)), 500);
        t.observe(refused(), &settings, at(0));
        assert_eq!(ms(t.next_probe_in(&settings)), 500);
        assert!(t.observe(refused(), &settings, at(1)).is_some());
        assert_eq!(t.state(), ClusterHealth::Unhealthy);
        // Once Unhealthy, the period again.
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
    }

    #[test]
    fn quick_reprobes_only_for_refusals_and_when_asked() {
        let settings = HealthSettings::default();
        // A timeout (a frozen API server) is not strong evidence.
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        t.observe(Probe::Failure(ProbeFailure::Timeout), &settings, at(0));
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
        // Nor a TLS failure or no route.
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        t.observe(fail(), &settings, at(0));
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
        // Opted out.
        let off = HealthSettings {
            quick_confirmation: false,
            ..Default::default()
        };
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        t.observe(refused(), &off, at(0));
        assert_eq!(ms(t.next_probe_in(&off)), 2000);
        // A blip: refused once, then answered: the period again, still Healthy.
        let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
        t.observe(refused(), &settings, at(0));
        t.observe(Probe::Success, &settings, at(0));
        assert_eq!(t.state(), ClusterHealth::Healthy);
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
        // Recovering needs no confirmation (one failure is enough); Unhealthy has nothing to confirm.
        let mut t = HealthTracker::resume(ClusterHealth::Unhealthy, None);
        t.observe(refused(), &settings, at(0));
        assert_eq!(ms(t.next_probe_in(&settings)), 2000);
    }

    proptest! {
        /// However the thresholds and period are set, quick re-probes spread the confirming
        /// failures over at least MIN_FAILURE_SPAN, never come closer than
        /// MIN_REPROBE_INTERVAL, and never wait longer than the period.
        #[test]
        fn quick_reprobes_span_at_least_the_minimum(ft in 1i32..=100, period in 1i32..=300) {
            let settings = HealthSettings { failure_threshold: ft, period_seconds: period, timeout_seconds: 1, ..Default::default() };
            let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
            let mut span = Duration::ZERO;
            let mut probes = 0;
            while t.state() != ClusterHealth::Unhealthy {
                t.observe(refused(), &settings, at(0));
                probes += 1;
                if t.state() != ClusterHealth::Unhealthy {
                    let next = t.next_probe_in(&settings);
                    prop_assert!(next >= MIN_REPROBE_INTERVAL);
                    prop_assert!(next <= Duration::from_secs(period as u64));
                    span += next;
                }
            }
            prop_assert_eq!(probes, ft);
            if ft > 1 {
                prop_assert!(span >= MIN_FAILURE_SPAN, "{:?}", span);
            }
        }
    }

    proptest! {
        /// Flapping (up and down faster than successThreshold) never reaches Healthy once
        /// Unhealthy, and a cluster is Unhealthy only after failureThreshold failures in a row.
        #[test]
        fn hysteresis(probes in proptest::collection::vec(any::<bool>(), 1..200), ft in 1i32..6, st in 2i32..20) {
            let settings = HealthSettings { failure_threshold: ft, success_threshold: st, ..Default::default() };
            let mut t = HealthTracker::resume(ClusterHealth::Healthy, None);
            let (mut fails, mut oks, mut was_unhealthy) = (0, 0, false);
            for (i, ok) in probes.iter().enumerate() {
                let before = t.state();
                t.observe(if *ok { Probe::Success } else { fail() }, &settings, at(i as i64));
                if *ok { oks += 1; fails = 0; } else { fails += 1; oks = 0; }
                if before == ClusterHealth::Healthy && t.state() == ClusterHealth::Unhealthy {
                    prop_assert!(fails >= ft);
                }
                if t.state() == ClusterHealth::Unhealthy { was_unhealthy = true; }
                if was_unhealthy && before != ClusterHealth::Healthy && t.state() == ClusterHealth::Healthy {
                    prop_assert!(oks >= st, "healthy after only {} successes", oks);
                }
            }
        }
    }
}
