//! End-to-end tests against real Kubernetes control planes (kube-apiserver, etcd,
//! kube-controller-manager, kube-scheduler) run locally by kwokctl; see docs/e2e.md.
//!
//!     cargo test --features e2e --test e2e            # all e2e trials
//!     cargo test --features e2e --test e2e -- smoke   # a filter, as with any cargo test
//!
//! `main` starts the hub and members once (building the binaries first on a fresh machine),
//! runs the trials one at a time (they inject faults into shared clusters), and always tears the
//! clusters down: after the trials, when a trial panics (libtest-mimic catches it), on
//! SIGINT/SIGTERM/SIGHUP, and — for a run that was SIGKILLed — at the start of the next run.
//! Trials never skip: if the clusters cannot be started, every selected trial fails with the
//! reason.
//!
//! To add tests: write a module with `pub fn trials(topology: &Topology) -> Vec<Trial>` built
//! with `support::trial`, and add it to `all_trials` below.

mod chart;
mod crds;
mod failover;
mod gitops;
mod leader;
mod least_privilege;
mod members;
mod providers;
mod scale;
mod smoke;
mod support;
mod tenancy;
mod workloads;

use std::process::ExitCode;

use libtest_mimic::{Arguments, Trial};
use support::Topology;

fn all_trials(topology: &Topology) -> Vec<Trial> {
    let mut trials = Vec::new();
    trials.extend(smoke::trials(topology));
    trials.extend(members::trials(topology));
    trials.extend(crds::trials(topology));
    trials.extend(workloads::trials(topology));
    trials.extend(failover::trials(topology));
    trials.extend(chart::trials(topology));
    trials.extend(gitops::trials(topology));
    trials.extend(leader::trials(topology));
    trials.extend(least_privilege::trials(topology));
    trials.extend(providers::trials(topology));
    trials.extend(tenancy::trials(topology));
    trials.extend(scale::trials(topology));
    trials
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Trials share the clusters and stop/freeze them; run them one at a time unless asked.
    if args.test_threads.is_none() {
        args.test_threads = Some(1);
    }
    let topology = Topology::from_env();
    let trials = all_trials(&topology);

    let will_run = !args.list
        && trials
            .iter()
            .any(|t| !args.is_filtered_out(t) && !args.is_ignored(t));
    if will_run {
        install_signal_teardown();
        if let Err(e) = support::start(topology) {
            // Not fatal here: every trial reports it as its failure.
            eprintln!("e2e: error: {e}");
        }
    }

    // Trials' panics are caught by libtest-mimic; a panic escaping run() itself still must not
    // leave clusters behind.
    let conclusion = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        libtest_mimic::run(&args, trials)
    }));
    support::teardown();
    match conclusion {
        Ok(c) => c.exit_code(),
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// On SIGINT, SIGTERM or SIGHUP: tear the clusters down, then exit with 128+signal.
fn install_signal_teardown() {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Register the handlers before any cluster process exists.
    let (mut int, mut term, mut hup) = rt.block_on(async {
        (
            signal(SignalKind::interrupt()).expect("SIGINT handler"),
            signal(SignalKind::terminate()).expect("SIGTERM handler"),
            signal(SignalKind::hangup()).expect("SIGHUP handler"),
        )
    });
    std::thread::spawn(move || {
        let code = rt.block_on(async {
            tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
                _ = hup.recv() => 129,
            }
        });
        eprintln!("\ne2e: interrupted; tearing the clusters down");
        support::emergency_teardown();
        std::process::exit(code);
    });
}
